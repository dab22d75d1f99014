//go:build linux

package main

// The Go example plugin of examples/go-plugin, built as a plugin author
// builds it (a module of its own), run by the real daemon with the offline
// model: the README's WAVE example seen working with no model key, and the
// history of a conversation in which an action replied.

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// goPluginBin builds examples/go-plugin once, from its own module.
var goPluginBin = sync.OnceValues(func() (string, error) {
	out := filepath.Join(filepath.Dir(bins.agenthost), "agenthost-plugin-weather")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = filepath.Join("..", "..", "examples", "go-plugin")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build examples/go-plugin (after changing the SDK's dependencies, run `go mod tidy` there): %v\n%s", err, b)
	}
	return out, nil
})

// TestGoExampleWaveHistory: "wave at me" makes the offline model choose the
// example's WAVE action besides its reply. What the HTTP API returned live
// is what the room's messages hold: each reply once, with its id, and no
// record of an action among them; `agenthost chat` shows the same.
func TestGoExampleWaveHistory(t *testing.T) {
	t.Parallel()
	bin, err := goPluginBin()
	if err != nil {
		t.Fatal(err)
	}
	char := writeCharacter(t, map[string]any{"name": "Wavy", "bio": "Waves when asked.",
		"plugins": []string{"sql", "bootstrap", "offline", "weather"}})
	d := startDaemon(t, daemonOpts{pluginDir: pluginDirWith(t, bin), characters: []string{char}})

	m := d.say("Wavy", "wave at me")
	if len(m.Messages) != 2 {
		t.Fatalf("want the reply and the wave, got %+v", m.Messages)
	}
	if m.Messages[1].Text != "*waves*" {
		t.Errorf("the second reply should be the action's: %+v", m.Messages)
	}
	live := map[string]string{}
	for _, r := range m.Messages {
		if r.ID == "" || r.Text == "" {
			t.Errorf("a reply came back without an id or text: %+v", r)
		}
		live[r.ID] = r.Text
	}

	stored := d.roomMemories("Wavy", m.RoomID, "")
	counts := map[string]int{}
	for _, mem := range stored {
		counts[mem.text()]++
		if strings.HasPrefix(mem.text(), "Executed action") || mem.Content["type"] == "action_result" {
			t.Errorf("an action's record is among the room's messages: %+v", mem)
		}
	}
	if len(stored) != 3 || counts["wave at me"] != 1 {
		t.Errorf("the room should hold the message and the two replies, got %+v", stored)
	}
	for id, text := range live {
		found := false
		for _, mem := range stored {
			if mem.ID == id {
				found = true
				if mem.text() != text {
					t.Errorf("reply %s was %q live and is stored as %q", id, text, mem.text())
				}
			}
		}
		if !found || counts[text] != 1 {
			t.Errorf("reply %s %q: stored %v, %d times; want once with its id", id, text, found, counts[text])
		}
	}
	results := map[string]int{}
	for _, r := range d.roomMemories("Wavy", m.RoomID, "action_results") {
		name, _ := r.Content["actionName"].(string)
		results[name]++
	}
	if results["REPLY"] != 1 || results["WAVE"] != 1 {
		t.Errorf("want one action result each for REPLY and WAVE, got %v", results)
	}

	out, stderr, code := cli(t, d.url, "", "/quit\n", "chat", "--agent", "Wavy", "--user", "tester", "--history", "20")
	if code != 0 {
		t.Fatalf("chat: exit %d: %s", code, stderr)
	}
	for _, line := range []string{"tester: wave at me", "Wavy: " + m.Messages[0].Text, "Wavy: *waves*"} {
		if n := strings.Count(out, line+"\n"); n != 1 {
			t.Errorf("chat's history shows %q %d times, want once:\n%s", line, n, out)
		}
	}
}
