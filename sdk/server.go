package sdk

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/internal/memtrim"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// pluginServer is the Plugin service shim: it converts protocol messages to
// SDK types, finds the author's handler and converts the answer back.
type pluginServer struct {
	pb.UnimplementedPluginServer

	p   *Plugin
	log hclog.Logger
	// stopCtx is cancelled by Shutdown; every call in flight follows it.
	stopCtx    context.Context
	stopCancel context.CancelFunc

	actions    map[string]*Action
	providers  map[string]*Provider
	evaluators map[string]*Evaluator
	models     map[string]*Model
	events     map[string][]*EventHandler
	sources    map[string]*Source

	mu     sync.RWMutex
	agents map[string]*Agent
	rt     pb.RuntimeClient
	db     pb.DatabaseClient
	rtConn *grpc.ClientConn

	scope *pluginScope
	// hostMinor is the protocol minor of the host, from Init.
	hostMinor atomic.Uint32
}

func newPluginServer(p *Plugin, log hclog.Logger) *pluginServer {
	s := &pluginServer{
		p: p, log: log,
		actions: map[string]*Action{}, providers: map[string]*Provider{}, evaluators: map[string]*Evaluator{},
		models: map[string]*Model{}, events: map[string][]*EventHandler{}, sources: map[string]*Source{},
		agents: map[string]*Agent{},
		scope:  newPluginScope(p, log),
	}
	if p.Instances != nil {
		p.Instances.bind(p.Name, s.scope.pluginLog)
	}
	s.stopCtx, s.stopCancel = context.WithCancel(context.Background())
	for i := range p.Actions {
		s.actions[p.Actions[i].Name] = &p.Actions[i]
	}
	for i := range p.Providers {
		s.providers[p.Providers[i].Name] = &p.Providers[i]
	}
	for i := range p.Evaluators {
		s.evaluators[p.Evaluators[i].Name] = &p.Evaluators[i]
	}
	for i := range p.Models {
		s.models[p.Models[i].Type] = &p.Models[i]
	}
	for i := range p.Events {
		s.events[p.Events[i].Type] = append(s.events[p.Events[i].Type], &p.Events[i])
	}
	for i := range p.Sources {
		s.sources[p.Sources[i].Name] = &p.Sources[i]
	}
	return s
}

// manifest describes the plugin; it is computed from the definition alone.
func (s *pluginServer) manifest() *pb.Manifest {
	p := s.p
	m := &pb.Manifest{Name: p.Name, Version: p.Version, Description: p.Description,
		ProtocolMinor: contract.ProtocolMinor, Database: p.database != nil, Aliases: p.Aliases, Http: p.HTTP != nil}
	for _, a := range p.Actions {
		spec := &pb.ActionSpec{Name: a.Name, Description: a.Description, Similes: a.Similes}
		for _, conv := range a.Examples {
			c := &pb.Conversation{}
			for i := range conv {
				c.Messages = append(c.Messages, &pb.ExampleMessage{Name: conv[i].Name, Content: contentToProto(&conv[i].Content)})
			}
			spec.Examples = append(spec.Examples, c)
		}
		m.Actions = append(m.Actions, spec)
	}
	for _, pr := range p.Providers {
		m.Providers = append(m.Providers, &pb.ProviderSpec{Name: pr.Name, Description: pr.Description,
			Dynamic: pr.Dynamic, Private: pr.Private, Position: int32(pr.Position)})
	}
	for _, e := range p.Evaluators {
		m.Evaluators = append(m.Evaluators, &pb.EvaluatorSpec{Name: e.Name, Description: e.Description, Similes: e.Similes, AlwaysRun: e.AlwaysRun})
	}
	for _, md := range p.Models {
		m.Models = append(m.Models, &pb.ModelSpec{Type: md.Type, Priority: int32(md.Priority)})
	}
	seen := map[string]bool{}
	for _, e := range p.Events {
		if !seen[e.Type] {
			seen[e.Type] = true
			m.Events = append(m.Events, e.Type)
		}
	}
	for _, src := range p.Sources {
		m.MessageSources = append(m.MessageSources, src.Name)
	}
	for _, st := range p.Settings {
		m.Settings = append(m.Settings, &pb.SettingSpec{Name: st.Name, Description: st.Description, Required: st.Required, Secret: st.Secret,
			DefaultValue: st.Default, Endpoint: st.Endpoint})
	}
	return m
}

func (s *pluginServer) Describe(context.Context, *pb.DescribeRequest) (*pb.Manifest, error) {
	return s.manifest(), nil
}

// wakeOnReply lets memtrim populate ahead of the work a reply from the
// host brings (memtrim.Wake).
func wakeOnReply(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoke grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoke(ctx, method, req, reply, cc, opts...)
	memtrim.Wake()
	return err
}

func (s *pluginServer) Init(ctx context.Context, req *pb.InitRequest) (*pb.InitResponse, error) {
	if req.GetRuntimeAddress() != "" {
		conn, err := grpc.NewClient(req.GetRuntimeAddress(), append([]grpc.DialOption{
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(runtimeToken(req.GetRuntimeToken())),
			grpc.WithChainUnaryInterceptor(wakeOnReply),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(contract.MaxMessageSize), grpc.MaxCallSendMsgSize(contract.MaxMessageSize))},
			contract.DialWindow()...)...)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "dial runtime %s: %v", req.GetRuntimeAddress(), err)
		}
		s.mu.Lock()
		if s.rtConn != nil {
			_ = s.rtConn.Close()
		}
		// Storage is the Database service on the same connection: the host
		// checks each call and forwards it to the database plugin.
		s.rtConn, s.rt, s.db = conn, pb.NewRuntimeClient(conn), pb.NewDatabaseClient(conn)
		s.mu.Unlock()
	}
	s.hostMinor.Store(req.GetProtocolMinor())
	if s.p.Init != nil {
		host := Host{Version: req.GetHostVersion(), DataDir: req.GetDataDir(), Settings: req.GetSettings(),
			ProtocolMinor: int(min(req.GetProtocolMinor(), contract.ProtocolMinor)), Features: req.GetFeatures()}
		if err := s.p.Init(ctx, host); err != nil {
			// The host names the plugin and the call.
			return nil, contract.Status(err)
		}
	}
	return &pb.InitResponse{}, nil
}

func (s *pluginServer) Configure(ctx context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	if req.GetAgentId() == "" {
		return nil, status.Error(codes.InvalidArgument, "configure: agent_id is empty")
	}
	var ch *Character
	if len(req.GetCharacterJson()) > 0 {
		c, err := parseCharacter("", req.GetCharacterJson())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "configure agent %s: %v", req.GetAgentId(), err)
		}
		ch = c
	}
	s.mu.RLock()
	rt, db := s.rt, s.db
	s.mu.RUnlock()
	a := &Agent{ID: req.GetAgentId(), Character: ch, Settings: req.GetSettings(), rt: rt, db: db, plugin: s.scope,
		pluginSet: req.GetPluginSet()}
	if a.Settings == nil {
		a.Settings = map[string]string{}
	}
	warnings, err := s.configure(ctx, a)
	if err != nil {
		return nil, contract.Status(fmt.Errorf("configure agent %s in plugin %s: %w", a.ID, s.p.Name, err))
	}
	s.mu.Lock()
	s.agents[a.ID] = a
	s.mu.Unlock()
	if len(s.p.Events) > 0 || len(s.p.Models) > 0 {
		a.describeSoon()
	}
	return &pb.ConfigureResponse{Warnings: validUTF8s(warnings)}, nil
}

func (s *pluginServer) Unconfigure(ctx context.Context, req *pb.UnconfigureRequest) (*pb.UnconfigureResponse, error) {
	s.mu.Lock()
	a := s.agents[req.GetAgentId()]
	delete(s.agents, req.GetAgentId())
	s.mu.Unlock()
	if a != nil && s.p.Unconfigure != nil {
		s.p.Unconfigure(ctx, a)
	}
	if s.p.Instances != nil {
		// Also for an agent whose Configure has not returned yet: its
		// instance is then disposed of as soon as it is made.
		s.p.Instances.unconfigure(req.GetAgentId())
	}
	return &pb.UnconfigureResponse{}, nil
}

// agent finds a configured agent. A plugin that was restarted is configured
// again by the host before it gets calls, so a miss is the host's bug or a
// race with Unconfigure.
func (s *pluginServer) agent(id string) (*Agent, error) {
	s.mu.RLock()
	a := s.agents[id]
	s.mu.RUnlock()
	if a == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "agent %q is not configured in plugin %s", id, s.p.Name)
	}
	return a, nil
}

func (s *pluginServer) GetProviders(ctx context.Context, req *pb.GetProvidersRequest) (*pb.GetProvidersResponse, error) {
	ctx = WithRunID(ctx, req.GetRunId())
	a, err := s.agent(req.GetAgentId())
	if err != nil {
		return nil, err
	}
	msg := memoryFromProto(req.GetMessage())
	st := stateFromProto(req.GetState())
	names := req.GetNames()
	results := make([]*pb.ProviderResult, len(names))
	run := func(i int) {
		results[i] = s.runProvider(ctx, a, names[i], msg, st)
	}
	if len(names) == 1 {
		run(0)
	} else {
		// Providers are independent; elizaOS runs them in parallel too.
		var wg sync.WaitGroup
		for i := range names {
			wg.Add(1)
			go func() { defer wg.Done(); run(i) }()
		}
		wg.Wait()
	}
	return &pb.GetProvidersResponse{Results: results}, nil
}

func (s *pluginServer) runProvider(ctx context.Context, a *Agent, name string, msg *Memory, st *State) (res *pb.ProviderResult) {
	res = &pb.ProviderResult{Name: name}
	p := s.providers[name]
	if p == nil || p.Get == nil {
		res.Error = fmt.Sprintf("plugin %s has no provider %q", s.p.Name, name)
		return res
	}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("provider panicked", "provider", name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			res = &pb.ProviderResult{Name: name, Error: validUTF8(fmt.Sprintf("provider %s panicked: %v", name, r))}
		}
	}()
	out, err := p.Get(ctx, a, msg, st)
	if err != nil {
		res.Error = validUTF8(err.Error())
		return res
	}
	res.Text = validUTF8(out.Text)
	res.ValuesJson = encodeMap(out.Values)
	res.DataJson = encodeMap(out.Data)
	return res
}

func (s *pluginServer) ValidateActions(ctx context.Context, req *pb.ValidateActionsRequest) (*pb.ValidateActionsResponse, error) {
	a, err := s.agent(req.GetAgentId())
	if err != nil {
		return nil, err
	}
	msg := memoryFromProto(req.GetMessage())
	st := stateFromProto(req.GetState())
	names := req.GetNames()
	ok := make([]bool, len(names))
	// Validations often ask the host something; run them side by side so a
	// message waits for the slowest, not for the sum.
	var wg sync.WaitGroup
	for i, name := range names {
		act := s.actions[name]
		if act == nil {
			continue
		}
		if act.Validate == nil {
			ok[i] = true
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok[i] = s.safeValidate(ctx, "action", name, func() bool { return act.Validate(ctx, a, msg, st) })
		}()
	}
	wg.Wait()
	res := &pb.ValidateActionsResponse{}
	for i, name := range names {
		if ok[i] {
			res.Valid = append(res.Valid, name)
		}
	}
	return res, nil
}

// safeValidate treats a panicking validate as "not offered".
func (s *pluginServer) safeValidate(ctx context.Context, kind, name string, f func() bool) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error(kind+" validate panicked", "name", name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			ok = false
		}
	}()
	return f()
}

func (s *pluginServer) RunAction(ctx context.Context, req *pb.RunActionRequest) (_ *pb.RunActionResponse, err error) {
	ctx = withinAction(WithRunID(ctx, req.GetRunId()))
	defer s.recoverAs(&err, "action", req.GetName())
	a, err := s.agent(req.GetAgentId())
	if err != nil {
		return nil, err
	}
	act := s.actions[req.GetName()]
	if act == nil || act.Handler == nil {
		return nil, status.Errorf(codes.NotFound, "plugin %s has no action %q", s.p.Name, req.GetName())
	}
	call := &ActionCall{Message: memoryFromProto(req.GetMessage()), State: stateFromProto(req.GetState()),
		Responses: memoriesFromProto(req.GetResponses()), RunID: req.GetRunId(),
		Previous: outcomesFromProto(req.GetPrevious()), Options: decodeMap(req.GetOptionsJson())}
	res, err := act.Handler(ctx, a, call)
	if err != nil {
		// An action that fails is a result, not a broken call: the chain
		// goes on and the failure is recorded.
		res.Success = false
		if res.Error == "" {
			res.Error = err.Error()
		}
	}
	return &pb.RunActionResponse{Result: actionResultToProto(&res)}, nil
}

func (s *pluginServer) RunEvaluators(ctx context.Context, req *pb.RunEvaluatorsRequest) (*pb.RunEvaluatorsResponse, error) {
	ctx = WithRunID(ctx, req.GetRunId())
	a, err := s.agent(req.GetAgentId())
	if err != nil {
		return nil, err
	}
	call := &EvaluatorCall{Message: memoryFromProto(req.GetMessage()), State: stateFromProto(req.GetState()),
		DidRespond: req.GetDidRespond(), Responses: memoriesFromProto(req.GetResponses()), RunID: req.GetRunId()}
	if call.Message != nil && call.Message.ID != "" {
		// An evaluator that composes twice keeps the first composition's
		// values, as an event handler does.
		defer s.scope.handle(stateKey(a.ID, call.Message.ID))()
	}
	names := req.GetNames()
	outs := make([]*pb.EvaluatorOutcome, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = s.runEvaluator(ctx, a, name, call)
		}()
	}
	wg.Wait()
	return &pb.RunEvaluatorsResponse{Outcomes: outs}, nil
}

func (s *pluginServer) runEvaluator(ctx context.Context, a *Agent, name string, call *EvaluatorCall) (out *pb.EvaluatorOutcome) {
	out = &pb.EvaluatorOutcome{Name: name}
	ev := s.evaluators[name]
	if ev == nil || ev.Handler == nil {
		out.Error = fmt.Sprintf("plugin %s has no evaluator %q", s.p.Name, name)
		return out
	}
	if !call.DidRespond && !ev.AlwaysRun {
		return out
	}
	if ev.Validate != nil && !s.safeValidate(ctx, "evaluator", name, func() bool { return ev.Validate(ctx, a, call.Message, call.State) }) {
		return out
	}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("evaluator panicked", "evaluator", name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			out = &pb.EvaluatorOutcome{Name: name, Ran: true, Error: validUTF8(fmt.Sprintf("evaluator %s panicked: %v", name, r))}
		}
	}()
	out.Ran = true
	if err := ev.Handler(ctx, a, call); err != nil {
		out.Error = validUTF8(err.Error())
	}
	return out
}

func (s *pluginServer) HandleEvent(ctx context.Context, req *pb.HandleEventRequest) (*pb.HandleEventResponse, error) {
	ctx = WithRunID(ctx, req.GetRunId())
	a, err := s.agent(req.GetAgentId())
	if err != nil {
		return nil, err
	}
	hs := s.events[req.GetType()]
	if len(hs) == 0 {
		return nil, status.Errorf(codes.NotFound, "plugin %s does not handle event %s", s.p.Name, req.GetType())
	}
	ev := &Event{Type: req.GetType(), RunID: req.GetRunId(), Source: req.GetSource(),
		Message: memoryFromProto(req.GetMessage()), Payload: decodeMap(req.GetPayloadJson())}
	if ev.Message != nil && ev.Message.ID != "" {
		// The states composed for the message are kept while its handlers
		// run, and are garbage once they return, as the host's are.
		defer s.scope.handle(stateKey(a.ID, ev.Message.ID))()
	}
	var col *emittedEvents
	if s.hostMinor.Load() >= 2 {
		col = &emittedEvents{agentID: a.ID}
		ctx = context.WithValue(ctx, emittedKey{}, col)
	}
	var errs []error
	for _, h := range hs {
		// One handler's panic must not skip the others.
		if err := s.handleOne(ctx, h, a, ev); err != nil {
			errs = append(errs, err)
		}
	}
	emitted := col.take()
	if err := errors.Join(errs...); err != nil {
		// A failed call has no answer to carry them.
		a.emitNow(ctx, emitted)
		return nil, contract.Status(fmt.Errorf("%s: %w", req.GetType(), err))
	}
	return &pb.HandleEventResponse{Emitted: emitted}, nil
}

func (s *pluginServer) handleOne(ctx context.Context, h *EventHandler, a *Agent, ev *Event) (err error) {
	defer s.recoverAs(&err, "event handler", ev.Type)
	return h.Handle(ctx, a, ev)
}

// recoverAs turns a panic in a named handler into that call's error.
func (s *pluginServer) recoverAs(err *error, kind, name string) {
	if r := recover(); r != nil {
		s.log.Error(kind+" panicked", "name", name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		*err = status.Error(codes.Internal, validUTF8(fmt.Sprintf("%s %s panicked: %v", kind, name, r)))
	}
}

func (s *pluginServer) UseModel(ctx context.Context, req *pb.ModelRequest) (_ *pb.ModelResponse, err error) {
	ctx = WithRunID(ctx, req.GetRunId())
	defer s.recoverAs(&err, "model", req.GetType())
	a, err := s.agent(req.GetAgentId())
	if err != nil {
		return nil, err
	}
	m := s.models[req.GetType()]
	if m == nil || m.Handler == nil {
		return nil, status.Errorf(codes.NotFound, "plugin %s has no model of type %s", s.p.Name, req.GetType())
	}
	res, err := m.Handler(ctx, a, modelRequestFromProto(req))
	if err != nil {
		return nil, contract.Status(fmt.Errorf("model %s: %w", req.GetType(), err))
	}
	return modelResponseToProto(res), nil
}

func (s *pluginServer) StreamModel(req *pb.ModelRequest, stream pb.Plugin_StreamModelServer) (err error) {
	a, err := s.agent(req.GetAgentId())
	if err != nil {
		return err
	}
	m := s.models[req.GetType()]
	if m == nil || (m.Handler == nil && m.Stream == nil) {
		return status.Errorf(codes.NotFound, "plugin %s has no model of type %s", s.p.Name, req.GetType())
	}
	defer s.recoverAs(&err, "model", req.GetType())
	ctx, cancel := context.WithCancel(WithRunID(stream.Context(), req.GetRunId()))
	defer cancel()
	stop := context.AfterFunc(s.stopCtx, cancel)
	defer stop()
	var res *ModelResponse
	if m.Stream != nil {
		res, err = m.Stream(ctx, a, modelRequestFromProto(req), func(text string) error {
			return stream.Send(&pb.ModelChunk{Text: validUTF8(text)})
		})
	} else {
		res, err = m.Handler(ctx, a, modelRequestFromProto(req))
		if err == nil && res != nil && res.Text != "" {
			err = stream.Send(&pb.ModelChunk{Text: validUTF8(res.Text)})
		}
	}
	if err != nil {
		return contract.Status(fmt.Errorf("model %s: %w", req.GetType(), err))
	}
	return stream.Send(&pb.ModelChunk{Final: modelResponseToProto(res)})
}

func (s *pluginServer) SendMessage(ctx context.Context, req *pb.SendMessageRequest) (*pb.SendMessageResponse, error) {
	a, err := s.agent(req.GetAgentId())
	if err != nil {
		return nil, err
	}
	t := targetFromProto(req.GetTarget())
	src := s.sources[t.Source]
	if src == nil || src.Send == nil {
		return nil, status.Errorf(codes.NotFound, "plugin %s cannot send to source %q", s.p.Name, t.Source)
	}
	if id := req.GetDeliveryId(); id != "" {
		ctx = context.WithValue(ctx, deliveryKey{}, id)
	}
	ids, err := src.Send(ctx, a, t, contentFromProto(req.GetContent()))
	if err != nil {
		return nil, contract.Status(fmt.Errorf("send to %s: %w", t.Source, err))
	}
	return &pb.SendMessageResponse{MessageIds: ids}, nil
}

func (s *pluginServer) Shutdown(ctx context.Context, _ *pb.ShutdownRequest) (*pb.ShutdownResponse, error) {
	s.stopCancel()
	if s.p.Instances != nil {
		// Before the Runtime connection closes: closing an instance may
		// still tell the host something. ctx itself was just cancelled
		// with every other call; the host's deadline still holds.
		cctx, cancel := detach(ctx)
		s.p.Instances.closeAll(cctx)
		cancel()
	}
	s.mu.Lock()
	if s.rtConn != nil {
		_ = s.rtConn.Close()
		s.rtConn, s.rt, s.db = nil, nil, nil
	}
	s.mu.Unlock()
	return &pb.ShutdownResponse{}, nil
}

// recoverUnary turns a panic in any handler into an error for that call, so
// one bad message never takes the plugin process down.
func recoverUnary(log hclog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("handler panicked", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = status.Errorf(codes.Internal, "plugin panicked in %s: %v", shortMethod(info.FullMethod), r)
			}
		}()
		return h(ctx, req)
	}
}

func shortMethod(full string) string {
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[i+1:]
	}
	return full
}
