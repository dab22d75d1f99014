//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cli runs the agenthost binary as a client of the daemon at url.
func cli(t *testing.T, url, key, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bins.agenthost, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AGENTHOST_URL=" + url}
	if key != "" {
		cmd.Env = append(cmd.Env, "AGENTHOST_API_KEY="+key)
	}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

func cliJSON(t *testing.T, url, key string, out any, args ...string) {
	t.Helper()
	stdout, stderr, code := cli(t, url, key, "", append(args, "--json")...)
	if code != 0 {
		t.Fatalf("agenthost %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		t.Fatalf("agenthost %s --json: %v: %s", strings.Join(args, " "), err, stdout)
	}
}

func TestAgentCLI(t *testing.T) {
	t.Parallel()
	const key = "cli-key"
	d := startDaemon(t, daemonOpts{env: []string{"AGENTHOST_API_KEY=" + key}})
	type row struct {
		ID, Name, Status string
		Plugins          []string
	}
	var list struct{ Agents []row }
	cliJSON(t, d.url, key, &list, "agent", "list")
	if len(list.Agents) != 1 || list.Agents[0].Name != "Eliza" || list.Agents[0].Status != "running" {
		t.Fatalf("agent list = %+v", list)
	}
	out, _, code := cli(t, d.url, key, "", "agent", "ls")
	if code != 0 || !strings.Contains(out, "Eliza") || !strings.Contains(out, "running") {
		t.Fatalf("agent ls: %d %s", code, out)
	}

	var got struct {
		Name      string
		Character map[string]any
	}
	cliJSON(t, d.url, key, &got, "agent", "get", "1")
	if got.Name != "Eliza" || got.Character["name"] != "Eliza" {
		t.Fatalf("agent get 1 = %+v", got)
	}

	char := writeCharacter(t, map[string]any{"name": "Cli", "bio": "A CLI test agent.", "plugins": []string{"sql", "bootstrap", "offline"}})
	var a row
	cliJSON(t, d.url, key, &a, "agent", "start", "--path", char)
	if a.Name != "Cli" || a.Status != "running" {
		t.Fatalf("agent start --path = %+v", a)
	}
	m := d.sayKey("Cli", "hello cli", key)
	cliJSON(t, d.url, key, &a, "agent", "stop", "-n", "Cli")
	if a.Status != "stopped" {
		t.Fatalf("agent stop = %+v", a)
	}
	cliJSON(t, d.url, key, &a, "agent", "start", "Cli")
	if a.Status != "running" {
		t.Fatalf("agent start = %+v", a)
	}
	cliJSON(t, d.url, key, &got, "agent", "set", "Cli", "-c", `{"bio": "Changed by the CLI."}`)
	cliJSON(t, d.url, key, &got, "agent", "get", "Cli")
	if b, _ := got.Character["bio"].([]any); len(b) != 1 || b[0] != "Changed by the CLI." {
		t.Fatalf("after agent set: %+v", got.Character)
	}
	var cleared struct{ Deleted int }
	cliJSON(t, d.url, key, &cleared, "agent", "clear-memories", "Cli", "--room", m.RoomID)
	if cleared.Deleted != 2 {
		t.Fatalf("clear-memories --room: %+v", cleared)
	}
	var removed struct {
		Name    string
		Removed bool
	}
	cliJSON(t, d.url, key, &removed, "agent", "remove", "Cli")
	if !removed.Removed || removed.Name != "Cli" {
		t.Fatalf("agent remove = %+v", removed)
	}
	var stopped struct{ Agents []row }
	cliJSON(t, d.url, key, &stopped, "agent", "stop", "--all")
	if len(stopped.Agents) != 1 || stopped.Agents[0].Status != "stopped" {
		t.Fatalf("agent stop --all = %+v", stopped)
	}

	// Errors are clear and exit non-zero.
	for _, c := range []struct {
		key  string
		args []string
		want string
	}{
		{key, []string{"agent", "get", "Nobody"}, `no agent with id or name "Nobody"`},
		{key, []string{"agent", "start"}, "name the agent"},
		{key, []string{"agent", "set", "Eliza", "-c", "{not json"}, "invalid JSON at line 1, column 2"},
		{key, []string{"agent", "set", "Eliza", "-c", `{"bio": 5}`}, `field "bio"`},
		{"wrong", []string{"agent", "list"}, "AGENTHOST_API_KEY"},
	} {
		_, stderr, code := cli(t, d.url, c.key, "", c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("agenthost %s: want an error with %q, got exit %d: %s", strings.Join(c.args, " "), c.want, code, stderr)
		}
	}
	_, stderr, code := cli(t, "http://127.0.0.1:1", "", "", "agent", "list")
	if code == 0 || !strings.Contains(stderr, "no agenthost daemon answers at http://127.0.0.1:1") {
		t.Errorf("no daemon: exit %d: %s", code, stderr)
	}
}

func TestChatCLI(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	out, stderr, code := cli(t, d.url, "", "I keep losing my umbrella\n/quit\n", "chat", "--agent", "Eliza", "--user", "tina")
	if code != 0 {
		t.Fatalf("chat: exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "Talking to Eliza as tina") || !strings.Contains(out, "\nEliza: ") && !strings.Contains(out, "> Eliza: ") {
		t.Fatalf("chat output:\n%s", out)
	}
	// A second session starts with the conversation so far.
	out, _, code = cli(t, d.url, "", "/history 1\n", "chat", "--user", "tina", "--history", "5")
	if code != 0 || !strings.Contains(out, "tina: I keep losing my umbrella") || strings.Count(out, "Eliza: ") < 2 {
		t.Fatalf("chat history:\n%s", out)
	}
	_, stderr, code = cli(t, d.url, "", "", "chat", "--agent", "Nobody")
	if code == 0 || !strings.Contains(stderr, `no agent "Nobody"`) || !strings.Contains(stderr, "Eliza") {
		t.Fatalf("unknown agent: %d %s", code, stderr)
	}
}

// TestCharacterErrorsInUsersText: a problem in a character or a change
// given to the CLI names the line and column in the text the user wrote,
// and the API, which gets that text as it is, agrees; every way in
// requires "name" and "bio".
func TestCharacterErrorsInUsersText(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	bad := write("bad.json", "{\n  \"name\": \"Bad\",\n  \"bio\": \"x\",\n  \"topics\": [\"tea\", 7]\n}\n")
	changes := write("changes.json", "{\n  \"system\": \"ok\",\n  \"adjectives\": [\n    true\n  ]\n}\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"agent", "start", "--path", bad}, `character ` + bad + `: field "topics[1]": want a string, got number (line 4, column 21)`},
		{[]string{"agent", "set", "Eliza", "-c", `{"bio": 12345}`}, `character change (-c): field "bio": want a string or a list of strings, got number (line 1, column 9)`},
		{[]string{"agent", "set", "Eliza", "-f", changes}, `character ` + changes + `: field "adjectives[0]": want a string, got boolean (line 4, column 5)`},
		{[]string{"agent", "set", "Eliza", "-c", `{"bio": null}`}, `field "bio": cannot be removed`},
	} {
		_, stderr, code := cli(t, d.url, "", "", c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("agenthost %s: want %q, got exit %d: %s", strings.Join(c.args, " "), c.want, code, stderr)
		}
	}
	// The API gives the position in the character as sent.
	res, err := http.Post(d.url+"/api/agents", "application/json",
		strings.NewReader("{\"characterJson\": {\n  \"name\": \"Bad\",\n  \"bio\": 5\n}}"))
	if err != nil {
		t.Fatal(err)
	}
	env := decodeEnvelope(t, res.Body)
	res.Body.Close()
	if env.Error == nil || !strings.Contains(env.Error.Message, "(line 3, column 10)") {
		t.Errorf("API: want the position in the sent character, got %+v", env.Error)
	}

	// "name" and "bio" are required the same way by `start --character`,
	// `agent start --path` and the API.
	for field, char := range map[string]string{"bio": `{"name": "NoBio"}`, "name": `{"bio": "no name"}`} {
		want := `missing field "` + field + `"`
		path := write("no"+field+".json", char)
		st := launch(t, daemonOpts{characters: []string{path}})
		if code, out := st.waitExit(30 * time.Second); code == 0 || !strings.Contains(out, want) {
			t.Errorf("start --character without %s: exit %d: %s", field, code, out)
		}
		if _, stderr, code := cli(t, d.url, "", "", "agent", "start", "--path", path); code == 0 || !strings.Contains(stderr, want) {
			t.Errorf("agent start --path without %s: exit %d: %s", field, code, stderr)
		}
		code, env := d.post("/api/agents", map[string]any{"characterJson": json.RawMessage(char)})
		if code != http.StatusBadRequest || env.Error == nil || !strings.Contains(env.Error.Message, want) {
			t.Errorf("API without %s: %d %+v", field, code, env.Error)
		}
	}
}

// TestTablesFitTerminal: the tables of agent list and plugins list stay
// under 120 columns, numbered from 1, with long reasons cut; --wide,
// --json and agent get show everything.
func TestTablesFitTerminal(t *testing.T) {
	t.Parallel()
	// An agent stored with a plugin that is then uninstalled fails to
	// start, with a long reason.
	dataDir := t.TempDir()
	d := startDaemon(t, daemonOpts{dataDir: dataDir, pluginDir: pluginDirWith(t, bins.scripted)})
	char := map[string]any{"name": "Broken", "bio": "x", "plugins": []string{"sql", "bootstrap", "scripted"}}
	if code, env := d.post("/api/agents", map[string]any{"characterJson": char, "start": false}); code != http.StatusCreated {
		t.Fatalf("create: %d %+v", code, env.Error)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	d.waitExit(20 * time.Second)
	d = startDaemon(t, daemonOpts{dataDir: dataDir})
	if _, _, code := cli(t, d.url, "", "", "agent", "start", "Broken"); code == 0 {
		t.Fatal("Broken started without its plugin")
	}
	fits := func(what, out string) {
		t.Helper()
		for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
			if n := len([]rune(line)); n > 120 {
				t.Errorf("%s: a line of %d columns: %q", what, n, line)
			}
		}
	}
	out, stderr, code := cli(t, d.url, "", "", "agent", "list")
	fits("agent list", out)
	if code != 0 || !strings.Contains(out, "1  Eliza") || !strings.Contains(out, "2  Broken") ||
		!strings.Contains(out, `failed: unknown plugin "scripted"`) || strings.Contains(out, "folders searched") || !strings.Contains(stderr, "--wide") {
		t.Errorf("agent list: want the agents numbered from 1 and the reason cut, with a hint:\n%s%s", out, stderr)
	}
	full := "folders searched"
	if out, _, _ := cli(t, d.url, "", "", "agent", "list", "--wide"); !strings.Contains(out, full) {
		t.Errorf("agent list --wide should show the whole reason:\n%s", out)
	}
	if out, _, _ := cli(t, d.url, "", "", "agent", "list", "--json"); !strings.Contains(out, full) {
		t.Errorf("agent list --json should hold the whole reason:\n%s", out)
	}
	if out, _, _ := cli(t, d.url, "", "", "agent", "get", "2"); !strings.Contains(out, full) {
		t.Errorf("agent get should show the whole reason:\n%s", out)
	}
	out, stderr, code = cli(t, d.url, "", "", "plugins", "list")
	fits("plugins list", out)
	if code != 0 || !strings.Contains(out, "offline") || strings.Contains(out, "TEXT_TOKENIZER_ENCODE") {
		t.Errorf("plugins list: exit %d:\n%s%s", code, out, stderr)
	}
	if out, _, _ := cli(t, d.url, "", "", "plugins", "list", "--wide"); !strings.Contains(out, "TEXT_TOKENIZER_ENCODE") {
		t.Errorf("plugins list --wide should list every model type:\n%s", out)
	}
}

// TestChatRetryAfterHungPlugin: when a plugin hangs, chat says so in one
// sentence instead of the error chain, and /retry waits for the restarted
// plugin and sends the message again.
func TestChatRetryAfterHungPlugin(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	offline := 0
	for _, pid := range children(d.cmd.Process.Pid) {
		if strings.HasSuffix(strings.TrimSpace(cmdline(pid)), "__plugin offline") {
			offline = pid
		}
	}
	if offline == 0 {
		t.Fatal("no offline plugin process")
	}
	if err := syscall.Kill(offline, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := cli(t, d.url, "", "I like rainy days\n/retry\n/quit\n", "chat", "--agent", "Eliza", "--user", "rita")
	if code != 0 {
		t.Fatalf("chat: exit %d: %s", code, stderr)
	}
	want := "Eliza could not answer because"
	if !strings.Contains(stderr, want) || !strings.Contains(stderr, "type /retry") || strings.Contains(stderr, "unavailable: unavailable") {
		t.Errorf("want one sentence starting %q with the /retry hint, got:\n%s", want, stderr)
	}
	if strings.Count(stderr, "\n") != 1 {
		t.Errorf("the failure should take one line:\n%s", stderr)
	}
	if !strings.Contains(out, "\nrita> Eliza: ") && !strings.Contains(out, "> Eliza: ") {
		t.Errorf("/retry should send the message again and show the answer:\n%s", out)
	}
	if alive(offline) {
		t.Errorf("the hung plugin %d still lives", offline)
	}
}

// sayKey sends a message with the API key and returns the reply.
func (d *daemon) sayKey(agent, text, key string) messagesData {
	d.t.Helper()
	b, _ := json.Marshal(map[string]string{"text": text, "userName": "tester"})
	req, _ := http.NewRequest("POST", d.url+"/api/agents/"+agent+"/messages", bytes.NewReader(b))
	req.Header.Set("X-API-KEY", key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer res.Body.Close()
	env := decodeEnvelope(d.t, res.Body)
	if res.StatusCode != http.StatusOK {
		d.t.Fatalf("message: %d %+v", res.StatusCode, env.Error)
	}
	var m messagesData
	if err := json.Unmarshal(env.Data, &m); err != nil {
		d.t.Fatal(err)
	}
	return m
}
