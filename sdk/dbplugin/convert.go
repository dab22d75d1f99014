package dbplugin

import (
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/internal/wire"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/agenthost/agenthost/sdk/storage"
	"google.golang.org/grpc"
)

// conv is the SDK's own set of conversions (see sdk/internal/wire): the
// Database service converts with the very functions the agents' storage
// calls use on the other side of the wire.
var conv = wire.Conversions.(conversions)

// conversions are the SDK's conversions the Database service uses.
type conversions interface {
	// WithDatabase makes p serve the Database service register registers.
	WithDatabase(p sdk.Plugin, register func(*grpc.Server)) sdk.Plugin
	// NewAgent is an agent whose storage calls go to db, for tests.
	NewAgent(id string, db pb.DatabaseClient) *sdk.Agent

	EntityFromProto(*pb.Entity) sdk.Entity
	MemoriesToProto([]sdk.Memory) []*pb.Memory
	MemoryFromProto(*pb.Memory) *sdk.Memory
	RoomFromProto(*pb.Room) sdk.Room
	RoomToProto(*sdk.Room) *pb.Room
	WorldFromProto(*pb.World) sdk.World
	WorldToProto(*sdk.World) *pb.World
}

func agentRecordToProto(a *AgentRecord) *pb.Agent {
	return &pb.Agent{Id: a.ID, Name: a.Name, CharacterJson: a.CharacterJSON, Enabled: a.Enabled, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
		EmbeddingDimension: int32(a.EmbeddingDimension)}
}

func agentRecordFromProto(a *pb.Agent) AgentRecord {
	return AgentRecord{ID: a.GetId(), Name: a.GetName(), CharacterJSON: a.GetCharacterJson(), Enabled: a.GetEnabled(), CreatedAt: a.GetCreatedAt(), UpdatedAt: a.GetUpdatedAt(),
		EmbeddingDimension: int(a.GetEmbeddingDimension())}
}

// sconv is sdk/storage's set: the Database service decodes a storage
// call's query with the functions that encoded it.
var sconv = wire.Storage.(storageConversions)

// storageConversions are sdk/storage's conversions the Database service
// uses.
type storageConversions interface {
	CachedEmbeddingsQueryFromProto(*pb.GetCachedEmbeddingsRequest) storage.CachedEmbeddingsQuery
	ComponentFromProto(*pb.Component) sdk.Component
	ComponentToProto(*sdk.Component) *pb.Component
	EntitiesToProto([]sdk.Entity, bool) *pb.GetEntitiesResponse
	LogFromProto(*pb.LogEntry) storage.LogEntry
	LogToProto(*storage.LogEntry) *pb.LogEntry
	MemoryQueryFromProto(*pb.GetMemoriesRequest) storage.MemoryQuery
	MemoryUpdateFromProto(*pb.UpdateMemoryRequest) storage.MemoryUpdate
	MemoryUpdateToProto(string, *storage.MemoryUpdate) *pb.UpdateMemoryRequest
	RelationshipFromProto(*pb.Relationship) storage.Relationship
	RelationshipToProto(*storage.Relationship) *pb.Relationship
	SearchQueryFromProto(*pb.SearchMemoriesRequest) storage.SearchQuery
	TaskFromProto(*pb.Task) storage.Task
	TaskToProto(*storage.Task) *pb.Task
	TaskUpdateFromProto(*pb.UpdateTaskRequest) storage.TaskUpdate
	TaskUpdateToProto(string, string, *storage.TaskUpdate) *pb.UpdateTaskRequest
}
