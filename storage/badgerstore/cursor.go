package badgerstore

import (
	"encoding/base64"
	"encoding/binary"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/spoortrace/spoor/storage"
)

// cursor is the position after which a search continues (FORMAT.md: Search, cursors):
// the last returned trace's start and ID, and the index watermark of the snapshot the
// first page read.
type cursor struct {
	start uint64
	id    pcommon.TraceID
	seq   uint64
}

const (
	cursorV3  byte = 3
	cursorLen      = 1 + 8 + 16 + 8
)

func encodeCursor(c cursor) string {
	b := make([]byte, 0, cursorLen)
	b = append(b, cursorV3)
	b = binary.BigEndian.AppendUint64(b, c.start)
	b = append(b, c.id[:]...)
	b = binary.BigEndian.AppendUint64(b, c.seq)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, error) {
	// Strict decoding still skips CR and LF: refuse them, so that one cursor has one
	// spelling (FuzzDecodeCursor found a cursor with a newline in it accepted).
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != cursorLen || b[0] != cursorV3 || strings.ContainsAny(s, "\r\n") {
		return cursor{}, &storage.InvalidInputError{Reason: "malformed search cursor"}
	}
	var c cursor
	c.start = binary.BigEndian.Uint64(b[1:9])
	copy(c.id[:], b[9:25])
	c.seq = binary.BigEndian.Uint64(b[25:33])
	return c, nil
}
