package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
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
func (s *Store) EnsureConnection(ctx context.Context, agentID string, c storage.Connection) error {
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
	merged.Metadata = normalizeJSON(contract.MergeMetadata(old.Metadata, w.Metadata))
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
	merged.Metadata = normalizeJSON(contract.MergeMetadata(old.Metadata, room.Metadata))
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
	merged.Metadata = normalizeJSON(contract.MergeMetadata(old.Metadata, e.Metadata))
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
func insertedOne(res sql.Result, err error) (bool, error) {
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
