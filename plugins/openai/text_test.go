package openai

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/agenthost/agenthost/plugins/openai/openaitest"
	"github.com/agenthost/agenthost/sdk"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestManifest(t *testing.T) {
	t.Parallel()
	e := start(t)
	m := e.c.Manifest()
	if m.Name != "openai" || m.Version != Version {
		t.Errorf("manifest %q %q", m.Name, m.Version)
	}
	var types []string
	for _, mi := range m.Models {
		types = append(types, mi.Type)
	}
	for _, want := range []string{sdk.ModelTextSmall, sdk.ModelTextLarge, sdk.ModelObjectSmall, sdk.ModelObjectLarge,
		sdk.ModelTextEmbedding, sdk.ModelTokenizerEncode, sdk.ModelTokenizerDecode, sdk.ModelImage,
		sdk.ModelImageDescribe, sdk.ModelTranscription, sdk.ModelTextToSpeech} {
		if !slices.Contains(types, want) {
			t.Errorf("model type %s not served (served: %v)", want, types)
		}
	}
	p := New()
	for _, want := range []string{"@elizaos/plugin-openai", "@elizaos/plugin-ollama"} {
		if !slices.Contains(p.Aliases, want) {
			t.Errorf("alias %s missing: %v", want, p.Aliases)
		}
	}
}

func TestTextSmallWithEverySetting(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.configure(e.settings(), nil)
	res := e.mustUse(sdk.ModelRequest{Type: sdk.ModelTextSmall, RunID: "run-1", Prompt: "Say hello.", System: "Be brief.",
		Temperature: ptr(0.2), MaxTokens: 50, StopSequences: []string{"\n\n", "END"},
		FrequencyPenalty: ptr(0.1), PresencePenalty: ptr(0.3)})
	if want := "Hello from the fake OpenAI server (gpt-4o-mini)."; res.Text != want {
		t.Errorf("text = %q, want %q", res.Text, want)
	}
	if res.Model != "gpt-4o-mini" || res.Usage.PromptTokens == 0 || res.Usage.CompletionTokens == 0 ||
		res.Usage.TotalTokens != res.Usage.PromptTokens+res.Usage.CompletionTokens {
		t.Errorf("model %q usage %+v", res.Model, res.Usage)
	}
	reqs := e.srv.Requests("/chat/completions")
	if len(reqs) != 1 {
		t.Fatalf("want one request, got %d", len(reqs))
	}
	if got := reqs[0].Header.Get("Authorization"); got != "Bearer "+openaitest.DefaultAPIKey {
		t.Errorf("authorization = %q", got)
	}
	body := reqs[0].JSON()
	msgs := body["messages"].([]any)
	sys, user := msgs[0].(map[string]any), msgs[1].(map[string]any)
	if sys["role"] != "system" || sys["content"] != "Be brief." || user["role"] != "user" || user["content"] != "Say hello." {
		t.Errorf("messages = %v", msgs)
	}
	for k, want := range map[string]any{"model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 50.0,
		"frequency_penalty": 0.1, "presence_penalty": 0.3} {
		if body[k] != want {
			t.Errorf("%s = %v, want %v", k, body[k], want)
		}
	}
	if stop := fmt.Sprint(body["stop"]); stop != "[\n\n END]" {
		t.Errorf("stop = %q", stop)
	}
	// A custom base URL gets max_tokens; OpenAI's own gets
	// max_completion_tokens (see TestMaxTokensField).
	if _, ok := body["max_completion_tokens"]; ok {
		t.Error("max_completion_tokens sent to a custom server")
	}

	ev := e.events(1)[0]
	tokens := ev.Payload["tokens"].(map[string]any)
	if ev.RunID != "run-1" || ev.Source != "openai" || ev.Payload["provider"] != "openai" || ev.Payload["type"] != sdk.ModelTextSmall ||
		ev.Payload["model"] != "gpt-4o-mini" || ev.Payload["outcome"] != "ok" || ev.Payload["durationMs"] == nil ||
		tokens["prompt"] != float64(res.Usage.PromptTokens) || tokens["completion"] != float64(res.Usage.CompletionTokens) ||
		tokens["total"] != float64(res.Usage.TotalTokens) {
		t.Errorf("MODEL_USED = %+v", ev)
	}
	logs := e.log.entries("model call")
	if len(logs) != 1 || logs[0]["model"] != "gpt-4o-mini" || logs[0]["outcome"] != "ok" || logs[0]["total_tokens"] != float64(res.Usage.TotalTokens) ||
		logs[0]["duration_ms"] == nil || logs[0]["type"] != sdk.ModelTextSmall || logs[0]["agent_id"] != agentID || logs[0]["run_id"] != "run-1" {
		t.Errorf("log = %v", logs)
	}
}

func TestTextLargeDefaults(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.configure(e.settings(), nil)
	res := e.mustUse(sdk.ModelRequest{Type: sdk.ModelTextLarge, Prompt: "Hi"})
	if res.Model != "gpt-4o" {
		t.Errorf("model = %q", res.Model)
	}
	body := e.srv.Requests("/chat/completions")[0].JSON()
	msgs := body["messages"].([]any)
	if sys := msgs[0].(map[string]any); sys["content"] != "You are Ada, a test agent." {
		t.Errorf("the character's system prompt should be sent: %v", msgs)
	}
	// elizaOS's defaults.
	for k, want := range map[string]any{"temperature": 0.7, "frequency_penalty": 0.7, "presence_penalty": 0.7, "max_tokens": 8192.0} {
		if body[k] != want {
			t.Errorf("%s = %v, want %v", k, body[k], want)
		}
	}
	if _, ok := body["stop"]; ok {
		t.Error("stop sent without stop sequences")
	}
}

func TestModelSettings(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.configure(e.settings(SettingSmallModel, "small-one", SettingLargeModelGeneric, "large-generic"), nil)
	if res := e.mustUse(sdk.ModelRequest{Type: sdk.ModelTextSmall, Prompt: "x"}); res.Model != "small-one" {
		t.Errorf("small = %q", res.Model)
	}
	if res := e.mustUse(sdk.ModelRequest{Type: sdk.ModelTextLarge, Prompt: "x"}); res.Model != "large-generic" {
		t.Errorf("large = %q (LARGE_MODEL is elizaOS's fallback)", res.Model)
	}
}

func TestMaxTokensField(t *testing.T) {
	t.Parallel()
	c := &client{cfg: config{customBaseURL: false}}
	p := c.chatParams("", &sdk.ModelRequest{Prompt: "x", MaxTokens: 10}, "gpt-4o", true)
	b, _ := json.Marshal(p)
	if !strings.Contains(string(b), `"max_completion_tokens":10`) || strings.Contains(string(b), `"max_tokens"`) {
		t.Errorf("OpenAI's own API: %s", b)
	}
}

func TestEmptyPromptIsInvalid(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.configure(e.settings(), nil)
	_, err := e.use(sdk.ModelRequest{Type: sdk.ModelTextLarge, Prompt: "  "})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("err = %v", err)
	}
	if n := len(e.srv.Requests("")); n != 0 {
		t.Errorf("%d requests for an empty prompt", n)
	}
}

func TestStreaming(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.configure(e.settings(), nil)
	e.srv.Reply = func(r *openaitest.ChatRequest) string { return "One two three four five." }
	var pieces []string
	res, err := e.c.StreamModel(context.Background(), agentID, sdk.ModelRequest{Type: sdk.ModelTextLarge, Prompt: "Count."},
		func(text string) error { pieces = append(pieces, text); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(pieces) < 3 || strings.Join(pieces, "") != "One two three four five." || res.Text != "One two three four five." {
		t.Errorf("pieces %q, final %q", pieces, res.Text)
	}
	if res.Usage.CompletionTokens != 5 || res.Model != "gpt-4o" {
		t.Errorf("usage %+v model %q: the usage chunk should be read", res.Usage, res.Model)
	}
	body := e.srv.Requests("/chat/completions")[0].JSON()
	if body["stream"] != true || fmt.Sprint(body["stream_options"]) != "map[include_usage:true]" {
		t.Errorf("stream request = %v", body)
	}
	if logs := e.log.entries("model call"); len(logs) != 1 || logs[0]["streamed"] != true {
		t.Errorf("log = %v", logs)
	}
	e.events(1)
}

func TestStreamRetriedBeforeTextButNotAfter(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.configure(e.settings(), nil)
	e.srv.Reply = func(r *openaitest.ChatRequest) string { return "One two three four five." }

	e.srv.FailNext("/chat/completions", openaitest.Fault{Status: 503})
	var pieces []string
	res, err := e.c.StreamModel(context.Background(), agentID, sdk.ModelRequest{Type: sdk.ModelTextSmall, Prompt: "Count."},
		func(text string) error { pieces = append(pieces, text); return nil })
	if err != nil || res.Text != "One two three four five." || strings.Join(pieces, "") != res.Text {
		t.Fatalf("after a 503: %v, %+v, %q", err, res, pieces)
	}
	if n := len(e.srv.Requests("/chat/completions")); n != 2 {
		t.Errorf("want 2 requests, got %d", n)
	}

	// Cut after two pieces: the text already went to the caller, so the
	// call fails instead of starting again.
	e.srv.FailNext("/chat/completions", openaitest.Fault{CutAfter: 2})
	pieces = nil
	_, err = e.c.StreamModel(context.Background(), agentID, sdk.ModelRequest{Type: sdk.ModelTextSmall, Prompt: "Count."},
		func(text string) error { pieces = append(pieces, text); return nil })
	if err == nil || !strings.Contains(err.Error(), "stream") {
		t.Fatalf("a stream cut short should fail, got %v", err)
	}
	if len(pieces) != 2 {
		t.Errorf("pieces before the cut = %q", pieces)
	}
	if n := len(e.srv.Requests("/chat/completions")); n != 3 {
		t.Errorf("want no retry after text was sent: %d requests", n)
	}
}

func TestObjects(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.configure(e.settings(), nil)
	var answer string
	e.srv.Reply = func(r *openaitest.ChatRequest) string { return answer }

	answer = "```json\n{\"thought\": \"ok\",\n \"facts\": []}\n```"
	res := e.mustUse(sdk.ModelRequest{Type: sdk.ModelObjectSmall, Prompt: "Reflect."})
	if string(res.JSON) != `{"thought":"ok","facts":[]}` || res.Model != "gpt-4o-mini" {
		t.Errorf("object = %s (%s)", res.JSON, res.Model)
	}
	body := e.srv.Requests("/chat/completions")[0].JSON()
	if fmt.Sprint(body["response_format"]) != "map[type:json_object]" {
		t.Errorf("response_format = %v", body["response_format"])
	}
	if _, ok := body["temperature"]; ok {
		t.Error("objects should not get the text default temperature")
	}

	schema := map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}}
	answer = `{"name": "Ada"}`
	res = e.mustUse(sdk.ModelRequest{Type: sdk.ModelObjectLarge, Prompt: "Name?", Params: map[string]any{"schema": schema}})
	if string(res.JSON) != `{"name":"Ada"}` || res.Model != "gpt-4o" {
		t.Errorf("schema object = %s (%s)", res.JSON, res.Model)
	}
	rf := e.srv.Requests("/chat/completions")[1].JSON()["response_format"].(map[string]any)
	if rf["type"] != "json_schema" || fmt.Sprint(rf["json_schema"].(map[string]any)["schema"]) != fmt.Sprint(schema) {
		t.Errorf("response_format = %v", rf)
	}

	answer = `{"elements": [1, 2, 3]}`
	res = e.mustUse(sdk.ModelRequest{Type: sdk.ModelObjectSmall, Prompt: "Count.", Params: map[string]any{"output": "array"}})
	if string(res.JSON) != `[1,2,3]` {
		t.Errorf("array = %s", res.JSON)
	}

	answer = `{"result": "blue"}`
	res = e.mustUse(sdk.ModelRequest{Type: sdk.ModelObjectSmall, Prompt: "Colour?", Params: map[string]any{"output": "enum", "enumValues": []any{"red", "blue"}}})
	if string(res.JSON) != `"blue"` {
		t.Errorf("enum = %s", res.JSON)
	}
	answer = `{"result": "green"}`
	if _, err := e.use(sdk.ModelRequest{Type: sdk.ModelObjectSmall, Prompt: "Colour?", Params: map[string]any{"output": "enum", "enumValues": []any{"red", "blue"}}}); err == nil {
		t.Error("an answer outside enumValues should fail")
	}

	before := len(e.srv.Requests("/chat/completions"))
	answer = "I think the answer is yes."
	if _, err := e.use(sdk.ModelRequest{Type: sdk.ModelObjectSmall, Prompt: "JSON please"}); err == nil || !strings.Contains(err.Error(), "not JSON") {
		t.Errorf("prose for an object: %v", err)
	}
	if n := len(e.srv.Requests("/chat/completions")) - before; n != 1 {
		t.Errorf("a non-JSON answer is not retried, got %d requests", n)
	}
}

func TestExtractJSON(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`{"a":1}`:                          `{"a":1}`,
		" [1, 2] ":                         `[1,2]`,
		"Sure!\n```\n{\"a\": 1}\n```\nBye": `{"a":1}`,
		`Here: {"a": {"b": 2}} done`:       `{"a":{"b":2}}`,
	} {
		got, err := extractJSON(in)
		if err != nil || string(got) != want {
			t.Errorf("extractJSON(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "no json", "{broken", "} {"} {
		if got, err := extractJSON(in); err == nil {
			t.Errorf("extractJSON(%q) = %s, want an error", in, got)
		}
	}
}

func TestAgentsHaveTheirOwnClients(t *testing.T) {
	t.Parallel()
	e := start(t)
	ctx := context.Background()
	for i := range 3 {
		id := fmt.Sprintf("agent-%d", i)
		if _, err := e.c.Configure(ctx, id, testCharacter(), e.settings(SettingLargeModel, "model-"+id)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("agent-%d", i%3)
			res, err := e.c.UseModel(ctx, id, sdk.ModelRequest{Type: sdk.ModelTextLarge, Prompt: "hi"})
			if err == nil && res.Model != "model-"+id {
				err = fmt.Errorf("agent %s answered by %s", id, res.Model)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	clients := func() map[string]*client {
		m := map[string]*client{}
		for id, c := range e.p.clients.All() {
			m[id] = c
		}
		return m
	}
	if n := len(clients()); n != 3 {
		t.Errorf("%d clients for 3 agents", n)
	}
	if err := e.c.Unconfigure(ctx, "agent-0"); err != nil {
		t.Fatal(err)
	}
	if _, still := clients()["agent-0"]; still {
		t.Error("Unconfigure should drop the agent's client")
	}
}

// An agent none of whose plugins listens for MODEL_USED is not sent it:
// each would cost a call to the host. Once a plugin that listens joins the
// agent, the next call emits it.
func TestNoModelUsedWithoutListener(t *testing.T) {
	e := startEnv(t, false)
	e.configure(e.settings(), nil)
	e.mustUse(sdk.ModelRequest{Type: sdk.ModelTextEmbedding, Text: "nobody listens"})
	startListener(t, e.c.Runtime())
	e.mustUse(sdk.ModelRequest{Type: sdk.ModelTextSmall, Prompt: "now one does"})
	ev := e.events(1)
	if len(ev) != 1 || ev[0].Payload["type"] != sdk.ModelTextSmall {
		t.Errorf("MODEL_USED events = %+v, want only the TEXT_SMALL call's", ev)
	}
}
