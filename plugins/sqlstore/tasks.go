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

const taskColumns = `id, name, description, room_id, world_id, entity_id, tags, metadata, created_at, updated_at`

func (s *Store) checkTask(field, agentID string, t storage.Task) error {
	if err := checkID(field+".id", t.ID, false); err != nil {
		return err
	}
	if err := s.checkKey(field+".name", t.Name); err != nil {
		return err
	}
	if err := s.checkText(field+".description", t.Description); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{".roomId", t.RoomID}, {".worldId", t.WorldID}, {".entityId", t.EntityID}} {
		if err := checkID(field+f.name, f.v, false); err != nil {
			return err
		}
	}
	if err := checkOwner(field+".agentId", t.AgentID, agentID); err != nil {
		return err
	}
	return s.checkValue(field+".tags", t.Tags)
}

// CreateTask stores t and returns its id (a random UUID when t.ID is
// empty). A task whose id is stored already is an error.
func (s *Store) CreateTask(ctx context.Context, agentID string, t storage.Task) (string, error) {
	id := t.ID
	if id == "" {
		id = sdk.NewID()
	}
	fail := func(err error) (string, error) { return "", fmt.Errorf("create task %s: %w", truncate(id), err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := s.checkTask("task", agentID, t); err != nil {
		return fail(err)
	}
	tags, err := s.marshal("task.tags", nonNilNames(t.Tags))
	if err != nil {
		return fail(err)
	}
	metadata, err := s.marshal("task.metadata", nonNilMap(t.Metadata))
	if err != nil {
		return fail(err)
	}
	err = s.write(ctx, func(r runner) error {
		if err := requireAgent(ctx, r, agentID); err != nil {
			return err
		}
		ts := now()
		_, err := r.exec(ctx, `INSERT INTO tasks (agent_id, `+taskColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			agentID, id, t.Name, t.Description, t.RoomID, t.WorldID, t.EntityID, tags, metadata, ts, ts)
		if err != nil && s.d.uniqueViolation(err) {
			return invalid("task.id", "a task with id %s is stored", id)
		}
		return err
	})
	if err != nil {
		return fail(err)
	}
	return id, nil
}

func scanTask(sc scanner, agentID string) (storage.Task, error) {
	t := storage.Task{AgentID: agentID}
	var tags, metadata []byte
	if err := sc.Scan(&t.ID, &t.Name, &t.Description, &t.RoomID, &t.WorldID, &t.EntityID, &tags, &metadata, &t.CreatedAt, &t.UpdatedAt); err != nil {
		return t, err
	}
	if err := json.Unmarshal(tags, &t.Tags); err != nil {
		return t, fmt.Errorf("task %s: stored tags: %w", t.ID, err)
	}
	if err := json.Unmarshal(metadata, &t.Metadata); err != nil {
		return t, fmt.Errorf("task %s: stored metadata: %w", t.ID, err)
	}
	return t, nil
}

// GetTask returns one task, or an error matching sdk.ErrNotFound.
func (s *Store) GetTask(ctx context.Context, agentID, id string) (storage.Task, error) {
	fail := func(err error) (storage.Task, error) {
		return storage.Task{}, fmt.Errorf("get task %s: %w", truncate(id), err)
	}
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkID("id", id, true); err != nil {
		return fail(err)
	}
	t, err := scanTask(s.read().queryRow(ctx, `SELECT `+taskColumns+` FROM tasks WHERE agent_id = ? AND id = ?`, agentID, id), agentID)
	if errors.Is(err, sql.ErrNoRows) {
		return fail(sdk.ErrNotFound)
	}
	if err != nil {
		return fail(err)
	}
	return t, nil
}

// GetTasks returns the agent's tasks that q selects, first stored first;
// with q.Tags, only those that have every one of them.
func (s *Store) GetTasks(ctx context.Context, agentID string, q storage.TaskQuery) ([]storage.Task, error) {
	fail := func(err error) ([]storage.Task, error) { return nil, fmt.Errorf("get tasks: %w", err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	for _, f := range []struct{ name, v string }{{"query.roomId", q.RoomID}, {"query.entityId", q.EntityID}, {"query.worldId", q.WorldID}} {
		if err := checkID(f.name, f.v, false); err != nil {
			return fail(err)
		}
	}
	if err := s.checkOptionalKey("query.name", q.Name); err != nil {
		return fail(err)
	}
	if err := s.checkValue("query.tags", q.Tags); err != nil {
		return fail(err)
	}
	w := &where{}
	w.add("agent_id = ?", agentID)
	if q.RoomID != "" {
		w.add("room_id = ?", q.RoomID)
	}
	if q.EntityID != "" {
		w.add("entity_id = ?", q.EntityID)
	}
	if q.WorldID != "" {
		w.add("world_id = ?", q.WorldID)
	}
	if q.Name != "" {
		w.add("name = ?", q.Name)
	}
	rows, err := s.read().query(ctx, `SELECT `+taskColumns+` FROM tasks WHERE `+w.String()+` ORDER BY seq`, w.args...)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var out []storage.Task
	for rows.Next() {
		t, err := scanTask(rows, agentID)
		if err != nil {
			return fail(err)
		}
		if hasAll(t.Tags, q.Tags) {
			out = append(out, t)
		}
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return out, nil
}

// UpdateTask changes what u sets of a stored task, in one transaction. An
// unknown id is an error matching sdk.ErrNotFound.
func (s *Store) UpdateTask(ctx context.Context, agentID, id string, u storage.TaskUpdate) error {
	fail := func(err error) error { return fmt.Errorf("update task %s: %w", truncate(id), err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkID("id", id, true); err != nil {
		return fail(err)
	}
	err := s.write(ctx, func(r runner) error {
		t, err := scanTask(r.queryRow(ctx, `SELECT `+taskColumns+` FROM tasks WHERE agent_id = ? AND id = ?`+s.d.forUpdate, agentID, id), agentID)
		if errors.Is(err, sql.ErrNoRows) {
			return sdk.ErrNotFound
		}
		if err != nil {
			return err
		}
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		set(&t.Name, u.Name)
		set(&t.Description, u.Description)
		set(&t.RoomID, u.RoomID)
		set(&t.WorldID, u.WorldID)
		set(&t.EntityID, u.EntityID)
		if u.Tags != nil {
			t.Tags = u.Tags
		}
		if u.Metadata != nil {
			t.Metadata = u.Metadata
		}
		if err := s.checkTask("task", agentID, t); err != nil {
			return err
		}
		tags, err := s.marshal("task.tags", nonNilNames(t.Tags))
		if err != nil {
			return err
		}
		metadata, err := s.marshal("task.metadata", nonNilMap(t.Metadata))
		if err != nil {
			return err
		}
		_, err = r.exec(ctx, `UPDATE tasks SET name = ?, description = ?, room_id = ?, world_id = ?, entity_id = ?, tags = ?,
			metadata = ?, updated_at = ? WHERE agent_id = ? AND id = ?`,
			t.Name, t.Description, t.RoomID, t.WorldID, t.EntityID, tags, metadata, now(), agentID, id)
		return err
	})
	if err != nil {
		return fail(err)
	}
	return nil
}

// DeleteTask deletes one task and returns how many it deleted (0 or 1).
func (s *Store) DeleteTask(ctx context.Context, agentID, id string) (int64, error) {
	return s.deleteOne(ctx, "task", "tasks", agentID, id)
}
