package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/agenthost/agenthost/sdk"
)

func TestFloatsReadsJSONNumbersOnly(t *testing.T) {
	v, err := floats([]byte(" [0.5, -1e-3,2E2 ,0] "))
	if err != nil || len(v) != 4 || v[0] != 0.5 || v[1] != -0.001 || v[2] != 200 || v[3] != 0 {
		t.Errorf("floats = %v, %v", v, err)
	}
	if v, err := floats([]byte("[]")); err != nil || len(v) != 0 {
		t.Errorf("empty array: %v, %v", v, err)
	}
	for _, bad := range []string{`[NaN]`, `[Infinity]`, `[0x10]`, `[1_0]`, `["1"]`, `[[1]]`, `[1,,2]`, `{"a":1}`, `1`, `[1`, ``} {
		if v, err := floats([]byte(bad)); err == nil {
			t.Errorf("floats(%s) = %v, want an error", bad, v)
		}
	}
}

// An embeddings answer decodes as encoding/json would decode it, whatever
// its layout and whatever its strings hold, and a malformed one is an
// error, never a wrong vector.
func TestDecodeEmbeddings(t *testing.T) {
	type item struct {
		Object    string    `json:"object"`
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	}
	type answer struct {
		Object string     `json:"object"`
		Data   []item     `json:"data"`
		Model  string     `json:"model"`
		Usage  tokenUsage `json:"usage"`
	}
	want := answer{Object: "list", Model: `m"]embedding":[9]`, Usage: tokenUsage{PromptTokens: 3, TotalTokens: 3},
		Data: []item{{Object: "embedding", Embedding: []float32{0.25, -1.5, 3e-5}}, {Object: "embedding", Index: 1, Embedding: []float32{1, 2, 3}}}}
	compact, _ := json.Marshal(want)
	pretty, _ := json.MarshalIndent(want, "", "\t")
	// Keys in another order, and strings that look like the key.
	odd := `{"data":[{"embedding" : [ 0.25 ,-1.5, 3e-5 ],"note":"\"embedding\": [7]"},{"index":1,"embedding":[1,2,3]}],` +
		`"usage":{"prompt_tokens":3,"total_tokens":3},"model":"m\"]embedding\":[9]"}`
	for name, doc := range map[string]string{"compact": string(compact), "pretty": string(pretty), "odd": odd} {
		got, err := decodeEmbeddings([]byte(doc))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got.Model != want.Model || got.Usage != want.Usage || len(got.Data) != 2 {
			t.Errorf("%s: model %q, usage %+v, %d items", name, got.Model, got.Usage, len(got.Data))
			continue
		}
		for i, d := range got.Data {
			v, err := floats(d.Embedding)
			if err != nil || !slices.Equal(v, want.Data[i].Embedding) {
				t.Errorf("%s: item %d: %v, %v; want %v", name, i, v, err, want.Data[i].Embedding)
			}
		}
	}
	for _, bad := range []string{
		`{"data":[{"embedding":["1]",2]}]}`,              // a bracket in a string inside the array
		`{"data":[{"embedding":[[1],[2]]}]}`,             // nested arrays
		`{"data":[{"embedding":[1,2]}]`,                  // unterminated
		`{"data":[{"embedding":[1,2}]}`,                  // no closing bracket
		`{"data":[{"embedding":0}]}`,                     // a number, no array
		`{"data":[{"embedding":0},{"embedding":[1,2]}]}`, // a number that looks like the array's index
		`{"data":[{"embedding":"AAAA"}]}`,                // base64, which the plugin does not ask for
		`{"data":[{"embedding":[1,2]}],}`,
		`not json`,
	} {
		res, err := decodeEmbeddings([]byte(bad))
		if err == nil {
			for _, d := range res.Data {
				if _, err = floats(d.Embedding); err != nil {
					break
				}
			}
		}
		if err == nil {
			t.Errorf("%s: decoded without an error", bad)
		}
	}
}

// A server's error reaches the caller with its status and message,
// whatever shape its body has.
func TestErrorBodies(t *testing.T) {
	for _, c := range []struct {
		status int
		body   string
		want   []string
	}{
		{400, `{"error":{"message":"Invalid model","type":"invalid_request_error","code":"model_not_found"}}`, []string{"HTTP 400", "model_not_found", "Invalid model"}},
		{400, `{"error":{"message":"numeric code","code":1234}}`, []string{"HTTP 400", "(1234)", "numeric code"}},
		{404, `{"error":"model 'llama9' not found"}`, []string{"HTTP 404", "model 'llama9' not found"}},
		{502, `<html><body>Bad Gateway</body></html>`, []string{"HTTP 502", "Bad Gateway"}},
		{500, ``, []string{"HTTP 500 Internal Server Error"}},
		{503, strings.Repeat("x", 5000), []string{"HTTP 503", "xxx…"}},
	} {
		t.Run(fmt.Sprint(c.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(c.status)
				fmt.Fprint(w, c.body)
			}))
			defer srv.Close()
			e := endpoint{http: srv.Client(), baseURL: srv.URL + "/v1/"}
			var out chatResponse
			err := describe(e.postJSON(context.Background(), "chat/completions", &chatRequest{Model: "m"}, &out))
			var he *httpError
			if !errors.As(err, &he) || he.StatusCode != c.status {
				t.Fatalf("err = %v, want an HTTP %d error", err, c.status)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if len(err.Error()) > 400 {
				t.Errorf("error of %d bytes: a server's body is shortened", len(err.Error()))
			}
		})
	}
}

// Answers that are not what the endpoint returns are refused, not
// half-read.
func TestMalformedAnswers(t *testing.T) {
	for name, body := range map[string]string{
		"not JSON":        `I am a teapot`,
		"wrong shape":     `{"data": "nope"}`,
		"bad embedding":   `{"data": [{"embedding": [1, "two"]}]}`,
		"nested floats":   `{"data": [{"embedding": [[1]]}]}`,
		"no data at all":  `{}`,
		"empty embedding": `{"data": [{"embedding": []}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			var asked atomic.Int32
			bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				asked.Add(1)
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, body)
			}))
			defer bad.Close()
			e := start(t)
			e.configure(e.settings(SettingEmbeddingURL, bad.URL+"/v1"), nil)
			res, err := e.use(sdk.ModelRequest{Type: sdk.ModelTextEmbedding, Text: "hello"})
			if err == nil {
				t.Fatalf("a malformed answer gave an embedding: %v", res.Embedding)
			}
			if n := asked.Load(); n != 1 {
				t.Errorf("a malformed answer was asked for %d times; asking again would not mend it", n)
			}
		})
	}
}

// The stream's events may carry data over several lines, comments and
// other fields; an error event fails the call with the server's words.
func TestChatStreamEvents(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ": keep-alive\n\n")
		fmt.Fprint(w, "event: chunk\ndata: {\"model\":\"m\",\"choices\":[{\"index\":0,\n")
		fmt.Fprint(w, "data: \"delta\":{\"content\":\"Hel\"}}]}\n\n")
		fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\n\n")
		fmt.Fprint(w, "data: {\"error\":{\"message\":\"overloaded\"}}\n\n")
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	defer srv.Close()
	e := endpoint{http: srv.Client(), baseURL: srv.URL}
	var text strings.Builder
	err := e.chatStream(context.Background(), &chatRequest{Model: "m", Stream: true}, func(c *chatChunk) error {
		for _, ch := range c.Choices {
			text.WriteString(ch.Delta.Content)
		}
		return nil
	})
	if text.String() != "Hello" {
		t.Errorf("text = %q", text.String())
	}
	if err == nil || !strings.Contains(err.Error(), "overloaded") {
		t.Errorf("err = %v, want the server's error", err)
	}
}

// An answer of 1536 numbers, as a server sends it: decoded here, and
// through encoding/json as the plugin used to (-bench Embeddings).
func BenchmarkDecodeEmbeddings(b *testing.B) {
	v := make([]float32, 1536)
	for i := range v {
		v[i] = float32(i%97)/97 - 0.5
	}
	doc, _ := json.Marshal(map[string]any{"object": "list", "model": "text-embedding-3-small",
		"data": []any{map[string]any{"object": "embedding", "index": 0, "embedding": v}}, "usage": tokenUsage{PromptTokens: 8, TotalTokens: 8}})
	b.Run("cut", func(b *testing.B) {
		for b.Loop() {
			res, err := decodeEmbeddings(doc)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := floats(res.Data[0].Embedding); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			var res embeddingResponse
			if err := json.Unmarshal(doc, &res); err != nil {
				b.Fatal(err)
			}
			if _, err := floats(res.Data[0].Embedding); err != nil {
				b.Fatal(err)
			}
		}
	})
}
