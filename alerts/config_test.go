package alerts

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// issueRules is the form of issue 5, verbatim.
const issueRules = `groups:
  - name: payments
    rules:
      - alert: CardDeclinesHigh
        match:
          service: payment-service
          operation: charge            # optional
          attributes:                  # optional; values may be "=~regex" or "!=value"
            payment.method: card
        condition: error_rate > 0.05   # or: error_count > 10
        window: 1m
        for: 0s
        labels: {severity: page}
        annotations: {summary: "More than 5% of card charges fail"}
`

func TestParseIssueForm(t *testing.T) {
	rules, err := ParseRules([]byte(issueRules))
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 1 {
		t.Fatalf("got %d rules", len(rules))
	}
	r := rules[0]
	if r.Group != "payments" || r.Name != "CardDeclinesHigh" || r.Window.String() != "1m0s" || r.For != 0 ||
		!r.byRate || r.threshold != 0.05 || r.Labels["severity"] != "page" || r.Annotations["summary"] == "" ||
		r.service.value != "payment-service" || r.operation.value != "charge" || len(r.attrs) != 1 || r.attrs[0].key != "payment.method" {
		t.Errorf("rule = %+v", r)
	}
}

// TestParseErrorsNameTheLine: every refusal names the line of the offending value and
// says why.
func TestParseErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct {
		name, edit, with string
		line             int
		reason           string
		syntax           bool
	}{
		{"bad condition", "error_rate > 0.05   # or: error_count > 10", "error_ratio > 0.05", 10, "condition", false},
		{"rate above 1", "error_rate > 0.05   # or: error_count > 10", "error_rate > 5", 10, "fraction", false},
		{"bad window", "window: 1m", "window: soon", 11, "window", false},
		{"bad for", "for: 0s", "for: -1s", 12, "for", false},
		{"bad regex", "payment.method: card", `payment.method: "=~(card"`, 9, "regular expression", false},
		{"unknown key", "window: 1m", "windw: 1m", 11, "windw", false},
		{"no alert name", "- alert: CardDeclinesHigh", "- alert: \"\"", 4, "alert", false},
		{"bad label", "labels: {severity: page}", "labels: {bad-label: page}", 13, "label name", false},
		// yaml.v3 reports a syntax error at the line where the construct that failed
		// started, counted from 0 in some cases: the flow sequence opened on line 5.
		{"not yaml", "match:", "match: [", 5, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(issueRules, tc.edit, tc.with, 1)
			if doc == issueRules {
				t.Fatalf("edit %q not found", tc.edit)
			}
			_, err := ParseRules([]byte(doc))
			if err == nil {
				t.Fatal("accepted")
			}
			ok := strings.HasPrefix(err.Error(), strconv.Itoa(tc.line)+": ")
			if tc.syntax {
				ok = ok || strings.HasPrefix(err.Error(), strconv.Itoa(tc.line-1)+": ")
			}
			if !ok {
				t.Errorf("error %q does not start with line %d", err, tc.line)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q does not say %q", err, tc.reason)
			}
		})
	}
}

func TestLoadFileNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(issueRules, "window: 1m", "window: 0s", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.RulesFile = path
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), path+":11: ") || !strings.Contains(err.Error(), "window") {
		t.Fatalf("Validate = %v, want file:11: and the reason", err)
	}
	cfg.RulesFile = filepath.Join(t.TempDir(), "missing.yaml")
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("Validate(missing file) = %v", err)
	}
}

func TestConfigGroupsAndDuplicates(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Groups = []GroupConfig{{Name: "g", Rules: []RuleConfig{
		{Alert: "A", Match: MatchConfig{Service: "=~pay.*"}, Condition: "error_count > 3", Window: "10s"},
		{Alert: "A", Condition: "error_count > 3", Window: "10s"},
	}}}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("Validate(duplicate) = %v", err)
	}
	cfg.Groups[0].Rules = cfg.Groups[0].Rules[:1]
	cfg.Webhook = "ftp://x"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "webhook") {
		t.Fatalf("Validate(ftp webhook) = %v", err)
	}
	cfg.Webhook = "http://127.0.0.1:9093/api/v2/alerts"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}
