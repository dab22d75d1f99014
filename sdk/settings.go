package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/internal/boundedmap"
	"github.com/hashicorp/go-hclog"
)

// pluginScope is what every agent of a plugin process shares about the
// plugin: its name, its declared settings and its loggers.
type pluginScope struct {
	name     string
	declared map[string]Setting
	// log is the SDK's, given to the server; pluginLog is the plugin's
	// own ([Plugin.Logger]) if it has one, else the same.
	log, pluginLog hclog.Logger
	// warned remembers the undeclared settings already warned about.
	warned sync.Map
	// described holds DescribeAgent's answer by plugin set.
	described sync.Map
	// describing holds the DescribeAgent calls under way, by plugin set,
	// and describedSoon the plugin sets asked for at Configure.
	describing, describedSoon sync.Map
	// providers are the plugin's own, by name, and states the states
	// composed from them in this process (compose.go), kept for the
	// messages whose handlers run (handling, by state key, counts them).
	providers  map[string]*Provider
	states     *boundedmap.Map[*State]
	handlingMu sync.Mutex
	handling   map[string]int
}

func newPluginScope(p *Plugin, log hclog.Logger) *pluginScope {
	s := &pluginScope{name: p.Name, declared: map[string]Setting{}, log: log, pluginLog: log,
		states: boundedmap.New[*State](maxLocalStates), handling: map[string]int{}}
	if p.Logger != nil {
		s.pluginLog = p.Logger
	}
	for _, st := range p.Settings {
		s.declared[st.Name] = st
	}
	s.providers = map[string]*Provider{}
	for i := range p.Providers {
		if p.Providers[i].Get != nil {
			s.providers[p.Providers[i].Name] = &p.Providers[i]
		}
	}
	return s
}

// check warns, once per name, about a plugin reading a setting its
// manifest does not declare: the host never sends it, so it is always "".
func (s *pluginScope) check(key string) {
	if _, ok := s.declared[key]; ok {
		return
	}
	if _, seen := s.warned.LoadOrStore(key, true); !seen {
		s.log.Warn("plugin reads a setting which its manifest does not declare, so the host never sends it; add it to the plugin's Settings",
			"setting", key)
	}
}

// missingRequired names the first Required setting a has no value for. It
// runs before the plugin's Configure, so that no plugin has to check.
func (s *pluginScope) missingRequired(p *Plugin, a *Agent) error {
	for _, st := range p.Settings {
		if !st.Required || strings.TrimSpace(a.Settings[st.Name]) != "" {
			continue
		}
		what := ""
		if st.Description != "" {
			what = " (" + strings.TrimSuffix(st.Description, ".") + ")"
		}
		where := "settings"
		if st.Secret {
			where = "secrets"
		}
		return invalidf("the setting %s%s is required, and agent %s does not have it: set it in the character's %s or in the daemon's environment (.env)",
			st.Name, what, agentLabel(a), where)
	}
	return nil
}

// validateSettings catches mistakes in the declarations at start.
func validateSettings(p *Plugin) error {
	seen := map[string]bool{}
	for _, st := range p.Settings {
		if strings.TrimSpace(st.Name) == "" {
			return fmt.Errorf("plugin %s: a setting has an empty name", p.Name)
		}
		if seen[st.Name] {
			return fmt.Errorf("plugin %s: setting %s is declared twice", p.Name, st.Name)
		}
		seen[st.Name] = true
		if st.Required && st.Default != "" {
			// A default would never be used: a required setting that is
			// missing stops the agent.
			return fmt.Errorf("plugin %s: setting %s is Required and has a Default; keep one of them", p.Name, st.Name)
		}
	}
	return nil
}

// agentLabel names an agent in a message: its name and id, or the id.
func agentLabel(a *Agent) string {
	if n := a.Name(); n != "" && n != a.ID {
		return n + " (" + a.ID + ")"
	}
	return a.ID
}

// Config reads an agent's settings as typed values: a setting that is not
// set has the Default its [Setting] declares, and a value that does not
// parse is a problem that names the setting. Problems do not stop the
// reads: each getter returns the default instead, and [Config.Err] reports
// them all, so a Configure reads everything and then decides:
//
//	c := a.Config()
//	s := settings{units: c.String("WEATHER_UNITS"), every: c.Duration("WEATHER_EVERY", time.Minute)}
//	if err := c.Err(); err != nil {
//		return s, nil, err // the agent does not start, and the error says why
//	}
//
// A Required setting needs no check: an agent without it is stopped before
// the plugin's Configure runs. Values are trimmed of surrounding spaces; an
// empty value counts as not set. An Agent made outside the SDK (a unit
// test's &sdk.Agent{...}) knows no declarations, so it has no defaults: test
// through sdk/plugintest. A Config is meant for one goroutine.
type Config struct {
	a        *Agent
	problems []settingProblem
}

type settingProblem struct {
	name, why string
	// fallback is the value used instead, for [Config.Warnings].
	fallback string
}

// Config returns a reader of a's settings; see [Config].
func (a *Agent) Config() *Config { return &Config{a: a} }

// value returns the setting's value, else its declared default; set tells
// which.
func (c *Config) value(name string) (v string, set bool) {
	v = strings.TrimSpace(c.a.Setting(name))
	if v != "" {
		return v, true
	}
	return c.defaultOf(name), false
}

func (c *Config) defaultOf(name string) string {
	if c.a.plugin == nil {
		return ""
	}
	return strings.TrimSpace(c.a.plugin.declared[name].Default)
}

// read parses the setting with parse. A bad value is a problem, and the
// default is used instead; a default that does not parse is the plugin's
// own bug, reported the same way, with the zero value used.
func read[T any](c *Config, name, kind string, parse func(string) (T, bool)) T {
	v, set := c.value(name)
	var zero T
	if v == "" {
		return zero
	}
	if out, ok := parse(v); ok {
		return out
	}
	if !set {
		c.problems = append(c.problems, settingProblem{name: name,
			why: fmt.Sprintf("the plugin's declared default %q is not %s", v, kind)})
		return zero
	}
	def := c.defaultOf(name)
	out, ok := parse(def)
	if !ok {
		out, def = zero, ""
	}
	c.problems = append(c.problems, settingProblem{name: name, why: fmt.Sprintf("%q is not %s", v, kind), fallback: def})
	return out
}

// Has reports whether the setting has a value of its own, as opposed to
// its default: for a plugin that looks elsewhere before the default.
func (c *Config) Has(name string) bool {
	_, set := c.value(name)
	return set
}

// String returns the setting, or its default.
func (c *Config) String(name string) string {
	v, _ := c.value(name)
	return v
}

// Int returns the setting as a whole number.
func (c *Config) Int(name string) int {
	return c.IntBetween(name, math.MinInt, math.MaxInt)
}

// IntBetween returns the setting as a whole number from min to max; a
// number outside is a bad value.
func (c *Config) IntBetween(name string, min, max int) int {
	kind := "a whole number"
	switch {
	case min != math.MinInt && max != math.MaxInt:
		kind = fmt.Sprintf("a whole number from %d to %d", min, max)
	case min != math.MinInt:
		kind = fmt.Sprintf("a whole number of at least %d", min)
	case max != math.MaxInt:
		kind = fmt.Sprintf("a whole number of at most %d", max)
	}
	return read(c, name, kind, func(s string) (int, bool) {
		n, err := strconv.Atoi(s)
		return n, err == nil && n >= min && n <= max
	})
}

// Float returns the setting as a number.
func (c *Config) Float(name string) float64 {
	return read(c, name, "a number", func(s string) (float64, bool) {
		f, err := strconv.ParseFloat(s, 64)
		return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
	})
}

// Bool returns the setting as true or false; true, yes, on and 1 are true,
// false, no, off and 0 are false, in any case.
func (c *Config) Bool(name string) bool {
	return read(c, name, "true or false", parseBool)
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "yes", "on", "1":
		return true, true
	case "false", "no", "off", "0":
		return false, true
	}
	return false, false
}

// Duration returns the setting as a duration: a Go duration such as
// "1m30s", or a plain number counted in unit ("1500" with
// time.Millisecond). Negative durations are bad values.
func (c *Config) Duration(name string, unit time.Duration) time.Duration {
	kind := "a duration such as 1m30s"
	if u := unitName(unit); u != "" {
		kind = "a number of " + u + " or a duration such as 1m30s"
	}
	return read(c, name, kind, func(s string) (time.Duration, bool) {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			d := f * float64(unit)
			return time.Duration(d), f >= 0 && d <= math.MaxInt64
		}
		d, err := time.ParseDuration(s)
		return d, err == nil && d >= 0
	})
}

func unitName(u time.Duration) string {
	switch u {
	case time.Millisecond:
		return "milliseconds"
	case time.Second:
		return "seconds"
	case time.Minute:
		return "minutes"
	case time.Hour:
		return "hours"
	}
	return ""
}

// List returns the setting as a list: a JSON array of strings and numbers
// (`["a", 2]`), or items separated by commas (`a, b`). Blank items are
// dropped; nil means not set.
func (c *Config) List(name string) []string {
	return read(c, name, "a list (a JSON array, or items separated by commas)", parseList)
}

func parseList(s string) ([]string, bool) {
	var items []string
	if strings.HasPrefix(s, "[") {
		d := json.NewDecoder(bytes.NewReader([]byte(s)))
		d.UseNumber()
		var raw []any
		if err := d.Decode(&raw); err == nil && !d.More() {
			for _, x := range raw {
				switch x := x.(type) {
				case string:
					items = append(items, x)
				case json.Number:
					items = append(items, x.String())
				default:
					return nil, false
				}
			}
			return cleanItems(items), true
		}
		// Not JSON: [a, b] as people write it in a .env.
		s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	}
	for _, it := range strings.Split(s, ",") {
		items = append(items, strings.Trim(strings.TrimSpace(it), `"'`))
	}
	return cleanItems(items), true
}

func cleanItems(items []string) []string {
	var out []string
	for _, it := range items {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out
}

// Err returns the problems met so far, one per bad setting, each naming
// the setting and its value; nil if there were none. They wrap [ErrInvalid].
func (c *Config) Err() error {
	if len(c.problems) == 0 {
		return nil
	}
	errs := make([]error, len(c.problems))
	for i, p := range c.problems {
		errs[i] = invalidf("setting %s: %s", p.name, p.why)
	}
	return errors.Join(errs...)
}

// Warnings returns the same problems as [Config.Err] as warnings for
// Configure, each saying which value is used instead: for a plugin that
// runs on with its defaults rather than stop the agent.
func (c *Config) Warnings() []string {
	var out []string
	for _, p := range c.problems {
		w := fmt.Sprintf("setting %s: %s", p.name, p.why)
		if p.fallback != "" {
			w += fmt.Sprintf("; using the default, %s", p.fallback)
		} else {
			w += "; ignored"
		}
		out = append(out, w)
	}
	return out
}

// invalidError is a bad-input error whose text is only its message: it
// matches [ErrInvalid] without saying "invalid" in every line a user reads.
type invalidError struct{ msg string }

func invalidf(format string, args ...any) error { return invalidError{fmt.Sprintf(format, args...)} }

func (e invalidError) Error() string        { return e.msg }
func (e invalidError) Is(target error) bool { return target == ErrInvalid }
