//go:build linux

package main

// End-to-end tests of the model plugin choice: `agenthost start` with no
// character picks the openai plugin when a key (or an Ollama endpoint) is
// in the environment, and offline otherwise. The OpenAI API is a local fake
// that speaks its HTTP protocol to the plugin process.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agenthost/agenthost/host"
	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/plugins/openai/openaitest"
	"github.com/agenthost/agenthost/plugins/sqlstore"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
)

// pluginProcesses lists the bundled plugins the daemon runs, by name.
func pluginProcesses(d *daemon) map[string]bool {
	out := map[string]bool{}
	for _, pid := range children(d.cmd.Process.Pid) {
		f := strings.Fields(cmdline(pid))
		for i, a := range f {
			if a == "__plugin" && i+1 < len(f) {
				out[f[i+1]] = true
			}
		}
	}
	return out
}

func TestOpenAIChosenWhenTheKeyIsSet(t *testing.T) {
	t.Parallel()
	srv := openaitest.Start(t)
	d := startDaemon(t, daemonOpts{env: []string{"OPENAI_API_KEY=" + srv.APIKey, "OPENAI_BASE_URL=" + srv.URL}})
	if !d.says("model_plugin=openai", "OPENAI_API_KEY is set") {
		t.Errorf("the log should say the openai plugin was chosen because OPENAI_API_KEY is set:\n%s", tail(d.out.String(), 3000))
	}
	if procs := pluginProcesses(d); !procs["openai"] || procs["offline"] {
		t.Errorf("plugin processes = %v, want openai and not offline", procs)
	}

	m := d.say("Eliza", "Hello, who are you?")
	if len(m.Messages) != 1 || !strings.Contains(m.Messages[0].Text, "Hello from the fake OpenAI server (gpt-4o).") {
		t.Fatalf("the reply should come from the fake API through the openai plugin: %+v", m)
	}
	chats := srv.Requests("/chat/completions")
	if len(chats) == 0 {
		t.Fatal("no chat completion reached the fake API")
	}
	last := chats[len(chats)-1]
	body := last.JSON()
	if body["model"] != "gpt-4o" || last.Header.Get("Authorization") != "Bearer "+srv.APIKey {
		t.Errorf("chat request: model %v, authorization %q", body["model"], last.Header.Get("Authorization"))
	}
	if !strings.Contains(last.Header.Get("User-Agent"), "agenthost-plugin-openai/") {
		t.Errorf("the request should come from the openai plugin, User-Agent %q", last.Header.Get("User-Agent"))
	}
	msgs, _ := body["messages"].([]any)
	if len(msgs) < 2 || !strings.Contains(msgs[len(msgs)-1].(map[string]any)["content"].(string), "Hello, who are you?") {
		t.Errorf("the prompt should carry the message: %v", msgs)
	}
	// The plugin logs every call; its log reaches the daemon's.
	waitOutput(t, d, "model call")
	if mems := d.memories("Eliza", m.RoomID); len(mems) != 2 {
		t.Errorf("want the message and the reply stored, got %d", len(mems))
	}
}

func TestOpenAIPluginServesOllamaWhenItsEndpointIsSet(t *testing.T) {
	t.Parallel()
	srv := openaitest.Start(t)
	srv.APIKey = "" // Ollama takes no key
	srv.EmbeddingDims = 768
	d := startDaemon(t, daemonOpts{env: []string{"OLLAMA_API_ENDPOINT=" + srv.Root + "/api", "OLLAMA_LARGE_MODEL=llama3.2"}})
	if !d.says("model_plugin=openai", "OLLAMA_API_ENDPOINT is set") {
		t.Errorf("the log should say why the openai plugin was chosen:\n%s", tail(d.out.String(), 3000))
	}
	m := d.say("Eliza", "Hello")
	if len(m.Messages) != 1 || !strings.Contains(m.Messages[0].Text, "(llama3.2)") {
		t.Fatalf("the reply should come from the Ollama model: %+v", m)
	}
	for _, r := range srv.Requests("") {
		if !strings.HasPrefix(r.Path, "/") || r.Header.Get("Authorization") != "" {
			t.Errorf("request %s %s with authorization %q", r.Method, r.Path, r.Header.Get("Authorization"))
		}
	}
}

func TestOpenAINotChosenWithoutAKey(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{env: []string{"OPENAI_BASE_URL=http://127.0.0.1:9/v1"}})
	if !d.says("model_plugin=offline", "no model API key is set") {
		t.Errorf("the log should say the offline plugin was chosen and why:\n%s", tail(d.out.String(), 3000))
	}
	if procs := pluginProcesses(d); !procs["offline"] || procs["openai"] {
		t.Errorf("plugin processes = %v, want offline and not openai", procs)
	}
	m := d.say("Eliza", "I am worried about my exams")
	if len(m.Messages) != 1 || strings.TrimSpace(m.Messages[0].Text) == "" || strings.Contains(m.Messages[0].Text, "fake OpenAI") {
		t.Errorf("the offline ELIZA should answer: %+v", m)
	}
}

// A message's embedding is made after its reply. The daemon is killed
// while the model server holds that embedding: the next daemon makes it,
// and the stored message has it.
func TestMessageEmbeddingMadeAfterAKill(t *testing.T) {
	t.Parallel()
	const heldText = "please hold this thought"
	srv := openaitest.Start(t)
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	srv.HoldEmbedding = func(input string) {
		if input == heldText {
			<-release
		}
	}
	asked := func(text string) []time.Time {
		var at []time.Time
		for _, r := range srv.Requests("/embeddings") {
			if in, _ := r.JSON()["input"].(string); in == text {
				at = append(at, r.Time)
			}
		}
		return at
	}
	dataDir := t.TempDir()
	opts := daemonOpts{dataDir: dataDir, env: []string{"OPENAI_API_KEY=" + srv.APIKey, "OPENAI_BASE_URL=" + srv.URL}}
	d := startDaemon(t, opts)

	// The agent embeds messages before storing them until its task
	// service has read the embedding marker, a moment after it started.
	var room string
	deferred := false
	for i := 0; i < 40 && !deferred; i++ {
		text := fmt.Sprintf("warm-up %d", i)
		m := d.sayAs("Eliza", "ann", room, text)
		room = m.RoomID
		back := time.Now()
		testwait.For(t, 10*time.Second, "the embedding of "+text, func() bool { return len(asked(text)) > 0 })
		deferred = asked(text)[0].After(back)
		time.Sleep(50 * time.Millisecond)
	}
	if !deferred {
		t.Fatal("no message had its embedding made after its reply")
	}
	replied := make(chan messagesData, 1)
	go func() { replied <- d.sayAs("Eliza", "ann", room, heldText) }()
	select {
	case m := <-replied:
		if len(m.Messages) != 1 {
			t.Fatalf("reply: %+v", m)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the reply waited for the message's embedding")
	}
	testwait.For(t, 10*time.Second, "the held embedding asked for", func() bool { return len(asked(heldText)) == 1 })
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d.exited
	once.Do(func() { close(release) })

	// The held message as stored: how many copies, and the values of
	// the embedding of the one. The store is read beside the daemon, as
	// `agenthost db status` does.
	ctx := context.Background()
	type held struct {
		copies int
		emb    []float32
	}
	read := func() (held, *sqlstore.Store, string) {
		t.Helper()
		s, err := sqlstore.Open(ctx, sqlstore.Config{DataDir: host.PluginDir(dataDir, "sql"), ExactSearch: true})
		if err != nil {
			t.Fatal(err)
		}
		agents, err := s.GetAgents(ctx)
		if err != nil || len(agents) != 1 {
			t.Fatalf("agents: %+v %v", agents, err)
		}
		ms, err := s.GetMemories(ctx, agents[0].ID, storage.MemoryQuery{Table: sdk.TableMessages, RoomID: room, Count: 200})
		if err != nil {
			t.Fatal(err)
		}
		var h held
		for _, m := range ms {
			if m.Content.Text == heldText {
				h.copies++
				h.emb = m.Embedding
			}
		}
		return h, s, agents[0].ID
	}
	if h, s, _ := read(); h.copies != 1 || len(h.emb) != 0 {
		t.Fatalf("after the kill the held message is stored %d times, with %d values", h.copies, len(h.emb))
	} else {
		s.Close()
	}

	d = startDaemon(t, opts)
	testwait.For(t, 30*time.Second, "the next daemon to store the held message's embedding", func() bool {
		h, s, _ := read()
		s.Close()
		return len(h.emb) > 0
	})
	if len(asked(heldText)) != 2 {
		t.Errorf("the held message's embedding was asked for %d times", len(asked(heldText)))
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, out := d.waitExit(20 * time.Second); code != 0 {
		t.Fatalf("stop: %d\n%s", code, tail(out, 3000))
	}
	h, s, _ := read()
	defer s.Close()
	want := openaitest.Vector(heldText, 1536)
	if h.copies != 1 || len(h.emb) != 1536 || h.emb[0] != float32(want[0]) || h.emb[1535] != float32(want[1535]) {
		t.Errorf("the held message is stored %d times, with %d values", h.copies, len(h.emb))
	}
}
