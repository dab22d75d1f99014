package plugincheck

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"net"
	"path/filepath"
	"sync"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// runtime is the Runtime the checked plugin calls: it answers as a host
// with one agent and an empty database would, checks the runtime token on
// every call as the host does, records who called what during which check,
// and on demand holds the next call until the plugin gives up on it (the
// cancellation check).
type runtime struct {
	token string
	srv   *grpc.Server
	addr  string

	mu       sync.Mutex
	phase    string
	calls    []rtCall
	agents   map[string]map[string]string // configured agent → its settings
	manifest *pb.Manifest
	hold     *holdNext
	replies  int
}

// rtCall is one Runtime call the plugin made.
type rtCall struct {
	Method string
	// Phase is what the check was doing: "provider WEATHER", …
	Phase string
	// Token: the call carried the plugin's runtime token.
	Token bool
}

// holdNext holds the first Runtime call made while it is set, until its
// caller cancels it (cancelled) or the check lets it go (release).
type holdNext struct {
	arrived   chan string
	cancelled chan struct{}
	release   chan struct{}
	taken     bool
}

func startRuntime(dir string) (*runtime, error) {
	path := filepath.Join(dir, "runtime.sock")
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen for the plugin's Runtime calls: %w", err)
	}
	r := &runtime{token: rand.Text(), agents: map[string]map[string]string{}, addr: "unix://" + path}
	r.srv = grpc.NewServer(grpc.MaxRecvMsgSize(contract.MaxMessageSize), grpc.MaxSendMsgSize(contract.MaxMessageSize),
		grpc.ForceServerCodecV2(contract.Codec{}),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := r.admit(ctx, info.FullMethod); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := r.admit(ss.Context(), info.FullMethod); err != nil {
				return err
			}
			return h(srv, ss)
		}))
	pb.RegisterRuntimeServer(r.srv, runtimeService{r: r})
	r.srv.RegisterService(contract.StorageService(r.storage), nil)
	go func() { _ = r.srv.Serve(lis) }()
	return r, nil
}

func (r *runtime) stop() { r.srv.Stop() }

// setPhase names what the check does now, for the calls made meanwhile.
func (r *runtime) setPhase(p string) {
	r.mu.Lock()
	r.phase = p
	r.mu.Unlock()
}

// callsIn returns the calls made during a phase.
func (r *runtime) callsIn(phase string) []rtCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []rtCall
	for _, c := range r.calls {
		if c.Phase == phase {
			out = append(out, c)
		}
	}
	return out
}

func (r *runtime) allCalls() []rtCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]rtCall(nil), r.calls...)
}

// holdNextCall makes the next Runtime call wait (see holdNext).
func (r *runtime) holdNextCall() *holdNext {
	h := &holdNext{arrived: make(chan string, 1), cancelled: make(chan struct{}), release: make(chan struct{})}
	r.mu.Lock()
	r.hold = h
	r.mu.Unlock()
	return h
}

// stopHolding lets a held call go, and the calls after it.
func (r *runtime) stopHolding(h *holdNext) {
	r.mu.Lock()
	if r.hold == h {
		r.hold = nil
	}
	r.mu.Unlock()
	close(h.release)
}

// admit records a call, refuses it without the token, and holds it when
// asked to.
func (r *runtime) admit(ctx context.Context, method string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	ok := false
	for _, v := range md.Get(contract.RuntimeTokenMetadata) {
		if subtle.ConstantTimeCompare([]byte(v), []byte("Bearer "+r.token)) == 1 {
			ok = true
		}
	}
	r.mu.Lock()
	r.calls = append(r.calls, rtCall{Method: method, Phase: r.phase, Token: ok})
	h := r.hold
	held := h != nil && !h.taken
	if held {
		h.taken = true
	}
	r.mu.Unlock()
	if !ok {
		return status.Error(codes.Unauthenticated, "runtime call without the plugin's runtime token: present InitRequest.runtime_token as \"authorization: Bearer <token>\"")
	}
	if !held {
		return nil
	}
	h.arrived <- method
	select {
	case <-ctx.Done():
		close(h.cancelled)
		return status.FromContextError(ctx.Err()).Err()
	case <-h.release:
		return status.Error(codes.Unavailable, "agenthost plugins check held this call and let it go")
	}
}

// configured records an agent the plugin is being configured for; from
// then on its Runtime calls for it are answered, as in the daemon.
func (r *runtime) configured(agentID string, settings map[string]string) {
	r.mu.Lock()
	r.agents[agentID] = settings
	r.mu.Unlock()
}

func (r *runtime) unconfigured(agentID string) {
	r.mu.Lock()
	delete(r.agents, agentID)
	r.mu.Unlock()
}

func (r *runtime) agent(id string) (map[string]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.agents[id]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "the plugin serves no agent %q (agenthost plugins check configured %d)", id, len(r.agents))
	}
	return s, nil
}

// storage answers the plugin's Database calls as an empty database that
// keeps nothing: reads find nothing, writes succeed.
func (r *runtime) storage(_ context.Context, m *contract.StorageMethod, req proto.Message) (any, error) {
	if !m.Plugins {
		return nil, status.Errorf(codes.PermissionDenied, "Database.%s is the host's alone", m.Name)
	}
	ids, err := m.PluginAgents(req)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if _, err := r.agent(id); err != nil {
			return nil, err
		}
	}
	return &contract.Frame{}, nil
}

// runtimeService answers each Runtime method plausibly.
type runtimeService struct {
	pb.UnimplementedRuntimeServer
	r *runtime
}

const sampleAnswer = "A sample answer from agenthost plugins check."

func (s runtimeService) model(req *pb.ModelRequest) (*pb.ModelResponse, error) {
	if _, err := s.r.agent(req.GetAgentId()); err != nil {
		return nil, err
	}
	res := &pb.ModelResponse{Model: "plugins-check", Provider: "plugins-check"}
	switch req.GetType() {
	case sdk.ModelTextEmbedding:
		res.Embedding = make([]float32, 384)
		res.Embedding[0] = 1
	case sdk.ModelObjectSmall, sdk.ModelObjectLarge:
		res.Json = []byte(`{"answer": "` + sampleAnswer + `"}`)
	default:
		res.Text = sampleAnswer
	}
	return res, nil
}

func (s runtimeService) UseModel(_ context.Context, req *pb.ModelRequest) (*pb.ModelResponse, error) {
	return s.model(req)
}

func (s runtimeService) StreamModel(req *pb.ModelRequest, stream pb.Runtime_StreamModelServer) error {
	res, err := s.model(req)
	if err != nil {
		return err
	}
	if err := stream.Send(&pb.ModelChunk{Text: res.GetText()}); err != nil {
		return err
	}
	return stream.Send(&pb.ModelChunk{Final: res})
}

func (s runtimeService) ComposeState(_ context.Context, req *pb.ComposeStateRequest) (*pb.State, error) {
	if _, err := s.r.agent(req.GetAgentId()); err != nil {
		return nil, err
	}
	return sampleState(), nil
}

func (s runtimeService) ProcessActions(_ context.Context, req *pb.ProcessActionsRequest) (*pb.ProcessActionsResponse, error) {
	if _, err := s.r.agent(req.GetAgentId()); err != nil {
		return nil, err
	}
	return &pb.ProcessActionsResponse{}, nil
}

func (s runtimeService) Evaluate(_ context.Context, req *pb.EvaluateRequest) (*pb.EvaluateResponse, error) {
	if _, err := s.r.agent(req.GetAgentId()); err != nil {
		return nil, err
	}
	return &pb.EvaluateResponse{}, nil
}

func (s runtimeService) EmitEvent(_ context.Context, req *pb.EmitEventRequest) (*pb.EmitEventResponse, error) {
	if _, err := s.r.agent(req.GetAgentId()); err != nil {
		return nil, err
	}
	return &pb.EmitEventResponse{}, nil
}

func (s runtimeService) ReceiveMessage(_ context.Context, req *pb.ReceiveMessageRequest) (*pb.ReceiveMessageResponse, error) {
	if _, err := s.r.agent(req.GetAgentId()); err != nil {
		return nil, err
	}
	id := s.r.nextID()
	return &pb.ReceiveMessageResponse{MemoryId: id, RoomId: sampleRoom, EntityId: sampleUser}, nil
}

func (s runtimeService) Respond(_ context.Context, req *pb.RespondRequest) (*pb.RespondResponse, error) {
	if _, err := s.r.agent(req.GetAgentId()); err != nil {
		return nil, err
	}
	return &pb.RespondResponse{MessageIds: []string{s.r.nextID()}}, nil
}

func (s runtimeService) SendMessage(_ context.Context, req *pb.SendMessageRequest) (*pb.SendMessageResponse, error) {
	if _, err := s.r.agent(req.GetAgentId()); err != nil {
		return nil, err
	}
	return &pb.SendMessageResponse{MessageIds: []string{s.r.nextID()}}, nil
}

func (s runtimeService) GetSettings(_ context.Context, req *pb.GetSettingsRequest) (*pb.GetSettingsResponse, error) {
	settings, err := s.r.agent(req.GetAgentId())
	if err != nil {
		return nil, err
	}
	return &pb.GetSettingsResponse{Settings: settings}, nil
}

func (s runtimeService) DescribeAgent(_ context.Context, req *pb.DescribeAgentRequest) (*pb.DescribeAgentResponse, error) {
	if _, err := s.r.agent(req.GetAgentId()); err != nil {
		return nil, err
	}
	s.r.mu.Lock()
	m := s.r.manifest
	s.r.mu.Unlock()
	out := &pb.DescribeAgentResponse{AgentId: req.GetAgentId(), Name: sampleAgentName}
	if m != nil {
		out.Plugins = []*pb.Manifest{m}
	}
	return out, nil
}

func (s runtimeService) ValidateActions(_ context.Context, req *pb.ValidateActionsRequest) (*pb.ValidateActionsResponse, error) {
	if _, err := s.r.agent(req.GetAgentId()); err != nil {
		return nil, err
	}
	return &pb.ValidateActionsResponse{Valid: req.GetNames()}, nil
}

func (r *runtime) nextID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replies++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", r.replies)
}
