package sdk

import "context"

// DatabaseAdapter is the storage of every agent. The sql plugin implements it;
// the host is its only caller. Every method names its agent, and every id is
// already agent-scoped (see CreateUniqueUUID). Implementations must be safe
// for concurrent use and must never leave a write half done.
type DatabaseAdapter interface {
	// Migrate applies pending migrations; it is safe to call from several
	// processes at once.
	Migrate(ctx context.Context) (MigrationReport, error)
	MigrationStatus(ctx context.Context) (MigrationReport, error)

	// EnsureAgent stores the agent, or updates the stored one with the same
	// id or name; it returns the stored record.
	EnsureAgent(ctx context.Context, agent AgentRecord) (AgentRecord, bool, error)
	GetAgents(ctx context.Context) ([]AgentRecord, error)
	// GetAgent returns one agent, or an error wrapping ErrNotFound.
	GetAgent(ctx context.Context, id string) (AgentRecord, error)
	// UpdateAgent changes the fields of u that are set and returns the
	// stored record; an unknown id is an error wrapping ErrNotFound.
	UpdateAgent(ctx context.Context, id string, u AgentUpdate) (AgentRecord, error)
	// DeleteAgent deletes the agent and everything it stores; it reports
	// whether the agent existed.
	DeleteAgent(ctx context.Context, id string) (bool, error)
	// EnsureEmbeddingDimension fixes the agent's embedding size on first use
	// and returns the size stored before (0 if none). Another size than the
	// stored one is refused while the agent has memories with embeddings.
	EnsureEmbeddingDimension(ctx context.Context, agentID string, dim int) (int, error)
	// SetEmbeddingDimension switches the agent's embedding size even when
	// memories hold embeddings of the old size: those are kept but take no
	// part in search or duplicate detection until they are re-embedded
	// (UpdateMemory). It returns the size stored before and how many
	// memories now hold an embedding of another size.
	SetEmbeddingDimension(ctx context.Context, agentID string, dim int) (previous int, stale int64, err error)

	// CreateMemory stores m; an existing id is left as it is and reported
	// with created=false, so a message delivered twice is stored once.
	CreateMemory(ctx context.Context, agentID string, m *Memory, table string, unique bool) (id string, created bool, err error)
	GetMemories(ctx context.Context, agentID string, q MemoryQuery) ([]Memory, error)
	GetMemoriesByIDs(ctx context.Context, agentID string, ids []string, table string) ([]Memory, error)
	SearchMemories(ctx context.Context, agentID string, q SearchQuery) ([]Memory, error)
	// UpdateMemory changes what u sets of a stored memory and reports
	// whether the memory exists.
	UpdateMemory(ctx context.Context, agentID string, u MemoryUpdate) (bool, error)
	DeleteMemory(ctx context.Context, agentID, id string) (int64, error)
	// DeleteManyMemories deletes the memories among ids in one transaction
	// and returns how many it deleted.
	DeleteManyMemories(ctx context.Context, agentID string, ids []string) (int64, error)
	DeleteAllMemories(ctx context.Context, agentID, roomID, table string) (int64, error)
	CountMemories(ctx context.Context, agentID, roomID, table string, unique bool) (int64, error)
	// GetMemoriesToReembed returns up to limit memories that hold an
	// embedding made before the unix millisecond before (or of another size
	// than the agent's), oldest first. A memory given a new embedding
	// (UpdateMemory) leaves the list, so calling it again goes on.
	GetMemoriesToReembed(ctx context.Context, agentID string, before int64, limit int) ([]Memory, error)
	// GetCachedEmbeddings returns the embeddings of the memories whose
	// content text is within q.Threshold edits (Levenshtein distance) of
	// q.Text, closest first (elizaOS's legacy getCachedEmbeddings).
	GetCachedEmbeddings(ctx context.Context, agentID string, q CachedEmbeddingsQuery) ([]CachedEmbedding, error)

	// EnsureConnection creates or updates, in one transaction, the world,
	// the room, the entity (merging names and metadata) and the
	// participation of the entity and of the agent in the room. Zero-valued
	// world or entity parts are skipped.
	EnsureConnection(ctx context.Context, agentID string, c Connection) error
	GetEntities(ctx context.Context, agentID string, ids []string) ([]Entity, error)
	// GetEntitiesForRoom returns the entities that take part in the room,
	// in the order they joined.
	GetEntitiesForRoom(ctx context.Context, agentID, roomID string) ([]Entity, error)
	UpsertEntities(ctx context.Context, agentID string, entities []Entity) error
	// DeleteEntity deletes the entity with its components, relationships
	// and participations.
	DeleteEntity(ctx context.Context, agentID, id string) (int64, error)
	GetRooms(ctx context.Context, agentID string, q RoomQuery) ([]Room, error)
	UpsertRoom(ctx context.Context, agentID string, r Room) error
	// DeleteRoom deletes the room with its participants, memories and logs.
	DeleteRoom(ctx context.Context, agentID, id string) (int64, error)
	GetWorlds(ctx context.Context, agentID string, ids []string) ([]World, error)
	UpsertWorld(ctx context.Context, agentID string, w World) error
	// DeleteWorld deletes the world and its rooms (see DeleteRoom).
	DeleteWorld(ctx context.Context, agentID, id string) (int64, error)
	// SearchEntities finds entities by name (elizaOS's searchEntitiesByName
	// and getEntitiesByNames), oldest first (by creation time, then id).
	SearchEntities(ctx context.Context, agentID string, q EntitySearch) ([]Entity, error)
	// AttachComponents sets the Components of each entity to its stored
	// components, first stored first (an empty, non-nil slice when it has
	// none): elizaOS's entities with their components.
	AttachComponents(ctx context.Context, agentID string, entities []Entity) error
	// UpsertRooms stores several rooms in one transaction, replacing the
	// stored ones (elizaOS's createRooms).
	UpsertRooms(ctx context.Context, agentID string, rooms []Room) error
	// DeleteRoomsByWorld deletes the rooms of a world (see DeleteRoom) and
	// keeps the world; it returns how many rooms it deleted.
	DeleteRoomsByWorld(ctx context.Context, agentID, worldID string) (int64, error)
	GetParticipants(ctx context.Context, agentID, roomID string) ([]string, error)
	// AddParticipants makes the entities participants of the room in one
	// transaction and returns how many were not participants before
	// (elizaOS's addParticipantsRoom).
	AddParticipants(ctx context.Context, agentID, roomID string, entityIDs []string) (int64, error)
	// RemoveParticipant takes the entity out of the room.
	RemoveParticipant(ctx context.Context, agentID, roomID, entityID string) (bool, error)
	GetParticipantState(ctx context.Context, agentID, roomID, entityID string) (string, error)
	SetParticipantState(ctx context.Context, agentID, roomID, entityID, state string) error

	// CreateComponent stores c; an existing id is left as it is and
	// reported with created=false.
	CreateComponent(ctx context.Context, agentID string, c Component) (id string, created bool, err error)
	// UpdateComponent replaces the stored component with c.ID; an unknown
	// id is an error wrapping ErrNotFound.
	UpdateComponent(ctx context.Context, agentID string, c Component) error
	GetComponents(ctx context.Context, agentID string, q ComponentQuery) ([]Component, error)
	DeleteComponent(ctx context.Context, agentID, id string) (int64, error)

	// CreateRelationship stores r; a relationship between the same source
	// and target is left as it is and reported with created=false.
	CreateRelationship(ctx context.Context, agentID string, r Relationship) (id string, created bool, err error)
	// UpdateRelationship replaces the tags and metadata of the stored
	// relationship from r.SourceEntityID to r.TargetEntityID.
	UpdateRelationship(ctx context.Context, agentID string, r Relationship) error
	GetRelationships(ctx context.Context, agentID string, q RelationshipQuery) ([]Relationship, error)

	CreateTask(ctx context.Context, agentID string, t Task) (string, error)
	// GetTask returns one task, or an error wrapping ErrNotFound.
	GetTask(ctx context.Context, agentID, id string) (Task, error)
	GetTasks(ctx context.Context, agentID string, q TaskQuery) ([]Task, error)
	// UpdateTask changes what u sets; an unknown id is an error wrapping
	// ErrNotFound.
	UpdateTask(ctx context.Context, agentID, id string, u TaskUpdate) error
	DeleteTask(ctx context.Context, agentID, id string) (int64, error)

	AddLog(ctx context.Context, l LogEntry) (string, error)
	// AddLogs stores several entries in one transaction: all or none.
	AddLogs(ctx context.Context, logs []LogEntry) ([]string, error)
	GetLogs(ctx context.Context, agentID string, q LogQuery) ([]LogEntry, error)
	DeleteLog(ctx context.Context, agentID, id string) (int64, error)

	GetCache(ctx context.Context, agentID, key string) ([]byte, bool, error)
	// SetCache stores value; ttlMillis 0 means no expiry.
	SetCache(ctx context.Context, agentID, key string, value []byte, ttlMillis int64) error
	DeleteCache(ctx context.Context, agentID, key string) error
}

// MigrationReport says which migrations exist and which are applied.
type MigrationReport struct {
	Backend    string
	Migrations []MigrationInfo
	// Applied counts the migrations applied by this call.
	Applied int
	// VectorSearch says how similarity search runs: "pgvector VERSION", or
	// "in Go" with the reason pgvector is not used.
	VectorSearch string
}

// MigrationInfo is one numbered migration.
type MigrationInfo struct {
	Version   int
	Name      string
	AppliedAt int64 // unix milliseconds; 0 while pending
}

// AgentRecord is a stored agent.
type AgentRecord struct {
	ID            string
	Name          string
	CharacterJSON []byte
	Enabled       bool
	CreatedAt     int64
	UpdatedAt     int64
}

// AgentUpdate is what UpdateAgent changes; nil fields are kept.
type AgentUpdate struct {
	Name    *string
	Enabled *bool
	// CharacterPatch is merged into the stored character as a JSON merge
	// patch (RFC 7396), as elizaOS merges agent updates: objects merge
	// deeply, a null deletes the key, anything else replaces it.
	CharacterPatch []byte
}

// MemoryUpdate is what UpdateMemory changes of the memory with ID.
type MemoryUpdate struct {
	ID string
	// Content replaces the stored content when set.
	Content *Content
	// Metadata is merged into the stored metadata key by key (a top-level
	// merge, as elizaOS's jsonb ||); a nil value deletes the key.
	Metadata map[string]any
	// Embedding replaces the stored embedding when set; it must have the
	// agent's embedding size.
	Embedding []float32
	// ClearEmbedding removes the stored embedding.
	ClearEmbedding bool
}

// Component is typed data about an entity, asserted by a source entity
// (elizaOS's components: contact details, per-platform accounts, ...).
type Component struct {
	ID             string         `json:"id"`
	EntityID       string         `json:"entityId"`
	AgentID        string         `json:"agentId,omitempty"`
	RoomID         string         `json:"roomId,omitempty"`
	WorldID        string         `json:"worldId,omitempty"`
	SourceEntityID string         `json:"sourceEntityId,omitempty"`
	Type           string         `json:"type"`
	Data           map[string]any `json:"data,omitempty"`
	CreatedAt      int64          `json:"createdAt,omitempty"`
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
	Entity Entity
	Room   Room
	World  World
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
