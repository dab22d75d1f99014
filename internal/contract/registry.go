package contract

import (
	"fmt"
	"sort"
	"strings"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// Plugin is a plugin as a registry knows it: the host's plugin process, or
// the plugins a plugintest Runtime started.
type Plugin interface {
	comparable
	Name() string
	// Manifest is what the plugin declared in Describe; nil when it is not
	// running.
	Manifest() *pb.Manifest
}

// Registry is one agent's view of its plugins' manifests: which plugin
// serves which action, provider, evaluator, model, event and source.
type Registry[P Plugin] struct {
	// Plugins are the agent's plugins, in the character's order.
	Plugins    []P
	Actions    []ActionEntry[P]
	Providers  []ProviderEntry[P] // sorted by position, stable
	Evaluators []EvaluatorEntry[P]
	Models     map[string][]ModelEntry[P] // by type, best first
	Events     map[string][]P
	Sources    map[string]P
	// DB is the first plugin that serves the Database service, or the
	// zero P.
	DB P

	actionNames string
	actionsText string
}

// ActionEntry is an action and the plugin that serves it.
type ActionEntry[P Plugin] struct {
	Spec   *pb.ActionSpec
	Plugin P
}

// ProviderEntry is a provider and the plugin that serves it.
type ProviderEntry[P Plugin] struct {
	Spec   *pb.ProviderSpec
	Plugin P
}

// EvaluatorEntry is an evaluator and the plugin that serves it.
type EvaluatorEntry[P Plugin] struct {
	Spec   *pb.EvaluatorSpec
	Plugin P
}

// ModelEntry is a model type a plugin serves, with its priority.
type ModelEntry[P Plugin] struct {
	Type     string
	Priority int32
	Plugin   P
}

// NewRegistry merges manifests in the character's plugin order. For
// actions and sources the first plugin wins a name; models are ranked by
// priority, then by plugin order, as elizaOS does.
func NewRegistry[P Plugin](plugins []P) (*Registry[P], error) {
	r := &Registry[P]{Plugins: plugins, Models: map[string][]ModelEntry[P]{}, Events: map[string][]P{}, Sources: map[string]P{}}
	seenAction := map[string]bool{}
	var none P
	for _, p := range plugins {
		m := p.Manifest()
		if m == nil {
			return nil, fmt.Errorf("plugin %s has no manifest (is it running?)", p.Name())
		}
		if m.GetDatabase() && r.DB == none {
			r.DB = p
		}
		for _, a := range m.GetActions() {
			if seenAction[a.GetName()] {
				continue
			}
			seenAction[a.GetName()] = true
			r.Actions = append(r.Actions, ActionEntry[P]{Spec: a, Plugin: p})
		}
		for _, pr := range m.GetProviders() {
			r.Providers = append(r.Providers, ProviderEntry[P]{Spec: pr, Plugin: p})
		}
		for _, e := range m.GetEvaluators() {
			r.Evaluators = append(r.Evaluators, EvaluatorEntry[P]{Spec: e, Plugin: p})
		}
		for _, md := range m.GetModels() {
			r.Models[md.GetType()] = append(r.Models[md.GetType()], ModelEntry[P]{Type: md.GetType(), Priority: md.GetPriority(), Plugin: p})
		}
		for _, ev := range m.GetEvents() {
			r.Events[ev] = append(r.Events[ev], p)
		}
		for _, s := range m.GetMessageSources() {
			if _, ok := r.Sources[s]; !ok {
				r.Sources[s] = p
			}
		}
	}
	if len(r.Actions) > 0 {
		var names []string
		var b strings.Builder
		b.WriteString("# Available Actions\n")
		for _, a := range r.Actions {
			names = append(names, a.Spec.GetName())
			fmt.Fprintf(&b, "- %s: %s\n", a.Spec.GetName(), a.Spec.GetDescription())
		}
		r.actionNames = strings.Join(names, ", ")
		r.actionsText = strings.TrimRight(b.String(), "\n")
	}
	sort.SliceStable(r.Providers, func(i, j int) bool {
		return r.Providers[i].Spec.GetPosition() < r.Providers[j].Spec.GetPosition()
	})
	for t := range r.Models {
		sort.SliceStable(r.Models[t], func(i, j int) bool { return r.Models[t][i].Priority > r.Models[t][j].Priority })
	}
	return r, nil
}

// Model picks the handler of a type: the named provider if asked, else the
// highest priority.
func (r *Registry[P]) Model(typ, provider string) (P, error) {
	var none P
	list := r.Models[typ]
	if len(list) == 0 {
		return none, fmt.Errorf("no plugin of this agent serves model type %s (plugins: %s)", typ, r.PluginNames())
	}
	if provider != "" {
		for _, e := range list {
			if e.Plugin.Name() == provider {
				return e.Plugin, nil
			}
		}
		return none, fmt.Errorf("plugin %s does not serve model type %s for this agent", provider, typ)
	}
	return list[0].Plugin, nil
}

// PluginNames lists the agent's plugins, comma separated.
func (r *Registry[P]) PluginNames() string {
	names := make([]string, len(r.Plugins))
	for i, p := range r.Plugins {
		names[i] = p.Name()
	}
	return strings.Join(names, ", ")
}

// Has reports whether p is one of the agent's plugins.
func (r *Registry[P]) Has(p P) bool {
	for _, q := range r.Plugins {
		if q == p {
			return true
		}
	}
	return false
}

// NormalizeAction makes "Send_Message", "send message" and "SENDMESSAGE"
// the same name.
func NormalizeAction(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(s)) {
		if r == '_' || r == ' ' || r == '-' {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ResolveAction finds the action a name means, as ResolveActionName
// does; nil when none.
func (r *Registry[P]) ResolveAction(name string) *ActionEntry[P] {
	i := ResolveActionName(name, len(r.Actions), func(i int) (string, []string) {
		return r.Actions[i].Spec.GetName(), r.Actions[i].Spec.GetSimiles()
	})
	if i < 0 {
		return nil
	}
	return &r.Actions[i]
}

// ResolveActionName finds which of n actions a name (as a model wrote it)
// means, the way elizaOS does, minus its false positives: the exact name
// (NormalizeAction on both sides), then an exact simile, then a name that
// contains the other or is contained in it, only when just one action
// does. action(i) gives the name and similes of the i-th action. It
// returns the index, or -1.
func ResolveActionName(name string, n int, action func(i int) (name string, similes []string)) int {
	want := NormalizeAction(name)
	if want == "" {
		return -1
	}
	norms := make([]string, n)
	for i := range n {
		a, _ := action(i)
		norms[i] = NormalizeAction(a)
		if norms[i] == want {
			return i
		}
	}
	for i := range n {
		_, similes := action(i)
		for _, s := range similes {
			if NormalizeAction(s) == want {
				return i
			}
		}
	}
	found := -1
	for i, norm := range norms {
		if norm != "" && (strings.Contains(norm, want) || strings.Contains(want, norm)) {
			if found >= 0 {
				return -1
			}
			found = i
		}
	}
	return found
}

// ActionValues describe the agent's actions for prompts (actionNames,
// actionsText). Only the host knows every plugin's actions, so it adds them
// to every composed state.
func (r *Registry[P]) ActionValues() map[string]any {
	if r.actionsText != "" {
		return map[string]any{"actionNames": r.actionNames, "actionsText": r.actionsText}
	}
	return nil
}

// ByPlugin groups names per plugin, the plugins in the order they first
// appear: one call per plugin serves them.
type ByPlugin[P Plugin] struct {
	Order []P
	Names map[P][]string
}

func (g *ByPlugin[P]) add(p P, name string) {
	if g.Names == nil {
		g.Names = map[P][]string{}
	}
	if _, ok := g.Names[p]; !ok {
		g.Order = append(g.Order, p)
	}
	g.Names[p] = append(g.Names[p], name)
}

// ActionsToValidate groups the actions to ask about, per plugin: those
// among names, or every action when names is empty.
func (r *Registry[P]) ActionsToValidate(names []string) ByPlugin[P] {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var g ByPlugin[P]
	for _, e := range r.Actions {
		if len(want) == 0 || want[e.Spec.GetName()] {
			g.add(e.Plugin, e.Spec.GetName())
		}
	}
	return g
}

// ValidActions lists, in the agent's order, the actions among valid that
// were asked about (all when names is empty).
func (r *Registry[P]) ValidActions(names []string, valid map[string]bool) []string {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []string
	for _, e := range r.Actions {
		if valid[e.Spec.GetName()] && (len(want) == 0 || want[e.Spec.GetName()]) {
			out = append(out, e.Spec.GetName())
		}
	}
	return out
}

// EvaluatorsToRun groups the evaluators that run after a message, per
// plugin: all of them when the agent responded, else the AlwaysRun ones.
func (r *Registry[P]) EvaluatorsToRun(didRespond bool) ByPlugin[P] {
	var g ByPlugin[P]
	for _, e := range r.Evaluators {
		if didRespond || e.Spec.GetAlwaysRun() {
			g.add(e.Plugin, e.Spec.GetName())
		}
	}
	return g
}
