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
	// EnsureEmbeddingDimension fixes the agent's embedding size on first use
	// and returns the size stored before (0 if none).
	EnsureEmbeddingDimension(ctx context.Context, agentID string, dim int) (int, error)

	// CreateMemory stores m; an existing id is left as it is and reported
	// with created=false, so a message delivered twice is stored once.
	CreateMemory(ctx context.Context, agentID string, m *Memory, table string, unique bool) (id string, created bool, err error)
	GetMemories(ctx context.Context, agentID string, q MemoryQuery) ([]Memory, error)
	GetMemoriesByIDs(ctx context.Context, agentID string, ids []string, table string) ([]Memory, error)
	SearchMemories(ctx context.Context, agentID string, q SearchQuery) ([]Memory, error)
	DeleteMemory(ctx context.Context, agentID, id string) (int64, error)
	DeleteAllMemories(ctx context.Context, agentID, roomID, table string) (int64, error)
	CountMemories(ctx context.Context, agentID, roomID, table string, unique bool) (int64, error)

	// EnsureConnection creates or updates, in one transaction, the world,
	// the room, the entity (merging names and metadata) and the
	// participation of the entity and of the agent in the room. Zero-valued
	// world or entity parts are skipped.
	EnsureConnection(ctx context.Context, agentID string, c Connection) error
	GetEntities(ctx context.Context, agentID string, ids []string) ([]Entity, error)
	UpsertEntities(ctx context.Context, agentID string, entities []Entity) error
	GetRooms(ctx context.Context, agentID string, q RoomQuery) ([]Room, error)
	UpsertRoom(ctx context.Context, agentID string, r Room) error
	GetWorlds(ctx context.Context, agentID string, ids []string) ([]World, error)
	UpsertWorld(ctx context.Context, agentID string, w World) error
	GetParticipants(ctx context.Context, agentID, roomID string) ([]string, error)
	GetParticipantState(ctx context.Context, agentID, roomID, entityID string) (string, error)
	SetParticipantState(ctx context.Context, agentID, roomID, entityID, state string) error

	AddLog(ctx context.Context, l LogEntry) (string, error)
	GetLogs(ctx context.Context, agentID string, q LogQuery) ([]LogEntry, error)

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

// MemoryQuery selects memories, newest first.
type MemoryQuery struct {
	Table    string
	RoomID   string
	RoomIDs  []string
	EntityID string
	WorldID  string
	// Count 0 means the store's default.
	Count  int
	Unique bool
	// Start and End bound CreatedAt (unix ms, inclusive); 0 means open.
	Start, End int64
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
	WorldID       string
}

// LogQuery selects log entries, newest first.
type LogQuery struct {
	RoomID string
	Type   string
	Count  int
}
