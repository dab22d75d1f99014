package openai

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/plugins/openai/openaitest"
	"github.com/agenthost/agenthost/sdk"
	"github.com/tiktoken-go/tokenizer/codec"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestEmbedding(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.configure(e.settings(), nil)
	res := e.mustUse(sdk.ModelRequest{Type: sdk.ModelTextEmbedding, RunID: "run-2", Text: "The cat sat on the mat."})
	want := openaitest.Vector("The cat sat on the mat.", DefaultEmbeddingDimensions)
	if len(res.Embedding) != len(want) {
		t.Fatalf("len = %d", len(res.Embedding))
	}
	for i := range want {
		if res.Embedding[i] != float32(want[i]) {
			t.Fatalf("component %d = %v, want %v: the server's vector must come back as it is", i, res.Embedding[i], want[i])
		}
	}
	if res.Model != DefaultEmbeddingModel || res.Usage.PromptTokens != 6 {
		t.Errorf("model %q usage %+v", res.Model, res.Usage)
	}
	body := e.srv.Requests("/embeddings")[0].JSON()
	if body["model"] != DefaultEmbeddingModel || body["input"] != "The cat sat on the mat." || body["encoding_format"] != "float" {
		t.Errorf("request = %v", body)
	}
	if _, ok := body["dimensions"]; ok {
		t.Error("dimensions sent without OPENAI_EMBEDDING_DIMENSIONS")
	}
	ev := e.events(1)[0]
	if ev.Payload["type"] != sdk.ModelTextEmbedding || ev.RunID != "run-2" {
		t.Errorf("MODEL_USED = %+v", ev)
	}
	// Each message is embedded: its line is at debug, so that at info a
	// message costs its answer's line alone; a failed embedding is an
	// error whatever the level (TestFailedEmbeddingIsAnErrorNeverAVector).
	if calls := e.log.entries("model call"); len(calls) != 1 || calls[0]["@level"] != "debug" || calls[0]["type"] != sdk.ModelTextEmbedding {
		t.Errorf("call log = %v", calls)
	}
}

func TestEmbeddingProbeMakesNoCall(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.configure(e.settings(), nil)
	res := e.mustUse(sdk.ModelRequest{Type: sdk.ModelTextEmbedding, Probe: true})
	if len(res.Embedding) != 1536 || res.Embedding[0] != 0.1 || res.Embedding[1] != 0 {
		t.Errorf("probe = len %d, %v…", len(res.Embedding), res.Embedding[:2])
	}
	if n := len(e.srv.Requests("")); n != 0 {
		t.Errorf("the probe made %d requests", n)
	}
}

func TestEmbeddingDimensionsSetting(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.configure(e.settings(SettingEmbeddingDimensions, "512"), nil)
	if res := e.mustUse(sdk.ModelRequest{Type: sdk.ModelTextEmbedding, Probe: true}); len(res.Embedding) != 512 {
		t.Errorf("probe len = %d", len(res.Embedding))
	}
	res := e.mustUse(sdk.ModelRequest{Type: sdk.ModelTextEmbedding, Text: "hello"})
	if len(res.Embedding) != 512 {
		t.Errorf("len = %d", len(res.Embedding))
	}
	if d := e.srv.Requests("/embeddings")[0].JSON()["dimensions"]; d != 512.0 {
		t.Errorf("dimensions = %v: text-embedding-3 models are asked for the configured size", d)
	}
}

func TestEmbeddingOfTheWrongSizeIsAnError(t *testing.T) {
	t.Parallel()
	e := start(t)
	// A model that cannot be asked for a size, configured for one it does
	// not have: the mismatch must stop the call, not reach the database.
	e.configure(e.settings(SettingEmbeddingModel, "other-embedder", SettingEmbeddingDimensions, "768"), nil)
	_, err := e.use(sdk.ModelRequest{Type: sdk.ModelTextEmbedding, Text: "hello"})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "1536") || !strings.Contains(err.Error(), SettingEmbeddingDimensions) {
		t.Errorf("err = %v", err)
	}
	if n := len(e.srv.Requests("/embeddings")); n != 1 {
		t.Errorf("a size mismatch is not retried: %d requests", n)
	}
}

func TestFailedEmbeddingIsAnErrorNeverAVector(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.configure(e.settings(SettingMaxRetries, "1"), nil)
	e.srv.FailNext("/embeddings", openaitest.Fault{Status: 500}, openaitest.Fault{Status: 502})
	res, err := e.use(sdk.ModelRequest{Type: sdk.ModelTextEmbedding, Text: "hello"})
	if err == nil || res != nil {
		t.Fatalf("want an error and no vector, got %+v, %v", res, err)
	}
	if status.Code(err) != codes.Unavailable {
		t.Errorf("code = %v (%v)", status.Code(err), err)
	}
	if calls := e.log.entries("model call"); len(calls) == 0 || calls[0]["@level"] != "error" {
		t.Errorf("a failed embedding should log its call as an error: %v", calls)
	}
	if _, err := e.use(sdk.ModelRequest{Type: sdk.ModelTextEmbedding, Text: " "}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("empty text: %v", err)
	}
	ev := e.events(1)[0]
	if ev.Payload["outcome"] != "error" || ev.Payload["error"] == nil {
		t.Errorf("a failed call's MODEL_USED = %+v", ev.Payload)
	}
}

func TestEmbeddingInputCutToTheLimit(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.configure(e.settings(), nil)
	long := strings.Repeat("word ", maxEmbeddingTokens+100)
	e.mustUse(sdk.ModelRequest{Type: sdk.ModelTextEmbedding, Text: long})
	sent := e.srv.Requests("/embeddings")[0].JSON()["input"].(string)
	n, _ := codec.NewCl100kBase().Count(sent)
	if n > maxEmbeddingTokens || len(sent) >= len(long) {
		t.Errorf("sent %d tokens", n)
	}
	if len(e.log.entries("embedding input cut to the model's limit")) != 1 {
		t.Error("the cut is not logged")
	}
}

func TestTokenizer(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.configure(e.settings(), nil)
	text := "Hello, world! Tokenizers split text into pieces."
	res := e.mustUse(sdk.ModelRequest{Type: sdk.ModelTokenizerEncode, Prompt: text, Params: map[string]any{"modelType": sdk.ModelTextLarge}})
	var ids []uint
	if err := json.Unmarshal(res.JSON, &ids); err != nil {
		t.Fatalf("%s: %v", res.JSON, err)
	}
	want, _, _ := codec.NewO200kBase().Encode(text) // gpt-4o's encoding
	if len(ids) != len(want) {
		t.Fatalf("ids %v, want %v", ids, want)
	}
	for i := range want {
		if ids[i] != want[i] {
			t.Fatalf("ids %v, want %v", ids, want)
		}
	}
	tokens := make([]any, len(ids))
	for i, id := range ids {
		tokens[i] = float64(id)
	}
	back := e.mustUse(sdk.ModelRequest{Type: sdk.ModelTokenizerDecode, Params: map[string]any{"tokens": tokens}})
	if back.Text != text {
		t.Errorf("decode = %q", back.Text)
	}
	for _, bad := range []any{nil, "12", []any{1.5}, []any{-1.0}, []any{float64(1 << 30)}} {
		if _, err := e.use(sdk.ModelRequest{Type: sdk.ModelTokenizerDecode, Params: map[string]any{"tokens": bad}}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("tokens %v: %v", bad, err)
		}
	}
	if n := len(e.srv.Requests("")); n != 0 {
		t.Errorf("the tokenizer made %d requests", n)
	}
}

func TestEncodingFor(t *testing.T) {
	t.Parallel()
	for model, want := range map[string]string{
		"gpt-4o": "o200k_base", "gpt-4o-mini": "o200k_base", "openai/gpt-4.1": "o200k_base", "o3-mini": "o200k_base",
		"gpt-4": "cl100k_base", "gpt-3.5-turbo": "cl100k_base", "text-embedding-3-small": "cl100k_base",
	} {
		enc, exact := encodingFor(model)
		if enc.GetName() != want || !exact {
			t.Errorf("%s: %s %v, want %s", model, enc.GetName(), exact, want)
		}
	}
	if enc, exact := encodingFor("gemma3:latest"); exact || enc.GetName() != "o200k_base" {
		t.Errorf("a model that is not OpenAI's is approximated with o200k_base: %s %v", enc.GetName(), exact)
	}
}
