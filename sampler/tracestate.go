package sampler

// traceState is what the sampler reads from a span's W3C tracestate. Its strings point
// into the span's own tracestate, so reading one costs no allocation; the empty
// tracestate, the common case, costs one comparison.
type traceState struct {
	raw string // the whole tracestate

	rv    string // the ot entry's rv sub-key as written, "" when absent
	r     uint64
	rvOK  bool   // rv is exactly 14 hex digits
	th    string // the ot entry's th sub-key as written, "" when absent
	t     uint64
	thOK  bool // th is 1 to 14 hex digits
	hasRV bool
	hasTH bool
	// malformed is set when the list or the ot entry breaks the W3C or OTel syntax.
	// Equalizing and proportional read what they can and go on; hash_seed refuses the
	// span as contrib does.
	malformed bool
}

const maxOTLength = 256 // OTel: the whole ot value is at most 256 characters

// parseTraceState reads rv and th out of the ot entry of a W3C tracestate.
func parseTraceState(raw string) (ts traceState) {
	ts.raw = raw
	for rest := raw; rest != ""; {
		var member string
		member, rest = cut(rest, ',')
		member = trimOWS(member)
		if member == "" {
			continue
		}
		eq := indexByte(member, '=')
		if eq < 1 {
			ts.malformed = true
			continue
		}
		if member[:eq] != "ot" {
			continue
		}
		ts.parseOT(member[eq+1:])
	}
	return ts
}

func (ts *traceState) parseOT(v string) {
	if v == "" || len(v) > maxOTLength || v[len(v)-1] == ';' {
		ts.malformed = true
	}
	for rest := v; rest != ""; {
		var sub string
		sub, rest = cut(rest, ';')
		colon := indexByte(sub, ':')
		if colon < 1 || !validOTKey(sub[:colon]) || !validOTValue(sub[colon+1:]) {
			ts.malformed = true
			continue
		}
		switch key, val := sub[:colon], sub[colon+1:]; key {
		case "rv":
			ts.hasRV, ts.rv = true, val
			ts.r, ts.rvOK = ParseRValue(val)
		case "th":
			ts.hasTH, ts.th = true, val
			ts.t, ts.thOK = ParseTValue(val)
		}
		if (ts.hasRV && !ts.rvOK) || (ts.hasTH && !ts.thOK) {
			ts.malformed = true
		}
	}
}

// otEdit says what a stage writes into the ot entry. An rv already there is carried
// unchanged unless setRV (hash_seed, which only runs when there is none).
type otEdit struct {
	setRV bool
	rv    uint64
	setTH bool // otherwise th is erased
	th    uint64
}

// appendTraceState appends the tracestate raw with its ot entry rewritten by e. As W3C
// asks of a modified entry, ot moves to the front; inside it rv, then th, then the other
// sub-keys in their order (the order contrib writes, so hash_seed output is byte for
// byte contrib's); the other vendors' entries follow in their order. An ot entry left
// with nothing in it is dropped.
func appendTraceState(dst []byte, raw string, e otEdit) []byte {
	start := len(dst)
	dst = append(dst, "ot="...)
	body := len(dst)
	sep := func() {
		if len(dst) > body {
			dst = append(dst, ';')
		}
	}
	// The existing rv first, then th, then the rest: two passes over the ot entry.
	ot, hasOT := findOT(raw)
	if e.setRV {
		dst = append(dst, "rv:"...)
		dst = AppendRValue(dst, e.rv)
	} else if hasOT {
		for rest := ot; rest != ""; {
			var sub string
			sub, rest = cut(rest, ';')
			if len(sub) > 3 && sub[:3] == "rv:" {
				dst = append(dst, sub...)
				break
			}
		}
	}
	if e.setTH {
		sep()
		dst = append(dst, "th:"...)
		dst = AppendTValue(dst, e.th)
	}
	if hasOT {
		for rest := ot; rest != ""; {
			var sub string
			sub, rest = cut(rest, ';')
			if sub == "" || (len(sub) >= 3 && (sub[:3] == "rv:" || sub[:3] == "th:")) {
				continue
			}
			sep()
			dst = append(dst, sub...)
		}
	}
	if len(dst) == body {
		dst = dst[:start]
	}
	for rest := raw; rest != ""; {
		var member string
		member, rest = cut(rest, ',')
		member = trimOWS(member)
		if member == "" || (len(member) >= 3 && member[:3] == "ot=") {
			continue
		}
		if len(dst) > start {
			dst = append(dst, ',')
		}
		dst = append(dst, member...)
	}
	return dst
}

// findOT returns the value of the first ot entry.
func findOT(raw string) (string, bool) {
	for rest := raw; rest != ""; {
		var member string
		member, rest = cut(rest, ',')
		member = trimOWS(member)
		if len(member) >= 3 && member[:3] == "ot=" {
			return member[3:], true
		}
	}
	return "", false
}

func cut(s string, sep byte) (before, after string) {
	if i := indexByte(s, sep); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
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
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

func validOTKey(k string) bool {
	if k == "" || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	for i := 1; i < len(k); i++ {
		if c := k[i]; !(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func validOTValue(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}
