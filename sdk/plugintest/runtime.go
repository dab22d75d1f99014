package plugintest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/agenthost/agenthost/sdk/storage"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Runtime is an in-memory stand-in for the host. Plugins started with
// [Start] reach it through their *sdk.Agent, and it follows the host's
// rules, with the host's own code (internal/contract): ComposeState,
// ProcessActions, Evaluate and ValidateActions call back into the plugins
// started with this Runtime, choosing providers, resolving action names
// (similes and unambiguous parts included) and chaining results as the
// daemon does, so a plugin such as bootstrap can be tested alone. Respond,
// SendMessage, EmitEvent and ReceiveMessage are recorded for the test to
// inspect; a reply sent with Respond without a memory id during a
// MESSAGE_RECEIVED handed over with [Client.HandleEvent] is stored in the
// message's room first, as the daemon stores it.
//
// Storage calls go, as in the daemon, to the database plugin started with
// this Runtime (the sql plugin, say); without one they are served from
// memory: memories, entities, rooms, worlds, participants, logs and cache,
// and any other storage call fails with sdk.ErrUnimplemented. Either way a
// plugin may store only for the agents it was configured for, and may not
// call the host's own Database methods.
//
// The zero value is ready to use. Set the function fields before Start.
// A Runtime is safe for concurrent use.
type Runtime struct {
	// Model answers UseModel, and StreamModel in one piece. When it is
	// nil, the model handler with the highest priority among the plugins
	// started with this Runtime answers; when there is none, the call fails
	// with "plugintest: no model configured".
	Model func(ctx context.Context, req sdk.ModelRequest) (*sdk.ModelResponse, error)

	mu          sync.Mutex
	plugins     []*boundPlugin
	settings    map[string]map[string]string
	responses   []sdk.Content
	sent        []SentMessage
	events      []sdk.Event
	received    []sdk.IncomingMessage
	modelCalls  []sdk.ModelRequest
	receivedIDs map[[2]string]bool
	// runs are the MESSAGE_RECEIVED calls in flight, by run id: Respond
	// stores a reply in their message's room, as the host does.
	runs map[string]*pb.Memory

	store memStore
}

// SentMessage is one SendMessage call a plugin made to the host.
type SentMessage struct {
	Target  sdk.Target
	Content sdk.Content
}

// boundPlugin is a plugin started with the Runtime, as its registry knows
// it.
type boundPlugin struct {
	pc   pb.PluginClient
	conn grpc.ClientConnInterface
	m    *pb.Manifest
	logf func(format string, args ...any)
}

func (b *boundPlugin) Name() string           { return b.m.GetName() }
func (b *boundPlugin) Manifest() *pb.Manifest { return b.m }

// bind makes the Runtime call back into a plugin; the returned func undoes
// it.
func (r *Runtime) bind(b *boundPlugin) func() {
	r.mu.Lock()
	r.plugins = append(r.plugins, b)
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.plugins = slices.DeleteFunc(r.plugins, func(x *boundPlugin) bool { return x == b })
	}
}

// registry is the plugins started with the Runtime, in the order they were
// started, merged as the host merges an agent's plugins.
func (r *Runtime) registry() *contract.Registry[*boundPlugin] {
	r.mu.Lock()
	plugins := slices.Clone(r.plugins)
	r.mu.Unlock()
	reg, err := contract.NewRegistry(plugins)
	if err != nil {
		// Every bound plugin has the manifest it described.
		panic(err)
	}
	return reg
}

func (r *Runtime) setSettings(agentID string, s map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.settings == nil {
		r.settings = map[string]map[string]string{}
	}
	r.settings[agentID] = s
}

// Memories returns every memory stored in memory, of every agent, in the
// order they were stored (none when a database plugin keeps them).
func (r *Runtime) Memories() []sdk.Memory {
	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	out := make([]sdk.Memory, len(r.store.memories))
	for i, s := range r.store.memories {
		out[i] = s.m
	}
	return out
}

// AddMemory stores m for an agent in memory as CreateMemory does, to seed
// a test. It returns the memory's id.
func (r *Runtime) AddMemory(agentID string, m sdk.Memory) string {
	id, _ := r.store.createMemory(agentID, m, m.Table, m.Unique)
	return id
}

// Worlds returns every world stored in memory, of every agent.
func (r *Runtime) Worlds() []sdk.World {
	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	out := make([]sdk.World, 0, len(r.store.worlds))
	for _, w := range r.store.worlds {
		out = append(out, w)
	}
	return out
}

// Logs returns the log entries plugins added, in order.
func (r *Runtime) Logs() []storage.LogEntry {
	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	return slices.Clone(r.store.logs)
}

// Responses returns the contents plugins sent with Respond, in order.
func (r *Runtime) Responses() []sdk.Content {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.responses)
}

// Sent returns the messages plugins sent with SendMessage, in order.
func (r *Runtime) Sent() []SentMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sent)
}

// Events returns the events plugins emitted, in order. They are recorded,
// not delivered.
func (r *Runtime) Events() []sdk.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Received returns the incoming messages connectors handed over with
// ReceiveMessage, in order. They are recorded, not handled.
func (r *Runtime) Received() []sdk.IncomingMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.received)
}

// ModelCalls returns every UseModel request, in order.
func (r *Runtime) ModelCalls() []sdk.ModelRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.modelCalls)
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// database is the first plugin started with the Runtime that serves the
// Database service, or nil.
// runStarted holds a run's message until the returned func is called.
func (r *Runtime) runStarted(id string, msg *pb.Memory) func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.runs == nil {
		r.runs = map[string]*pb.Memory{}
	}
	r.runs[id] = msg
	return func() {
		r.mu.Lock()
		delete(r.runs, id)
		r.mu.Unlock()
	}
}

func (r *Runtime) database() *boundPlugin { return r.registry().DB }

// storage answers the Database calls of the plugin of c, as the host does:
// only the methods marked for plugins, only for the agents the plugin was
// configured for, the messages the request carries made the agent's.
func (r *Runtime) storage(c *Client) contract.StorageHandler {
	return func(ctx context.Context, m *contract.StorageMethod, req proto.Message) (any, error) {
		ids, err := m.PluginAgents(req)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if !c.serves(id) {
				return nil, status.Errorf(codes.NotFound, "plugintest: plugin %s serves no agent %q: configure it first (Client.Configure)", c.manifest.Name, id)
			}
		}
		if db := r.database(); db != nil {
			return m.Forward(ctx, db.conn, req)
		}
		return r.store.serve(ctx, m, req)
	}
}

// runtimeService is the Runtime service a plugin calls.
type runtimeService struct {
	pb.UnimplementedRuntimeServer
	r *Runtime
}

func (s runtimeService) recordModelCall(req *pb.ModelRequest) sdk.ModelRequest {
	mr := *conv.ModelRequestFromProto(req)
	s.r.mu.Lock()
	s.r.modelCalls = append(s.r.modelCalls, mr)
	s.r.mu.Unlock()
	return mr
}

// modelPlugin is the plugin that serves the request's model type for the
// agent, as the host picks it: the named provider, else the highest
// priority, the earlier plugin on a tie.
func (s runtimeService) modelPlugin(req *pb.ModelRequest) (*boundPlugin, error) {
	b, err := s.r.registry().Model(req.GetType(), req.GetProvider())
	if err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "plugintest: no model configured for %s (set Runtime.Model): %v", req.GetType(), err)
	}
	return b, nil
}

// UseModel answers with Model, or with a plugin's model handler.
func (s runtimeService) UseModel(ctx context.Context, req *pb.ModelRequest) (*pb.ModelResponse, error) {
	mr := s.recordModelCall(req)
	if s.r.Model != nil {
		res, err := s.r.Model(ctx, mr)
		if err != nil {
			return nil, contract.Status(err)
		}
		return conv.ModelResponseToProto(res), nil
	}
	best, err := s.modelPlugin(req)
	if err != nil {
		return nil, err
	}
	res, err := best.pc.UseModel(ctx, req)
	if err != nil {
		return nil, err
	}
	res.Provider = best.Name()
	return res, nil
}

// StreamModel answers like UseModel: Model's answer comes as one text
// chunk, a plugin's model streams as the plugin streams it.
func (s runtimeService) StreamModel(req *pb.ModelRequest, stream pb.Runtime_StreamModelServer) error {
	ctx := stream.Context()
	mr := s.recordModelCall(req)
	if s.r.Model != nil {
		res, err := s.r.Model(ctx, mr)
		if err != nil {
			return contract.Status(err)
		}
		final := conv.ModelResponseToProto(res)
		if final.GetText() != "" {
			if err := stream.Send(&pb.ModelChunk{Text: final.GetText()}); err != nil {
				return err
			}
		}
		return stream.Send(&pb.ModelChunk{Final: final})
	}
	best, err := s.modelPlugin(req)
	if err != nil {
		return err
	}
	in, err := best.pc.StreamModel(ctx, req)
	if err != nil {
		return err
	}
	for {
		chunk, err := in.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return status.Errorf(codes.Internal, "plugintest: the model stream of %s ended without a final answer", best.Name())
			}
			return err
		}
		if f := chunk.GetFinal(); f != nil {
			f.Provider = best.Name()
		}
		if err := stream.Send(chunk); err != nil {
			return err
		}
		if chunk.GetFinal() != nil {
			return nil
		}
	}
}

// ComposeState runs the providers of the plugins started with this
// Runtime, one call per plugin, and merges the results in position order,
// as the host does (without its cache of states per message).
func (s runtimeService) ComposeState(ctx context.Context, req *pb.ComposeStateRequest) (*pb.State, error) {
	reg := s.r.registry()
	comp := reg.Compose(req)
	results := map[string]*pb.ProviderResult{}
	for _, b := range comp.ByPlugin.Order {
		names := comp.ByPlugin.Names[b]
		res, err := b.pc.GetProviders(ctx, &pb.GetProvidersRequest{AgentId: req.GetAgentId(), Names: names,
			Message: req.GetMessage(), RunId: req.GetRunId()})
		if err != nil {
			b.logf("plugintest: ComposeState: providers %v of %s failed: %v", names, b.Name(), err)
			continue
		}
		for _, pr := range res.GetResults() {
			if pr.GetError() != "" {
				b.logf("plugintest: ComposeState: provider %s failed: %s", pr.GetName(), pr.GetError())
				continue
			}
			results[pr.GetName()] = pr
		}
	}
	return comp.MergeState(nil, results, reg.ActionValues()), nil
}

// ProcessActions runs the actions the responses name, in order, each
// result handed to the next, as the host does: names resolve as the host
// resolves them (case, spaces, dashes and underscores aside; similes; an
// unambiguous part of a name), a name repeated in one response runs once,
// and an unknown or failing action is a failed outcome and the chain goes
// on. The host's announcements and records of each action are left out.
func (s runtimeService) ProcessActions(ctx context.Context, req *pb.ProcessActionsRequest) (*pb.ProcessActionsResponse, error) {
	return s.r.registry().RunActions(ctx, req, contract.ActionHooks[*boundPlugin]{
		Run: func(ctx context.Context, step contract.ActionStep[*boundPlugin], st *pb.State, previous []*pb.ActionOutcome, options []byte) (*pb.ActionResult, error) {
			name := step.Entry.Spec.GetName()
			res, err := step.Entry.Plugin.pc.RunAction(ctx, &pb.RunActionRequest{AgentId: req.GetAgentId(), Name: name,
				Message: req.GetMessage(), State: st, Responses: []*pb.Memory{step.Response}, RunId: req.GetRunId(),
				Previous: previous, OptionsJson: options})
			if err != nil {
				return nil, fmt.Errorf("action %s: %v", name, err)
			}
			return res.GetResult(), nil
		},
	}), nil
}

// Evaluate runs the evaluators of the plugins started with this Runtime,
// one call per plugin: all of them after a response, only the AlwaysRun
// ones otherwise.
func (s runtimeService) Evaluate(ctx context.Context, req *pb.EvaluateRequest) (*pb.EvaluateResponse, error) {
	out := &pb.EvaluateResponse{}
	run := s.r.registry().EvaluatorsToRun(req.GetDidRespond())
	for _, b := range run.Order {
		names := run.Names[b]
		res, err := b.pc.RunEvaluators(ctx, &pb.RunEvaluatorsRequest{AgentId: req.GetAgentId(), Names: names,
			Message: req.GetMessage(), State: req.GetState(), DidRespond: req.GetDidRespond(),
			Responses: req.GetResponses(), RunId: req.GetRunId()})
		if err != nil {
			for _, n := range names {
				out.Outcomes = append(out.Outcomes, &pb.EvaluatorOutcome{Name: n, Error: err.Error()})
			}
			continue
		}
		out.Outcomes = append(out.Outcomes, res.GetOutcomes()...)
	}
	return out, nil
}

// ValidateActions asks each plugin started with this Runtime which of its
// actions may be offered, as the host does: no names means all of them; a
// plugin that does not validate offers all its actions, one that fails
// offers none; the answer keeps the plugins' order.
func (s runtimeService) ValidateActions(ctx context.Context, req *pb.ValidateActionsRequest) (*pb.ValidateActionsResponse, error) {
	reg := s.r.registry()
	ask := reg.ActionsToValidate(req.GetNames())
	valid := map[string]bool{}
	for _, b := range ask.Order {
		names := ask.Names[b]
		res, err := b.pc.ValidateActions(ctx, &pb.ValidateActionsRequest{AgentId: req.GetAgentId(), Names: names,
			Message: req.GetMessage(), State: req.GetState()})
		if status.Code(err) == codes.Unimplemented {
			res, err = &pb.ValidateActionsResponse{Valid: names}, nil
		}
		if err != nil {
			b.logf("plugintest: ValidateActions of %s failed: %v", b.Name(), err)
			continue
		}
		for _, n := range res.GetValid() {
			valid[n] = true
		}
	}
	return &pb.ValidateActionsResponse{Valid: reg.ValidActions(req.GetNames(), valid)}, nil
}

// DescribeAgent answers with the manifests of the plugins started with this
// Runtime, in the order they were started: to a plugin under test they are
// the agent's plugins.
func (s runtimeService) DescribeAgent(_ context.Context, req *pb.DescribeAgentRequest) (*pb.DescribeAgentResponse, error) {
	out := &pb.DescribeAgentResponse{AgentId: req.GetAgentId()}
	for _, b := range s.r.registry().Plugins {
		out.Plugins = append(out.Plugins, b.m)
	}
	return out, nil
}

// recordEmitted records the events a handler handed back with its answer,
// at most as many as the daemon takes.
func (r *Runtime) recordEmitted(evs []*pb.EmittedEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range evs[:min(len(evs), contract.MaxEmitted)] {
		r.events = append(r.events, sdk.Event{Type: e.GetType(), RunID: e.GetRunId(), Source: e.GetSource(),
			Message: conv.MemoryFromProto(e.GetMessage()), Payload: conv.DecodeMap(e.GetPayloadJson())})
	}
}

// EmitEvent records the event.
func (s runtimeService) EmitEvent(_ context.Context, req *pb.EmitEventRequest) (*pb.EmitEventResponse, error) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.events = append(s.r.events, sdk.Event{Type: req.GetType(), RunID: req.GetRunId(), Source: req.GetSource(),
		Message: conv.MemoryFromProto(req.GetMessage()), Payload: conv.DecodeMap(req.GetPayloadJson())})
	return &pb.EmitEventResponse{}, nil
}

// ReceiveMessage records the message and answers with the agent's ids the
// host makes of the platform's. A message id seen before is a duplicate.
func (s runtimeService) ReceiveMessage(_ context.Context, req *pb.ReceiveMessageRequest) (*pb.ReceiveMessageResponse, error) {
	if req.GetSource() == "" {
		return nil, status.Error(codes.InvalidArgument, "receive message: source is empty")
	}
	agent := req.GetAgentId()
	in := sdk.IncomingMessage{Source: req.GetSource(), MessageID: req.GetMessageId(), ChannelID: req.GetChannelId(),
		ServerID: req.GetServerId(), UserID: req.GetUserId(), UserName: req.GetUserName(), DisplayName: req.GetDisplayName(),
		ThreadID: req.GetThreadId(), InReplyTo: req.GetInReplyTo(), Content: conv.ContentFromProto(req.GetContent()),
		ChannelType: sdk.ChannelType(req.GetChannelType()), RoomName: req.GetRoomName(), WorldName: req.GetWorldName(),
		CreatedAt: req.GetCreatedAt(), Wait: req.GetWait(), AuthorIsBot: req.GetAuthorIsBot()}
	ids := contract.IncomingIDs(agent, req)
	if ids.Message == "" {
		ids.Message = newID()
	}
	res := &pb.ReceiveMessageResponse{MemoryId: ids.Message, RoomId: ids.Room, WorldId: ids.World, EntityId: ids.Entity, RunId: newID()}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.received = append(s.r.received, in)
	if in.MessageID != "" {
		if s.r.receivedIDs == nil {
			s.r.receivedIDs = map[[2]string]bool{}
		}
		key := [2]string{agent, in.Source + "\x00" + in.MessageID}
		res.Duplicate = s.r.receivedIDs[key]
		s.r.receivedIDs[key] = true
	}
	return res, nil
}

// Respond records the content.
func (s runtimeService) Respond(ctx context.Context, req *pb.RespondRequest) (*pb.RespondResponse, error) {
	s.r.mu.Lock()
	msg := s.r.runs[req.GetRunId()]
	s.r.mu.Unlock()
	var stored string
	if req.GetMemoryId() == "" && msg.GetRoomId() != "" {
		// A reply its plugin did not store is stored in the run's room
		// first, as the daemon stores it.
		m := contract.ReplyMemory(newID(), req.GetAgentId(), msg, req.GetContent())
		if db := s.r.database(); db != nil {
			if _, err := pb.NewDatabaseClient(db.conn).CreateMemory(ctx, &pb.CreateMemoryRequest{AgentId: req.GetAgentId(), Memory: m, Table: m.GetTable()}); err != nil {
				return nil, err
			}
		} else {
			s.r.store.createMemory(req.GetAgentId(), *conv.MemoryFromProto(m), m.GetTable(), false)
		}
		stored = m.GetId()
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.responses = append(s.r.responses, conv.ContentFromProto(req.GetContent()))
	if stored != "" {
		return &pb.RespondResponse{MessageIds: []string{stored}}, nil
	}
	return &pb.RespondResponse{MessageIds: []string{fmt.Sprintf("response-%d", len(s.r.responses))}}, nil
}

// SendMessage records the message; it is not routed to any plugin.
func (s runtimeService) SendMessage(_ context.Context, req *pb.SendMessageRequest) (*pb.SendMessageResponse, error) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.sent = append(s.r.sent, SentMessage{Target: conv.TargetFromProto(req.GetTarget()), Content: conv.ContentFromProto(req.GetContent())})
	return &pb.SendMessageResponse{MessageIds: []string{fmt.Sprintf("sent-%d", len(s.r.sent))}}, nil
}

// GetSettings returns the settings the agent was configured with.
func (s runtimeService) GetSettings(_ context.Context, req *pb.GetSettingsRequest) (*pb.GetSettingsResponse, error) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	return &pb.GetSettingsResponse{Settings: s.r.settings[req.GetAgentId()]}, nil
}
