package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/google/uuid"
)

// The events bootstrap handles besides MESSAGE_RECEIVED, named as elizaOS
// names them.
const (
	EventVoiceMessageReceived = "VOICE_MESSAGE_RECEIVED"
	EventChannelCleared       = "CHANNEL_CLEARED"
	EventWorldConnected       = "WORLD_CONNECTED"
	EventEntityLeft           = "ENTITY_LEFT"
	EventEntityUpdated        = "ENTITY_UPDATED"
	EventPostGenerated        = "POST_GENERATED"
)

// Entity statuses kept in an entity's metadata.status.
const (
	entityActive   = "ACTIVE"
	entityInactive = "INACTIVE"
)

// eventHandlers are the plugin's event subscriptions.
//
// Payloads are elizaOS's (the event's Payload, its JSON object, with the
// message of the message events in Event.Message or in payload.message).
// Ids in a payload are taken as the agent's when they are UUIDs, as
// elizaOS's platform plugins send them; any other id is a platform's and is
// made the agent's with createUniqueUuid, as the host does for incoming
// messages.
func (b *bootstrap) eventHandlers() []sdk.EventHandler {
	return []sdk.EventHandler{
		{Type: sdk.EventMessageReceived, Handle: b.handleMessage},
		{Type: EventVoiceMessageReceived, Handle: b.handleVoiceMessage},
		{Type: sdk.EventReactionReceived, Handle: b.handleReaction},
		{Type: sdk.EventMessageDeleted, Handle: b.handleMessageDeleted},
		{Type: EventChannelCleared, Handle: b.handleChannelCleared},
		{Type: sdk.EventWorldJoined, Handle: b.handleWorld},
		{Type: EventWorldConnected, Handle: b.handleWorld},
		{Type: sdk.EventEntityJoined, Handle: b.handleEntity},
		{Type: EventEntityUpdated, Handle: b.handleEntity},
		{Type: EventEntityLeft, Handle: b.handleEntityLeft},
		{Type: EventPostGenerated, Handle: b.handlePost},
	}
}

// agentScoped returns a payload's id as the agent's: a UUID as it is, any
// other string through createUniqueUuid.
func agentScoped(a *sdk.Agent, id string) string {
	id = strings.TrimSpace(id)
	switch {
	case id == "":
		return ""
	case sdk.IsUUID(id):
		return strings.ToLower(id)
	}
	return sdk.CreateUniqueUUID(a.ID, id)
}

// decodePayload reads the event's payload into v, through JSON.
func decodePayload(ev *sdk.Event, v any) error {
	if len(ev.Payload) == 0 {
		return nil
	}
	if e, ok := ev.Payload["_decodeError"].(string); ok {
		return fmt.Errorf("the payload is not a JSON object: %s", e)
	}
	raw, err := json.Marshal(ev.Payload)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// eventMessage returns the message of a message event: Event.Message, or
// else payload.message. Its ids are made the agent's.
func eventMessage(a *sdk.Agent, ev *sdk.Event) (*sdk.Memory, error) {
	m := ev.Message
	if m == nil {
		var p struct {
			Message *sdk.Memory `json:"message"`
		}
		if err := decodePayload(ev, &p); err != nil {
			return nil, fmt.Errorf("%s: %w", ev.Type, err)
		}
		m = p.Message
	}
	if m == nil {
		return nil, fmt.Errorf("%s without a message", ev.Type)
	}
	c := *m
	c.ID, c.EntityID, c.RoomID, c.WorldID = agentScoped(a, c.ID), agentScoped(a, c.EntityID), agentScoped(a, c.RoomID), agentScoped(a, c.WorldID)
	c.Content.InReplyTo = agentScoped(a, c.Content.InReplyTo)
	if c.Content.Source == "" {
		c.Content.Source = ev.Source
	}
	return &c, nil
}

// handleReaction stores a reaction (an emoji on a message, as a memory of
// its own) among the room's messages. A reaction delivered twice is stored
// once.
func (b *bootstrap) handleReaction(ctx context.Context, a *sdk.Agent, ev *sdk.Event) error {
	m, err := eventMessage(a, ev)
	if err != nil {
		return err
	}
	if m.RoomID == "" || m.EntityID == "" {
		return fmt.Errorf("%s: the reaction needs a roomId and an entityId", ev.Type)
	}
	m.AgentID = a.ID
	m.Table = sdk.TableMessages
	if m.CreatedAt == 0 {
		m.CreatedAt = time.Now().UnixMilli()
	}
	_, created, err := a.CreateMemory(ctx, m, sdk.TableMessages, false)
	if err != nil {
		return fmt.Errorf("store the reaction: %w", err)
	}
	if !created {
		b.log.Debug("reaction already stored", "agent", a.ID, "memory", m.ID)
	}
	return nil
}

// handleMessageDeleted deletes the memory of a message the platform
// deleted.
func (b *bootstrap) handleMessageDeleted(ctx context.Context, a *sdk.Agent, ev *sdk.Event) error {
	m, err := eventMessage(a, ev)
	if err != nil {
		return err
	}
	if m.ID == "" {
		return fmt.Errorf("%s: the message has no id", ev.Type)
	}
	if err := a.DeleteMemory(ctx, m.ID); err != nil {
		return fmt.Errorf("delete message %s: %w", m.ID, err)
	}
	return nil
}

// handleChannelCleared deletes the messages of a room whose channel was
// cleared (payload roomId, or channelId). Other memories of the room
// (facts, documents) stay, as in elizaOS.
func (b *bootstrap) handleChannelCleared(ctx context.Context, a *sdk.Agent, ev *sdk.Event) error {
	var p struct {
		RoomID    string `json:"roomId"`
		ChannelID string `json:"channelId"`
	}
	if err := decodePayload(ev, &p); err != nil {
		return fmt.Errorf("%s: %w", ev.Type, err)
	}
	room := agentScoped(a, firstNonEmpty(p.RoomID, p.ChannelID))
	if room == "" {
		return fmt.Errorf("%s without a roomId or channelId", ev.Type)
	}
	n, err := a.DeleteAllMemories(ctx, room, sdk.TableMessages)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, sdk.ErrUnavailable) {
			return fmt.Errorf("clear room %s: %w", room, err)
		}
		// A runtime without the bulk delete: one by one, as elizaOS does.
		b.log.Debug("bulk delete failed; deleting one by one", "room", room, "error", err)
		if n, err = deleteRoomMessages(ctx, a, room); err != nil {
			return fmt.Errorf("clear room %s: %w", room, err)
		}
	}
	b.log.Info("room cleared", "agent", a.ID, "room", room, "deleted", n)
	return nil
}

func deleteRoomMessages(ctx context.Context, a *sdk.Agent, room string) (int64, error) {
	var n int64
	for {
		ms, err := a.GetMemories(ctx, sdk.MemoryQuery{Table: sdk.TableMessages, RoomID: room, Count: 500, OmitEmbeddings: true})
		if err != nil {
			return n, err
		}
		if len(ms) == 0 {
			return n, nil
		}
		before := n
		for _, m := range ms {
			if m.ID == "" {
				continue
			}
			if err := a.DeleteMemory(ctx, m.ID); err != nil {
				return n, err
			}
			n++
		}
		if n == before {
			return n, nil
		}
	}
}

// worldPayload is WORLD_JOINED's and WORLD_CONNECTED's.
type worldPayload struct {
	World    *sdk.World   `json:"world"`
	Rooms    []sdk.Room   `json:"rooms"`
	Entities []sdk.Entity `json:"entities"`
	Source   string       `json:"source"`
}

// syncParallel bounds the calls a world's sync has in flight.
const syncParallel = 8

// handleWorld syncs a server the agent joined or reconnected to: the world
// (merged into the stored one, so its owner, roles and settings stay), each
// of its rooms, and its members, who become participants of the first room
// (elizaOS's ensureConnections).
func (b *bootstrap) handleWorld(ctx context.Context, a *sdk.Agent, ev *sdk.Event) error {
	var p worldPayload
	if err := decodePayload(ev, &p); err != nil {
		return fmt.Errorf("%s: %w", ev.Type, err)
	}
	if p.World == nil || (p.World.ID == "" && p.World.ServerID == "") {
		return fmt.Errorf("%s without a world", ev.Type)
	}
	source := firstNonEmpty(p.Source, ev.Source)
	w := *p.World
	w.ID = agentScoped(a, w.ID)
	if w.ID == "" {
		w.ID = sdk.CreateUniqueUUID(a.ID, w.ServerID)
	}
	w.AgentID = a.ID
	world, err := mergeWorld(ctx, a, w)
	if err != nil {
		return fmt.Errorf("%s: store world %s: %w", ev.Type, w.ID, err)
	}
	var rooms []sdk.Room
	for _, r := range p.Rooms {
		r.ID = agentScoped(a, r.ID)
		if r.ID == "" {
			r.ID = agentScoped(a, r.ChannelID)
		}
		if r.ID == "" {
			continue
		}
		r.AgentID, r.WorldID = a.ID, world.ID
		r.Source = firstNonEmpty(r.Source, source)
		r.ServerID = firstNonEmpty(r.ServerID, world.ServerID)
		rooms = append(rooms, r)
	}
	err = parallel(ctx, len(rooms), func(i int) error {
		err := a.EnsureConnection(ctx, sdk.Connection{Room: rooms[i], World: *world})
		forget(roomKey(a, rooms[i].ID))
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: store rooms: %w", ev.Type, err)
	}
	var entities []sdk.Entity
	for _, e := range p.Entities {
		e.ID = agentScoped(a, e.ID)
		if e.ID == "" || e.ID == a.ID {
			continue
		}
		e.AgentID = a.ID
		entities = append(entities, e)
	}
	if len(rooms) == 0 {
		err = mergeEntities(ctx, a, entities)
	} else {
		err = parallel(ctx, len(entities), func(i int) error {
			return a.EnsureConnection(ctx, sdk.Connection{Entity: entities[i], Room: rooms[0], World: *world})
		})
	}
	if err != nil {
		return fmt.Errorf("%s: store members: %w", ev.Type, err)
	}
	b.log.Info("world synced", "agent", a.ID, "event", ev.Type, "world", world.ID, "rooms", len(rooms), "entities", len(entities))
	return nil
}

// parallel runs f(0..n-1), syncParallel at a time, and returns the first
// error; after one, the calls not yet started are skipped.
func parallel(ctx context.Context, n int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, syncParallel)
	for i := 0; i < n; i++ {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed || ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := f(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// mergeWorld stores w merged into the stored world of its id: w's name and
// server id when set, its metadata keys over the stored ones. It returns
// the world as stored.
func mergeWorld(ctx context.Context, a *sdk.Agent, w sdk.World) (*sdk.World, error) {
	ws, err := a.GetWorlds(ctx, w.ID)
	if err != nil {
		return nil, err
	}
	if len(ws) > 0 {
		old := ws[0]
		old.Name = firstNonEmpty(w.Name, old.Name)
		old.ServerID = firstNonEmpty(w.ServerID, old.ServerID)
		old.Metadata = mergeMeta(old.Metadata, w.Metadata)
		old.AgentID = a.ID
		w = old
	}
	if err := upsertWorld(ctx, a, w); err != nil {
		return nil, err
	}
	return &w, nil
}

// mergeMeta returns old with new's keys over it; a key holding an object
// in both is merged one level down (a platform's block of an entity).
func mergeMeta(old, new map[string]any) map[string]any {
	if len(new) == 0 {
		return old
	}
	out := make(map[string]any, len(old)+len(new))
	for k, v := range old {
		out[k] = v
	}
	for k, v := range new {
		ov, ok1 := old[k].(map[string]any)
		nv, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			m := make(map[string]any, len(ov)+len(nv))
			for kk, vv := range ov {
				m[kk] = vv
			}
			for kk, vv := range nv {
				m[kk] = vv
			}
			out[k] = m
			continue
		}
		out[k] = v
	}
	return out
}

// mergeEntities stores entities merged into the stored ones: names added,
// metadata keys over the stored ones.
func mergeEntities(ctx context.Context, a *sdk.Agent, entities []sdk.Entity) error {
	const batch = 500
	for start := 0; start < len(entities); start += batch {
		part := entities[start:min(start+batch, len(entities))]
		ids := make([]string, len(part))
		for i, e := range part {
			ids[i] = e.ID
		}
		stored, err := a.GetEntities(ctx, ids...)
		if err != nil {
			return err
		}
		byID := make(map[string]sdk.Entity, len(stored))
		for _, e := range stored {
			byID[e.ID] = e
		}
		out := make([]sdk.Entity, len(part))
		for i, e := range part {
			if old, ok := byID[e.ID]; ok {
				e.Names = mergeNameList(old.Names, e.Names)
				e.Metadata = mergeMeta(old.Metadata, e.Metadata)
			}
			if e.Names == nil {
				e.Names = []string{}
			}
			e.AgentID = a.ID
			out[i] = e
		}
		if err := a.UpsertEntities(ctx, out...); err != nil {
			return err
		}
	}
	return nil
}

func mergeNameList(old, new []string) []string {
	out := append([]string(nil), old...)
	for _, n := range new {
		if n = strings.TrimSpace(n); n != "" && !contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// entityPayload is ENTITY_JOINED's, ENTITY_UPDATED's and ENTITY_LEFT's.
// channelId, serverId and type are accepted beside elizaOS's fields for a
// platform that names its ids.
type entityPayload struct {
	EntityID  string         `json:"entityId"`
	WorldID   string         `json:"worldId"`
	RoomID    string         `json:"roomId"`
	ChannelID string         `json:"channelId"`
	ServerID  string         `json:"serverId"`
	Type      string         `json:"type"`
	Source    string         `json:"source"`
	Metadata  map[string]any `json:"metadata"`
}

// handleEntity syncs a user who joined a server or changed: their names
// (display name and user name) and their details under the source's key of
// the entity's metadata; with a room, the room and the world too, and the
// user becomes a participant (elizaOS's syncSingleUser). A DM's world with
// no owner gets the user as its owner, which lets them configure it. A
// user who joins again is active again.
func (b *bootstrap) handleEntity(ctx context.Context, a *sdk.Agent, ev *sdk.Event) error {
	var p entityPayload
	if err := decodePayload(ev, &p); err != nil {
		return fmt.Errorf("%s: %w", ev.Type, err)
	}
	id := agentScoped(a, p.EntityID)
	if id == "" {
		if orig, _ := p.Metadata["originalId"].(string); orig != "" {
			id = agentScoped(a, orig)
		}
	}
	if id == "" {
		return fmt.Errorf("%s without an entityId", ev.Type)
	}
	source := firstNonEmpty(p.Source, ev.Source)
	meta := func(k string) string { return str(p.Metadata[k]) }
	e := sdk.Entity{ID: id, AgentID: a.ID, Names: mergeNameList(nil, []string{meta("displayName"), meta("username"), meta("name")}), Metadata: map[string]any{}}
	if source != "" {
		details := map[string]any{}
		for k, v := range p.Metadata {
			switch k {
			case "type":
			case "originalId":
				details["id"] = v
			case "username":
				details["userName"] = v
			case "displayName":
				details["name"] = v
			default:
				details[k] = v
			}
		}
		if len(details) > 0 {
			e.Metadata[source] = details
		}
	}
	if ev.Type == sdk.EventEntityJoined {
		e.Metadata["status"] = entityActive
		e.Metadata["joinedAt"] = time.Now().UnixMilli()
	}
	roomID := agentScoped(a, firstNonEmpty(p.RoomID, p.ChannelID))
	if roomID == "" {
		if err := mergeEntities(ctx, a, []sdk.Entity{e}); err != nil {
			return fmt.Errorf("%s: store entity %s: %w", ev.Type, id, err)
		}
		return nil
	}
	worldID := agentScoped(a, p.WorldID)
	if worldID == "" && p.ServerID != "" {
		worldID = sdk.CreateUniqueUUID(a.ID, p.ServerID)
	}
	typ := sdk.ChannelType(strings.ToUpper(firstNonEmpty(p.Type, meta("type"))))
	room := sdk.Room{ID: roomID, AgentID: a.ID, Source: source, Type: typ, ChannelID: p.ChannelID, ServerID: p.ServerID, WorldID: worldID}
	c := sdk.Connection{Entity: e, Room: room}
	if worldID != "" {
		w := sdk.World{ID: worldID, AgentID: a.ID, ServerID: p.ServerID}
		if ws, err := a.GetWorlds(ctx, worldID); err == nil && len(ws) > 0 {
			w = ws[0]
		}
		if typ == sdk.ChannelDM && ownerOf(&w) == "" {
			if w.Metadata == nil {
				w.Metadata = map[string]any{}
			}
			w.Metadata["ownership"] = map[string]any{"ownerId": id}
			setRole(&w, id, RoleOwner)
			if _, ok := w.Metadata["settings"]; !ok {
				w.Metadata["settings"] = map[string]any{}
			}
		}
		c.World = w
	}
	err := a.EnsureConnection(ctx, c)
	forget(roomKey(a, roomID), worldKey(a, worldID))
	if err != nil {
		return fmt.Errorf("%s: store entity %s in room %s: %w", ev.Type, id, roomID, err)
	}
	return nil
}

func str(v any) string { s, _ := v.(string); return strings.TrimSpace(s) }

// ownerOf returns the owner of a world, or "".
func ownerOf(w *sdk.World) string {
	own, _ := w.Metadata["ownership"].(map[string]any)
	id, _ := own["ownerId"].(string)
	return id
}

// handleEntityLeft marks a user who left as inactive: metadata.status
// INACTIVE and metadata.leftAt (unix milliseconds). The entity and its
// history stay.
func (b *bootstrap) handleEntityLeft(ctx context.Context, a *sdk.Agent, ev *sdk.Event) error {
	var p entityPayload
	if err := decodePayload(ev, &p); err != nil {
		return fmt.Errorf("%s: %w", ev.Type, err)
	}
	id := agentScoped(a, p.EntityID)
	if id == "" {
		return fmt.Errorf("%s without an entityId", ev.Type)
	}
	es, err := a.GetEntities(ctx, id)
	if err != nil {
		return fmt.Errorf("%s: read entity %s: %w", ev.Type, id, err)
	}
	if len(es) == 0 {
		b.log.Debug("entity left but was never stored", "agent", a.ID, "entity", id)
		return nil
	}
	e := es[0]
	if e.Metadata == nil {
		e.Metadata = map[string]any{}
	}
	e.Metadata["status"] = entityInactive
	e.Metadata["leftAt"] = time.Now().UnixMilli()
	if e.Names == nil {
		e.Names = []string{}
	}
	e.AgentID = a.ID
	if err := a.UpsertEntities(ctx, e); err != nil {
		return fmt.Errorf("%s: store entity %s: %w", ev.Type, id, err)
	}
	return nil
}

// handleVoiceMessage runs a transcribed voice message through the
// MESSAGE_RECEIVED pipeline. Its replies go where the payload's target
// says, or else back to the message's room on its source: the run was
// started by the plugin that emitted the event, not by the host, so there
// is no host run to answer through unless the emitter named one.
func (b *bootstrap) handleVoiceMessage(ctx context.Context, a *sdk.Agent, ev *sdk.Event) error {
	m, err := eventMessage(a, ev)
	if err != nil {
		return err
	}
	var p struct {
		Target *sdk.Target `json:"target"`
	}
	_ = decodePayload(ev, &p)
	t := b.defaultTarget(ctx, a, firstNonEmpty(m.Content.Source, ev.Source), m.RoomID, m.EntityID)
	if p.Target != nil && p.Target.Source != "" {
		t = *p.Target
	}
	e := *ev
	e.Message = m
	if e.RunID == "" {
		e.RunID = uuid.NewString()
	}
	if e.Source == "" {
		e.Source = m.Content.Source
	}
	key := a.ID + "\x00" + e.RunID
	b.eventRuns.Store(key, t)
	defer b.eventRuns.Delete(key)
	return b.handleMessage(ctx, a, &e)
}

// defaultTarget is where a message to a room goes: the room's channel on
// the source.
func (b *bootstrap) defaultTarget(ctx context.Context, a *sdk.Agent, source, roomID, entityID string) sdk.Target {
	t := sdk.Target{Source: source, RoomID: roomID, EntityID: entityID}
	if room, err := cachedRoom(ctx, a, roomID); err == nil && room != nil {
		t.ChannelID, t.ServerID = room.ChannelID, room.ServerID
		t.Source = firstNonEmpty(t.Source, room.Source)
	}
	return t
}

// respond sends a stored reply of a run: through the host's run (the
// source the message came from), or, for a run an event started, to the
// event's target.
func (b *bootstrap) respond(ctx context.Context, a *sdk.Agent, runID string, reply *sdk.Memory) error {
	v, evRun := b.eventRuns.Load(a.ID + "\x00" + runID)
	_, err := a.Respond(ctx, runID, reply.Content, reply.ID)
	if err == nil || !evRun || !errors.Is(err, sdk.ErrNotFound) {
		return err
	}
	_, err = a.SendMessage(ctx, v.(sdk.Target), reply.Content)
	return err
}

// postPayload is POST_GENERATED's. elizaOS's callback is a function; here
// "target" (or "callback") names where the post goes, as a target or as a
// source's name.
type postPayload struct {
	WorldID  string          `json:"worldId"`
	UserID   string          `json:"userId"`
	RoomID   string          `json:"roomId"`
	Source   string          `json:"source"`
	Target   json.RawMessage `json:"target"`
	Callback json.RawMessage `json:"callback"`
}

// postTarget reads a target named by an object or by a source's name.
func postTarget(raw json.RawMessage) (*sdk.Target, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var name string
	if json.Unmarshal(raw, &name) == nil {
		if name = strings.TrimSpace(name); name == "" {
			return nil, nil
		}
		return &sdk.Target{Source: name}, nil
	}
	var t sdk.Target
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	return &t, nil
}

// handlePost writes a post for the agent's feed on a social platform: the
// feed's world and room are ensured (type FEED), state is composed for a
// post (the character's post style and example posts, the feed's recent
// posts), and TEXT_LARGE writes it with the postCreationTemplate. A post
// that repeats a recent one or reads like a model's refusal is asked for
// again, up to RESPONSE_RETRIES times. The post is stored in the feed's
// room and sent with channelType FEED and type "post" to the payload's
// target, or through the host run the event names, or else to the feed on
// the payload's source.
func (b *bootstrap) handlePost(ctx context.Context, a *sdk.Agent, ev *sdk.Event) error {
	var p postPayload
	if err := decodePayload(ev, &p); err != nil {
		return fmt.Errorf("%s: %w", ev.Type, err)
	}
	target, err := postTarget(p.Target)
	if err == nil && target == nil {
		target, err = postTarget(p.Callback)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", ev.Type, err)
	}
	source := firstNonEmpty(p.Source, ev.Source)
	if target != nil {
		source = firstNonEmpty(source, target.Source)
	}
	user := firstNonEmpty(p.UserID, source, "feed")
	worldID := agentScoped(a, p.WorldID)
	if worldID == "" {
		worldID = sdk.CreateUniqueUUID(a.ID, user)
	}
	roomID := agentScoped(a, p.RoomID)
	if roomID == "" {
		roomID = sdk.CreateUniqueUUID(a.ID, user+"-home")
	}
	feed := a.Name() + "'s Feed"
	world := sdk.World{ID: worldID, Name: feed, AgentID: a.ID, ServerID: user}
	if ws, err := a.GetWorlds(ctx, worldID); err == nil && len(ws) > 0 {
		world = ws[0] // an existing world stays as it is
	}
	room := sdk.Room{ID: roomID, Name: feed, AgentID: a.ID, Source: source, Type: sdk.ChannelFeed, ChannelID: user + "-home", ServerID: user, WorldID: worldID}
	if r, err := a.GetRoom(ctx, roomID); err == nil && r != nil {
		room = *r
	}
	if err := a.EnsureConnection(ctx, sdk.Connection{Room: room, World: world}); err != nil {
		return fmt.Errorf("%s: ensure the feed: %w", ev.Type, err)
	}
	forget(roomKey(a, roomID), worldKey(a, worldID))

	runID := firstNonEmpty(ev.RunID, uuid.NewString())
	// The message the state is composed for: the agent in its feed, with
	// no text. It has no id, so the host caches no state for it.
	msg := &sdk.Memory{EntityID: a.ID, AgentID: a.ID, RoomID: roomID, WorldID: worldID, CreatedAt: time.Now().UnixMilli(),
		Content: sdk.Content{Source: source, ChannelType: sdk.ChannelFeed}}
	st, err := a.ComposeState(ctx, msg, sdk.ComposeOptions{RunID: runID, Include: []string{"PROVIDERS", "CHARACTER", "RECENT_MESSAGES", "ENTITIES"}})
	if err != nil {
		return fmt.Errorf("%s: compose state: %w", ev.Type, err)
	}
	extra := map[string]any{}
	if ents, err := a.GetEntities(ctx, a.ID); err == nil && len(ents) > 0 {
		// The agent's handle on the platform, if the platform told it.
		blk, _ := ents[0].Metadata[source].(map[string]any)
		if u := firstNonEmpty(str(blk["userName"]), str(blk["username"])); u != "" {
			extra["userName"] = u
		}
	}
	recent := b.recentPosts(ctx, a, roomID)
	attempts := settingInt(a, SettingResponseRetries, 3)
	var post, thought, why string
	for i := 0; i < attempts && post == ""; i++ {
		prompt := renderPrompt(a, "postCreationTemplate", st, extra)
		if why != "" {
			prompt += "\nYour previous post " + why + ". Write a different one.\n"
		}
		res, err := a.UseModel(ctx, sdk.ModelRequest{Type: sdk.ModelTextLarge, RunID: runID, Prompt: prompt, System: system(a)})
		if err != nil {
			return fmt.Errorf("%s: ask the model: %w", ev.Type, err)
		}
		text, th := parsePost(res.Text)
		switch {
		case text == "":
			why = "was empty"
		case recent[normalizePost(text)]:
			why = "repeated a recent post"
		case isRefusal(text):
			why = "was a refusal"
		default:
			post, thought = text, th
			continue
		}
		b.log.Warn("unusable post; asking again", "agent", a.ID, "run", runID, "attempt", i+1, "why", why, "post", truncate(text, 200))
	}
	if post == "" {
		return fmt.Errorf("%s: no usable post after %d attempts (the last %s)", ev.Type, attempts, why)
	}
	m := &sdk.Memory{ID: uuid.NewString(), EntityID: a.ID, AgentID: a.ID, RoomID: roomID, WorldID: worldID, CreatedAt: time.Now().UnixMilli(),
		Content: sdk.Content{Text: post, Thought: thought, Source: source, ChannelType: sdk.ChannelFeed,
			Extra: map[string]any{"type": "post", "runId": runID}}}
	if _, _, err := a.CreateMemory(ctx, m, sdk.TableMessages, false); err != nil {
		return fmt.Errorf("%s: store the post: %w", ev.Type, err)
	}
	if err := b.sendPost(ctx, a, ev.RunID, target, sdk.Target{Source: source, RoomID: roomID, ChannelID: room.ChannelID, ServerID: room.ServerID}, m); err != nil {
		// A post nobody saw is not the agent's: it must not count as posted.
		if derr := a.DeleteMemory(context.WithoutCancel(ctx), m.ID); derr != nil {
			b.log.Warn("forgetting an unsent post failed", "memory", m.ID, "error", derr)
		}
		return fmt.Errorf("%s: send the post: %w", ev.Type, err)
	}
	return nil
}

// sendPost delivers a post: to the target the payload named, else through
// the host run the event named, else to the feed.
func (b *bootstrap) sendPost(ctx context.Context, a *sdk.Agent, runID string, target *sdk.Target, feed sdk.Target, m *sdk.Memory) error {
	if target != nil {
		t := *target
		if t.RoomID == "" && t.ChannelID == "" {
			t.RoomID, t.ChannelID, t.ServerID = feed.RoomID, feed.ChannelID, firstNonEmpty(t.ServerID, feed.ServerID)
		}
		_, err := a.SendMessage(ctx, t, m.Content)
		return err
	}
	if runID != "" {
		_, err := a.Respond(ctx, runID, m.Content, m.ID)
		if err == nil || !errors.Is(err, sdk.ErrNotFound) {
			return err
		}
	}
	_, err := a.SendMessage(ctx, feed, m.Content)
	return err
}

// recentPosts returns the room's recent texts, normalized, to catch a
// repeated post.
func (b *bootstrap) recentPosts(ctx context.Context, a *sdk.Agent, roomID string) map[string]bool {
	out := map[string]bool{}
	ms, err := a.GetMemories(ctx, sdk.MemoryQuery{Table: sdk.TableMessages, RoomID: roomID, Count: conversationLength(a), OmitEmbeddings: true})
	if err != nil {
		return out
	}
	for _, m := range ms {
		if t := normalizePost(m.Content.Text); t != "" {
			out[t] = true
		}
	}
	return out
}

// parsePost reads the model's post: <post> of the XML answer, or its
// <text>, or a plain-text answer; tidied (quotes around it removed,
// escaped newlines made real).
func parsePost(s string) (post, thought string) {
	if n := parseXML(s); n != nil && (n.has("post") || n.has("text") || n.has("thought")) {
		post, thought = firstNonEmpty(n.get("post"), n.get("text")), n.get("thought")
	} else if !markupRe.MatchString(s) {
		post = stripFences(s)
	}
	return cleanPost(post), thought
}

var blankLines = regexp.MustCompile(`\n{3,}`)

func cleanPost(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, `\n`, "\n")
	for len(s) >= 2 {
		f, l := s[0], s[len(s)-1]
		if (f == '"' && l == '"') || (f == '\'' && l == '\'') || (f == '`' && l == '`') {
			s = strings.TrimSpace(s[1 : len(s)-1])
			continue
		}
		break
	}
	return strings.TrimSpace(blankLines.ReplaceAllString(s, "\n\n"))
}

func normalizePost(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// refusalRe matches the ways chat models decline to write something.
var refusalRe = regexp.MustCompile(`(?i)(\bas an ai\b|\bas a language model\b|\bi(?:'m| am) (?:not able|unable) to (?:help|assist|create|generate|write|produce|provide|comply)\b|\bi (?:can(?:no|')t|will not|won't) (?:help|assist|create|generate|write|produce|provide|comply)\b|\bi(?:'m| am) not comfortable\b|\bi (?:do not|don't) feel comfortable\b|\bi must (?:decline|refuse)\b|\bagainst my (?:guidelines|policies|programming)\b|\bviolates? (?:my|the) (?:content )?(?:policy|policies|guidelines)\b)`)

// isRefusal reports whether a post reads like a model declining to write
// one.
func isRefusal(s string) bool { return refusalRe.MatchString(s) }
