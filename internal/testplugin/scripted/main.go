// Command scripted is a test plugin: a TEXT_LARGE/TEXT_SMALL model that
// answers from its agent's settings and a script instead of a paid API,
// and a fake chat platform ("scripted" source) whose messages come from
// files and whose sent messages go to a file, so tests can drive the real
// pipeline deterministically and see what it stored, sent and logged.
//
// Model settings (from the character):
//   - SCRIPTED_REPLY: the reply text; "%s" is replaced by the received text.
//   - SCRIPTED_ACTIONS: the actions of the reply, e.g. "REPLY,TS_EXAMPLE_ACTION".
//   - SCRIPTED_PROBE: a string; the reply says whether the prompt contained it.
//   - SCRIPTED_DELAY_MS: wait this long before answering (honouring ctx).
//   - SCRIPTED_MARK_DIR: write "pid" at configure and "model-started" when a
//     model call begins, so a test can kill the process mid-call.
//   - SCRIPTED_HOSTILE_LOGS: "true" writes malformed log lines to stderr.
//   - SCRIPTED_SCRIPT: a JSON file of rules (see [script]); the first rule
//     that matches a call answers it, else the settings above do.
//   - SCRIPTED_PROMPT_LOG: a file; every model call is appended to it as a
//     JSON line {agent, type, runId, prompt, answer}.
//
// Platform settings:
//   - SCRIPTED_INBOX: a folder polled for *.json files, each an
//     [sdk.IncomingMessage] or a list of them, delivered to the agent with
//     ReceiveMessage (all messages of a file at once); a read file is
//     renamed *.done.
//   - SCRIPTED_OUTBOX: a file; every message the agent sends to the
//     "scripted" source, and every run of the SCRIPTED_TASK action, is
//     appended as a JSON line.
//   - SCRIPTED_RELAY: "true" makes the platform a shared room: what one such
//     agent sends to a channel is delivered to every other such agent as a
//     message from a bot in that channel.
//   - SCRIPTED_TASKS: a JSON list of tasks the SCRIPTED_SCHEDULE action
//     creates in the message's room.
//   - SCRIPTED_EVENTS: a folder polled for *.json files, each an [op] or a
//     list of them, run in order (a read file is renamed *.done): emit an
//     event as a platform would (EmitEvent), or read entities, which have
//     no HTTP API.
//   - SCRIPTED_RESULTS: a file; the outcome of every op, and of every
//     message delivered from the inbox (its ids, whether the host found it
//     a duplicate, its replies), is appended as a JSON line.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/google/uuid"
)

func main() {
	p := &platform{agents: map[string]*sdk.Agent{}, stops: map[string]context.CancelFunc{}, uses: map[string]int{}}
	sdk.Serve(sdk.Plugin{
		Name:    "scripted",
		Version: "0.0.2",
		Models: []sdk.Model{
			{Type: sdk.ModelTextLarge, Priority: 10, Handler: p.answer},
			{Type: sdk.ModelTextSmall, Priority: 10, Handler: p.answer},
		},
		Sources: []sdk.Source{{Name: "scripted", Send: p.send}},
		Actions: []sdk.Action{
			{Name: "SCRIPTED_TASK", Description: "A task worker of the tests: records that it ran.", Handler: p.taskAction},
			{Name: "SCRIPTED_SCHEDULE", Description: "Creates the tasks of the SCRIPTED_TASKS setting.", Handler: p.scheduleAction},
		},
		// The tests steer the plugin through these settings; the host
		// sends only what a plugin declares.
		Settings:  scriptedSettings(),
		Configure: p.configure,
		Unconfigure: func(ctx context.Context, a *sdk.Agent) {
			p.mu.Lock()
			if stop := p.stops[a.ID]; stop != nil {
				stop()
			}
			delete(p.agents, a.ID)
			p.mu.Unlock()
		},
	})
}

// platform is the plugin's state: the agents it serves and how often each
// script rule answered.
type platform struct {
	mu     sync.Mutex
	agents map[string]*sdk.Agent
	stops  map[string]context.CancelFunc
	uses   map[string]int
	files  sync.Mutex
}

func (p *platform) configure(ctx context.Context, a *sdk.Agent) ([]string, error) {
	if dir := a.Setting("SCRIPTED_MARK_DIR"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return nil, err
		}
	}
	if a.Setting("SCRIPTED_HOSTILE_LOGS") == "true" {
		hostileLogs()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if stop := p.stops[a.ID]; stop != nil {
		stop()
	}
	p.agents[a.ID] = a
	inbox, events := a.Setting("SCRIPTED_INBOX"), a.Setting("SCRIPTED_EVENTS")
	if inbox != "" || events != "" {
		cctx, cancel := context.WithCancel(context.Background())
		p.stops[a.ID] = cancel
		if inbox != "" {
			go p.pollInbox(cctx, a, inbox)
		}
		if events != "" {
			go p.pollEvents(cctx, a, events)
		}
	}
	return nil, nil
}

// hostileLogs writes what a buggy plugin might: JSON with wrongly typed
// reserved keys (which crash go-plugin's own parser), broken JSON, a very
// long line and binary junk.
func hostileLogs() {
	w := os.Stderr
	fmt.Fprintln(w, `{"@message": 123, "@level": 7, "@timestamp": false}`)
	fmt.Fprintln(w, `{"@message": {"nested": true}, "@level": ["info"]}`)
	fmt.Fprintln(w, `{"@message": "unterminated`)
	fmt.Fprintln(w, strings.Repeat("x", 300<<10))
	fmt.Fprintln(w, "\x00\xff\xfe binary \x1b[31m junk")
	fmt.Fprintln(w, `[ERROR] a prefixed line`)
}

// script is the content of SCRIPTED_SCRIPT.
type script struct {
	Rules []rule `json:"rules"`
}

// rule answers the model calls it matches: of Model's type (any when
// empty), whose prompt holds every Contains string and no NotContains
// string, at most Times times (0: always). Answer may hold "%s", the
// received message's text. DelayMS waits before answering.
type rule struct {
	Model       string   `json:"model"`
	Contains    []string `json:"contains"`
	NotContains []string `json:"notContains"`
	Answer      string   `json:"answer"`
	Times       int      `json:"times"`
	DelayMS     int      `json:"delayMs"`
}

func (p *platform) fromScript(a *sdk.Agent, req *sdk.ModelRequest) (*rule, error) {
	path := a.Setting("SCRIPTED_SCRIPT")
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read script: %w", err)
	}
	var s script
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("script %s: %w", path, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
next:
	for i := range s.Rules {
		r := &s.Rules[i]
		if r.Model != "" && r.Model != req.Type {
			continue
		}
		for _, c := range r.Contains {
			if !strings.Contains(req.Prompt, c) {
				continue next
			}
		}
		for _, c := range r.NotContains {
			if strings.Contains(req.Prompt, c) {
				continue next
			}
		}
		key := fmt.Sprintf("%s#%d", a.ID, i)
		if r.Times > 0 && p.uses[key] >= r.Times {
			continue
		}
		p.uses[key]++
		return r, nil
	}
	return nil, nil
}

func (p *platform) answer(ctx context.Context, a *sdk.Agent, req *sdk.ModelRequest) (*sdk.ModelResponse, error) {
	if dir := a.Setting("SCRIPTED_MARK_DIR"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "model-started"), []byte(time.Now().String()), 0o644)
	}
	delay, _ := strconv.Atoi(a.Setting("SCRIPTED_DELAY_MS"))
	received := receivedText(req.Prompt)
	r, err := p.fromScript(a, req)
	if err != nil {
		return nil, err
	}
	var out string
	if r != nil {
		out = strings.ReplaceAll(r.Answer, "%s", received)
		delay = r.DelayMS
	} else {
		text := a.Setting("SCRIPTED_REPLY")
		if text == "" {
			text = "scripted reply to: %s"
		}
		text = strings.ReplaceAll(text, "%s", received)
		if probe := a.Setting("SCRIPTED_PROBE"); probe != "" {
			text += fmt.Sprintf(" [probe seen: %t]", strings.Contains(req.Prompt, probe))
		}
		actions := a.Setting("SCRIPTED_ACTIONS")
		if actions == "" {
			actions = "REPLY"
		}
		out = fmt.Sprintf("<response><thought>scripted</thought><actions>%s</actions><text>%s</text></response>", actions, text)
	}
	if delay > 0 {
		select {
		case <-time.After(time.Duration(delay) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if path := a.Setting("SCRIPTED_PROMPT_LOG"); path != "" {
		p.appendJSON(path, map[string]any{"agent": a.Name(), "type": req.Type, "runId": req.RunID, "prompt": req.Prompt, "answer": out})
	}
	return &sdk.ModelResponse{Text: out, Model: "scripted"}, nil
}

// receivedText finds the message to answer in a bootstrap prompt.
func receivedText(prompt string) string {
	const marker = "# Received Message\n"
	i := strings.LastIndex(prompt, marker)
	if i < 0 {
		return ""
	}
	line, _, _ := strings.Cut(prompt[i+len(marker):], "\n")
	if _, text, ok := strings.Cut(line, ": "); ok {
		return text
	}
	return line
}

func (p *platform) appendJSON(path string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	p.files.Lock()
	defer p.files.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.Write(append(b, '\n'))
}

// send is the platform receiving what an agent sends.
func (p *platform) send(ctx context.Context, a *sdk.Agent, t sdk.Target, c sdk.Content) ([]string, error) {
	id := uuid.NewString()
	if path := a.Setting("SCRIPTED_OUTBOX"); path != "" {
		p.appendJSON(path, map[string]any{"agent": a.Name(), "id": id, "target": t, "content": c})
	}
	if a.Setting("SCRIPTED_RELAY") == "true" && t.ChannelID != "" {
		p.mu.Lock()
		var others []*sdk.Agent
		for _, o := range p.agents {
			if o.ID != a.ID && o.Setting("SCRIPTED_RELAY") == "true" {
				others = append(others, o)
			}
		}
		p.mu.Unlock()
		sort.Slice(others, func(i, j int) bool { return others[i].Name() < others[j].Name() })
		for _, o := range others {
			in := sdk.IncomingMessage{Source: "scripted", MessageID: id, ChannelID: t.ChannelID, ServerID: t.ServerID,
				UserID: "agent-" + a.Name(), UserName: a.Name(), Content: sdk.Content{Text: c.Text},
				ChannelType: sdk.ChannelGroup, AuthorIsBot: true, Wait: true}
			go p.deliver(o, in)
		}
	}
	return []string{id}, nil
}

func (p *platform) deliver(a *sdk.Agent, in sdk.IncomingMessage) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := a.ReceiveMessage(ctx, in)
	if err != nil {
		fmt.Fprintf(os.Stderr, "scripted: deliver %q to %s: %v\n", in.Content.Text, a.Name(), err)
	}
	if path := a.Setting("SCRIPTED_RESULTS"); path != "" {
		rec := map[string]any{"delivered": in.MessageID, "text": in.Content.Text}
		if err != nil {
			rec["error"] = err.Error()
		} else {
			rec["memoryId"], rec["roomId"], rec["runId"] = res.MemoryID, res.RoomID, res.RunID
			rec["duplicate"], rec["replies"] = res.Duplicate, len(res.Replies)
		}
		p.appendJSON(path, rec)
	}
}

// op is one line of a SCRIPTED_EVENTS file: Emit names an event type to
// emit with RunID, Source, Message and Payload; Entities lists entity ids
// to read.
type op struct {
	Emit     string         `json:"emit"`
	RunID    string         `json:"runId"`
	Source   string         `json:"source"`
	Message  *sdk.Memory    `json:"message"`
	Payload  map[string]any `json:"payload"`
	Entities []string       `json:"entities"`
}

// pollEvents runs the ops of the files that appear in dir, a file at a
// time, and records each outcome in SCRIPTED_RESULTS.
func (p *platform) pollEvents(ctx context.Context, a *sdk.Agent, dir string) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		sort.Strings(files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			_ = os.Rename(f, f+".done")
			var ops []op
			if err := json.Unmarshal(b, &ops); err != nil {
				var one op
				if err := json.Unmarshal(b, &one); err != nil {
					fmt.Fprintf(os.Stderr, "scripted: events file %s: %v\n", f, err)
					continue
				}
				ops = []op{one}
			}
			for i, o := range ops {
				rec := p.run(ctx, a, o)
				rec["file"], rec["index"] = filepath.Base(f), i
				if path := a.Setting("SCRIPTED_RESULTS"); path != "" {
					p.appendJSON(path, rec)
				}
			}
		}
	}
}

func (p *platform) run(ctx context.Context, a *sdk.Agent, o op) map[string]any {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rec := map[string]any{}
	var err error
	switch {
	case o.Emit != "":
		rec["emit"] = o.Emit
		src := o.Source
		if src == "" {
			src = "scripted"
		}
		err = a.EmitEvent(ctx, sdk.Event{Type: o.Emit, RunID: o.RunID, Source: src, Message: o.Message, Payload: o.Payload})
	case o.Entities != nil:
		var es []sdk.Entity
		es, err = storage.For(a).GetEntities(ctx, o.Entities...)
		if es == nil {
			es = []sdk.Entity{}
		}
		rec["entities"] = es
	default:
		err = fmt.Errorf("an op names neither emit nor entities")
	}
	if err != nil {
		rec["error"] = err.Error()
	}
	return rec
}

// pollInbox delivers the messages of the files that appear in dir.
func (p *platform) pollInbox(ctx context.Context, a *sdk.Agent, dir string) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		sort.Strings(files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			_ = os.Rename(f, f+".done")
			var msgs []sdk.IncomingMessage
			if err := json.Unmarshal(b, &msgs); err != nil {
				var one sdk.IncomingMessage
				if err := json.Unmarshal(b, &one); err != nil {
					fmt.Fprintf(os.Stderr, "scripted: inbox file %s: %v\n", f, err)
					continue
				}
				msgs = []sdk.IncomingMessage{one}
			}
			for _, m := range msgs {
				if m.Source == "" {
					m.Source = "scripted"
				}
				m.Wait = true
				go p.deliver(a, m)
			}
		}
	}
}

// taskAction is a task worker: it records the task and the chosen option.
func (p *platform) taskAction(ctx context.Context, a *sdk.Agent, call *sdk.ActionCall) (sdk.ActionResult, error) {
	rec := map[string]any{"agent": a.Name(), "worker": "SCRIPTED_TASK", "runId": call.RunID}
	if t, ok := call.State.Values["task"].(map[string]any); ok {
		rec["taskId"], rec["taskName"] = t["id"], t["name"]
		if md, ok := t["metadata"].(map[string]any); ok {
			rec["label"] = md["label"]
		}
	}
	if o, ok := call.State.Values["taskOptions"].(map[string]any); ok {
		rec["option"] = o["option"]
	}
	// What the earlier actions of the chain handed on.
	var prev []string
	for _, o := range call.Previous {
		prev = append(prev, o.Name)
	}
	rec["previous"] = strings.Join(prev, ",")
	rec["lastReply"] = call.State.Values["lastReply"]
	if path := a.Setting("SCRIPTED_OUTBOX"); path != "" {
		p.appendJSON(path, rec)
	}
	return sdk.ActionResult{Success: true, Text: "scripted task ran"}, nil
}

// scheduleAction creates the tasks of SCRIPTED_TASKS in the message's room.
func (p *platform) scheduleAction(ctx context.Context, a *sdk.Agent, call *sdk.ActionCall) (sdk.ActionResult, error) {
	var tasks []storage.Task
	if err := json.Unmarshal([]byte(a.Setting("SCRIPTED_TASKS")), &tasks); err != nil {
		return sdk.ActionResult{}, fmt.Errorf("SCRIPTED_TASKS: %w", err)
	}
	var ids []string
	for _, t := range tasks {
		t.RoomID, t.WorldID, t.EntityID = call.Message.RoomID, call.Message.WorldID, call.Message.EntityID
		id, err := storage.For(a).CreateTask(ctx, t)
		if err != nil {
			return sdk.ActionResult{}, err
		}
		ids = append(ids, id)
	}
	return sdk.ActionResult{Success: true, Text: "scheduled " + strings.Join(ids, ",")}, nil
}

func scriptedSettings() []sdk.Setting {
	var out []sdk.Setting
	for _, name := range []string{"SCRIPTED_ACTIONS", "SCRIPTED_DELAY_MS", "SCRIPTED_EVENTS", "SCRIPTED_HOSTILE_LOGS", "SCRIPTED_INBOX", "SCRIPTED_MARK_DIR", "SCRIPTED_OUTBOX", "SCRIPTED_PROBE", "SCRIPTED_PROMPT_LOG", "SCRIPTED_RELAY", "SCRIPTED_REPLY", "SCRIPTED_RESULTS", "SCRIPTED_SCRIPT", "SCRIPTED_TASKS"} {
		out = append(out, sdk.Setting{Name: name})
	}
	return out
}
