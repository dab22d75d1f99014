package offline

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/plugintest"
	"github.com/tiktoken-go/tokenizer/codec"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const objectConversation = "# Agent: Eliza\n# Conversation Messages\nAda: hello\n\n# Received Message\nAda: I am sad about my job\n\n"

func object(t *testing.T, req sdk.ModelRequest) string {
	t.Helper()
	res, err := handleObject(context.Background(), nil, &req)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(res.JSON) {
		t.Fatalf("not JSON: %s", res.JSON)
	}
	if res.Model != "eliza" || res.Usage.TotalTokens == 0 {
		t.Errorf("model %q usage %+v", res.Model, res.Usage)
	}
	again, _ := handleObject(context.Background(), nil, &req)
	if string(again.JSON) != string(res.JSON) {
		t.Errorf("not deterministic: %s then %s", res.JSON, again.JSON)
	}
	return string(res.JSON)
}

func TestObjectFromExample(t *testing.T) {
	prompt := objectConversation + "Reflect, and answer in JSON like this:\n```json\n" +
		`{"thought": "how it goes", "facts": [{"claim": "x", "type": "fact"}], "relationships": [], "count": 3, "ok": true, "meta": {"note": "n"}}` +
		"\n```"
	got := object(t, sdk.ModelRequest{Type: sdk.ModelObjectSmall, Prompt: prompt})
	var v struct {
		Thought       string         `json:"thought"`
		Facts         []any          `json:"facts"`
		Relationships []any          `json:"relationships"`
		Count         float64        `json:"count"`
		OK            bool           `json:"ok"`
		Meta          map[string]any `json:"meta"`
	}
	if err := json.Unmarshal([]byte(got), &v); err != nil {
		t.Fatal(err)
	}
	if v.Thought == "" || v.Facts == nil || len(v.Facts) != 0 || len(v.Relationships) != 0 || v.Count != 0 || v.OK || v.Meta["note"] != "" {
		t.Errorf("object = %s", got)
	}
}

func TestObjectFromSchema(t *testing.T) {
	schema := map[string]any{"type": "object", "properties": map[string]any{
		"text":     map[string]any{"type": "string"},
		"mood":     map[string]any{"type": "string", "enum": []any{"calm", "upset"}},
		"score":    map[string]any{"type": "number", "minimum": 1.0},
		"tags":     map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
		"nested":   map[string]any{"properties": map[string]any{"done": map[string]any{"type": []any{"null", "boolean"}}}},
		"kind":     map[string]any{"const": "reply"},
		"choice":   map[string]any{"anyOf": []any{map[string]any{"type": "integer"}, map[string]any{"type": "string"}}},
		"nothing":  map[string]any{},
		"question": map[string]any{"type": "string"},
	}}
	got := object(t, sdk.ModelRequest{Type: sdk.ModelObjectLarge, Prompt: objectConversation, Params: map[string]any{"schema": schema}})
	var v map[string]any
	_ = json.Unmarshal([]byte(got), &v)
	if !strings.Contains(v["text"].(string), "job") || v["mood"] != "calm" || v["score"] != 1.0 || len(v["tags"].([]any)) != 0 ||
		v["nested"].(map[string]any)["done"] != false || v["kind"] != "reply" || v["choice"] != 0.0 || v["nothing"] != nil || v["question"] != "" {
		t.Errorf("object = %s", got)
	}
}

func TestObjectOutputs(t *testing.T) {
	if got := object(t, sdk.ModelRequest{Prompt: "pick", Params: map[string]any{"output": "enum", "enumValues": []any{"yes", "no"}}}); got != `"yes"` {
		t.Errorf("enum = %s", got)
	}
	if got := object(t, sdk.ModelRequest{Prompt: "list", Params: map[string]any{"output": "array"}}); got != `[]` {
		t.Errorf("array = %s", got)
	}
	got := object(t, sdk.ModelRequest{Prompt: objectConversation})
	var v struct{ Thought, Text string }
	if err := json.Unmarshal([]byte(got), &v); err != nil || v.Thought == "" || !strings.Contains(v.Text, "your job") {
		t.Errorf("plain = %s", got)
	}
	// Braces that are not JSON do not confuse it.
	got = object(t, sdk.ModelRequest{Prompt: "use {{agentName}} and {not json} " + strings.Repeat("}", 200)})
	if !strings.Contains(got, `"thought"`) {
		t.Errorf("braces = %s", got)
	}
	if _, err := handleObject(context.Background(), nil, nil); err == nil {
		t.Error("nil request")
	}
}

func TestTokenizer(t *testing.T) {
	ctx := context.Background()
	text := "Hello, world! I feel tired today."
	res, err := handleEncode(ctx, nil, &sdk.ModelRequest{Type: sdk.ModelTokenizerEncode, Prompt: text})
	if err != nil {
		t.Fatal(err)
	}
	var ids []float64
	if err := json.Unmarshal(res.JSON, &ids); err != nil {
		t.Fatal(err)
	}
	want, _, _ := codec.NewO200kBase().Encode(text)
	if len(ids) != len(want) || res.Usage.PromptTokens != len(want) {
		t.Fatalf("ids %v, want %v", ids, want)
	}
	tokens := make([]any, len(ids))
	for i := range ids {
		if uint(ids[i]) != want[i] {
			t.Fatalf("ids %v, want %v", ids, want)
		}
		tokens[i] = ids[i]
	}
	back, err := handleDecode(ctx, nil, &sdk.ModelRequest{Type: sdk.ModelTokenizerDecode, Params: map[string]any{"tokens": tokens}})
	if err != nil || back.Text != text {
		t.Errorf("decode = %q, %v", back.Text, err)
	}
	if res, err := handleEncode(ctx, nil, &sdk.ModelRequest{}); err != nil || string(res.JSON) != "[]" {
		t.Errorf("empty text: %s, %v", res.JSON, err)
	}
	for _, bad := range []any{nil, []any{"1"}, []any{2.5}, []any{1e12}} {
		if _, err := handleDecode(ctx, nil, &sdk.ModelRequest{Params: map[string]any{"tokens": bad}}); err == nil {
			t.Errorf("tokens %v: no error", bad)
		}
	}
}

// TestOverGRPC runs every model type the pipeline uses through the real
// protocol, as the host calls the plugin.
func TestOverGRPC(t *testing.T) {
	c := plugintest.Start(t, New())
	ctx := context.Background()
	if _, err := c.Configure(ctx, "a1", &sdk.Character{Name: "Eliza", Bio: sdk.StringList{"x"}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{sdk.ModelTextSmall, sdk.ModelTextLarge} {
		res, err := c.UseModel(ctx, "a1", sdk.ModelRequest{Type: typ, Prompt: xmlPrompt})
		if err != nil || !strings.Contains(res.Text, "<actions>REPLY</actions>") {
			t.Errorf("%s: %+v, %v", typ, res, err)
		}
	}
	for _, typ := range []string{sdk.ModelObjectSmall, sdk.ModelObjectLarge} {
		res, err := c.UseModel(ctx, "a1", sdk.ModelRequest{Type: typ, Prompt: objectConversation,
			Params: map[string]any{"output": "enum", "enumValues": []any{"a", "b"}}})
		if err != nil || string(res.JSON) != `"a"` {
			t.Errorf("%s: %+v, %v", typ, res, err)
		}
	}
	res, err := c.UseModel(ctx, "a1", sdk.ModelRequest{Type: sdk.ModelTokenizerEncode, Prompt: "hello world"})
	if err != nil || !json.Valid(res.JSON) {
		t.Fatalf("encode: %+v, %v", res, err)
	}
	var ids []any
	_ = json.Unmarshal(res.JSON, &ids)
	res, err = c.UseModel(ctx, "a1", sdk.ModelRequest{Type: sdk.ModelTokenizerDecode, Params: map[string]any{"tokens": ids}})
	if err != nil || res.Text != "hello world" {
		t.Errorf("decode: %+v, %v", res, err)
	}
	_, err = c.UseModel(ctx, "a1", sdk.ModelRequest{Type: sdk.ModelTokenizerDecode, Params: map[string]any{"tokens": "x"}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad tokens: %v", err)
	}
	res, err = c.UseModel(ctx, "a1", sdk.ModelRequest{Type: sdk.ModelTextEmbedding, Probe: true})
	if err != nil || len(res.Embedding) != DefaultEmbeddingDimensions {
		t.Errorf("probe: %v", err)
	}
	// A streamed call gets the whole answer in one piece.
	var pieces []string
	sres, err := c.StreamModel(ctx, "a1", sdk.ModelRequest{Type: sdk.ModelTextLarge, Prompt: "Ada: I dream of the sea"},
		func(s string) error { pieces = append(pieces, s); return nil })
	if err != nil || len(pieces) != 1 || pieces[0] != sres.Text {
		t.Errorf("stream: %q %+v %v", pieces, sres, err)
	}
}

func TestXMLAnswersFollowTheTemplate(t *testing.T) {
	ctx := context.Background()
	ask := func(prompt string) string {
		t.Helper()
		res, err := handleText(ctx, nil, &sdk.ModelRequest{Type: sdk.ModelTextLarge, Prompt: prompt})
		if err != nil {
			t.Fatal(err)
		}
		return res.Text
	}

	// The REPLY action's template asks for <message>.
	got := ask(objectConversation + "Answer with this XML:\n<response>\n  <thought>what you think</thought>\n  <message>the reply</message>\n</response>")
	var reply struct {
		Thought string `xml:"thought"`
		Message string `xml:"message"`
	}
	if err := xml.Unmarshal([]byte(got), &reply); err != nil || reply.Thought == "" || !strings.Contains(reply.Message, "your job") {
		t.Errorf("reply = %q (%v)", got, err)
	}
	if strings.Contains(got, "<text>") || strings.Contains(got, "<actions>") {
		t.Errorf("fields the template does not ask for: %q", got)
	}

	// Reflection: nested lists come back empty, not invented.
	got = ask(objectConversation + "<response>\n<thought>t</thought>\n<facts>\n<fact><claim>c</claim><type>fact</type></fact>\n</facts>\n" +
		"<relationships><relationship><tags>a, b</tags></relationship></relationships>\n</response>")
	if want := "<facts></facts><relationships></relationships></response>"; !strings.HasSuffix(got, want) || !strings.HasPrefix(got, "<response><thought>") {
		t.Errorf("reflection = %q", got)
	}

	// An image prompt is the received message; unknown fields are empty.
	got = ask(objectConversation + "# Instructions\n<response><thought>t</thought><prompt>p</prompt><targetType>user | room</targetType><x.y/></response>")
	if !strings.Contains(got, "<prompt>I am sad about my job</prompt>") || !strings.Contains(got, "<targetType></targetType>") || !strings.Contains(got, "<x.y></x.y>") {
		t.Errorf("image prompt = %q", got)
	}

	// A yes/no confirmation without <response> is answered NO.
	if got := ask(objectConversation + "Should Eliza mute this room?\n<decision>YES or NO</decision>"); got != "<decision>NO</decision>" {
		t.Errorf("decision = %q", got)
	}
}

func TestResponseTags(t *testing.T) {
	for prompt, want := range map[string]string{
		"<response><a>1</a><b><c/></b><a>2</a><d/></response><e>":                   "a b d",
		"x < y and <response>\n<thought>a < b</thought>\n<text>":                    "thought text",
		"<response></response>":                                                     "",
		"no template":                                                               "",
		"<response><first>1</first></response> then <response><second/></response>": "second",
	} {
		if got := strings.Join(responseTags(prompt), " "); got != want {
			t.Errorf("responseTags(%q) = %q, want %q", prompt, got, want)
		}
	}
}
