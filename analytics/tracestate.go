package analytics

import "github.com/spoortrace/spoor/sampler"

// adjustedCount is how many spans this one stands for: 2^56/(2^56-T) for the th of the
// tracestate's ot entry, 1 without one (or with one that cannot be read). The empty
// tracestate, the common case, costs one comparison.
func adjustedCount(ts string) float64 {
	if ts == "" {
		return 1
	}
	for rest := ts; rest != ""; {
		member := rest
		if i := indexByte(rest, ','); i >= 0 {
			member, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		member = trimOWS(member)
		if len(member) < 3 || member[:3] != "ot=" {
			continue
		}
		for sub := member[3:]; sub != ""; {
			kv := sub
			if i := indexByte(sub, ';'); i >= 0 {
				kv, sub = sub[:i], sub[i+1:]
			} else {
				sub = ""
			}
			if len(kv) > 3 && kv[:3] == "th:" {
				t, ok := sampler.ParseTValue(kv[3:])
				if !ok {
					return 1
				}
				if a := sampler.AdjustedCount(t); a > 0 {
					return a
				}
				return 1
			}
		}
		return 1
	}
	return 1
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
