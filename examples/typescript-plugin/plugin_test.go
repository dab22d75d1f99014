//go:build unix

// Package typescriptplugin_test runs the TypeScript example plugin the way
// the host does: go-plugin's real client execs the launcher, reads the
// handshake line, dials with AutoMTLS, and the test talks to the plugin over
// the generated agenthost.plugin.v1 stubs. The folder holds no Go code other
// than this test.
package typescriptplugin_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	typescriptplugin "github.com/agenthost/agenthost/examples/typescript-plugin"
	"github.com/agenthost/agenthost/sdk"
	pluginv1 "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

const (
	launcherName = "agenthost-plugin-typescript-example"
	providerText = "The TypeScript example provider says hello from Node."
)

// ---- building the plugin -------------------------------------------------

var (
	buildOnce sync.Once
	buildErr  error
	launcher  string
)

// ensureBuilt installs the npm packages (npm ci) and compiles the TypeScript
// (tsc) when node_modules or dist is missing or older than its sources, and
// returns the launcher's absolute path. It fails the test with a clear
// message when Node.js or npm is not installed.
func ensureBuilt(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			buildErr = err
			return
		}
		launcher, buildErr = typescriptplugin.Build(dir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return launcher
}

// ---- host-side pieces ----------------------------------------------------

// connPlugin is the host's side of the plugin set: it hands out the raw
// connection, over which the test uses the generated stubs.
type connPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (connPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("host side only")
}

func (connPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return c, nil
}

// recordingRuntime is the host's Runtime service, reduced to Respond.
type recordingRuntime struct {
	pluginv1.UnimplementedRuntimeServer
	mu  sync.Mutex
	got []*pluginv1.RespondRequest
}

func (r *recordingRuntime) Respond(_ context.Context, req *pluginv1.RespondRequest) (*pluginv1.RespondResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, req)
	return &pluginv1.RespondResponse{MessageIds: []string{fmt.Sprintf("sent-%d", len(r.got))}}, nil
}

func (r *recordingRuntime) requests() []*pluginv1.RespondRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*pluginv1.RespondRequest(nil), r.got...)
}

// syncBuffer collects the host logger's output across goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startRuntime(t *testing.T) (addr string, rt *recordingRuntime) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "runtime.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	rt = &recordingRuntime{}
	srv := grpc.NewServer()
	pluginv1.RegisterRuntimeServer(srv, rt)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return "unix://" + sock, rt
}

// processGone reports whether pid has exited (a zombie nobody reaped counts).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return os.IsNotExist(err)
	}
	// pid (comm) STATE ...; comm may hold spaces, so look after the last ')'.
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z' || s[i+2] == 'X'
	}
	return false
}

// selfSignedCert makes a client certificate the plugin has never seen, with
// the same subject as go-plugin's own (Go's TLS client only offers a
// certificate whose issuer is among the CA names the server asks for, so a
// different name would not even reach the plugin's verification).
func selfSignedCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"HashiCorp"}},
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// healthCheck dials a unix socket with creds and asks for the "plugin"
// service's health.
func healthCheck(ctx context.Context, socket string, creds credentials.TransportCredentials) error {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "plugin"})
	return err
}

func withoutEnv(env []string, key string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// ---- tests -----------------------------------------------------------------

func TestTypeScriptPlugin(t *testing.T) {
	exe := ensureBuilt(t)

	logs := &syncBuffer{}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			ProtocolVersion:  sdk.ProtocolVersion,
			MagicCookieKey:   sdk.MagicCookieKey,
			MagicCookieValue: sdk.MagicCookieValue,
		},
		Plugins:          plugin.PluginSet{sdk.PluginSetName: connPlugin{}},
		Cmd:              exec.Command(exe),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		StartTimeout:     time.Minute,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:   "host",
			Output: logs,
			Level:  hclog.Debug,
		}),
	})
	t.Cleanup(client.Kill)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("host log:\n%s", logs.String())
		}
	})

	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("starting the plugin: %v", err)
	}
	raw, err := rpc.Dispense(sdk.PluginSetName)
	if err != nil {
		t.Fatalf("dispense: %v", err)
	}
	conn, ok := raw.(*grpc.ClientConn)
	if !ok {
		t.Fatalf("dispensed %T, want *grpc.ClientConn", raw)
	}
	// go-plugin's Ping is the health service's Check for "plugin".
	if err := rpc.Ping(); err != nil {
		t.Fatalf("ping: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := pluginv1.NewPluginClient(conn)

	// Describe: the manifest. This is also the first call over AutoMTLS.
	m, err := p.Describe(ctx, &pluginv1.DescribeRequest{HostProtocolMinor: sdk.ProtocolMinor, HostVersion: "test"})
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if m.GetName() != "typescript-example" || m.GetVersion() == "" || m.GetProtocolMinor() != 0 {
		t.Errorf("manifest name/version/minor = %q/%q/%d", m.GetName(), m.GetVersion(), m.GetProtocolMinor())
	}
	if len(m.GetProviders()) != 1 {
		t.Fatalf("providers = %v, want one", m.GetProviders())
	}
	if pr := m.GetProviders()[0]; pr.GetName() != "TS_EXAMPLE" || pr.GetPosition() != 10 || pr.GetDynamic() || pr.GetDescription() == "" {
		t.Errorf("provider = %v", pr)
	}
	if len(m.GetActions()) != 1 {
		t.Fatalf("actions = %v, want one", m.GetActions())
	}
	if a := m.GetActions()[0]; a.GetName() != "TS_EXAMPLE_ACTION" || a.GetDescription() == "" || len(a.GetSimiles()) == 0 {
		t.Errorf("action = %v", a)
	}
	if m.GetDatabase() || len(m.GetEvaluators()) != 0 || len(m.GetModels()) != 0 {
		t.Errorf("manifest offers more than it should: %v", m)
	}

	// Calls for an agent that was never configured are refused.
	if _, err := p.GetProviders(ctx, &pluginv1.GetProvidersRequest{AgentId: "nobody", Names: []string{"TS_EXAMPLE"}}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("GetProviders before Configure: %v, want FailedPrecondition", err)
	}

	// Init hands over the Runtime address.
	runtimeAddr, rt := startRuntime(t)
	if _, err := p.Init(ctx, &pluginv1.InitRequest{
		RuntimeAddress: runtimeAddr,
		ProtocolMinor:  sdk.ProtocolMinor,
		HostVersion:    "test",
		DataDir:        t.TempDir(),
	}); err != nil {
		t.Fatalf("Init: %v", err)
	}

	// One process, two agents.
	agents := []string{"11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"}
	for i, id := range agents {
		res, err := p.Configure(ctx, &pluginv1.ConfigureRequest{
			AgentId:       id,
			CharacterJson: []byte(fmt.Sprintf(`{"name":"Agent%d","bio":"test"}`, i)),
			Settings:      map[string]string{"SOME_SETTING": "x"},
		})
		if err != nil {
			t.Fatalf("Configure %s: %v", id, err)
		}
		if len(res.GetWarnings()) != 0 {
			t.Errorf("Configure warnings: %v", res.GetWarnings())
		}
	}

	// Messages above grpc's 4 MiB default get through (the plugin allows 64 MiB).
	big := fmt.Sprintf(`{"name":"Big","bio":%q}`, strings.Repeat("x", 5<<20))
	if _, err := p.Configure(ctx, &pluginv1.ConfigureRequest{AgentId: "big-agent", CharacterJson: []byte(big)}); err != nil {
		t.Errorf("Configure with a 5 MiB character: %v", err)
	} else if _, err := p.Unconfigure(ctx, &pluginv1.UnconfigureRequest{AgentId: "big-agent"}); err != nil {
		t.Errorf("Unconfigure: %v", err)
	}

	gp, err := p.GetProviders(ctx, &pluginv1.GetProvidersRequest{AgentId: agents[0], Names: []string{"TS_EXAMPLE"}, RunId: "run-0"})
	if err != nil {
		t.Fatalf("GetProviders: %v", err)
	}
	if len(gp.GetResults()) != 1 || gp.GetResults()[0].GetName() != "TS_EXAMPLE" ||
		gp.GetResults()[0].GetText() != providerText || gp.GetResults()[0].GetError() != "" {
		t.Errorf("GetProviders = %v, want text %q", gp.GetResults(), providerText)
	}

	va, err := p.ValidateActions(ctx, &pluginv1.ValidateActionsRequest{AgentId: agents[0], Names: []string{"TS_EXAMPLE_ACTION"}})
	if err != nil {
		t.Fatalf("ValidateActions: %v", err)
	}
	if got := va.GetValid(); len(got) != 1 || got[0] != "TS_EXAMPLE_ACTION" {
		t.Errorf("ValidateActions = %v", got)
	}

	for i, id := range agents {
		runID := fmt.Sprintf("run-%d", i+1)
		want := "TS_EXAMPLE_ACTION ran in Node for agent " + id
		ra, err := p.RunAction(ctx, &pluginv1.RunActionRequest{
			AgentId: id,
			Name:    "TS_EXAMPLE_ACTION",
			RunId:   runID,
			Message: &pluginv1.Memory{Id: "msg-" + runID, Content: &pluginv1.Content{Text: "please run it", Source: "test"}},
		})
		if err != nil {
			t.Fatalf("RunAction for %s: %v", id, err)
		}
		if r := ra.GetResult(); !r.GetSuccess() || r.GetText() != want || r.GetError() != "" {
			t.Errorf("RunAction result = %v, want success with %q", r, want)
		}
		got := rt.requests()
		if len(got) != i+1 {
			t.Fatalf("Runtime.Respond got %d calls, want %d", len(got), i+1)
		}
		last := got[i]
		if last.GetAgentId() != id || last.GetRunId() != runID || last.GetContent().GetText() != want {
			t.Errorf("Runtime.Respond got agent %q run %q text %q; want %q %q %q",
				last.GetAgentId(), last.GetRunId(), last.GetContent().GetText(), id, runID, want)
		}
	}

	if _, err := p.RunAction(ctx, &pluginv1.RunActionRequest{AgentId: agents[0], Name: "NO_SUCH_ACTION"}); status.Code(err) != codes.NotFound {
		t.Errorf("RunAction of an unknown action: %v, want NotFound", err)
	}
	if _, err := p.UseModel(ctx, &pluginv1.ModelRequest{AgentId: agents[0], Type: "TEXT_SMALL"}); status.Code(err) != codes.Unimplemented {
		t.Errorf("UseModel: %v, want Unimplemented", err)
	}

	rc := client.ReattachConfig()
	if rc == nil || rc.Pid == 0 || rc.Addr == nil {
		t.Fatalf("no reattach config: %+v", rc)
	}

	// AutoMTLS keeps other local processes out: without the host's client
	// certificate the plugin's socket answers nothing.
	if rc.Addr.Network() == "unix" {
		intruder := selfSignedCert(t)
		for name, creds := range map[string]credentials.TransportCredentials{
			"plaintext":      insecure.NewCredentials(),
			"no client cert": credentials.NewTLS(&tls.Config{InsecureSkipVerify: true}),
			"foreign client cert": credentials.NewTLS(&tls.Config{
				InsecureSkipVerify: true,
				Certificates:       []tls.Certificate{intruder},
			}),
		} {
			if err := healthCheck(ctx, rc.Addr.String(), creds); err == nil {
				t.Errorf("%s: the plugin answered a caller without the host's certificate", name)
			}
		}
	}

	// Kill: the controller's Shutdown makes the process exit on its own.
	client.Kill()
	if !client.Exited() {
		t.Error("client does not report the plugin as exited after Kill")
	}
	if !processGone(rc.Pid) {
		t.Errorf("plugin process %d still exists after Kill", rc.Pid)
	}
	if rc.Addr.Network() == "unix" {
		if _, err := os.Stat(rc.Addr.String()); !os.IsNotExist(err) {
			t.Errorf("plugin socket %s left behind (%v)", rc.Addr, err)
		}
	}

	log := logs.String()
	for _, want := range []string{
		"plugin serving", // the plugin's JSON log line, re-logged by the host
		"plugin exited",  // graceful exit after the controller's Shutdown
	} {
		if !strings.Contains(log, want) {
			t.Errorf("host log lacks %q", want)
		}
	}
	for _, unwanted := range []string{
		"failed to exit gracefully",   // the controller did not stop it
		"stdio service not available", // GRPCStdio missing
		"Unrecognized remote plugin",  // stray stdout
		"exit status",                 // a non-zero exit
	} {
		if strings.Contains(log, unwanted) {
			t.Errorf("host log has %q", unwanted)
		}
	}
}

func TestTypeScriptPluginRefusesToRunByHand(t *testing.T) {
	exe := ensureBuilt(t)
	cmd := exec.Command(exe)
	cmd.Env = withoutEnv(os.Environ(), sdk.MagicCookieKey)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("run without the magic cookie: %v, want exit status 1", err)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q, want nothing", stdout.String())
	}
	if !strings.Contains(stderr.String(), "plugin for agenthost") {
		t.Errorf("stderr = %q, want an explanation", stderr.String())
	}
}

// The plugin must not outlive its host: here the "host" is a shell that
// starts the plugin in the background, waits until it has printed its
// handshake, and exits.
func TestTypeScriptPluginExitsWhenHostDies(t *testing.T) {
	exe := ensureBuilt(t)

	cmd := exec.Command("/bin/sh", "-c", `"$0" & echo "$!"; read -r _; exit 0`, exe)
	cmd.Env = append(withoutEnv(os.Environ(), sdk.MagicCookieKey),
		sdk.MagicCookieKey+"="+sdk.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS="+strconv.Itoa(sdk.ProtocolVersion))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	type lines struct {
		pid, handshake string
		err            error
	}
	ch := make(chan lines, 1)
	go func() {
		r := bufio.NewReader(stdout)
		var l lines
		if l.pid, l.err = r.ReadString('\n'); l.err == nil {
			l.handshake, l.err = r.ReadString('\n')
		}
		ch <- l
	}()
	var l lines
	select {
	case l = <-ch:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("no handshake from the plugin within a minute")
	}
	if l.err != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("reading the plugin's output: %v", l.err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(l.pid))
	if err != nil {
		t.Fatalf("pid line %q: %v", l.pid, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if parts := strings.Split(strings.TrimSpace(l.handshake), "|"); len(parts) != 6 || parts[0] != "1" || parts[1] != "1" || parts[4] != "grpc" || parts[5] != "" {
		t.Fatalf("handshake line = %q", l.handshake)
	}

	// The host goes away.
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("shell: %v", err)
	}

	deadline := time.Now().Add(30 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("plugin process %d still runs 30s after its host exited", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
	logged, _ := os.ReadFile(stderr.Name())
	if !strings.Contains(string(logged), "the host process is gone") {
		t.Errorf("plugin stderr does not say why it stopped:\n%s", logged)
	}
}
