package offline

import (
	"context"
	"strings"
	"sync"
	"unicode"

	"github.com/agenthost/agenthost/sdk"
)

// headActions is the heading under which a prompt lists the actions the
// agent may take, one per line as "- NAME: description".
const headActions = "available actions"

// similes holds, per agent id, the other names of each of the agent's
// actions, read once from the host (DescribeAgent) and forgotten when the
// agent is configured again: its plugins, and so its actions, only change
// then.
var similes sync.Map // agent id → map[string][]string

func forgetActions(_ context.Context, a *sdk.Agent) {
	if a != nil {
		similes.Delete(a.ID)
	}
}

// actionSimiles returns the similes of the agent's actions by action name.
// Without an agent, or when the host cannot say, there are none: actions
// are then named only by their names.
func actionSimiles(ctx context.Context, a *sdk.Agent) map[string][]string {
	if a == nil {
		return nil
	}
	if v, ok := similes.Load(a.ID); ok {
		return v.(map[string][]string)
	}
	info, err := a.DescribeAgent(ctx)
	if err != nil {
		return nil
	}
	m := map[string][]string{}
	for _, act := range info.Actions() {
		m[act.Name] = act.Similes
	}
	similes.Store(a.ID, m)
	return m
}

// chooseActions decides the actions of an answer: REPLY (the engine's text
// is always sent), then each offered action the message names, by its
// name or one of its similes, in the order the message names them. A name
// is named when its words ("SEND_MESSAGE" is "send message") stand in the
// message in a row, in any case and inflected or not ("wave", "waves",
// "waving" and "waved" all name WAVE).
func chooseActions(offered []string, sims map[string][]string, input string) []string {
	words := stems(input)
	type hit struct {
		name string
		at   int
	}
	var hits []hit
	for _, name := range offered {
		at := -1
		for _, n := range append([]string{name}, sims[name]...) {
			if i := indexWords(words, stems(n)); i >= 0 && (at < 0 || i < at) {
				at = i
			}
		}
		if at >= 0 && name != "REPLY" {
			hits = append(hits, hit{name, at})
		}
	}
	// Stable by position: names at the same place keep the prompt's order.
	for i := 1; i < len(hits); i++ {
		for j := i; j > 0 && hits[j].at < hits[j-1].at; j-- {
			hits[j], hits[j-1] = hits[j-1], hits[j]
		}
	}
	out := []string{"REPLY"}
	for _, h := range hits {
		out = append(out, h.name)
	}
	return out
}

// indexWords is where the words of want first stand in a row in words, or
// -1.
func indexWords(words, want []string) int {
	if len(want) == 0 {
		return -1
	}
	for i := 0; i+len(want) <= len(words); i++ {
		match := true
		for j, w := range want {
			if words[i+j] != w {
				match = false
				break
			}
		}
		if match {
			return i
		}
	}
	return -1
}

// stems splits s into lower-case words (letters and digits; "_" separates,
// so that action names split too) and strips common English endings, so
// that inflections of one word compare equal.
func stems(s string) []string {
	f := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	for i, w := range f {
		f[i] = stem(w)
	}
	return f
}

func stem(w string) string {
	for _, suffix := range []string{"ing", "ed", "es", "s", "e"} {
		if len(w) > len(suffix)+2 && strings.HasSuffix(w, suffix) {
			return strings.TrimSuffix(w, suffix)
		}
	}
	return w
}

// offeredActions reads the action names listed under "# Available
// Actions".
func offeredActions(lines []string) []string {
	var out []string
	for _, line := range lines {
		line, item := strings.CutPrefix(strings.TrimSpace(line), "- ")
		if !item {
			continue // a description that runs over a line
		}
		name, _, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			continue
		}
		out = append(out, name)
	}
	return out
}
