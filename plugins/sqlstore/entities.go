package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/agenthost/agenthost/sdk"
)

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
