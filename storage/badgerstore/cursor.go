package badgerstore

import (
	"encoding/base64"
	"encoding/binary"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/spoortrace/spoor/storage"
)

// cursor is the position after which a search continues (FORMAT.md: Search, cursors):
// the last returned trace's start and ID, and the Badger version of the snapshot the
// first page read.
type cursor struct {
	start uint64
	id    pcommon.TraceID
	asOf  uint64
	seq   uint64 // the highest block sequence of the first page's index state
}

const (
	cursorV2  byte = 2
	cursorLen      = 1 + 8 + 16 + 8 + 8
)

func encodeCursor(c cursor) string {
	b := make([]byte, 0, cursorLen)
	b = append(b, cursorV2)
	b = binary.BigEndian.AppendUint64(b, c.start)
	b = append(b, c.id[:]...)
	b = binary.BigEndian.AppendUint64(b, c.asOf)
	b = binary.BigEndian.AppendUint64(b, c.seq)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != cursorLen || b[0] != cursorV2 {
		return cursor{}, &storage.InvalidInputError{Reason: "malformed search cursor"}
	}
	var c cursor
	c.start = binary.BigEndian.Uint64(b[1:9])
	copy(c.id[:], b[9:25])
	c.asOf = binary.BigEndian.Uint64(b[25:33])
	c.seq = binary.BigEndian.Uint64(b[33:41])
	return c, nil
}
