package query

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/zipkin/zipkinv2"
	zipkinmodel "github.com/openzipkin/zipkin-go/model"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// This file turns stored traces into Zipkin v2 span JSON. The mapping is the contrib
// translator's (zipkinv2.FromTranslator, the one the Zipkin exporter uses) and the JSON is
// zipkin-go's model encoding, which, like Zipkin's own server, lowercases span and service
// names. Two things are added on top, each because the translator cannot know them:
//   - shared: Zipkin's receiver drops the flag, so a SERVER span that reuses the span ID
//     of a CLIENT span of the same trace (what Zipkin calls a shared span, zipkin-go's and
//     Brave's default) gets shared=true back;
//   - spans of one trace are ordered by timestamp, then span ID, then client before the
//     shared server half, so that answers are stable; Zipkin promises no order.
//
// Spans the translator refuses (an all-zero span ID) are left out rather than failing the
// whole trace, and a span ending before it starts gets no duration instead of making
// zipkin-go's encoder fail.

// zipkinSpans translates one trace into Zipkin span models, in answer order.
func zipkinSpans(td ptrace.Traces) ([]*zipkinmodel.SpanModel, error) {
	spans, err := zipkinv2.FromTranslator{}.FromTraces(td)
	if err != nil {
		spans, err = zipkinv2.FromTranslator{}.FromTraces(withoutInvalidSpans(td))
		if err != nil {
			return nil, fmt.Errorf("translate trace to zipkin: %w", err)
		}
	}
	markShared(spans)
	for _, s := range spans {
		if s.Duration < 0 {
			s.Duration = 0
		}
	}
	slices.SortStableFunc(spans, func(a, b *zipkinmodel.SpanModel) int {
		if c := a.Timestamp.Compare(b.Timestamp); c != 0 {
			return c
		}
		if c := cmp.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		if a.Shared != b.Shared {
			if b.Shared {
				return -1
			}
			return 1
		}
		return 0
	})
	return spans, nil
}

// withoutInvalidSpans copies td without the spans the translator cannot translate.
func withoutInvalidSpans(td ptrace.Traces) ptrace.Traces {
	out := ptrace.NewTraces()
	td.CopyTo(out)
	rss := out.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			sss.At(j).Spans().RemoveIf(func(s ptrace.Span) bool {
				return s.SpanID().IsEmpty() || s.TraceID().IsEmpty()
			})
		}
	}
	return out
}

// markShared sets Shared on server spans whose ID a client span of the trace also has.
func markShared(spans []*zipkinmodel.SpanModel) {
	var clients map[zipkinmodel.ID]struct{}
	for _, s := range spans {
		if s.Kind == zipkinmodel.Client {
			if clients == nil {
				clients = make(map[zipkinmodel.ID]struct{})
			}
			clients[s.ID] = struct{}{}
		}
	}
	if clients == nil {
		return
	}
	for _, s := range spans {
		if s.Kind == zipkinmodel.Server {
			if _, ok := clients[s.ID]; ok {
				s.Shared = true
			}
		}
	}
}

// appendZipkinSpans appends the JSON array of spans.
func appendZipkinSpans(dst []byte, spans []*zipkinmodel.SpanModel) ([]byte, error) {
	dst = append(dst, '[')
	for i, s := range spans {
		if i > 0 {
			dst = append(dst, ',')
		}
		b, err := json.Marshal(s)
		if err != nil {
			return dst, fmt.Errorf("encode zipkin span %s: %w", s.ID, err)
		}
		dst = append(dst, b...)
	}
	return append(dst, ']'), nil
}

// zipkinDurationMicros is the duration the encoder writes: rounded to the microsecond,
// and at least 1 µs when positive.
func zipkinDurationMicros(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	if d < time.Microsecond {
		return 1
	}
	return int64((d + 500*time.Nanosecond) / time.Microsecond)
}

// zipkinTimestampMicros is the timestamp the encoder writes; 0 when absent.
func zipkinTimestampMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Round(time.Microsecond).UnixNano() / 1e3
}
