package dbplugin

import (
	"context"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
)

// Adapter is the storage of every agent. The sql plugin implements it; the
// host is its only caller. Every method names its agent, and every id is
// already agent-scoped (see sdk.CreateUniqueUUID). Implementations must be safe
// for concurrent use and must never leave a write half done.
type Adapter interface {
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
	CreateMemory(ctx context.Context, agentID string, m *sdk.Memory, table string, unique bool) (id string, created bool, err error)
	GetMemories(ctx context.Context, agentID string, q storage.MemoryQuery) ([]sdk.Memory, error)
	GetMemoriesByIDs(ctx context.Context, agentID string, ids []string, table string) ([]sdk.Memory, error)
	SearchMemories(ctx context.Context, agentID string, q storage.SearchQuery) ([]sdk.Memory, error)
	// UpdateMemory changes what u sets of a stored memory and reports
	// whether the memory exists.
	UpdateMemory(ctx context.Context, agentID string, u storage.MemoryUpdate) (bool, error)
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
	GetMemoriesToReembed(ctx context.Context, agentID string, before int64, limit int) ([]sdk.Memory, error)
	// GetCachedEmbeddings returns the embeddings of the memories whose
	// content text is within q.Threshold edits (Levenshtein distance) of
	// q.Text, closest first (elizaOS's legacy getCachedEmbeddings).
	GetCachedEmbeddings(ctx context.Context, agentID string, q storage.CachedEmbeddingsQuery) ([]storage.CachedEmbedding, error)

	// EnsureConnection creates or updates, in one transaction, the world,
	// the room, the entity (merging names and metadata) and the
	// participation of the entity and of the agent in the room. Zero-valued
	// world or entity parts are skipped.
	EnsureConnection(ctx context.Context, agentID string, c storage.Connection) error
	GetEntities(ctx context.Context, agentID string, ids []string) ([]sdk.Entity, error)
	// GetEntitiesForRoom returns the entities that take part in the room,
	// in the order they joined.
	GetEntitiesForRoom(ctx context.Context, agentID, roomID string) ([]sdk.Entity, error)
	UpsertEntities(ctx context.Context, agentID string, entities []sdk.Entity) error
	// DeleteEntity deletes the entity with its components, relationships
	// and participations.
	DeleteEntity(ctx context.Context, agentID, id string) (int64, error)
	GetRooms(ctx context.Context, agentID string, q storage.RoomQuery) ([]sdk.Room, error)
	UpsertRoom(ctx context.Context, agentID string, r sdk.Room) error
	// DeleteRoom deletes the room with its participants, memories and logs.
	DeleteRoom(ctx context.Context, agentID, id string) (int64, error)
	GetWorlds(ctx context.Context, agentID string, ids []string) ([]sdk.World, error)
	UpsertWorld(ctx context.Context, agentID string, w sdk.World) error
	// DeleteWorld deletes the world and its rooms (see DeleteRoom).
	DeleteWorld(ctx context.Context, agentID, id string) (int64, error)
	// SearchEntities finds entities by name (elizaOS's searchEntitiesByName
	// and getEntitiesByNames), oldest first (by creation time, then id).
	SearchEntities(ctx context.Context, agentID string, q storage.EntitySearch) ([]sdk.Entity, error)
	// AttachComponents sets the Components of each entity to its stored
	// components, first stored first (an empty, non-nil slice when it has
	// none): elizaOS's entities with their components.
	AttachComponents(ctx context.Context, agentID string, entities []sdk.Entity) error
	// UpsertRooms stores several rooms in one transaction, replacing the
	// stored ones (elizaOS's createRooms).
	UpsertRooms(ctx context.Context, agentID string, rooms []sdk.Room) error
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
	CreateComponent(ctx context.Context, agentID string, c sdk.Component) (id string, created bool, err error)
	// UpdateComponent replaces the stored component with c.ID; an unknown
	// id is an error wrapping ErrNotFound.
	UpdateComponent(ctx context.Context, agentID string, c sdk.Component) error
	GetComponents(ctx context.Context, agentID string, q storage.ComponentQuery) ([]sdk.Component, error)
	DeleteComponent(ctx context.Context, agentID, id string) (int64, error)

	// CreateRelationship stores r; a relationship between the same source
	// and target is left as it is and reported with created=false.
	CreateRelationship(ctx context.Context, agentID string, r storage.Relationship) (id string, created bool, err error)
	// UpdateRelationship replaces the tags and metadata of the stored
	// relationship from r.SourceEntityID to r.TargetEntityID.
	UpdateRelationship(ctx context.Context, agentID string, r storage.Relationship) error
	GetRelationships(ctx context.Context, agentID string, q storage.RelationshipQuery) ([]storage.Relationship, error)

	CreateTask(ctx context.Context, agentID string, t storage.Task) (string, error)
	// GetTask returns one task, or an error wrapping ErrNotFound.
	GetTask(ctx context.Context, agentID, id string) (storage.Task, error)
	GetTasks(ctx context.Context, agentID string, q storage.TaskQuery) ([]storage.Task, error)
	// UpdateTask changes what u sets; an unknown id is an error wrapping
	// ErrNotFound.
	UpdateTask(ctx context.Context, agentID, id string, u storage.TaskUpdate) error
	DeleteTask(ctx context.Context, agentID, id string) (int64, error)

	AddLog(ctx context.Context, l storage.LogEntry) (string, error)
	// AddLogs stores several entries in one transaction: all or none.
	AddLogs(ctx context.Context, logs []storage.LogEntry) ([]string, error)
	GetLogs(ctx context.Context, agentID string, q storage.LogQuery) ([]storage.LogEntry, error)
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
	// EmbeddingDimension is the size of the agent's embeddings (0 until
	// its first start); EnsureEmbeddingDimension sets it.
	EmbeddingDimension int
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
