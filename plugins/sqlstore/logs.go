package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
)

// DefaultLogCount is what GetLogs returns when Count is 0.
const DefaultLogCount = 50

// AddLog stores a log entry and returns its id: l.ID, or a random UUID when
// empty. A zero CreatedAt is the current time. The agent must be stored.
func (s *Store) AddLog(ctx context.Context, l storage.LogEntry) (string, error) {
	ids, err := s.AddLogs(ctx, []storage.LogEntry{l})
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

// logRow is a checked log entry, ready to insert.
type logRow struct {
	id, agentID, entityID, roomID, typ string
	body                               string
	createdAt                          int64
}

func (s *Store) checkLog(l storage.LogEntry) (logRow, error) {
	id := l.ID
	if id == "" {
		id = sdk.NewID()
	}
	fail := func(err error) (logRow, error) { return logRow{}, fmt.Errorf("add log %s: %w", truncate(id), err) }
	if err := checkID("log.id", l.ID, false); err != nil {
		return fail(err)
	}
	if err := checkID("log.agentId", l.AgentID, true); err != nil {
		return fail(err)
	}
	if err := checkID("log.entityId", l.EntityID, false); err != nil {
		return fail(err)
	}
	if err := checkID("log.roomId", l.RoomID, false); err != nil {
		return fail(err)
	}
	if err := s.checkKey("log.type", l.Type); err != nil {
		return fail(err)
	}
	if l.CreatedAt < 0 {
		return fail(invalid("log.createdAt", "is negative (%d)", l.CreatedAt))
	}
	body, err := s.marshal("log.body", l.Body)
	if err != nil {
		return fail(err)
	}
	createdAt := l.CreatedAt
	if createdAt == 0 {
		createdAt = now()
	}
	return logRow{id: id, agentID: l.AgentID, entityID: l.EntityID, roomID: l.RoomID, typ: l.Type, body: body, createdAt: createdAt}, nil
}

// AddLogs stores several entries in one transaction: all or none. The host
// batches its timeline writes this way, so recording a message's model
// calls and events costs one write, not six.
func (s *Store) AddLogs(ctx context.Context, logs []storage.LogEntry) ([]string, error) {
	rows := make([]logRow, len(logs))
	for i, l := range logs {
		r, err := s.checkLog(l)
		if err != nil {
			return nil, err
		}
		rows[i] = r
	}
	err := s.write(ctx, func(r runner) error {
		seen := map[string]bool{}
		for _, row := range rows {
			if !seen[row.agentID] {
				if err := requireAgent(ctx, r, row.agentID); err != nil {
					return err
				}
				seen[row.agentID] = true
			}
			_, err := r.exec(ctx, `INSERT INTO logs (id, agent_id, entity_id, room_id, type, body, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, row.id, row.agentID, row.entityID, row.roomID, row.typ, row.body, row.createdAt)
			if err != nil && s.d.uniqueViolation(err) {
				if len(rows) == 1 {
					return fmt.Errorf("a log with this id is stored: %w", err)
				}
				return fmt.Errorf("a log with id %s is stored: %w", row.id, err)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if len(rows) == 1 {
			return nil, fmt.Errorf("add log %s: %w", truncate(rows[0].id), err)
		}
		return nil, fmt.Errorf("add %d logs: %w", len(rows), err)
	}
	ids := make([]string, len(rows))
	for i, row := range rows {
		ids[i] = row.id
	}
	return ids, nil
}

// GetLogs returns the agent's log entries, newest first (the latest stored
// first within a millisecond), filtered by room and type when set; at most
// q.Count, DefaultLogCount when 0.
func (s *Store) GetLogs(ctx context.Context, agentID string, q storage.LogQuery) ([]storage.LogEntry, error) {
	fail := func(err error) ([]storage.LogEntry, error) { return nil, fmt.Errorf("get logs: %w", err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkID("query.roomId", q.RoomID, false); err != nil {
		return fail(err)
	}
	if err := checkID("query.entityId", q.EntityID, false); err != nil {
		return fail(err)
	}
	if err := s.checkOptionalKey("query.type", q.Type); err != nil {
		return fail(err)
	}
	if q.Count < 0 {
		return fail(invalid("query.count", "is negative (%d)", q.Count))
	}
	if q.Offset < 0 {
		return fail(invalid("query.offset", "is negative (%d)", q.Offset))
	}
	count := q.Count
	if count == 0 {
		count = DefaultLogCount
	}
	w := &where{}
	w.add("agent_id = ?", agentID)
	if q.RoomID != "" {
		w.add("room_id = ?", q.RoomID)
	}
	if q.EntityID != "" {
		w.add("entity_id = ?", q.EntityID)
	}
	if q.Type != "" {
		w.add("type = ?", q.Type)
	}
	rows, err := s.read().query(ctx, `SELECT id, entity_id, room_id, type, body, created_at FROM logs WHERE `+
		w.String()+` ORDER BY created_at DESC, seq DESC LIMIT ? OFFSET ?`, append(w.args, count, q.Offset)...)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var out []storage.LogEntry
	var budget listBudget
	for rows.Next() {
		l := storage.LogEntry{AgentID: agentID}
		var body []byte
		if err := rows.Scan(&l.ID, &l.EntityID, &l.RoomID, &l.Type, &body, &l.CreatedAt); err != nil {
			return fail(err)
		}
		if !budget.fits(len(body)) {
			break
		}
		if err := json.Unmarshal(body, &l.Body); err != nil {
			return fail(fmt.Errorf("log %s: stored body: %w", l.ID, err))
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return out, nil
}

// DeleteLog deletes one log entry and returns how many it deleted (0 or 1).
func (s *Store) DeleteLog(ctx context.Context, agentID, id string) (int64, error) {
	return s.deleteOne(ctx, "log", "logs", agentID, id)
}

// GetCache returns the value stored under key, unless it has expired.
func (s *Store) GetCache(ctx context.Context, agentID, key string) ([]byte, bool, error) {
	fail := func(err error) ([]byte, bool, error) {
		return nil, false, fmt.Errorf("get cache %q: %w", truncate(key), err)
	}
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := s.checkKey("key", key); err != nil {
		return fail(err)
	}
	var value []byte
	var expires int64
	err := s.read().queryRow(ctx, `SELECT value, expires_at FROM cache WHERE agent_id = ? AND key = ?`, agentID, key).
		Scan(&value, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return fail(err)
	}
	if expires != 0 && expires <= now() {
		return nil, false, nil // expired; the next SetCache overwrites it
	}
	if value == nil {
		value = []byte{}
	}
	return value, true, nil
}

// SetCache stores value under key; ttlMillis 0 means no expiry. Expired
// entries of the agent are swept on the way.
func (s *Store) SetCache(ctx context.Context, agentID, key string, value []byte, ttlMillis int64) error {
	fail := func(err error) error { return fmt.Errorf("set cache %q: %w", truncate(key), err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := s.checkKey("key", key); err != nil {
		return fail(err)
	}
	if ttlMillis < 0 {
		return fail(invalid("ttlMillis", "is negative (%d)", ttlMillis))
	}
	if value == nil {
		value = []byte{}
	}
	err := s.write(ctx, func(r runner) error {
		if err := requireAgent(ctx, r, agentID); err != nil {
			return err
		}
		t := now()
		var expires int64
		if ttlMillis > 0 {
			expires = t + ttlMillis
		}
		if _, err := r.exec(ctx, `DELETE FROM cache WHERE agent_id = ? AND expires_at <> 0 AND expires_at <= ?`, agentID, t); err != nil {
			return err
		}
		_, err := r.exec(ctx, `INSERT INTO cache (agent_id, key, value, expires_at, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (agent_id, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at,
			created_at = excluded.created_at`, agentID, key, value, expires, t)
		return err
	})
	if err != nil {
		return fail(err)
	}
	return nil
}

// DeleteCache removes key; removing a missing key is not an error.
func (s *Store) DeleteCache(ctx context.Context, agentID, key string) error {
	fail := func(err error) error { return fmt.Errorf("delete cache %q: %w", truncate(key), err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := s.checkOptionalKey("key", key); err != nil {
		return fail(err)
	}
	_, err := s.deleteWhere(ctx, `DELETE FROM cache WHERE agent_id = ? AND key = ?`, agentID, key)
	if err != nil {
		return fail(err)
	}
	return nil
}
