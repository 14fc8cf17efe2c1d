package sampler

import "testing"

// FuzzTraceState: any tracestate is read without panicking, and a rewrite keeps rv as
// it was and states the th it was given.
func FuzzTraceState(f *testing.F) {
	for _, s := range []string{"", "ot=th:8", "ot=rv:f0000000000000;th:c;xx:yy,v=1", " a=1 ,ot=th:", "ot=;;", "ot=th:123456789abcdef", ",,ot=rv:zz"} {
		f.Add(s, uint64(0xe666)<<40)
	}
	f.Fuzz(func(t *testing.T, raw string, th uint64) {
		th &= randomnessMask
		ts := parseTraceState(raw)
		out := string(appendTraceState(nil, raw, otEdit{setTH: true, th: th}))
		back := parseTraceState(out)
		if !back.thOK || back.t != th {
			t.Fatalf("%q rewritten with th %x: %q reads th %q", raw, th, out, back.th)
		}
		if ts.rvOK && (!back.rvOK || back.r != ts.r) {
			t.Fatalf("%q rewritten: %q lost rv %s", raw, out, ts.rv)
		}
	})
}
