package sql

import (
	"context"
	dbsql "database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/agenthost/agenthost/sdk"
)

// Participant room states (elizaOS's FOLLOWED, MUTED or none).
const (
	StateFollowed = "FOLLOWED"
	StateMuted    = "MUTED"
)

func (s *Store) checkEntity(field, agentID string, e sdk.Entity) error {
	if err := checkID(field+".id", e.ID, true); err != nil {
		return err
	}
	if err := checkOwner(field+".agentId", e.AgentID, agentID); err != nil {
		return err
	}
	if err := s.checkValue(field+".names", e.Names); err != nil {
		return err
	}
	return s.checkValue(field+".metadata", e.Metadata)
}

func (s *Store) checkRoom(field, agentID string, r sdk.Room) error {
	if err := checkID(field+".id", r.ID, true); err != nil {
		return err
	}
	if err := checkID(field+".worldId", r.WorldID, false); err != nil {
		return err
	}
	if err := checkOwner(field+".agentId", r.AgentID, agentID); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{
		{".name", r.Name}, {".source", r.Source}, {".type", string(r.Type)},
		{".channelId", r.ChannelID}, {".serverId", r.ServerID},
	} {
		if err := s.checkText(field+f.name, f.v); err != nil {
			return err
		}
	}
	return s.checkValue(field+".metadata", r.Metadata)
}

func (s *Store) checkWorld(field, agentID string, w sdk.World) error {
	if err := checkID(field+".id", w.ID, true); err != nil {
		return err
	}
	if err := checkOwner(field+".agentId", w.AgentID, agentID); err != nil {
		return err
	}
	if err := s.checkText(field+".name", w.Name); err != nil {
		return err
	}
	if err := s.checkText(field+".serverId", w.ServerID); err != nil {
		return err
	}
	return s.checkValue(field+".metadata", w.Metadata)
}

// EnsureConnection makes sure, in one transaction, that the world (when
// c.World.ID is set), the room, the entity (when c.Entity.ID is set) and
// the participation of the entity and of the agent in the room exist. It is
// idempotent. Stored records are merged, not replaced: non-empty fields of
// c override, the entity's names become the union of the stored and the
// given ones (stored order first), and metadata is merged per top-level key,
// where a key whose old and new values are both objects (the per-source
// blocks of elizaOS, {"discord": {…}}) has those objects merged shallowly
// and any other key is replaced. An empty c.Room.WorldID defaults to
// c.World.ID. The agent must be stored (EnsureAgent).
func (s *Store) EnsureConnection(ctx context.Context, agentID string, c sdk.Connection) error {
	fail := func(err error) error {
		return fmt.Errorf("ensure connection of room %s: %w", truncate(c.Room.ID), err)
	}
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if c.World.ID != "" {
		if err := s.checkWorld("world", agentID, c.World); err != nil {
			return fail(err)
		}
	}
	room := c.Room
	if room.WorldID == "" {
		room.WorldID = c.World.ID
	}
	if err := s.checkRoom("room", agentID, room); err != nil {
		return fail(err)
	}
	if c.Entity.ID != "" {
		if err := s.checkEntity("entity", agentID, c.Entity); err != nil {
			return fail(err)
		}
	}
	err := s.write(ctx, func(r runner) error {
		if err := requireAgent(ctx, r, agentID); err != nil {
			return err
		}
		t := now()
		if c.World.ID != "" {
			if err := s.mergeWorld(ctx, r, agentID, c.World, t); err != nil {
				return fmt.Errorf("world %s: %w", c.World.ID, err)
			}
		}
		if err := s.mergeRoom(ctx, r, agentID, room, t); err != nil {
			return fmt.Errorf("room %s: %w", room.ID, err)
		}
		if c.Entity.ID != "" {
			if err := s.mergeEntity(ctx, r, agentID, c.Entity, t); err != nil {
				return fmt.Errorf("entity %s: %w", c.Entity.ID, err)
			}
			if err := addParticipant(ctx, r, agentID, room.ID, c.Entity.ID, t); err != nil {
				return err
			}
		}
		return addParticipant(ctx, r, agentID, room.ID, agentID, t)
	})
	if err != nil {
		return fail(err)
	}
	return nil
}

func addParticipant(ctx context.Context, r runner, agentID, roomID, entityID string, t int64) error {
	_, err := r.exec(ctx, `INSERT INTO participants (agent_id, room_id, entity_id, room_state, created_at)
		VALUES (?, ?, ?, '', ?) ON CONFLICT (agent_id, room_id, entity_id) DO NOTHING`,
		agentID, roomID, entityID, t)
	if err != nil {
		return fmt.Errorf("participant %s: %w", entityID, err)
	}
	return nil
}

// The merges below insert first and merge only if the row was there: an
// INSERT … ON CONFLICT DO NOTHING waits for a concurrent insert of the same
// key to commit, so no update is lost between two transactions that both
// found the row missing.

func (s *Store) mergeWorld(ctx context.Context, r runner, agentID string, w sdk.World, t int64) error {
	metadata, err := s.marshal("world.metadata", w.Metadata)
	if err != nil {
		return err
	}
	res, err := r.exec(ctx, `INSERT INTO worlds (agent_id, id, name, server_id, metadata, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id, id) DO NOTHING`,
		agentID, w.ID, w.Name, w.ServerID, metadata, t, t)
	if inserted, err := insertedOne(res, err); err != nil || inserted {
		return err
	}
	var old sdk.World
	var oldMeta []byte
	err = r.queryRow(ctx, `SELECT name, server_id, metadata FROM worlds WHERE agent_id = ? AND id = ?`+s.d.forUpdate,
		agentID, w.ID).Scan(&old.Name, &old.ServerID, &oldMeta)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(oldMeta, &old.Metadata); err != nil {
		return fmt.Errorf("stored metadata: %w", err)
	}
	merged := old
	merged.Name = override(old.Name, w.Name)
	merged.ServerID = override(old.ServerID, w.ServerID)
	merged.Metadata = normalizeJSON(mergeMetadata(old.Metadata, w.Metadata))
	if reflect.DeepEqual(merged, old) {
		return nil
	}
	if metadata, err = s.marshal("world.metadata", merged.Metadata); err != nil {
		return err
	}
	_, err = r.exec(ctx, `UPDATE worlds SET name = ?, server_id = ?, metadata = ?, updated_at = ? WHERE agent_id = ? AND id = ?`,
		merged.Name, merged.ServerID, metadata, t, agentID, w.ID)
	return err
}

func (s *Store) mergeRoom(ctx context.Context, r runner, agentID string, room sdk.Room, t int64) error {
	metadata, err := s.marshal("room.metadata", room.Metadata)
	if err != nil {
		return err
	}
	res, err := r.exec(ctx, `INSERT INTO rooms (agent_id, id, name, source, type, channel_id, server_id, world_id, metadata, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id, id) DO NOTHING`,
		agentID, room.ID, room.Name, room.Source, string(room.Type), room.ChannelID, room.ServerID, room.WorldID, metadata, t, t)
	if inserted, err := insertedOne(res, err); err != nil || inserted {
		return err
	}
	old, err := scanRoom(r.queryRow(ctx, `SELECT `+roomColumns+` FROM rooms WHERE agent_id = ? AND id = ?`+s.d.forUpdate,
		agentID, room.ID))
	if err != nil {
		return err
	}
	merged := old
	merged.Name = override(old.Name, room.Name)
	merged.Source = override(old.Source, room.Source)
	merged.Type = sdk.ChannelType(override(string(old.Type), string(room.Type)))
	merged.ChannelID = override(old.ChannelID, room.ChannelID)
	merged.ServerID = override(old.ServerID, room.ServerID)
	merged.WorldID = override(old.WorldID, room.WorldID)
	merged.Metadata = normalizeJSON(mergeMetadata(old.Metadata, room.Metadata))
	if reflect.DeepEqual(merged, old) {
		return nil
	}
	return s.updateRoom(ctx, r, agentID, merged, t)
}

func (s *Store) mergeEntity(ctx context.Context, r runner, agentID string, e sdk.Entity, t int64) error {
	names, err := s.marshal("entity.names", nonNilNames(e.Names))
	if err != nil {
		return err
	}
	metadata, err := s.marshal("entity.metadata", e.Metadata)
	if err != nil {
		return err
	}
	res, err := r.exec(ctx, `INSERT INTO entities (agent_id, id, names, metadata, search_names, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id, id) DO NOTHING`,
		agentID, e.ID, names, metadata, searchNames(e.Names), t, t)
	if inserted, err := insertedOne(res, err); err != nil || inserted {
		return err
	}
	old, err := scanEntity(r.queryRow(ctx, `SELECT id, names, metadata FROM entities WHERE agent_id = ? AND id = ?`+s.d.forUpdate,
		agentID, e.ID))
	if err != nil {
		return err
	}
	merged := old
	merged.Names = mergeNames(old.Names, e.Names)
	merged.Metadata = normalizeJSON(mergeMetadata(old.Metadata, e.Metadata))
	if reflect.DeepEqual(merged, old) {
		return nil
	}
	if names, err = s.marshal("entity.names", nonNilNames(merged.Names)); err != nil {
		return err
	}
	if metadata, err = s.marshal("entity.metadata", merged.Metadata); err != nil {
		return err
	}
	_, err = r.exec(ctx, `UPDATE entities SET names = ?, metadata = ?, search_names = ?, updated_at = ? WHERE agent_id = ? AND id = ?`,
		names, metadata, searchNames(merged.Names), t, agentID, e.ID)
	return err
}

// insertedOne reports whether an INSERT … ON CONFLICT DO NOTHING wrote its row.
func insertedOne(res dbsql.Result, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func override(old, new string) string {
	if new != "" {
		return new
	}
	return old
}

// normalizeJSON returns m as it reads back from the database (numbers as
// float64, …), so that a merge that changes nothing compares equal to the
// stored record and costs no write. m was checked before.
func normalizeJSON(m map[string]any) map[string]any {
	b, err := json.Marshal(m)
	if err != nil {
		return m
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return m
	}
	return out
}

// nonNilNames stores an entity without names as [] rather than null.
func nonNilNames(names []string) []string {
	if names == nil {
		return []string{}
	}
	return names
}

// mergeNames is the union of old and new, old order first, then the new
// names not seen yet; empty names are dropped from new.
func mergeNames(old, new []string) []string {
	out := append([]string(nil), old...)
	seen := make(map[string]bool, len(old)+len(new))
	for _, n := range old {
		seen[n] = true
	}
	for _, n := range new {
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	if out == nil && old != nil {
		out = []string{}
	}
	return out
}

// mergeMetadata returns old with the keys of new: a key whose old and new
// values are both objects gets the two objects merged shallowly (new wins),
// any other key takes the new value. The inputs are not modified.
func mergeMetadata(old, new map[string]any) map[string]any {
	if len(new) == 0 {
		return old
	}
	out := make(map[string]any, len(old)+len(new))
	for k, v := range old {
		out[k] = v
	}
	for k, v := range new {
		ov, okOld := old[k].(map[string]any)
		nv, okNew := v.(map[string]any)
		if okOld && okNew {
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

func scanEntity(sc scanner) (sdk.Entity, error) {
	var e sdk.Entity
	var names, metadata []byte
	if err := sc.Scan(&e.ID, &names, &metadata); err != nil {
		return e, err
	}
	if err := json.Unmarshal(names, &e.Names); err != nil {
		return e, fmt.Errorf("entity %s: stored names: %w", e.ID, err)
	}
	if err := json.Unmarshal(metadata, &e.Metadata); err != nil {
		return e, fmt.Errorf("entity %s: stored metadata: %w", e.ID, err)
	}
	return e, nil
}

// GetEntities returns the stored entities among ids, in the order of ids.
func (s *Store) GetEntities(ctx context.Context, agentID string, ids []string) ([]sdk.Entity, error) {
	fail := func(err error) ([]sdk.Entity, error) { return nil, fmt.Errorf("get entities: %w", err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkIDs("ids", ids); err != nil {
		return fail(err)
	}
	byID := make(map[string]sdk.Entity, len(ids))
	for start := 0; start < len(ids); start += inChunk {
		chunk := ids[start:min(start+inChunk, len(ids))]
		args := []any{agentID}
		for _, id := range chunk {
			args = append(args, id)
		}
		rows, err := s.read().query(ctx, `SELECT id, names, metadata FROM entities WHERE agent_id = ? AND id IN (`+
			placeholders(len(chunk))+`)`, args...)
		if err != nil {
			return fail(err)
		}
		for rows.Next() {
			e, err := scanEntity(rows)
			if err != nil {
				rows.Close()
				return fail(err)
			}
			e.AgentID = agentID
			byID[e.ID] = e
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fail(err)
		}
	}
	out := make([]sdk.Entity, 0, len(byID))
	for _, id := range ids {
		if e, ok := byID[id]; ok {
			out = append(out, e)
			delete(byID, id)
		}
	}
	return out, nil
}

// UpsertEntities stores the entities in one transaction, replacing the names
// and metadata of those already stored.
func (s *Store) UpsertEntities(ctx context.Context, agentID string, entities []sdk.Entity) error {
	fail := func(err error) error { return fmt.Errorf("upsert entities: %w", err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	type row struct{ id, names, metadata, search string }
	rows := make([]row, len(entities))
	for i, e := range entities {
		field := fmt.Sprintf("entities[%d]", i)
		if err := s.checkEntity(field, agentID, e); err != nil {
			return fail(err)
		}
		names, err := s.marshal(field+".names", nonNilNames(e.Names))
		if err != nil {
			return fail(err)
		}
		metadata, err := s.marshal(field+".metadata", e.Metadata)
		if err != nil {
			return fail(err)
		}
		rows[i] = row{e.ID, names, metadata, searchNames(e.Names)}
	}
	err := s.write(ctx, func(r runner) error {
		if err := requireAgent(ctx, r, agentID); err != nil {
			return err
		}
		t := now()
		for _, e := range rows {
			_, err := r.exec(ctx, `INSERT INTO entities (agent_id, id, names, metadata, search_names, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id, id) DO UPDATE SET
				names = excluded.names, metadata = excluded.metadata, search_names = excluded.search_names,
				updated_at = excluded.updated_at`,
				agentID, e.id, e.names, e.metadata, e.search, t, t)
			if err != nil {
				return fmt.Errorf("entity %s: %w", e.id, err)
			}
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	return nil
}

const roomColumns = `id, name, source, type, channel_id, server_id, world_id, metadata`

func scanRoom(sc scanner) (sdk.Room, error) {
	var r sdk.Room
	var typ string
	var metadata []byte
	if err := sc.Scan(&r.ID, &r.Name, &r.Source, &typ, &r.ChannelID, &r.ServerID, &r.WorldID, &metadata); err != nil {
		return r, err
	}
	r.Type = sdk.ChannelType(typ)
	if err := json.Unmarshal(metadata, &r.Metadata); err != nil {
		return r, fmt.Errorf("room %s: stored metadata: %w", r.ID, err)
	}
	return r, nil
}

// GetRooms returns the agent's rooms that q selects, first stored first: those
// among q.IDs, those q.ParticipantID takes part in, those of q.WorldID; the
// filters that are set all apply, and none set means every room.
func (s *Store) GetRooms(ctx context.Context, agentID string, q sdk.RoomQuery) ([]sdk.Room, error) {
	fail := func(err error) ([]sdk.Room, error) { return nil, fmt.Errorf("get rooms: %w", err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkIDs("query.ids", q.IDs); err != nil {
		return fail(err)
	}
	if err := checkID("query.participantId", q.ParticipantID, false); err != nil {
		return fail(err)
	}
	if err := checkIDs("query.participantIds", q.ParticipantIDs); err != nil {
		return fail(err)
	}
	if len(q.ParticipantIDs) > inChunk {
		return fail(invalid("query.participantIds", "has %d ids; at most %d", len(q.ParticipantIDs), inChunk))
	}
	if err := checkID("query.worldId", q.WorldID, false); err != nil {
		return fail(err)
	}
	if len(q.IDs) > inChunk {
		return fail(invalid("query.ids", "has %d ids; at most %d", len(q.IDs), inChunk))
	}
	w := &where{}
	w.add("r.agent_id = ?", agentID)
	if len(q.IDs) > 0 {
		args := make([]any, len(q.IDs))
		for i, id := range q.IDs {
			args[i] = id
		}
		w.add("r.id IN ("+placeholders(len(q.IDs))+")", args...)
	}
	if q.WorldID != "" {
		w.add("r.world_id = ?", q.WorldID)
	}
	if q.ParticipantID != "" {
		w.add(`EXISTS (SELECT 1 FROM participants p
			WHERE p.agent_id = r.agent_id AND p.room_id = r.id AND p.entity_id = ?)`, q.ParticipantID)
	}
	if len(q.ParticipantIDs) > 0 {
		args := make([]any, len(q.ParticipantIDs))
		for i, id := range q.ParticipantIDs {
			args[i] = id
		}
		w.add(`EXISTS (SELECT 1 FROM participants p
			WHERE p.agent_id = r.agent_id AND p.room_id = r.id AND p.entity_id IN (`+placeholders(len(args))+`))`, args...)
	}
	rows, err := s.read().query(ctx, `SELECT r.id, r.name, r.source, r.type, r.channel_id, r.server_id, r.world_id, r.metadata
		FROM rooms r WHERE `+w.String()+` ORDER BY r.seq`, w.args...)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var out []sdk.Room
	for rows.Next() {
		room, err := scanRoom(rows)
		if err != nil {
			return fail(err)
		}
		room.AgentID = agentID
		out = append(out, room)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return out, nil
}

// UpsertRoom stores the room, replacing every field of a stored one.
func (s *Store) UpsertRoom(ctx context.Context, agentID string, room sdk.Room) error {
	fail := func(err error) error { return fmt.Errorf("upsert room %s: %w", truncate(room.ID), err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := s.checkRoom("room", agentID, room); err != nil {
		return fail(err)
	}
	metadata, err := s.marshal("room.metadata", room.Metadata)
	if err != nil {
		return fail(err)
	}
	err = s.write(ctx, func(r runner) error {
		if err := requireAgent(ctx, r, agentID); err != nil {
			return err
		}
		return upsertRoom(ctx, r, agentID, room, metadata, now())
	})
	if err != nil {
		return fail(err)
	}
	return nil
}

// upsertRoom stores room (its metadata already encoded), replacing every
// field of a stored one.
func upsertRoom(ctx context.Context, r runner, agentID string, room sdk.Room, metadata string, t int64) error {
	_, err := r.exec(ctx, `INSERT INTO rooms (agent_id, id, name, source, type, channel_id, server_id, world_id, metadata, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id, id) DO UPDATE SET
		name = excluded.name, source = excluded.source, type = excluded.type, channel_id = excluded.channel_id,
		server_id = excluded.server_id, world_id = excluded.world_id, metadata = excluded.metadata,
		updated_at = excluded.updated_at`,
		agentID, room.ID, room.Name, room.Source, string(room.Type), room.ChannelID, room.ServerID, room.WorldID, metadata, t, t)
	return err
}

func (s *Store) updateRoom(ctx context.Context, r runner, agentID string, room sdk.Room, t int64) error {
	metadata, err := s.marshal("room.metadata", room.Metadata)
	if err != nil {
		return err
	}
	_, err = r.exec(ctx, `UPDATE rooms SET name = ?, source = ?, type = ?, channel_id = ?, server_id = ?, world_id = ?,
		metadata = ?, updated_at = ? WHERE agent_id = ? AND id = ?`,
		room.Name, room.Source, string(room.Type), room.ChannelID, room.ServerID, room.WorldID, metadata, t, agentID, room.ID)
	return err
}

// GetWorlds returns the stored worlds among ids in the order of ids, or
// every world of the agent, first stored first, when ids is empty.
func (s *Store) GetWorlds(ctx context.Context, agentID string, ids []string) ([]sdk.World, error) {
	fail := func(err error) ([]sdk.World, error) { return nil, fmt.Errorf("get worlds: %w", err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkIDs("ids", ids); err != nil {
		return fail(err)
	}
	if len(ids) > inChunk {
		return fail(invalid("ids", "has %d ids; at most %d", len(ids), inChunk))
	}
	q, args := `SELECT id, name, server_id, metadata FROM worlds WHERE agent_id = ?`, []any{agentID}
	if len(ids) > 0 {
		q += ` AND id IN (` + placeholders(len(ids)) + `)`
		for _, id := range ids {
			args = append(args, id)
		}
	}
	rows, err := s.read().query(ctx, q+` ORDER BY seq`, args...)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var all []sdk.World
	for rows.Next() {
		var w sdk.World
		var metadata []byte
		if err := rows.Scan(&w.ID, &w.Name, &w.ServerID, &metadata); err != nil {
			return fail(err)
		}
		if err := json.Unmarshal(metadata, &w.Metadata); err != nil {
			return fail(fmt.Errorf("world %s: stored metadata: %w", w.ID, err))
		}
		w.AgentID = agentID
		all = append(all, w)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	if len(ids) == 0 {
		return all, nil
	}
	byID := make(map[string]sdk.World, len(all))
	for _, w := range all {
		byID[w.ID] = w
	}
	out := make([]sdk.World, 0, len(all))
	for _, id := range ids {
		if w, ok := byID[id]; ok {
			out = append(out, w)
			delete(byID, id)
		}
	}
	return out, nil
}

// UpsertWorld stores the world, replacing every field of a stored one.
func (s *Store) UpsertWorld(ctx context.Context, agentID string, w sdk.World) error {
	fail := func(err error) error { return fmt.Errorf("upsert world %s: %w", truncate(w.ID), err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := s.checkWorld("world", agentID, w); err != nil {
		return fail(err)
	}
	metadata, err := s.marshal("world.metadata", w.Metadata)
	if err != nil {
		return fail(err)
	}
	err = s.write(ctx, func(r runner) error {
		if err := requireAgent(ctx, r, agentID); err != nil {
			return err
		}
		t := now()
		_, err := r.exec(ctx, `INSERT INTO worlds (agent_id, id, name, server_id, metadata, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id, id) DO UPDATE SET
			name = excluded.name, server_id = excluded.server_id, metadata = excluded.metadata, updated_at = excluded.updated_at`,
			agentID, w.ID, w.Name, w.ServerID, metadata, t, t)
		return err
	})
	if err != nil {
		return fail(err)
	}
	return nil
}

// GetParticipants returns the entity ids of the room's participants in the
// order they joined.
func (s *Store) GetParticipants(ctx context.Context, agentID, roomID string) ([]string, error) {
	fail := func(err error) ([]string, error) {
		return nil, fmt.Errorf("get participants of room %s: %w", truncate(roomID), err)
	}
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkID("roomId", roomID, true); err != nil {
		return fail(err)
	}
	rows, err := s.read().query(ctx, `SELECT entity_id FROM participants WHERE agent_id = ? AND room_id = ? ORDER BY seq`,
		agentID, roomID)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fail(err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return out, nil
}

// GetParticipantState returns FOLLOWED, MUTED or "" (also when the entity
// does not take part in the room).
func (s *Store) GetParticipantState(ctx context.Context, agentID, roomID, entityID string) (string, error) {
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("get participant state of %s in room %s: %w", truncate(entityID), truncate(roomID), err)
	}
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkID("roomId", roomID, true); err != nil {
		return fail(err)
	}
	if err := checkID("entityId", entityID, true); err != nil {
		return fail(err)
	}
	var state string
	err := s.read().queryRow(ctx, `SELECT room_state FROM participants WHERE agent_id = ? AND room_id = ? AND entity_id = ?`,
		agentID, roomID, entityID).Scan(&state)
	if errors.Is(err, dbsql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return fail(err)
	}
	return state, nil
}

// SetParticipantState sets FOLLOWED, MUTED or "" (neither); the entity
// becomes a participant of the room if it was not one. The room must exist.
func (s *Store) SetParticipantState(ctx context.Context, agentID, roomID, entityID, state string) error {
	fail := func(err error) error {
		return fmt.Errorf("set participant state of %s in room %s: %w", truncate(entityID), truncate(roomID), err)
	}
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkID("roomId", roomID, true); err != nil {
		return fail(err)
	}
	if err := checkID("entityId", entityID, true); err != nil {
		return fail(err)
	}
	switch state {
	case StateFollowed, StateMuted, "":
	default:
		return fail(invalid("state", "is %q; want %s, %s or empty", truncate(state), StateFollowed, StateMuted))
	}
	err := s.write(ctx, func(r runner) error {
		var one int
		err := r.queryRow(ctx, `SELECT 1 FROM rooms WHERE agent_id = ? AND id = ?`, agentID, roomID).Scan(&one)
		if errors.Is(err, dbsql.ErrNoRows) {
			return fmt.Errorf("room %s: %w", roomID, sdk.ErrNotFound)
		}
		if err != nil {
			return err
		}
		_, err = r.exec(ctx, `INSERT INTO participants (agent_id, room_id, entity_id, room_state, created_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (agent_id, room_id, entity_id) DO UPDATE SET room_state = excluded.room_state`,
			agentID, roomID, entityID, state, now())
		return err
	})
	if err != nil {
		return fail(err)
	}
	return nil
}

// GetEntitiesForRoom returns the stored entities that take part in the
// room, in the order they joined (elizaOS's getEntitiesForRoom; the
// components of each come from GetComponents).
func (s *Store) GetEntitiesForRoom(ctx context.Context, agentID, roomID string) ([]sdk.Entity, error) {
	fail := func(err error) ([]sdk.Entity, error) {
		return nil, fmt.Errorf("get entities of room %s: %w", truncate(roomID), err)
	}
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkID("roomId", roomID, true); err != nil {
		return fail(err)
	}
	rows, err := s.read().query(ctx, `SELECT e.id, e.names, e.metadata FROM participants p
		JOIN entities e ON e.agent_id = p.agent_id AND e.id = p.entity_id
		WHERE p.agent_id = ? AND p.room_id = ? ORDER BY p.seq`, agentID, roomID)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var out []sdk.Entity
	for rows.Next() {
		e, err := scanEntity(rows)
		if err != nil {
			return fail(err)
		}
		e.AgentID = agentID
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return out, nil
}

// DeleteEntity deletes the entity, its components and relationships, and
// its participation in every room, in one transaction. The memories it
// wrote stay. It returns how many entities it deleted (0 or 1).
func (s *Store) DeleteEntity(ctx context.Context, agentID, id string) (int64, error) {
	fail := func(err error) (int64, error) { return 0, fmt.Errorf("delete entity %s: %w", truncate(id), err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkID("id", id, true); err != nil {
		return fail(err)
	}
	var n int64
	err := s.write(ctx, func(r runner) error {
		if _, err := r.exec(ctx, `DELETE FROM participants WHERE agent_id = ? AND entity_id = ?`, agentID, id); err != nil {
			return err
		}
		// Components and relationships go with it (ON DELETE CASCADE).
		res, err := r.exec(ctx, `DELETE FROM entities WHERE agent_id = ? AND id = ?`, agentID, id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fail(err)
	}
	return n, nil
}

// DeleteRoom deletes the room with its participants, memories and logs, in
// one transaction, and returns how many rooms it deleted (0 or 1).
func (s *Store) DeleteRoom(ctx context.Context, agentID, id string) (int64, error) {
	fail := func(err error) (int64, error) { return 0, fmt.Errorf("delete room %s: %w", truncate(id), err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkID("id", id, true); err != nil {
		return fail(err)
	}
	var n int64
	err := s.write(ctx, func(r runner) error {
		var err error
		n, err = deleteRooms(ctx, r, agentID, `id = ?`, id)
		return err
	})
	if err != nil {
		return fail(err)
	}
	return n, nil
}

// deleteRooms deletes the agent's rooms that cond selects (a condition on
// the rooms table), with their memories and logs; participants go with
// their room (ON DELETE CASCADE).
func deleteRooms(ctx context.Context, r runner, agentID, cond string, args ...any) (int64, error) {
	sel := `SELECT id FROM rooms WHERE agent_id = ? AND ` + cond
	all := append([]any{agentID, agentID}, args...)
	if _, err := r.exec(ctx, `DELETE FROM memories WHERE agent_id = ? AND room_id IN (`+sel+`)`, all...); err != nil {
		return 0, err
	}
	if _, err := r.exec(ctx, `DELETE FROM logs WHERE agent_id = ? AND room_id IN (`+sel+`)`, all...); err != nil {
		return 0, err
	}
	res, err := r.exec(ctx, `DELETE FROM rooms WHERE agent_id = ? AND `+cond, append([]any{agentID}, args...)...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// DeleteWorld deletes the world and its rooms (each as DeleteRoom does), in
// one transaction, and returns how many worlds it deleted (0 or 1).
func (s *Store) DeleteWorld(ctx context.Context, agentID, id string) (int64, error) {
	fail := func(err error) (int64, error) { return 0, fmt.Errorf("delete world %s: %w", truncate(id), err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkID("id", id, true); err != nil {
		return fail(err)
	}
	var n int64
	err := s.write(ctx, func(r runner) error {
		if _, err := deleteRooms(ctx, r, agentID, `world_id = ?`, id); err != nil {
			return err
		}
		res, err := r.exec(ctx, `DELETE FROM worlds WHERE agent_id = ? AND id = ?`, agentID, id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fail(err)
	}
	return n, nil
}

// RemoveParticipant takes the entity out of the room and reports whether it
// took part.
func (s *Store) RemoveParticipant(ctx context.Context, agentID, roomID, entityID string) (bool, error) {
	fail := func(err error) (bool, error) {
		return false, fmt.Errorf("remove participant %s from room %s: %w", truncate(entityID), truncate(roomID), err)
	}
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkID("roomId", roomID, true); err != nil {
		return fail(err)
	}
	if err := checkID("entityId", entityID, true); err != nil {
		return fail(err)
	}
	n, err := s.deleteWhere(ctx, `DELETE FROM participants WHERE agent_id = ? AND room_id = ? AND entity_id = ?`, agentID, roomID, entityID)
	if err != nil {
		return fail(err)
	}
	return n > 0, nil
}
