// Package langsdk holds what every language SDK of agenthost must do,
// written once as tests of a fixture plugin: the same plugin, under its own
// prefix, written with each SDK (sdk/typescript/src/test/fixture.ts,
// sdk/python/tests/fixture.py). The fixture runs as the daemon runs a
// plugin — its own process, go-plugin's handshake, AutoMTLS — against
// sdk/plugintest's Runtime, and [Test] checks each promise the SDKs make:
// the manifest, every kind of handler, errors that name the handler while
// the process lives, the agent's Runtime calls with the plugin's token,
// deadlines and cancellation in both directions, 64 MiB messages, a clean
// exit, and the refusals (no cookie, no host certificate).
package langsdk

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/internal/syncbuf"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/plugintest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// Fixture is the fixture plugin of one SDK.
type Fixture struct {
	// Path is its executable.
	Path string
	// Name is its manifest name, e.g. "ts-fixture".
	Name string
	// Prefix starts the names of its handlers, e.g. "TSF".
	Prefix string
	// Lang is what its TEXT provider says it is written in.
	Lang string
}

func (f Fixture) n(suffix string) string { return f.Prefix + "_" + suffix }

const agentID = "a0000000-0000-4000-8000-0000000000a1"

// Test runs every check on the fixture, each as a subtest.
func Test(t *testing.T, f Fixture) {
	t.Run("Manifest", func(t *testing.T) { testManifest(t, f) })
	t.Run("Providers", func(t *testing.T) { testProviders(t, f) })
	t.Run("Actions", func(t *testing.T) { testActions(t, f) })
	t.Run("Handlers", func(t *testing.T) { testHandlers(t, f) })
	t.Run("AgentAPI", func(t *testing.T) { testAgentAPI(t, f) })
	t.Run("Deadlines", func(t *testing.T) { testDeadlines(t, f) })
	t.Run("Cancellation", func(t *testing.T) { testCancellation(t, f) })
	t.Run("LargeMessages", func(t *testing.T) { testLargeMessages(t, f) })
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, f) })
	t.Run("RefusesToRunByHand", func(t *testing.T) { testRefusesToRunByHand(t, f) })
	t.Run("ExitsWhenHostDies", func(t *testing.T) { testExitsWhenHostDies(t, f) })
}

// start runs the fixture and configures one agent, Ada.
func start(t *testing.T, f Fixture, settings map[string]string, opts ...plugintest.Option) *plugintest.Client {
	t.Helper()
	c := plugintest.StartExecutable(t, f.Path, opts...)
	if _, err := c.Configure(ctx(t), agentID, &sdk.Character{Name: "Ada", Bio: sdk.StringList{"A test agent."}}, settings); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func message(text string) *sdk.Memory {
	return &sdk.Memory{ID: "m0000000-0000-4000-8000-000000000001", EntityID: "e0000000-0000-4000-8000-000000000002",
		RoomID: "r0000000-0000-4000-8000-000000000003", Content: sdk.Content{Text: text, Source: "test"}}
}

func testManifest(t *testing.T, f Fixture) {
	c := plugintest.StartExecutable(t, f.Path)
	m := c.Manifest()
	if m.Name != f.Name || m.Version != "1.2.3" || m.ProtocolMinor != contract.ProtocolMinor || m.Description == "" {
		t.Errorf("manifest name/version/minor/description = %q/%q/%d/%q", m.Name, m.Version, m.ProtocolMinor, m.Description)
	}
	want := map[string][]string{
		"providers":  {f.n("TEXT"), f.n("THROWS"), f.n("SLOW"), f.n("LAST")},
		"actions":    {f.n("RESPOND"), f.n("THROWS"), f.n("MODEL"), f.n("TOUR")},
		"evaluators": {f.n("EVAL")},
		"models":     {f.n("ECHO"), f.n("STREAM"), f.n("BROKEN")},
		"events":     {f.n("EVENT")},
		"settings":   {f.n("GREETING")},
		"sources":    {strings.ToLower(f.Prefix) + "-chat"},
	}
	var providers, models []string
	for _, p := range m.Providers {
		providers = append(providers, p.Name)
		if p.Name == f.n("TEXT") && p.Position != 5 {
			t.Errorf("provider %s position = %d, want 5", p.Name, p.Position)
		}
		if p.Name == f.n("LAST") && !p.Dynamic {
			t.Errorf("provider %s should be dynamic", p.Name)
		}
	}
	for _, md := range m.Models {
		models = append(models, md.Type)
	}
	got := map[string][]string{"providers": providers, "actions": m.Actions, "evaluators": m.Evaluators, "models": models,
		"events": m.Events, "settings": m.Settings, "sources": m.Sources}
	for k, w := range want {
		if strings.Join(got[k], ",") != strings.Join(w, ",") {
			t.Errorf("manifest %s = %v, want %v", k, got[k], w)
		}
	}
	if !m.HTTP {
		t.Error("a plugin with routes must say http in its manifest")
	}
}

func testProviders(t *testing.T, f Fixture) {
	c := start(t, f, nil)
	res, errs, err := c.Providers(ctx(t), agentID, []string{f.n("TEXT"), f.n("THROWS"), "NO_SUCH"}, message("hi"))
	if err != nil {
		t.Fatalf("GetProviders: %v", err)
	}
	if got, want := res[f.n("TEXT")].Text, "hello from "+f.Lang; got != want {
		t.Errorf("provider text with the setting's default = %q, want %q", got, want)
	}
	if got := res[f.n("TEXT")].Values["lang"]; got != f.Lang {
		t.Errorf("provider values = %v", res[f.n("TEXT")].Values)
	}
	if got, want := errs[f.n("THROWS")], "provider "+f.n("THROWS")+" failed: provider boom"; got != want {
		t.Errorf("a throwing provider's error = %q, want %q", got, want)
	}
	if got := errs["NO_SUCH"]; !strings.Contains(got, "NO_SUCH") || !strings.Contains(got, f.Name) {
		t.Errorf("an unknown provider's error = %q, want it to name the provider and the plugin", got)
	}

	// A declared setting reaches the provider.
	c2 := start(t, f, map[string]string{f.n("GREETING"): "ahoy"})
	res, _, err = c2.Providers(ctx(t), agentID, []string{f.n("TEXT")}, message("hi"))
	if err != nil || res[f.n("TEXT")].Text != "ahoy from "+f.Lang {
		t.Errorf("provider text with the setting = %+v, %v", res, err)
	}

	// A call for an agent that was never configured is refused.
	if _, _, err := c.Providers(ctx(t), "nobody", []string{f.n("TEXT")}, message("hi")); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("GetProviders for an unconfigured agent: %v, want FailedPrecondition", err)
	}
}

func testActions(t *testing.T, f Fixture) {
	c := start(t, f, map[string]string{f.n("GREETING"): "ahoy"})
	valid, err := c.ValidateActions(ctx(t), agentID, []string{f.n("RESPOND"), "NO_SUCH", f.n("THROWS")}, message("hi"))
	if err != nil || strings.Join(valid, ",") != f.n("RESPOND")+","+f.n("THROWS") {
		t.Errorf("ValidateActions = %v, %v", valid, err)
	}
	for run := 1; run <= 2; run++ {
		res, err := c.RunAction(ctx(t), agentID, f.n("RESPOND"), message("question"), nil)
		want := fmt.Sprintf("%s responded to question for Ada (run %d, greeting ahoy)", f.Prefix, run)
		if err != nil || !res.Success || res.Text != want || fmt.Sprint(res.Values["runs"]) != strconv.Itoa(run) {
			t.Fatalf("RunAction %s (run %d) = %+v, %v; want success with %q", f.n("RESPOND"), run, res, err, want)
		}
		rs := c.Runtime().Responses()
		if len(rs) != run || rs[run-1].Text != want || rs[run-1].InReplyTo != message("").ID {
			t.Fatalf("Runtime.Respond got %+v, want %q in reply to the message", rs, want)
		}
	}

	// A throwing action is a failed result naming it; the process lives.
	pid := c.Process().Pid
	res, err := c.RunAction(ctx(t), agentID, f.n("THROWS"), message("hi"), nil)
	if err != nil || res.Success || res.Error != "action "+f.n("THROWS")+" failed: action boom" {
		t.Errorf("a throwing action = %+v, %v; want a failed result naming it", res, err)
	}
	if err := c.Process().Ping(); err != nil || c.Process().Pid != pid {
		t.Fatalf("the plugin should live on after a handler threw: ping %v", err)
	}
	if res, err := c.RunAction(ctx(t), agentID, f.n("RESPOND"), message("again"), nil); err != nil || !res.Success {
		t.Errorf("RunAction after a throwing action = %+v, %v", res, err)
	}
	if _, err := c.RunAction(ctx(t), agentID, "NO_SUCH", message("hi"), nil); status.Code(err) != codes.NotFound {
		t.Errorf("an unknown action: %v, want NotFound", err)
	}
}

// testHandlers checks evaluators, models, events, sources and routes, and
// that what each throws comes back naming it, of its kind.
func testHandlers(t *testing.T, f Fixture) {
	c := start(t, f, nil)
	outs, err := c.RunEvaluators(ctx(t), agentID, []string{f.n("EVAL")}, sdk.EvaluatorCall{Message: message("hi"), DidRespond: true})
	if err != nil || len(outs) != 1 || !outs[0].Ran || outs[0].Error != "evaluator "+f.n("EVAL")+" failed: evaluator boom" {
		t.Errorf("a throwing evaluator = %+v, %v", outs, err)
	}
	outs, err = c.RunEvaluators(ctx(t), agentID, []string{f.n("EVAL")}, sdk.EvaluatorCall{Message: message("hi")})
	if err != nil || len(outs) != 1 || outs[0].Ran {
		t.Errorf("an evaluator without alwaysRun after no response should not run: %+v, %v", outs, err)
	}

	mr, err := c.UseModel(ctx(t), agentID, sdk.ModelRequest{Type: f.n("ECHO"), Prompt: "ping"})
	if err != nil || mr.Text != "echo: ping" {
		t.Errorf("model %s = %+v, %v", f.n("ECHO"), mr, err)
	}
	_, err = c.UseModel(ctx(t), agentID, sdk.ModelRequest{Type: f.n("BROKEN"), Prompt: "ping"})
	if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != "model "+f.n("BROKEN")+" failed: bad prompt" {
		t.Errorf("a model throwing InvalidError: %v, want InvalidArgument naming the model", err)
	}
	var pieces []string
	mr, err = c.StreamModel(ctx(t), agentID, sdk.ModelRequest{Type: f.n("STREAM"), Prompt: "one two three"}, func(text string) error {
		pieces = append(pieces, text)
		return nil
	})
	if err != nil || mr.Text != "one two three" || strings.Join(pieces, "|") != "one |two |three " {
		t.Errorf("streamed model = %+v, pieces %q, %v", mr, pieces, err)
	}

	err = c.HandleEvent(ctx(t), agentID, sdk.Event{Type: f.n("EVENT"), Payload: map[string]any{"x": 1}})
	if status.Code(err) != codes.Internal || status.Convert(err).Message() != "event handler "+f.n("EVENT")+" failed: event boom" {
		t.Errorf("a throwing event handler: %v, want an error naming it", err)
	}

	ids, err := c.SendMessage(ctx(t), agentID, sdk.Target{Source: strings.ToLower(f.Prefix) + "-chat", ChannelID: "c1"}, sdk.Content{Text: "out"})
	if err != nil || strings.Join(ids, ",") != "sent-to-c1" {
		t.Errorf("SendMessage = %v, %v", ids, err)
	}

	call := func(method, path string) (*sdk.HTTPResponse, error) {
		return c.HandleHTTP(ctx(t), agentID, &sdk.HTTPRequest{Method: method, Path: path, RawQuery: "q=1"})
	}
	if res, err := call("GET", "/hello"); err != nil || res.Status != 200 || string(res.Body) != "hello Ada q=1" {
		t.Errorf("GET /hello = %+v, %v", res, err)
	}
	if res, err := call("GET", "/nope"); err != nil || res.Status != 404 {
		t.Errorf("GET /nope = %+v, %v; want 404", res, err)
	}
	if res, err := call("POST", "/hello"); err != nil || res.Status != 405 {
		t.Errorf("POST /hello = %+v, %v; want 405", res, err)
	}
	if _, err := call("POST", "/boom"); err == nil || !strings.Contains(status.Convert(err).Message(), "http route POST /boom failed: route boom") {
		t.Errorf("a throwing route: %v, want an error naming it", err)
	}
	if err := c.Process().Ping(); err != nil {
		t.Errorf("the plugin should live on after its handlers threw: %v", err)
	}
}

func testAgentAPI(t *testing.T, f Fixture) {
	rt := &plugintest.Runtime{Model: func(_ context.Context, req sdk.ModelRequest) (*sdk.ModelResponse, error) {
		if req.Type == sdk.ModelTextEmbedding {
			return &sdk.ModelResponse{Embedding: []float32{0.1, 0.2, 0.3}}, nil
		}
		return &sdk.ModelResponse{Text: "model says " + req.Prompt}, nil
	}}
	c := start(t, f, nil, plugintest.WithRuntime(rt))
	msg := message("tour")
	res, err := c.RunAction(ctx(t), agentID, f.n("TOUR"), msg, nil)
	if err != nil || !res.Success {
		t.Fatalf("RunAction %s = %+v, %v", f.n("TOUR"), res, err)
	}
	d := res.Data
	for k, want := range map[string]string{"room": "fixture room", "entity": "Ada", "entityLang": f.Lang,
		"fact": f.Prefix + " fact", "factMood": "curious", "dims": "3", "logs": "1", "sent": "1"} {
		if got := fmt.Sprint(d[k]); got != want {
			t.Errorf("tour %s = %q, want %q (all: %v)", k, got, want, d)
		}
	}
	var stored *sdk.Memory
	for _, m := range rt.Memories() {
		if m.ID == d["memoryId"] {
			stored = &m
		}
	}
	if stored == nil || stored.AgentID != agentID || stored.Table != "facts" || stored.Content.Extra["mood"] != "curious" || stored.Metadata["lang"] != f.Lang {
		t.Errorf("the stored fact = %+v", stored)
	}
	if ev := rt.Events(); len(ev) != 1 || ev[0].Type != f.n("EMITTED") || ev[0].Payload["lang"] != f.Lang {
		t.Errorf("events = %+v", ev)
	}
	if sent := rt.Sent(); len(sent) != 1 || sent[0].Content.Text != f.Prefix+" says hi" || sent[0].Target.RoomID != msg.RoomID {
		t.Errorf("sent = %+v", sent)
	}
	if logs := rt.Logs(); len(logs) != 1 || logs[0].Type != f.Prefix+"_log" || logs[0].AgentID != agentID {
		t.Errorf("logs = %+v", logs)
	}

	res, err = c.RunAction(ctx(t), agentID, f.n("MODEL"), message("ping"), nil)
	if err != nil || !res.Success || res.Text != "model says ping" {
		t.Errorf("an action asking the model = %+v, %v", res, err)
	}
	calls := rt.ModelCalls()
	if last := calls[len(calls)-1]; last.Type != sdk.ModelTextSmall || last.Prompt != "ping" {
		t.Errorf("the model call = %+v, want TEXT_SMALL", last)
	}
}

// testDeadlines checks that a deadline reaches the handler and the Runtime
// calls it makes: a provider sees its signal abort when the deadline
// passes, and a model call made by an action ends by the action's deadline.
func testDeadlines(t *testing.T, f Fixture) {
	var (
		mu       sync.Mutex
		deadline time.Time
		block    bool
		started  = make(chan struct{}, 1)
		ended    = make(chan error, 1)
	)
	rt := &plugintest.Runtime{Model: func(ctx context.Context, req sdk.ModelRequest) (*sdk.ModelResponse, error) {
		mu.Lock()
		deadline, _ = ctx.Deadline()
		wait := block
		mu.Unlock()
		if !wait {
			return &sdk.ModelResponse{Text: "warm"}, nil
		}
		started <- struct{}{}
		<-ctx.Done()
		ended <- ctx.Err()
		return nil, ctx.Err()
	}}
	c := start(t, f, nil, plugintest.WithRuntime(rt))

	short, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, _, err := c.Providers(short, agentID, []string{f.n("SLOW")}, message("please wait"))
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("a provider past its deadline: %v, want DeadlineExceeded", err)
	}
	waitFor(t, "the slow provider to see its deadline pass", func() bool {
		res, _, _ := c.Providers(ctx(t), agentID, []string{f.n("LAST")}, message("hi"))
		return strings.Contains(res[f.n("LAST")].Text, "aborted: DeadlineExceededError")
	})

	// The Runtime connection is made by the first call; make it first, so
	// that the deadline below is spent waiting for the model.
	if res, err := c.RunAction(ctx(t), agentID, f.n("MODEL"), message("warm up"), nil); err != nil || res.Text != "warm" {
		t.Fatalf("warming up: %+v, %v", res, err)
	}
	mu.Lock()
	block = true
	mu.Unlock()
	short, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ours, _ := short.Deadline()
	_, err = c.RunAction(short, agentID, f.n("MODEL"), message("ping"), nil)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("an action past its deadline: %v, want DeadlineExceeded", err)
	}
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the action's model call never reached the host")
	}
	select {
	case err := <-ended:
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			t.Errorf("the model call ended with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the action's model call outlived the action's deadline by 30 seconds")
	}
	mu.Lock()
	defer mu.Unlock()
	// The SDK's own default is minutes: only the action's deadline, passed
	// on, ends the model call this soon.
	if deadline.IsZero() || deadline.After(ours.Add(time.Second)) {
		t.Errorf("the model call's deadline = %v, want the action's (%v)", deadline, ours)
	}
}

// testCancellation checks that the host cancelling a call reaches the
// handler and the Runtime calls it makes.
func testCancellation(t *testing.T, f Fixture) {
	started := make(chan struct{}, 1)
	ended := make(chan error, 1)
	rt := &plugintest.Runtime{Model: func(ctx context.Context, _ sdk.ModelRequest) (*sdk.ModelResponse, error) {
		started <- struct{}{}
		<-ctx.Done()
		ended <- ctx.Err()
		return nil, ctx.Err()
	}}
	c := start(t, f, nil, plugintest.WithRuntime(rt))

	cctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.RunAction(cctx, agentID, f.n("MODEL"), message("ping"), nil)
		done <- err
	}()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the action's model call never reached the host")
	}
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Errorf("a cancelled action: %v, want Canceled", err)
	}
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the model call ended with %v, want it cancelled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("cancelling the action did not cancel its model call")
	}

	// A provider's signal aborts when the host cancels.
	cctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() { _, _, _ = c.Providers(cctx, agentID, []string{f.n("SLOW")}, message("please wait")) }()
	waitFor(t, "the slow provider to start", func() bool {
		res, _, _ := c.Providers(ctx(t), agentID, []string{f.n("LAST")}, message("hi"))
		return strings.Contains(res[f.n("LAST")].Text, "waiting")
	})
	cancel()
	waitFor(t, "the slow provider to see the cancellation", func() bool {
		res, _, _ := c.Providers(ctx(t), agentID, []string{f.n("LAST")}, message("hi"))
		return strings.Contains(res[f.n("LAST")].Text, "aborted: CancelledError")
	})
}

// testLargeMessages sends messages over gRPC's 4 MiB default both ways.
func testLargeMessages(t *testing.T, f Fixture) {
	c := plugintest.StartExecutable(t, f.Path)
	big := strings.Repeat("x", 5<<20)
	if _, err := c.Configure(ctx(t), agentID, &sdk.Character{Name: "Ada", Bio: sdk.StringList{big}}, nil); err != nil {
		t.Fatalf("Configure with a 5 MiB character: %v", err)
	}
	res, err := c.RunAction(ctx(t), agentID, f.n("RESPOND"), message(big), nil)
	if err != nil || !res.Success || len(res.Text) < 5<<20 {
		t.Fatalf("an action with a 5 MiB message: success %v, %d bytes, %v", res.Success, len(res.Text), err)
	}
	if rs := c.Runtime().Responses(); len(rs) != 1 || len(rs[0].Text) < 5<<20 {
		t.Errorf("the 5 MiB answer did not reach the host whole")
	}
}

// testLifecycle checks what the daemon relies on: AutoMTLS keeps other
// callers out, the controller's Shutdown ends the process cleanly, and the
// socket is gone after.
func testLifecycle(t *testing.T, f Fixture) {
	logs := &syncbuf.Buffer{}
	c := start(t, f, nil, plugintest.WithLog(logs))
	p := c.Process()
	if p.Addr == nil || p.Addr.Network() != "unix" {
		t.Fatalf("the plugin should serve on a unix socket, got %v", p.Addr)
	}
	// A certificate like the host's, subject and all: a TLS stack that
	// names the host's as the one acceptable issuer (OpenSSL does) still
	// gets it, and must refuse it for its key.
	intruder, _, _, err := contract.NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	for name, creds := range map[string]credentials.TransportCredentials{
		"plaintext":      insecure.NewCredentials(),
		"no client cert": credentials.NewTLS(&tls.Config{InsecureSkipVerify: true}),
		"foreign client cert": credentials.NewTLS(&tls.Config{
			InsecureSkipVerify: true,
			Certificates:       []tls.Certificate{intruder},
		}),
	} {
		if err := healthCheck(ctx(t), p.Addr.String(), creds); err == nil {
			t.Errorf("%s: the plugin answered a caller without the host's certificate", name)
		}
	}

	p.Kill()
	if !p.Exited() || !processGone(p.Pid) {
		t.Fatalf("plugin process %d still runs after Kill", p.Pid)
	}
	if _, err := os.Stat(p.Addr.String()); !os.IsNotExist(err) {
		t.Errorf("plugin socket %s left behind (%v)", p.Addr, err)
	}
	log := logs.String()
	for _, want := range []string{"plugin serving", "plugin exited"} {
		if !strings.Contains(log, want) {
			t.Errorf("host log lacks %q:\n%s", want, log)
		}
	}
	for _, unwanted := range []string{
		"failed to exit gracefully",   // the controller did not stop it
		"stdio service not available", // GRPCStdio missing
		"Unrecognized remote plugin",  // stray stdout
		"exit status",                 // a non-zero exit
	} {
		if strings.Contains(log, unwanted) {
			t.Errorf("host log has %q:\n%s", unwanted, log)
		}
	}
}

func testRefusesToRunByHand(t *testing.T, f Fixture) {
	cmd := exec.Command(f.Path)
	cmd.Env = withoutEnv(os.Environ(), contract.MagicCookieKey)
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

// testExitsWhenHostDies: here the "host" is a shell that starts the plugin
// in the background, waits until it has printed its handshake, and exits.
func testExitsWhenHostDies(t *testing.T, f Fixture) {
	cmd := exec.Command("/bin/sh", "-c", `"$0" & echo "$!"; read -r _; exit 0`, f.Path)
	cmd.Env = append(withoutEnv(os.Environ(), contract.MagicCookieKey),
		contract.MagicCookieKey+"="+contract.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS="+strconv.Itoa(contract.ProtocolVersion))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncbuf.Buffer{}
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
		t.Fatalf("reading the plugin's output: %v (stderr: %s)", l.err, stderr.String())
	}
	pid, err := strconv.Atoi(strings.TrimSpace(l.pid))
	if err != nil {
		t.Fatalf("pid line %q: %v", l.pid, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	// Without PLUGIN_CLIENT_CERT the plugin serves plaintext: an empty
	// sixth field.
	if parts := strings.Split(strings.TrimSpace(l.handshake), "|"); len(parts) != 6 || parts[0] != "1" || parts[1] != "1" ||
		parts[2] != "unix" || parts[4] != "grpc" || parts[5] != "" {
		t.Fatalf("handshake line = %q", l.handshake)
	}

	_ = stdin.Close() // the host goes away
	if err := cmd.Wait(); err != nil {
		t.Fatalf("shell: %v", err)
	}
	waitFor(t, fmt.Sprintf("plugin process %d to exit after its host", pid), func() bool { return processGone(pid) })
	waitFor(t, "the plugin to say why it stopped", func() bool { return strings.Contains(stderr.String(), "the host process is gone") })
}

// waitFor polls cond until it holds, for at most 30 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
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
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z' || s[i+2] == 'X'
	}
	return false
}

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

// Launcher writes an executable named name into a new folder of the test
// that runs command (an interpreter and a script, say) with the given
// arguments, and returns its path: how a test gives a plugin written in
// another language the single executable the daemon starts.
func Launcher(t testing.TB, name string, command ...string) string {
	t.Helper()
	quoted := make([]string, len(command))
	for i, c := range command {
		quoted[i] = "'" + strings.ReplaceAll(c, "'", `'\''`) + "'"
	}
	path := filepath.Join(t.TempDir(), name)
	script := "#!/bin/sh\nexec " + strings.Join(quoted, " ") + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// Example is one of the example plugins in examples/: a provider whose
// text comes from a setting, and an action that counts its runs in the
// agent's cache and answers through the host.
type Example struct {
	// Name is its manifest name.
	Name string
	// Provider and Action are the names of its provider and action.
	Provider, Action string
	// Setting is the setting the provider's text is made from, and
	// ProviderText the text it gives when the setting is "hi there".
	Setting, ProviderText string
	// RunsKey is the action's result value that counts its runs.
	RunsKey string
}

// TestExample runs an example plugin's executable as the daemon runs it and
// checks its provider and action.
func TestExample(t *testing.T, path string, e Example) {
	c := plugintest.StartExecutable(t, path)
	if m := c.Manifest(); m.Name != e.Name || len(m.Providers) != 1 || len(m.Actions) != 1 {
		t.Fatalf("manifest = %+v", m)
	}
	if _, err := c.Configure(ctx(t), agentID, &sdk.Character{Name: "Ada"}, map[string]string{e.Setting: "hi there"}); err != nil {
		t.Fatal(err)
	}
	res, _, err := c.Providers(ctx(t), agentID, []string{e.Provider}, message("hello"))
	if err != nil || res[e.Provider].Text != e.ProviderText {
		t.Errorf("%s = %+v, %v; want %q", e.Provider, res, err, e.ProviderText)
	}
	msg := message("run it")
	for run := 1; run <= 2; run++ {
		r, err := c.RunAction(ctx(t), agentID, e.Action, msg, nil)
		if err != nil || !r.Success || r.Values[e.RunsKey] != float64(run) {
			t.Fatalf("%s run %d = %+v, %v", e.Action, run, r, err)
		}
		if got := c.Runtime().Responses(); len(got) != run || got[run-1].Text != r.Text || got[run-1].InReplyTo != msg.ID {
			t.Errorf("the action's answer through the host = %+v, want %q", got, r.Text)
		}
	}
}

// Bench measures calls to the fixture on one connection: a health check
// (gRPC and the process, none of the SDK's code), a provider, and an action
// that makes four Runtime calls back (settings, cache read and write,
// respond).
func Bench(b *testing.B, f Fixture) {
	c := plugintest.StartExecutable(b, f.Path)
	bctx := context.Background()
	if _, err := c.Configure(bctx, agentID, &sdk.Character{Name: "Ada"}, nil); err != nil {
		b.Fatal(err)
	}
	// Warm up: connections, caches, a JIT.
	for range 200 {
		_ = c.Process().Ping()
		_, _, _ = c.Providers(bctx, agentID, []string{f.n("TEXT")}, message("hi"))
		_, _ = c.RunAction(bctx, agentID, f.n("RESPOND"), message("hi"), nil)
	}
	b.Run("health", func(b *testing.B) {
		for b.Loop() {
			if err := c.Process().Ping(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("provider", func(b *testing.B) {
		for b.Loop() {
			if _, errs, err := c.Providers(bctx, agentID, []string{f.n("TEXT")}, message("hi")); err != nil || len(errs) > 0 {
				b.Fatal(err, errs)
			}
		}
	})
	b.Run("action", func(b *testing.B) {
		for b.Loop() {
			if res, err := c.RunAction(bctx, agentID, f.n("RESPOND"), message("hi"), nil); err != nil || !res.Success {
				b.Fatal(err, res.Error)
			}
		}
	})
}
