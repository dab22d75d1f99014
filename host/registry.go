package host

import (
	"fmt"
	"sort"
	"strings"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// registry is one agent's view of its plugins' manifests: which plugin
// serves which action, provider, evaluator, model, event and source.
type registry struct {
	plugins    []*Plugin
	actions    []actionEntry
	providers  []providerEntry // sorted by position, stable
	evaluators []evaluatorEntry
	models     map[string][]modelEntry // by type, best first
	events     map[string][]*Plugin
	sources    map[string]*Plugin
	db         *Plugin

	actionNames string
	actionsText string
}

type actionEntry struct {
	spec   *pb.ActionSpec
	plugin *Plugin
	norm   string
}

type providerEntry struct {
	spec   *pb.ProviderSpec
	plugin *Plugin
}

type evaluatorEntry struct {
	spec   *pb.EvaluatorSpec
	plugin *Plugin
}

type modelEntry struct {
	typ      string
	priority int32
	plugin   *Plugin
}

// buildRegistry merges manifests in the character's plugin order. For
// actions and sources the first plugin wins a name; models are ranked by
// priority, then by plugin order, as elizaOS does.
func buildRegistry(plugins []*Plugin) (*registry, error) {
	r := &registry{plugins: plugins, models: map[string][]modelEntry{}, events: map[string][]*Plugin{}, sources: map[string]*Plugin{}}
	seenAction := map[string]bool{}
	for _, p := range plugins {
		m := p.Manifest()
		if m == nil {
			return nil, fmt.Errorf("plugin %s has no manifest (is it running?)", p.Name())
		}
		if m.GetDatabase() {
			if r.db == nil {
				r.db = p
			}
		}
		for _, a := range m.GetActions() {
			if seenAction[a.GetName()] {
				continue
			}
			seenAction[a.GetName()] = true
			r.actions = append(r.actions, actionEntry{spec: a, plugin: p, norm: normalizeAction(a.GetName())})
		}
		for _, pr := range m.GetProviders() {
			r.providers = append(r.providers, providerEntry{spec: pr, plugin: p})
		}
		for _, e := range m.GetEvaluators() {
			r.evaluators = append(r.evaluators, evaluatorEntry{spec: e, plugin: p})
		}
		for _, md := range m.GetModels() {
			r.models[md.GetType()] = append(r.models[md.GetType()], modelEntry{typ: md.GetType(), priority: md.GetPriority(), plugin: p})
		}
		for _, ev := range m.GetEvents() {
			r.events[ev] = append(r.events[ev], p)
		}
		for _, s := range m.GetMessageSources() {
			if _, ok := r.sources[s]; !ok {
				r.sources[s] = p
			}
		}
	}
	if len(r.actions) > 0 {
		var names []string
		var b strings.Builder
		b.WriteString("# Available Actions\n")
		for _, a := range r.actions {
			names = append(names, a.spec.GetName())
			fmt.Fprintf(&b, "- %s: %s\n", a.spec.GetName(), a.spec.GetDescription())
		}
		r.actionNames = strings.Join(names, ", ")
		r.actionsText = strings.TrimRight(b.String(), "\n")
	}
	sort.SliceStable(r.providers, func(i, j int) bool {
		return r.providers[i].spec.GetPosition() < r.providers[j].spec.GetPosition()
	})
	for t := range r.models {
		sort.SliceStable(r.models[t], func(i, j int) bool { return r.models[t][i].priority > r.models[t][j].priority })
	}
	return r, nil
}

// model picks the handler of a type: the named provider if asked, else the
// highest priority.
func (r *registry) model(typ, provider string) (*Plugin, error) {
	list := r.models[typ]
	if len(list) == 0 {
		return nil, fmt.Errorf("no plugin of this agent serves model type %s (plugins: %s)", typ, r.pluginNames())
	}
	if provider != "" {
		for _, e := range list {
			if e.plugin.Name() == provider {
				return e.plugin, nil
			}
		}
		return nil, fmt.Errorf("plugin %s does not serve model type %s for this agent", provider, typ)
	}
	return list[0].plugin, nil
}

func (r *registry) pluginNames() string {
	names := make([]string, len(r.plugins))
	for i, p := range r.plugins {
		names[i] = p.Name()
	}
	return strings.Join(names, ", ")
}

// has reports whether p is one of the agent's plugins.
func (r *registry) has(p *Plugin) bool {
	for _, q := range r.plugins {
		if q == p {
			return true
		}
	}
	return false
}

// normalizeAction makes "Send_Message", "send message" and "SENDMESSAGE"
// the same name.
func normalizeAction(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(s)) {
		if r == '_' || r == ' ' || r == '-' {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// resolveAction finds an action the way elizaOS does, minus its false
// positives: exact normalized name, then exact simile, then a substring
// match only when it is unambiguous.
func (r *registry) resolveAction(name string) *actionEntry {
	n := normalizeAction(name)
	if n == "" {
		return nil
	}
	for i := range r.actions {
		if r.actions[i].norm == n {
			return &r.actions[i]
		}
	}
	for i := range r.actions {
		for _, s := range r.actions[i].spec.GetSimiles() {
			if normalizeAction(s) == n {
				return &r.actions[i]
			}
		}
	}
	var found *actionEntry
	for i := range r.actions {
		if strings.Contains(r.actions[i].norm, n) || strings.Contains(n, r.actions[i].norm) {
			if found != nil {
				return nil
			}
			found = &r.actions[i]
		}
	}
	return found
}

// actionValues describe the agent's actions for prompts. Only the host
// knows every plugin's actions, so it adds them to every composed state.
func (r *registry) actionValues() map[string]any {
	if r.actionsText != "" {
		return map[string]any{"actionNames": r.actionNames, "actionsText": r.actionsText}
	}
	return nil
}
