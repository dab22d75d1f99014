package discord

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/plugins/discord/discordtest"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/plugintest"
	"github.com/hashicorp/go-hclog"
)

const (
	testToken = "test-token-1"
	testAgent = "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"
	waitLong  = 10 * time.Second
)

// logBuffer keeps the plugin's log for assertions and echoes it to the
// test's output.
type logBuffer struct {
	t  *testing.T
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// bot returns the bot of the agent with id agentID, or nil.
func (p *plugin) bot(agentID string) *bot {
	for id, b := range p.bots.All() {
		if id == agentID {
			return b
		}
	}
	return nil
}

// stopAll takes every agent offline before the test's other cleanups run;
// the plugin's shutdown would stop the bots too, but only later.
func (p *plugin) stopAll() {
	for _, b := range p.bots.All() {
		if b != nil {
			b.stop()
		}
	}
}

// harness is a plugin served over the real gRPC path (plugintest) and
// connected with discordgo to a fake Discord, with a guild "Test Guild"
// whose owner is olga and where alice is a member.
type harness struct {
	t       *testing.T
	p       *plugin
	srv     *discordtest.Server
	c       *plugintest.Client
	rt      *plugintest.Runtime
	logs    *logBuffer
	dataDir string
	bot     discordtest.User
	app     string
	owner   discordtest.User
	alice   discordtest.User
	guild   *discordtest.Guild
	general string
	// extra settings, set by harnessOpts.before.
	extra     map[string]string
	settings  map[string]string
	character *sdk.Character
}

type harnessOpts struct {
	settings  map[string]string
	character map[string]any
	server    []discordtest.Option
	dataDir   string
	// before runs after the fake Discord is set up, before the plugin
	// is configured.
	before    func(h *harness)
	noConnect bool
}

func testOptions(logs *logBuffer) options {
	o := defaultOptions()
	o.log = hclog.New(&hclog.LoggerOptions{Name: "discord", Output: logs, Level: hclog.Debug})
	o.typingEvery = 50 * time.Millisecond
	o.backoffMin = 20 * time.Millisecond
	o.backoffMax = 200 * time.Millisecond
	o.retryEvery = 100 * time.Millisecond
	o.hostPoll = 10 * time.Millisecond
	return o
}

func newHarness(t *testing.T, ho harnessOpts) *harness {
	t.Helper()
	srv := discordtest.New(append([]discordtest.Option{discordtest.WithHeartbeatInterval(300 * time.Millisecond)}, ho.server...)...)
	t.Cleanup(srv.Close)
	h := &harness{t: t, srv: srv, logs: &logBuffer{t: t}, extra: map[string]string{}}
	h.bot, h.app = srv.AddBot(testToken, "Disco")
	h.owner = srv.NewUser("olga", "Olga", false)
	h.alice = srv.NewUser("alice", "Alice A.", false)
	h.guild = srv.AddGuild("Test Guild", h.owner, h.alice)
	h.general = h.guild.Channels[0].ID
	if ho.before != nil {
		ho.before(h)
	}
	h.dataDir = ho.dataDir
	if h.dataDir == "" {
		h.dataDir = t.TempDir()
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("DISCORD_TEST_LOG") != "" {
			t.Logf("plugin log:\n%s", h.logs.String())
		}
	})
	settings := map[string]string{SettingToken: testToken, SettingAPIRoot: srv.URL}
	for k, v := range ho.settings {
		settings[k] = v
	}
	for k, v := range h.extra {
		settings[k] = v
	}
	h.settings = settings
	h.character = &sdk.Character{Name: "Disco", Settings: ho.character}
	if err := h.startPlugin(); err != nil {
		t.Fatalf("configure: %v", err)
	}
	if !ho.noConnect && !srv.WaitConnected(1, waitLong) {
		t.Fatalf("the plugin did not connect to the fake gateway\n%s", h.logs.String())
	}
	return h
}

// startPlugin starts a plugin process's worth of plugin and configures
// the agent in it.
func (h *harness) startPlugin() error {
	p := newPlugin(testOptions(h.logs))
	h.p = p
	h.c = plugintest.Start(h.t, p.definition(), plugintest.WithDataDir(h.dataDir))
	h.t.Cleanup(p.stopAll) // runs before plugintest stops the server
	h.rt = h.c.Runtime()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	_, err := h.c.Configure(ctx, testAgent, h.character, h.settings)
	return err
}

// restartPlugin plays a new plugin process on the same data directory.
func restartPlugin(t *testing.T, h *harness) *harness {
	t.Helper()
	h2 := &harness{t: t, srv: h.srv, logs: h.logs, dataDir: h.dataDir, bot: h.bot, app: h.app, owner: h.owner,
		alice: h.alice, guild: h.guild, general: h.general, settings: h.settings, character: h.character}
	if err := h2.startPlugin(); err != nil {
		t.Fatalf("configure again: %v", err)
	}
	if !h.srv.WaitConnected(1, waitLong) {
		t.Fatal("the new plugin did not connect")
	}
	return h2
}

// waitFor polls cond until it holds.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	testwait.For(h.t, waitLong, what, cond)
}

// flush waits until the bot has handled every event of a channel (or
// other key of its queue) that it started on: a task queued behind them
// runs only then. To check that an event was ignored, wait for it to be
// seen (its log line), flush, and look.
func (h *harness) flush(key string) {
	h.t.Helper()
	b := h.p.bot(testAgent)
	if b == nil {
		h.t.Fatal("the agent has no bot")
	}
	done := make(chan struct{})
	b.queue.push(key, func() { close(done) })
	select {
	case <-done:
	case <-time.After(waitLong):
		h.t.Fatalf("the events of %s were not handled in %s", key, waitLong)
	}
}

// typingStopped waits until no typing indicator loop runs: after that, no
// typing request can reach Discord.
func (h *harness) typingStopped() {
	h.t.Helper()
	b := h.p.bot(testAgent)
	h.waitFor("the typing indicator to stop", func() bool { return b.typingRunning.Load() == 0 })
}

// gaveUp waits until the bot's gateway loop has returned for good: after
// that, it makes no login attempt.
func (h *harness) gaveUp() {
	h.t.Helper()
	b := h.p.bot(testAgent)
	select {
	case <-b.done:
	case <-time.After(waitLong):
		h.t.Fatalf("the bot still tries to reach the gateway after %s", waitLong)
	}
}

// received waits for the nth message handed to the host (1-based).
func (h *harness) received(n int) sdk.IncomingMessage {
	h.t.Helper()
	h.waitFor("a message handed to the host", func() bool { return len(h.rt.Received()) >= n })
	return h.rt.Received()[n-1]
}

func (h *harness) event(typ string) sdk.Event {
	h.t.Helper()
	var ev sdk.Event
	h.waitFor("event "+typ, func() bool {
		for _, e := range h.rt.Events() {
			if e.Type == typ {
				ev = e
				return true
			}
		}
		return false
	})
	return ev
}

func (h *harness) logHas(what string) {
	h.t.Helper()
	h.waitFor("the log to say "+what, func() bool { return strings.Contains(h.logs.String(), what) })
}

// send calls the plugin's source as the host does for a reply.
func (h *harness) send(t sdk.Target, c sdk.Content) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Source = Source
	return h.c.SendMessage(ctx, testAgent, t, c)
}

func (h *harness) memID(discordID string) string { return sdk.CreateUniqueUUID(testAgent, discordID) }

// agent is the *sdk.Agent the SDK gave the plugin: bound to the fake host,
// so a test reads through it what the plugin stored.
func (h *harness) agent() *sdk.Agent {
	h.t.Helper()
	b := h.p.bot(testAgent)
	if b == nil {
		h.t.Fatal("the agent has no bot")
	}
	return b.a
}
