package host

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/character"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// The action plan and results the host keeps in a message's cached state
// (for the ACTION_STATE provider) change only those keys, and merging
// never lets the cache grow past its bound.
func TestStateCacheMerge(t *testing.T) {
	t.Parallel()
	c := newStateCache(4)
	c.Put("m1", &pb.State{ValuesJson: []byte(`{"agentName":"Eliza"}`), DataJson: []byte(`{"providers":{"TIME":{}}}`), Text: "t"})
	c.merge("m1", map[string]any{"actionPlan": map[string]any{"currentStep": 1}})
	c.merge("m1", map[string]any{"actionResults": []any{"r"}})
	st := c.Get("m1")
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
	if c.Get("") != nil {
		t.Error("a message without an id has no cached state")
	}
}

func TestStateCacheIsBounded(t *testing.T) {
	t.Parallel()
	c := newStateCache(3)
	for i := 0; i < 100; i++ {
		c.Put(string(rune('a'+i%26))+string(rune('0'+i/26)), &pb.State{})
	}
	if n := c.Len(); n != 3 {
		t.Fatalf("cache holds %d states, want 3", n)
	}
}

// A message's state is composed again for its evaluators after its run
// (bootstrap reflects after the reply); once they are done it is dropped
// as a finished run's is, not left in the cache.
func TestStatesDroppedAfterTheEvaluators(t *testing.T) {
	ch := character.Default()
	ch.Settings = map[string]any{"REFLECTION_INTERVAL": "1"}
	td := startTestDaemon(t, daemonOpt{chars: []*sdk.Character{ch}})
	a := td.d.Agent(ch.Name)
	var r sayResult
	for i := 0; i < 3; i++ {
		r = td.say(ch.Name, "dana", fmt.Sprintf("I keep a garden with %d roses", i+1))
		// At a conversation's pace: each message's evaluation runs before
		// the next (sent at once, the reflection queued first covers the
		// rest).
		time.Sleep(150 * time.Millisecond)
	}
	var runs struct {
		Runs []runJSON `json:"runs"`
	}
	testwait.ForNil(t, 20*time.Second, "the runs evaluated and their states dropped", func() error {
		td.ok(200, "GET", "/api/agents/"+ch.Name+"/runs?roomId="+r.RoomID, nil, &runs)
		evaluated, reflected := 0, 0
		for _, run := range runs.Runs {
			if len(run.Evaluators) > 0 {
				evaluated++
			}
			for _, e := range run.Evaluators {
				if e["evaluator"] == "REFLECTION" && e["ran"] == true {
					reflected++
				}
			}
		}
		if evaluated < 3 || reflected == 0 {
			return fmt.Errorf("%d of 3 runs evaluated, %d reflections ran", evaluated, reflected)
		}
		if n := a.states.Len(); n != 0 {
			return fmt.Errorf("%d states left in the cache after the runs and their evaluators", n)
		}
		return nil
	})
}
