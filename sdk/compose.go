package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// A state whose providers are all the calling plugin's own is composed in
// the plugin's own process. Asked of the host, it would cost the call to
// the host, the host's call back into this very process for the providers,
// the message (embedding and all) sent both ways and the state encoded to
// JSON and decoded twice, for nothing the host adds: the selection and the
// merge follow the host's rules (contract.Registry.Compose, and mergeState
// below, which matches contract's MergeState), and the values come out in
// the shapes JSON gives them, as they would from the host.
//
// The host composes everything else: a selection with another plugin's
// provider (the host calls plugins; plugins never call each other), and
// any state asked for inside an action, whose chain's plan and results the
// host keeps in its state of the message (ACTION_STATE reads them).
//
// The providers run under the call's deadline (DefaultCallTimeout when it
// has none), which is also the host's default for a plugin's providers;
// AGENTHOST_PROVIDER_TIMEOUT, the operator's bound on what the host waits
// for from other plugins, does not reach into this process.
//
// Each message's last state is kept here as the host keeps it, so that a
// later composition for the same message keeps the values of providers
// that ran before. It is kept only while an event about the message, or
// the evaluators of its run, are being handled in this process, and
// dropped when the last such call returns: a composition for a message no
// call holds (bootstrap's evaluation task after the reply, any other task,
// an HTTP route) is not kept, or it would stay until the bound pushed it
// out, pinning a burst's provider texts in the heap long after.
// At most maxLocalStates are kept.

// maxLocalStates bounds the states kept for messages still being handled.
const maxLocalStates = 256

func stateKey(agentID, msgID string) string { return agentID + "/" + msgID }

// handle marks the state of key as worth keeping until the returned
// function is called; calls for one key nest.
func (s *pluginScope) handle(key string) (done func()) {
	s.handlingMu.Lock()
	s.handling[key]++
	s.handlingMu.Unlock()
	return func() {
		s.handlingMu.Lock()
		defer s.handlingMu.Unlock()
		if s.handling[key]--; s.handling[key] > 0 {
			return
		}
		delete(s.handling, key)
		s.states.Drop(key)
	}
}

// keep stores st as key's state if a handler holds the message.
func (s *pluginScope) keep(key string, st *State) {
	s.handlingMu.Lock()
	defer s.handlingMu.Unlock()
	if s.handling[key] > 0 {
		s.states.Put(key, st)
	}
}

type inActionKey struct{}

// withinAction marks ctx as an action's: states asked for under it are the
// host's to compose.
func withinAction(ctx context.Context) context.Context {
	return context.WithValue(ctx, inActionKey{}, true)
}

// describedPlugin is a plugin of the agent as DescribeAgent tells it.
type describedPlugin struct {
	name     string
	manifest *pb.Manifest
}

func (p *describedPlugin) Name() string           { return p.name }
func (p *describedPlugin) Manifest() *pb.Manifest { return p.manifest }

// composeLocally composes the state in this process when every provider
// the options select is this plugin's own; ok is false when the host must
// compose it.
func (a *Agent) composeLocally(ctx context.Context, msg *Memory, opts ComposeOptions) (st *State, ok bool) {
	sc := a.plugin
	if sc == nil || len(sc.providers) == 0 || msg == nil || ctx.Value(inActionKey{}) != nil {
		return nil, false
	}
	info, err := a.DescribeAgent(ctx)
	if err != nil || info.registry == nil {
		return nil, false
	}
	comp := info.registry.Compose(&pb.ComposeStateRequest{Include: opts.Include, OnlyInclude: opts.OnlyInclude})
	for _, e := range comp.Selected {
		if e.Plugin.name != sc.name || sc.providers[e.Spec.GetName()] == nil {
			return nil, false
		}
	}
	key := ""
	if msg.ID != "" {
		key = stateKey(a.ID, msg.ID)
	}
	var cached *State
	if !opts.SkipCache && key != "" {
		cached = sc.states.Get(key)
	}
	in := &State{Values: map[string]any{}, Data: map[string]any{}}
	if cached != nil {
		in = cached.clone()
	}
	ctx = WithRunID(ctx, opts.RunID)
	results := make([]localResult, len(comp.Selected))
	var mu sync.Mutex // results: a late provider may still write its own
	var wg sync.WaitGroup
	for i, e := range comp.Selected {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := *msg
			r := sc.runProvider(ctx, a, sc.providers[e.Spec.GetName()], &m, in)
			r.done = true
			mu.Lock()
			results[i] = r
			mu.Unlock()
		}()
	}
	// A provider that does not answer in time is left out, as the host
	// leaves out one that misses its deadline; its goroutine ends when it
	// does.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var late bool
	select {
	case <-done:
	case <-ctx.Done():
		late = true
	}
	byName := map[string]*ProviderResult{}
	var failed []string
	var why []string
	mu.Lock()
	for i, e := range comp.Selected {
		name := e.Spec.GetName()
		r := results[i]
		switch {
		case late && !r.done:
			failed, why = append(failed, name), append(why, fmt.Sprintf("provider %s did not answer in time: %v", name, ctx.Err()))
		case r.err != "":
			failed, why = append(failed, name), append(why, r.err)
		default:
			res := r.res
			byName[name] = &res
		}
	}
	mu.Unlock()
	for i := range failed {
		a.providerFailed(ctx, msg, opts.RunID, failed[i], why[i])
	}
	st = mergeState(comp.Selected, cached, byName, info.registry.ActionValues())
	if key != "" {
		sc.keep(key, st)
	}
	return st.clone(), true
}

// localResult is one provider's answer; done is false while it runs.
type localResult struct {
	res  ProviderResult
	err  string
	done bool
}

// runProvider runs one of the plugin's providers in this process, its
// result in JSON's shapes.
func (sc *pluginScope) runProvider(ctx context.Context, a *Agent, p *Provider, msg *Memory, st *State) (out localResult) {
	defer func() {
		if r := recover(); r != nil {
			sc.log.Error("provider panicked", "provider", p.Name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			out = localResult{err: validUTF8(fmt.Sprintf("provider %s panicked: %v", p.Name, r))}
		}
	}()
	res, err := p.Get(ctx, a, msg, st)
	if err != nil {
		return localResult{err: validUTF8(err.Error())}
	}
	return localResult{res: ProviderResult{Text: validUTF8(res.Text), Values: jsonShapedMap(res.Values), Data: jsonShapedMap(res.Data)}}
}

// providerFailed logs a provider that contributed nothing and writes it to
// the run's timeline, as the host does for the providers it calls.
func (a *Agent) providerFailed(ctx context.Context, msg *Memory, runID, name, why string) {
	a.Logger(ctx).Warn("provider failed", "providers", name, "runId", runID, "error", why)
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), contract.DefaultCallTimeout)
	defer cancel()
	err := a.addLog(lctx, &pb.LogEntry{AgentId: a.ID, RoomId: msg.RoomID, EntityId: msg.EntityID, Type: "provider", CreatedAt: time.Now().UnixMilli(),
		BodyJson: encodeMap(map[string]any{"providers": []string{name}, "plugin": a.plugin.name, "runId": runID, "error": why, "messageId": msg.ID})})
	if err != nil {
		a.Logger(ctx).Warn("could not write the failed provider to the timeline", "error", err)
	}
}

// mergeState joins provider results in position order, as the host's
// contract.Composition.MergeState does with the same results in JSON:
// extra (the agent's action values) first, then the cached state's values,
// then each selected provider's; data.providers holds each provider's
// text, values and data by name.
func mergeState(selected []contract.ProviderEntry[*describedPlugin], cached *State, results map[string]*ProviderResult, extra map[string]any) *State {
	values := map[string]any{}
	for k, v := range extra {
		values[k] = jsonValue(v)
	}
	data := map[string]any{}
	providersData := map[string]any{}
	if cached != nil {
		for k, v := range cached.Values {
			values[k] = v
		}
		for k, v := range cached.Data {
			data[k] = v
		}
		if pd, ok := data["providers"].(map[string]any); ok {
			for k, v := range pd {
				providersData[k] = v
			}
		}
	}
	var texts []string
	for _, e := range selected {
		r := results[e.Spec.GetName()]
		if r == nil {
			continue
		}
		if strings.TrimSpace(r.Text) != "" {
			texts = append(texts, r.Text)
		}
		entry := map[string]any{"text": r.Text}
		if len(r.Values) > 0 {
			for k, x := range r.Values {
				values[k] = x
			}
			entry["values"] = r.Values
		}
		if len(r.Data) > 0 {
			entry["data"] = r.Data
		}
		providersData[e.Spec.GetName()] = entry
	}
	text := strings.Join(texts, "\n\n")
	values["providers"] = text
	data["providers"] = providersData
	return &State{Values: values, Data: data, Text: text}
}

// clone copies the state's maps, and the data's "providers", so that a
// caller changing its state does not change the one kept for the message.
func (s *State) clone() *State {
	out := &State{Values: make(map[string]any, len(s.Values)), Data: make(map[string]any, len(s.Data)), Text: s.Text}
	for k, v := range s.Values {
		out.Values[k] = v
	}
	for k, v := range s.Data {
		out.Data[k] = v
	}
	if pd, ok := s.Data["providers"].(map[string]any); ok {
		cp := make(map[string]any, len(pd))
		for k, v := range pd {
			cp[k] = v
		}
		out.Data["providers"] = cp
	}
	return out
}

// jsonShapedMap is m as it would come out of the host: JSON's shapes, nil
// when empty.
func jsonShapedMap(m map[string]any) map[string]any {
	if len(m) == 0 {
		return nil
	}
	out, ok := jsonValue(m).(map[string]any)
	if !ok {
		return nil
	}
	return out
}

// jsonValue is v in the shapes encoding/json decodes into an any: objects,
// arrays, strings, float64 numbers, booleans and nil. Values already in
// those shapes are copied without encoding; anything else (an int, a
// []string, a struct) goes through JSON.
func jsonValue(v any) any {
	switch x := v.(type) {
	case nil, bool, float64:
		return x
	case string:
		return validUTF8(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[validUTF8(k)] = jsonValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	}
	b, err := json.Marshal(v)
	if err != nil {
		return map[string]any{"_encodeError": err.Error()}
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil
	}
	return out
}

// addLog writes an entry to the agent's timeline: storage.For(a).AddLog,
// which package sdk cannot call (sdk/storage imports it).
func (a *Agent) addLog(ctx context.Context, l *pb.LogEntry) error {
	if a == nil || a.db == nil {
		return ErrNoRuntime
	}
	_, err := a.db.AddLog(ctx, &pb.AddLogRequest{Log: l})
	return callErr("AddLog", err)
}
