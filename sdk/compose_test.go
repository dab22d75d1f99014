package sdk

import (
	"reflect"
	"testing"

	"github.com/agenthost/agenthost/internal/contract"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// A state composed in the plugin's process is the state the host would
// have composed from the same provider results: the same text, the same
// values over the same cached ones, the same entries under data.providers,
// and every value in the shape JSON decodes it to, whatever Go type the
// provider used.
func TestLocalMergeMatchesHost(t *testing.T) {
	m := &pb.Manifest{Name: "p", Providers: []*pb.ProviderSpec{{Name: "A", Position: 1}, {Name: "B", Position: 2}, {Name: "C", Position: 3}, {Name: "D", Position: 4}}}
	reg, err := contract.NewRegistry([]*describedPlugin{{name: "p", manifest: m}})
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		ID    string `json:"id"`
		Count int    `json:"count"`
	}
	first := map[string]ProviderResult{
		"C": {Text: "c before", Values: map[string]any{"shared": "c", "n": 3}},
	}
	second := map[string]ProviderResult{
		"A": {Text: "a <text> & more", Values: map[string]any{"shared": "a", "list": []string{"x", "y"}}, Data: map[string]any{"rows": []row{{"r", 2}}}},
		"B": {Text: "  ", Values: map[string]any{"nested": map[string]any{"z": 1, "a": []any{true, nil}}}, Data: map[string]any{}},
		"D": {Text: "d", Values: map[string]any{}},
	}
	extra := reg.ActionValues()
	if extra == nil {
		extra = map[string]any{"actionNames": "REPLY, WAVE", "shared": "extra"}
	}

	// The host's way: each result encoded as the SDK's server encodes it,
	// merged as JSON, decoded as the SDK decodes a state.
	hostMerge := func(req *pb.ComposeStateRequest, cached *pb.State, in map[string]ProviderResult) *pb.State {
		results := map[string]*pb.ProviderResult{}
		for name, r := range in {
			results[name] = &pb.ProviderResult{Name: name, Text: validUTF8(r.Text), ValuesJson: encodeMap(r.Values), DataJson: encodeMap(r.Data)}
		}
		return reg.Compose(req).MergeState(cached, results, extra)
	}
	// The plugin's own.
	localMerge := func(req *pb.ComposeStateRequest, cached *State, in map[string]ProviderResult) *State {
		results := map[string]*ProviderResult{}
		for name, r := range in {
			results[name] = &ProviderResult{Text: validUTF8(r.Text), Values: jsonShapedMap(r.Values), Data: jsonShapedMap(r.Data)}
		}
		return mergeState(reg.Compose(req).Selected, cached, results, extra)
	}

	req1 := &pb.ComposeStateRequest{Include: []string{"C"}, OnlyInclude: true}
	host1 := hostMerge(req1, nil, first)
	local1 := localMerge(req1, nil, first)
	if want := stateFromProto(host1); !reflect.DeepEqual(local1, want) {
		t.Fatalf("first state:\n local %#v\n host  %#v", local1, want)
	}
	req2 := &pb.ComposeStateRequest{Include: []string{"A", "B", "D"}, OnlyInclude: true}
	host2 := stateFromProto(hostMerge(req2, host1, second))
	local2 := localMerge(req2, local1, second)
	if !reflect.DeepEqual(local2, host2) {
		t.Fatalf("second state, over the first:\n local %#v\n host  %#v", local2, host2)
	}
	if local2.Values["shared"] != "a" || local2.Values["n"] != float64(3) || local2.Text != "c before\n\na <text> & more\n\nd" && local2.Text != "a <text> & more\n\nd" {
		t.Errorf("merged state = %#v", local2)
	}
}

// A caller changing the state it got does not change the one kept for the
// message.
func TestLocalStateIsACopy(t *testing.T) {
	st := &State{Values: map[string]any{"a": "1"}, Data: map[string]any{"providers": map[string]any{"A": "x"}}}
	c := st.clone()
	c.Values["a"] = "2"
	c.Data["providers"].(map[string]any)["A"] = "y"
	if st.Values["a"] != "1" || st.Data["providers"].(map[string]any)["A"] != "x" {
		t.Errorf("the original changed: %#v", st)
	}
}
