//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
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
	cliJSON(t, d.url, key, &got, "agent", "get", "0")
	if got.Name != "Eliza" || got.Character["name"] != "Eliza" {
		t.Fatalf("agent get 0 = %+v", got)
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
		{key, []string{"agent", "set", "Eliza", "-c", "{not json"}, "must be a JSON object"},
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

// sayKey sends a message with the API key and returns the reply.
func (d *daemon) sayKey(agent, text, key string) messagesData {
	d.t.Helper()
	b, _ := json.Marshal(map[string]string{"text": text, "userName": "tester"})
	req, _ := http.NewRequest("POST", d.url+"/api/agents/"+agent+"/messages", bytes.NewReader(b))
	req.Header.Set("X-API-KEY", key)
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
