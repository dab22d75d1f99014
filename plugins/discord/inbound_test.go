package discord

import (
	"context"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/plugins/discord/discordtest"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
)

func TestMessageIsHandedToTheAgentWithItsPlace(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.srv.SetNick(h.guild.ID, h.alice.ID, "Ally")
	first := h.srv.Send(h.general, h.owner, "first", nil)
	m := h.srv.Send(h.general, h.alice, "hi <@"+h.bot.ID+"> look at <#"+h.general+"> <:party:123456>", &discordtest.MessageOptions{
		Mentions: []discordtest.User{h.bot}, ReplyTo: first.ID,
		Attachments: []discordtest.Attachment{{Filename: "notes.txt", Size: 12, ContentType: "text/plain"}},
	})
	in := h.received(2)
	if in.MessageID != m.ID || in.Source != Source || in.ChannelID != h.general || in.ServerID != h.guild.ID || in.ThreadID != "" {
		t.Errorf("ids: %+v", in)
	}
	if in.UserID != h.alice.ID || in.UserName != "alice" || in.DisplayName != "Ally" || in.AuthorIsBot {
		t.Errorf("author: user %q name %q display %q bot %v", in.UserID, in.UserName, in.DisplayName, in.AuthorIsBot)
	}
	if want := "hi Disco (@" + h.bot.ID + ") look at #general :party:"; in.Content.Text != want {
		t.Errorf("text = %q, want %q", in.Content.Text, want)
	}
	if in.InReplyTo != first.ID {
		t.Errorf("in reply to %q, want %q", in.InReplyTo, first.ID)
	}
	if in.ChannelType != sdk.ChannelGroup || in.Content.ChannelType != sdk.ChannelGroup || in.RoomName != "general" || in.WorldName != "Test Guild" {
		t.Errorf("place: type %q room %q world %q", in.ChannelType, in.RoomName, in.WorldName)
	}
	if len(in.Content.Attachments) != 1 || in.Content.Attachments[0].Title != "notes.txt" || !strings.Contains(in.Content.Attachments[0].URL, "/files/") ||
		in.Content.Attachments[0].ContentType != "text/plain" {
		t.Errorf("attachments: %+v", in.Content.Attachments)
	}
	if want := "https://discord.com/channels/" + h.guild.ID + "/" + h.general + "/" + m.ID; in.Content.URL != want {
		t.Errorf("url = %q, want %q", in.Content.URL, want)
	}
	if in.Wait {
		t.Error("the plugin must not wait for the run: a crash of the plugin would cancel it")
	}
	h.waitFor("a typing indicator", func() bool { return h.srv.Typing(h.general) > 0 })
}

func TestThreadIsARoomOfItsOwn(t *testing.T) {
	t.Parallel()
	var thread discordtest.Channel
	h := newHarness(t, harnessOpts{
		before: func(h *harness) {
			thread = h.srv.AddChannel(h.guild.ID, "a thread", h.guild.Channels[0].ID)
			// The allow-list names the thread's channel: the thread is
			// allowed with it.
			h.extra[SettingChannelIDs] = h.guild.Channels[0].ID
		},
	})
	h.srv.Send(thread.ID, h.alice, "in the thread", nil)
	in := h.received(1)
	if in.ChannelID != thread.ID || in.ThreadID != thread.ID || in.ChannelType != sdk.ChannelThread || in.RoomName != "a thread" {
		t.Errorf("thread message: %+v", in)
	}
}

func TestDirectMessage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	dm := h.srv.DMChannel(h.alice)
	h.srv.Send(dm.ID, h.alice, "psst", nil)
	in := h.received(1)
	if in.ChannelType != sdk.ChannelDM || in.ChannelID != dm.ID || in.ServerID != dm.ID {
		t.Errorf("a DM's world is its room, as in elizaOS: %+v", in)
	}
	if !strings.Contains(in.RoomName, "alice") {
		t.Errorf("room name %q", in.RoomName)
	}
	h.srv.Send(dm.ID, h.alice, "again", nil)
	h.received(2)
	n := 0
	for _, r := range h.srv.Requests() {
		if r.Method == "GET" && r.Path == "/channels/"+dm.ID {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the DM channel should be looked up once, not per message: %d", n)
	}
}

func TestIgnoredMessagesSayWhy(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		settings  map[string]string
		character map[string]any
		send      func(h *harness)
		reason    string
	}{
		{"other bots by default", nil, nil, func(h *harness) {
			other := h.srv.NewUser("otherbot", "", true)
			h.srv.Send(h.general, other, "beep", nil)
		}, "written by a bot"},
		{"DMs when told", map[string]string{SettingIgnoreDMs: "true"}, nil, func(h *harness) {
			h.srv.Send(h.srv.DMChannel(h.alice).ID, h.alice, "psst", nil)
		}, "a direct message"},
		{"DMs when told in the character's discord block", nil,
			map[string]any{"discord": map[string]any{"shouldIgnoreDirectMessages": true}}, func(h *harness) {
				h.srv.Send(h.srv.DMChannel(h.alice).ID, h.alice, "psst", nil)
			}, "a direct message"},
		{"channels not allowed", map[string]string{SettingChannelIDs: "999"}, nil, func(h *harness) {
			h.srv.Send(h.general, h.alice, "hello", nil)
		}, "not in the allow-list"},
		{"channels not in the block's allow-list", nil,
			map[string]any{"discord": map[string]any{"allowedChannelIds": []any{"999"}}}, func(h *harness) {
				h.srv.Send(h.general, h.alice, "hello", nil)
			}, "not in the allow-list"},
		{"no mention when mentions are required", map[string]string{SettingOnlyMentions: "true"}, nil, func(h *harness) {
			h.srv.Send(h.general, h.alice, "hello everyone", nil)
		}, "the bot is not mentioned"},
		{"empty text", nil, nil, func(h *harness) {
			h.srv.Send(h.general, h.alice, "", nil)
		}, "Message Content intent"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{settings: tc.settings, character: tc.character})
			tc.send(h)
			h.logHas(tc.reason)
			if !strings.Contains(h.logs.String(), "message ignored") {
				t.Error("the log should say a message was ignored")
			}
			// Whatever the bot did with the message is done once the
			// events of its channel are handled.
			h.flush(h.general)
			h.flush(h.srv.DMChannel(h.alice).ID)
			if n := len(h.rt.Received()); n != 0 {
				t.Errorf("%d messages reached the agent", n)
			}
		})
	}
}

func TestFiltersLetThroughWhatTheyShould(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{settings: map[string]string{
		SettingOnlyMentions: "true", SettingChannelIDs: "", SettingIgnoreBots: "false",
	}, character: map[string]any{"discord": map[string]any{"allowedChannelIds": "123," + "0"}}})
	// The setting is empty, so the block's allow-list applies: general is
	// not on it.
	h.srv.Send(h.general, h.alice, "<@"+h.bot.ID+"> hi", &discordtest.MessageOptions{Mentions: []discordtest.User{h.bot}})
	h.logHas("not in the allow-list")

	h2 := newHarness(t, harnessOpts{settings: map[string]string{SettingOnlyMentions: "true", SettingIgnoreBots: "false"}})
	mine := h2.srv.Send(h2.general, h2.alice, "<@"+h2.bot.ID+"> hi", &discordtest.MessageOptions{Mentions: []discordtest.User{h2.bot}})
	h2.received(1)
	// A reply to the bot counts as a mention.
	ctx := context.Background()
	ids, err := h2.c.SendMessage(ctx, testAgent, sdk.Target{Source: Source, ChannelID: h2.general}, sdk.Content{Text: "hello alice"})
	if err != nil {
		t.Fatal(err)
	}
	h2.srv.Send(h2.general, h2.alice, "thanks", &discordtest.MessageOptions{ReplyTo: ids[0]})
	h2.received(2)
	// Bots are read when the setting says so, and marked as bots.
	other := h2.srv.NewUser("helper", "", true)
	h2.srv.Send(h2.general, other, "<@"+h2.bot.ID+"> ping", &discordtest.MessageOptions{Mentions: []discordtest.User{h2.bot}})
	in := h2.received(3)
	if in.UserName != "helper#4821" {
		t.Errorf("a bot's user name %q: elizaOS adds the discriminator", in.UserName)
	}
	_ = mine
}

func TestListenOnlyChannelIsRememberedNotAnswered(t *testing.T) {
	t.Parallel()
	h2 := newHarness(t, harnessOpts{before: func(h *harness) { h.extra[SettingListenChannelIDs] = h.general }})
	m := h2.srv.Send(h2.general, h2.alice, "just so you know", nil)
	h2.waitFor("the message stored", func() bool {
		for _, mem := range h2.rt.Memories() {
			if mem.ID == h2.memID(m.ID) && mem.Content.Text == "just so you know" {
				return true
			}
		}
		return false
	})
	h2.flush(h2.general)
	if n := len(h2.rt.Received()); n != 0 {
		t.Errorf("a listen-only channel's message reached the agent (%d)", n)
	}
}

func TestGuildsAndMembersEmitEntityEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ev := h.event(EventWorldConnected)
	if ev.Payload["serverId"] != h.guild.ID || ev.Payload["worldId"] != sdk.CreateUniqueUUID(testAgent, h.guild.ID) {
		t.Errorf("WORLD_CONNECTED payload: %v", ev.Payload)
	}
	if rooms, _ := ev.Payload["rooms"].([]any); len(rooms) != 1 {
		t.Errorf("rooms: %v", ev.Payload["rooms"])
	}
	if ents, _ := ev.Payload["entities"].([]any); len(ents) != 3 {
		t.Errorf("entities (owner, alice, the bot): %v", ev.Payload["entities"])
	}
	newcomer := h.srv.NewUser("bob", "Bobby", false)
	g2 := h.srv.JoinGuild("Second Guild", h.owner, newcomer)
	joined := h.event(sdk.EventWorldJoined)
	if joined.Payload["serverId"] != g2.ID || joined.Payload["name"] != "Second Guild" {
		t.Errorf("WORLD_JOINED payload: %v", joined.Payload)
	}
	carol := h.srv.NewUser("carol", "Carol", false)
	h.srv.AddMember(h.guild.ID, carol)
	ej := h.event(sdk.EventEntityJoined)
	if ej.Payload["entityId"] != sdk.CreateUniqueUUID(testAgent, carol.ID) || ej.Payload["serverId"] != h.guild.ID || ej.Payload["roomId"] == nil {
		t.Errorf("ENTITY_JOINED payload: %v", ej.Payload)
	}
	es, err := storage.For(agentFor(h)).GetEntities(context.Background(), sdk.CreateUniqueUUID(testAgent, carol.ID))
	if err != nil || len(es) != 1 || !contains(es[0].Names, "Carol") || !contains(es[0].Names, "carol") {
		t.Errorf("the new member should be stored with both names: %+v %v", es, err)
	}
	ws, err := storage.For(agentFor(h)).GetWorlds(context.Background(), sdk.CreateUniqueUUID(testAgent, h.guild.ID))
	if err != nil || len(ws) != 1 {
		t.Fatalf("world: %+v %v", ws, err)
	}
	roles, _ := ws[0].Metadata["roles"].(map[string]any)
	if roles[sdk.CreateUniqueUUID(testAgent, h.owner.ID)] != "OWNER" {
		t.Errorf("the guild's owner should be the world's OWNER: %v", ws[0].Metadata)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestEditsDeletesAndReactions(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	m := h.srv.Send(h.general, h.alice, "the first version", nil)
	in := h.received(1)
	// bootstrap stores the message; here the test plays it.
	mem := sdk.Memory{ID: h.memID(m.ID), EntityID: sdk.CreateUniqueUUID(testAgent, h.alice.ID), RoomID: sdk.CreateUniqueUUID(testAgent, h.general),
		Content: in.Content}
	h.rt.AddMemory(testAgent, mem)

	h.srv.Edit(m.ID, "the second version")
	up := h.event(EventMessageUpdated)
	if up.Message == nil || up.Message.Content.Text != "the second version" || up.Payload["before"] != "the first version" {
		t.Errorf("update event: %+v", up)
	}
	h.waitFor("the stored message to follow the edit", func() bool {
		for _, x := range h.rt.Memories() {
			if x.ID == mem.ID {
				return x.Content.Text == "the second version"
			}
		}
		return false
	})

	h.srv.React(m.ID, h.owner, "👍", true)
	r := h.event(sdk.EventReactionReceived)
	if r.Message == nil || r.Message.Content.InReplyTo != mem.ID || !strings.Contains(r.Message.Content.Text, "*Added <👍> to: \"the second version\"*") ||
		r.Message.EntityID != sdk.CreateUniqueUUID(testAgent, h.owner.ID) {
		t.Errorf("reaction: %+v", r.Message)
	}
	h.srv.React(m.ID, h.owner, "👍", false)
	rr := h.event(EventReactionRemoved)
	if rr.Message == nil || !strings.Contains(rr.Message.Content.Text, "Removed <👍>") {
		t.Errorf("reaction removed: %+v", rr.Message)
	}
	h.srv.Delete(m.ID)
	del := h.event(sdk.EventMessageDeleted)
	if del.Message == nil || del.Message.ID != mem.ID {
		t.Errorf("delete event: %+v", del)
	}
	h.waitFor("the deleted message forgotten", func() bool {
		for _, x := range h.rt.Memories() {
			if x.ID == mem.ID {
				return false
			}
		}
		return true
	})
}

func TestOwnMessagesAreNotHandedOver(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	if _, err := h.send(sdk.Target{ChannelID: h.general}, sdk.Content{Text: "I said this"}); err != nil {
		t.Fatal(err)
	}
	// Discord echoes the bot's message before Alice's, and the bot handles
	// a channel's events in order: once hers arrives, the echo was seen.
	h.srv.Send(h.general, h.alice, "and I said this", nil)
	h.received(1)
	if rs := h.rt.Received(); len(rs) != 1 || rs[0].Content.Text != "and I said this" {
		t.Errorf("the bot's own message (echoed by Discord) reached the agent: %+v", rs)
	}
}

// agentFor gives the test an *sdk.Agent bound to the fake host, to read
// what the plugin stored.
func agentFor(h *harness) *sdk.Agent { return h.agent() }
