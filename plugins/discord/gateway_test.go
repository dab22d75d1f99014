package discord

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/plugins/discord/discordtest"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/plugintest"
	"github.com/bwmarrin/discordgo"
)

func TestResumeAfterTheConnectionDrops(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.waitFor("heartbeats acknowledged", func() bool { return h.srv.Heartbeats() >= 2 })
	h.srv.DropConnections()
	// Said while the bot is away: the session keeps it for the resume.
	h.srv.Send(h.general, h.alice, "did you miss me?", nil)
	h.waitFor("a resume", func() bool { return h.srv.Resumed() >= 1 })
	in := h.received(1)
	if in.Content.Text != "did you miss me?" {
		t.Errorf("got %q", in.Content.Text)
	}
	if n := h.srv.Identifies(); n != 1 {
		t.Errorf("a dropped connection should be resumed, not identified again: %d identifies", n)
	}
	h.logHas("resumed the Discord gateway session")

	// Discord asks the bot to reconnect (op 7): resume again.
	h.srv.RequestReconnect()
	h.waitFor("a second resume", func() bool { return h.srv.Resumed() >= 2 })
	h.srv.Send(h.general, h.alice, "still there?", nil)
	h.received(2)
	if n := h.srv.Identifies(); n != 1 {
		t.Errorf("%d identifies after op 7", n)
	}
}

func TestInvalidSessionIdentifiesAgain(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.srv.InvalidateSessions()
	h.srv.DropConnections()
	h.waitFor("a new session", func() bool { return h.srv.Identifies() >= 2 && h.srv.Connected() == 1 })
	h.srv.Send(h.general, h.alice, "new session", nil)
	if in := h.received(1); in.Content.Text != "new session" {
		t.Errorf("got %q", in.Content.Text)
	}
}

func TestRefusedTokenIsAnErrorAtConfigure(t *testing.T) {
	t.Parallel()
	srv := discordtest.New()
	t.Cleanup(srv.Close)
	srv.AddBot("the-real-token", "Disco")
	p := newPlugin(testOptions(&logBuffer{t: t}))
	c := plugintest.Start(t, p.definition())
	_, err := c.Configure(t.Context(), testAgent, &sdk.Character{Name: "Disco"},
		map[string]string{SettingToken: "a-wrong-token", SettingAPIRoot: srv.URL})
	if err == nil {
		t.Fatal("a refused token must fail the agent's configuration")
	}
	for _, want := range []string{SettingToken, "401", "Reset Token"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error should mention %q: %v", want, err)
		}
	}
	if srv.Identifies() != 0 {
		t.Error("no gateway login with a refused token")
	}
}

func TestGatewayRefusingTheTokenStopsTrying(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{noConnect: true, before: func(h *harness) { h.srv.RejectOnGateway(testToken) }})
	h.logHas("4004")
	h.logHas("the agent is offline on Discord")
	h.gaveUp()
	if n := h.srv.Identifies(); n != 1 {
		t.Errorf("a refused token must not be tried again and again: %d identifies", n)
	}
}

func TestTokenRevokedWhileOnline(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.srv.RevokeToken(testToken)
	h.logHas("the agent is offline on Discord")
	h.logHas(SettingToken)
	n := h.srv.Resumes() + h.srv.Identifies()
	h.gaveUp()
	if m := h.srv.Resumes() + h.srv.Identifies(); m != n {
		t.Errorf("the plugin kept logging in with a revoked token: %d → %d", n, m)
	}
}

func TestMissingPrivilegedIntentsAreDroppedWithAWarning(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{server: []discordtest.Option{discordtest.WithPrivilegedIntents(0)}})
	got := h.srv.IdentifyIntents()
	if len(got) != 3 {
		t.Fatalf("want three identifies (all, without members, without message content), got %v", got)
	}
	if got[0]&int(discordgo.IntentsMessageContent) == 0 || got[1]&int(discordgo.IntentsGuildMembers) != 0 ||
		got[2]&int(discordgo.IntentsMessageContent) != 0 {
		t.Errorf("intents asked: %b", got)
	}
	h.logHas("Message Content intent")
	h.logHas("Server Members intent")
	h.srv.Send(h.general, h.alice, "still works", nil)
	h.received(1)
}

func TestGatewayAddressComesFromGatewayBot(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	var bot, plain int
	for _, r := range h.srv.Requests() {
		switch r.Path {
		case "/gateway/bot":
			bot++
			if r.Header.Get("Authorization") != "Bot "+testToken {
				t.Errorf("/gateway/bot without the token: %q", r.Header.Get("Authorization"))
			}
		case "/gateway":
			plain++
		}
	}
	if bot < 2 || plain != 0 {
		t.Errorf("want /gateway/bot for the token check and the connection, and never /gateway: %d, %d", bot, plain)
	}
	if q := h.srv.GatewayQueries(); len(q) == 0 || !strings.Contains(q[0], "encoding=json") {
		t.Errorf("gateway query: %v", q)
	}
}

func TestNoTokenLeavesThePluginInert(t *testing.T) {
	t.Parallel()
	p := newPlugin(testOptions(&logBuffer{t: t}))
	c := plugintest.Start(t, p.definition())
	warnings, err := c.Configure(t.Context(), testAgent, &sdk.Character{Name: "Quiet"}, map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], SettingToken) {
		t.Errorf("warnings: %v", warnings)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := c.SendMessage(ctx, testAgent, sdk.Target{Source: Source, ChannelID: "1"}, sdk.Content{Text: "x"}); err == nil ||
		!strings.Contains(err.Error(), SettingToken) {
		t.Errorf("sending without a bot: %v", err)
	}
}

func TestTwoAgentsTwoRootsOneProcess(t *testing.T) {
	t.Parallel()
	a := discordtest.New()
	b := discordtest.New()
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	a.AddBot("token-a", "Alpha")
	b.AddBot("token-b", "Beta")
	ua, ub := a.NewUser("u", "", false), b.NewUser("u", "", false)
	ga, gb := a.AddGuild("A", ua), b.AddGuild("B", ub)
	p := newPlugin(testOptions(&logBuffer{t: t}))
	c := plugintest.Start(t, p.definition())
	t.Cleanup(p.stopAll)
	agentB := "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
	if _, err := c.Configure(t.Context(), testAgent, &sdk.Character{Name: "Alpha"}, map[string]string{SettingToken: "token-a", SettingAPIRoot: a.URL}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Configure(t.Context(), agentB, &sdk.Character{Name: "Beta"}, map[string]string{SettingToken: "token-b", SettingAPIRoot: b.URL + "/api/v9"}); err != nil {
		t.Fatal(err)
	}
	if !a.WaitConnected(1, waitLong) || !b.WaitConnected(1, waitLong) {
		t.Fatal("both agents should be online, each on its own root")
	}
	ctx := t.Context()
	if _, err := c.SendMessage(ctx, agentB, sdk.Target{Source: Source, ChannelID: gb.Channels[0].ID}, sdk.Content{Text: "from beta"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendMessage(ctx, testAgent, sdk.Target{Source: Source, ChannelID: ga.Channels[0].ID}, sdk.Content{Text: "from alpha"}); err != nil {
		t.Fatal(err)
	}
	if pa, pb := a.Posted(""), b.Posted(""); len(pa) != 1 || pa[0].Content != "from alpha" || len(pb) != 1 || pb[0].Content != "from beta" {
		t.Errorf("each reply should reach its own root: %+v / %+v", pa, pb)
	}
}
