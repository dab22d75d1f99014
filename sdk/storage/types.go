package storage

import "github.com/agenthost/agenthost/sdk"

// MemoryUpdate is what UpdateMemory changes of the memory with ID.
type MemoryUpdate struct {
	ID string
	// Content replaces the stored content when set.
	Content *sdk.Content
	// Metadata is merged into the stored metadata key by key (a top-level
	// merge, as elizaOS's jsonb ||); a nil value deletes the key.
	Metadata map[string]any
	// Embedding replaces the stored embedding when set; it must have the
	// agent's embedding size.
	Embedding []float32
	// ClearEmbedding removes the stored embedding.
	ClearEmbedding bool
}

// ComponentQuery selects components of entities; the filters that are set
// all apply.
type ComponentQuery struct {
	// EntityIDs is required: the entities whose components are wanted.
	EntityIDs      []string
	Type           string
	WorldID        string
	SourceEntityID string
}

// Relationship links two entities, with tags and metadata (for example an
// interactions counter).
type Relationship struct {
	ID             string         `json:"id"`
	SourceEntityID string         `json:"sourceEntityId"`
	TargetEntityID string         `json:"targetEntityId"`
	AgentID        string         `json:"agentId,omitempty"`
	Tags           []string       `json:"tags"`
	Metadata       map[string]any `json:"metadata,omitempty"`
	CreatedAt      int64          `json:"createdAt,omitempty"`
}

// RelationshipQuery selects relationships; the filters that are set all
// apply.
type RelationshipQuery struct {
	// EntityID matches either end.
	EntityID       string
	SourceEntityID string
	TargetEntityID string
	// Tags keeps the relationships that have any of them, as elizaOS does.
	Tags []string
}

// Task is stored work for a task worker (elizaOS's tasks).
type Task struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	RoomID      string         `json:"roomId,omitempty"`
	WorldID     string         `json:"worldId,omitempty"`
	EntityID    string         `json:"entityId,omitempty"`
	AgentID     string         `json:"agentId,omitempty"`
	Tags        []string       `json:"tags"`
	Metadata    map[string]any `json:"metadata,omitempty"`
	CreatedAt   int64          `json:"createdAt,omitempty"`
	UpdatedAt   int64          `json:"updatedAt,omitempty"`
}

// TaskQuery selects tasks, oldest first; the filters that are set all
// apply.
type TaskQuery struct {
	RoomID   string
	EntityID string
	WorldID  string
	Name     string
	// Tags keeps the tasks that have every one of them, as elizaOS does.
	Tags []string
}

// TaskUpdate is what UpdateTask changes; nil fields are kept.
type TaskUpdate struct {
	Name        *string
	Description *string
	RoomID      *string
	WorldID     *string
	EntityID    *string
	// Tags replaces the tags when not nil (an empty, non-nil slice clears
	// them).
	Tags []string
	// Metadata replaces the metadata when not nil.
	Metadata map[string]any
}

// MemoryQuery selects memories, newest first.
type MemoryQuery struct {
	Table  string
	RoomID string
	// RoomIDs selects the memories of several rooms at once (elizaOS's
	// getMemoriesByRoomIds); Count applies to all of them together.
	RoomIDs  []string
	EntityID string
	WorldID  string
	// Count 0 means the store's default.
	Count  int
	Unique bool
	// Start and End bound CreatedAt (unix ms, inclusive); 0 means open.
	Start, End int64
	// OmitEmbeddings leaves the vectors out, for callers that only read
	// text: they are most of a memory's size.
	OmitEmbeddings bool
}

// SearchQuery is a vector search by cosine similarity.
type SearchQuery struct {
	Table     string
	Embedding []float32
	// Threshold is the minimum similarity.
	Threshold float64
	Count     int
	Unique    bool
	RoomID    string
	WorldID   string
	EntityID  string
}

// EntitySearch finds entities by name; the filters that are set all apply,
// and none set means every entity (up to Count).
type EntitySearch struct {
	// NameContains keeps the entities with a name that contains it,
	// compared in lower case (Unicode, as strings.ToLower), taken
	// literally: % and _ are no wildcards.
	NameContains string
	// Names keeps the entities with a name equal to one of them (exactly,
	// case and all).
	Names []string
	// Count bounds the result; 0 means the store's default (10).
	Count int
	// WithComponents attaches each entity's components.
	WithComponents bool
}

// CachedEmbeddingsQuery asks for the stored embeddings of texts close to
// Text (elizaOS's getCachedEmbeddings: query_input, query_threshold,
// query_field_sub_name, query_table_name, query_match_count).
type CachedEmbeddingsQuery struct {
	// Text is compared, character by character, with each memory's text.
	Text string
	// Field is the key of the memory content that holds the text; empty
	// means "text".
	Field string
	// Table is the logical table of the memories; empty means every table.
	Table string
	// Threshold is the largest Levenshtein distance kept (inclusive).
	Threshold int
	// Count bounds the result; 0 means the store's default (10).
	Count int
}

// CachedEmbedding is a stored embedding whose memory's text is close to a
// query text.
type CachedEmbedding struct {
	MemoryID  string    `json:"memoryId"`
	Embedding []float32 `json:"embedding"`
	// LevenshteinScore is the distance of the memory's text to the query
	// text: the number of characters inserted, deleted or replaced.
	LevenshteinScore int `json:"levenshtein_score"`
}

// Connection is what EnsureConnection makes sure exists.
type Connection struct {
	Entity sdk.Entity
	Room   sdk.Room
	World  sdk.World
}

// RoomQuery selects rooms by ids, by participant or by world.
type RoomQuery struct {
	IDs           []string
	ParticipantID string
	// ParticipantIDs selects the rooms any of these entities takes part in
	// (elizaOS's getRoomsForParticipants).
	ParticipantIDs []string
	WorldID        string
}

// LogQuery selects log entries, newest first.
type LogQuery struct {
	RoomID   string
	EntityID string
	Type     string
	Count    int
	// Offset skips that many of the newest entries.
	Offset int
}

// LogEntry is a run, a model call, an action or an evaluator, for the
// timeline.
type LogEntry struct {
	ID        string         `json:"id,omitempty"`
	AgentID   string         `json:"agentId,omitempty"`
	EntityID  string         `json:"entityId,omitempty"`
	RoomID    string         `json:"roomId,omitempty"`
	Type      string         `json:"type"`
	Body      map[string]any `json:"body"`
	CreatedAt int64          `json:"createdAt,omitempty"`
}
