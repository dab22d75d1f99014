package plugintest_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/plugintest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const agentID = "agent-1"

func testCtx(t *testing.T) context.Context {
	// A guard against a hung test, not a speed assertion.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// startAgent starts p, configures agentID in it and returns the plugin's
// own *sdk.Agent, whose Runtime calls go over gRPC to the fake host.
func startAgent(t *testing.T, p sdk.Plugin, opts ...plugintest.Option) (*plugintest.Client, *sdk.Agent) {
	t.Helper()
	var agent *sdk.Agent
	configure := p.Configure
	p.Configure = func(ctx context.Context, a *sdk.Agent) ([]string, error) {
		agent = a
		if configure != nil {
			return configure(ctx, a)
		}
		return nil, nil
	}
	c := plugintest.Start(t, p, opts...)
	if _, err := c.Configure(testCtx(t), agentID, &sdk.Character{Name: "Eliza", Bio: sdk.StringList{"helps"}}, nil); err != nil {
		t.Fatalf("configure: %v", err)
	}
	return c, agent
}

// recorder is a plugin that keeps what its handlers received.
type recorder struct {
	mu       sync.Mutex
	host     sdk.Host
	agent    *sdk.Agent
	action   *sdk.ActionCall
	provided *sdk.Memory
	model    *sdk.ModelRequest
	event    *sdk.Event
	eval     *sdk.EvaluatorCall
	target   sdk.Target
	content  sdk.Content
}

func (r *recorder) plugin() sdk.Plugin {
	return sdk.Plugin{
		Name: "recorder", Version: "0.1.0",
		Settings: []sdk.Setting{{Name: "OPENAI_API_KEY", Secret: true}, {Name: "MISSING_KEY"}},
		Init: func(_ context.Context, h sdk.Host) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.host = h
			return nil
		},
		Configure: func(_ context.Context, a *sdk.Agent) ([]string, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.agent = a
			if a.Settings["MISSING_KEY"] == "" {
				return []string{"MISSING_KEY is not set"}, nil
			}
			return nil, nil
		},
		Actions: []sdk.Action{{Name: "RECORD", Handler: func(_ context.Context, _ *sdk.Agent, call *sdk.ActionCall) (sdk.ActionResult, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.action = call
			return sdk.ActionResult{Success: true, Text: "recorded", Values: map[string]any{"n": 1.0},
				Data: map[string]any{"list": []any{"a", true}}}, nil
		}}},
		Providers: []sdk.Provider{
			{Name: "RECORD", Position: 2, Get: func(_ context.Context, _ *sdk.Agent, msg *sdk.Memory, _ *sdk.State) (sdk.ProviderResult, error) {
				r.mu.Lock()
				defer r.mu.Unlock()
				r.provided = msg
				return sdk.ProviderResult{Text: "# Recorded", Values: map[string]any{"recorded": true},
					Data: map[string]any{"deep": map[string]any{"x": 1.5}}}, nil
			}},
			{Name: "SECRET", Private: true, Get: func(context.Context, *sdk.Agent, *sdk.Memory, *sdk.State) (sdk.ProviderResult, error) {
				return sdk.ProviderResult{Text: "secret"}, nil
			}},
			{Name: "ON_DEMAND", Dynamic: true, Position: -1, Get: func(context.Context, *sdk.Agent, *sdk.Memory, *sdk.State) (sdk.ProviderResult, error) {
				return sdk.ProviderResult{Text: "dynamic"}, nil
			}},
		},
		Evaluators: []sdk.Evaluator{{Name: "RECORD_EVAL", Handler: func(_ context.Context, _ *sdk.Agent, call *sdk.EvaluatorCall) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.eval = call
			return nil
		}}},
		Models: []sdk.Model{{Type: sdk.ModelTextSmall, Priority: 3, Handler: func(_ context.Context, _ *sdk.Agent, req *sdk.ModelRequest) (*sdk.ModelResponse, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.model = req
			return &sdk.ModelResponse{Text: "echo: " + req.Prompt, Model: "echo-1", Usage: sdk.Usage{PromptTokens: 3, CompletionTokens: 2, TotalTokens: 5}}, nil
		}}},
		Events: []sdk.EventHandler{{Type: sdk.EventMessageReceived, Handle: func(_ context.Context, _ *sdk.Agent, ev *sdk.Event) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.event = ev
			return nil
		}}},
		Sources: []sdk.Source{{Name: "chat", Send: func(_ context.Context, _ *sdk.Agent, t sdk.Target, c sdk.Content) ([]string, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.target, r.content = t, c
			return []string{"m-1", "m-2"}, nil
		}}},
	}
}

func TestGreeter(t *testing.T) { testGreeter(t) }

func TestStartDescribesInitsAndConfigures(t *testing.T) {
	r := &recorder{}
	dataDir := t.TempDir()
	c := plugintest.Start(t, r.plugin(), plugintest.WithDataDir(dataDir),
		plugintest.WithHostSettings(map[string]string{"POSTGRES_URL": "postgres://db"}))
	ctx := testCtx(t)

	want := plugintest.Manifest{Name: "recorder", Version: "0.1.0", ProtocolMinor: contract.ProtocolMinor, Actions: []string{"RECORD"},
		Providers: []plugintest.ProviderInfo{{Name: "RECORD", Position: 2}, {Name: "SECRET", Private: true},
			{Name: "ON_DEMAND", Dynamic: true, Position: -1}},
		Evaluators: []string{"RECORD_EVAL"}, Models: []plugintest.ModelInfo{{Type: sdk.ModelTextSmall, Priority: 3}},
		Events: []string{sdk.EventMessageReceived}, Sources: []string{"chat"}, Settings: []string{"OPENAI_API_KEY", "MISSING_KEY"}}
	if got := c.Manifest(); !reflect.DeepEqual(got, want) {
		t.Errorf("manifest:\n got %+v\nwant %+v", got, want)
	}

	r.mu.Lock()
	host := r.host
	r.mu.Unlock()
	if host.DataDir != dataDir || host.Version != plugintest.HostVersion || host.Settings["POSTGRES_URL"] != "postgres://db" {
		t.Errorf("Init got %+v", host)
	}
	// What the host offers, as the daemon tells it.
	if host.ProtocolMinor != contract.ProtocolMinor || !host.Offers("/agenthost.plugin.v1.Database/GetMemories") ||
		!host.Offers("/agenthost.plugin.v1.Runtime/ComposeState") || host.Offers("/agenthost.plugin.v1.Database/Migrate") {
		t.Errorf("Init got protocol minor %d, features %v", host.ProtocolMinor, host.Features)
	}

	ch := &sdk.Character{Name: "Eliza", Bio: sdk.StringList{"helps", "listens"}, Settings: map[string]any{"model": "small"}}
	warnings, err := c.Configure(ctx, agentID, ch, map[string]string{"OPENAI_API_KEY": "sk-test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "MISSING_KEY") {
		t.Errorf("warnings = %q", warnings)
	}
	r.mu.Lock()
	a := r.agent
	r.mu.Unlock()
	if a.ID != agentID || a.Name() != "Eliza" || len(a.Character.Bio) != 2 || a.Character.Settings["model"] != "small" ||
		a.Setting("OPENAI_API_KEY") != "sk-test" {
		t.Errorf("configured agent = %+v, character %+v", a, a.Character)
	}

	if _, err := c.Configure(ctx, "agent-nil", nil, nil); err != nil {
		t.Errorf("configure without a character: %v", err)
	}
}

func TestWithoutOptionsDataDirIsATempDir(t *testing.T) {
	r := &recorder{}
	plugintest.Start(t, r.plugin())
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.host.DataDir == "" {
		t.Error("Init got no data dir")
	}
}

func TestLongTestNamesStillGetASocket(t *testing.T) {
	t.Run(strings.Repeat("a_very_long_subtest_name_", 8), func(t *testing.T) {
		r := &recorder{}
		c := plugintest.Start(t, r.plugin())
		if c.Manifest().Name != "recorder" {
			t.Errorf("manifest = %+v", c.Manifest())
		}
	})
}

func TestStartFailsOnInvalidPluginOrInit(t *testing.T) {
	for name, p := range map[string]sdk.Plugin{
		"invalid":     {Name: "bad", Actions: []sdk.Action{{Name: "NO_HANDLER"}}},
		"init failed": {Name: "bad", Init: func(context.Context, sdk.Host) error { return errors.New("no database") }},
	} {
		t.Run(name, func(t *testing.T) {
			ft := &fatalRecorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				plugintest.Start(ft, p)
			}()
			<-done
			if !ft.failed {
				t.Fatal("Start did not fail the test")
			}
		})
	}
}

// fatalRecorder records Fatalf instead of failing the real test.
type fatalRecorder struct {
	testing.TB
	failed bool
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.failed = true
	f.TB.Logf("(expected) "+format, args...)
	runtime.Goexit() // as t.FailNow does
}

// The converters of both sides must agree: what the host sends is what the
// handler gets, and back.
func TestValuesSurviveTheWire(t *testing.T) {
	r := &recorder{}
	c, _ := startAgent(t, r.plugin())
	ctx := testCtx(t)

	msg := &sdk.Memory{
		ID: "m1", EntityID: "e1", AgentID: agentID, RoomID: "r1", WorldID: "w1", CreatedAt: 1700000000000,
		Embedding: []float32{0.5, -0.25, 1e-6}, Unique: true, Similarity: 0.5, Table: sdk.TableMessages,
		Metadata: map[string]any{"type": "message", "deep": map[string]any{"n": 2.0, "list": []any{"x", nil}}},
		Content: sdk.Content{Text: "hi", Thought: "th", Actions: []string{"RECORD"}, Providers: []string{"RECORD"},
			Source: "telegram", Target: "tg", URL: "u", InReplyTo: "m0", ChannelType: sdk.ChannelGroup,
			Attachments: []sdk.Media{{ID: "a", URL: "u", Title: "t", Source: "s", Description: "d", Text: "x", ContentType: "image"}},
			Extra:       map[string]any{"simple": true}},
	}
	responses := []sdk.Memory{{ID: "reply", Content: sdk.Content{Text: "ok", Actions: []string{"RECORD"}}}}

	res, err := c.RunAction(ctx, agentID, "RECORD", msg, responses)
	if err != nil {
		t.Fatal(err)
	}
	if want := (sdk.ActionResult{Success: true, Text: "recorded", Values: map[string]any{"n": 1.0},
		Data: map[string]any{"list": []any{"a", true}}}); !reflect.DeepEqual(res, want) {
		t.Errorf("action result = %#v", res)
	}
	r.mu.Lock()
	call := r.action
	r.mu.Unlock()
	if !reflect.DeepEqual(call.Message, msg) {
		t.Errorf("message:\n got %#v\nsent %#v", call.Message, msg)
	}
	if !reflect.DeepEqual(call.Responses, responses) {
		t.Errorf("responses:\n got %#v\nsent %#v", call.Responses, responses)
	}

	results, errs, err := c.Providers(ctx, agentID, []string{"RECORD"}, msg)
	if err != nil || len(errs) != 0 {
		t.Fatalf("providers: %v %v", errs, err)
	}
	if want := (sdk.ProviderResult{Text: "# Recorded", Values: map[string]any{"recorded": true},
		Data: map[string]any{"deep": map[string]any{"x": 1.5}}}); !reflect.DeepEqual(results["RECORD"], want) {
		t.Errorf("provider result = %#v", results["RECORD"])
	}
	r.mu.Lock()
	provided := r.provided
	r.mu.Unlock()
	if !reflect.DeepEqual(provided, msg) {
		t.Errorf("provider's message:\n got %#v\nsent %#v", provided, msg)
	}

	for _, temp := range []*float64{nil, ptr(0.0), ptr(0.9)} {
		req := sdk.ModelRequest{Type: sdk.ModelTextSmall, RunID: "run", Prompt: "p", System: "s", Temperature: temp,
			MaxTokens: 64, StopSequences: []string{"END"}, PresencePenalty: ptr(0.1), Params: map[string]any{"k": "v"}}
		out, err := c.UseModel(ctx, agentID, req)
		if err != nil {
			t.Fatal(err)
		}
		if want := (&sdk.ModelResponse{Text: "echo: p", Model: "echo-1", Usage: sdk.Usage{PromptTokens: 3, CompletionTokens: 2, TotalTokens: 5}}); !reflect.DeepEqual(out, want) {
			t.Errorf("model response = %#v", out)
		}
		r.mu.Lock()
		got := r.model
		r.mu.Unlock()
		if !reflect.DeepEqual(*got, req) {
			t.Errorf("model request (temperature %v):\n got %#v\nsent %#v", temp, *got, req)
		}
	}

	ev := sdk.Event{Type: sdk.EventMessageReceived, RunID: "run", Source: "telegram", Message: msg, Payload: map[string]any{"p": 1.0}}
	if err := c.HandleEvent(ctx, agentID, ev); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	gotEv := r.event
	r.mu.Unlock()
	if !reflect.DeepEqual(*gotEv, ev) {
		t.Errorf("event:\n got %#v\nsent %#v", *gotEv, ev)
	}

	call2 := sdk.EvaluatorCall{Message: msg, State: &sdk.State{Values: map[string]any{"v": "x"}, Data: map[string]any{}, Text: "st"},
		DidRespond: true, Responses: responses, RunID: "run"}
	outcomes, err := c.RunEvaluators(ctx, agentID, []string{"RECORD_EVAL"}, call2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []sdk.EvaluatorOutcome{{Name: "RECORD_EVAL", Ran: true}}; !reflect.DeepEqual(outcomes, want) {
		t.Errorf("outcomes = %#v", outcomes)
	}
	r.mu.Lock()
	gotEval := r.eval
	r.mu.Unlock()
	if !reflect.DeepEqual(*gotEval, call2) {
		t.Errorf("evaluator call:\n got %#v\nsent %#v", *gotEval, call2)
	}

	target := sdk.Target{Source: "chat", RoomID: "r", ChannelID: "c", ServerID: "s", EntityID: "e", ThreadID: "th"}
	ids, err := c.SendMessage(ctx, agentID, target, msg.Content)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ids, []string{"m-1", "m-2"}) {
		t.Errorf("ids = %q", ids)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.target != target || !reflect.DeepEqual(r.content, msg.Content) {
		t.Errorf("sent %#v %#v", r.target, r.content)
	}
}

func TestValidateActionsAndErrors(t *testing.T) {
	c, _ := startAgent(t, sdk.Plugin{Name: "v", Actions: []sdk.Action{
		{Name: "ONLY_HELLO", Validate: func(_ context.Context, _ *sdk.Agent, m *sdk.Memory, _ *sdk.State) bool {
			return m.Content.Text == "hello"
		},
			Handler: func(context.Context, *sdk.Agent, *sdk.ActionCall) (sdk.ActionResult, error) {
				return sdk.ActionResult{Success: true}, nil
			}},
		{Name: "ALWAYS", Handler: func(context.Context, *sdk.Agent, *sdk.ActionCall) (sdk.ActionResult, error) {
			return sdk.ActionResult{Text: "partial"}, errors.New("disk full")
		}},
	}})
	ctx := testCtx(t)
	for text, want := range map[string][]string{"hello": {"ONLY_HELLO", "ALWAYS"}, "bye": {"ALWAYS"}} {
		got, err := c.ValidateActions(ctx, agentID, []string{"ONLY_HELLO", "ALWAYS", "UNKNOWN"}, &sdk.Memory{Content: sdk.Content{Text: text}})
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("validate %q = %q, %v; want %q", text, got, err, want)
		}
	}
	// A failing action is a failed result, not a failed call.
	res, err := c.RunAction(ctx, agentID, "ALWAYS", &sdk.Memory{}, nil)
	if err != nil || res.Success || res.Error != "disk full" || res.Text != "partial" {
		t.Errorf("failing action = %#v, %v", res, err)
	}
	if _, err := c.RunAction(ctx, agentID, "UNKNOWN", &sdk.Memory{}, nil); status.Code(err) != codes.NotFound {
		t.Errorf("unknown action: %v, want NotFound", err)
	}
}

func TestUnconfiguredAgentAndBadCharacter(t *testing.T) {
	r := &recorder{}
	c := plugintest.Start(t, r.plugin())
	ctx := testCtx(t)
	_, err := c.RunAction(ctx, "nobody", "RECORD", &sdk.Memory{}, nil)
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("call for an unconfigured agent: %v, want FailedPrecondition naming it", err)
	}
	_, err = c.Configure(ctx, agentID, &sdk.Character{Bio: sdk.StringList{"no name"}}, nil)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "name") {
		t.Errorf("character without name: %v, want InvalidArgument naming the field", err)
	}
	if _, err := c.Configure(ctx, agentID, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Unconfigure(ctx, agentID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Providers(ctx, agentID, []string{"RECORD"}, nil); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("call after Unconfigure: %v, want FailedPrecondition", err)
	}
}

func TestPanicsKeepThePluginAlive(t *testing.T) {
	c, _ := startAgent(t, sdk.Plugin{
		Name: "panics",
		Providers: []sdk.Provider{
			{Name: "BOOM", Get: func(context.Context, *sdk.Agent, *sdk.Memory, *sdk.State) (sdk.ProviderResult, error) {
				panic("provider boom")
			}},
			{Name: "FINE", Get: func(context.Context, *sdk.Agent, *sdk.Memory, *sdk.State) (sdk.ProviderResult, error) {
				return sdk.ProviderResult{Text: "fine"}, nil
			}},
		},
		Actions: []sdk.Action{{Name: "BOOM", Handler: func(context.Context, *sdk.Agent, *sdk.ActionCall) (sdk.ActionResult, error) { panic("action boom") }}},
		Evaluators: []sdk.Evaluator{{Name: "BOOM", Handler: func(context.Context, *sdk.Agent, *sdk.EvaluatorCall) error {
			panic("evaluator boom")
		}}},
		Models: []sdk.Model{{Type: "BOOM", Handler: func(context.Context, *sdk.Agent, *sdk.ModelRequest) (*sdk.ModelResponse, error) {
			panic("model boom")
		}}},
		Events: []sdk.EventHandler{{Type: "BOOM", Handle: func(context.Context, *sdk.Agent, *sdk.Event) error { panic("event boom") }}},
	})
	ctx := testCtx(t)
	alive := func() {
		t.Helper()
		res, errs, err := c.Providers(ctx, agentID, []string{"FINE"}, nil)
		if err != nil || len(errs) > 0 || res["FINE"].Text != "fine" {
			t.Fatalf("the plugin stopped answering: %v %v %v", res, errs, err)
		}
	}

	res, errs, err := c.Providers(ctx, agentID, []string{"BOOM", "FINE"}, nil)
	if err != nil || !strings.Contains(errs["BOOM"], "provider boom") || res["FINE"].Text != "fine" {
		t.Errorf("providers with a panic: %v %v %v", res, errs, err)
	}
	alive()
	ar, err := c.RunAction(ctx, agentID, "BOOM", &sdk.Memory{}, nil)
	if err == nil && (ar.Success || !strings.Contains(ar.Error, "action boom")) {
		t.Errorf("panicking action = %#v", ar)
	} else if err != nil && !strings.Contains(err.Error(), "action boom") {
		t.Errorf("panicking action: %v", err)
	}
	alive()
	outs, err := c.RunEvaluators(ctx, agentID, []string{"BOOM"}, sdk.EvaluatorCall{DidRespond: true})
	if err != nil || len(outs) != 1 || !strings.Contains(outs[0].Error, "evaluator boom") {
		t.Errorf("panicking evaluator: %#v, %v", outs, err)
	}
	alive()
	if _, err := c.UseModel(ctx, agentID, sdk.ModelRequest{Type: "BOOM"}); err == nil || !strings.Contains(err.Error(), "model boom") {
		t.Errorf("panicking model: %v", err)
	}
	alive()
	if _, err := c.StreamModel(ctx, agentID, sdk.ModelRequest{Type: "BOOM"}, nil); err == nil || !strings.Contains(err.Error(), "model boom") {
		t.Errorf("panicking streamed model: %v", err)
	}
	alive()
	if err := c.HandleEvent(ctx, agentID, sdk.Event{Type: "BOOM"}); err == nil || !strings.Contains(err.Error(), "event boom") {
		t.Errorf("panicking event handler: %v", err)
	}
	alive()
}

func TestShutdownCancelsCallsInFlight(t *testing.T) {
	started := make(chan struct{}, 2)
	c, _ := startAgent(t, sdk.Plugin{Name: "blocker",
		Actions: []sdk.Action{{Name: "BLOCK", Handler: func(ctx context.Context, _ *sdk.Agent, _ *sdk.ActionCall) (sdk.ActionResult, error) {
			started <- struct{}{}
			<-ctx.Done()
			return sdk.ActionResult{}, ctx.Err()
		}}},
		Models: []sdk.Model{{Type: sdk.ModelTextLarge, Handler: noModel, Stream: func(ctx context.Context, _ *sdk.Agent, _ *sdk.ModelRequest, emit func(string) error) (*sdk.ModelResponse, error) {
			if err := emit("thinking"); err != nil {
				return nil, err
			}
			started <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		}}},
	})
	ctx := testCtx(t)
	actionDone := make(chan sdk.ActionResult, 1)
	go func() {
		res, err := c.RunAction(ctx, agentID, "BLOCK", &sdk.Memory{}, nil)
		if err != nil {
			res.Error = err.Error()
		}
		actionDone <- res
	}()
	streamDone := make(chan error, 1)
	go func() {
		_, err := c.StreamModel(ctx, agentID, sdk.ModelRequest{Type: sdk.ModelTextLarge}, nil)
		streamDone <- err
	}()
	for range 2 {
		select {
		case <-started:
		case <-ctx.Done():
			t.Fatal("the calls never started")
		}
	}
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-actionDone:
		if res.Success || !strings.Contains(res.Error, "canceled") {
			t.Errorf("cancelled action = %#v", res)
		}
	case <-ctx.Done():
		t.Fatal("Shutdown did not cancel the action")
	}
	select {
	case err := <-streamDone:
		if status.Code(err) != codes.Canceled {
			t.Errorf("cancelled stream: %v, want Canceled", err)
		}
	case <-ctx.Done():
		t.Fatal("Shutdown did not cancel the model stream")
	}
}

func TestStreamModel(t *testing.T) {
	c, _ := startAgent(t, sdk.Plugin{Name: "streamer", Models: []sdk.Model{
		{Type: sdk.ModelTextLarge, Handler: noModel, Stream: func(_ context.Context, _ *sdk.Agent, req *sdk.ModelRequest, emit func(string) error) (*sdk.ModelResponse, error) {
			for _, w := range strings.Fields(req.Prompt) {
				if err := emit(w); err != nil {
					return nil, err
				}
			}
			return &sdk.ModelResponse{Text: req.Prompt, Model: "s-1"}, nil
		}},
		{Type: sdk.ModelTextSmall, Handler: func(_ context.Context, _ *sdk.Agent, req *sdk.ModelRequest) (*sdk.ModelResponse, error) {
			return &sdk.ModelResponse{Text: "whole " + req.Prompt}, nil
		}},
	}})
	ctx := testCtx(t)
	var pieces []string
	res, err := c.StreamModel(ctx, agentID, sdk.ModelRequest{Type: sdk.ModelTextLarge, Prompt: "one two three"}, func(s string) error {
		pieces = append(pieces, s)
		return nil
	})
	if err != nil || res.Text != "one two three" || res.Model != "s-1" || !reflect.DeepEqual(pieces, []string{"one", "two", "three"}) {
		t.Errorf("stream = %#v, %q, %v", res, pieces, err)
	}
	pieces = nil
	res, err = c.StreamModel(ctx, agentID, sdk.ModelRequest{Type: sdk.ModelTextSmall, Prompt: "x"}, func(s string) error {
		pieces = append(pieces, s)
		return nil
	})
	if err != nil || res.Text != "whole x" || !reflect.DeepEqual(pieces, []string{"whole x"}) {
		t.Errorf("handler-only stream = %#v, %q, %v", res, pieces, err)
	}
}

// Text may be any bytes; both sides replace invalid UTF-8 instead of
// failing to marshal.
func TestInvalidUTF8ArrivesValid(t *testing.T) {
	const bad = "caf\xc3 \xff ok"
	var mu sync.Mutex
	var got sdk.Content
	c, _ := startAgent(t, sdk.Plugin{Name: "utf8",
		Sources: []sdk.Source{{Name: "chat", Send: func(_ context.Context, _ *sdk.Agent, _ sdk.Target, content sdk.Content) ([]string, error) {
			mu.Lock()
			defer mu.Unlock()
			got = content
			return nil, nil
		}}},
		Actions: []sdk.Action{{Name: "SAY", Handler: func(ctx context.Context, a *sdk.Agent, _ *sdk.ActionCall) (sdk.ActionResult, error) {
			if _, err := a.Respond(ctx, "run", sdk.Content{Text: bad, Thought: bad, Actions: []string{bad}}, ""); err != nil {
				return sdk.ActionResult{}, err
			}
			if _, err := a.SendMessage(ctx, sdk.Target{Source: "chat"}, sdk.Content{Text: bad}); err != nil {
				return sdk.ActionResult{}, err
			}
			return sdk.ActionResult{Success: true, Text: bad}, nil
		}}},
	})
	ctx := testCtx(t)
	isValid := func(what, s string) {
		t.Helper()
		if !utf8.ValidString(s) || !strings.Contains(s, "\uFFFD") || !strings.HasSuffix(s, " ok") {
			t.Errorf("%s = %q, want valid UTF-8 with U+FFFD", what, s)
		}
	}

	// Host to plugin.
	if _, err := c.SendMessage(ctx, agentID, sdk.Target{Source: "chat"}, sdk.Content{Text: bad, Attachments: []sdk.Media{{Title: bad}}}); err != nil {
		t.Fatalf("send: %v", err)
	}
	mu.Lock()
	isValid("content the plugin received", got.Text)
	isValid("attachment title the plugin received", got.Attachments[0].Title)
	mu.Unlock()

	// Plugin to host.
	res, err := c.RunAction(ctx, agentID, "SAY", &sdk.Memory{}, nil)
	if err != nil || !res.Success {
		t.Fatalf("action: %#v, %v", res, err)
	}
	isValid("action result", res.Text)
	rs := c.Runtime().Responses()
	if len(rs) != 1 {
		t.Fatalf("responses = %#v", rs)
	}
	isValid("response text", rs[0].Text)
	isValid("response thought", rs[0].Thought)
	isValid("response action", rs[0].Actions[0])
	sent := c.Runtime().Sent()
	if len(sent) != 1 {
		t.Fatalf("sent = %#v", sent)
	}
	isValid("sent text", sent[0].Content.Text)
}

func ptr[T any](v T) *T { return &v }

func noModel(context.Context, *sdk.Agent, *sdk.ModelRequest) (*sdk.ModelResponse, error) {
	return nil, errors.New("only streamed")
}

// spyTB is a test that records the errors it is given instead of failing.
type spyTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (s *spyTB) Errorf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
}

func (s *spyTB) errors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.errs...)
}

// TestUndeclaredSettings: as in the daemon, a plugin gets only the settings
// it declares, and a test whose plugin reads another one fails: in the
// daemon that setting would never be set.
func TestUndeclaredSettings(t *testing.T) {
	spy := &spyTB{TB: t}
	var got map[string]string
	var read string
	p := sdk.Plugin{Name: "reader", Settings: []sdk.Setting{{Name: "DECLARED"}},
		Configure: func(_ context.Context, a *sdk.Agent) ([]string, error) {
			got = a.Settings
			read = a.Setting("UNDECLARED")
			return nil, nil
		}}
	c := plugintest.Start(spy, p)
	if _, err := c.Configure(context.Background(), "agent-1", nil, map[string]string{"DECLARED": "yes", "UNDECLARED": "leak"}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["DECLARED"] != "yes" || read != "" {
		t.Errorf("the plugin got %v and read %q; want only DECLARED", got, read)
	}
	errs := spy.errors()
	if len(errs) != 1 || !strings.Contains(errs[0], "setting=UNDECLARED") {
		t.Errorf("reading an undeclared setting should fail the test once, got %q", errs)
	}
}
