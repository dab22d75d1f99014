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

func (s *Store) checkComponent(field, agentID string, c sdk.Component, idRequired bool) error {
	if err := checkID(field+".id", c.ID, idRequired); err != nil {
		return err
	}
	if err := checkID(field+".entityId", c.EntityID, true); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{
		{".roomId", c.RoomID}, {".worldId", c.WorldID}, {".sourceEntityId", c.SourceEntityID},
	} {
		if err := checkID(field+f.name, f.v, false); err != nil {
			return err
		}
	}
	if err := checkOwner(field+".agentId", c.AgentID, agentID); err != nil {
		return err
	}
	if c.CreatedAt < 0 {
		return invalid(field+".createdAt", "is negative (%d)", c.CreatedAt)
	}
	return s.checkKey(field+".type", c.Type)
}

// requireEntity fails with sdk.ErrNotFound unless the entity is stored.
func requireEntity(ctx context.Context, r runner, agentID, field, id string) error {
	var one int
	err := r.queryRow(ctx, `SELECT 1 FROM entities WHERE agent_id = ? AND id = ?`, agentID, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s %s: %w (EnsureConnection or UpsertEntities stores it)", field, id, sdk.ErrNotFound)
	}
	return err
}

// CreateComponent stores c for its entity, which must be stored. An empty
// c.ID gets a random UUID, a zero CreatedAt the current time. A component
// whose id is stored already is left as it is and reported with
// created=false.
func (s *Store) CreateComponent(ctx context.Context, agentID string, c sdk.Component) (string, bool, error) {
	id := c.ID
	if id == "" {
		id = sdk.NewID()
	}
	fail := func(err error) (string, bool, error) {
		return "", false, fmt.Errorf("create component %s: %w", truncate(id), err)
	}
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := s.checkComponent("component", agentID, c, false); err != nil {
		return fail(err)
	}
	data, err := s.marshal("component.data", nonNilMap(c.Data))
	if err != nil {
		return fail(err)
	}
	created := false
	err = s.write(ctx, func(r runner) error {
		if err := requireEntity(ctx, r, agentID, "component.entityId", c.EntityID); err != nil {
			return err
		}
		t := now()
		createdAt := c.CreatedAt
		if createdAt == 0 {
			createdAt = t
		}
		res, err := r.exec(ctx, `INSERT INTO components (agent_id, id, entity_id, room_id, world_id, source_entity_id, type, data, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id, id) DO NOTHING`,
			agentID, id, c.EntityID, c.RoomID, c.WorldID, c.SourceEntityID, c.Type, data, createdAt, t)
		created, err = insertedOne(res, err)
		return err
	})
	if err != nil {
		return fail(err)
	}
	return id, created, nil
}

// UpdateComponent replaces every field of the stored component c.ID but its
// creation time. An unknown id is an error matching sdk.ErrNotFound.
func (s *Store) UpdateComponent(ctx context.Context, agentID string, c sdk.Component) error {
	fail := func(err error) error { return fmt.Errorf("update component %s: %w", truncate(c.ID), err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := s.checkComponent("component", agentID, c, true); err != nil {
		return fail(err)
	}
	data, err := s.marshal("component.data", nonNilMap(c.Data))
	if err != nil {
		return fail(err)
	}
	err = s.write(ctx, func(r runner) error {
		if err := requireEntity(ctx, r, agentID, "component.entityId", c.EntityID); err != nil {
			return err
		}
		res, err := r.exec(ctx, `UPDATE components SET entity_id = ?, room_id = ?, world_id = ?, source_entity_id = ?, type = ?, data = ?,
			updated_at = ? WHERE agent_id = ? AND id = ?`,
			c.EntityID, c.RoomID, c.WorldID, c.SourceEntityID, c.Type, data, now(), agentID, c.ID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err == nil {
				err = fmt.Errorf("component %s: %w", c.ID, sdk.ErrNotFound)
			}
			return err
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	return nil
}

// GetComponents returns the components of q.EntityIDs, first stored first,
// narrowed by type, world and source entity when those are set.
func (s *Store) GetComponents(ctx context.Context, agentID string, q storage.ComponentQuery) ([]sdk.Component, error) {
	fail := func(err error) ([]sdk.Component, error) { return nil, fmt.Errorf("get components: %w", err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if len(q.EntityIDs) == 0 {
		return fail(invalid("query.entityIds", "is empty; name the entities whose components you want"))
	}
	if len(q.EntityIDs) > inChunk {
		return fail(invalid("query.entityIds", "has %d ids; at most %d", len(q.EntityIDs), inChunk))
	}
	if err := checkIDs("query.entityIds", q.EntityIDs); err != nil {
		return fail(err)
	}
	if err := checkID("query.worldId", q.WorldID, false); err != nil {
		return fail(err)
	}
	if err := checkID("query.sourceEntityId", q.SourceEntityID, false); err != nil {
		return fail(err)
	}
	if err := s.checkOptionalKey("query.type", q.Type); err != nil {
		return fail(err)
	}
	w := &where{}
	w.add("agent_id = ?", agentID)
	args := make([]any, len(q.EntityIDs))
	for i, id := range q.EntityIDs {
		args[i] = id
	}
	w.add("entity_id IN ("+placeholders(len(args))+")", args...)
	if q.Type != "" {
		w.add("type = ?", q.Type)
	}
	if q.WorldID != "" {
		w.add("world_id = ?", q.WorldID)
	}
	if q.SourceEntityID != "" {
		w.add("source_entity_id = ?", q.SourceEntityID)
	}
	rows, err := s.read().query(ctx, `SELECT id, entity_id, room_id, world_id, source_entity_id, type, data, created_at
		FROM components WHERE `+w.String()+` ORDER BY seq`, w.args...)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var out []sdk.Component
	var budget listBudget
	for rows.Next() {
		c := sdk.Component{AgentID: agentID}
		var data []byte
		if err := rows.Scan(&c.ID, &c.EntityID, &c.RoomID, &c.WorldID, &c.SourceEntityID, &c.Type, &data, &c.CreatedAt); err != nil {
			return fail(err)
		}
		if !budget.fits(len(data)) {
			break
		}
		if err := json.Unmarshal(data, &c.Data); err != nil {
			return fail(fmt.Errorf("component %s: stored data: %w", c.ID, err))
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return out, nil
}

// DeleteComponent deletes one component and returns how many it deleted.
func (s *Store) DeleteComponent(ctx context.Context, agentID, id string) (int64, error) {
	return s.deleteOne(ctx, "component", "components", agentID, id)
}

// nonNilMap stores a missing map as {} rather than null.
func nonNilMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

func (s *Store) checkRelationship(field, agentID string, r storage.Relationship) error {
	if err := checkID(field+".id", r.ID, false); err != nil {
		return err
	}
	if err := checkID(field+".sourceEntityId", r.SourceEntityID, true); err != nil {
		return err
	}
	if err := checkID(field+".targetEntityId", r.TargetEntityID, true); err != nil {
		return err
	}
	if err := checkOwner(field+".agentId", r.AgentID, agentID); err != nil {
		return err
	}
	if r.CreatedAt < 0 {
		return invalid(field+".createdAt", "is negative (%d)", r.CreatedAt)
	}
	return s.checkValue(field+".tags", r.Tags)
}

// CreateRelationship stores a relationship from r.SourceEntityID to
// r.TargetEntityID, both stored entities. There is one relationship per
// direction: when one is stored already it is left as it is, its id is
// returned and created is false (UpdateRelationship changes it).
func (s *Store) CreateRelationship(ctx context.Context, agentID string, rel storage.Relationship) (string, bool, error) {
	id := rel.ID
	if id == "" {
		id = sdk.NewID()
	}
	fail := func(err error) (string, bool, error) {
		return "", false, fmt.Errorf("create relationship %s → %s: %w", truncate(rel.SourceEntityID), truncate(rel.TargetEntityID), err)
	}
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := s.checkRelationship("relationship", agentID, rel); err != nil {
		return fail(err)
	}
	tags, err := s.marshal("relationship.tags", nonNilNames(rel.Tags))
	if err != nil {
		return fail(err)
	}
	metadata, err := s.marshal("relationship.metadata", nonNilMap(rel.Metadata))
	if err != nil {
		return fail(err)
	}
	created, stored := false, ""
	err = s.write(ctx, func(r runner) error {
		if err := requireEntity(ctx, r, agentID, "relationship.sourceEntityId", rel.SourceEntityID); err != nil {
			return err
		}
		if err := requireEntity(ctx, r, agentID, "relationship.targetEntityId", rel.TargetEntityID); err != nil {
			return err
		}
		t := now()
		createdAt := rel.CreatedAt
		if createdAt == 0 {
			createdAt = t
		}
		res, err := r.exec(ctx, `INSERT INTO relationships (agent_id, id, source_entity_id, target_entity_id, tags, metadata, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			agentID, id, rel.SourceEntityID, rel.TargetEntityID, tags, metadata, createdAt, t)
		if created, err = insertedOne(res, err); err != nil || created {
			stored = id
			return err
		}
		err = r.queryRow(ctx, `SELECT id FROM relationships WHERE agent_id = ? AND source_entity_id = ? AND target_entity_id = ?`,
			agentID, rel.SourceEntityID, rel.TargetEntityID).Scan(&stored)
		if errors.Is(err, sql.ErrNoRows) {
			return invalid("relationship.id", "%s is the id of another relationship", id)
		}
		return err
	})
	if err != nil {
		return fail(err)
	}
	return stored, created, nil
}

// UpdateRelationship replaces the tags and metadata of the relationship
// from r.SourceEntityID to r.TargetEntityID. A missing one is an error
// matching sdk.ErrNotFound.
func (s *Store) UpdateRelationship(ctx context.Context, agentID string, rel storage.Relationship) error {
	fail := func(err error) error {
		return fmt.Errorf("update relationship %s → %s: %w", truncate(rel.SourceEntityID), truncate(rel.TargetEntityID), err)
	}
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := s.checkRelationship("relationship", agentID, rel); err != nil {
		return fail(err)
	}
	tags, err := s.marshal("relationship.tags", nonNilNames(rel.Tags))
	if err != nil {
		return fail(err)
	}
	metadata, err := s.marshal("relationship.metadata", nonNilMap(rel.Metadata))
	if err != nil {
		return fail(err)
	}
	n, err := s.deleteWhere(ctx, `UPDATE relationships SET tags = ?, metadata = ?, updated_at = ?
		WHERE agent_id = ? AND source_entity_id = ? AND target_entity_id = ?`,
		tags, metadata, now(), agentID, rel.SourceEntityID, rel.TargetEntityID)
	if err != nil {
		return fail(err)
	}
	if n == 0 {
		return fail(fmt.Errorf("no such relationship: %w", sdk.ErrNotFound))
	}
	return nil
}

// GetRelationships returns the relationships that q selects, first stored
// first: q.EntityID at either end, q.SourceEntityID and q.TargetEntityID at
// theirs, and, when q.Tags is set, those with any of the tags.
func (s *Store) GetRelationships(ctx context.Context, agentID string, q storage.RelationshipQuery) ([]storage.Relationship, error) {
	fail := func(err error) ([]storage.Relationship, error) { return nil, fmt.Errorf("get relationships: %w", err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkID("query.entityId", q.EntityID, false); err != nil {
		return fail(err)
	}
	if err := checkID("query.sourceEntityId", q.SourceEntityID, false); err != nil {
		return fail(err)
	}
	if err := checkID("query.targetEntityId", q.TargetEntityID, false); err != nil {
		return fail(err)
	}
	if q.EntityID == "" && q.SourceEntityID == "" && q.TargetEntityID == "" {
		return fail(invalid("query", "names no entity; set entityId, sourceEntityId or targetEntityId"))
	}
	if err := s.checkValue("query.tags", q.Tags); err != nil {
		return fail(err)
	}
	w := &where{}
	w.add("agent_id = ?", agentID)
	if q.EntityID != "" {
		w.add("(source_entity_id = ? OR target_entity_id = ?)", q.EntityID, q.EntityID)
	}
	if q.SourceEntityID != "" {
		w.add("source_entity_id = ?", q.SourceEntityID)
	}
	if q.TargetEntityID != "" {
		w.add("target_entity_id = ?", q.TargetEntityID)
	}
	rows, err := s.read().query(ctx, `SELECT id, source_entity_id, target_entity_id, tags, metadata, created_at
		FROM relationships WHERE `+w.String()+` ORDER BY seq`, w.args...)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var out []storage.Relationship
	var budget listBudget
	for rows.Next() {
		rel := storage.Relationship{AgentID: agentID}
		var tags, metadata []byte
		if err := rows.Scan(&rel.ID, &rel.SourceEntityID, &rel.TargetEntityID, &tags, &metadata, &rel.CreatedAt); err != nil {
			return fail(err)
		}
		if !budget.fits(len(tags) + len(metadata)) {
			break
		}
		if err := json.Unmarshal(tags, &rel.Tags); err != nil {
			return fail(fmt.Errorf("relationship %s: stored tags: %w", rel.ID, err))
		}
		if err := json.Unmarshal(metadata, &rel.Metadata); err != nil {
			return fail(fmt.Errorf("relationship %s: stored metadata: %w", rel.ID, err))
		}
		if len(q.Tags) > 0 && !hasAny(rel.Tags, q.Tags) {
			continue
		}
		out = append(out, rel)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return out, nil
}

func hasAny(have, want []string) bool {
	for _, w := range want {
		for _, h := range have {
			if h == w {
				return true
			}
		}
	}
	return false
}

func hasAll(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if h == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
