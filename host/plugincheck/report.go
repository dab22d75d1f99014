package plugincheck

import (
	"fmt"
	"io"
	"strings"
)

// Status is how a check ended.
type Status string

// The statuses. Only a report whose every check passed passes.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	// Skip: an earlier failure left nothing to check.
	Skip Status = "skip"
)

// Result is one check.
type Result struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// DurationMS is how long the check took, in milliseconds.
	DurationMS float64 `json:"durationMs"`
	// Reason says what passed or what failed, in a sentence.
	Reason string `json:"reason"`
	// Details are the check's findings one by one (each provider with its
	// time, each line that did not parse, …).
	Details []string `json:"details,omitempty"`
}

// Report is the outcome of every check of one plugin.
type Report struct {
	// Path is the executable checked; Plugin its name (the NAME of
	// agenthost-plugin-NAME).
	Path   string `json:"path"`
	Plugin string `json:"plugin"`
	// Confinement says what held the plugin's process, as in the daemon.
	Confinement string   `json:"confinement"`
	Passed      bool     `json:"passed"`
	Checks      []Result `json:"checks"`
}

// Failed returns the checks that did not pass.
func (r *Report) Failed() []Result {
	var out []Result
	for _, c := range r.Checks {
		if c.Status != Pass {
			out = append(out, c)
		}
	}
	return out
}

// WriteText writes the report for a terminal: a line per check, its
// details indented under it, then one line per failure, "check: reason".
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "agenthost plugins check %s\n", r.Path)
	fmt.Fprintf(&b, "plugin %s, confined as in the daemon: %s\n\n", r.Plugin, r.Confinement)
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.Name))
	}
	for _, c := range r.Checks {
		took := "-"
		if c.Status != Skip {
			took = fmt.Sprintf("%.1fms", c.DurationMS)
		}
		fmt.Fprintf(&b, "%-4s  %-*s  %8s  %s\n", strings.ToUpper(string(c.Status)), width, c.Name, took, c.Reason)
		for _, d := range c.Details {
			fmt.Fprintf(&b, "      %*s  %8s  - %s\n", width, "", "", d)
		}
	}
	failed := r.Failed()
	fmt.Fprintf(&b, "\n%d of %d checks passed\n", len(r.Checks)-len(failed), len(r.Checks))
	for _, c := range failed {
		if c.Status == Fail {
			fmt.Fprintf(&b, "%s: %s\n", c.Name, c.Reason)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// count is "1 provider", "2 providers".
func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
