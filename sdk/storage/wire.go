package storage

import (
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/internal/wire"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// conv is the sdk's own set of conversions (see sdk/internal/wire): a
// storage call encodes a memory or an entity exactly as a handler's
// message is encoded.
var conv = wire.Conversions.(sdkConversions)

// sdkConversions are the sdk's conversions this package uses.
type sdkConversions interface {
	// Database is the client of an agent's storage calls.
	Database(*sdk.Agent) pb.DatabaseClient

	ValidUTF8(string) string
	ValidUTF8s([]string) []string
	EncodeMap(map[string]any) []byte
	DecodeMap([]byte) map[string]any
	ContentToProto(*sdk.Content) *pb.Content
	ContentFromProto(*pb.Content) sdk.Content
	MemoryToProto(*sdk.Memory) *pb.Memory
	MemoriesFromProto([]*pb.Memory) []sdk.Memory
	EntityToProto(*sdk.Entity) *pb.Entity
	EntityFromProto(*pb.Entity) sdk.Entity
	RoomToProto(*sdk.Room) *pb.Room
	RoomFromProto(*pb.Room) sdk.Room
	WorldToProto(*sdk.World) *pb.World
	WorldFromProto(*pb.World) sdk.World
}

// conversions hands this package's conversions to the Database service's
// side, sdk/dbplugin and sdk/plugintest (see sdk/internal/wire), so that
// both ends of a storage call convert with the same functions.
type conversions struct{}

func init() { wire.Storage = conversions{} }

func (conversions) CachedEmbeddingsQueryFromProto(req *pb.GetCachedEmbeddingsRequest) CachedEmbeddingsQuery {
	return cachedEmbeddingsQueryFromProto(req)
}
func (conversions) ComponentFromProto(c *pb.Component) sdk.Component { return componentFromProto(c) }
func (conversions) ComponentToProto(c *sdk.Component) *pb.Component  { return componentToProto(c) }
func (conversions) EntitiesToProto(es []sdk.Entity, withComponents bool) *pb.GetEntitiesResponse {
	return entitiesToProto(es, withComponents)
}
func (conversions) LogFromProto(l *pb.LogEntry) LogEntry { return logFromProto(l) }
func (conversions) LogToProto(l *LogEntry) *pb.LogEntry  { return logToProto(l) }
func (conversions) MemoryQueryFromProto(q *pb.GetMemoriesRequest) MemoryQuery {
	return memoryQueryFromProto(q)
}
func (conversions) MemoryUpdateFromProto(req *pb.UpdateMemoryRequest) MemoryUpdate {
	return memoryUpdateFromProto(req)
}
func (conversions) MemoryUpdateToProto(agentID string, u *MemoryUpdate) *pb.UpdateMemoryRequest {
	return memoryUpdateToProto(agentID, u)
}
func (conversions) RelationshipFromProto(r *pb.Relationship) Relationship {
	return relationshipFromProto(r)
}
func (conversions) RelationshipToProto(r *Relationship) *pb.Relationship {
	return relationshipToProto(r)
}
func (conversions) SearchQueryFromProto(q *pb.SearchMemoriesRequest) SearchQuery {
	return searchQueryFromProto(q)
}
func (conversions) TaskFromProto(t *pb.Task) Task { return taskFromProto(t) }
func (conversions) TaskToProto(t *Task) *pb.Task  { return taskToProto(t) }
func (conversions) TaskUpdateFromProto(req *pb.UpdateTaskRequest) TaskUpdate {
	return taskUpdateFromProto(req)
}
func (conversions) TaskUpdateToProto(agentID string, id string, u *TaskUpdate) *pb.UpdateTaskRequest {
	return taskUpdateToProto(agentID, id, u)
}
