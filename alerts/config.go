package alerts

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config configures alert evaluation and delivery.
type Config struct {
	// RulesFile is a YAML file of rule groups (SPOOR_ALERT_RULES); empty for none.
	RulesFile string `mapstructure:"rules_file"`
	// Groups are rules written in the collector config, in the same form as the file.
	Groups []GroupConfig `mapstructure:"groups"`
	// Webhook is the URL notifications are POSTed to (SPOOR_ALERT_WEBHOOK), for an
	// Alertmanager http://HOST:9093/api/v2/alerts. Empty: rules are evaluated and
	// listed, nothing is sent.
	Webhook string `mapstructure:"webhook"`
	// UIURL is the base of the generatorURL of notifications: the example trace opens
	// at UIURL/trace/<id>. "host:port" means http://host:port.
	UIURL string `mapstructure:"ui_url"`
	// EvaluationInterval is how often every rule is evaluated besides on arrival.
	EvaluationInterval time.Duration `mapstructure:"evaluation_interval"`
	// ResendInterval is how often a firing alert is sent again.
	ResendInterval time.Duration `mapstructure:"resend_interval"`
	// Timeout bounds one webhook POST.
	Timeout time.Duration `mapstructure:"timeout"`
	// Backoff after a failed delivery starts at InitialBackoff and doubles up to
	// MaxBackoff.
	InitialBackoff time.Duration `mapstructure:"initial_backoff"`
	MaxBackoff     time.Duration `mapstructure:"max_backoff"`
	// After BreakerFailures failed deliveries in a row the circuit opens: nothing is
	// tried for BreakerCooldown, then one delivery probes the webhook.
	BreakerFailures int           `mapstructure:"breaker_failures"`
	BreakerCooldown time.Duration `mapstructure:"breaker_cooldown"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		EvaluationInterval: time.Second,
		ResendInterval:     time.Minute,
		Timeout:            5 * time.Second,
		InitialBackoff:     250 * time.Millisecond,
		MaxBackoff:         30 * time.Second,
		BreakerFailures:    5,
		BreakerCooldown:    30 * time.Second,
	}
}

// GroupConfig is a named group of rules.
type GroupConfig struct {
	Name  string       `mapstructure:"name" yaml:"name"`
	Rules []RuleConfig `mapstructure:"rules" yaml:"rules"`
}

// RuleConfig is one rule as written.
type RuleConfig struct {
	Alert string      `mapstructure:"alert" yaml:"alert"`
	Match MatchConfig `mapstructure:"match" yaml:"match"`
	// Condition is "error_rate > X" (X a fraction, 0 to 1) or "error_count > N"
	// (weighted error spans in the window); >= is accepted too.
	Condition   string            `mapstructure:"condition" yaml:"condition"`
	Window      string            `mapstructure:"window" yaml:"window"`
	For         string            `mapstructure:"for" yaml:"for"`
	Labels      map[string]string `mapstructure:"labels" yaml:"labels"`
	Annotations map[string]string `mapstructure:"annotations" yaml:"annotations"`
}

// MatchConfig selects spans. Every value is an equality, or "=~regex" (the whole
// value must match), or "!=value".
type MatchConfig struct {
	Service    string            `mapstructure:"service" yaml:"service"`
	Operation  string            `mapstructure:"operation" yaml:"operation"`
	Attributes map[string]string `mapstructure:"attributes" yaml:"attributes"`
}

type ruleFile struct {
	Groups []GroupConfig `yaml:"groups"`
}

// Validate checks the config, reading and checking the rules file.
func (c *Config) Validate() error {
	var errs []error
	if c.Webhook != "" {
		u, err := url.Parse(c.Webhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("webhook %q must be an http or https URL", c.Webhook))
		}
	}
	if c.EvaluationInterval <= 0 || c.ResendInterval <= 0 || c.Timeout <= 0 || c.InitialBackoff <= 0 ||
		c.MaxBackoff < c.InitialBackoff || c.BreakerFailures <= 0 || c.BreakerCooldown <= 0 {
		errs = append(errs, errors.New("evaluation_interval, resend_interval, timeout, initial_backoff, breaker_failures and breaker_cooldown must be positive, max_backoff at least initial_backoff"))
	}
	if _, err := c.Rules(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Rules compiles the rules of the file and of the config, checking names are unique.
func (c *Config) Rules() ([]*Rule, error) {
	var rules []*Rule
	if c.RulesFile != "" {
		r, err := LoadFile(c.RulesFile)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r...)
	}
	for gi, g := range c.Groups {
		for ri, rc := range g.Rules {
			r, err := compile(g.Name, rc)
			if err != nil {
				return nil, fmt.Errorf("alerts.groups[%d] (%s) rule %d (%s): %w", gi, g.Name, ri, rc.Alert, err)
			}
			rules = append(rules, r)
		}
	}
	seen := map[string]bool{}
	for _, r := range rules {
		k := r.Group + "\x00" + r.Name
		if seen[k] {
			return nil, fmt.Errorf("alert %q appears twice in group %q", r.Name, r.Group)
		}
		seen[k] = true
	}
	return rules, nil
}

// LoadFile reads and compiles a rules file. Errors name the file and the line.
func LoadFile(path string) ([]*Rule, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("alert rules file: %w", err)
	}
	rules, err := ParseRules(b)
	if err != nil {
		return nil, fmt.Errorf("alert rules file %s:%w", path, err)
	}
	return rules, nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// ParseRules compiles a rules document. An error starts with "LINE: " (the line of the
// offending value) followed by the reason.
func ParseRules(b []byte) ([]*Rule, error) {
	var f ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file: no rules
		}
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			err = errors.New(te.Errors[0])
		}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			return nil, fmt.Errorf("%s: %s", m[1], m[2])
		}
		return nil, fmt.Errorf("1: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("1: %w", err)
	}
	groups := lookup(docNode(&root), "groups")
	var rules []*Rule
	for gi, g := range f.Groups {
		gn := seqItem(groups, gi)
		if g.Name == "" {
			return nil, fmt.Errorf("%d: group %d has no name", line(gn), gi+1)
		}
		rulesNode := lookup(gn, "rules")
		for ri, rc := range g.Rules {
			rn := seqItem(rulesNode, ri)
			r, err := compile(g.Name, rc)
			if err != nil {
				var fe *fieldError
				at := line(rn)
				if errors.As(err, &fe) {
					at = line(lookupPath(rn, fe.path...))
				}
				name := rc.Alert
				if name == "" {
					name = "#" + strconv.Itoa(ri+1)
				}
				return nil, fmt.Errorf("%d: group %q, rule %s: %w", at, g.Name, name, err)
			}
			rules = append(rules, r)
		}
	}
	return rules, nil
}

// fieldError names the key of a rule that is wrong, to find its line.
type fieldError struct {
	path []string
	err  error
}

func (e *fieldError) Error() string { return strings.Join(e.path, ".") + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

func fieldErr(err error, path ...string) error { return &fieldError{path: path, err: err} }

func docNode(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		return n.Content[0]
	}
	return n
}

func lookup(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func lookupPath(n *yaml.Node, path ...string) *yaml.Node {
	best := n
	for _, k := range path {
		next := lookup(best, k)
		if next == nil {
			return best
		}
		best = next
	}
	return best
}

func seqItem(n *yaml.Node, i int) *yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode || i >= len(n.Content) {
		return n
	}
	return n.Content[i]
}

func line(n *yaml.Node) int {
	if n == nil {
		return 1
	}
	return n.Line
}
