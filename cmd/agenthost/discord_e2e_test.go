//go:build linux

package main

// End-to-end tests of the discord plugin: the real agenthost daemon and
// plugin processes, discordgo inside the plugin, and a fake Discord
// (gateway and REST) started by the test in its place.

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agenthost/agenthost/plugins/discord/discordtest"
	"github.com/agenthost/agenthost/sdk"
)

const discordWait = 45 * time.Second

// discordWorld is a fake Discord with a bot, a guild and a member.
type discordWorld struct {
	srv     *discordtest.Server
	token   string
	bot     discordtest.User
	app     string
	alice   discordtest.User
	guild   *discordtest.Guild
	general string
}

func newDiscordWorld(t *testing.T, botName string) *discordWorld {
	t.Helper()
	srv := discordtest.New()
	t.Cleanup(srv.Close)
	w := &discordWorld{srv: srv, token: "e2e-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	w.bot, w.app = srv.AddBot(w.token, botName)
	owner := srv.NewUser("owner", "The Owner", false)
	w.alice = srv.NewUser("alice", "Alice", false)
	w.guild = srv.AddGuild("E2E Guild", owner, w.alice)
	w.general = w.guild.Channels[0].ID
	return w
}

// settings are a character's settings for this fake Discord.
func (w *discordWorld) settings(more map[string]any) map[string]any {
	s := map[string]any{"DISCORD_API_TOKEN": w.token, "DISCORD_APPLICATION_ID": w.app, "DISCORD_API_ROOT": w.srv.URL}
	for k, v := range more {
		s[k] = v
	}
	return s
}

func (w *discordWorld) waitOnline(t *testing.T, d *daemon) {
	t.Helper()
	if !w.srv.WaitConnected(1, discordWait) {
		t.Fatalf("the agent did not come online on the fake Discord\n%s", tail(d.out.String(), 6000))
	}
}

// mention is a message that mentions the bot, as Discord sends one.
func (w *discordWorld) mention(text string) (string, *discordtest.MessageOptions) {
	return "<@" + w.bot.ID + "> " + text, &discordtest.MessageOptions{Mentions: []discordtest.User{w.bot}}
}

// waitPosted waits until the bot posted n messages in a channel whose text
// contains substr.
func (w *discordWorld) waitPosted(t *testing.T, d *daemon, channel, substr string, n int) []discordtest.Posted {
	t.Helper()
	var got []discordtest.Posted
	ok := w.srv.Wait(discordWait, func() bool {
		got = got[:0]
		for _, p := range w.srv.Posted(channel) {
			if strings.Contains(p.Content, substr) {
				got = append(got, p)
			}
		}
		return len(got) >= n
	})
	if !ok {
		t.Fatalf("want %d message(s) with %q in the channel, got %+v\n%s", n, substr, w.srv.Posted(channel), tail(d.out.String(), 8000))
	}
	return got
}

func agentID(t *testing.T, d *daemon) string {
	t.Helper()
	code, env := d.get("/api/agents")
	if code != http.StatusOK {
		t.Fatalf("agents: %d", code)
	}
	var agents struct {
		Agents []struct{ ID string } `json:"agents"`
	}
	if err := json.Unmarshal(env.Data, &agents); err != nil || len(agents.Agents) != 1 {
		t.Fatalf("agents: %s %v", env.Data, err)
	}
	return agents.Agents[0].ID
}

func TestDiscordMessageInReplyOut(t *testing.T) {
	t.Parallel()
	w := newDiscordWorld(t, "Scripty")
	char := scriptedCharacter(t, w.settings(nil), "discord")
	d := startDaemon(t, daemonOpts{pluginDir: pluginDirWith(t, bins.scripted), characters: []string{char}})
	w.waitOnline(t, d)

	text, opts := w.mention("hello there")
	m := w.srv.Send(w.general, w.alice, text, opts)
	want := "scripted reply to: Scripty (@" + w.bot.ID + ") hello there"
	reply := w.waitPosted(t, d, w.general, "scripted reply to:", 1)[0]
	if reply.Content != want {
		t.Errorf("reply = %q, want %q (the mention rewritten to the bot's name)", reply.Content, want)
	}
	if reply.MessageReference == nil || reply.MessageReference.MessageID != m.ID {
		t.Errorf("the reply should be a Discord reply to %s: %+v", m.ID, reply.MessageReference)
	}
	if w.srv.Typing(w.general) == 0 {
		t.Error("no typing indicator while the agent thought")
	}
	if cmds := w.srv.Commands(w.app); len(cmds) != 1 || cmds[0].Name != "chat" {
		t.Errorf("slash commands: %+v", cmds)
	}
	// The host mapped the channel to the agent's room, with both messages.
	id := agentID(t, d)
	mems := d.memories(id, sdk.CreateUniqueUUID(id, w.general))
	var texts []string
	for _, mem := range mems {
		texts = append(texts, mem.Content.Text)
	}
	joined := strings.Join(texts, "\n")
	if !strings.Contains(joined, "Scripty (@"+w.bot.ID+") hello there") || !strings.Contains(joined, want) {
		t.Errorf("the room's memories should hold the message and the reply: %q", texts)
	}
	for _, mem := range mems {
		if mem.Content.Text == "Scripty (@"+w.bot.ID+") hello there" && mem.EntityID != sdk.CreateUniqueUUID(id, w.alice.ID) {
			t.Errorf("the sender's entity: %s", mem.EntityID)
		}
	}
}

func TestDiscordLongReplyIsSplitAndRateLimitsAreWaitedOut(t *testing.T) {
	t.Parallel()
	w := newDiscordWorld(t, "Scripty")
	var long strings.Builder
	long.WriteString(strings.Repeat("This is a long answer. ", 70)) // 1610
	long.WriteString("\n```python\n")
	for i := 0; i < 40; i++ {
		long.WriteString("print('a line of python code')\n") // 31
	}
	long.WriteString("```\n")
	long.WriteString(strings.Repeat("That was the code. ", 60))
	char := scriptedCharacter(t, w.settings(map[string]any{"SCRIPTED_REPLY": long.String()}), "discord")
	d := startDaemon(t, daemonOpts{pluginDir: pluginDirWith(t, bins.scripted), characters: []string{char}})
	w.waitOnline(t, d)
	w.srv.Force429("POST /channels/"+w.general+"/messages", 1, 700*time.Millisecond, false)
	w.srv.SetRateLimit("POST /channels/"+w.general+"/messages", 2, time.Second)

	text, opts := w.mention("tell me everything")
	m := w.srv.Send(w.general, w.alice, text, opts)
	w.waitPosted(t, d, w.general, "That was the code.", 1)
	posted := w.srv.Posted(w.general)
	if len(posted) < 3 {
		t.Fatalf("want the reply in 3 or more messages, got %d", len(posted))
	}
	var joined strings.Builder
	for i, p := range posted {
		if strings.Count(p.Content, "```")%2 != 0 {
			t.Errorf("message %d breaks the code block: %q", i, p.Content)
		}
		joined.WriteString(p.Content)
	}
	if posted[0].MessageReference == nil || posted[0].MessageReference.MessageID != m.ID {
		t.Error("the first message should be a Discord reply")
	}
	if !strings.HasPrefix(posted[0].Content, "This is a long answer.") || !strings.Contains(joined.String(), "print('a line of python code')") {
		t.Errorf("the text is not all there, in order")
	}
	var n429 int
	for _, r := range w.srv.Requests() {
		if r.Status == http.StatusTooManyRequests {
			n429++
		}
	}
	if n429 != 1 {
		t.Errorf("want exactly the one forced 429, got %d", n429)
	}
	if v := w.srv.Violations(); len(v) != 0 {
		t.Errorf("requests ignored the rate-limit headers: %v", v)
	}
}

func TestDiscordGatewayResume(t *testing.T) {
	t.Parallel()
	w := newDiscordWorld(t, "Scripty")
	char := scriptedCharacter(t, w.settings(nil), "discord")
	d := startDaemon(t, daemonOpts{pluginDir: pluginDirWith(t, bins.scripted), characters: []string{char}})
	w.waitOnline(t, d)
	text, opts := w.mention("before the drop")
	w.srv.Send(w.general, w.alice, text, opts)
	w.waitPosted(t, d, w.general, "before the drop", 1)

	w.srv.DropConnections()
	// Said while the bot was away: the resumed session replays it.
	text, opts = w.mention("while you were away")
	w.srv.Send(w.general, w.alice, text, opts)
	w.waitPosted(t, d, w.general, "while you were away", 1)
	if w.srv.Resumed() < 1 {
		t.Error("the session should have been resumed")
	}
	if n := w.srv.Identifies(); n != 1 {
		t.Errorf("a dropped connection is resumed, not logged in again: %d identifies", n)
	}
}

func TestDiscordSlashCommand(t *testing.T) {
	t.Parallel()
	w := newDiscordWorld(t, "Scripty")
	char := scriptedCharacter(t, w.settings(nil), "discord")
	d := startDaemon(t, daemonOpts{pluginDir: pluginDirWith(t, bins.scripted), characters: []string{char}})
	w.waitOnline(t, d)
	if !w.srv.Wait(discordWait, func() bool { return len(w.srv.Commands(w.app)) == 1 }) {
		t.Fatal("/chat was not registered")
	}
	w.srv.SlashCommand(w.general, w.alice, "chat", discordtest.CommandOption{Name: "message", Type: 3, Value: "what is up, Scripty?"})
	ok := w.srv.Wait(discordWait, func() bool {
		for _, m := range w.srv.WebhookMessages() {
			if m.Via == "original" && m.Content == "scripted reply to: what is up, Scripty?" {
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("the command's answer should replace thinking…: %+v\n%s", w.srv.WebhookMessages(), tail(d.out.String(), 6000))
	}
	if cbs := w.srv.Callbacks(); len(cbs) != 1 || cbs[0].Type != 5 {
		t.Errorf("want one deferred response, got %+v", cbs)
	}
}

func TestDiscordInvalidToken(t *testing.T) {
	t.Parallel()
	w := newDiscordWorld(t, "Scripty")
	settings := w.settings(map[string]any{"DISCORD_API_TOKEN": "not-the-token"})
	char := scriptedCharacter(t, settings, "discord")
	d := launch(t, daemonOpts{pluginDir: pluginDirWith(t, bins.scripted), characters: []string{char}})
	code, out := d.waitExit(60 * time.Second)
	if code == 0 {
		t.Fatalf("a refused token must stop the agent's start\n%s", out)
	}
	for _, want := range []string{"DISCORD_API_TOKEN", "401", "Reset Token"} {
		if !strings.Contains(out, want) {
			t.Errorf("the error should mention %q:\n%s", want, tail(out, 3000))
		}
	}
	if w.srv.Identifies() != 0 {
		t.Error("no gateway login with a refused token")
	}
}

// TestDiscordPluginCrashKeepsTheReply kills the discord plugin while the
// agent thinks about a message: the run goes on in the host, the restarted
// plugin delivers the reply, as a Discord reply, exactly once.
func TestDiscordPluginCrashKeepsTheReply(t *testing.T) {
	t.Parallel()
	w := newDiscordWorld(t, "Scripty")
	marks := t.TempDir()
	char := scriptedCharacter(t, w.settings(map[string]any{"SCRIPTED_DELAY_MS": "2500", "SCRIPTED_MARK_DIR": marks}), "discord")
	d := startDaemon(t, daemonOpts{pluginDir: pluginDirWith(t, bins.scripted), characters: []string{char}})
	w.waitOnline(t, d)
	var pid int
	for _, p := range children(d.cmd.Process.Pid) {
		if strings.Contains(cmdline(p), "__plugin discord") {
			pid = p
		}
	}
	if pid == 0 {
		t.Fatal("no discord plugin process among the daemon's children")
	}
	text, opts := w.mention("do not lose this")
	m := w.srv.Send(w.general, w.alice, text, opts)
	started := filepath.Join(marks, "model-started")
	if !w.srv.Wait(discordWait, func() bool { _, err := os.Stat(started); return err == nil }) {
		t.Fatal("the model call never started")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	replies := w.waitPosted(t, d, w.general, "do not lose this", 1)
	if replies[0].MessageReference == nil || replies[0].MessageReference.MessageID != m.ID {
		t.Errorf("after the restart the reply should still answer %s: %+v", m.ID, replies[0].MessageReference)
	}
	if w.srv.Identifies() < 2 {
		t.Error("the restarted plugin should have logged in again")
	}
	// The host hands the reply to the restarted plugin while it handles
	// the message, so once it is handled every post of it has been made.
	d.waitInboxEmpty(agentID(t, d))
	if n := len(w.waitPosted(t, d, w.general, "do not lose this", 1)); n != 1 {
		t.Errorf("the reply was posted %d times", n)
	}
	if alive(pid) {
		t.Error("the killed plugin process is still there")
	}
}

// TestDiscordDefaultAgent: with no character and DISCORD_API_TOKEN in the
// environment, the default agent comes online on Discord, as in elizaOS.
func TestDiscordDefaultAgent(t *testing.T) {
	t.Parallel()
	w := newDiscordWorld(t, "Eliza")
	d := startDaemon(t, daemonOpts{env: []string{"DISCORD_API_TOKEN=" + w.token, "DISCORD_API_ROOT=" + w.srv.URL}})
	w.waitOnline(t, d)
	dm := w.srv.DMChannel(w.alice)
	m := w.srv.Send(dm.ID, w.alice, "I feel tired today", nil)
	if !w.srv.Wait(discordWait, func() bool { return len(w.srv.Posted(dm.ID)) > 0 }) {
		t.Fatalf("the default agent did not answer on Discord\n%s", tail(d.out.String(), 6000))
	}
	p := w.srv.Posted(dm.ID)[0]
	if strings.TrimSpace(p.Content) == "" || p.MessageReference == nil || p.MessageReference.MessageID != m.ID {
		t.Errorf("reply: %+v", p)
	}
}
