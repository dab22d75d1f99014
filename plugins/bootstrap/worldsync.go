package bootstrap

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
)

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
		err := storage.For(a).EnsureConnection(ctx, storage.Connection{Room: rooms[i], World: *world})
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
			return storage.For(a).EnsureConnection(ctx, storage.Connection{Entity: entities[i], Room: rooms[0], World: *world})
		})
	}
	if err != nil {
		return fmt.Errorf("%s: store members: %w", ev.Type, err)
	}
	a.Logger(ctx).Info("world synced", "event", ev.Type, "world", world.ID, "rooms", len(rooms), "entities", len(entities))
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
	ws, err := storage.For(a).GetWorlds(ctx, w.ID)
	if err != nil {
		return nil, err
	}
	if len(ws) > 0 {
		old := ws[0]
		old.Name = firstNonEmpty(w.Name, old.Name)
		old.ServerID = firstNonEmpty(w.ServerID, old.ServerID)
		old.Metadata = contract.MergeMetadata(old.Metadata, w.Metadata)
		old.AgentID = a.ID
		w = old
	}
	if err := upsertWorld(ctx, a, w); err != nil {
		return nil, err
	}
	return &w, nil
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
		stored, err := storage.For(a).GetEntities(ctx, ids...)
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
				e.Metadata = contract.MergeMetadata(old.Metadata, e.Metadata)
			}
			if e.Names == nil {
				e.Names = []string{}
			}
			e.AgentID = a.ID
			out[i] = e
		}
		err = storage.For(a).UpsertEntities(ctx, out...)
		changed(a) // the rooms' people are read again
		if err != nil {
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
	c := storage.Connection{Entity: e, Room: room}
	if worldID != "" {
		w := sdk.World{ID: worldID, AgentID: a.ID, ServerID: p.ServerID}
		if ws, err := storage.For(a).GetWorlds(ctx, worldID); err == nil && len(ws) > 0 {
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
	err := storage.For(a).EnsureConnection(ctx, c)
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
	es, err := storage.For(a).GetEntities(ctx, id)
	if err != nil {
		return fmt.Errorf("%s: read entity %s: %w", ev.Type, id, err)
	}
	if len(es) == 0 {
		a.Logger(ctx).Debug("entity left but was never stored", "entity", id)
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
	err = storage.For(a).UpsertEntities(ctx, e)
	changed(a) // the rooms' people are read again
	if err != nil {
		return fmt.Errorf("%s: store entity %s: %w", ev.Type, id, err)
	}
	return nil
}
