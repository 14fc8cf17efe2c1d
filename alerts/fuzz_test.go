package alerts

import (
	"regexp"
	"strings"
	"testing"
)

var errorLine = regexp.MustCompile(`^[0-9]+: `)

// FuzzParseRules: any document is refused with "LINE: reason", or every rule it yields
// is complete and evaluable.
func FuzzParseRules(f *testing.F) {
	f.Add([]byte(issueRules))
	f.Add([]byte("groups: []"))
	f.Add([]byte(strings.Replace(issueRules, "1m", "1x", 1)))
	f.Add([]byte("groups:\n  - name: g\n    rules:\n      - alert: A\n        match: {service: \"=~a(\"}\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		rules, err := ParseRules(doc)
		if err != nil {
			if !errorLine.MatchString(err.Error()) {
				t.Fatalf("error without a line: %q", err)
			}
			return
		}
		for _, r := range rules {
			if r.Name == "" || r.Group == "" || r.Window < 1e9 || r.For < 0 || !labelNameRE.MatchString(r.Name) {
				t.Fatalf("accepted an incomplete rule %+v", r)
			}
			r.exceeds(1, 1)
			r.matchesService("x")
		}
	})
}
