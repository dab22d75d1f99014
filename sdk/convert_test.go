package sdk

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// roundTrip marshals and unmarshals a message as gRPC would, so that round trips
// cover the bytes and not only the Go structs.
func roundTrip[M proto.Message](t *testing.T, m M) M {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatalf("marshal %T: %v", m, err)
	}
	out := m.ProtoReflect().New().Interface().(M)
	if err := proto.Unmarshal(b, out); err != nil {
		t.Fatalf("unmarshal %T: %v", m, err)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func fullMemory() Memory {
	return Memory{
		ID: "0b7e3e1c-5bd8-4cd0-8f7c-000000000001", EntityID: "e1", AgentID: "a1", RoomID: "r1", WorldID: "w1",
		CreatedAt: 1700000000123, Unique: true, Similarity: 0.875, Table: TableFacts,
		Embedding: []float32{0.25, -1.5, 3e-7, 0},
		Metadata:  map[string]any{"type": "message", "n": 3.0, "nested": map[string]any{"ok": true, "list": []any{"a", 1.0}}},
		Content: Content{
			Text: "hello", Thought: "think", Actions: []string{"REPLY", "FOLLOW_ROOM"}, Providers: []string{"TIME"},
			Source: "telegram", Target: "t", URL: "https://example.invalid", InReplyTo: "m0", ChannelType: ChannelThread,
			Attachments: []Media{
				{ID: "a1", URL: "u1", Title: "cat", Source: "s", Description: "a cat", Text: "meow", ContentType: "image"},
				{ID: "a2", ContentType: "document"},
			},
			Extra: map[string]any{"simple": true, "score": 0.5},
		},
	}
}

func TestMemoryRoundTrip(t *testing.T) {
	m := fullMemory()
	back := memoryFromProto(roundTrip(t, memoryToProto(&m)))
	if !reflect.DeepEqual(*back, m) {
		t.Errorf("memory round trip:\n got %#v\nwant %#v", *back, m)
	}

	ms := []Memory{m, {ID: "second", Content: Content{Text: "two"}}}
	got := memoriesFromProto(memoriesToProto(ms))
	if !reflect.DeepEqual(got, ms) {
		t.Errorf("memories round trip:\n got %#v\nwant %#v", got, ms)
	}
}

func TestConvertersAcceptNil(t *testing.T) {
	if memoryToProto(nil) != nil || memoryFromProto(nil) != nil || contentToProto(nil) != nil {
		t.Error("nil memory or content did not convert to nil")
	}
	if c := contentFromProto(nil); !reflect.DeepEqual(c, Content{}) {
		t.Errorf("contentFromProto(nil) = %#v", c)
	}
	if memoriesToProto(nil) != nil || memoriesFromProto(nil) != nil || mediaToProto(nil) != nil || mediaFromProto(nil) != nil {
		t.Error("empty lists did not convert to nil")
	}
	if stateToProto(nil) != nil {
		t.Error("stateToProto(nil) != nil")
	}
	// Handlers may write to a state's maps without checking them.
	st := stateFromProto(nil)
	if st == nil || st.Values == nil || st.Data == nil {
		t.Errorf("stateFromProto(nil) = %#v, want empty maps", st)
	}
	if r := modelResponseToProto(nil); r == nil {
		t.Error("modelResponseToProto(nil) = nil")
	}
	if r := modelResponseFromProto(nil); r == nil || r.Text != "" {
		t.Errorf("modelResponseFromProto(nil) = %#v", r)
	}
	if r := actionResultFromProto(nil); !reflect.DeepEqual(r, ActionResult{}) {
		t.Errorf("actionResultFromProto(nil) = %#v", r)
	}
	if o := outcomesFromProto(nil); o != nil {
		t.Errorf("outcomesFromProto(nil) = %#v", o)
	}
	if tg := targetFromProto(nil); tg != (Target{}) {
		t.Errorf("targetFromProto(nil) = %#v", tg)
	}
}

func TestStateRoundTrip(t *testing.T) {
	st := &State{
		Values: map[string]any{"agentName": "Eliza", "count": 2.0, "providers": "text"},
		Data:   map[string]any{"providers": map[string]any{"TIME": map[string]any{"text": "now"}}},
		Text:   "# Time\nnow",
	}
	back := stateFromProto(roundTrip(t, stateToProto(st)))
	if !reflect.DeepEqual(back, st) {
		t.Errorf("state round trip:\n got %#v\nwant %#v", back, st)
	}
	empty := stateFromProto(roundTrip(t, stateToProto(&State{})))
	if !reflect.DeepEqual(empty, &State{Values: map[string]any{}, Data: map[string]any{}}) {
		t.Errorf("empty state round trip = %#v", empty)
	}
}

func TestModelRequestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  ModelRequest
	}{
		{"temperature unset", ModelRequest{Type: ModelTextLarge, Prompt: "p", System: "s", MaxTokens: 100}},
		{"temperature zero", ModelRequest{Type: ModelTextSmall, Prompt: "p", Temperature: ptr(0.0)}},
		{"all set", ModelRequest{Type: ModelTextLarge, RunID: "run", Prompt: "p", System: "s", Temperature: ptr(0.7),
			MaxTokens: 8192, StopSequences: []string{"\n\n", "END"}, FrequencyPenalty: ptr(0.0), PresencePenalty: ptr(-0.5),
			Provider: "openai"}},
		{"embedding", ModelRequest{Type: ModelTextEmbedding, Text: "embed me"}},
		{"probe", ModelRequest{Type: ModelTextEmbedding, Probe: true}},
		{"params", ModelRequest{Type: ModelImage, Params: map[string]any{"size": "1024x1024", "n": 2.0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := roundTrip(t, modelRequestToProto("agent-1", &tc.req))
			if p.GetAgentId() != "agent-1" {
				t.Errorf("agent id = %q", p.GetAgentId())
			}
			if (tc.req.Temperature == nil) != (p.Temperature == nil) {
				t.Errorf("temperature presence lost: sent %v, wire has %v", tc.req.Temperature, p.Temperature)
			}
			back := modelRequestFromProto(p)
			if !reflect.DeepEqual(*back, tc.req) {
				t.Errorf("round trip:\n got %#v\nwant %#v", *back, tc.req)
			}
			if back.Temperature != nil && tc.req.Temperature != nil && *back.Temperature != *tc.req.Temperature {
				t.Errorf("temperature = %v, want %v", *back.Temperature, *tc.req.Temperature)
			}
		})
	}
}

func TestModelResponseRoundTrip(t *testing.T) {
	for _, r := range []*ModelResponse{
		{Text: "answer", Model: "gpt-4o-mini", Provider: "openai", Usage: Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}},
		{Embedding: []float32{0.1, 0.2, -0.3}, Model: "text-embedding-3-small"},
		{JSON: json.RawMessage(`{"thought":"t","actions":["REPLY"]}`)},
		{Data: []byte{0, 1, 2, 255}, ContentType: "audio/mpeg"},
	} {
		back := modelResponseFromProto(roundTrip(t, modelResponseToProto(r)))
		if !reflect.DeepEqual(back, r) {
			t.Errorf("round trip:\n got %#v\nwant %#v", back, r)
		}
	}
}

func TestActionResultRoundTrip(t *testing.T) {
	for _, r := range []ActionResult{
		{},
		{Success: true, Text: "done", Values: map[string]any{"lastReply": "hi"}, Data: map[string]any{"ids": []any{"a", "b"}}},
		{Success: false, Error: "boom", Text: "partial"},
	} {
		back := actionResultFromProto(roundTrip(t, actionResultToProto(&r)))
		if !reflect.DeepEqual(back, r) {
			t.Errorf("round trip:\n got %#v\nwant %#v", back, r)
		}
	}
	os := []ActionOutcome{{Name: "REPLY", Result: ActionResult{Success: true, Text: "hi"}}, {Name: "MUTE_ROOM", Result: ActionResult{Error: "no"}}}
	if back := outcomesFromProto(outcomesToProto(os)); !reflect.DeepEqual(back, os) {
		t.Errorf("outcomes round trip:\n got %#v\nwant %#v", back, os)
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	e := Entity{ID: "e1", Names: []string{"Ann", "ann_t"}, Metadata: map[string]any{"telegram": map[string]any{"id": "7"}}, AgentID: "a1"}
	if back := entityFromProto(roundTrip(t, entityToProto(&e))); !reflect.DeepEqual(back, e) {
		t.Errorf("entity: %#v", back)
	}
	w := World{ID: "w1", Name: "Guild", AgentID: "a1", ServerID: "s1", Metadata: map[string]any{"ownership": map[string]any{"ownerId": "e1"}}}
	if back := worldFromProto(roundTrip(t, worldToProto(&w))); !reflect.DeepEqual(back, w) {
		t.Errorf("world: %#v", back)
	}
	r := Room{ID: "r1", Name: "general", AgentID: "a1", Source: "discord", Type: ChannelGroup, ChannelID: "c1", ServerID: "s1", WorldID: "w1", Metadata: map[string]any{"topic": "x"}}
	if back := roomFromProto(roundTrip(t, roomToProto(&r))); !reflect.DeepEqual(back, r) {
		t.Errorf("room: %#v", back)
	}
	tg := Target{Source: "telegram", RoomID: "r1", ChannelID: "c1", ServerID: "s1", EntityID: "e1", ThreadID: "th"}
	if back := targetFromProto(roundTrip(t, targetToProto(&tg))); back != tg {
		t.Errorf("target: %#v", back)
	}
}

func TestMapEncoding(t *testing.T) {
	if encodeMap(nil) != nil || encodeMap(map[string]any{}) != nil {
		t.Error("an empty map must travel as no bytes")
	}
	if decodeMap(nil) != nil {
		t.Error("no bytes must decode to a nil map")
	}
	// A value JSON cannot encode is the author's bug; the message still
	// flows and says what went wrong.
	m := decodeMap(encodeMap(map[string]any{"ch": make(chan int)}))
	if s, _ := m["_encodeError"].(string); !strings.Contains(s, "chan") {
		t.Errorf("unencodable map = %v", m)
	}
	m = decodeMap([]byte(`{"truncated":`))
	if _, ok := m["_decodeError"]; !ok {
		t.Errorf("bad JSON = %v", m)
	}
}

// Text from a model or a platform may be any bytes. The converters replace
// invalid UTF-8 so that marshaling never fails.
func TestInvalidUTF8IsReplaced(t *testing.T) {
	const bad = "a\xffb\xc3"
	c := Content{Text: bad, Thought: bad, Actions: []string{"OK", bad}, Providers: []string{bad}, URL: bad,
		Attachments: []Media{{URL: bad, Title: bad, Description: bad, Text: bad}}}
	p := roundTrip(t, contentToProto(&c))
	for _, s := range []string{p.GetText(), p.GetThought(), p.GetUrl(), p.GetActions()[1], p.GetProviders()[0],
		p.GetAttachments()[0].GetUrl(), p.GetAttachments()[0].GetTitle(), p.GetAttachments()[0].GetDescription(),
		p.GetAttachments()[0].GetText()} {
		if s != "a\uFFFDb\uFFFD" {
			t.Errorf("got %q, want %q", s, "a\uFFFDb\uFFFD")
		}
	}
	if c.Actions[1] != bad {
		t.Error("the caller's slice was changed")
	}
	if p.GetActions()[0] != "OK" {
		t.Errorf("a valid entry changed: %q", p.GetActions()[0])
	}

	// Every string a Content carries can come from a platform.
	all := Content{Text: "t", Source: bad, Target: bad, InReplyTo: bad, ChannelType: ChannelType(bad),
		Attachments: []Media{{ID: bad, Source: bad, ContentType: bad}}}
	if _, err := proto.Marshal(contentToProto(&all)); err != nil {
		t.Errorf("content with invalid UTF-8 in source, target, inReplyTo, channelType or media ids: %v", err)
	}

	for _, msg := range []proto.Message{
		memoryToProto(&Memory{Content: Content{Text: bad}}),
		stateToProto(&State{Text: bad, Values: map[string]any{"v": bad}}),
		actionResultToProto(&ActionResult{Text: bad, Error: bad}),
		modelRequestToProto("a", &ModelRequest{Prompt: bad, System: bad, Text: bad, StopSequences: []string{bad}}),
		modelResponseToProto(&ModelResponse{Text: bad}),
		entityToProto(&Entity{Names: []string{bad}}),
		roomToProto(&Room{Name: bad}),
		worldToProto(&World{Name: bad}),
	} {
		// proto3 refuses to marshal a string field with invalid UTF-8.
		if _, err := proto.Marshal(msg); err != nil {
			t.Errorf("%T: %v", msg, err)
		}
	}

	if s := validUTF8("fine ✓"); s != "fine ✓" {
		t.Errorf("valid text changed: %q", s)
	}
	in := []string{"ok", "fine"}
	if out := validUTF8s(in); &out[0] != &in[0] {
		t.Error("validUTF8s copied a valid slice")
	}
}
