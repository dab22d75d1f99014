package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/agenthost/agenthost/sdk"
)

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
	var gone []int64
	err := s.write(ctx, func(r runner) error {
		var err error
		if _, gone, err = deleteRooms(ctx, r, agentID, `world_id = ?`, id); err != nil {
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
	s.memoriesDeleted(agentID, gone)
	return n, nil
}
