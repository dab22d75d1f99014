package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
)

// AgentStatus is where an agent is in its life.
type AgentStatus string

// The states of an agent.
const (
	AgentStarting AgentStatus = "starting"
	AgentRunning  AgentStatus = "running"
	AgentStopped  AgentStatus = "stopped"
	AgentFailed   AgentStatus = "failed"
)

// Agent is one running agent: its character, its plugins' registry and the
// runs in flight.
type Agent struct {
	ID        string
	Name      string
	Character *sdk.Character

	d        *Daemon
	log      hclog.Logger
	charJSON []byte
	settings map[string]string
	reg      *registry

	mu     sync.Mutex
	status AgentStatus
	err    error

	states *stateCache
}

// Status reports the agent's status and, if it failed, why.
func (a *Agent) Status() (AgentStatus, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status, a.err
}

func (a *Agent) setStatus(s AgentStatus, err error) {
	a.mu.Lock()
	a.status, a.err = s, err
	a.mu.Unlock()
}

// Plugins names the agent's plugins in order.
func (a *Agent) Plugins() []string {
	if a.reg == nil {
		return nil
	}
	out := make([]string, len(a.reg.plugins))
	for i, p := range a.reg.plugins {
		out[i] = p.Name()
	}
	return out
}

// db returns the database plugin's client.
func (a *Agent) db(ctx context.Context) (*Plugin, *pluginConn, error) {
	if a.reg == nil || a.reg.db == nil {
		return nil, nil, fmt.Errorf("agent %s has no database plugin", a.Name)
	}
	c, err := a.reg.db.conn(ctx)
	return a.reg.db, c, err
}

// useModel calls the best model of a type and records the call.
func (a *Agent) useModel(ctx context.Context, req *pb.ModelRequest) (*pb.ModelResponse, error) {
	p, err := a.reg.model(req.GetType(), req.GetProvider())
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", a.Name, err)
	}
	c, err := p.conn(ctx)
	if err != nil {
		return nil, err
	}
	req.AgentId = a.ID
	start := time.Now()
	ctx, cancel := ensureDeadline(ctx, sdk.DefaultRunTimeout)
	defer cancel()
	res, err := c.plugin.UseModel(ctx, req)
	took := time.Since(start)
	if err != nil {
		err = p.callErr(c, "UseModel "+req.GetType(), err)
		a.recordModel(req, nil, p.Name(), took, err)
		return nil, err
	}
	res.Provider = p.Name()
	a.recordModel(req, res, p.Name(), took, nil)
	return res, nil
}

// streamModel is useModel with the text passed to send as the model makes
// it; the last chunk carries the whole response.
func (a *Agent) streamModel(ctx context.Context, req *pb.ModelRequest, send func(*pb.ModelChunk) error) error {
	p, err := a.reg.model(req.GetType(), req.GetProvider())
	if err != nil {
		return fmt.Errorf("agent %s: %w", a.Name, err)
	}
	c, err := p.conn(ctx)
	if err != nil {
		return err
	}
	req.AgentId = a.ID
	start := time.Now()
	ctx, cancel := ensureDeadline(ctx, sdk.DefaultRunTimeout)
	defer cancel()
	stream, err := c.plugin.StreamModel(ctx, req)
	if err != nil {
		err = p.callErr(c, "StreamModel "+req.GetType(), err)
		a.recordModel(req, nil, p.Name(), time.Since(start), err)
		return err
	}
	for {
		chunk, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("plugin %s ended the %s stream without a final answer", p.Name(), req.GetType())
			} else {
				err = p.callErr(c, "StreamModel "+req.GetType(), err)
			}
			a.recordModel(req, nil, p.Name(), time.Since(start), err)
			return err
		}
		if f := chunk.GetFinal(); f != nil {
			f.Provider = p.Name()
			a.recordModel(req, f, p.Name(), time.Since(start), nil)
			return send(chunk)
		}
		if err := send(chunk); err != nil {
			return err
		}
	}
}

// recordModel writes the model call to the timeline without holding up the
// caller.
func (a *Agent) recordModel(req *pb.ModelRequest, res *pb.ModelResponse, provider string, took time.Duration, err error) {
	body := map[string]any{
		"modelType": req.GetType(), "provider": provider, "runId": req.GetRunId(),
		"durationMs": took.Milliseconds(),
	}
	if req.GetType() == sdk.ModelTextEmbedding {
		body["response"] = "[array]"
	} else {
		body["prompt"] = req.GetPrompt()
		if res != nil {
			body["response"] = res.GetText()
		}
	}
	if res != nil {
		body["model"] = res.GetModel()
		if u := res.GetUsage(); u != nil {
			body["tokens"] = map[string]any{"prompt": u.GetPromptTokens(), "completion": u.GetCompletionTokens(), "total": u.GetTotalTokens()}
		}
	}
	if err != nil {
		body["error"] = err.Error()
	}
	a.d.logs.add(a, &pb.LogEntry{AgentId: a.ID, Type: "useModel:" + req.GetType(), BodyJson: mustJSON(body), CreatedAt: time.Now().UnixMilli()})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"encodeError": err.Error()})
	}
	return b
}

// composeState runs the selected providers, batched into one call per
// plugin, and merges their results in position order.
func (a *Agent) composeState(ctx context.Context, req *pb.ComposeStateRequest) (*pb.State, error) {
	include := map[string]bool{}
	for _, n := range req.GetInclude() {
		include[n] = true
	}
	var selected []providerEntry
	for _, e := range a.reg.providers {
		name := e.spec.GetName()
		if req.GetOnlyInclude() {
			if include[name] {
				selected = append(selected, e)
			}
			continue
		}
		if include[name] || (!e.spec.GetPrivate() && !e.spec.GetDynamic()) {
			selected = append(selected, e)
		}
	}
	msgID := req.GetMessage().GetId()
	var cached *pb.State
	if !req.GetSkipCache() && msgID != "" {
		cached = a.states.get(msgID)
	}
	byPlugin := map[*Plugin][]string{}
	var order []*Plugin
	for _, e := range selected {
		if _, ok := byPlugin[e.plugin]; !ok {
			order = append(order, e.plugin)
		}
		byPlugin[e.plugin] = append(byPlugin[e.plugin], e.spec.GetName())
	}
	results := map[string]*pb.ProviderResult{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ctx, cancel := ensureDeadline(ctx, sdk.DefaultCallTimeout)
	defer cancel()
	for _, p := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			names := byPlugin[p]
			c, err := p.conn(ctx)
			var res *pb.GetProvidersResponse
			if err == nil {
				res, err = c.plugin.GetProviders(ctx, &pb.GetProvidersRequest{AgentId: a.ID, Names: names,
					Message: req.GetMessage(), State: cached, RunId: req.GetRunId()})
				if err != nil {
					err = p.callErr(c, "GetProviders", err)
				}
			}
			if err != nil {
				// A failing provider contributes nothing; the message is
				// still answered.
				a.log.Warn("providers failed", "plugin", p.Name(), "providers", strings.Join(names, ","), "error", err)
				return
			}
			mu.Lock()
			for _, r := range res.GetResults() {
				if r.GetError() != "" {
					a.log.Warn("provider failed", "plugin", p.Name(), "provider", r.GetName(), "error", r.GetError())
					continue
				}
				results[r.GetName()] = r
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	st := mergeState(cached, selected, results, a.reg.actionValues())
	if msgID != "" {
		a.states.put(msgID, st)
	}
	return st, nil
}

// mergeState joins provider results in position order. Values of earlier
// cached providers stay unless a selected provider sets them again.
func mergeState(cached *pb.State, selected []providerEntry, results map[string]*pb.ProviderResult, extra map[string]any) *pb.State {
	values := map[string]any{}
	for k, v := range extra {
		values[k] = v
	}
	data := map[string]any{}
	providersData := map[string]any{}
	if cached != nil {
		_ = json.Unmarshal(cached.GetValuesJson(), &values)
		_ = json.Unmarshal(cached.GetDataJson(), &data)
		if pd, ok := data["providers"].(map[string]any); ok {
			providersData = pd
		}
	}
	var texts []string
	for _, e := range selected {
		r := results[e.spec.GetName()]
		if r == nil {
			continue
		}
		if t := strings.TrimSpace(r.GetText()); t != "" {
			texts = append(texts, r.GetText())
		}
		var v map[string]any
		if len(r.GetValuesJson()) > 0 && json.Unmarshal(r.GetValuesJson(), &v) == nil {
			for k, x := range v {
				values[k] = x
			}
		}
		entry := map[string]any{"text": r.GetText()}
		if v != nil {
			entry["values"] = v
		}
		var dd map[string]any
		if len(r.GetDataJson()) > 0 && json.Unmarshal(r.GetDataJson(), &dd) == nil {
			entry["data"] = dd
		}
		providersData[e.spec.GetName()] = entry
	}
	text := strings.Join(texts, "\n\n")
	values["providers"] = text
	data["providers"] = providersData
	return &pb.State{ValuesJson: mustJSON(values), DataJson: mustJSON(data), Text: text}
}

// processActions runs the actions the responses name, in order, each
// result handed to the next. An unknown or failing action is recorded and
// the chain goes on.
func (a *Agent) processActions(ctx context.Context, req *pb.ProcessActionsRequest) (*pb.ProcessActionsResponse, error) {
	out := &pb.ProcessActionsResponse{}
	var previous []*pb.ActionOutcome
	for _, resp := range req.GetResponses() {
		for _, name := range resp.GetContent().GetActions() {
			entry := a.reg.resolveAction(name)
			if entry == nil {
				o := &pb.ActionOutcome{Name: name, Result: &pb.ActionResult{Success: false, Error: fmt.Sprintf("no action named %q among %d registered actions", name, len(a.reg.actions))}}
				out.Results = append(out.Results, o)
				previous = append(previous, o)
				continue
			}
			start := time.Now()
			res, err := a.runAction(ctx, entry, req, resp, previous)
			if err != nil {
				res = &pb.ActionResult{Success: false, Error: err.Error()}
			}
			o := &pb.ActionOutcome{Name: entry.spec.GetName(), Result: res}
			out.Results = append(out.Results, o)
			previous = append(previous, o)
			a.d.logs.add(a, &pb.LogEntry{AgentId: a.ID, RoomId: req.GetMessage().GetRoomId(), EntityId: req.GetMessage().GetEntityId(),
				Type: "action", CreatedAt: time.Now().UnixMilli(), BodyJson: mustJSON(map[string]any{
					"action": entry.spec.GetName(), "plugin": entry.plugin.Name(), "runId": req.GetRunId(),
					"success": res.GetSuccess(), "error": res.GetError(), "durationMs": time.Since(start).Milliseconds(),
					"messageId": req.GetMessage().GetId(),
				})})
		}
	}
	return out, nil
}

func (a *Agent) runAction(ctx context.Context, e *actionEntry, req *pb.ProcessActionsRequest, resp *pb.Memory, previous []*pb.ActionOutcome) (*pb.ActionResult, error) {
	c, err := e.plugin.conn(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := ensureDeadline(ctx, sdk.DefaultRunTimeout)
	defer cancel()
	res, err := c.plugin.RunAction(ctx, &pb.RunActionRequest{AgentId: a.ID, Name: e.spec.GetName(), Message: req.GetMessage(),
		State: req.GetState(), Responses: []*pb.Memory{resp}, RunId: req.GetRunId(), Previous: previous})
	if err != nil {
		return nil, e.plugin.callErr(c, "action "+e.spec.GetName(), err)
	}
	if res.GetResult() == nil {
		return &pb.ActionResult{Success: true}, nil
	}
	return res.GetResult(), nil
}

// evaluate runs the agent's evaluators, one call per plugin.
func (a *Agent) evaluate(ctx context.Context, req *pb.EvaluateRequest) (*pb.EvaluateResponse, error) {
	byPlugin := map[*Plugin][]string{}
	var order []*Plugin
	for _, e := range a.reg.evaluators {
		if !req.GetDidRespond() && !e.spec.GetAlwaysRun() {
			continue
		}
		if _, ok := byPlugin[e.plugin]; !ok {
			order = append(order, e.plugin)
		}
		byPlugin[e.plugin] = append(byPlugin[e.plugin], e.spec.GetName())
	}
	out := &pb.EvaluateResponse{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ctx, cancel := ensureDeadline(ctx, sdk.DefaultRunTimeout)
	defer cancel()
	for _, p := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			names := byPlugin[p]
			c, err := p.conn(ctx)
			var res *pb.RunEvaluatorsResponse
			if err == nil {
				res, err = c.plugin.RunEvaluators(ctx, &pb.RunEvaluatorsRequest{AgentId: a.ID, Names: names, Message: req.GetMessage(),
					State: req.GetState(), DidRespond: req.GetDidRespond(), Responses: req.GetResponses(), RunId: req.GetRunId()})
				if err != nil {
					err = p.callErr(c, "RunEvaluators", err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				for _, n := range names {
					out.Outcomes = append(out.Outcomes, &pb.EvaluatorOutcome{Name: n, Error: err.Error()})
				}
				return
			}
			out.Outcomes = append(out.Outcomes, res.GetOutcomes()...)
		}()
	}
	wg.Wait()
	return out, nil
}

// emit hands an event to every plugin of the agent subscribed to it and
// waits for them.
func (a *Agent) emit(ctx context.Context, req *pb.HandleEventRequest) error {
	subs := a.reg.events[req.GetType()]
	if len(subs) == 0 {
		return nil
	}
	req.AgentId = a.ID
	ctx, cancel := ensureDeadline(ctx, sdk.DefaultRunTimeout)
	defer cancel()
	errs := make([]error, len(subs))
	var wg sync.WaitGroup
	for i, p := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := p.conn(ctx)
			if err == nil {
				_, err = c.plugin.HandleEvent(ctx, req)
				if err != nil {
					err = p.callErr(c, "event "+req.GetType(), err)
				}
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// run is one message being handled: where replies go and who waits.
type run struct {
	id      string
	agent   *Agent
	source  string
	target  *pb.Target
	message *pb.Memory

	mu      sync.Mutex
	replies []reply
}

// reply is one answer of a run, with the id of its stored memory if the
// responding plugin stored it.
type reply struct {
	id      string
	content *pb.Content
}

// receive maps an incoming message to the agent's ids, makes sure the
// world, room and sender exist, and emits MESSAGE_RECEIVED.
func (a *Agent) receive(ctx context.Context, in *incoming) (*pb.ReceiveMessageResponse, []reply, error) {
	if st, _ := a.Status(); st != AgentRunning {
		return nil, nil, fmt.Errorf("agent %s is %s, not running", a.Name, st)
	}
	p, c, err := a.db(ctx)
	if err != nil {
		return nil, nil, err
	}
	dctx, cancel := ensureDeadline(ctx, sdk.DefaultCallTimeout)
	_, err = c.db.EnsureConnection(dctx, &pb.EnsureConnectionRequest{AgentId: a.ID,
		Entity: &pb.Entity{Id: in.entityID, Names: in.names, MetadataJson: in.entityMeta, AgentId: a.ID},
		Room:   &pb.Room{Id: in.roomID, Name: in.roomName, AgentId: a.ID, Source: in.source, Type: in.channelType, ChannelId: in.channelID, ServerId: in.serverID, WorldId: in.worldID},
		World:  &pb.World{Id: in.worldID, Name: in.worldName, AgentId: a.ID, ServerId: in.serverID},
	})
	cancel()
	if err != nil {
		return nil, nil, fmt.Errorf("store the sender and room: %w", p.callErr(c, "EnsureConnection", err))
	}
	content := in.content
	if content == nil {
		content = &pb.Content{}
	}
	content.Source = in.source
	if content.GetChannelType() == "" {
		content.ChannelType = in.channelType
	}
	msg := &pb.Memory{Id: in.messageID, EntityId: in.entityID, AgentId: a.ID, RoomId: in.roomID, WorldId: in.worldID,
		CreatedAt: in.createdAt, Content: content, Table: sdk.TableMessages}
	r := &run{id: uuid.NewString(), agent: a, source: in.source, message: msg,
		target: &pb.Target{Source: in.source, RoomId: in.roomID, ChannelId: in.channelID, ServerId: in.serverID, EntityId: in.entityID, ThreadId: in.threadID}}
	a.d.runs.put(r)
	defer a.d.runs.remove(r.id)
	res := &pb.ReceiveMessageResponse{MemoryId: msg.GetId(), RoomId: in.roomID, WorldId: in.worldID, EntityId: in.entityID, RunId: r.id}
	if len(a.reg.events[sdk.EventMessageReceived]) == 0 {
		a.log.Warn("no plugin of this agent handles MESSAGE_RECEIVED; the message is ignored (add the bootstrap plugin)")
		return res, nil, nil
	}
	if err := a.emit(ctx, &pb.HandleEventRequest{Type: sdk.EventMessageReceived, RunId: r.id, Source: in.source, Message: msg}); err != nil {
		return nil, nil, fmt.Errorf("handle message: %w", err)
	}
	r.mu.Lock()
	replies := r.replies
	r.mu.Unlock()
	for _, rp := range replies {
		res.Replies = append(res.Replies, rp.content)
	}
	return res, replies, nil
}

// respond delivers a reply of a run: to its platform through the plugin
// serving the run's source, and to whoever waits for the run.
func (a *Agent) respond(ctx context.Context, req *pb.RespondRequest) (*pb.RespondResponse, error) {
	r := a.d.runs.get(req.GetRunId())
	if r == nil || r.agent != a {
		return nil, fmt.Errorf("respond: run %q of agent %s is not in flight (it finished or never existed): %w", req.GetRunId(), a.Name, sdk.ErrNotFound)
	}
	r.mu.Lock()
	r.replies = append(r.replies, reply{id: req.GetMemoryId(), content: req.GetContent()})
	r.mu.Unlock()
	res := &pb.RespondResponse{}
	if req.GetMemoryId() != "" {
		res.MessageIds = []string{req.GetMemoryId()}
	}
	if p := a.reg.sources[r.source]; p != nil {
		sent, err := a.send(ctx, p, r.target, req.GetContent())
		if err != nil {
			return nil, err
		}
		res.MessageIds = sent
	}
	a.d.publish(a, r, req.GetContent())
	return res, nil
}

// sendMessage routes content to the plugin that serves the target's source.
func (a *Agent) sendMessage(ctx context.Context, req *pb.SendMessageRequest) (*pb.SendMessageResponse, error) {
	src := req.GetTarget().GetSource()
	p := a.reg.sources[src]
	if p == nil {
		return nil, fmt.Errorf("send message: no plugin of agent %s sends to source %q: %w", a.Name, src, sdk.ErrInvalid)
	}
	ids, err := a.send(ctx, p, req.GetTarget(), req.GetContent())
	if err != nil {
		return nil, err
	}
	return &pb.SendMessageResponse{MessageIds: ids}, nil
}

func (a *Agent) send(ctx context.Context, p *Plugin, t *pb.Target, content *pb.Content) ([]string, error) {
	c, err := p.conn(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := ensureDeadline(ctx, sdk.DefaultCallTimeout)
	defer cancel()
	res, err := c.plugin.SendMessage(ctx, &pb.SendMessageRequest{AgentId: a.ID, Target: t, Content: content})
	if err != nil {
		return nil, p.callErr(c, "SendMessage", err)
	}
	return res.GetMessageIds(), nil
}

// incoming is a message with its ids already mapped to the agent's.
type incoming struct {
	source, messageID, entityID, roomID, worldID string
	channelID, serverID, threadID                string
	names                                        []string
	entityMeta                                   []byte
	roomName, worldName, channelType             string
	createdAt                                    int64
	content                                      *pb.Content
}

// mapIncoming turns a connector's platform ids into the agent's ids with
// elizaOS's createUniqueUuid, so the same user in the same chat is the same
// entity and room across restarts.
func (a *Agent) mapIncoming(req *pb.ReceiveMessageRequest) *incoming {
	in := &incoming{source: req.GetSource(), channelID: req.GetChannelId(), serverID: req.GetServerId(), threadID: req.GetThreadId(),
		roomName: req.GetRoomName(), worldName: req.GetWorldName(), channelType: req.GetChannelType(), createdAt: req.GetCreatedAt(),
		content: req.GetContent()}
	user := req.GetUserId()
	if user == "" {
		user = req.GetUserName()
	}
	in.entityID = sdk.CreateUniqueUUID(a.ID, user)
	room := req.GetChannelId()
	if req.GetThreadId() != "" {
		room = req.GetThreadId()
	}
	if room == "" {
		room = user
	}
	in.roomID = sdk.CreateUniqueUUID(a.ID, room)
	server := req.GetServerId()
	if server == "" {
		server = req.GetSource()
	}
	in.worldID = sdk.CreateUniqueUUID(a.ID, server)
	if req.GetMessageId() != "" {
		in.messageID = sdk.CreateUniqueUUID(a.ID, req.GetMessageId())
	} else {
		in.messageID = uuid.NewString()
	}
	for _, n := range []string{req.GetDisplayName(), req.GetUserName()} {
		if n != "" && !contains(in.names, n) {
			in.names = append(in.names, n)
		}
	}
	meta := map[string]any{}
	if req.GetSource() != "" {
		meta[req.GetSource()] = map[string]any{"id": req.GetUserId(), "userName": req.GetUserName(), "name": req.GetDisplayName()}
	}
	in.entityMeta = mustJSON(meta)
	if in.createdAt == 0 {
		in.createdAt = time.Now().UnixMilli()
	}
	if in.content != nil && req.GetInReplyTo() != "" {
		in.content.InReplyTo = sdk.CreateUniqueUUID(a.ID, req.GetInReplyTo())
	}
	return in
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func ensureDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// stateCache keeps the last composed state per message, bounded: elizaOS's
// never evicts and grows with every message.
type stateCache struct {
	mu    sync.Mutex
	max   int
	order []string
	m     map[string]*pb.State
}

func newStateCache(max int) *stateCache {
	return &stateCache{max: max, m: map[string]*pb.State{}}
}

func (c *stateCache) get(id string) *pb.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}

func (c *stateCache) put(id string, st *pb.State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[id]; !ok {
		c.order = append(c.order, id)
	}
	c.m[id] = st
	for len(c.order) > c.max {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
}

// Len reports how many states are cached.
func (c *stateCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
