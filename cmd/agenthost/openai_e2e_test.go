//go:build linux

package main

// End-to-end tests of the model plugin choice: `agenthost start` with no
// character picks the openai plugin when a key (or an Ollama endpoint) is
// in the environment, and offline otherwise. The OpenAI API is a local fake
// that speaks its HTTP protocol to the plugin process.

import (
	"strings"
	"testing"

	"github.com/agenthost/agenthost/plugins/openai/openaitest"
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
