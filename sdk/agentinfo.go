package sdk

import (
	"context"
	"errors"

	"github.com/agenthost/agenthost/internal/contract"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// AgentInfo is what an agent is made of: its plugins, in the agent's order,
// with what each offers. Prompts list actions, providers and evaluators
// from it; actions check which model types exist with it.
type AgentInfo struct {
	ID      string
	Name    string
	Plugins []PluginInfo

	// registry is the host's view of the same manifests, for composing
	// states in this process (compose.go); nil if they do not make one.
	registry *contract.Registry[*describedPlugin]
}

// PluginInfo is one plugin's manifest as an agent sees it.
type PluginInfo struct {
	Name        string
	Version     string
	Description string
	Actions     []ActionInfo
	Providers   []ProviderInfo
	Evaluators  []EvaluatorInfo
	Models      []ModelInfo
	Events      []string
	Sources     []string
	Services    []string
	Database    bool
}

// ActionInfo describes an action of some plugin.
type ActionInfo struct {
	Name        string
	Description string
	Similes     []string
	Examples    [][]ExampleMessage
	Plugin      string
}

// ProviderInfo describes a provider of some plugin.
type ProviderInfo struct {
	Name        string
	Description string
	Dynamic     bool
	Private     bool
	Position    int
	Plugin      string
}

// EvaluatorInfo describes an evaluator of some plugin.
type EvaluatorInfo struct {
	Name        string
	Description string
	Similes     []string
	AlwaysRun   bool
	Plugin      string
}

// ModelInfo is a model type a plugin serves.
type ModelInfo struct {
	Type     string
	Priority int
	Plugin   string
}

// Actions lists the agent's actions; a name served by several plugins is
// the first plugin's, as the host resolves it.
func (i *AgentInfo) Actions() []ActionInfo {
	var out []ActionInfo
	seen := map[string]bool{}
	for _, p := range i.Plugins {
		for _, a := range p.Actions {
			if !seen[a.Name] {
				seen[a.Name] = true
				out = append(out, a)
			}
		}
	}
	return out
}

// Providers lists the agent's providers in plugin order.
func (i *AgentInfo) Providers() []ProviderInfo {
	var out []ProviderInfo
	for _, p := range i.Plugins {
		out = append(out, p.Providers...)
	}
	return out
}

// Evaluators lists the agent's evaluators in plugin order.
func (i *AgentInfo) Evaluators() []EvaluatorInfo {
	var out []EvaluatorInfo
	for _, p := range i.Plugins {
		out = append(out, p.Evaluators...)
	}
	return out
}

// HasModel reports whether some plugin of the agent serves the model type.
func (i *AgentInfo) HasModel(typ string) bool {
	for _, p := range i.Plugins {
		for _, m := range p.Models {
			if m.Type == typ {
				return true
			}
		}
	}
	return false
}

// Listens reports whether some plugin of the agent handles events of the
// type: an event nobody handles need not be emitted.
func (i *AgentInfo) Listens(eventType string) bool {
	for _, p := range i.Plugins {
		for _, e := range p.Events {
			if e == eventType {
				return true
			}
		}
	}
	return false
}

// Sources lists the message sources the agent can send to.
func (i *AgentInfo) Sources() []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range i.Plugins {
		for _, s := range p.Sources {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// DescribeAgent asks the host what the agent is made of.
//
// Agents made of the same plugins share one answer, asked of the host once
// per plugin process: the Plugins it holds must be treated as read only.
func (a *Agent) DescribeAgent(ctx context.Context) (*AgentInfo, error) {
	if a.plugin == nil || a.pluginSet == "" {
		return a.describeAgent(ctx)
	}
	own := func(shared *AgentInfo) *AgentInfo {
		return &AgentInfo{ID: a.ID, Name: a.Name(), Plugins: shared.Plugins, registry: shared.registry}
	}
	if got, ok := a.plugin.described.Load(a.pluginSet); ok {
		return own(got.(*AgentInfo)), nil
	}
	// The first message of a process asks from several places at once (its
	// handler, the events it emits, the state it composes): one asks the
	// host, the others wait for its answer.
	d := &describing{done: make(chan struct{})}
	if got, loaded := a.plugin.describing.LoadOrStore(a.pluginSet, d); loaded {
		d = got.(*describing)
		select {
		case <-d.done:
		case <-ctx.Done():
			return nil, callErr("DescribeAgent", ctx.Err())
		}
		if d.err != nil {
			// Its caller's failure, perhaps only its context: ask for
			// this one.
			return a.describeAgent(ctx)
		}
		return own(d.info), nil
	}
	d.err = errNoDescription
	defer func() {
		// Deferred, so that the askers waiting are let go even if the
		// call panics; they then ask for themselves.
		a.plugin.describing.Delete(a.pluginSet)
		close(d.done)
	}()
	d.info, d.err = a.describeAgent(ctx)
	if d.err == nil {
		a.plugin.described.Store(a.pluginSet, d.info)
	}
	return d.info, d.err
}

// describeSoon asks the host what the agent is made of in the background,
// unless an agent with the same plugins was described already. A plugin
// that handles messages asks on its first message from several places (its
// handler, the events it emits, the state it composes), and so does a model
// plugin choosing actions: asked while the agent starts, once per plugin
// set, the first message does not wait for it. A failure here is asked
// again then: once per plugin set, so that a thousand agents configured
// while the host refuses it do not make a thousand calls.
func (a *Agent) describeSoon() {
	if a.plugin == nil || a.pluginSet == "" {
		return
	}
	if _, tried := a.plugin.describedSoon.LoadOrStore(a.pluginSet, true); tried {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), contract.DefaultCallTimeout)
		defer cancel()
		_, _ = a.DescribeAgent(ctx)
	}()
}

// errNoDescription is what the askers sharing a DescribeAgent call see
// when it gave no answer.
var errNoDescription = errors.New("DescribeAgent gave no answer")

// describing is a DescribeAgent call under way for a plugin set.
type describing struct {
	done chan struct{}
	info *AgentInfo
	err  error
}

func (a *Agent) describeAgent(ctx context.Context) (*AgentInfo, error) {
	rt, err := a.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDeadline(ctx, contract.DefaultCallTimeout)
	defer cancel()
	res, err := rt.DescribeAgent(ctx, &pb.DescribeAgentRequest{AgentId: a.ID})
	if err != nil {
		return nil, callErr("DescribeAgent", err)
	}
	info := &AgentInfo{ID: res.GetAgentId(), Name: res.GetName()}
	var described []*describedPlugin
	for _, m := range res.GetPlugins() {
		info.Plugins = append(info.Plugins, pluginInfoFromProto(m))
		described = append(described, &describedPlugin{name: m.GetName(), manifest: m})
	}
	if reg, err := contract.NewRegistry(described); err == nil {
		info.registry = reg
	}
	return info, nil
}

// ValidateActions asks every plugin of the agent which of its actions may be
// offered for msg: the validate functions run where the actions live. No
// names means every action. The answer keeps the agent's order.
func (a *Agent) ValidateActions(ctx context.Context, msg *Memory, st *State, names ...string) ([]string, error) {
	rt, err := a.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDeadline(ctx, contract.DefaultCallTimeout)
	defer cancel()
	res, err := rt.ValidateActions(ctx, &pb.ValidateActionsRequest{AgentId: a.ID, Names: names,
		Message: memoryToProto(msg), State: stateToProto(st)})
	if err != nil {
		return nil, callErr("ValidateActions", err)
	}
	return res.GetValid(), nil
}

func pluginInfoFromProto(m *pb.Manifest) PluginInfo {
	p := PluginInfo{Name: m.GetName(), Version: m.GetVersion(), Description: m.GetDescription(),
		Events: m.GetEvents(), Sources: m.GetMessageSources(), Services: m.GetServices(), Database: m.GetDatabase()}
	for _, a := range m.GetActions() {
		ai := ActionInfo{Name: a.GetName(), Description: a.GetDescription(), Similes: a.GetSimiles(), Plugin: p.Name}
		for _, conv := range a.GetExamples() {
			var c []ExampleMessage
			for _, em := range conv.GetMessages() {
				c = append(c, ExampleMessage{Name: em.GetName(), Content: contentFromProto(em.GetContent())})
			}
			ai.Examples = append(ai.Examples, c)
		}
		p.Actions = append(p.Actions, ai)
	}
	for _, pr := range m.GetProviders() {
		p.Providers = append(p.Providers, ProviderInfo{Name: pr.GetName(), Description: pr.GetDescription(),
			Dynamic: pr.GetDynamic(), Private: pr.GetPrivate(), Position: int(pr.GetPosition()), Plugin: p.Name})
	}
	for _, e := range m.GetEvaluators() {
		p.Evaluators = append(p.Evaluators, EvaluatorInfo{Name: e.GetName(), Description: e.GetDescription(),
			Similes: e.GetSimiles(), AlwaysRun: e.GetAlwaysRun(), Plugin: p.Name})
	}
	for _, md := range m.GetModels() {
		p.Models = append(p.Models, ModelInfo{Type: md.GetType(), Priority: int(md.GetPriority()), Plugin: p.Name})
	}
	return p
}
