package discord

import (
	"context"
	"sort"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/bwmarrin/discordgo"
)

// maxMembersSynced bounds how many members of a guild are stored when the
// bot joins it; as in elizaOS, a big guild's members are stored as they
// speak.
const maxMembersSynced = 1000

func (b *bot) onGuildCreate(_ *discordgo.Session, g *discordgo.GuildCreate) {
	if g.Guild == nil || g.Unavailable {
		return
	}
	guild := snapshotGuild(g.Guild)
	b.mu.Lock()
	known := b.readyGuilds[guild.ID]
	delete(b.readyGuilds, guild.ID)
	b.mu.Unlock()
	b.queue.push("guild:"+guild.ID, func() { b.handleGuild(guild, known) })
}

// textRooms lists the guild's channels and threads that map to rooms,
// first the channel messages go to by default.
func textRooms(g *discordgo.Guild) []*discordgo.Channel {
	var out []*discordgo.Channel
	for _, c := range append(append([]*discordgo.Channel(nil), g.Channels...), g.Threads...) {
		if c == nil {
			continue
		}
		switch c.Type {
		case discordgo.ChannelTypeGuildCategory, discordgo.ChannelTypeGuildDirectory:
			continue
		}
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool {
		ki, kj := roomOrder(g, out[i]), roomOrder(g, out[j])
		if ki != kj {
			return ki < kj
		}
		return out[i].Position < out[j].Position
	})
	return out
}

func roomOrder(g *discordgo.Guild, c *discordgo.Channel) int {
	switch {
	case c.ID == g.SystemChannelID:
		return 0
	case c.Type == discordgo.ChannelTypeGuildText:
		return 1
	case c.Type == discordgo.ChannelTypeGuildVoice || c.Type == discordgo.ChannelTypeGuildStageVoice:
		return 3
	}
	return 2
}

func (b *bot) guildWhere(g *discordgo.Guild, c *discordgo.Channel) where {
	if c.GuildID == "" {
		c.GuildID = g.ID
	}
	w := where{channel: c, guildID: g.ID, kind: channelKind(c, g.ID), roomName: c.Name, world: g.Name}
	if w.kind == sdk.ChannelThread {
		w.thread, w.parentID = true, c.ParentID
	}
	return w
}

// handleGuild stores a guild as a world with its channels as rooms and
// its members as entities, and emits WORLD_JOINED (a guild the bot was
// just added to) or WORLD_CONNECTED (one it was in already).
func (b *bot) handleGuild(g *discordgo.Guild, known bool) {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Minute)
	defer cancel()
	rooms := textRooms(g)
	if len(rooms) == 0 {
		b.log.Debug("guild has no channel the agent can use", "guild", g.Name)
		return
	}
	first := b.guildWhere(g, rooms[0])
	world := b.world(first)
	world.Metadata = map[string]any{Source: map[string]any{"id": g.ID, "name": g.Name}}
	if g.OwnerID != "" {
		owner := b.entityID(g.OwnerID)
		world.Metadata["ownership"] = map[string]any{"ownerId": owner}
		world.Metadata["roles"] = map[string]any{owner: "OWNER"}
	}
	var roomList []map[string]any
	for i, c := range rooms {
		w := b.guildWhere(g, c)
		r := b.room(w)
		// The world is written once; the other rooms and the members
		// only name it, so metadata stored since (roles) stays.
		conn := storage.Connection{Room: r}
		if i == 0 {
			conn.World = world
		}
		if err := storage.For(b.a).EnsureConnection(ctx, conn); err != nil {
			b.log.Warn("storing a channel failed", "guild", g.Name, "channel", c.Name, "error", err)
			continue
		}
		roomList = append(roomList, map[string]any{"id": r.ID, "name": r.Name, "type": string(r.Type), "channelId": c.ID})
	}
	var entities []map[string]any
	defaultRoom := b.room(first)
	for i, m := range g.Members {
		if i >= maxMembersSynced {
			break
		}
		if m == nil || m.User == nil {
			continue
		}
		e := b.entity(m.User, m)
		if err := storage.For(b.a).EnsureConnection(ctx, storage.Connection{Entity: e, Room: defaultRoom}); err != nil {
			b.log.Warn("storing a member failed", "guild", g.Name, "user", m.User.Username, "error", err)
			continue
		}
		entities = append(entities, map[string]any{"id": e.ID, "names": e.Names, "userId": m.User.ID})
	}
	typ := sdk.EventWorldJoined
	if known {
		typ = EventWorldConnected
	}
	b.emit(ctx, sdk.Event{Type: typ, Source: Source, Payload: map[string]any{
		"worldId": world.ID, "serverId": g.ID, "name": g.Name, "rooms": roomList, "entities": entities, "source": Source}})
	b.log.Info("guild synced", "guild", g.Name, "event", typ, "rooms", len(roomList), "members", len(entities))
}

// defaultWhere is the guild's first room, where joining members are put.
func (b *bot) defaultWhere(guildID string) (where, *discordgo.Guild, bool) {
	g, ok := b.stateGuild(guildID)
	if !ok {
		return where{}, nil, false
	}
	rooms := textRooms(g)
	if len(rooms) == 0 {
		return where{}, g, false
	}
	return b.guildWhere(g, rooms[0]), g, true
}

func (b *bot) onGuildMemberAdd(_ *discordgo.Session, m *discordgo.GuildMemberAdd) {
	if m.Member == nil || m.User == nil {
		return
	}
	member := copyMember(m.Member)
	b.queue.push("guild:"+member.GuildID, func() { b.handleMember(member, true) })
}

func (b *bot) onGuildMemberRemove(_ *discordgo.Session, m *discordgo.GuildMemberRemove) {
	if m.Member == nil || m.User == nil {
		return
	}
	member := copyMember(m.Member)
	b.queue.push("guild:"+member.GuildID, func() { b.handleMember(member, false) })
}

// handleMember stores a member who joined and emits ENTITY_JOINED, or
// emits ENTITY_LEFT for one who left.
func (b *bot) handleMember(m *discordgo.Member, joined bool) {
	ctx, cancel := context.WithTimeout(b.ctx, callTimeout)
	defer cancel()
	e := b.entity(m.User, m)
	payload := map[string]any{"entityId": e.ID, "userId": m.User.ID, "names": e.Names, "serverId": m.GuildID,
		"worldId": sdk.CreateUniqueUUID(b.a.ID, m.GuildID), "source": Source}
	if !joined {
		b.emit(ctx, sdk.Event{Type: EventEntityLeft, Source: Source, Payload: payload})
		return
	}
	if w, _, ok := b.defaultWhere(m.GuildID); ok {
		r := b.room(w)
		if err := storage.For(b.a).EnsureConnection(ctx, storage.Connection{Entity: e, Room: r}); err != nil {
			b.log.Warn("storing a new member failed", "user", m.User.Username, "error", err)
		}
		payload["roomId"] = r.ID
	}
	b.emit(ctx, sdk.Event{Type: sdk.EventEntityJoined, Source: Source, Payload: payload})
}
