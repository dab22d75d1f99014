package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/agenthost/agenthost/internal/contract"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// These tests talk to the Plugin service shim the way the host does: over
// gRPC on a unix socket, with the protocol's messages. The client allows
// messages larger than contract.MaxMessageSize so that the server's limits are the
// ones tested.

const testAgent = "agent-1"

// servePlugin serves p with NewGRPCServer and returns a raw client to it.
func servePlugin(t *testing.T, p Plugin) pb.PluginClient {
	t.Helper()
	return servePluginWith(t, p, hclog.NewNullLogger())
}

// servePluginWith is servePlugin with the plugin logging to log.
func servePluginWith(t *testing.T, p Plugin, log hclog.Logger) pb.PluginClient {
	t.Helper()
	dir := t.TempDir()
	if len(dir) > 80 { // unix socket paths are limited to ~108 bytes
		var err error
		if dir, err = os.MkdirTemp("", "sdk"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
	}
	lis, err := net.Listen("unix", filepath.Join(dir, "p.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newGRPCServer(p, log)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("unix://"+lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(200<<20), grpc.MaxCallSendMsgSize(200<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
	})
	return pb.NewPluginClient(conn)
}

// configured serves p and configures testAgent in it.
func configured(t *testing.T, p Plugin) pb.PluginClient {
	t.Helper()
	c := servePlugin(t, p)
	if _, err := c.Configure(context.Background(), &pb.ConfigureRequest{AgentId: testAgent}); err != nil {
		t.Fatalf("configure: %v", err)
	}
	return c
}

func testCtx(t *testing.T) context.Context {
	// A guard against a hung test, not a speed assertion.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func okProvider(name string) Provider {
	return Provider{Name: name, Get: func(context.Context, *Agent, *Memory, *State) (ProviderResult, error) {
		return ProviderResult{Text: "text of " + name, Values: map[string]any{"name": name}}, nil
	}}
}

func panicsPlugin() Plugin {
	return Plugin{
		Name:      "panics",
		Providers: []Provider{okProvider("OK_PROVIDER"), {Name: "BOOM_PROVIDER", Get: func(context.Context, *Agent, *Memory, *State) (ProviderResult, error) { panic("provider exploded") }}},
		Actions: []Action{
			{Name: "BOOM_ACTION", Handler: func(context.Context, *Agent, *ActionCall) (ActionResult, error) { panic("action exploded") }},
			{Name: "BAD_VALIDATE", Validate: func(context.Context, *Agent, *Memory, *State) bool { panic("validate exploded") },
				Handler: func(context.Context, *Agent, *ActionCall) (ActionResult, error) {
					return ActionResult{Success: true}, nil
				}},
			{Name: "FINE_ACTION", Handler: func(context.Context, *Agent, *ActionCall) (ActionResult, error) {
				return ActionResult{Success: true, Text: "fine"}, nil
			}},
		},
		Evaluators: []Evaluator{{Name: "BOOM_EVALUATOR", Handler: func(context.Context, *Agent, *EvaluatorCall) error { panic("evaluator exploded") }}},
		Models: []Model{{Type: "BOOM_MODEL", Handler: func(context.Context, *Agent, *ModelRequest) (*ModelResponse, error) {
			panic("model exploded")
		}}},
		Events: []EventHandler{{Type: "BOOM_EVENT", Handle: func(context.Context, *Agent, *Event) error { panic("event exploded") }}},
	}
}

// failureText is what a caller learns about a failed call: the call's error,
// or else the error inside its result.
func failureText(err error, inResult string) string {
	if err != nil {
		return err.Error()
	}
	return inResult
}

func TestPanicsAreRecoveredAndNameTheHandler(t *testing.T) {
	c := configured(t, panicsPlugin())
	ctx := testCtx(t)

	// The process (here: the server) must keep answering after each panic.
	alive := func(after string) {
		t.Helper()
		res, err := c.RunAction(ctx, &pb.RunActionRequest{AgentId: testAgent, Name: "FINE_ACTION"})
		if err != nil || res.GetResult().GetText() != "fine" {
			t.Fatalf("after the %s panic the plugin no longer answers: %v, %v", after, res, err)
		}
	}

	t.Run("provider", func(t *testing.T) {
		res, err := c.GetProviders(ctx, &pb.GetProvidersRequest{AgentId: testAgent, Names: []string{"BOOM_PROVIDER", "OK_PROVIDER"}})
		if err != nil {
			t.Fatalf("a panicking provider failed the whole call: %v", err)
		}
		rs := res.GetResults()
		if len(rs) != 2 {
			t.Fatalf("results = %v", rs)
		}
		if e := rs[0].GetError(); !strings.Contains(e, "BOOM_PROVIDER") || !strings.Contains(e, "provider exploded") {
			t.Errorf("panicking provider's error = %q, want it to name the provider and the panic", e)
		}
		if rs[1].GetError() != "" || rs[1].GetText() != "text of OK_PROVIDER" {
			t.Errorf("the other provider's result = %v", rs[1])
		}
		alive("provider")
	})
	t.Run("action", func(t *testing.T) {
		res, err := c.RunAction(ctx, &pb.RunActionRequest{AgentId: testAgent, Name: "BOOM_ACTION"})
		msg := failureText(err, res.GetResult().GetError())
		if err == nil && res.GetResult().GetSuccess() {
			t.Fatal("a panicking action succeeded")
		}
		if !strings.Contains(msg, "BOOM_ACTION") || !strings.Contains(msg, "action exploded") {
			t.Errorf("panicking action's error = %q, want it to name the action and the panic", msg)
		}
		alive("action")
	})
	t.Run("action validate", func(t *testing.T) {
		res, err := c.ValidateActions(ctx, &pb.ValidateActionsRequest{AgentId: testAgent, Names: []string{"BAD_VALIDATE", "FINE_ACTION"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.GetValid(); len(got) != 1 || got[0] != "FINE_ACTION" {
			t.Errorf("valid = %q, want only FINE_ACTION (a panicking Validate means not offered)", got)
		}
		alive("validate")
	})
	t.Run("evaluator", func(t *testing.T) {
		res, err := c.RunEvaluators(ctx, &pb.RunEvaluatorsRequest{AgentId: testAgent, Names: []string{"BOOM_EVALUATOR"}, DidRespond: true})
		var msg string
		if err == nil && len(res.GetOutcomes()) == 1 {
			msg = res.GetOutcomes()[0].GetError()
		}
		msg = failureText(err, msg)
		if !strings.Contains(msg, "BOOM_EVALUATOR") || !strings.Contains(msg, "evaluator exploded") {
			t.Errorf("panicking evaluator's error = %q (outcomes %v), want it to name the evaluator and the panic", msg, res.GetOutcomes())
		}
		alive("evaluator")
	})
	t.Run("model", func(t *testing.T) {
		_, err := c.UseModel(ctx, &pb.ModelRequest{AgentId: testAgent, Type: "BOOM_MODEL"})
		if err == nil {
			t.Fatal("a panicking model handler returned no error")
		}
		if msg := status.Convert(err).Message(); !strings.Contains(msg, "BOOM_MODEL") || !strings.Contains(msg, "model exploded") {
			t.Errorf("panicking model's error = %q, want it to name the model type and the panic", msg)
		}
		alive("model")
	})
	t.Run("model stream", func(t *testing.T) {
		stream, err := c.StreamModel(ctx, &pb.ModelRequest{AgentId: testAgent, Type: "BOOM_MODEL"})
		if err == nil {
			_, err = stream.Recv()
		}
		if err == nil {
			t.Fatal("a panicking streamed model returned no error")
		}
		if msg := status.Convert(err).Message(); !strings.Contains(msg, "BOOM_MODEL") || !strings.Contains(msg, "model exploded") {
			t.Errorf("panicking streamed model's error = %q, want it to name the model type and the panic", msg)
		}
		alive("model stream")
	})
	t.Run("event", func(t *testing.T) {
		_, err := c.HandleEvent(ctx, &pb.HandleEventRequest{AgentId: testAgent, Type: "BOOM_EVENT"})
		if err == nil {
			t.Fatal("a panicking event handler returned no error")
		}
		if msg := status.Convert(err).Message(); !strings.Contains(msg, "BOOM_EVENT") || !strings.Contains(msg, "event exploded") {
			t.Errorf("panicking event handler's error = %q, want it to name the event type and the panic", msg)
		}
		alive("event")
	})
}

func TestShutdownCancelsInFlightCall(t *testing.T) {
	started := make(chan struct{})
	c := configured(t, Plugin{Name: "blocker", Actions: []Action{{Name: "BLOCK",
		Handler: func(ctx context.Context, _ *Agent, _ *ActionCall) (ActionResult, error) {
			close(started)
			<-ctx.Done()
			return ActionResult{}, ctx.Err()
		}}}})
	ctx := testCtx(t)

	type result struct {
		res *pb.RunActionResponse
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := c.RunAction(ctx, &pb.RunActionRequest{AgentId: testAgent, Name: "BLOCK"})
		done <- result{res, err}
	}()
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("the action never started")
	}
	if _, err := c.Shutdown(ctx, &pb.ShutdownRequest{}); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	select {
	case r := <-done:
		// The handler's ctx error is reported in the result; the call
		// itself completes.
		msg := failureText(r.err, r.res.GetResult().GetError())
		if r.err == nil && r.res.GetResult().GetSuccess() {
			t.Errorf("cancelled action reported success")
		}
		if !strings.Contains(msg, "canceled") {
			t.Errorf("cancelled action's error = %q, want context canceled", msg)
		}
	case <-ctx.Done():
		t.Fatal("Shutdown did not cancel the action in flight")
	}
}

func TestShutdownCancelsInFlightStream(t *testing.T) {
	started := make(chan struct{})
	c := configured(t, Plugin{Name: "blocker", Models: []Model{{Type: ModelTextLarge,
		Handler: func(context.Context, *Agent, *ModelRequest) (*ModelResponse, error) { return &ModelResponse{}, nil },
		Stream: func(ctx context.Context, _ *Agent, _ *ModelRequest, emit func(string) error) (*ModelResponse, error) {
			if err := emit("first"); err != nil {
				return nil, err
			}
			close(started)
			<-ctx.Done()
			return nil, ctx.Err()
		}}}})
	ctx := testCtx(t)
	stream, err := c.StreamModel(ctx, &pb.ModelRequest{AgentId: testAgent, Type: ModelTextLarge})
	if err != nil {
		t.Fatal(err)
	}
	if chunk, err := stream.Recv(); err != nil || chunk.GetText() != "first" {
		t.Fatalf("first chunk = %v, %v", chunk, err)
	}
	<-started
	if _, err := c.Shutdown(ctx, &pb.ShutdownRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	if status.Code(err) != codes.Canceled {
		t.Errorf("stream after Shutdown: %v, want Canceled", err)
	}
}

func TestStreamModelSendsPiecesThenTheWhole(t *testing.T) {
	c := configured(t, Plugin{Name: "streamer", Models: []Model{
		{Type: ModelTextLarge,
			Handler: func(context.Context, *Agent, *ModelRequest) (*ModelResponse, error) { return nil, errors.New("unused") },
			Stream: func(_ context.Context, _ *Agent, req *ModelRequest, emit func(string) error) (*ModelResponse, error) {
				for _, w := range []string{"a", "b\xff", "c"} {
					if err := emit(w); err != nil {
						return nil, err
					}
				}
				return &ModelResponse{Text: "ab\uFFFDc", Model: "m", Usage: Usage{TotalTokens: 3}}, nil
			}},
		{Type: ModelTextSmall, Handler: func(_ context.Context, _ *Agent, req *ModelRequest) (*ModelResponse, error) {
			return &ModelResponse{Text: "whole"}, nil
		}},
	}})
	ctx := testCtx(t)
	recv := func(typ string) (pieces []string, final *pb.ModelResponse) {
		t.Helper()
		stream, err := c.StreamModel(ctx, &pb.ModelRequest{AgentId: testAgent, Type: typ})
		if err != nil {
			t.Fatal(err)
		}
		for {
			chunk, err := stream.Recv()
			if err != nil {
				t.Fatalf("%s stream: %v", typ, err)
			}
			if chunk.GetFinal() != nil {
				return pieces, chunk.GetFinal()
			}
			pieces = append(pieces, chunk.GetText())
		}
	}
	pieces, final := recv(ModelTextLarge)
	if strings.Join(pieces, "|") != "a|b\uFFFD|c" || final.GetText() != "ab\uFFFDc" || final.GetModel() != "m" || final.GetUsage().GetTotalTokens() != 3 {
		t.Errorf("stream = %q then %v", pieces, final)
	}
	pieces, final = recv(ModelTextSmall)
	if len(pieces) != 1 || pieces[0] != "whole" || final.GetText() != "whole" {
		t.Errorf("handler-only stream = %q then %v", pieces, final)
	}
}

func TestConfigureRejectsMalformedCharacter(t *testing.T) {
	configureCalled := false
	c := servePlugin(t, Plugin{Name: "chars", Configure: func(context.Context, *Agent) ([]string, error) {
		configureCalled = true
		return nil, nil
	}})
	ctx := testCtx(t)
	for _, tc := range []struct {
		name, json, want string
	}{
		{"syntax", `{"name": "Eliza", "bio": [}`, "invalid JSON"},
		{"wrong type", `{"name": "Eliza", "bio": 42}`, `"bio"`},
		{"missing name", `{"bio": "helps"}`, "name"},
		{"not an object", `["Eliza"]`, "object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Configure(ctx, &pb.ConfigureRequest{AgentId: testAgent, CharacterJson: []byte(tc.json)})
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("code = %v (%v), want InvalidArgument", status.Code(err), err)
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, tc.want) || !strings.Contains(msg, testAgent) {
				t.Errorf("message = %q, want it to name the agent and %s", msg, tc.want)
			}
		})
	}
	if configureCalled {
		t.Error("the plugin's Configure ran for a malformed character")
	}
	if _, err := c.Configure(ctx, &pb.ConfigureRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("configure without agent id: %v, want InvalidArgument", err)
	}
	// The agent was never configured.
	if _, err := c.RunAction(ctx, &pb.RunActionRequest{AgentId: testAgent, Name: "X"}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("call after a failed configure: %v, want FailedPrecondition", err)
	}
	// A good character is accepted.
	if _, err := c.Configure(ctx, &pb.ConfigureRequest{AgentId: testAgent, CharacterJson: []byte(`{"name": "Eliza", "bio": "helps"}`)}); err != nil {
		t.Fatalf("good character: %v", err)
	}
}

func TestCallsForUnconfiguredAgentFail(t *testing.T) {
	p := panicsPlugin()
	p.Sources = []Source{{Name: "chat", Send: func(context.Context, *Agent, Target, Content) ([]string, error) { return nil, nil }}}
	var unconfigured atomic.Bool
	p.Unconfigure = func(context.Context, *Agent) { unconfigured.Store(true) }
	c := configured(t, p)
	ctx := testCtx(t)

	check := func(t *testing.T, agent string) {
		t.Helper()
		calls := map[string]func() error{
			"GetProviders": func() error {
				_, err := c.GetProviders(ctx, &pb.GetProvidersRequest{AgentId: agent, Names: []string{"OK_PROVIDER"}})
				return err
			},
			"ValidateActions": func() error {
				_, err := c.ValidateActions(ctx, &pb.ValidateActionsRequest{AgentId: agent, Names: []string{"FINE_ACTION"}})
				return err
			},
			"RunAction": func() error {
				_, err := c.RunAction(ctx, &pb.RunActionRequest{AgentId: agent, Name: "FINE_ACTION"})
				return err
			},
			"RunEvaluators": func() error {
				_, err := c.RunEvaluators(ctx, &pb.RunEvaluatorsRequest{AgentId: agent, Names: []string{"BOOM_EVALUATOR"}})
				return err
			},
			"HandleEvent": func() error {
				_, err := c.HandleEvent(ctx, &pb.HandleEventRequest{AgentId: agent, Type: "BOOM_EVENT"})
				return err
			},
			"UseModel": func() error {
				_, err := c.UseModel(ctx, &pb.ModelRequest{AgentId: agent, Type: "BOOM_MODEL"})
				return err
			},
			"StreamModel": func() error {
				stream, err := c.StreamModel(ctx, &pb.ModelRequest{AgentId: agent, Type: "BOOM_MODEL"})
				if err != nil {
					return err
				}
				_, err = stream.Recv()
				return err
			},
			"SendMessage": func() error {
				_, err := c.SendMessage(ctx, &pb.SendMessageRequest{AgentId: agent, Target: &pb.Target{Source: "chat"}})
				return err
			},
		}
		for name, call := range calls {
			err := call()
			if status.Code(err) != codes.FailedPrecondition {
				t.Errorf("%s for %q: %v, want FailedPrecondition", name, agent, err)
				continue
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, agent) {
				t.Errorf("%s: message %q does not name the agent %q", name, msg, agent)
			}
		}
	}
	t.Run("never configured", func(t *testing.T) { check(t, "ghost-agent") })
	t.Run("unconfigured", func(t *testing.T) {
		if _, err := c.Unconfigure(ctx, &pb.UnconfigureRequest{AgentId: testAgent}); err != nil {
			t.Fatal(err)
		}
		if !unconfigured.Load() {
			t.Error("the plugin's Unconfigure was not called")
		}
		check(t, testAgent)
	})
}

func TestGetProvidersBatchesInOrder(t *testing.T) {
	c := configured(t, Plugin{Name: "providers", Providers: []Provider{
		okProvider("A"), okProvider("B"), okProvider("C"),
		{Name: "FAILS", Get: func(context.Context, *Agent, *Memory, *State) (ProviderResult, error) {
			return ProviderResult{}, errors.New("backend is down")
		}},
	}})
	ctx := testCtx(t)

	res, err := c.GetProviders(ctx, &pb.GetProvidersRequest{AgentId: testAgent, Names: []string{"C", "A", "B"}})
	if err != nil {
		t.Fatal(err)
	}
	rs := res.GetResults()
	if len(rs) != 3 {
		t.Fatalf("got %d results, want 3", len(rs))
	}
	for i, want := range []string{"C", "A", "B"} {
		if rs[i].GetName() != want || rs[i].GetText() != "text of "+want || rs[i].GetError() != "" ||
			string(rs[i].GetValuesJson()) != `{"name":"`+want+`"}` {
			t.Errorf("result %d = %v, want provider %s", i, rs[i], want)
		}
	}

	res, err = c.GetProviders(ctx, &pb.GetProvidersRequest{AgentId: testAgent, Names: []string{"A", "MISSING", "FAILS", "B"}})
	if err != nil {
		t.Fatalf("a missing provider failed the whole call: %v", err)
	}
	rs = res.GetResults()
	if len(rs) != 4 {
		t.Fatalf("got %d results, want 4", len(rs))
	}
	if rs[0].GetError() != "" || rs[3].GetError() != "" || rs[0].GetName() != "A" || rs[3].GetName() != "B" {
		t.Errorf("the good providers: %v, %v", rs[0], rs[3])
	}
	if rs[1].GetName() != "MISSING" || !strings.Contains(rs[1].GetError(), `"MISSING"`) || rs[1].GetText() != "" {
		t.Errorf("missing provider's result = %v, want an error naming it", rs[1])
	}
	if rs[2].GetName() != "FAILS" || rs[2].GetError() != "backend is down" {
		t.Errorf("failing provider's result = %v", rs[2])
	}
}

// Text a model or a platform produced may be any bytes; protobuf refuses to
// marshal invalid UTF-8. Everything the plugin sends must arrive valid.
func TestInvalidUTF8LeavesThePluginValid(t *testing.T) {
	const bad = "caf\xc3 \xff\xfe ok"
	c := configured(t, Plugin{Name: "utf8",
		Providers: []Provider{
			{Name: "BAD_TEXT", Get: func(context.Context, *Agent, *Memory, *State) (ProviderResult, error) {
				return ProviderResult{Text: bad, Values: map[string]any{"v": bad}}, nil
			}},
			{Name: "BAD_ERROR", Get: func(context.Context, *Agent, *Memory, *State) (ProviderResult, error) {
				return ProviderResult{}, errors.New(bad)
			}},
			{Name: "BAD_PANIC", Get: func(context.Context, *Agent, *Memory, *State) (ProviderResult, error) { panic(bad) }},
		},
		Actions: []Action{{Name: "BAD", Handler: func(context.Context, *Agent, *ActionCall) (ActionResult, error) {
			return ActionResult{Success: true, Text: bad, Values: map[string]any{"v": bad}}, nil
		}}},
		Models: []Model{{Type: ModelTextSmall, Handler: func(context.Context, *Agent, *ModelRequest) (*ModelResponse, error) {
			return &ModelResponse{Text: bad}, nil
		}}},
		Evaluators: []Evaluator{
			{Name: "BAD_EVALUATOR", Handler: func(context.Context, *Agent, *EvaluatorCall) error { return errors.New(bad) }},
			{Name: "BAD_EVALUATOR_PANIC", Handler: func(context.Context, *Agent, *EvaluatorCall) error { panic(bad) }},
		},
		Configure: func(_ context.Context, a *Agent) ([]string, error) {
			if a.ID == "agent-2" {
				return []string{bad}, nil
			}
			return nil, nil
		},
	})
	ctx := testCtx(t)
	wantValid := func(what, s string) {
		t.Helper()
		if !utf8.ValidString(s) || !strings.Contains(s, "\uFFFD") || !strings.Contains(s, "ok") {
			t.Errorf("%s = %q, want valid UTF-8 with U+FFFD in place of the bad bytes", what, s)
		}
	}
	wantValidJSON := func(what string, b []byte) {
		t.Helper()
		var m map[string]string
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("%s = %q: %v", what, b, err)
		}
		wantValid(what, m["v"])
	}

	prs, err := c.GetProviders(ctx, &pb.GetProvidersRequest{AgentId: testAgent, Names: []string{"BAD_TEXT", "BAD_ERROR"}})
	if err != nil {
		t.Fatalf("providers: %v", err)
	}
	wantValid("provider text", prs.GetResults()[0].GetText())
	wantValidJSON("provider values", prs.GetResults()[0].GetValuesJson())
	wantValid("provider error", prs.GetResults()[1].GetError())

	prs, err = c.GetProviders(ctx, &pb.GetProvidersRequest{AgentId: testAgent, Names: []string{"BAD_PANIC"}})
	if err != nil {
		t.Errorf("provider panicking with invalid UTF-8: %v", err)
	} else {
		wantValid("provider panic", prs.GetResults()[0].GetError())
	}

	ar, err := c.RunAction(ctx, &pb.RunActionRequest{AgentId: testAgent, Name: "BAD"})
	if err != nil {
		t.Fatalf("action: %v", err)
	}
	wantValid("action text", ar.GetResult().GetText())
	wantValidJSON("action values", ar.GetResult().GetValuesJson())

	mr, err := c.UseModel(ctx, &pb.ModelRequest{AgentId: testAgent, Type: ModelTextSmall})
	if err != nil {
		t.Fatalf("model: %v", err)
	}
	wantValid("model text", mr.GetText())

	er, err := c.RunEvaluators(ctx, &pb.RunEvaluatorsRequest{AgentId: testAgent, Names: []string{"BAD_EVALUATOR"}, DidRespond: true})
	if err != nil {
		t.Fatalf("evaluator: %v", err)
	}
	wantValid("evaluator error", er.GetOutcomes()[0].GetError())

	er, err = c.RunEvaluators(ctx, &pb.RunEvaluatorsRequest{AgentId: testAgent, Names: []string{"BAD_EVALUATOR_PANIC"}, DidRespond: true})
	if err != nil {
		t.Errorf("evaluator panicking with invalid UTF-8: %v", err)
	} else {
		wantValid("evaluator panic", er.GetOutcomes()[0].GetError())
	}

	cr, err := c.Configure(ctx, &pb.ConfigureRequest{AgentId: "agent-2"})
	if err != nil {
		t.Errorf("configure with an invalid UTF-8 warning: %v", err)
	} else {
		wantValid("configure warning", cr.GetWarnings()[0])
	}
}

func TestMessageSizeLimit(t *testing.T) {
	var size atomic.Int64
	c := configured(t, Plugin{Name: "big", Actions: []Action{
		{Name: "ECHO", Handler: func(_ context.Context, _ *Agent, call *ActionCall) (ActionResult, error) {
			return ActionResult{Success: true, Text: call.Message.Content.Text}, nil
		}},
		{Name: "PRODUCE", Handler: func(context.Context, *Agent, *ActionCall) (ActionResult, error) {
			return ActionResult{Success: true, Text: strings.Repeat("y", int(size.Load()))}, nil
		}},
	}})
	ctx := testCtx(t)
	msg := func(n int) *pb.Memory { return &pb.Memory{Content: &pb.Content{Text: strings.Repeat("x", n)}} }

	res, err := c.RunAction(ctx, &pb.RunActionRequest{AgentId: testAgent, Name: "ECHO", Message: msg(10 << 20)})
	if err != nil {
		t.Fatalf("10 MiB round trip: %v", err)
	}
	if n := len(res.GetResult().GetText()); n != 10<<20 {
		t.Fatalf("10 MiB round trip returned %d bytes", n)
	}
	res = nil

	_, err = c.RunAction(ctx, &pb.RunActionRequest{AgentId: testAgent, Name: "ECHO", Message: msg(70 << 20)})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("70 MiB request: %v, want ResourceExhausted", err)
	}

	size.Store(70 << 20)
	_, err = c.RunAction(ctx, &pb.RunActionRequest{AgentId: testAgent, Name: "PRODUCE"})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("70 MiB response: %v, want ResourceExhausted", err)
	}

	// The plugin is still there.
	if _, err := c.RunAction(ctx, &pb.RunActionRequest{AgentId: testAgent, Name: "ECHO", Message: msg(10)}); err != nil {
		t.Errorf("small call after the refused ones: %v", err)
	}
}

func TestNewGRPCServerValidatesThePlugin(t *testing.T) {
	handler := func(context.Context, *Agent, *ActionCall) (ActionResult, error) { return ActionResult{}, nil }
	get := func(context.Context, *Agent, *Memory, *State) (ProviderResult, error) { return ProviderResult{}, nil }
	eval := func(context.Context, *Agent, *EvaluatorCall) error { return nil }
	model := func(context.Context, *Agent, *ModelRequest) (*ModelResponse, error) { return nil, nil }
	send := func(context.Context, *Agent, Target, Content) ([]string, error) { return nil, nil }
	for _, tc := range []struct {
		name string
		p    Plugin
		want string // "" means valid
	}{
		{"empty plugin name", Plugin{Name: "  "}, "Name is empty"},
		{"duplicate action", Plugin{Name: "x", Actions: []Action{{Name: "A", Handler: handler}, {Name: "A", Handler: handler}}}, `action "A" is defined twice`},
		{"action without handler", Plugin{Name: "x", Actions: []Action{{Name: "A"}}}, "action A has no Handler"},
		{"empty action name", Plugin{Name: "x", Actions: []Action{{Name: " ", Handler: handler}}}, "action has an empty name"},
		{"provider without get", Plugin{Name: "x", Providers: []Provider{{Name: "P"}}}, "provider P has no Get"},
		{"duplicate provider", Plugin{Name: "x", Providers: []Provider{{Name: "P", Get: get}, {Name: "P", Get: get}}}, `provider "P" is defined twice`},
		{"empty provider name", Plugin{Name: "x", Providers: []Provider{{Get: get}}}, "provider has an empty name"},
		{"evaluator without handler", Plugin{Name: "x", Evaluators: []Evaluator{{Name: "E"}}}, "evaluator E has no Handler"},
		{"duplicate model", Plugin{Name: "x", Models: []Model{{Type: "T", Handler: model}, {Type: "T", Handler: model}}}, `model "T" is defined twice`},
		{"model without handler", Plugin{Name: "x", Models: []Model{{Type: "T"}}}, "model T has neither Handler nor Stream"},
		{"event without type", Plugin{Name: "x", Events: []EventHandler{{Handle: func(context.Context, *Agent, *Event) error { return nil }}}}, "event handler needs a Type"},
		{"event without handle", Plugin{Name: "x", Events: []EventHandler{{Type: "E"}}}, "event handler needs a Type and a Handle"},
		{"source without send", Plugin{Name: "x", Sources: []Source{{Name: "chat"}}}, "source chat has no Send"},
		{"same name, different kinds", Plugin{Name: "x", Actions: []Action{{Name: "N", Handler: handler}},
			Providers: []Provider{{Name: "N", Get: get}}, Evaluators: []Evaluator{{Name: "N", Handler: eval}},
			Sources: []Source{{Name: "N", Send: send}}}, ""},
		{"two handlers of one event", Plugin{Name: "x", Events: []EventHandler{
			{Type: "E", Handle: func(context.Context, *Agent, *Event) error { return nil }},
			{Type: "E", Handle: func(context.Context, *Agent, *Event) error { return nil }}}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := newGRPCServer(tc.p, nil)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("valid plugin refused: %v", err)
				}
				s.Stop()
				return
			}
			if err == nil {
				s.Stop()
				t.Fatalf("invalid plugin accepted, want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestDescribeReportsTheManifest(t *testing.T) {
	p := panicsPlugin()
	p.Version = "1.2.3"
	p.Aliases = []string{"@elizaos/plugin-panics"}
	p.Providers = append(p.Providers, Provider{Name: "DYN", Dynamic: true, Private: true, Position: -3, Get: okProvider("DYN").Get})
	p.Models = append(p.Models, Model{Type: ModelTextLarge, Priority: 7, Handler: p.Models[0].Handler})
	p.Events = append(p.Events, EventHandler{Type: "BOOM_EVENT", Handle: p.Events[0].Handle})
	p.Sources = []Source{{Name: "chat", Send: func(context.Context, *Agent, Target, Content) ([]string, error) { return nil, nil }}}
	p.Actions[0].Examples = [][]ExampleMessage{{{Name: "{{user}}", Content: Content{Text: "boom", Extra: map[string]any{"k": "v"}}}}}
	c := servePlugin(t, p)
	m, err := c.Describe(testCtx(t), &pb.DescribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if m.GetName() != "panics" || m.GetVersion() != "1.2.3" || m.GetProtocolMinor() != contract.ProtocolMinor || m.GetDatabase() ||
		len(m.GetAliases()) != 1 {
		t.Errorf("manifest header = %v", m)
	}
	if len(m.GetActions()) != 3 || m.GetActions()[0].GetName() != "BOOM_ACTION" {
		t.Errorf("actions = %v", m.GetActions())
	}
	ex := m.GetActions()[0].GetExamples()
	if len(ex) != 1 || ex[0].GetMessages()[0].GetContent().GetText() != "boom" || string(ex[0].GetMessages()[0].GetContent().GetExtraJson()) != `{"k":"v"}` {
		t.Errorf("examples = %v", ex)
	}
	dyn := m.GetProviders()[2]
	if dyn.GetName() != "DYN" || !dyn.GetDynamic() || !dyn.GetPrivate() || dyn.GetPosition() != -3 {
		t.Errorf("dynamic provider = %v", dyn)
	}
	if len(m.GetModels()) != 2 || m.GetModels()[1].GetPriority() != 7 {
		t.Errorf("models = %v", m.GetModels())
	}
	if len(m.GetEvents()) != 1 || m.GetEvents()[0] != "BOOM_EVENT" {
		t.Errorf("events = %q, want each type once", m.GetEvents())
	}
	if len(m.GetMessageSources()) != 1 || m.GetMessageSources()[0] != "chat" {
		t.Errorf("sources = %q", m.GetMessageSources())
	}
}

// TestInitErrorIsThePlugins: the error a plugin's Init returns reaches the
// host as the plugin wrote it, without a prefix of the SDK's: the host
// names the plugin and the call itself ("init plugin sql: …"), and a
// second prefix only doubled it.
func TestInitErrorIsThePlugins(t *testing.T) {
	c := servePlugin(t, Plugin{Name: "sql", Init: func(context.Context, Host) error {
		return errors.New("open database: permission denied")
	}})
	_, err := c.Init(testCtx(t), &pb.InitRequest{})
	if got := status.Convert(err).Message(); got != "open database: permission denied" {
		t.Errorf("Init error = %q", got)
	}
}
