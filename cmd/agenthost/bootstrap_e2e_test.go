//go:build linux

package main

// End-to-end tests of the bootstrap plugin's pipeline: the real daemon, the
// real bootstrap and sql plugin processes, and the scripted test plugin as
// the model (answering from a script) and as a chat platform (messages come
// from files, what the agent sends goes to a file). Each test checks what
// was stored (the memory API), sent (the platform's outbox, the API's
// replies) and logged (the timeline API, the daemon's debug log).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/sdk"
)

// rule is one answer of the scripted model (see internal/testplugin/scripted).
type rule struct {
	Model       string   `json:"model,omitempty"`
	Contains    []string `json:"contains,omitempty"`
	NotContains []string `json:"notContains,omitempty"`
	Answer      string   `json:"answer"`
	Times       int      `json:"times,omitempty"`
	DelayMS     int      `json:"delayMs,omitempty"`
}

// recv matches a prompt whose message to answer is text from user.
func recv(user, text string) string { return "# Received Message\n" + user + ": " + text }

// shouldRespondQ matches the should-respond prompt.
var shouldRespondQ = []string{"RESPOND", "IGNORE", "STOP"}

func respondAnswer(action string) string {
	return "<response><name>x</name><reasoning>scripted</reasoning><action>" + action + "</action></response>"
}

// bootAgent is one scripted agent of a test, with its platform files.
type bootAgent struct {
	t                      *testing.T
	name, id               string
	inbox, outbox, prompts string
	settings               map[string]any
	plugins                []string
	templates              map[string]string
	scriptPath             string
	inboxSeq               atomic.Int64
}

func newBootAgent(t *testing.T, name string, rules []rule, settings map[string]any, extraPlugins ...string) *bootAgent {
	t.Helper()
	dir := t.TempDir()
	b := &bootAgent{t: t, name: name, id: sdk.StringToUUID(name), inbox: filepath.Join(dir, "inbox"),
		outbox: filepath.Join(dir, "outbox.jsonl"), prompts: filepath.Join(dir, "prompts.jsonl"),
		scriptPath: filepath.Join(dir, "script.json")}
	if err := os.Mkdir(b.inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{"rules": rules})
	if err := os.WriteFile(b.scriptPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	b.settings = map[string]any{"SCRIPTED_INBOX": b.inbox, "SCRIPTED_OUTBOX": b.outbox, "SCRIPTED_PROMPT_LOG": b.prompts,
		"SCRIPTED_SCRIPT": b.scriptPath, "DISABLE_REFLECTION": "true"}
	for k, v := range settings {
		b.settings[k] = v
	}
	b.plugins = append([]string{"sql", "bootstrap", "scripted"}, extraPlugins...)
	return b
}

func (b *bootAgent) character() string {
	ch := map[string]any{"name": b.name, "bio": []string{b.name + " is a test agent."}, "plugins": b.plugins, "settings": b.settings}
	if b.templates != nil {
		ch["templates"] = b.templates
	}
	return writeCharacter(b.t, ch)
}

// imagegenBin builds the image model test plugin once.
var imagegenBin = sync.OnceValues(func() (string, error) {
	out := filepath.Join(filepath.Dir(bins.scripted), "agenthost-plugin-imagegen")
	cmd := exec.Command("go", "build", "-o", out, "../../internal/testplugin/imagegen")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build imagegen: %v\n%s", err, b)
	}
	return out, nil
})

func startBoot(t *testing.T, agents ...*bootAgent) *daemon {
	t.Helper()
	binsList := []string{bins.scripted}
	for _, a := range agents {
		for _, p := range a.plugins {
			if p == "imagegen" {
				bin, err := imagegenBin()
				if err != nil {
					t.Fatal(err)
				}
				binsList = append(binsList, bin)
				goto done
			}
		}
	}
done:
	var chars []string
	for _, a := range agents {
		chars = append(chars, a.character())
	}
	return startDaemon(t, daemonOpts{pluginDir: pluginDirWith(t, binsList...), characters: chars})
}

// deliver puts messages on the platform for the agent, in one file: they
// are delivered at once.
func (b *bootAgent) deliver(msgs ...sdk.IncomingMessage) {
	b.t.Helper()
	raw, err := json.Marshal(msgs)
	if err != nil {
		b.t.Fatal(err)
	}
	n := b.inboxSeq.Add(1)
	tmp := filepath.Join(b.inbox, fmt.Sprintf("%04d.tmp", n))
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		b.t.Fatal(err)
	}
	if err := os.Rename(tmp, strings.TrimSuffix(tmp, ".tmp")+".json"); err != nil {
		b.t.Fatal(err)
	}
}

func groupMsg(id, user, text string) sdk.IncomingMessage {
	return sdk.IncomingMessage{Source: "scripted", MessageID: id, ChannelID: "general", ServerID: "guild-1", UserID: user,
		UserName: user, Content: sdk.Content{Text: text}, ChannelType: sdk.ChannelGroup, RoomName: "general", WorldName: "Guild"}
}

func readJSONL(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%s: %v: %s", path, err, line)
		}
		out = append(out, m)
	}
	return out
}

// sent is what the agent sent to the platform (not task records).
func (b *bootAgent) sent() []map[string]any {
	var out []map[string]any
	for _, m := range readJSONL(b.t, b.outbox) {
		if _, ok := m["content"]; ok {
			out = append(out, m)
		}
	}
	return out
}

func sentText(m map[string]any) string {
	c, _ := m["content"].(map[string]any)
	s, _ := c["text"].(string)
	return s
}

// promptsOf lists the scripted model's calls of a type ("" for all).
func (b *bootAgent) promptsOf(typ string) []map[string]any {
	var out []map[string]any
	for _, m := range readJSONL(b.t, b.prompts) {
		if typ == "" || m["type"] == typ {
			out = append(out, m)
		}
	}
	return out
}

// runEvent is one event of the timeline (log type "event").
type runEvent struct {
	Event, RunID, Status, Reason, MessageID, Error string
}

func (d *daemon) events(agentID string) []runEvent {
	d.t.Helper()
	code, env := d.get("/api/agents/" + agentID + "/logs?type=event&count=1000")
	if code != http.StatusOK {
		d.t.Fatalf("logs: %d %+v", code, env.Error)
	}
	var data struct {
		Logs []struct {
			Body map[string]any `json:"body"`
		} `json:"logs"`
	}
	if err := json.Unmarshal(env.Data, &data); err != nil {
		d.t.Fatal(err)
	}
	var out []runEvent
	for i := len(data.Logs) - 1; i >= 0; i-- { // oldest first
		b := data.Logs[i].Body
		s := func(k string) string { v, _ := b[k].(string); return v }
		out = append(out, runEvent{Event: s("event"), RunID: s("runId"), Status: s("status"), Reason: s("reason"),
			MessageID: s("messageId"), Error: s("error")})
	}
	return out
}

// ended lists the RUN_ENDED events.
func ended(evs []runEvent) []runEvent {
	var out []runEvent
	for _, e := range evs {
		if e.Event == sdk.EventRunEnded {
			out = append(out, e)
		}
	}
	return out
}

// checkRunsEnded checks that every run that started also ended, once.
func checkRunsEnded(t *testing.T, evs []runEvent) {
	t.Helper()
	started, done := map[string]int{}, map[string]int{}
	for _, e := range evs {
		switch e.Event {
		case sdk.EventRunStarted:
			started[e.RunID]++
		case sdk.EventRunEnded:
			done[e.RunID]++
		}
	}
	for id, n := range started {
		if n != 1 || done[id] != 1 {
			t.Errorf("run %s: started %d times, ended %d times", id, n, done[id])
		}
	}
	for id := range done {
		if started[id] == 0 {
			t.Errorf("run %s ended without starting", id)
		}
	}
}

// waitEnded waits until n runs ended and returns the events.
func (d *daemon) waitEnded(agentID string, n int) []runEvent {
	d.t.Helper()
	var evs []runEvent
	testwait.For(d.t, 30*time.Second, fmt.Sprintf("%d ended runs", n), func() bool {
		evs = d.events(agentID)
		return len(ended(evs)) >= n
	})
	return evs
}

type storedMemory struct {
	ID       string         `json:"id"`
	EntityID string         `json:"entityId"`
	Content  map[string]any `json:"content"`
}

func (m storedMemory) text() string { s, _ := m.Content["text"].(string); return s }

func (d *daemon) roomMemories(agentID, roomID, table string) []storedMemory {
	d.t.Helper()
	path := "/api/memory/" + agentID + "/memories?count=200&roomId=" + roomID
	if table != "" {
		path += "&tableName=" + table
	}
	code, env := d.get(path)
	if code != http.StatusOK {
		d.t.Fatalf("memories: %d %+v", code, env.Error)
	}
	var data struct {
		Memories []storedMemory `json:"memories"`
	}
	if err := json.Unmarshal(env.Data, &data); err != nil {
		d.t.Fatal(err)
	}
	return data.Memories
}

func countText(ms []storedMemory, text string) int {
	n := 0
	for _, m := range ms {
		if m.text() == text {
			n++
		}
	}
	return n
}

// TestBootstrapShouldRespond: in a group, a message that does not name the
// agent is put to TEXT_SMALL, whose IGNORE is stored and not sent; RESPOND
// is answered; a message naming the agent and a DM are answered without the
// question. Every run starts and ends in the timeline.
func TestBootstrapShouldRespond(t *testing.T) {
	t.Parallel()
	ag := newBootAgent(t, "Scripty", []rule{
		{Model: "TEXT_SMALL", Contains: append([]string{recv("ann", "nice weather today")}, shouldRespondQ...), Answer: respondAnswer("IGNORE")},
		{Model: "TEXT_SMALL", Contains: shouldRespondQ, Answer: respondAnswer("RESPOND")},
	}, nil)
	d := startBoot(t, ag)
	room := sdk.CreateUniqueUUID(ag.id, "general")

	ag.deliver(groupMsg("m1", "ann", "nice weather today"))
	d.waitEnded(ag.id, 1)
	ag.deliver(groupMsg("m2", "ann", "how do I bake bread?"))
	d.waitEnded(ag.id, 2)
	ag.deliver(groupMsg("m3", "ann", "Scripty, what time is it?"))
	d.waitEnded(ag.id, 3)
	dm := sdk.IncomingMessage{Source: "scripted", MessageID: "m4", ChannelID: "dm-ann", ServerID: "dm-ann", UserID: "ann",
		UserName: "ann", Content: sdk.Content{Text: "just us here"}, ChannelType: sdk.ChannelDM}
	ag.deliver(dm)
	evs := d.waitEnded(ag.id, 4)
	checkRunsEnded(t, evs)

	var reasons []string
	for _, e := range ended(evs) {
		reasons = append(reasons, e.Reason)
	}
	if reasons[0] != "decided not to respond" || reasons[1] != "" || reasons[2] != "" || reasons[3] != "" {
		t.Errorf("RUN_ENDED reasons = %q", reasons)
	}
	testwait.For(t, 10*time.Second, "3 replies", func() bool { return len(ag.sent()) == 3 })
	sent := ag.sent()
	for i, want := range []string{"how do I bake bread?", "Scripty, what time is it?", "just us here"} {
		if got := sentText(sent[i]); got != "scripted reply to: "+want {
			t.Errorf("reply %d = %q", i, got)
		}
	}
	if tg, _ := sent[0]["target"].(map[string]any); tg["channelId"] != "general" || tg["source"] != "scripted" {
		t.Errorf("the reply must go back to the message's channel: %v", sent[0]["target"])
	}
	if tg, _ := sent[2]["target"].(map[string]any); tg["channelId"] != "dm-ann" {
		t.Errorf("the DM reply went to %v", sent[2]["target"])
	}
	small := ag.promptsOf("TEXT_SMALL")
	if len(small) != 2 {
		t.Fatalf("want TEXT_SMALL asked for the two unnamed group messages only, got %d calls", len(small))
	}
	if p, _ := small[0]["prompt"].(string); !strings.Contains(p, "# Received Message\nann: nice weather today") {
		t.Errorf("should-respond prompt lacks the received message:\n%s", p)
	}
	mems := d.roomMemories(ag.id, room, "")
	if countText(mems, "nice weather today") != 1 || countText(mems, "scripted reply to: how do I bake bread?") != 1 {
		t.Errorf("stored: %+v", mems)
	}
	ignored := 0
	for _, m := range mems {
		if acts, _ := m.Content["actions"].([]any); len(acts) == 1 && acts[0] == "IGNORE" && m.EntityID == ag.id {
			ignored++
		}
	}
	if ignored != 1 {
		t.Errorf("want the decision not to respond stored once, got %d", ignored)
	}
}

// TestBootstrapBypassIsConfigurable: SHOULD_RESPOND_BYPASS_TYPES adds room
// types that are always answered.
func TestBootstrapBypassIsConfigurable(t *testing.T) {
	t.Parallel()
	ag := newBootAgent(t, "Scripty", []rule{{Model: "TEXT_SMALL", Contains: shouldRespondQ, Answer: respondAnswer("IGNORE")}},
		map[string]any{"SHOULD_RESPOND_BYPASS_TYPES": "GROUP"})
	d := startBoot(t, ag)
	ag.deliver(groupMsg("m1", "ann", "anyone around?"))
	d.waitEnded(ag.id, 1)
	testwait.For(t, 10*time.Second, "the reply", func() bool { return len(ag.sent()) == 1 })
	if n := len(ag.promptsOf("TEXT_SMALL")); n != 0 {
		t.Errorf("a bypassed room type must not be put to TEXT_SMALL, got %d calls", n)
	}
}

// TestBootstrapExactlyOnce delivers one message twice at once and once
// more later: it is stored once, answered once, and the other deliveries
// end their runs as duplicates.
func TestBootstrapExactlyOnce(t *testing.T) {
	t.Parallel()
	ag := newBootAgent(t, "Scripty", []rule{{Model: "TEXT_LARGE", DelayMS: 300,
		Answer: "<response><thought>t</thought><actions>REPLY</actions><text>only once</text></response>"}}, nil)
	d := startBoot(t, ag)
	msg := groupMsg("dup-1", "ann", "Scripty, answer me once")
	ag.deliver(msg, msg)
	d.waitEnded(ag.id, 2)
	ag.deliver(msg)
	evs := d.waitEnded(ag.id, 3)
	checkRunsEnded(t, evs)
	dups := 0
	for _, e := range ended(evs) {
		if e.Reason == "duplicate delivery" {
			dups++
		}
	}
	if dups != 2 {
		t.Errorf("want 2 runs ended as duplicates, got %+v", ended(evs))
	}
	// A run sends its replies before its RUN_ENDED, and all three have
	// ended: the outbox holds every reply there will be.
	if s := ag.sent(); len(s) != 1 || sentText(s[0]) != "only once" {
		t.Errorf("want one reply, got %+v", s)
	}
	mems := d.roomMemories(ag.id, sdk.CreateUniqueUUID(ag.id, "general"), "")
	if countText(mems, "Scripty, answer me once") != 1 || countText(mems, "only once") != 1 {
		t.Errorf("want the message and the reply stored once each, got %+v", mems)
	}
	if n := len(ag.promptsOf("TEXT_LARGE")); n != 1 {
		t.Errorf("want one model call, got %d", n)
	}
}

// TestBootstrapAgentsDoNotLoop puts two agents in one room of a platform
// that shows each what the other says, as a bot. By default each answers
// the person once and never the other agent; with RESPOND_TO_AGENTS they
// talk, but stop after MAX_AGENT_TURNS.
func TestBootstrapAgentsDoNotLoop(t *testing.T) {
	t.Parallel()
	rules := []rule{{Model: "TEXT_SMALL", Contains: shouldRespondQ, Answer: respondAnswer("RESPOND")}}
	run := func(t *testing.T, settings map[string]any) (a, b *bootAgent, d *daemon) {
		s := map[string]any{"SCRIPTED_RELAY": "true"}
		for k, v := range settings {
			s[k] = v
		}
		a, b = newBootAgent(t, "Alpha", rules, s), newBootAgent(t, "Beta", rules, s)
		d = startBoot(t, a, b)
		msg := groupMsg("hello-1", "ann", "hello everyone")
		a.deliver(msg)
		b.deliver(msg)
		// Let the conversation run its course: quiet for two seconds.
		last, quietSince := -1, time.Now()
		testwait.For(t, 60*time.Second, "the agents to fall quiet", func() bool {
			n := len(a.sent()) + len(b.sent())
			if n != last {
				last, quietSince = n, time.Now()
			}
			return time.Since(quietSince) > 2*time.Second
		})
		return a, b, d
	}
	t.Run("default", func(t *testing.T) {
		a, b, d := run(t, nil)
		if len(a.sent()) != 1 || len(b.sent()) != 1 {
			t.Fatalf("each agent should answer the person once: Alpha sent %d, Beta sent %d", len(a.sent()), len(b.sent()))
		}
		for _, ag := range []*bootAgent{a, b} {
			evs := d.waitEnded(ag.id, 2)
			checkRunsEnded(t, evs)
			found := false
			for _, e := range ended(evs) {
				found = found || e.Reason == "message from another agent"
			}
			if !found {
				t.Errorf("%s: the other agent's message should end a run unanswered: %+v", ag.name, ended(evs))
			}
			// The other agent's message is stored, for context.
			mems := d.roomMemories(ag.id, sdk.CreateUniqueUUID(ag.id, "general"), "")
			other := "scripted reply to: hello everyone"
			if countText(mems, other) != 2 {
				t.Errorf("%s: want its own reply and the other's stored, got %+v", ag.name, mems)
			}
		}
	})
	t.Run("bounded", func(t *testing.T) {
		a, b, _ := run(t, map[string]any{"RESPOND_TO_AGENTS": "true", "MAX_AGENT_TURNS": "2"})
		total := len(a.sent()) + len(b.sent())
		// Each answers the person, then at most two messages of the other.
		if total <= 2 || total > 6 {
			t.Fatalf("want the agents to talk a little and stop, got %d messages", total)
		}
	})
}

// TestBootstrapActionChain: the model's actions, written in any case and
// with commas inside parameters, run in order; REPLY sends the response's
// text without a second model call; each result reaches the next action;
// each action is announced, logged and stored as an action_result, apart
// from the room's messages, which hold the message and the reply once each.
func TestBootstrapActionChain(t *testing.T) {
	t.Parallel()
	ag := newBootAgent(t, "Scripty", []rule{{Model: "TEXT_LARGE", Contains: []string{recv("tester", "do the chain")},
		Answer: `<response><thought>chain</thought><actions>reply, Scripted_Task(label: "a, b"), none, REPLY</actions><providers></providers><text>on it</text></response>`}}, nil)
	d := startBoot(t, ag)
	m := d.say(ag.name, "do the chain")
	if len(m.Messages) != 1 || m.Messages[0].Text != "on it" {
		t.Fatalf("want the one reply, got %+v", m.Messages)
	}
	if n := len(ag.promptsOf("TEXT_LARGE")); n != 1 {
		t.Errorf("REPLY with text must not ask the model again: %d calls", n)
	}
	var task map[string]any
	for _, r := range readJSONL(t, ag.outbox) {
		if r["worker"] == "SCRIPTED_TASK" {
			task = r
		}
	}
	if task == nil {
		t.Fatal("SCRIPTED_TASK did not run")
	}
	if task["previous"] != "REPLY" || task["lastReply"] != "on it" {
		t.Errorf("the second action should see the first one's result and values: %v", task)
	}
	msgs := d.roomMemories(ag.id, m.RoomID, "")
	if len(msgs) != 2 || countText(msgs, "do the chain") != 1 || countText(msgs, "on it") != 1 {
		t.Errorf("the room's messages should be the message and the reply, once each: %+v", msgs)
	}
	var results []storedMemory
	for _, mem := range d.roomMemories(ag.id, m.RoomID, "action_results") {
		if mem.Content["type"] == "action_result" {
			results = append(results, mem)
		}
	}
	if len(results) != 3 {
		t.Fatalf("want 3 action results (REPLY once), got %d: %+v", len(results), results)
	}
	steps := map[string]string{}
	for _, r := range results {
		name, _ := r.Content["actionName"].(string)
		step, _ := r.Content["planStep"].(string)
		steps[name] = step
	}
	if steps["REPLY"] != "1/3" || steps["SCRIPTED_TASK"] != "2/3" || steps["NONE"] != "3/3" {
		t.Errorf("plan steps = %v", steps)
	}
	// The daemon logs every event of the run before it answers, but its
	// output reaches d.out through a pipe that this process copies a
	// moment later. The run's one RUN_ENDED is logged after its actions'
	// events, so once it is in d.out all of them are.
	waitOutput(t, d, "type=RUN_ENDED")
	out := d.out.String()
	for _, ev := range []string{"type=ACTION_STARTED", "type=ACTION_COMPLETED"} {
		if strings.Count(out, ev) != 3 {
			t.Errorf("want 3 %s in the daemon log, got %d", ev, strings.Count(out, ev))
		}
	}
	// The timeline is written in the background, a moment after the reply.
	testwait.For(t, 10*time.Second, "3 successful action log entries", func() bool {
		code, env := d.get("/api/agents/" + ag.id + "/logs?type=action&count=50")
		return code == http.StatusOK && strings.Count(string(env.Data), `"success":true`) == 3
	})
}

// TestBootstrapStaleReplyDropped: a reply that took longer than the next
// message in the room arrived is dropped; the run still ends.
func TestBootstrapStaleReplyDropped(t *testing.T) {
	t.Parallel()
	marks := t.TempDir()
	ag := newBootAgent(t, "Scripty", []rule{{Model: "TEXT_LARGE", Contains: []string{recv("tester", "slow question")}, DelayMS: 1500,
		Answer: "<response><actions>REPLY</actions><text>late answer</text></response>"}}, map[string]any{"SCRIPTED_MARK_DIR": marks})
	d := startBoot(t, ag)
	first := make(chan messagesData, 1)
	go func() { first <- d.say(ag.name, "slow question") }()
	testwait.For(t, 20*time.Second, "the slow model call", func() bool {
		_, err := os.Stat(filepath.Join(marks, "model-started"))
		return err == nil
	})
	second := d.say(ag.name, "quick question")
	if len(second.Messages) != 1 || second.Messages[0].Text != "scripted reply to: quick question" {
		t.Fatalf("second: %+v", second.Messages)
	}
	if got := <-first; len(got.Messages) != 0 {
		t.Fatalf("the stale reply should be dropped, got %+v", got.Messages)
	}
	evs := d.waitEnded(ag.id, 2)
	checkRunsEnded(t, evs)
	if e := ended(evs); e[len(e)-1].Reason != "a newer message arrived in the room" {
		t.Errorf("RUN_ENDED = %+v", e)
	}
	if n := countText(d.roomMemories(ag.id, second.RoomID, ""), "late answer"); n != 0 {
		t.Error("the dropped reply must not be stored")
	}
}

// TestBootstrapRetryAndPlainText: an unreadable answer is asked for again;
// a plain-text answer is a reply.
func TestBootstrapRetryAndPlainText(t *testing.T) {
	t.Parallel()
	ag := newBootAgent(t, "Scripty", []rule{
		{Model: "TEXT_LARGE", Times: 1, Answer: "<response><thought>I was about to"},
		{Model: "TEXT_LARGE", Answer: "Just plain words, no markup."},
	}, nil)
	d := startBoot(t, ag)
	m := d.say(ag.name, "hello?")
	if len(m.Messages) != 1 || m.Messages[0].Text != "Just plain words, no markup." {
		t.Fatalf("got %+v", m.Messages)
	}
	calls := ag.promptsOf("TEXT_LARGE")
	if len(calls) != 2 {
		t.Fatalf("want the broken answer asked for again once, got %d calls", len(calls))
	}
	if p, _ := calls[1]["prompt"].(string); !strings.Contains(p, "could not be read") {
		t.Error("the second prompt should say the first answer could not be read")
	}
	if calls[0]["runId"] != calls[1]["runId"] || calls[0]["runId"] == "" {
		t.Error("both calls belong to the message's run")
	}
}

// TestBootstrapEarlyExitsEndRuns: the agent's own message, a muted room and
// a run out of time each end their run, with a reason or a status.
func TestBootstrapEarlyExitsEndRuns(t *testing.T) {
	t.Parallel()
	ag := newBootAgent(t, "Scripty", []rule{
		{Model: "TEXT_LARGE", Contains: []string{recv("ann", "please be quiet")},
			Answer: "<response><actions>REPLY, MUTE_ROOM</actions><text>ok, going quiet</text></response>"},
		{Model: "TEXT_SMALL", Contains: []string{"Confirm a change"}, Answer: "<decision>YES</decision>"},
		{Model: "TEXT_SMALL", Contains: shouldRespondQ, Answer: respondAnswer("RESPOND")},
		{Model: "TEXT_LARGE", Contains: []string{recv("user", "a very slow question")}, DelayMS: 3000, Answer: "<response><actions>REPLY</actions><text>too late</text></response>"},
	}, map[string]any{"RUN_TIMEOUT_MS": "700"})
	d := startBoot(t, ag)
	// Its own message, as a platform that echoes the agent's messages sends it.
	own := groupMsg("own-1", ag.id, "something I said")
	own.UserName = ag.name
	ag.deliver(own)
	d.waitEnded(ag.id, 1)
	ag.deliver(groupMsg("q-1", "ann", "please be quiet"))
	d.waitEnded(ag.id, 2)
	ag.deliver(groupMsg("q-2", "ann", "is anyone listening?"))
	d.waitEnded(ag.id, 3)
	ag.deliver(groupMsg("q-3", "ann", "Scripty, are you there?"))
	d.waitEnded(ag.id, 4)
	code, env := d.post("/api/agents/"+ag.name+"/messages", map[string]string{"text": "a very slow question"})
	if code != http.StatusGatewayTimeout {
		t.Errorf("a run out of time: want 504, got %d %+v", code, env.Error)
	}
	evs := d.waitEnded(ag.id, 5)
	checkRunsEnded(t, evs)
	e := ended(evs)
	if e[0].Reason != "own message" || e[2].Reason != "room muted" || e[3].Reason != "" || e[4].Status != "timeout" {
		t.Errorf("RUN_ENDED: %+v", e)
	}
	timeouts := 0
	for _, x := range evs {
		if x.Event == sdk.EventRunTimeout {
			timeouts++
		}
	}
	if timeouts != 1 {
		t.Errorf("want one RUN_TIMEOUT, got %d", timeouts)
	}
	var texts []string
	for _, s := range ag.sent() {
		texts = append(texts, sentText(s))
	}
	if strings.Join(texts, "|") != "ok, going quiet|scripted reply to: Scripty, are you there?" {
		t.Errorf("sent = %q", texts)
	}
	if mems := d.roomMemories(ag.id, sdk.CreateUniqueUUID(ag.id, "general"), ""); countText(mems, "something I said") != 0 {
		t.Error("the agent's own echoed message must not be stored again")
	}
}

// TestBootstrapProvidersAndReflection: reflection stores facts and a
// relationship every few messages; providers the model asks for (FACTS,
// ENTITIES, RELATIONSHIPS) are composed for the reply it then writes.
func TestBootstrapProvidersAndReflection(t *testing.T) {
	t.Parallel()
	ann := sdk.CreateUniqueUUID(sdk.StringToUUID("Scripty"), "api:ann")
	ag := newBootAgent(t, "Scripty", []rule{
		{Model: "TEXT_SMALL", Contains: []string{"Reflect on the conversation"}, Times: 1, Answer: `<response><thought>t</thought>
<facts><fact><claim>ann drinks green tea every morning</claim><type>fact</type><in_bio>false</in_bio><already_known>false</already_known></fact></facts>
<relationships><relationship><sourceEntityId>` + ann + `</sourceEntityId><targetEntityId>bob</targetEntityId><tags>friend</tags></relationship></relationships></response>`},
		{Model: "TEXT_SMALL", Contains: []string{"Reflect on the conversation"}, Times: 1, Answer: `<response><thought>t</thought>
<facts><fact><claim>ann walks to work</claim><type>fact</type><in_bio>false</in_bio><already_known>false</already_known></fact></facts></response>`},
		{Model: "TEXT_LARGE", Contains: []string{recv("ann", "what do you know about my mornings?")}, NotContains: []string{"Write Scripty's reply"},
			Answer: "<response><thought>look it up</thought><actions>REPLY</actions><providers>FACTS, ENTITIES, RELATIONSHIPS</providers><text></text></response>"},
		{Model: "TEXT_LARGE", Contains: []string{"Write Scripty's reply"}, Answer: "<response><thought>t</thought><message>you like green tea</message></response>"},
	}, map[string]any{"DISABLE_REFLECTION": "false", "REFLECTION_INTERVAL": "3"}, "offline")
	d := startBoot(t, ag)
	m := d.sayAs(ag.name, "ann", "", "I drink green tea every morning")
	// Bob speaks in the same room, so he is someone the reflection can name.
	d.sayAs(ag.name, "bob", m.RoomID, "hi, I am bob")
	testwait.For(t, 20*time.Second, "a fact", func() bool { return len(d.roomMemories(ag.id, m.RoomID, "facts")) == 1 })
	facts := d.roomMemories(ag.id, m.RoomID, "facts")
	if facts[0].text() != "ann drinks green tea every morning" {
		t.Fatalf("facts = %+v", facts)
	}
	r := d.sayAs(ag.name, "ann", m.RoomID, "what do you know about my mornings?")
	if len(r.Messages) != 1 || r.Messages[0].Text != "you like green tea" {
		t.Fatalf("reply: %+v", r.Messages)
	}
	var replyPrompt string
	for _, p := range ag.promptsOf("TEXT_LARGE") {
		if s, _ := p["prompt"].(string); strings.Contains(s, "Write Scripty's reply") {
			replyPrompt = s
		}
	}
	for _, want := range []string{"ann drinks green tea every morning", "# People in the Room", "bob: friend"} {
		if !strings.Contains(replyPrompt, want) {
			t.Errorf("the reply's prompt lacks %q (providers asked for):\n%s", want, replyPrompt)
		}
	}
	// The reflection names the room's people, read in one call.
	var reflectPrompt string
	for _, p := range ag.promptsOf("TEXT_SMALL") {
		if s, _ := p["prompt"].(string); strings.Contains(s, "Reflect on the conversation") {
			reflectPrompt = s
		}
	}
	for _, want := range []string{"ID: " + ann, "bob"} {
		if !strings.Contains(reflectPrompt, want) {
			t.Errorf("the reflection's prompt lacks %q:\n%s", want, reflectPrompt)
		}
	}
	// The next reflection knows what the first one stored: the fact and the
	// relationship, which later reflections reuse from one to the next
	// until this plugin writes, are read again after its writes.
	reflections := func() []string {
		var out []string
		for _, p := range ag.promptsOf("TEXT_SMALL") {
			if s, _ := p["prompt"].(string); strings.Contains(s, "Reflect on the conversation") {
				out = append(out, s)
			}
		}
		return out
	}
	// At a conversation's pace: sent one right after the other, messages
	// leave the evaluations no quiet moment, and those held back run in a
	// batch where one reflection covers the rest.
	for i := range 6 {
		d.sayAs(ag.name, "ann", m.RoomID, fmt.Sprintf("more about me, part %d", i))
		time.Sleep(150 * time.Millisecond)
	}
	testwait.For(t, 20*time.Second, "a third reflection", func() bool { return len(reflections()) >= 3 })
	second, third := reflections()[1], reflections()[2]
	for _, want := range []string{"- ann drinks green tea every morning", "friend (1 interactions)"} {
		if !strings.Contains(second, want) {
			t.Errorf("the second reflection's prompt lacks %q:\n%s", want, second)
		}
	}
	// The second stored a fact and no relationship.
	if !strings.Contains(third, "- ann walks to work") {
		t.Errorf("the third reflection's prompt lacks the fact the second stored:\n%s", third)
	}
}

// TestBootstrapTasks: queued tasks run once, repeating ones again and
// again; a task waiting for a choice runs with the option the owner picks,
// through CHOOSE_OPTION; the workers are actions of another plugin.
func TestBootstrapTasks(t *testing.T) {
	t.Parallel()
	tasks, _ := json.Marshal([]map[string]any{
		{"name": "SCRIPTED_TASK", "tags": []string{"queue"}, "metadata": map[string]any{"label": "once"}},
		{"name": "SCRIPTED_TASK", "tags": []string{"queue", "repeat", "immediate"}, "metadata": map[string]any{"label": "repeat", "updateInterval": 300}},
		{"name": "SCRIPTED_TASK", "description": "pick a colour", "tags": []string{"AWAITING_CHOICE"},
			"metadata": map[string]any{"label": "choice", "options": []map[string]string{{"name": "blue"}, {"name": "red"}}}},
	})
	ag := newBootAgent(t, "Scripty", []rule{
		{Model: "TEXT_LARGE", Contains: []string{recv("tester", "schedule things")},
			Answer: "<response><actions>REPLY, SCRIPTED_SCHEDULE</actions><text>scheduled</text></response>"},
		{Model: "TEXT_LARGE", Contains: []string{recv("tester", "I pick blue")},
			Answer: "<response><actions>CHOOSE_OPTION</actions><text></text></response>"},
		{Model: "TEXT_SMALL", Contains: []string{"Pending Tasks"}, Answer: "<response><taskId></taskId><selectedOption>Blue</selectedOption></response>"},
	}, map[string]any{"SCRIPTED_TASKS": string(tasks), "TASK_TICK_MS": "100"})
	d := startBoot(t, ag)
	d.say(ag.name, "schedule things")
	count := func(label string) int {
		n := 0
		for _, r := range readJSONL(t, ag.outbox) {
			if r["label"] == label {
				n++
			}
		}
		return n
	}
	testwait.For(t, 20*time.Second, "the repeating task to run 3 times", func() bool { return count("repeat") >= 3 })
	if n := count("once"); n != 1 {
		t.Errorf("the queued task ran %d times, want 1", n)
	}
	if n := count("choice"); n != 0 {
		t.Errorf("the choice task ran before a choice")
	}
	r := d.say(ag.name, "I pick blue")
	if len(r.Messages) != 1 || !strings.Contains(r.Messages[0].Text, "Selected blue") {
		t.Fatalf("the choice should be confirmed: %+v", r.Messages)
	}
	var choice map[string]any
	for _, rec := range readJSONL(t, ag.outbox) {
		if rec["label"] == "choice" {
			choice = rec
		}
	}
	if choice == nil || choice["option"] != "blue" {
		t.Fatalf("the choice task should run with its option: %v", choice)
	}
	// The choice is made once: offered no more.
	var prompt string
	for _, p := range ag.promptsOf("TEXT_LARGE") {
		prompt, _ = p["prompt"].(string)
	}
	if !strings.Contains(prompt, "Pending Choices") {
		t.Error("the prompt before the choice should list the pending choice")
	}
	d.say(ag.name, "anything left?")
	calls := ag.promptsOf("TEXT_LARGE")
	if last, _ := calls[len(calls)-1]["prompt"].(string); strings.Contains(last, "Pending Choices") || strings.Contains(last, "- CHOOSE_OPTION:") {
		t.Error("a chosen task must not be offered again")
	}
}

// TestBootstrapImageModel: GENERATE_IMAGE is offered only to an agent with
// an IMAGE model, and sends the image as an attachment; an image a user
// sends is described before the message is stored.
func TestBootstrapImageModel(t *testing.T) {
	t.Parallel()
	painter := newBootAgent(t, "Painter", []rule{
		{Model: "TEXT_LARGE", Contains: []string{recv("ann", "please draw a fox")}, NotContains: []string{"image generator"},
			Answer: "<response><actions>GENERATE_IMAGE</actions><text></text></response>"},
		{Model: "TEXT_LARGE", Contains: []string{"image generator"}, Answer: "<response><prompt>a red fox in snow</prompt></response>"},
		{Model: "TEXT_LARGE", Contains: []string{recv("ann", "what was in my picture?")}, NotContains: []string{"Write Painter's reply"},
			Answer: "<response><actions>REPLY</actions><providers>ATTACHMENTS</providers><text></text></response>"},
		{Model: "TEXT_LARGE", Contains: []string{"Write Painter's reply"}, Answer: "<response><message>a cat</message></response>"},
	}, nil, "imagegen")
	plain := newBootAgent(t, "Plain", nil, nil)
	d := startBoot(t, painter, plain)

	d.say(plain.name, "hi")
	pp, _ := plain.promptsOf("TEXT_LARGE")[0]["prompt"].(string)
	if strings.Contains(pp, "GENERATE_IMAGE") || !strings.Contains(pp, "- REPLY:") {
		t.Errorf("an agent without an IMAGE model must not be offered GENERATE_IMAGE:\n%s", pp)
	}
	painter.deliver(sdk.IncomingMessage{Source: "scripted", MessageID: "img-1", ChannelID: "dm-ann", ServerID: "dm-ann",
		UserID: "ann", UserName: "ann", ChannelType: sdk.ChannelDM, Content: sdk.Content{Text: "please draw a fox",
			Attachments: []sdk.Media{{ID: "att-1", URL: "https://pictures.invalid/cat.png", ContentType: "image"}}}})
	d.waitEnded(painter.id, 1)
	testwait.For(t, 10*time.Second, "the image", func() bool { return len(painter.sent()) == 1 })
	c, _ := painter.sent()[0]["content"].(map[string]any)
	atts, _ := c["attachments"].([]any)
	if len(atts) != 1 {
		t.Fatalf("want the image attached: %v", c)
	}
	att, _ := atts[0].(map[string]any)
	if att["contentType"] != "image" || !strings.HasPrefix(fmt.Sprint(att["url"]), "data:") || att["description"] != "a red fox in snow" {
		t.Errorf("attachment = %v", att)
	}
	p0, _ := painter.promptsOf("TEXT_LARGE")[0]["prompt"].(string)
	if !strings.Contains(p0, "GENERATE_IMAGE") {
		t.Error("an agent with an IMAGE model should be offered GENERATE_IMAGE")
	}
	// The user's image was described before the message was stored, and
	// the ATTACHMENTS provider, when asked for, shows that description.
	painter.deliver(sdk.IncomingMessage{Source: "scripted", MessageID: "img-2", ChannelID: "dm-ann", ServerID: "dm-ann",
		UserID: "ann", UserName: "ann", ChannelType: sdk.ChannelDM, Content: sdk.Content{Text: "what was in my picture?"}})
	d.waitEnded(painter.id, 2)
	testwait.For(t, 10*time.Second, "the answer", func() bool { return len(painter.sent()) == 2 })
	if got := sentText(painter.sent()[1]); got != "a cat" {
		t.Errorf("reply = %q", got)
	}
	var replyPrompt string
	for _, p := range painter.promptsOf("TEXT_LARGE") {
		if s, _ := p["prompt"].(string); strings.Contains(s, "Write Painter's reply") {
			replyPrompt = s
		}
	}
	for _, want := range []string{"# Attachments", "Description: a picture found at https://pictures.invalid/cat.png", "Name: A test picture"} {
		if !strings.Contains(replyPrompt, want) {
			t.Errorf("the reply's prompt lacks %q:\n%s", want, replyPrompt)
		}
	}
}

// TestBootstrapConcurrentRooms: messages of four rooms handled at once keep
// their own runs: each reply answers its own message, and every model call
// carries its run's id.
func TestBootstrapConcurrentRooms(t *testing.T) {
	t.Parallel()
	ag := newBootAgent(t, "Scripty", []rule{{Model: "TEXT_LARGE", DelayMS: 400,
		Answer: "<response><actions>REPLY</actions><text>re: %s</text></response>"}}, nil)
	d := startBoot(t, ag)
	var wg sync.WaitGroup
	got := make([]messagesData, 4)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = d.sayAs(ag.name, fmt.Sprintf("user%d", i), "", fmt.Sprintf("question %d", i))
		}()
	}
	wg.Wait()
	rooms := map[string]bool{}
	for i, m := range got {
		if len(m.Messages) != 1 || m.Messages[0].Text != fmt.Sprintf("re: question %d", i) {
			t.Errorf("message %d got %+v", i, m.Messages)
		}
		rooms[m.RoomID] = true
	}
	if len(rooms) != 4 {
		t.Errorf("want 4 rooms, got %d", len(rooms))
	}
	runs := map[string]bool{}
	for _, p := range ag.promptsOf("TEXT_LARGE") {
		id, _ := p["runId"].(string)
		if id == "" || runs[id] {
			t.Errorf("model call without its own run id: %q", id)
		}
		runs[id] = true
	}
	if len(runs) != 4 {
		t.Errorf("want 4 runs, got %d", len(runs))
	}
	checkRunsEnded(t, d.waitEnded(ag.id, 4))
}

// sayAs posts a message as a user, in their DM room or the one given.
func (d *daemon) sayAs(agent, user, roomID, text string) messagesData {
	d.t.Helper()
	body := map[string]string{"text": text, "userName": user}
	if roomID != "" {
		body["roomId"] = roomID
	}
	code, env := d.post("/api/agents/"+agent+"/messages", body)
	if code != http.StatusOK || !env.Success {
		d.t.Errorf("message %q: status %d: %+v", text, code, env.Error)
		return messagesData{}
	}
	var m messagesData
	if err := json.Unmarshal(env.Data, &m); err != nil {
		d.t.Error(err)
	}
	return m
}

// TestBootstrapTemplateOverride: a character's template replaces the
// default one.
func TestBootstrapTemplateOverride(t *testing.T) {
	t.Parallel()
	ag := newBootAgent(t, "Scripty", nil, nil)
	ag.templates = map[string]string{"messageHandlerTemplate": "CUSTOM for {{agentName}} ({{#if actionNames}}actions: {{actionNames}}{{/if}})\n{{receivedMessage}}\n<response><actions></actions><text></text></response>"}
	d := startBoot(t, ag)
	d.say(ag.name, "custom please")
	p, _ := ag.promptsOf("TEXT_LARGE")[0]["prompt"].(string)
	if !strings.HasPrefix(p, "CUSTOM for Scripty (actions: REPLY, IGNORE") || !strings.Contains(p, "# Received Message\ntester: custom please") {
		t.Errorf("prompt = %q", p)
	}
}

// TestEvaluatorsRunAfterTheReply: the reply comes back while the
// reflection is still asking its (slow) model, the reflection's result
// lands in the run's timeline afterwards, and a reflection cut off by the
// daemon's death runs at the next start.
func TestEvaluatorsRunAfterTheReply(t *testing.T) {
	t.Parallel()
	reflection := rule{Model: "TEXT_SMALL", Contains: []string{"Reflect on the conversation"}, DelayMS: 4000, Answer: `<response><thought>t</thought>
<facts><fact><claim>ann sails at dawn</claim><type>fact</type><in_bio>false</in_bio><already_known>false</already_known></fact></facts></response>`}
	ag := newBootAgent(t, "Scripty", []rule{reflection}, map[string]any{"DISABLE_REFLECTION": "false", "REFLECTION_INTERVAL": "1", "TASK_TICK_MS": "100"})
	dataDir := t.TempDir()
	pluginDir := pluginDirWith(t, bins.scripted)
	d := startDaemon(t, daemonOpts{dataDir: dataDir, pluginDir: pluginDir, characters: []string{ag.character()}})

	evaluators := func(d *daemon, roomID, runID string) []map[string]any {
		_, env := d.get("/api/agents/Scripty/runs?roomId=" + roomID)
		var runs struct {
			Runs []struct {
				RunID      string
				Evaluators []map[string]any
			}
		}
		_ = json.Unmarshal(env.Data, &runs)
		for _, r := range runs.Runs {
			if r.RunID == runID {
				return r.Evaluators
			}
		}
		return nil
	}
	lastRun := func(d *daemon, roomID string) string {
		var id string
		testwait.For(t, 10*time.Second, "the run in the timeline", func() bool {
			_, env := d.get("/api/agents/Scripty/runs?roomId=" + roomID)
			var runs struct {
				Runs []struct{ RunID, Status string }
			}
			_ = json.Unmarshal(env.Data, &runs)
			if len(runs.Runs) > 0 && runs.Runs[0].Status != "running" {
				id = runs.Runs[0].RunID
				return true
			}
			return false
		})
		return id
	}

	m := d.sayAs("Scripty", "ann", "", "I sail at dawn")
	if len(m.Messages) != 1 {
		t.Fatalf("reply: %+v", m.Messages)
	}
	run := lastRun(d, m.RoomID)
	if ev := evaluators(d, m.RoomID, run); len(ev) != 0 {
		t.Fatalf("the reply came back after the evaluators ran: %v", ev)
	}
	testwait.For(t, 30*time.Second, "the reflection in the run's timeline", func() bool {
		for _, e := range evaluators(d, m.RoomID, run) {
			if e["evaluator"] == "REFLECTION" && e["ran"] == true {
				return true
			}
		}
		return false
	})
	if facts := d.roomMemories(ag.id, m.RoomID, "facts"); len(facts) != 1 {
		t.Fatalf("facts after the reflection: %+v", facts)
	}

	// The next reflection is cut off: the daemon dies while its model
	// thinks. The next daemon runs it. The evaluation is held as a task
	// after the reply has gone: the daemon is killed once it is.
	holds := func() float64 { return scrapeCrossings(t, d.url)["host→plugin sql CreateTask"] }
	held := holds()
	m2 := d.sayAs("Scripty", "ann", m.RoomID, "and I come back at dusk")
	run2 := lastRun(d, m.RoomID)
	testwait.For(t, 10*time.Second, "the second evaluation held as a task", func() bool { return holds() > held })
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d.exited
	if len(m2.Messages) != 1 {
		t.Fatalf("second reply: %+v", m2.Messages)
	}
	d = startDaemon(t, daemonOpts{dataDir: dataDir, pluginDir: pluginDir, characters: []string{ag.character()}})
	testwait.For(t, 30*time.Second, "the cut-off reflection, run by the next daemon", func() bool {
		for _, e := range evaluators(d, m.RoomID, run2) {
			if e["evaluator"] == "REFLECTION" && e["ran"] == true {
				return true
			}
		}
		return false
	})
}
