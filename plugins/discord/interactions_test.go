package discord

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/plugins/discord/discordtest"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
)

var httpClient = &http.Client{Timeout: 10 * time.Second}

func newRequest(method, url string, body []byte) (*http.Request, error) {
	return http.NewRequest(method, url, bytes.NewReader(body))
}

func TestSlashCommandIsRegisteredAndAnswered(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.waitFor("commands registered", func() bool { return len(h.srv.Commands(h.app)) > 0 })
	cmds := h.srv.Commands(h.app)
	if len(cmds) != 1 || cmds[0].Name != "chat" || !strings.Contains(cmds[0].Description, "Disco") || len(cmds[0].Options) != 1 {
		t.Fatalf("commands: %+v", cmds)
	}
	in := h.srv.SlashCommand(h.general, h.alice, "chat", discordtest.CommandOption{Name: "message", Type: 3, Value: "what is 2+2?"})
	msg := h.received(1)
	if msg.Content.Text != "what is 2+2?" || msg.MessageID != in.ID || msg.UserID != h.alice.ID || msg.ChannelID != h.general {
		t.Errorf("the command's message: %+v", msg)
	}
	cbs := h.srv.Callbacks()
	if len(cbs) != 1 || cbs[0].Type != 5 {
		t.Fatalf("want a deferred response (type 5) within Discord's 3 seconds, got %+v", cbs)
	}
	if _, err := h.send(sdk.Target{ChannelID: h.general}, sdk.Content{Text: "4", InReplyTo: h.memID(in.ID)}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.send(sdk.Target{ChannelID: h.general}, sdk.Content{Text: "and more", InReplyTo: h.memID(in.ID)}); err != nil {
		t.Fatal(err)
	}
	wm := h.srv.WebhookMessages()
	if len(wm) != 2 || wm[0].Via != "original" || wm[0].Content != "4" || wm[1].Via != "followup" || wm[1].Content != "and more" {
		t.Fatalf("want the answer in place of thinking…, then a followup: %+v", wm)
	}
	if p := h.srv.Posted(h.general); len(p) != 0 {
		t.Errorf("the answer went to the channel too: %+v", p)
	}
	if err := h.c.HandleEvent(t.Context(), testAgent, sdk.Event{Type: sdk.EventRunEnded, Payload: map[string]any{"messageId": h.memID(in.ID)}}); err != nil {
		t.Fatal(err)
	}
	// RUN_ENDED decides during the call whether the response is to go; it
	// deletes only an unanswered one.
	if d := h.srv.DeletedOriginals(); len(d) != 0 {
		t.Errorf("an answered command's response was deleted")
	}
}

func TestUnansweredSlashCommandLosesItsThinking(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	in := h.srv.SlashCommand(h.general, h.alice, "chat", discordtest.CommandOption{Name: "message", Type: 3, Value: "hm"})
	h.received(1)
	if err := h.c.HandleEvent(t.Context(), testAgent, sdk.Event{Type: sdk.EventRunEnded, Payload: map[string]any{"messageId": h.memID(in.ID)}}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the deferred response deleted", func() bool { return len(h.srv.DeletedOriginals()) == 1 })
}

func TestSlashCommandWhereTheBotDoesNotAnswer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{before: func(h *harness) { h.extra[SettingChannelIDs] = "111" }})
	h.srv.SlashCommand(h.general, h.alice, "chat", discordtest.CommandOption{Name: "message", Type: 3, Value: "hi"})
	h.waitFor("an answer", func() bool { return len(h.srv.Callbacks()) == 1 })
	cb := h.srv.Callbacks()[0]
	var data struct {
		Content string `json:"content"`
		Flags   int    `json:"flags"`
	}
	_ = json.Unmarshal(cb.Data, &data)
	if cb.Type != 4 || data.Flags&64 == 0 || !strings.Contains(data.Content, "allow-list") {
		t.Errorf("want an ephemeral explanation, got type %d %+v", cb.Type, data)
	}
	if len(h.rt.Received()) != 0 {
		t.Error("the command reached the agent")
	}
}

func TestPendingSlashCommandSurvivesAPluginRestart(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	h := newHarness(t, harnessOpts{dataDir: dataDir})
	in := h.srv.SlashCommand(h.general, h.alice, "chat", discordtest.CommandOption{Name: "message", Type: 3, Value: "slow question"})
	h.received(1)
	// The plugin process goes away; a new one comes up on the same data
	// directory and is asked to send the answer.
	if err := h.c.Unconfigure(t.Context(), testAgent); err != nil {
		t.Fatal(err)
	}
	h2 := restartPlugin(t, h)
	if _, err := h2.send(sdk.Target{ChannelID: h.general}, sdk.Content{Text: "here you go", InReplyTo: h.memID(in.ID)}); err != nil {
		t.Fatal(err)
	}
	wm := h.srv.WebhookMessages()
	if len(wm) != 1 || wm[0].Via != "original" || wm[0].Content != "here you go" {
		t.Fatalf("the answer should replace thinking… after the restart: %+v", wm)
	}
}

func TestComponentInteraction(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ids, err := h.send(sdk.Target{ChannelID: h.general}, sdk.Content{Text: "pick one"})
	if err != nil {
		t.Fatal(err)
	}
	h.srv.ClickButton(ids[0], h.alice, "colour", "blue")
	ev := h.event(EventInteraction)
	if ev.Payload["customId"] != "colour" || ev.Payload["messageId"] != ids[0] || ev.Payload["userId"] != h.alice.ID {
		t.Errorf("payload: %v", ev.Payload)
	}
	if vals, _ := ev.Payload["values"].([]any); len(vals) != 1 || vals[0] != "blue" {
		t.Errorf("values: %v", ev.Payload["values"])
	}
	cbs := h.srv.Callbacks()
	if len(cbs) != 1 || cbs[0].Type != 6 {
		t.Errorf("want a deferred update (type 6), got %+v", cbs)
	}
	raw, found, err := storage.For(h.agent()).GetCache(t.Context(), "discord:selection:"+ids[0]+":"+h.alice.ID)
	if err != nil || !found || !strings.Contains(string(raw), "blue") {
		t.Errorf("the choice should be cached: %s %v %v", raw, found, err)
	}
}
