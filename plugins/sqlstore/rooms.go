package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
)

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
func (s *Store) GetRooms(ctx context.Context, agentID string, q storage.RoomQuery) ([]sdk.Room, error) {
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
	var gone []int64
	err := s.write(ctx, func(r runner) error {
		var err error
		n, gone, err = deleteRooms(ctx, r, agentID, `id = ?`, id)
		return err
	})
	if err != nil {
		return fail(err)
	}
	s.memoriesDeleted(agentID, gone)
	return n, nil
}

// deleteRooms deletes the agent's rooms that cond selects (a condition on
// the rooms table), with their memories and logs; participants go with
// their room (ON DELETE CASCADE). It returns how many rooms it deleted and
// the seq of every memory it deleted.
func deleteRooms(ctx context.Context, r runner, agentID, cond string, args ...any) (int64, []int64, error) {
	sel := `SELECT id FROM rooms WHERE agent_id = ? AND ` + cond
	all := append([]any{agentID, agentID}, args...)
	gone, err := deleteSeqs(ctx, r, `DELETE FROM memories WHERE agent_id = ? AND room_id IN (`+sel+`)`, all...)
	if err != nil {
		return 0, nil, err
	}
	if _, err := r.exec(ctx, `DELETE FROM logs WHERE agent_id = ? AND room_id IN (`+sel+`)`, all...); err != nil {
		return 0, nil, err
	}
	res, err := r.exec(ctx, `DELETE FROM rooms WHERE agent_id = ? AND `+cond, append([]any{agentID}, args...)...)
	if err != nil {
		return 0, nil, err
	}
	n, err := res.RowsAffected()
	return n, gone, err
}
