package host

import (
	"encoding/json"
	"fmt"
	"testing"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// The action plan and results the host keeps in a message's cached state
// (for the ACTION_STATE provider) change only those keys, and merging
// never lets the cache grow past its bound.
func TestStateCacheMerge(t *testing.T) {
	c := newStateCache(4)
	c.put("m1", &pb.State{ValuesJson: []byte(`{"agentName":"Eliza"}`), DataJson: []byte(`{"providers":{"TIME":{}}}`), Text: "t"})
	c.merge("m1", map[string]any{"actionPlan": map[string]any{"currentStep": 1}})
	c.merge("m1", map[string]any{"actionResults": []any{"r"}})
	st := c.get("m1")
	var data map[string]any
	if err := json.Unmarshal(st.GetDataJson(), &data); err != nil {
		t.Fatal(err)
	}
	if data["providers"] == nil || data["actionPlan"] == nil || data["actionResults"] == nil {
		t.Errorf("merge lost keys: %v", data)
	}
	if string(st.GetValuesJson()) != `{"agentName":"Eliza"}` || st.GetText() != "t" {
		t.Errorf("merge changed the values or text: %s %q", st.GetValuesJson(), st.GetText())
	}
	for i := 0; i < 50; i++ {
		c.merge(fmt.Sprintf("x%d", i), map[string]any{"actionResults": []any{}})
	}
	if n := c.Len(); n != 4 {
		t.Errorf("cache holds %d states, want 4", n)
	}
	c.merge("", map[string]any{"a": 1})
	if c.get("") != nil {
		t.Error("a message without an id has no cached state")
	}
}
