package sampler

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// The specification's table (REFERENCE.md §2.1) and its th examples.
func TestSpecThresholdExamples(t *testing.T) {
	for _, c := range []struct {
		p         float64
		precision int
		th        string
	}{
		{0.1, 3, "e66"}, {0.1, 4, "e666"}, {0.1, 5, "e6666"},
		{0.01, 3, "fd71"}, {0.01, 4, "fd70a"}, {0.01, 5, "fd70a4"},
		{0.001, 3, "ffbe7"}, {0.001, 4, "ffbe77"}, {0.001, 5, "ffbe76d"},
		{1, 4, "0"}, {0.5, 4, "8"}, {0.25, 4, "c"},
	} {
		th, ok := ProbabilityToThreshold(c.p, c.precision)
		if !ok {
			t.Fatalf("p=%v: no threshold", c.p)
		}
		if got := string(AppendTValue(nil, th)); got != c.th {
			t.Errorf("p=%v at %d digits: th %q, want %q", c.p, c.precision, got, c.th)
		}
		back, ok := ParseTValue(c.th)
		if !ok || back != th {
			t.Errorf("ParseTValue(%q) = %x, %v; want %x", c.th, back, ok, th)
		}
	}
	for _, c := range []struct {
		th    string
		p     float64
		count float64
	}{
		{"0", 1, 1}, {"8", 0.5, 2}, {"c", 0.25, 4},
	} {
		v, ok := ParseTValue(c.th)
		if !ok || ThresholdProbability(v) != c.p || AdjustedCount(v) != c.count {
			t.Errorf("th:%s: p=%v count=%v ok=%v; want p=%v count=%v", c.th, ThresholdProbability(v), AdjustedCount(v), ok, c.p, c.count)
		}
	}
	v, _ := ParseTValue("fd70a4")
	if v != 0xfd70a400000000 {
		t.Errorf("th:fd70a4 decodes to %x, want right-padding to 14 digits", v)
	}
	for _, bad := range []string{"", "123456789abcdef", "xyz", "-1"} {
		if _, ok := ParseTValue(bad); ok {
			t.Errorf("ParseTValue(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"", "0123456789abc", "0123456789abcde", "0123456789abcg"} {
		if _, ok := ParseRValue(bad); ok {
			t.Errorf("ParseRValue(%q) accepted", bad)
		}
	}
}

// Spoor's own encode/decode against contrib pkg/sampling for many probabilities,
// precisions and thresholds.
func TestThresholdMatchesContrib(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		var p float64
		switch i % 4 {
		case 0:
			p = rng.Float64()
		case 1:
			p = math.Pow(2, -56*rng.Float64()) // near 0
		case 2:
			p = 1 - math.Pow(2, -50*rng.Float64()) // near 1
		default:
			p = float64(rng.IntN(10001)) / 10000
		}
		prec := 1 + rng.IntN(NumHexDigits)
		want, werr := sampling.ProbabilityToThresholdWithPrecision(p, prec)
		got, ok := ProbabilityToThreshold(p, prec)
		if ok != (werr == nil) {
			t.Fatalf("p=%v prec=%d: ok=%v, contrib err=%v", p, prec, ok, werr)
		}
		if !ok {
			continue
		}
		if got != want.Unsigned() {
			t.Fatalf("p=%v prec=%d: T=%x, contrib %x", p, prec, got, want.Unsigned())
		}
		if got < MaxAdjustedCount {
			if s := string(AppendTValue(nil, got)); s != want.TValue() {
				t.Fatalf("p=%v prec=%d: th %q, contrib %q", p, prec, s, want.TValue())
			}
			back, ok := ParseTValue(want.TValue())
			if !ok || back != got {
				t.Fatalf("ParseTValue(%q) = %x, want %x", want.TValue(), back, got)
			}
			if AdjustedCount(got) != want.AdjustedCount() {
				t.Fatalf("adjusted count of %x: %v, contrib %v", got, AdjustedCount(got), want.AdjustedCount())
			}
		}
		r := rng.Uint64() & randomnessMask
		cr, _ := sampling.UnsignedToRandomness(r)
		if s := string(AppendRValue(nil, r)); s != cr.RValue() {
			t.Fatalf("rv of %x: %q, contrib %q", r, s, cr.RValue())
		}
		var tid pcommon.TraceID
		for j := range tid {
			tid[j] = byte(rng.Uint32())
		}
		if TraceIDRandomness(tid) != sampling.TraceIDToRandomness(tid).Unsigned() {
			t.Fatalf("randomness of %s differs from contrib", tid)
		}
	}
}

func TestHashSeedWorkedExample(t *testing.T) {
	tid := mustTraceID(t, "4bf92f3577b34da6a3ce929d0e0e4736")
	thr, _ := hashSeedThreshold(25)
	r0 := hashSeedRandomness(tid, 0)
	if r0 < thr || string(AppendRValue(nil, r0)) != "fdc80d0b42008d" || r0&(numHashBuckets-1) != 141 {
		t.Errorf("seed 0: rv %s (low14 %d), want keep with fdc80d0b42008d", AppendRValue(nil, r0), r0&(numHashBuckets-1))
	}
	if r22 := hashSeedRandomness(tid, 22); r22&(numHashBuckets-1) != 12395 || r22 >= thr {
		t.Errorf("seed 22: low14 %d, want 12395 and a drop", r22&(numHashBuckets-1))
	}
	for pct, want := range map[float64]uint64{25: 4096, 10: 1638, 1: 163, 100: 16384} {
		got, _ := hashSeedThreshold(pct)
		if buckets := numHashBuckets - got>>42; buckets != want {
			t.Errorf("%v%%: %d buckets, want %d", pct, buckets, want)
		}
	}
}

func mustTraceID(t *testing.T, s string) pcommon.TraceID {
	t.Helper()
	var tid pcommon.TraceID
	if len(s) != 32 {
		t.Fatalf("trace ID %q", s)
	}
	for i := range tid {
		v, ok := parseHex(s[2*i : 2*i+2])
		if !ok {
			t.Fatalf("trace ID %q", s)
		}
		tid[i] = byte(v)
	}
	return tid
}
