package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/agenthost/agenthost/sdk"
)

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
	if errors.Is(err, sql.ErrNoRows) {
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
		if errors.Is(err, sql.ErrNoRows) {
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

func addParticipant(ctx context.Context, r runner, agentID, roomID, entityID string, t int64) error {
	_, err := r.exec(ctx, `INSERT INTO participants (agent_id, room_id, entity_id, room_state, created_at)
		VALUES (?, ?, ?, '', ?) ON CONFLICT (agent_id, room_id, entity_id) DO NOTHING`,
		agentID, roomID, entityID, t)
	if err != nil {
		return fmt.Errorf("participant %s: %w", entityID, err)
	}
	return nil
}

// Participant room states (elizaOS's FOLLOWED, MUTED or none).
const (
	StateFollowed = "FOLLOWED"
	StateMuted    = "MUTED"
)
