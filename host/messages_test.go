package host

import (
	"testing"

	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// A RUN_ENDED that says the run's message was handled before marks the run
// a duplicate (which receive reports); any other end, another agent's
// run or a run not in flight does not.
func TestRunEndedMarksDuplicate(t *testing.T) {
	t.Parallel()
	d := &Daemon{runs: &runRegistry{m: map[string]*run{}}}
	a, other := &AgentRuntime{ID: "a", d: d}, &AgentRuntime{ID: "b", d: d}
	mine, theirs := &run{id: "r1", agent: a}, &run{id: "r2", agent: other}
	d.runs.put(mine)
	d.runs.put(theirs)
	end := func(runID, payload string) {
		a.noteRunEnded(&pb.HandleEventRequest{Type: sdk.EventRunEnded, RunId: runID, PayloadJson: []byte(payload)})
	}
	end("r1", `{"status":"completed","reason":"decided not to respond"}`)
	end("r1", `not json`)
	end("r1", ``)
	end("r2", `{"reason":"duplicate delivery"}`)
	end("gone", `{"reason":"duplicate delivery"}`)
	if mine.duplicate || theirs.duplicate {
		t.Fatalf("marked a duplicate: mine %v, theirs %v", mine.duplicate, theirs.duplicate)
	}
	end("r1", `{"status":"completed","reason":"duplicate delivery"}`)
	if !mine.duplicate {
		t.Error("bootstrap's duplicate delivery should mark the run")
	}
	third := &run{id: "r3", agent: a}
	d.runs.put(third)
	end("r3", `{"duplicate":true}`)
	if !third.duplicate {
		t.Error(`"duplicate": true should mark the run`)
	}
}

// Only the last reply of the message's one handler completes a run's
// replies: another plugin of the agent (an action's, a hostile one) that
// says last cannot cut the caller's answer short, nor can one of two
// handlers.
func TestOnlyTheOneHandlerEndsTheReplies(t *testing.T) {
	t.Parallel()
	handler, other := &PluginProcess{}, &PluginProcess{}
	a := &AgentRuntime{ID: "a"}
	a.reg.Store(&registry{Events: map[string][]*PluginProcess{sdk.EventMessageReceived: {handler}}})
	if !a.onlyHandler(handler) {
		t.Error("the one handler's last reply should end the replies")
	}
	if a.onlyHandler(other) || a.onlyHandler(nil) {
		t.Error("a plugin that does not handle the message ended its replies")
	}
	a.reg.Store(&registry{Events: map[string][]*PluginProcess{sdk.EventMessageReceived: {handler, other}}})
	if a.onlyHandler(handler) || a.onlyHandler(other) {
		t.Error("one of two handlers ended the replies")
	}
}
