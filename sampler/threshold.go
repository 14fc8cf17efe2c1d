package sampler

import (
	"encoding/binary"
	"math"
)

// The 56-bit arithmetic of OpenTelemetry consistent probability sampling
// (REFERENCE.md §2.1). A threshold T and a randomness R are plain uint64s below 2^56:
// no wrapper types, so that the per-span decision is a compare and nothing else.
const (
	// MaxAdjustedCount is 2^56: the number of distinct randomness values. A threshold
	// equal to it rejects everything ("never"), which is not a probability and is never
	// written to a tracestate.
	MaxAdjustedCount uint64 = 1 << 56
	// NumHexDigits is the width of rv and of a fully precise th.
	NumHexDigits = 14
	// DefaultPrecision is the number of hex digits of th the SDKs use by default.
	DefaultPrecision = 4
	// MinProbability is the smallest probability a threshold can express.
	MinProbability = 1.0 / float64(MaxAdjustedCount)

	randomnessMask = MaxAdjustedCount - 1
	hexBits        = 4
)

// TraceIDRandomness is R for a trace without rv: the least significant 56 bits of the
// trace ID, which W3C Trace Context Level 2 makes random.
func TraceIDRandomness(tid [16]byte) uint64 {
	return binary.BigEndian.Uint64(tid[8:]) & randomnessMask
}

// ProbabilityToThreshold returns T = (1-p)·2^56 rounded to precision hex digits, the
// precision raised by one digit for every leading 0 or f the exact value would have, so
// that probabilities near 0 and near 1 keep their relative accuracy. It follows the
// spec's reference conversion (and contrib pkg/sampling) digit for digit; ok is false
// when p is outside [2^-56, 1].
func ProbabilityToThreshold(p float64, precision int) (t uint64, ok bool) {
	if precision <= 0 || precision > NumHexDigits {
		precision = NumHexDigits
	}
	if !(p >= MinProbability && p <= 1) {
		return MaxAdjustedCount, false
	}
	if p == 1 {
		return 0, true
	}
	_, expP := math.Frexp(p)
	_, expQ := math.Frexp(1 - p)
	precision = min(NumHexDigits, max(precision+expP/-hexBits, precision+expQ/-hexBits))
	t = MaxAdjustedCount - uint64(math.Round(p*float64(MaxAdjustedCount)))
	if shift := hexBits * (NumHexDigits - precision); shift != 0 {
		t += uint64(1) << (shift - 1)
		t >>= shift
		t <<= shift
	}
	return t, true
}

// ThresholdProbability is p = (2^56 - T) / 2^56.
func ThresholdProbability(t uint64) float64 {
	return float64(MaxAdjustedCount-t) / float64(MaxAdjustedCount)
}

// AdjustedCount is 2^56 / (2^56 - T): how many spans one kept span stands for. It is 0
// for the "never" threshold, which keeps nothing.
func AdjustedCount(t uint64) float64 {
	if t >= MaxAdjustedCount {
		return 0
	}
	return float64(MaxAdjustedCount) / float64(MaxAdjustedCount-t)
}

const hexDigits = "0123456789abcdef"

// AppendTValue appends th's encoding of t: 14 hex digits with the trailing zeros
// dropped, and "0" for "always". t must be below 2^56.
func AppendTValue(dst []byte, t uint64) []byte {
	if t == 0 {
		return append(dst, '0')
	}
	n := NumHexDigits
	for (t>>(hexBits*(NumHexDigits-n)))&0xf == 0 {
		n--
	}
	for i := 0; i < n; i++ {
		dst = append(dst, hexDigits[(t>>(hexBits*(NumHexDigits-1-i)))&0xf])
	}
	return dst
}

// AppendRValue appends rv's encoding of r: exactly 14 lower-case hex digits.
func AppendRValue(dst []byte, r uint64) []byte {
	for i := 0; i < NumHexDigits; i++ {
		dst = append(dst, hexDigits[(r>>(hexBits*(NumHexDigits-1-i)))&0xf])
	}
	return dst
}

// ParseTValue decodes th: 1 to 14 hex digits, right-padded with zeros to 14. The spec
// writes lower case; upper case is accepted on input as contrib does.
func ParseTValue(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > NumHexDigits {
		return 0, false
	}
	v, ok := parseHex(s)
	if !ok {
		return 0, false
	}
	return v << (hexBits * (NumHexDigits - len(s))), true
}

// ParseRValue decodes rv: exactly 14 hex digits.
func ParseRValue(s string) (uint64, bool) {
	if len(s) != NumHexDigits {
		return 0, false
	}
	return parseHex(s)
}

func parseHex(s string) (uint64, bool) {
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<hexBits | uint64(c)
	}
	return v, true
}

// hashSeedRandomness is contrib's hash_seed randomness (REFERENCE.md §2.2): FNV-1a-32
// over the seed's 4 little-endian bytes then the 16 trace-ID bytes; the low 14 bits
// decide, mirrored into the top 14 bits of a 56-bit R' so that R' >= T agrees with
// "hashed < scaled". Written out by hand so that it allocates nothing.
func hashSeedRandomness(tid [16]byte, seed uint32) uint64 {
	const (
		offset32 = 2166136261
		prime32  = 16777619
	)
	h := uint32(offset32)
	for i := 0; i < 4; i++ {
		h ^= uint32(byte(seed >> (8 * i)))
		h *= prime32
	}
	for _, b := range tid {
		h ^= uint32(b)
		h *= prime32
	}
	hashed := uint64(h & (numHashBuckets - 1))
	unused18 := uint64(h >> (32 - numHashBucketsLg2))
	mixed28 := unused18 ^ (unused18 << 10)
	return (numHashBuckets-1-hashed)<<42 | mixed28<<14 | hashed
}

const (
	numHashBucketsLg2 = 14
	numHashBuckets    = 1 << numHashBucketsLg2
)

// hashSeedThreshold is contrib's T for hash_seed at pct percent: the bucket count is
// computed in float32 and truncated, exactly as contrib does, so that 10% is 1638
// buckets and not 1638.4 rounded some other way. ok is false when no bucket is kept.
func hashSeedThreshold(pct float64) (uint64, bool) {
	p32 := min(float32(pct), 100)
	scaled := uint32(p32 * float32(numHashBuckets/100.0))
	if scaled == 0 {
		return MaxAdjustedCount, false
	}
	return uint64(numHashBuckets-scaled) << 42, true
}
