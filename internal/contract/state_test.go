package contract

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// MergeState joins the selected providers in position order: their texts,
// their values over the cached ones and the agent's action values, and each
// provider's own entry under data.providers, nested values as they came.
func TestMergeState(t *testing.T) {
	p := newFake("p", &pb.Manifest{Providers: []*pb.ProviderSpec{{Name: "A", Position: 1}, {Name: "B", Position: 2}, {Name: "C", Position: 3}}})
	r, err := NewRegistry([]*fakePlugin{p})
	if err != nil {
		t.Fatal(err)
	}
	comp := r.Compose(&pb.ComposeStateRequest{Include: []string{"A", "B"}, OnlyInclude: true})
	cached := &pb.State{ValuesJson: []byte(`{"old":1,"shared":"cached"}`),
		DataJson: []byte(`{"keep":[1,2],"providers":{"C":{"text":"c from before"}}}`)}
	results := map[string]*pb.ProviderResult{
		"B": {Name: "B", Text: "b text", ValuesJson: []byte(`{"shared":"b","nested":{"z":1,"a":[true,null]},"big":12345678901234567890}`),
			DataJson: []byte(`{"rows":[{"id":"x"}]}`)},
		"A": {Name: "A", Text: "a <text> & more", ValuesJson: []byte(`{"shared":"a","html":"<b>"}`), DataJson: []byte(`not json`)},
	}
	st := comp.MergeState(cached, results, map[string]any{"actionNames": "REPLY", "shared": "extra"})
	if st.GetText() != "a <text> & more\n\nb text" {
		t.Errorf("text = %q", st.GetText())
	}
	var values, data map[string]any
	for b, v := range map[string]*map[string]any{string(st.GetValuesJson()): &values, string(st.GetDataJson()): &data} {
		d := json.NewDecoder(strings.NewReader(b))
		d.UseNumber()
		if err := d.Decode(v); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	}
	want := map[string]any{"old": json.Number("1"), "shared": "b", "actionNames": "REPLY", "html": "<b>",
		"nested": map[string]any{"z": json.Number("1"), "a": []any{true, nil}}, "big": json.Number("12345678901234567890"),
		"providers": "a <text> & more\n\nb text"}
	if !reflect.DeepEqual(values, want) {
		t.Errorf("values = %v\nwant     %v", values, want)
	}
	providers, _ := data["providers"].(map[string]any)
	if data["keep"] == nil || providers["C"] == nil {
		t.Errorf("the cached data was lost: %v", data)
	}
	a, _ := providers["A"].(map[string]any)
	b, _ := providers["B"].(map[string]any)
	if a["text"] != "a <text> & more" || a["data"] != nil || a["values"] == nil {
		t.Errorf("A's entry = %v", a)
	}
	if b["text"] != "b text" || !reflect.DeepEqual(b["data"], map[string]any{"rows": []any{map[string]any{"id": "x"}}}) {
		t.Errorf("B's entry = %v", b)
	}
}
