package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/sdk"
)

// TestLastReplyAnswersBeforeTheHandlerReturns: a handler that sends its
// run's last reply (RespondLast) and then goes on working has its reply
// come back over HTTP at once; the run ends in the timeline only when the
// handler returns.
func TestLastReplyAnswersBeforeTheHandlerReturns(t *testing.T) {
	t.Parallel()
	gate := filepath.Join(t.TempDir(), "open")
	char := writeCharacter(t, map[string]any{"name": "Lasty", "bio": "A test agent.",
		"plugins": []string{"sql", "offline", "lastreply"}, "settings": map[string]any{"LASTREPLY_GATE": gate}})
	d := startDaemon(t, daemonOpts{pluginDir: pluginDirWith(t, bins.lastreply), characters: []string{char}})
	defer os.WriteFile(gate, nil, 0o600) // never leave the handler held

	type result struct {
		m   messagesData
		err string
	}
	done := make(chan result, 1)
	go func() {
		code, env := d.post("/api/agents/Lasty/messages", map[string]string{"text": "hello", "userName": "tester"})
		var r result
		if code != http.StatusOK || !env.Success {
			r.err = string(env.Data)
		}
		_ = json.Unmarshal(env.Data, &r.m)
		done <- r
	}()
	var got result
	answered := testwait.Poll(10*time.Second, func() bool {
		select {
		case got = <-done:
			return true
		default:
			return false
		}
	})
	if !answered {
		t.Fatal("the reply did not come back while the handler was still working after its last reply")
	}
	if got.err != "" || len(got.m.Messages) != 1 || got.m.Messages[0].Text != "got: hello" {
		t.Fatalf("reply: %+v %s", got.m, got.err)
	}
	running := func() bool {
		_, env := d.get("/api/agents/Lasty/runs?roomId=" + got.m.RoomID)
		var runs struct {
			Runs []struct{ Status string }
		}
		_ = json.Unmarshal(env.Data, &runs)
		return len(runs.Runs) == 1 && runs.Runs[0].Status == "running"
	}
	if !running() {
		t.Fatal("the run is not in the timeline as running while its handler works")
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "the run to end once its handler returns", func() bool { return !running() })
}

// TestLastReplyOfOneOfTwoHandlers: when two plugins handle the message, one
// handler's last reply does not end the others': the answer waits for
// both handlers and carries both replies.
func TestLastReplyOfOneOfTwoHandlers(t *testing.T) {
	t.Parallel()
	gate := filepath.Join(t.TempDir(), "open")
	char := writeCharacter(t, map[string]any{"name": "Twice", "bio": "A test agent.",
		"plugins": []string{"sql", "offline", "bootstrap", "lastreply"}, "settings": map[string]any{"LASTREPLY_GATE": gate}})
	d := startDaemon(t, daemonOpts{pluginDir: pluginDirWith(t, bins.lastreply), characters: []string{char}})
	defer os.WriteFile(gate, nil, 0o600)

	done := make(chan messagesData, 1)
	go func() {
		_, env := d.post("/api/agents/Twice/messages", map[string]string{"text": "hello", "userName": "tester"})
		var m messagesData
		_ = json.Unmarshal(env.Data, &m)
		done <- m
	}()
	// Both replies are stored before the gate opens: lastreply's at once,
	// bootstrap's after its model call.
	agent := sdk.StringToUUID("Twice")
	room := sdk.CreateUniqueUUID(agent, "api-dm:tester")
	testwait.For(t, 20*time.Second, "both replies stored", func() bool {
		n := 0
		for _, m := range d.roomMemories(agent, room, "messages") {
			if m.EntityID == agent {
				n++
			}
		}
		return n == 2
	})
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var m messagesData
	if !testwait.Poll(20*time.Second, func() bool {
		select {
		case m = <-done:
			return true
		default:
			return false
		}
	}) {
		t.Fatal("no answer after both handlers returned")
	}
	if len(m.Messages) != 2 {
		t.Fatalf("the answer should carry both handlers' replies: %+v", m.Messages)
	}
}
