package plugintest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// HostVersion is the host version a plugin under test is told in Init.
const HostVersion = "plugintest"

// Manifest is what a plugin declared in Describe, in plain Go types.
type Manifest struct {
	Name       string
	Version    string
	Actions    []string
	Providers  []ProviderInfo
	Evaluators []string
	Models     []ModelInfo
	Events     []string
	Sources    []string
	Database   bool
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
}

// Start serves p with [sdk.NewGRPCServer] on a unix socket, serves a
// [Runtime] for it on another, hands the plugin the Runtime's address in
// Init, and returns a Client connected to the plugin. Everything is stopped
// when the test ends. Start fails the test if p is not a valid plugin or if
// its Init fails.
func Start(t testing.TB, p sdk.Plugin, opts ...Option) *Client {
	t.Helper()
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

	logs := &testLog{t: t}
	t.Cleanup(logs.close) // runs last: nothing logs to t after the test
	log := hclog.New(&hclog.LoggerOptions{Name: p.Name, Output: logs, Level: hclog.Debug})
	srv, err := sdk.NewGRPCServer(p, log)
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	dir := socketDir(t)
	pluginLis := listen(t, filepath.Join(dir, "p.sock"))
	runtimeLis := listen(t, filepath.Join(dir, "r.sock"))

	rtSrv := grpc.NewServer(grpc.MaxRecvMsgSize(sdk.MaxMessageSize), grpc.MaxSendMsgSize(sdk.MaxMessageSize))
	pb.RegisterRuntimeServer(rtSrv, cfg.rt)
	go func() { _ = rtSrv.Serve(runtimeLis) }()
	go func() { _ = srv.Serve(pluginLis) }()

	conn, err := grpc.NewClient("unix://"+pluginLis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(sdk.MaxMessageSize), grpc.MaxCallSendMsgSize(sdk.MaxMessageSize)))
	if err != nil {
		srv.Stop()
		rtSrv.Stop()
		t.Fatalf("plugintest: dial plugin: %v", err)
	}
	c := &Client{conn: conn, pc: pb.NewPluginClient(conn), rt: cfg.rt}
	t.Cleanup(func() {
		// Shutdown cancels the calls in flight, so that GracefulStop
		// returns unless a handler ignores its context.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = c.pc.Shutdown(ctx, &pb.ShutdownRequest{})
		_ = conn.Close()
		stopServer(srv, 5*time.Second)
		stopServer(rtSrv, 5*time.Second)
	})

	ctx, cancel := context.WithTimeout(context.Background(), sdk.DefaultCallTimeout)
	defer cancel()
	m, err := c.pc.Describe(ctx, &pb.DescribeRequest{HostProtocolMinor: sdk.ProtocolMinor, HostVersion: HostVersion})
	if err != nil {
		t.Fatalf("plugintest: describe %s: %v", p.Name, err)
	}
	c.manifest = manifestFromProto(m)
	unbind := cfg.rt.bind(c.pc, m, func(format string, args ...any) { _, _ = fmt.Fprintf(logs, format, args...) })
	t.Cleanup(unbind)
	_, err = c.pc.Init(ctx, &pb.InitRequest{RuntimeAddress: "unix://" + runtimeLis.Addr().String(),
		ProtocolMinor: sdk.ProtocolMinor, HostVersion: HostVersion, DataDir: cfg.dataDir, Settings: cfg.hostSettings})
	if err != nil {
		t.Fatalf("plugintest: init %s: %v", p.Name, err)
	}
	return c
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
	closed bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.t.Log(strings.TrimRight(string(p), "\n"))
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
	c.rt.setSettings(agentID, settings)
	res, err := c.pc.Configure(ctx, &pb.ConfigureRequest{AgentId: agentID, CharacterJson: raw, Settings: settings})
	if err != nil {
		return nil, err
	}
	return res.GetWarnings(), nil
}

// Unconfigure stops an agent in the plugin.
func (c *Client) Unconfigure(ctx context.Context, agentID string) error {
	_, err := c.pc.Unconfigure(ctx, &pb.UnconfigureRequest{AgentId: agentID})
	return err
}

// Providers runs the named providers in one call. Results are keyed by
// provider name; a provider that failed (or does not exist) is in the
// second map with its error instead.
func (c *Client) Providers(ctx context.Context, agentID string, names []string, msg *sdk.Memory) (map[string]sdk.ProviderResult, map[string]string, error) {
	res, err := c.pc.GetProviders(ctx, &pb.GetProvidersRequest{AgentId: agentID, Names: names, Message: memoryToProto(msg)})
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
		results[r.GetName()] = sdk.ProviderResult{Text: r.GetText(), Values: decode(r.GetValuesJson()), Data: decode(r.GetDataJson())}
	}
	return results, errs, nil
}

// ValidateActions returns the subset of names whose actions may be offered
// for msg.
func (c *Client) ValidateActions(ctx context.Context, agentID string, names []string, msg *sdk.Memory) ([]string, error) {
	res, err := c.pc.ValidateActions(ctx, &pb.ValidateActionsRequest{AgentId: agentID, Names: names, Message: memoryToProto(msg)})
	if err != nil {
		return nil, err
	}
	return res.GetValid(), nil
}

// RunAction runs one action for msg. A handler's error comes back in the
// result (Success false, Error set), as it does for the host; the error
// return is for a call that failed as a whole.
func (c *Client) RunAction(ctx context.Context, agentID, name string, msg *sdk.Memory, responses []sdk.Memory) (sdk.ActionResult, error) {
	res, err := c.pc.RunAction(ctx, &pb.RunActionRequest{AgentId: agentID, Name: name, Message: memoryToProto(msg),
		Responses: memoriesToProto(responses)})
	if err != nil {
		return sdk.ActionResult{}, err
	}
	return actionResultFromProto(res.GetResult()), nil
}

// RunEvaluators runs the named evaluators after a response described by
// call, one outcome per name in order.
func (c *Client) RunEvaluators(ctx context.Context, agentID string, names []string, call sdk.EvaluatorCall) ([]sdk.EvaluatorOutcome, error) {
	res, err := c.pc.RunEvaluators(ctx, &pb.RunEvaluatorsRequest{AgentId: agentID, Names: names,
		Message: memoryToProto(call.Message), State: stateToProto(call.State), DidRespond: call.DidRespond,
		Responses: memoriesToProto(call.Responses), RunId: call.RunID})
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
	_, err := c.pc.HandleEvent(ctx, &pb.HandleEventRequest{AgentId: agentID, Type: ev.Type, RunId: ev.RunID,
		Source: ev.Source, Message: memoryToProto(ev.Message), PayloadJson: encode(ev.Payload)})
	return err
}

// UseModel calls the plugin's handler of req.Type.
func (c *Client) UseModel(ctx context.Context, agentID string, req sdk.ModelRequest) (*sdk.ModelResponse, error) {
	res, err := c.pc.UseModel(ctx, modelRequestToProto(agentID, &req))
	if err != nil {
		return nil, err
	}
	return modelResponseFromProto(res), nil
}

// StreamModel calls the plugin's streaming model handler of req.Type,
// handing each piece of text to onText (which may be nil), and returns the
// whole response.
func (c *Client) StreamModel(ctx context.Context, agentID string, req sdk.ModelRequest, onText func(text string) error) (*sdk.ModelResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.pc.StreamModel(ctx, modelRequestToProto(agentID, &req))
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
			return modelResponseFromProto(f), nil
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
	res, err := c.pc.SendMessage(ctx, &pb.SendMessageRequest{AgentId: agentID, Target: targetToProto(&t), Content: contentToProto(&content)})
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
