package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/google/uuid"
)

// Relationship, Component and Task are the database's: relationships
// between entities (tags, and an interactions count in metadata), typed
// details of entities (a contact per platform), and work for the task
// service.
type (
	Relationship = storage.Relationship
	Component    = sdk.Component
	Task         = storage.Task
	TaskQuery    = storage.TaskQuery
)

// interactions is a relationship's interaction count.
func interactions(r *Relationship) int {
	switch v := r.Metadata["interactions"].(type) {
	case float64:
		return int(v)
	case int:
		return v
	case int64:
		return int(v)
	}
	return 0
}

// hasTag reports whether a task carries a tag: queue, repeat, immediate,
// AWAITING_CHOICE.
func hasTag(t *Task, tag string) bool { return slices.Contains(t.Tags, tag) }

// TaskOption is one option of a choice task (metadata.options).
type TaskOption struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// taskOptions are a choice task's options.
func taskOptions(t *Task) []TaskOption {
	raw, _ := t.Metadata["options"].([]any)
	var out []TaskOption
	for _, o := range raw {
		switch v := o.(type) {
		case string:
			out = append(out, TaskOption{Name: v})
		case map[string]any:
			name, _ := v["name"].(string)
			desc, _ := v["description"].(string)
			if name != "" {
				out = append(out, TaskOption{Name: name, Description: desc})
			}
		}
	}
	return out
}

// Store keeps what bootstrap needs beyond memories, entities, rooms and
// worlds: relationships, components and tasks. [DatabaseStore] keeps them
// in the database through the Runtime service; [CacheStore] keeps them as
// JSON in the agent's cache, for a database plugin that does not serve
// them.
type Store interface {
	Relationships(ctx context.Context, a *sdk.Agent, entityID string) ([]Relationship, error)
	// SaveRelationship creates or replaces the relationship of its source
	// and target.
	SaveRelationship(ctx context.Context, a *sdk.Agent, r Relationship) error
	Components(ctx context.Context, a *sdk.Agent, entityID string) ([]Component, error)
	// SaveComponent creates or replaces the component of the entity with
	// the same type, world and source entity.
	SaveComponent(ctx context.Context, a *sdk.Agent, c Component) error
	DeleteComponent(ctx context.Context, a *sdk.Agent, entityID, id string) error
	Tasks(ctx context.Context, a *sdk.Agent, q TaskQuery) ([]Task, error)
	// Task returns nil when there is no such task.
	Task(ctx context.Context, a *sdk.Agent, id string) (*Task, error)
	CreateTask(ctx context.Context, a *sdk.Agent, t Task) (string, error)
	// UpdateTask replaces the task's tags and metadata.
	UpdateTask(ctx context.Context, a *sdk.Agent, t Task) error
	DeleteTask(ctx context.Context, a *sdk.Agent, id string) error
}

// DatabaseStore returns the Store over the database service.
func DatabaseStore() Store { return dbStore{} }

type dbStore struct{}

func (dbStore) Relationships(ctx context.Context, a *sdk.Agent, entityID string) ([]Relationship, error) {
	return storage.For(a).GetRelationships(ctx, storage.RelationshipQuery{EntityID: entityID})
}

func (dbStore) SaveRelationship(ctx context.Context, a *sdk.Agent, r Relationship) error {
	if r.Tags == nil {
		r.Tags = []string{}
	}
	_, created, err := storage.For(a).CreateRelationship(ctx, r)
	if err != nil || created {
		return err
	}
	return storage.For(a).UpdateRelationship(ctx, r)
}

func (dbStore) Components(ctx context.Context, a *sdk.Agent, entityID string) ([]Component, error) {
	return storage.For(a).GetComponents(ctx, storage.ComponentQuery{EntityIDs: []string{entityID}})
}

func (dbStore) SaveComponent(ctx context.Context, a *sdk.Agent, c Component) error {
	store := storage.For(a)
	if c.ID == "" {
		old, err := store.GetComponents(ctx, storage.ComponentQuery{EntityIDs: []string{c.EntityID}, Type: c.Type})
		if err != nil {
			return err
		}
		for _, o := range old {
			if o.WorldID == c.WorldID && o.SourceEntityID == c.SourceEntityID {
				c.ID = o.ID
				return store.UpdateComponent(ctx, c)
			}
		}
		c.ID = uuid.NewString()
	}
	_, created, err := store.CreateComponent(ctx, c)
	if err != nil || created {
		return err
	}
	return store.UpdateComponent(ctx, c)
}

func (dbStore) DeleteComponent(ctx context.Context, a *sdk.Agent, entityID, id string) error {
	_, err := storage.For(a).DeleteComponent(ctx, id)
	return err
}

func (dbStore) Tasks(ctx context.Context, a *sdk.Agent, q TaskQuery) ([]Task, error) {
	return storage.For(a).GetTasks(ctx, q)
}

func (dbStore) Task(ctx context.Context, a *sdk.Agent, id string) (*Task, error) {
	t, err := storage.For(a).GetTask(ctx, id)
	if errors.Is(err, sdk.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &t, nil
}

func (dbStore) CreateTask(ctx context.Context, a *sdk.Agent, t Task) (string, error) {
	if t.Tags == nil {
		t.Tags = []string{}
	}
	return storage.For(a).CreateTask(ctx, t)
}

func (dbStore) UpdateTask(ctx context.Context, a *sdk.Agent, t Task) error {
	tags := t.Tags
	if tags == nil {
		tags = []string{}
	}
	md := t.Metadata
	if md == nil {
		md = map[string]any{}
	}
	return storage.For(a).UpdateTask(ctx, t.ID, storage.TaskUpdate{Tags: tags, Metadata: md})
}

func (dbStore) DeleteTask(ctx context.Context, a *sdk.Agent, id string) error {
	_, err := storage.For(a).DeleteTask(ctx, id)
	return err
}

// Cache keys of [CacheStore]. Another plugin may use the same store (call
// CacheStore from its own process); keys hold JSON.
const (
	cacheKeyRelationships = "bootstrap/relationships/" // + entity id: []Relationship
	cacheKeyComponents    = "bootstrap/components/"    // + entity id: []Component
	cacheKeyTaskIndex     = "bootstrap/tasks"          // []string of task ids
	cacheKeyTask          = "bootstrap/task/"          // + task id: Task
)

// CacheStore returns the Store that keeps its data in the agent's cache.
// Writes of one process are serialized per agent, across every CacheStore
// of the process: the task index is read, changed and written back, and two
// stores each with a lock of its own lost each other's new tasks. Each task
// has its own key, so the task service updating a task never loses another
// process's new task.
func CacheStore() Store { return &cacheStore{} }

type cacheStore struct{}

// cacheLocks holds one mutex per agent for every CacheStore of the process.
var cacheLocks sync.Map // agent id → *sync.Mutex

func (s *cacheStore) lock(agentID string) func() {
	l, _ := cacheLocks.LoadOrStore(agentID, new(sync.Mutex))
	m := l.(*sync.Mutex)
	m.Lock()
	return m.Unlock
}

func getJSON(ctx context.Context, a *sdk.Agent, key string, v any) (bool, error) {
	b, found, err := storage.For(a).GetCache(ctx, key)
	if err != nil || !found || len(b) == 0 {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("cache %s: %w", key, err)
	}
	return true, nil
}

func setJSON(ctx context.Context, a *sdk.Agent, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return storage.For(a).SetCache(ctx, key, b, 0)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func (s *cacheStore) Relationships(ctx context.Context, a *sdk.Agent, entityID string) ([]Relationship, error) {
	var rs []Relationship
	_, err := getJSON(ctx, a, cacheKeyRelationships+entityID, &rs)
	return rs, err
}

func (s *cacheStore) SaveRelationship(ctx context.Context, a *sdk.Agent, r Relationship) error {
	if r.SourceEntityID == "" || r.TargetEntityID == "" {
		return fmt.Errorf("save relationship: source and target are required: %w", sdk.ErrInvalid)
	}
	defer s.lock(a.ID)()
	if r.ID == "" {
		r.ID = uuid.NewString()
	}
	if r.CreatedAt == 0 {
		r.CreatedAt = time.Now().UnixMilli()
	}
	r.AgentID = a.ID
	for _, end := range []string{r.SourceEntityID, r.TargetEntityID} {
		rs, err := s.Relationships(ctx, a, end)
		if err != nil {
			return err
		}
		rs = slices.DeleteFunc(rs, func(x Relationship) bool {
			return x.SourceEntityID == r.SourceEntityID && x.TargetEntityID == r.TargetEntityID
		})
		rs = append(rs, r)
		if err := setJSON(ctx, a, cacheKeyRelationships+end, rs); err != nil {
			return err
		}
		if r.SourceEntityID == r.TargetEntityID {
			break
		}
	}
	return nil
}

func (s *cacheStore) Components(ctx context.Context, a *sdk.Agent, entityID string) ([]Component, error) {
	var cs []Component
	_, err := getJSON(ctx, a, cacheKeyComponents+entityID, &cs)
	return cs, err
}

func (s *cacheStore) SaveComponent(ctx context.Context, a *sdk.Agent, c Component) error {
	if c.EntityID == "" || c.Type == "" {
		return fmt.Errorf("save component: entity and type are required: %w", sdk.ErrInvalid)
	}
	defer s.lock(a.ID)()
	cs, err := s.Components(ctx, a, c.EntityID)
	if err != nil {
		return err
	}
	c.AgentID = a.ID
	if c.CreatedAt == 0 {
		c.CreatedAt = time.Now().UnixMilli()
	}
	replaced := false
	for i := range cs {
		if (c.ID != "" && cs[i].ID == c.ID) || (cs[i].Type == c.Type && cs[i].WorldID == c.WorldID && cs[i].SourceEntityID == c.SourceEntityID) {
			if c.ID == "" {
				c.ID = cs[i].ID
			}
			cs[i] = c
			replaced = true
			break
		}
	}
	if !replaced {
		if c.ID == "" {
			c.ID = uuid.NewString()
		}
		cs = append(cs, c)
	}
	return setJSON(ctx, a, cacheKeyComponents+c.EntityID, cs)
}

func (s *cacheStore) DeleteComponent(ctx context.Context, a *sdk.Agent, entityID, id string) error {
	defer s.lock(a.ID)()
	cs, err := s.Components(ctx, a, entityID)
	if err != nil {
		return err
	}
	cs = slices.DeleteFunc(cs, func(c Component) bool { return c.ID == id })
	return setJSON(ctx, a, cacheKeyComponents+entityID, cs)
}

func (s *cacheStore) taskIDs(ctx context.Context, a *sdk.Agent) ([]string, error) {
	var ids []string
	_, err := getJSON(ctx, a, cacheKeyTaskIndex, &ids)
	return ids, err
}

func (s *cacheStore) Task(ctx context.Context, a *sdk.Agent, id string) (*Task, error) {
	var t Task
	found, err := getJSON(ctx, a, cacheKeyTask+id, &t)
	if err != nil || !found || t.ID == "" {
		return nil, err
	}
	return &t, nil
}

func (s *cacheStore) Tasks(ctx context.Context, a *sdk.Agent, q TaskQuery) ([]Task, error) {
	ids, err := s.taskIDs(ctx, a)
	if err != nil {
		return nil, err
	}
	var out []Task
	for _, id := range ids {
		t, err := s.Task(ctx, a, id)
		if err != nil {
			return nil, err
		}
		if t == nil || (q.RoomID != "" && t.RoomID != q.RoomID) || (q.EntityID != "" && t.EntityID != q.EntityID) ||
			(q.Name != "" && t.Name != q.Name) || (q.WorldID != "" && t.WorldID != q.WorldID) {
			continue
		}
		ok := true
		for _, tag := range q.Tags {
			ok = ok && hasTag(t, tag)
		}
		if ok {
			out = append(out, *t)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt < out[j].CreatedAt })
	return out, nil
}

func (s *cacheStore) CreateTask(ctx context.Context, a *sdk.Agent, t Task) (string, error) {
	if strings.TrimSpace(t.Name) == "" {
		return "", fmt.Errorf("create task: name is required: %w", sdk.ErrInvalid)
	}
	defer s.lock(a.ID)()
	if t.ID == "" {
		t.ID = uuid.NewString()
	}
	now := time.Now().UnixMilli()
	if t.CreatedAt == 0 {
		t.CreatedAt = now
	}
	if t.UpdatedAt == 0 {
		t.UpdatedAt = now
	}
	if err := setJSON(ctx, a, cacheKeyTask+t.ID, t); err != nil {
		return "", err
	}
	ids, err := s.taskIDs(ctx, a)
	if err != nil {
		return "", err
	}
	if !slices.Contains(ids, t.ID) {
		ids = append(ids, t.ID)
		if err := setJSON(ctx, a, cacheKeyTaskIndex, ids); err != nil {
			return "", err
		}
	}
	return t.ID, nil
}

func (s *cacheStore) UpdateTask(ctx context.Context, a *sdk.Agent, t Task) error {
	if t.ID == "" {
		return fmt.Errorf("update task: id is required: %w", sdk.ErrInvalid)
	}
	old, err := s.Task(ctx, a, t.ID)
	if err != nil {
		return err
	}
	if old == nil {
		return fmt.Errorf("update task %s: %w", t.ID, sdk.ErrNotFound)
	}
	t.UpdatedAt = time.Now().UnixMilli()
	return setJSON(ctx, a, cacheKeyTask+t.ID, t)
}

func (s *cacheStore) DeleteTask(ctx context.Context, a *sdk.Agent, id string) error {
	defer s.lock(a.ID)()
	ids, err := s.taskIDs(ctx, a)
	if err != nil {
		return err
	}
	if i := slices.Index(ids, id); i >= 0 {
		ids = slices.Delete(ids, i, i+1)
		if err := setJSON(ctx, a, cacheKeyTaskIndex, ids); err != nil {
			return err
		}
	}
	return storage.For(a).DeleteCache(ctx, cacheKeyTask+id)
}
