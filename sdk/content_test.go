package sdk

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// jsonObject decodes b as a JSON object for comparisons that ignore key
// order.
func jsonObject(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return m
}

func TestContentJSONFlattensExtra(t *testing.T) {
	c := Content{
		Text: "hello", Actions: []string{"REPLY"}, ChannelType: ChannelDM,
		Attachments: []Media{{ID: "a1", URL: "https://example.invalid/cat.png", ContentType: "image"}},
		Extra: map[string]any{
			"simple":   true,
			"score":    1.5,
			"nested":   map[string]any{"list": []any{"x", 2.0, nil}},
			"metadata": map[string]any{"telegram": map[string]any{"messageId": "42"}},
		},
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	got := jsonObject(t, b)
	want := map[string]any{
		"text": "hello", "actions": []any{"REPLY"}, "channelType": "DM",
		"attachments": []any{map[string]any{"id": "a1", "url": "https://example.invalid/cat.png", "contentType": "image"}},
		"simple":      true, "score": 1.5,
		"nested":   map[string]any{"list": []any{"x", 2.0, nil}},
		"metadata": map[string]any{"telegram": map[string]any{"messageId": "42"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("marshal = %s\nwant the named fields and the Extra keys side by side: %v", b, want)
	}
	if strings.Contains(string(b), "Extra") {
		t.Errorf("marshal = %s, Extra must not appear as a key", b)
	}

	var back Content
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip:\n got %#v\nwant %#v", back, c)
	}
}

func TestContentJSONWithoutExtra(t *testing.T) {
	for _, c := range []Content{{}, {Text: "hi", Thought: "t", Providers: []string{"TIME"}, InReplyTo: "m1"}} {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := json.Marshal(contentFields(c))
		if string(b) != string(plain) {
			t.Errorf("marshal = %s, want the plain struct's %s", b, plain)
		}
		var back Content
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if back.Extra != nil {
			t.Errorf("unmarshal of %s made Extra %v, want nil", b, back.Extra)
		}
		if !reflect.DeepEqual(back, c) {
			t.Errorf("round trip of %s = %#v", b, back)
		}
	}
	if b, _ := json.Marshal(Content{}); string(b) != "{}" {
		t.Errorf("empty content = %s, want {}", b)
	}
}

func TestContentJSONNamedFieldsWin(t *testing.T) {
	c := Content{Text: "named", Source: "api", Extra: map[string]any{
		"text": "from extra", "actions": "not a list", "source": "extra source", "other": "kept",
	}}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	got := jsonObject(t, b)
	want := map[string]any{"text": "named", "source": "api", "other": "kept"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("marshal = %s, want %v: named fields win, and an Extra key naming an empty field is dropped", b, want)
	}

	// An Extra key that names a field is never written, even when the
	// field is empty: the field owns its key.
	b, err = json.Marshal(Content{Extra: map[string]any{"thought": "sneaky", "x": 1.0}})
	if err != nil {
		t.Fatal(err)
	}
	if got := jsonObject(t, b); !reflect.DeepEqual(got, map[string]any{"x": 1.0}) {
		t.Errorf("marshal = %s, want only x", b)
	}
}

func TestContentJSONUnmarshal(t *testing.T) {
	var c Content
	in := `{"text":"hi","actions":["A","B"],"attachments":[{"id":"1","title":"doc"}],"channelType":"GROUP",
		"inReplyTo":"m0","url":"u","target":"t","source":"discord","thought":"th","providers":["P"],
		"custom":{"a":[1,2]},"flag":false,"nothing":null}`
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	want := Content{Text: "hi", Actions: []string{"A", "B"}, Attachments: []Media{{ID: "1", Title: "doc"}},
		ChannelType: ChannelGroup, InReplyTo: "m0", URL: "u", Target: "t", Source: "discord", Thought: "th",
		Providers: []string{"P"}, Extra: map[string]any{"custom": map[string]any{"a": []any{1.0, 2.0}}, "flag": false, "nothing": nil}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("unmarshal:\n got %#v\nwant %#v", c, want)
	}

	// Unmarshal replaces what was there, Extra included.
	if err := json.Unmarshal([]byte(`{"text":"second"}`), &c); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Content{Text: "second"}) {
		t.Errorf("second unmarshal = %#v", c)
	}

	for _, bad := range []string{`[]`, `"text"`, `{"actions":"REPLY"}`, `{"text":1}`, `{"text":"x"`} {
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("unmarshal %s: no error", bad)
		}
	}
}

// elizaOS's Content is a JavaScript object: "Text" and "text" are two keys.
// A key that differs from a named field only by case must stay an Extra key
// and come back as it went in.
func TestContentJSONKeysAreCaseSensitive(t *testing.T) {
	in := `{"text":"lower","Text":"upper","ACTIONS":["X"]}`
	var c Content
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	if c.Text != "lower" || c.Actions != nil || c.Extra["Text"] != "upper" || c.Extra["ACTIONS"] == nil {
		t.Errorf("unmarshal %s = %#v, want Text from \"text\" only and the other keys in Extra", in, c)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := jsonObject(t, b), jsonObject(t, []byte(in)); !reflect.DeepEqual(got, want) {
		t.Errorf("round trip of %s = %s", in, b)
	}

	in = `{"Text":"only upper"}`
	c = Content{}
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	if c.Text != "" || c.Extra["Text"] != "only upper" {
		t.Errorf("unmarshal %s = %#v, want Text empty and Extra[\"Text\"] set", in, c)
	}
}

func TestContentJSONInsideMemory(t *testing.T) {
	m := Memory{ID: "m1", EntityID: "e1", RoomID: "r1", CreatedAt: 1700000000000,
		Content: Content{Text: "hi", Extra: map[string]any{"simple": true}}, Metadata: map[string]any{"type": "message"}}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	content := jsonObject(t, b)["content"]
	if !reflect.DeepEqual(content, map[string]any{"text": "hi", "simple": true}) {
		t.Errorf("memory's content = %v (from %s)", content, b)
	}
	var back Memory
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, m) {
		t.Errorf("memory round trip:\n got %#v\nwant %#v", back, m)
	}
}

func TestContentJSONExtraNotEncodable(t *testing.T) {
	_, err := json.Marshal(Content{Text: "x", Extra: map[string]any{"f": func() {}}})
	if err == nil {
		t.Error("marshal of an Extra holding a func: no error")
	}
}

// Strings are read as the decoder reads them, whether they take the fast
// path (no escape, valid UTF-8) or not.
func TestContentJSONStrings(t *testing.T) {
	for _, raw := range []string{`""`, `"plain"`, `"héllo ✓"`, `"a\nb"`, `"tab\there"`, `"\u00e9\u2713"`, `"quote \" inside"`,
		`"back\\slash"`, "\"bad \xff byte\"", "\"bad \xc3 byte\"", `"\ud83d\ude00"`} {
		var want string
		if err := json.Unmarshal([]byte(raw), &want); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		var c Content
		if err := c.UnmarshalJSON([]byte(`{"text":` + raw + `,"thought":` + raw + `,"channelType":` + raw + `}`)); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if c.Text != want || c.Thought != want || string(c.ChannelType) != want {
			t.Errorf("%s: read %q %q %q, want %q", raw, c.Text, c.Thought, c.ChannelType, want)
		}
	}
	var c Content
	if err := c.UnmarshalJSON([]byte(`{"text":1}`)); err == nil || !strings.Contains(err.Error(), `content key "text"`) {
		t.Errorf("a number as text: %v", err)
	}
}
