package alerts

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Rule is a compiled rule. Its evaluation state lives in the Engine.
type Rule struct {
	Group       string
	Name        string
	Condition   string
	Window      time.Duration
	For         time.Duration
	Labels      map[string]string
	Annotations map[string]string

	service, operation matcher
	attrs              []attrMatcher
	byRate             bool // error_rate, else error_count
	strict             bool // >, else >=
	threshold          float64
}

type matchOp uint8

const (
	opAny matchOp = iota
	opEqual
	opNotEqual
	opRegex
)

// matcher is one selector value: "x", "!=x" or "=~re".
type matcher struct {
	op    matchOp
	value string
	re    *regexp.Regexp
}

type attrMatcher struct {
	key string
	matcher
}

func parseMatcher(s string) (matcher, error) {
	switch {
	case s == "":
		return matcher{op: opAny}, nil
	case strings.HasPrefix(s, "=~"):
		re, err := regexp.Compile("^(?:" + s[2:] + ")$")
		if err != nil {
			return matcher{}, fmt.Errorf("bad regular expression %q: %w", s[2:], err)
		}
		return matcher{op: opRegex, value: s[2:], re: re}, nil
	case strings.HasPrefix(s, "!="):
		return matcher{op: opNotEqual, value: s[2:]}, nil
	}
	return matcher{op: opEqual, value: s}, nil
}

// match reports whether a value satisfies the matcher; present is false when the
// attribute is absent (which satisfies only a negation).
func (m *matcher) match(v string, present bool) bool {
	switch m.op {
	case opAny:
		return true
	case opEqual:
		return present && v == m.value
	case opNotEqual:
		return !present || v != m.value
	case opRegex:
		return present && m.re.MatchString(v)
	}
	return false
}

var conditionRE = regexp.MustCompile(`^\s*(error_rate|error_count)\s*(>=|>)\s*([0-9.eE+-]+)\s*$`)

func compile(group string, rc RuleConfig) (*Rule, error) {
	if rc.Alert == "" {
		return nil, fieldErr(errors.New("alert (the rule's name) must be set"), "alert")
	}
	if !labelNameRE.MatchString(rc.Alert) {
		return nil, fieldErr(fmt.Errorf("alert name %q must match %s", rc.Alert, labelNameRE), "alert")
	}
	r := &Rule{Group: group, Name: rc.Alert, Condition: strings.TrimSpace(rc.Condition),
		Labels: maps.Clone(rc.Labels), Annotations: maps.Clone(rc.Annotations)}
	var err error
	if r.service, err = parseMatcher(rc.Match.Service); err != nil {
		return nil, fieldErr(err, "match", "service")
	}
	if r.operation, err = parseMatcher(rc.Match.Operation); err != nil {
		return nil, fieldErr(err, "match", "operation")
	}
	for _, k := range sortedKeys(rc.Match.Attributes) {
		m, err := parseMatcher(rc.Match.Attributes[k])
		if err != nil {
			return nil, fieldErr(fmt.Errorf("attribute %s: %w", k, err), "match", "attributes", k)
		}
		if m.op == opAny {
			return nil, fieldErr(fmt.Errorf("attribute %s: empty value (write the value to match, =~regex or !=value)", k), "match", "attributes", k)
		}
		r.attrs = append(r.attrs, attrMatcher{key: k, matcher: m})
	}
	c := conditionRE.FindStringSubmatch(rc.Condition)
	if c == nil {
		return nil, fieldErr(fmt.Errorf("condition %q: want \"error_rate > X\" or \"error_count > N\"", rc.Condition), "condition")
	}
	r.byRate, r.strict = c[1] == "error_rate", c[2] == ">"
	if r.threshold, err = strconv.ParseFloat(c[3], 64); err != nil {
		return nil, fieldErr(fmt.Errorf("condition %q: bad number %q", rc.Condition, c[3]), "condition")
	}
	if r.byRate && (r.threshold < 0 || r.threshold >= 1) {
		return nil, fieldErr(fmt.Errorf("condition %q: an error rate threshold is a fraction in [0, 1)", rc.Condition), "condition")
	}
	if !r.byRate && r.threshold < 0 {
		return nil, fieldErr(fmt.Errorf("condition %q: a count threshold cannot be negative", rc.Condition), "condition")
	}
	if rc.Window == "" {
		return nil, fieldErr(errors.New("window must be set (e.g. 1m)"), "window")
	}
	if r.Window, err = time.ParseDuration(rc.Window); err != nil || r.Window < time.Second || r.Window > 24*time.Hour {
		return nil, fieldErr(fmt.Errorf("window %q must be a duration from 1s to 24h", rc.Window), "window")
	}
	if rc.For != "" {
		if r.For, err = time.ParseDuration(rc.For); err != nil || r.For < 0 {
			return nil, fieldErr(fmt.Errorf("for %q must be a non-negative duration", rc.For), "for")
		}
	}
	for k := range rc.Labels {
		if !labelNameRE.MatchString(k) {
			return nil, fieldErr(fmt.Errorf("label name %q must match %s", k, labelNameRE), "labels")
		}
		if k == "alertname" {
			return nil, fieldErr(errors.New("label alertname is set from alert"), "labels")
		}
	}
	for k := range rc.Annotations {
		if !labelNameRE.MatchString(k) {
			return nil, fieldErr(fmt.Errorf("annotation name %q must match %s", k, labelNameRE), "annotations")
		}
	}
	return r, nil
}

// labelNameRE is Prometheus' label name syntax, which Alertmanager enforces.
var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// insertion sort: a rule has a handful of attributes
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// matchesResource reports whether spans of this service can match the rule.
func (r *Rule) matchesService(service string) bool {
	return r.service.match(service, service != "")
}

// matchesSpan reports whether a span of a matching service matches the rest of the
// selector. Attributes are looked up on the span, then on its resource.
func (r *Rule) matchesSpan(name string, spanAttrs, resAttrs pcommon.Map) bool {
	if !r.operation.match(name, true) {
		return false
	}
	for i := range r.attrs {
		a := &r.attrs[i]
		v, ok := spanAttrs.Get(a.key)
		if !ok {
			v, ok = resAttrs.Get(a.key)
		}
		s := ""
		if ok {
			if v.Type() == pcommon.ValueTypeStr {
				s = v.Str()
			} else {
				s = v.AsString()
			}
		}
		if !a.match(s, ok) {
			return false
		}
	}
	return true
}

// exceeds reports whether the window's counts meet the condition, and the value.
func (r *Rule) exceeds(total, errs float64) (bool, float64) {
	v := errs
	if r.byRate {
		if total <= 0 {
			return false, 0
		}
		v = errs / total
	}
	if r.strict {
		return v > r.threshold, v
	}
	return v >= r.threshold, v
}
