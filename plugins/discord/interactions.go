package discord

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/bwmarrin/discordgo"
)

// chatCommand is the slash command the plugin registers: /chat message:…
// asks the agent, and the agent's answer replaces Discord's "thinking…".
const chatCommand = "chat"

// interactionTTL is how long Discord accepts answers to an interaction.
const interactionTTL = 15 * time.Minute

// selectionTTL is how long a button or menu choice stays in the cache.
const selectionTTL = 24 * time.Hour

func (b *bot) registerCommands() {
	b.mu.Lock()
	app := b.appID
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(b.ctx, callTimeout)
	defer cancel()
	cmds := []*discordgo.ApplicationCommand{{
		Name:        chatCommand,
		Description: clip("Talk to "+b.a.Name(), 100),
		Options: []*discordgo.ApplicationCommandOption{{
			Type: discordgo.ApplicationCommandOptionString, Name: "message", Description: "What to say", Required: true,
		}},
	}}
	if _, err := b.session().ApplicationCommandBulkOverwrite(app, "", cmds, discordgo.WithContext(ctx)); err != nil {
		b.log.Warn("registering the slash commands failed; /chat is unavailable", "application", app, "error", err)
		return
	}
	b.log.Info("slash commands registered", "application", app, "commands", "/"+chatCommand)
}

func (b *bot) onInteraction(_ *discordgo.Session, i *discordgo.InteractionCreate) {
	if i.Interaction == nil {
		return
	}
	in := i.Interaction
	if in.Member != nil {
		in.Member = copyMember(in.Member)
	}
	// Each interaction has a queue of its own: Discord wants an answer
	// within three seconds, whatever the channel is busy with.
	b.queue.push("interaction:"+in.ID, func() { b.handleInteraction(in) })
}

func interactionUser(in *discordgo.Interaction) (*discordgo.User, *discordgo.Member) {
	if in.Member != nil && in.Member.User != nil {
		return in.Member.User, in.Member
	}
	if in.User != nil {
		return in.User, nil
	}
	return &discordgo.User{ID: "0", Username: "unknown"}, nil
}

func (b *bot) handleInteraction(in *discordgo.Interaction) {
	switch in.Type {
	case discordgo.InteractionApplicationCommand:
		b.handleCommand(in)
	case discordgo.InteractionMessageComponent:
		b.handleComponent(in)
	default:
		b.log.Debug("interaction of an unhandled type", "type", in.Type.String())
	}
}

// respond answers an interaction at once.
func (b *bot) respond(in *discordgo.Interaction, r *discordgo.InteractionResponse) error {
	ctx, cancel := context.WithTimeout(b.ctx, 3*time.Second)
	defer cancel()
	return b.session().InteractionRespond(in, r, discordgo.WithContext(ctx))
}

func (b *bot) ephemeral(in *discordgo.Interaction, text string) {
	err := b.respond(in, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseChannelMessageWithSource,
		Data: &discordgo.InteractionResponseData{Content: text, Flags: discordgo.MessageFlagsEphemeral}})
	if err != nil {
		b.log.Warn("answering an interaction failed", "interaction", in.ID, "error", err)
	}
}

// handleCommand answers /chat: Discord is told the answer will follow,
// and the message goes to the agent like any other; its reply edits the
// deferred response.
func (b *bot) handleCommand(in *discordgo.Interaction) {
	data := in.ApplicationCommandData()
	if data.Name != chatCommand {
		b.ephemeral(in, "I do not know the command /"+data.Name+".")
		return
	}
	user, member := interactionUser(in)
	w := b.locate(in.ChannelID, in.GuildID)
	pseudo := &discordgo.Message{ID: in.ID, ChannelID: in.ChannelID, GuildID: in.GuildID, Author: user, Member: member}
	reason, listenOnly := b.filter(pseudo, w, true)
	if listenOnly {
		reason = "this channel is listen-only (" + SettingListenChannelIDs + ")"
	}
	if reason != "" {
		b.ignores.ignored(in.ChannelID, "slash command: "+reason, "interaction", in.ID, "author", user.Username)
		b.ephemeral(in, "I am not answering here: "+reason+".")
		return
	}
	text := ""
	for _, o := range data.Options {
		if o.Name == "message" && o.Type == discordgo.ApplicationCommandOptionString {
			text = o.StringValue()
		}
	}
	if err := b.respond(in, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource}); err != nil {
		b.log.Error("acknowledging a slash command failed", "interaction", in.ID, "error", err)
		return
	}
	memID := b.memoryID(in.ID)
	ri := &replyInfo{ChannelID: in.ChannelID, GuildID: in.GuildID, Expires: time.Now().Add(interactionTTL),
		Interaction: &interactionRef{ID: in.ID, AppID: in.AppID, Token: in.Token}}
	b.mu.Lock()
	b.replies[memID] = ri
	b.mu.Unlock()
	b.saveInteraction(memID, ri)
	channelID, serverID, threadID := w.ids()
	userName, display := names(user, member)
	msg := sdk.IncomingMessage{Source: Source, MessageID: in.ID, ChannelID: channelID, ServerID: serverID, ThreadID: threadID,
		UserID: user.ID, UserName: userName, DisplayName: display, ChannelType: w.kind, RoomName: w.roomName, WorldName: w.world,
		CreatedAt: time.Now().UnixMilli(), AuthorIsBot: user.Bot,
		Content: sdk.Content{Text: text, Source: Source, ChannelType: w.kind, Extra: map[string]any{"discordCommand": chatCommand}}}
	if w.dm {
		msg.WorldName = w.roomName
	}
	ctx, cancel := context.WithTimeout(b.ctx, callTimeout)
	defer cancel()
	if _, err := b.a.ReceiveMessage(ctx, msg); err != nil {
		if b.ctx.Err() != nil {
			// The plugin is stopping, and the host may have taken the
			// message before the call was cut: the pending answer stays
			// on disk for the next process (it expires unanswered).
			b.log.Warn("a slash command was cut off by the plugin stopping; its answer stays pending", "interaction", in.ID, "error", err)
			return
		}
		b.log.Error("handing a slash command to the agent failed", "interaction", in.ID, "error", err)
		sorry := "Sorry, I could not take that in just now."
		if _, err := b.session().InteractionResponseEdit(in, &discordgo.WebhookEdit{Content: &sorry}, discordgo.WithContext(ctx)); err != nil {
			b.log.Warn("answering a failed slash command failed", "interaction", in.ID, "error", err)
		}
		b.forgetInteraction(memID)
	}
}

// handleComponent acknowledges a button press or a menu choice, keeps the
// choice in the cache under discord:selection:MESSAGE:USER and emits
// DISCORD_INTERACTION for the agent's plugins to act on.
func (b *bot) handleComponent(in *discordgo.Interaction) {
	if err := b.respond(in, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredMessageUpdate}); err != nil {
		b.log.Error("acknowledging a component interaction failed", "interaction", in.ID, "error", err)
		return
	}
	user, member := interactionUser(in)
	w := b.locate(in.ChannelID, in.GuildID)
	pseudo := &discordgo.Message{ID: in.ID, ChannelID: in.ChannelID, GuildID: in.GuildID, Author: user, Member: member}
	if reason, _ := b.filter(pseudo, w, true); reason != "" {
		b.ignores.ignored(in.ChannelID, "component: "+reason, "interaction", in.ID, "author", user.Username)
		return
	}
	data := in.MessageComponentData()
	messageID := ""
	if in.Message != nil {
		messageID = in.Message.ID
	}
	ctx, cancel := context.WithTimeout(b.ctx, callTimeout)
	defer cancel()
	e := b.entity(user, member)
	if err := storage.For(b.a).EnsureConnection(ctx, storage.Connection{Entity: e, Room: b.room(w), World: b.world(w)}); err != nil {
		b.log.Warn("storing the user of a component interaction failed", "error", err)
	}
	payload := map[string]any{"customId": data.CustomID, "componentType": int(data.ComponentType), "values": data.Values,
		"messageId": messageID, "channelId": in.ChannelID, "guildId": in.GuildID, "userId": user.ID,
		"entityId": e.ID, "roomId": b.roomID(w), "interactionId": in.ID}
	if messageID != "" {
		raw, _ := json.Marshal(map[string]any{"customId": data.CustomID, "values": data.Values, "at": time.Now().UnixMilli()})
		key := fmt.Sprintf("discord:selection:%s:%s", messageID, user.ID)
		if err := storage.For(b.a).SetCache(ctx, key, raw, selectionTTL); err != nil {
			b.log.Warn("keeping a component choice failed", "error", err)
		}
	}
	b.emit(ctx, sdk.Event{Type: EventInteraction, Source: Source, Payload: payload})
}

// loadInteractions reads the interactions whose answers were pending when
// a previous process of the plugin stopped.
func (b *bot) loadInteractions() {
	now := time.Now()
	b.pending.load(func(id string, raw []byte) {
		var ri replyInfo
		if err := json.Unmarshal(raw, &ri); err != nil || ri.Interaction == nil || now.After(ri.Expires) {
			_ = b.pending.remove(id)
			return
		}
		b.replies[id] = &ri
	}, func(name string, err error) {
		b.log.Warn("unreadable pending interaction", "file", name, "error", err)
	})
}

func (b *bot) saveInteraction(memID string, ri *replyInfo) {
	b.mu.Lock()
	cp := *ri
	ic := *ri.Interaction
	cp.Interaction = &ic
	b.mu.Unlock()
	if err := b.pending.put(memID, cp); err != nil {
		b.log.Warn("could not keep a slash command's answer on disk; a crash now would leave it unanswered", "error", err)
	}
}

func (b *bot) forgetInteraction(memID string) {
	b.mu.Lock()
	delete(b.replies, memID)
	b.mu.Unlock()
	_ = b.pending.remove(memID)
}
