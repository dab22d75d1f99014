package plugintest

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// HostVersion is the host version a plugin under test is told in Init.
const HostVersion = "plugintest"

// Manifest is what a plugin declared in Describe, in plain Go types.
type Manifest struct {
	Name        string
	Version     string
	Description string
	// ProtocolMinor is the minor of agenthost.plugin.v1 the plugin was
	// built against.
	ProtocolMinor int
	Actions       []string
	Providers     []ProviderInfo
	Evaluators    []string
	Models        []ModelInfo
	Events        []string
	Sources       []string
	Database      bool
	// HTTP says the plugin serves HTTP requests (HandleHTTP).
	HTTP bool
	// Settings names the settings the plugin declares.
	Settings []string
}

// ProviderInfo is one provider of a [Manifest].
type ProviderInfo struct {
	Name     string
	Dynamic  bool
	Private  bool
	Position int
}

// ModelInfo is one model type of a [Manifest].
type ModelInfo struct {
	Type     string
	Priority int
}

// Option changes how [Start] sets a plugin up.
type Option func(*config)

type config struct {
	log          io.Writer
	env          []string
	rt           *Runtime
	dataDir      string
	hostSettings map[string]string
}

// WithRuntime makes the plugin talk to rt instead of a new, empty
// [Runtime]. Use it to set rt's function fields, to seed it, or to share one
// Runtime between several plugins started in the same test.
func WithRuntime(rt *Runtime) Option { return func(c *config) { c.rt = rt } }

// WithDataDir sets the data directory the plugin is told in Init. The
// default is a fresh t.TempDir().
func WithDataDir(dir string) Option { return func(c *config) { c.dataDir = dir } }

// WithHostSettings sets the host-level settings the plugin is told in Init.
func WithHostSettings(s map[string]string) Option { return func(c *config) { c.hostSettings = s } }

// Client calls a plugin the way the host does: over gRPC, through the
// protocol's messages. Its methods take and return the SDK's plain types.
// Errors from the plugin are gRPC status errors; inspect them with
// status.Code. A Client is safe for concurrent use.
type Client struct {
	conn     *grpc.ClientConn
	pc       pb.PluginClient
	rt       *Runtime
	manifest Manifest

	// proc is the plugin process, for a Client of StartExecutable.
	proc *Process

	mu sync.Mutex
	// agents are those the plugin was configured for: the only ones it may
	// store for, as in the daemon.
	agents map[string]bool
}

// Start serves p with the SDK's own gRPC server (as [sdk.Serve] does) on a unix socket, serves a
// [Runtime] for it on another, hands the plugin the Runtime's address in
// Init, and returns a Client connected to the plugin. Everything is stopped
// when the test ends. Start fails the test if p is not a valid plugin or if
// its Init fails.
func Start(t testing.TB, p sdk.Plugin, opts ...Option) *Client {
	t.Helper()
	cfg := newConfig(t, opts)
	logs := &testLog{t: t}
	t.Cleanup(logs.close) // runs last: nothing logs to t after the test
	log := hclog.New(&hclog.LoggerOptions{Name: p.Name, Output: logs, Level: hclog.Debug})
	srv, err := conv.NewGRPCServer(p, log)
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	dir := socketDir(t)
	pluginLis := listen(t, filepath.Join(dir, "p.sock"))
	go func() { _ = srv.Serve(pluginLis) }()
	conn, err := grpc.NewClient("unix://"+pluginLis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(contract.MaxMessageSize), grpc.MaxCallSendMsgSize(contract.MaxMessageSize)))
	if err != nil {
		srv.Stop()
		t.Fatalf("plugintest: dial plugin: %v", err)
	}
	t.Cleanup(func() { stopServer(srv, 5*time.Second) })
	return attach(t, cfg, conn, p.Name, logs, filepath.Join(dir, "r.sock"))
}

func newConfig(t testing.TB, opts []Option) config {
	cfg := config{}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.rt == nil {
		cfg.rt = &Runtime{}
	}
	if cfg.dataDir == "" {
		cfg.dataDir = t.TempDir()
	}
	return cfg
}

// attach serves a Runtime at runtimeSock for the plugin on conn, describes
// and initialises the plugin, and returns its Client. Its cleanup shuts the
// plugin down before the caller's, which stop the plugin itself.
func attach(t testing.TB, cfg config, conn *grpc.ClientConn, name string, logs *testLog, runtimeSock string) *Client {
	t.Helper()
	runtimeLis := listen(t, runtimeSock)
	c := &Client{rt: cfg.rt, agents: map[string]bool{}}
	// The plugin must present the token it gets in Init on every Runtime
	// call, as it must in the daemon. Its storage calls are the Database
	// service on the same connection, answered as the host answers them.
	token := rand.Text()
	rtSrv := grpc.NewServer(grpc.MaxRecvMsgSize(contract.MaxMessageSize), grpc.MaxSendMsgSize(contract.MaxMessageSize),
		grpc.ForceServerCodecV2(contract.Codec{}),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := checkToken(ctx, token); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := checkToken(ss.Context(), token); err != nil {
				return err
			}
			return h(srv, ss)
		}))
	pb.RegisterRuntimeServer(rtSrv, runtimeService{r: cfg.rt})
	rtSrv.RegisterService(contract.StorageService(cfg.rt.storage(c)), nil)
	go func() { _ = rtSrv.Serve(runtimeLis) }()

	c.conn, c.pc = conn, pb.NewPluginClient(conn)
	t.Cleanup(func() {
		// Shutdown cancels the calls in flight, so that the plugin stops
		// at once unless a handler ignores its context.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = c.pc.Shutdown(ctx, &pb.ShutdownRequest{})
		_ = conn.Close()
		stopServer(rtSrv, 5*time.Second)
	})

	ctx, cancel := context.WithTimeout(context.Background(), contract.DefaultCallTimeout)
	defer cancel()
	m, err := c.pc.Describe(ctx, &pb.DescribeRequest{HostProtocolMinor: contract.ProtocolMinor, HostVersion: HostVersion})
	if err != nil {
		t.Fatalf("plugintest: describe %s: %v", name, err)
	}
	c.manifest = manifestFromProto(m)
	unbind := cfg.rt.bind(&boundPlugin{pc: c.pc, conn: conn, m: m,
		logf: func(format string, args ...any) { _, _ = fmt.Fprintf(logs, format, args...) }})
	t.Cleanup(unbind)
	_, err = c.pc.Init(ctx, &pb.InitRequest{RuntimeAddress: "unix://" + runtimeLis.Addr().String(),
		ProtocolMinor: contract.ProtocolMinor, HostVersion: HostVersion, DataDir: cfg.dataDir, Settings: cfg.hostSettings,
		RuntimeToken: token, Features: contract.Features()})
	if err != nil {
		t.Fatalf("plugintest: init %s: %v", name, err)
	}
	if m.GetDatabase() {
		// As the daemon does before any agent stores anything.
		if _, err := pb.NewDatabaseClient(conn).Migrate(ctx, &pb.MigrateRequest{}); err != nil {
			t.Fatalf("plugintest: migrate the database of %s: %v", name, err)
		}
	}
	return c
}

// checkToken refuses a Runtime call that does not carry the plugin's
// runtime token, as the daemon does.
func checkToken(ctx context.Context, token string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get(contract.RuntimeTokenMetadata) {
		if subtle.ConstantTimeCompare([]byte(v), []byte("Bearer "+token)) == 1 {
			return nil
		}
	}
	return status.Error(codes.Unauthenticated, "runtime call without the plugin's runtime token (InitRequest.runtime_token)")
}

// socketDir returns a directory for the sockets whose paths fit the ~108
// bytes a unix socket path may have.
func socketDir(t testing.TB) string {
	dir := t.TempDir()
	if len(dir) <= 80 {
		return dir
	}
	dir, err := os.MkdirTemp("", "pt")
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func listen(t testing.TB, path string) net.Listener {
	lis, err := net.Listen("unix", path)
	if err != nil {
		t.Fatalf("plugintest: listen: %v", err)
	}
	return lis
}

// stopServer stops s gracefully, or at once after d.
func stopServer(s *grpc.Server, d time.Duration) {
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		s.Stop()
		<-done
	}
}

// testLog sends the plugin's log lines to t.Log until the test is over.
type testLog struct {
	mu     sync.Mutex
	t      testing.TB
	also   io.Writer
	closed bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.also != nil {
		_, _ = l.also.Write(p)
	}
	if !l.closed {
		line := strings.TrimRight(string(p), "\n")
		l.t.Log(line)
		// The SDK's warning about a setting the plugin reads but does not
		// declare: in the daemon that setting is never set, so the test
		// would pass for the wrong reason.
		if strings.Contains(line, "which its manifest does not declare") {
			l.t.Errorf("plugintest: %s", line)
		}
	}
	return len(p), nil
}

func (l *testLog) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}

// Manifest returns what the plugin declared in Describe.
func (c *Client) Manifest() Manifest { return c.manifest }

// Runtime returns the fake host the plugin talks to.
func (c *Client) Runtime() *Runtime { return c.rt }

// Configure sets an agent up in the plugin, as the host does before the
// agent's first message. ch may be nil. It returns the plugin's warnings.
func (c *Client) Configure(ctx context.Context, agentID string, ch *sdk.Character, settings map[string]string) ([]string, error) {
	var raw []byte
	if ch != nil {
		b, err := json.Marshal(ch)
		if err != nil {
			return nil, fmt.Errorf("plugintest: encode character: %w", err)
		}
		raw = b
	}
	// As in the daemon, the plugin gets only the settings it declares.
	declared := map[string]string{}
	for _, name := range c.manifest.Settings {
		if v, ok := settings[name]; ok {
			declared[name] = v
		}
	}
	c.rt.setSettings(agentID, declared)
	if db := c.rt.database(); db != nil {
		// As the daemon stores an agent before it starts it.
		name := agentID
		if ch != nil && ch.Name != "" {
			name = ch.Name
		}
		if _, err := pb.NewDatabaseClient(db.conn).EnsureAgent(ctx, &pb.EnsureAgentRequest{
			Agent: &pb.Agent{Id: agentID, Name: name, CharacterJson: raw, Enabled: true}}); err != nil {
			return nil, fmt.Errorf("plugintest: store agent %s in %s: %w", agentID, db.Name(), err)
		}
	}
	c.mu.Lock()
	c.agents[agentID] = true
	c.mu.Unlock()
	res, err := c.pc.Configure(ctx, &pb.ConfigureRequest{AgentId: agentID, CharacterJson: raw, Settings: declared})
	if err != nil {
		return nil, err
	}
	return res.GetWarnings(), nil
}

// serves reports whether the plugin was configured for the agent.
func (c *Client) serves(agentID string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.agents[agentID]
}

// Unconfigure stops an agent in the plugin.
func (c *Client) Unconfigure(ctx context.Context, agentID string) error {
	_, err := c.pc.Unconfigure(ctx, &pb.UnconfigureRequest{AgentId: agentID})
	c.mu.Lock()
	delete(c.agents, agentID)
	c.mu.Unlock()
	return err
}

// Providers runs the named providers in one call. Results are keyed by
// provider name; a provider that failed (or does not exist) is in the
// second map with its error instead.
func (c *Client) Providers(ctx context.Context, agentID string, names []string, msg *sdk.Memory) (map[string]sdk.ProviderResult, map[string]string, error) {
	res, err := c.pc.GetProviders(ctx, &pb.GetProvidersRequest{AgentId: agentID, Names: names, Message: conv.MemoryToProto(msg)})
	if err != nil {
		return nil, nil, err
	}
	results := map[string]sdk.ProviderResult{}
	errs := map[string]string{}
	for _, r := range res.GetResults() {
		if r.GetError() != "" {
			errs[r.GetName()] = r.GetError()
			continue
		}
		results[r.GetName()] = sdk.ProviderResult{Text: r.GetText(), Values: conv.DecodeMap(r.GetValuesJson()), Data: conv.DecodeMap(r.GetDataJson())}
	}
	return results, errs, nil
}

// ValidateActions returns the subset of names whose actions may be offered
// for msg.
func (c *Client) ValidateActions(ctx context.Context, agentID string, names []string, msg *sdk.Memory) ([]string, error) {
	res, err := c.pc.ValidateActions(ctx, &pb.ValidateActionsRequest{AgentId: agentID, Names: names, Message: conv.MemoryToProto(msg)})
	if err != nil {
		return nil, err
	}
	return res.GetValid(), nil
}

// RunAction runs one action for msg. A handler's error comes back in the
// result (Success false, Error set), as it does for the host; the error
// return is for a call that failed as a whole.
func (c *Client) RunAction(ctx context.Context, agentID, name string, msg *sdk.Memory, responses []sdk.Memory) (sdk.ActionResult, error) {
	res, err := c.pc.RunAction(ctx, &pb.RunActionRequest{AgentId: agentID, Name: name, Message: conv.MemoryToProto(msg),
		Responses: conv.MemoriesToProto(responses)})
	if err != nil {
		return sdk.ActionResult{}, err
	}
	return conv.ActionResultFromProto(res.GetResult()), nil
}

// RunEvaluators runs the named evaluators after a response described by
// call, one outcome per name in order.
func (c *Client) RunEvaluators(ctx context.Context, agentID string, names []string, call sdk.EvaluatorCall) ([]sdk.EvaluatorOutcome, error) {
	res, err := c.pc.RunEvaluators(ctx, &pb.RunEvaluatorsRequest{AgentId: agentID, Names: names,
		Message: conv.MemoryToProto(call.Message), State: conv.StateToProto(call.State), DidRespond: call.DidRespond,
		Responses: conv.MemoriesToProto(call.Responses), RunId: call.RunID})
	if err != nil {
		return nil, err
	}
	var out []sdk.EvaluatorOutcome
	for _, o := range res.GetOutcomes() {
		out = append(out, sdk.EvaluatorOutcome{Name: o.GetName(), Ran: o.GetRan(), Error: o.GetError()})
	}
	return out, nil
}

// HandleEvent hands ev to the plugin's handlers of its type.
func (c *Client) HandleEvent(ctx context.Context, agentID string, ev sdk.Event) error {
	if ev.Type == sdk.EventMessageReceived && ev.Message != nil && ev.RunID != "" {
		// While the run lasts, a reply without a memory id is stored in
		// its room (Runtime.Respond), as the daemon does.
		defer c.rt.runStarted(ev.RunID, conv.MemoryToProto(ev.Message))()
	}
	res, err := c.pc.HandleEvent(ctx, &pb.HandleEventRequest{AgentId: agentID, Type: ev.Type, RunId: ev.RunID,
		Source: ev.Source, Message: conv.MemoryToProto(ev.Message), PayloadJson: conv.EncodeMap(ev.Payload)})
	if err != nil {
		return err
	}
	// The events nobody listens for come back with the answer, as they
	// do to the daemon: they are recorded with those emitted by call.
	c.rt.recordEmitted(res.GetEmitted())
	return nil
}

// UseModel calls the plugin's handler of req.Type.
func (c *Client) UseModel(ctx context.Context, agentID string, req sdk.ModelRequest) (*sdk.ModelResponse, error) {
	res, err := c.pc.UseModel(ctx, conv.ModelRequestToProto(agentID, &req))
	if err != nil {
		return nil, err
	}
	return conv.ModelResponseFromProto(res), nil
}

// StreamModel calls the plugin's streaming model handler of req.Type,
// handing each piece of text to onText (which may be nil), and returns the
// whole response.
func (c *Client) StreamModel(ctx context.Context, agentID string, req sdk.ModelRequest, onText func(text string) error) (*sdk.ModelResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.pc.StreamModel(ctx, conv.ModelRequestToProto(agentID, &req))
	if err != nil {
		return nil, err
	}
	for {
		chunk, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("plugintest: the model stream ended without a final answer")
			}
			return nil, err
		}
		if f := chunk.GetFinal(); f != nil {
			return conv.ModelResponseFromProto(f), nil
		}
		if onText != nil {
			if err := onText(chunk.GetText()); err != nil {
				return nil, err
			}
		}
	}
}

// SendMessage asks the plugin to deliver content to its platform and
// returns the platform's message ids.
func (c *Client) SendMessage(ctx context.Context, agentID string, t sdk.Target, content sdk.Content) ([]string, error) {
	res, err := c.pc.SendMessage(ctx, &pb.SendMessageRequest{AgentId: agentID, Target: conv.TargetToProto(&t), Content: conv.ContentToProto(&content)})
	if err != nil {
		return nil, err
	}
	return res.GetMessageIds(), nil
}

// Shutdown asks the plugin to stop: every call in flight is cancelled, and
// so is every later call. Start's cleanup calls it too.
func (c *Client) Shutdown(ctx context.Context) error {
	_, err := c.pc.Shutdown(ctx, &pb.ShutdownRequest{})
	return err
}

// HandleHTTP hands the plugin a request the daemon received for it at
// /hooks/{plugin}/{agentId}{req.Path}, and returns its answer.
func (c *Client) HandleHTTP(ctx context.Context, agentID string, req *sdk.HTTPRequest) (*sdk.HTTPResponse, error) {
	in := &pb.HandleHTTPRequest{AgentId: agentID, Method: req.Method, Path: req.Path, RawQuery: req.RawQuery,
		Body: req.Body, RemoteAddr: req.RemoteAddr}
	if len(req.Header) > 0 {
		in.Headers = map[string]string{}
		for k, v := range req.Header {
			in.Headers[k] = strings.Join(v, ", ")
		}
	}
	res, err := c.pc.HandleHTTP(ctx, in)
	if err != nil {
		return nil, err
	}
	out := &sdk.HTTPResponse{Status: int(res.GetStatus()), Header: http.Header{}, Body: res.GetBody()}
	for k, v := range res.GetHeaders() {
		out.Header.Set(k, v)
	}
	if out.Status == 0 {
		out.Status = http.StatusOK
	}
	return out, nil
}
