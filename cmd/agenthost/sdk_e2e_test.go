package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pythonplugin "github.com/agenthost/agenthost/examples/python-plugin"
	typescriptplugin "github.com/agenthost/agenthost/examples/typescript-plugin"
	"github.com/agenthost/agenthost/internal/langsdk"
	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/sdk/typescript"
)

// TestTypeScriptAndPythonExamples runs the TypeScript and Python examples,
// each on its SDK, as drop-in executables of a real daemon, confined, next
// to the scripted model: both providers' texts must reach the prompt (the
// Python one with the setting the character gives it), both actions must
// run and answer through the host, and their storage through the host must
// hold from one message to the next.
func TestTypeScriptAndPythonExamples(t *testing.T) {
	ts, err := typescriptplugin.Build(filepath.Join("..", "..", "examples", "typescript-plugin"))
	if err != nil {
		t.Fatal(err)
	}
	py, err := pythonplugin.Build(filepath.Join("..", "..", "examples", "python-plugin"))
	if err != nil {
		t.Fatal(err)
	}
	prompts := filepath.Join(t.TempDir(), "prompts.jsonl")
	char := scriptedCharacter(t, map[string]any{
		"SCRIPTED_ACTIONS":    "REPLY,TS_EXAMPLE_ACTION,PY_EXAMPLE_ACTION",
		"SCRIPTED_PROMPT_LOG": prompts,
		"PY_EXAMPLE_GREETING": "hola",
	}, "typescript-example", "python-example")
	d := startDaemon(t, daemonOpts{pluginDir: pluginDirWith(t, bins.scripted, ts, py), characters: []string{char}})

	for run := 1; run <= 2; run++ {
		m := d.say("Scripty", "run both")
		texts := replyTexts(m)
		want := []string{
			"scripted reply to: run both",
			"TS_EXAMPLE_ACTION ran in Node for Scripty (run " + string(rune('0'+run)) + ")",
			"PY_EXAMPLE_ACTION ran in Python for Scripty (run " + string(rune('0'+run)) + ")",
		}
		if strings.Join(texts, "\n") != strings.Join(want, "\n") {
			t.Fatalf("message %d: the replies = %q, want %q", run, texts, want)
		}
		// What the actions sent through the host is in the room's history.
		stored := map[string]bool{}
		for _, mem := range d.memories("Scripty", m.RoomID) {
			stored[mem.Content.Text] = true
		}
		if !stored[want[1]] || !stored[want[2]] {
			t.Errorf("message %d: the actions' answers are not among the room's memories: %v", run, stored)
		}
	}

	prompt := firstPrompt(t, prompts)
	for _, want := range []string{
		"The TypeScript example provider says hello from Node.",
		"The Python example provider says hola.",
	} {
		if !strings.Contains(prompt, want) {
			t.Errorf("the model's prompt lacks the provider text %q", want)
		}
	}
}

// TestLanguageSDKFailures runs the SDKs' fixture plugins in a real daemon:
// what their handlers throw comes back naming the handler, the message goes
// on and the plugin process lives; a provider past the daemon's provider
// deadline is cancelled, and sees it.
func TestLanguageSDKFailures(t *testing.T) {
	tsDir, _ := filepath.Abs(filepath.Join("..", "..", "sdk", "typescript"))
	pyDir, _ := filepath.Abs(filepath.Join("..", "..", "sdk", "python"))
	if err := typescript.Build(tsDir); err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal(err)
	}
	tsFixture := langsdk.Launcher(t, "agenthost-plugin-ts-fixture", node, filepath.Join(tsDir, "dist", "test", "fixture.js"))
	pyFixture := langsdk.Launcher(t, "agenthost-plugin-py-fixture", "/usr/bin/python3", filepath.Join(pyDir, "tests", "fixture.py"))

	prompts := filepath.Join(t.TempDir(), "prompts.jsonl")
	char := scriptedCharacter(t, map[string]any{
		"SCRIPTED_ACTIONS":    "REPLY,TSF_THROWS,PYF_THROWS,TSF_RESPOND,PYF_RESPOND",
		"SCRIPTED_PROMPT_LOG": prompts,
		"TSF_GREETING":        "hi",
		"PYF_GREETING":        "hi",
	}, "ts-fixture", "py-fixture")
	d := startDaemon(t, daemonOpts{pluginDir: pluginDirWith(t, bins.scripted, tsFixture, pyFixture), characters: []string{char},
		env: []string{
			"AGENTHOST_PROVIDER_TIMEOUT=2s",
			// The fixtures' code is in the SDKs' folders, not beside their
			// launchers: grant them, as an operator grants a plugin a folder.
			"AGENTHOST_PLUGIN_ALLOW_TS_FIXTURE=" + tsDir,
			"AGENTHOST_PLUGIN_ALLOW_PY_FIXTURE=" + pyDir,
		}})
	pids := fixturePIDs(t, d)

	m := d.say("Scripty", "try everything")
	texts := replyTexts(m)
	want := []string{
		"scripted reply to: try everything",
		"TSF responded to try everything for Scripty (run 1, greeting hi)",
		"PYF responded to try everything for Scripty (run 1, greeting hi)",
	}
	if strings.Join(texts, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the replies = %q, want %q: the actions after the throwing ones must still run", texts, want)
	}
	prompt := firstPrompt(t, prompts)
	for _, want := range []string{"hi from TypeScript", "hi from Python"} {
		if !strings.Contains(prompt, want) {
			t.Errorf("the model's prompt lacks the provider text %q", want)
		}
	}
	r := finishedRun(t, d, m.RoomID, "try everything", func(r sdkRun) bool { return len(r.Actions) >= 2 && len(r.Providers) >= 2 })
	for _, want := range []string{"action TSF_THROWS failed: action boom", "action PYF_THROWS failed: action boom"} {
		if !anyHas(r.Actions, "error", want) {
			t.Errorf("the run's actions lack the error %q: %+v", want, r.Actions)
		}
	}
	for _, want := range []string{"provider TSF_THROWS failed: provider boom", "provider PYF_THROWS failed: provider boom"} {
		if !anyHas(r.Providers, "error", want) {
			t.Errorf("the run's providers lack the error %q: %+v", want, r.Providers)
		}
	}

	// A provider that waits past the daemon's provider deadline: the
	// message goes on without the plugin's providers, and the provider
	// learns that its call ended.
	m = d.say("Scripty", "please wait")
	if len(m.Messages) == 0 || m.Messages[0].Text != "scripted reply to: please wait" {
		t.Fatalf("the replies = %+v", m.Messages)
	}
	r = finishedRun(t, d, m.RoomID, "please wait", func(r sdkRun) bool { return len(r.Providers) >= 2 })
	for _, plugin := range []string{"ts-fixture", "py-fixture"} {
		if !anyHas(r.Providers, "error", "plugin "+plugin+" did not answer within 2s") {
			t.Errorf("the run should list %s's providers as timed out: %+v", plugin, r.Providers)
		}
	}
	testwait.For(t, 30*time.Second, "both slow providers to see their deadline pass", func() bool {
		n := 0
		for _, line := range strings.Split(d.out.String(), "\n") {
			if strings.Contains(line, "slow provider stopped") && strings.Contains(line, "aborted: DeadlineExceededError") {
				n++
			}
		}
		return n == 2
	})

	// The same processes served it all.
	if now := fixturePIDs(t, d); now != pids {
		t.Errorf("the fixture plugins were restarted: %v, then %v", pids, now)
	}
}

func replyTexts(m messagesData) []string {
	var out []string
	for _, msg := range m.Messages {
		out = append(out, msg.Text)
	}
	return out
}

// fixturePIDs are the pids of the two fixture plugin processes.
func fixturePIDs(t *testing.T, d *daemon) [2]int {
	t.Helper()
	var out [2]int
	for _, p := range children(d.cmd.Process.Pid) {
		switch c := cmdline(p); {
		case strings.Contains(c, "fixture.js"):
			out[0] = p
		case strings.Contains(c, "fixture.py"):
			out[1] = p
		}
	}
	if out[0] == 0 || out[1] == 0 {
		t.Fatalf("fixture plugin processes: %v", out)
	}
	return out
}

type sdkRun struct {
	Text      string
	Status    string
	Actions   []map[string]any
	Providers []map[string]any
}

// finishedRun is the room's run of the message text once the timeline has
// it whole (the timeline is written a moment after the reply).
func finishedRun(t *testing.T, d *daemon, roomID, text string, whole func(sdkRun) bool) sdkRun {
	t.Helper()
	var found sdkRun
	testwait.For(t, 10*time.Second, "the run of "+text+" in the timeline", func() bool {
		var runs struct{ Runs []sdkRun }
		_, env := d.get("/api/agents/Scripty/runs?roomId=" + roomID)
		if json.Unmarshal(env.Data, &runs) != nil {
			return false
		}
		for _, r := range runs.Runs {
			if r.Text == text && r.Status != "running" && whole(r) {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

func anyHas(entries []map[string]any, key, want string) bool {
	for _, e := range entries {
		if s, _ := e[key].(string); strings.Contains(s, want) {
			return true
		}
	}
	return false
}

// firstPrompt is the prompt of the first model call the scripted plugin
// logged.
func firstPrompt(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	if !sc.Scan() {
		t.Fatalf("no model call in %s", path)
	}
	var call struct{ Prompt string }
	if err := json.Unmarshal(sc.Bytes(), &call); err != nil {
		t.Fatal(err)
	}
	return call.Prompt
}
