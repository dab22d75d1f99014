package sdk

import (
	"context"
	"fmt"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// databaseServer is the Database service shim over a DatabaseAdapter.
type databaseServer struct {
	pb.UnimplementedDatabaseServer
	db DatabaseAdapter
}

// status turns an adapter's error into a gRPC status. An adapter that can
// tell a database that went away (ClassifyError) marks such errors with
// ErrUnavailable: they travel as codes.Unavailable.
func (s *databaseServer) status(err error) error {
	if c, ok := s.db.(interface{ ClassifyError(error) error }); ok {
		err = c.ClassifyError(err)
	}
	return toStatus(err)
}

func reportToProto(r MigrationReport) *pb.MigrateResponse {
	out := &pb.MigrateResponse{Backend: r.Backend, Applied: int32(r.Applied), VectorSearch: r.VectorSearch}
	for _, m := range r.Migrations {
		out.Migrations = append(out.Migrations, &pb.MigrationInfo{Version: int32(m.Version), Name: m.Name, AppliedAt: m.AppliedAt})
	}
	return out
}

func (s *databaseServer) Migrate(ctx context.Context, _ *pb.MigrateRequest) (*pb.MigrateResponse, error) {
	r, err := s.db.Migrate(ctx)
	if err != nil {
		return nil, s.status(err)
	}
	return reportToProto(r), nil
}

func (s *databaseServer) MigrationStatus(ctx context.Context, _ *pb.MigrationStatusRequest) (*pb.MigrateResponse, error) {
	r, err := s.db.MigrationStatus(ctx)
	if err != nil {
		return nil, s.status(err)
	}
	return reportToProto(r), nil
}

func (s *databaseServer) EnsureAgent(ctx context.Context, req *pb.EnsureAgentRequest) (*pb.EnsureAgentResponse, error) {
	a, created, err := s.db.EnsureAgent(ctx, agentRecordFromProto(req.GetAgent()))
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.EnsureAgentResponse{Agent: agentRecordToProto(&a), Created: created}, nil
}

func (s *databaseServer) GetAgents(ctx context.Context, _ *pb.GetAgentsRequest) (*pb.GetAgentsResponse, error) {
	as, err := s.db.GetAgents(ctx)
	if err != nil {
		return nil, s.status(err)
	}
	out := &pb.GetAgentsResponse{}
	for i := range as {
		out.Agents = append(out.Agents, agentRecordToProto(&as[i]))
	}
	return out, nil
}

func (s *databaseServer) EnsureEmbeddingDimension(ctx context.Context, req *pb.EnsureEmbeddingDimensionRequest) (*pb.EnsureEmbeddingDimensionResponse, error) {
	prev, err := s.db.EnsureEmbeddingDimension(ctx, req.GetAgentId(), int(req.GetDimension()))
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.EnsureEmbeddingDimensionResponse{Previous: int32(prev)}, nil
}

func (s *databaseServer) CreateMemory(ctx context.Context, req *pb.CreateMemoryRequest) (*pb.CreateMemoryResponse, error) {
	if req.GetMemory() == nil {
		return nil, toStatus(fmt.Errorf("create memory: %w: memory is missing", ErrInvalid))
	}
	id, created, err := s.db.CreateMemory(ctx, req.GetAgentId(), memoryFromProto(req.GetMemory()), req.GetTable(), req.GetUnique())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.CreateMemoryResponse{Id: id, Created: created}, nil
}

func (s *databaseServer) GetMemories(ctx context.Context, req *pb.GetMemoriesRequest) (*pb.MemoriesResponse, error) {
	ms, err := s.db.GetMemories(ctx, req.GetAgentId(), memoryQueryFromProto(req))
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.MemoriesResponse{Memories: memoriesToProto(ms)}, nil
}

func (s *databaseServer) GetMemoriesByIDs(ctx context.Context, req *pb.GetMemoriesByIDsRequest) (*pb.MemoriesResponse, error) {
	ms, err := s.db.GetMemoriesByIDs(ctx, req.GetAgentId(), req.GetIds(), req.GetTable())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.MemoriesResponse{Memories: memoriesToProto(ms)}, nil
}

func (s *databaseServer) SearchMemories(ctx context.Context, req *pb.SearchMemoriesRequest) (*pb.MemoriesResponse, error) {
	ms, err := s.db.SearchMemories(ctx, req.GetAgentId(), searchQueryFromProto(req))
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.MemoriesResponse{Memories: memoriesToProto(ms)}, nil
}

func (s *databaseServer) DeleteMemory(ctx context.Context, req *pb.DeleteMemoryRequest) (*pb.DeleteMemoryResponse, error) {
	n, err := s.db.DeleteMemory(ctx, req.GetAgentId(), req.GetId())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.DeleteMemoryResponse{Deleted: n}, nil
}

func (s *databaseServer) DeleteAllMemories(ctx context.Context, req *pb.DeleteAllMemoriesRequest) (*pb.DeleteMemoryResponse, error) {
	n, err := s.db.DeleteAllMemories(ctx, req.GetAgentId(), req.GetRoomId(), req.GetTable())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.DeleteMemoryResponse{Deleted: n}, nil
}

func (s *databaseServer) CountMemories(ctx context.Context, req *pb.CountMemoriesRequest) (*pb.CountMemoriesResponse, error) {
	n, err := s.db.CountMemories(ctx, req.GetAgentId(), req.GetRoomId(), req.GetTable(), req.GetUnique())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.CountMemoriesResponse{Count: n}, nil
}

func (s *databaseServer) EnsureConnection(ctx context.Context, req *pb.EnsureConnectionRequest) (*pb.EnsureConnectionResponse, error) {
	c := Connection{Entity: entityFromProto(req.GetEntity()), Room: roomFromProto(req.GetRoom()), World: worldFromProto(req.GetWorld())}
	if err := s.db.EnsureConnection(ctx, req.GetAgentId(), c); err != nil {
		return nil, s.status(err)
	}
	return &pb.EnsureConnectionResponse{}, nil
}

func (s *databaseServer) GetEntities(ctx context.Context, req *pb.GetEntitiesRequest) (*pb.GetEntitiesResponse, error) {
	es, err := s.db.GetEntities(ctx, req.GetAgentId(), req.GetIds())
	return s.entities(ctx, req.GetAgentId(), es, err, req.GetIncludeComponents())
}

// entities answers the calls that return entities, with their components
// when asked.
func (s *databaseServer) entities(ctx context.Context, agentID string, es []Entity, err error, withComponents bool) (*pb.GetEntitiesResponse, error) {
	if err == nil && withComponents && len(es) > 0 {
		err = s.db.AttachComponents(ctx, agentID, es)
	}
	if err != nil {
		return nil, s.status(err)
	}
	return entitiesToProto(es, withComponents), nil
}

func (s *databaseServer) UpsertEntities(ctx context.Context, req *pb.UpsertEntitiesRequest) (*pb.UpsertEntitiesResponse, error) {
	es := make([]Entity, len(req.GetEntities()))
	for i, e := range req.GetEntities() {
		es[i] = entityFromProto(e)
	}
	if err := s.db.UpsertEntities(ctx, req.GetAgentId(), es); err != nil {
		return nil, s.status(err)
	}
	return &pb.UpsertEntitiesResponse{}, nil
}

func (s *databaseServer) GetRooms(ctx context.Context, req *pb.GetRoomsRequest) (*pb.GetRoomsResponse, error) {
	rs, err := s.db.GetRooms(ctx, req.GetAgentId(), RoomQuery{IDs: req.GetIds(), ParticipantID: req.GetParticipantId(),
		ParticipantIDs: req.GetParticipantIds(), WorldID: req.GetWorldId()})
	if err != nil {
		return nil, s.status(err)
	}
	out := &pb.GetRoomsResponse{}
	for i := range rs {
		out.Rooms = append(out.Rooms, roomToProto(&rs[i]))
	}
	return out, nil
}

func (s *databaseServer) UpsertRoom(ctx context.Context, req *pb.UpsertRoomRequest) (*pb.UpsertRoomResponse, error) {
	if err := s.db.UpsertRoom(ctx, req.GetAgentId(), roomFromProto(req.GetRoom())); err != nil {
		return nil, s.status(err)
	}
	return &pb.UpsertRoomResponse{}, nil
}

func (s *databaseServer) GetWorlds(ctx context.Context, req *pb.GetWorldsRequest) (*pb.GetWorldsResponse, error) {
	ws, err := s.db.GetWorlds(ctx, req.GetAgentId(), req.GetIds())
	if err != nil {
		return nil, s.status(err)
	}
	out := &pb.GetWorldsResponse{}
	for i := range ws {
		out.Worlds = append(out.Worlds, worldToProto(&ws[i]))
	}
	return out, nil
}

func (s *databaseServer) UpsertWorld(ctx context.Context, req *pb.UpsertWorldRequest) (*pb.UpsertWorldResponse, error) {
	if err := s.db.UpsertWorld(ctx, req.GetAgentId(), worldFromProto(req.GetWorld())); err != nil {
		return nil, s.status(err)
	}
	return &pb.UpsertWorldResponse{}, nil
}

func (s *databaseServer) GetParticipants(ctx context.Context, req *pb.GetParticipantsRequest) (*pb.GetParticipantsResponse, error) {
	ids, err := s.db.GetParticipants(ctx, req.GetAgentId(), req.GetRoomId())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.GetParticipantsResponse{EntityIds: ids}, nil
}

func (s *databaseServer) GetParticipantState(ctx context.Context, req *pb.ParticipantStateRequest) (*pb.ParticipantStateResponse, error) {
	st, err := s.db.GetParticipantState(ctx, req.GetAgentId(), req.GetRoomId(), req.GetEntityId())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.ParticipantStateResponse{State: st}, nil
}

func (s *databaseServer) SetParticipantState(ctx context.Context, req *pb.ParticipantStateRequest) (*pb.ParticipantStateResponse, error) {
	if err := s.db.SetParticipantState(ctx, req.GetAgentId(), req.GetRoomId(), req.GetEntityId(), req.GetState()); err != nil {
		return nil, s.status(err)
	}
	return &pb.ParticipantStateResponse{State: req.GetState()}, nil
}

func (s *databaseServer) AddLog(ctx context.Context, req *pb.AddLogRequest) (*pb.AddLogResponse, error) {
	if req.GetLog() == nil {
		return nil, toStatus(fmt.Errorf("add log: %w: log is missing", ErrInvalid))
	}
	id, err := s.db.AddLog(ctx, logFromProto(req.GetLog()))
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.AddLogResponse{Id: id}, nil
}

func (s *databaseServer) AddLogs(ctx context.Context, req *pb.AddLogsRequest) (*pb.AddLogsResponse, error) {
	logs := make([]LogEntry, len(req.GetLogs()))
	for i, l := range req.GetLogs() {
		logs[i] = logFromProto(l)
	}
	ids, err := s.db.AddLogs(ctx, logs)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.AddLogsResponse{Ids: ids}, nil
}

func (s *databaseServer) GetLogs(ctx context.Context, req *pb.GetLogsRequest) (*pb.GetLogsResponse, error) {
	ls, err := s.db.GetLogs(ctx, req.GetAgentId(), LogQuery{RoomID: req.GetRoomId(), EntityID: req.GetEntityId(), Type: req.GetType(),
		Count: int(req.GetCount()), Offset: int(req.GetOffset())})
	if err != nil {
		return nil, s.status(err)
	}
	out := &pb.GetLogsResponse{}
	for i := range ls {
		out.Logs = append(out.Logs, logToProto(&ls[i]))
	}
	return out, nil
}

func (s *databaseServer) GetCache(ctx context.Context, req *pb.GetCacheRequest) (*pb.GetCacheResponse, error) {
	v, ok, err := s.db.GetCache(ctx, req.GetAgentId(), req.GetKey())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.GetCacheResponse{Value: v, Found: ok}, nil
}

func (s *databaseServer) SetCache(ctx context.Context, req *pb.SetCacheRequest) (*pb.SetCacheResponse, error) {
	if err := s.db.SetCache(ctx, req.GetAgentId(), req.GetKey(), req.GetValue(), req.GetTtlMs()); err != nil {
		return nil, s.status(err)
	}
	return &pb.SetCacheResponse{}, nil
}

func (s *databaseServer) DeleteCache(ctx context.Context, req *pb.GetCacheRequest) (*pb.SetCacheResponse, error) {
	if err := s.db.DeleteCache(ctx, req.GetAgentId(), req.GetKey()); err != nil {
		return nil, s.status(err)
	}
	return &pb.SetCacheResponse{}, nil
}

func (s *databaseServer) GetAgent(ctx context.Context, req *pb.GetAgentRequest) (*pb.AgentResponse, error) {
	a, err := s.db.GetAgent(ctx, req.GetId())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.AgentResponse{Agent: agentRecordToProto(&a)}, nil
}

func (s *databaseServer) UpdateAgent(ctx context.Context, req *pb.UpdateAgentRequest) (*pb.AgentResponse, error) {
	a, err := s.db.UpdateAgent(ctx, req.GetId(), AgentUpdate{Name: req.Name, Enabled: req.Enabled, CharacterPatch: req.GetCharacterPatchJson()})
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.AgentResponse{Agent: agentRecordToProto(&a)}, nil
}

func (s *databaseServer) DeleteAgent(ctx context.Context, req *pb.GetAgentRequest) (*pb.DeleteAgentResponse, error) {
	ok, err := s.db.DeleteAgent(ctx, req.GetId())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.DeleteAgentResponse{Deleted: ok}, nil
}

func (s *databaseServer) SetEmbeddingDimension(ctx context.Context, req *pb.EnsureEmbeddingDimensionRequest) (*pb.SetEmbeddingDimensionResponse, error) {
	prev, stale, err := s.db.SetEmbeddingDimension(ctx, req.GetAgentId(), int(req.GetDimension()))
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.SetEmbeddingDimensionResponse{Previous: int32(prev), Stale: stale}, nil
}

func (s *databaseServer) UpdateMemory(ctx context.Context, req *pb.UpdateMemoryRequest) (*pb.UpdateMemoryResponse, error) {
	found, err := s.db.UpdateMemory(ctx, req.GetAgentId(), memoryUpdateFromProto(req))
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.UpdateMemoryResponse{Found: found}, nil
}

func (s *databaseServer) DeleteManyMemories(ctx context.Context, req *pb.DeleteManyMemoriesRequest) (*pb.DeleteMemoryResponse, error) {
	n, err := s.db.DeleteManyMemories(ctx, req.GetAgentId(), req.GetIds())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.DeleteMemoryResponse{Deleted: n}, nil
}

func (s *databaseServer) GetMemoriesToReembed(ctx context.Context, req *pb.GetMemoriesToReembedRequest) (*pb.MemoriesResponse, error) {
	ms, err := s.db.GetMemoriesToReembed(ctx, req.GetAgentId(), req.GetBefore(), int(req.GetLimit()))
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.MemoriesResponse{Memories: memoriesToProto(ms)}, nil
}

func (s *databaseServer) GetEntitiesForRoom(ctx context.Context, req *pb.GetEntitiesForRoomRequest) (*pb.GetEntitiesResponse, error) {
	es, err := s.db.GetEntitiesForRoom(ctx, req.GetAgentId(), req.GetRoomId())
	return s.entities(ctx, req.GetAgentId(), es, err, req.GetIncludeComponents())
}

func (s *databaseServer) SearchEntities(ctx context.Context, req *pb.SearchEntitiesRequest) (*pb.GetEntitiesResponse, error) {
	es, err := s.db.SearchEntities(ctx, req.GetAgentId(), EntitySearch{NameContains: req.GetNameContains(), Names: req.GetNames(),
		Count: int(req.GetCount()), WithComponents: req.GetIncludeComponents()})
	if err != nil {
		return nil, s.status(err)
	}
	return entitiesToProto(es, req.GetIncludeComponents()), nil
}

func (s *databaseServer) GetCachedEmbeddings(ctx context.Context, req *pb.GetCachedEmbeddingsRequest) (*pb.GetCachedEmbeddingsResponse, error) {
	cs, err := s.db.GetCachedEmbeddings(ctx, req.GetAgentId(), cachedEmbeddingsQueryFromProto(req))
	if err != nil {
		return nil, s.status(err)
	}
	out := &pb.GetCachedEmbeddingsResponse{Embeddings: make([]*pb.CachedEmbedding, len(cs))}
	for i, c := range cs {
		out.Embeddings[i] = &pb.CachedEmbedding{Embedding: c.Embedding, LevenshteinScore: int32(c.LevenshteinScore), MemoryId: c.MemoryID}
	}
	return out, nil
}

func (s *databaseServer) AddParticipants(ctx context.Context, req *pb.AddParticipantsRequest) (*pb.AddParticipantsResponse, error) {
	n, err := s.db.AddParticipants(ctx, req.GetAgentId(), req.GetRoomId(), req.GetEntityIds())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.AddParticipantsResponse{Added: n}, nil
}

func (s *databaseServer) UpsertRooms(ctx context.Context, req *pb.UpsertRoomsRequest) (*pb.UpsertRoomsResponse, error) {
	rooms := make([]Room, len(req.GetRooms()))
	for i, r := range req.GetRooms() {
		rooms[i] = roomFromProto(r)
	}
	if err := s.db.UpsertRooms(ctx, req.GetAgentId(), rooms); err != nil {
		return nil, s.status(err)
	}
	return &pb.UpsertRoomsResponse{}, nil
}

func (s *databaseServer) DeleteRoomsByWorld(ctx context.Context, req *pb.DeleteByIDRequest) (*pb.DeleteByIDResponse, error) {
	return s.deleted(s.db.DeleteRoomsByWorld(ctx, req.GetAgentId(), req.GetId()))
}

// deleted wraps the delete calls that name one record by id.
func (s *databaseServer) deleted(n int64, err error) (*pb.DeleteByIDResponse, error) {
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.DeleteByIDResponse{Deleted: n}, nil
}

func (s *databaseServer) DeleteEntity(ctx context.Context, req *pb.DeleteByIDRequest) (*pb.DeleteByIDResponse, error) {
	return s.deleted(s.db.DeleteEntity(ctx, req.GetAgentId(), req.GetId()))
}

func (s *databaseServer) DeleteRoom(ctx context.Context, req *pb.DeleteByIDRequest) (*pb.DeleteByIDResponse, error) {
	return s.deleted(s.db.DeleteRoom(ctx, req.GetAgentId(), req.GetId()))
}

func (s *databaseServer) DeleteWorld(ctx context.Context, req *pb.DeleteByIDRequest) (*pb.DeleteByIDResponse, error) {
	return s.deleted(s.db.DeleteWorld(ctx, req.GetAgentId(), req.GetId()))
}

func (s *databaseServer) DeleteComponent(ctx context.Context, req *pb.DeleteByIDRequest) (*pb.DeleteByIDResponse, error) {
	return s.deleted(s.db.DeleteComponent(ctx, req.GetAgentId(), req.GetId()))
}

func (s *databaseServer) DeleteTask(ctx context.Context, req *pb.DeleteByIDRequest) (*pb.DeleteByIDResponse, error) {
	return s.deleted(s.db.DeleteTask(ctx, req.GetAgentId(), req.GetId()))
}

func (s *databaseServer) DeleteLog(ctx context.Context, req *pb.DeleteByIDRequest) (*pb.DeleteByIDResponse, error) {
	return s.deleted(s.db.DeleteLog(ctx, req.GetAgentId(), req.GetId()))
}

func (s *databaseServer) RemoveParticipant(ctx context.Context, req *pb.RemoveParticipantRequest) (*pb.RemoveParticipantResponse, error) {
	ok, err := s.db.RemoveParticipant(ctx, req.GetAgentId(), req.GetRoomId(), req.GetEntityId())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.RemoveParticipantResponse{Removed: ok}, nil
}

func (s *databaseServer) CreateComponent(ctx context.Context, req *pb.ComponentRequest) (*pb.CreateComponentResponse, error) {
	if req.GetComponent() == nil {
		return nil, toStatus(fmt.Errorf("create component: %w: component is missing", ErrInvalid))
	}
	id, created, err := s.db.CreateComponent(ctx, req.GetAgentId(), componentFromProto(req.GetComponent()))
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.CreateComponentResponse{Id: id, Created: created}, nil
}

func (s *databaseServer) UpdateComponent(ctx context.Context, req *pb.ComponentRequest) (*pb.UpdateComponentResponse, error) {
	if req.GetComponent() == nil {
		return nil, toStatus(fmt.Errorf("update component: %w: component is missing", ErrInvalid))
	}
	if err := s.db.UpdateComponent(ctx, req.GetAgentId(), componentFromProto(req.GetComponent())); err != nil {
		return nil, s.status(err)
	}
	return &pb.UpdateComponentResponse{}, nil
}

func (s *databaseServer) GetComponents(ctx context.Context, req *pb.GetComponentsRequest) (*pb.GetComponentsResponse, error) {
	cs, err := s.db.GetComponents(ctx, req.GetAgentId(), ComponentQuery{EntityIDs: req.GetEntityIds(), Type: req.GetType(),
		WorldID: req.GetWorldId(), SourceEntityID: req.GetSourceEntityId()})
	if err != nil {
		return nil, s.status(err)
	}
	out := &pb.GetComponentsResponse{}
	for i := range cs {
		out.Components = append(out.Components, componentToProto(&cs[i]))
	}
	return out, nil
}

func (s *databaseServer) CreateRelationship(ctx context.Context, req *pb.RelationshipRequest) (*pb.CreateRelationshipResponse, error) {
	if req.GetRelationship() == nil {
		return nil, toStatus(fmt.Errorf("create relationship: %w: relationship is missing", ErrInvalid))
	}
	id, created, err := s.db.CreateRelationship(ctx, req.GetAgentId(), relationshipFromProto(req.GetRelationship()))
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.CreateRelationshipResponse{Id: id, Created: created}, nil
}

func (s *databaseServer) UpdateRelationship(ctx context.Context, req *pb.RelationshipRequest) (*pb.UpdateRelationshipResponse, error) {
	if req.GetRelationship() == nil {
		return nil, toStatus(fmt.Errorf("update relationship: %w: relationship is missing", ErrInvalid))
	}
	if err := s.db.UpdateRelationship(ctx, req.GetAgentId(), relationshipFromProto(req.GetRelationship())); err != nil {
		return nil, s.status(err)
	}
	return &pb.UpdateRelationshipResponse{}, nil
}

func (s *databaseServer) GetRelationships(ctx context.Context, req *pb.GetRelationshipsRequest) (*pb.GetRelationshipsResponse, error) {
	rs, err := s.db.GetRelationships(ctx, req.GetAgentId(), RelationshipQuery{EntityID: req.GetEntityId(),
		SourceEntityID: req.GetSourceEntityId(), TargetEntityID: req.GetTargetEntityId(), Tags: req.GetTags()})
	if err != nil {
		return nil, s.status(err)
	}
	out := &pb.GetRelationshipsResponse{}
	for i := range rs {
		out.Relationships = append(out.Relationships, relationshipToProto(&rs[i]))
	}
	return out, nil
}

func (s *databaseServer) CreateTask(ctx context.Context, req *pb.CreateTaskRequest) (*pb.CreateTaskResponse, error) {
	if req.GetTask() == nil {
		return nil, toStatus(fmt.Errorf("create task: %w: task is missing", ErrInvalid))
	}
	id, err := s.db.CreateTask(ctx, req.GetAgentId(), taskFromProto(req.GetTask()))
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.CreateTaskResponse{Id: id}, nil
}

func (s *databaseServer) GetTask(ctx context.Context, req *pb.DeleteByIDRequest) (*pb.TaskResponse, error) {
	t, err := s.db.GetTask(ctx, req.GetAgentId(), req.GetId())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.TaskResponse{Task: taskToProto(&t)}, nil
}

func (s *databaseServer) GetTasks(ctx context.Context, req *pb.GetTasksRequest) (*pb.GetTasksResponse, error) {
	ts, err := s.db.GetTasks(ctx, req.GetAgentId(), TaskQuery{RoomID: req.GetRoomId(), EntityID: req.GetEntityId(),
		WorldID: req.GetWorldId(), Name: req.GetName(), Tags: req.GetTags()})
	if err != nil {
		return nil, s.status(err)
	}
	out := &pb.GetTasksResponse{}
	for i := range ts {
		out.Tasks = append(out.Tasks, taskToProto(&ts[i]))
	}
	return out, nil
}

func (s *databaseServer) UpdateTask(ctx context.Context, req *pb.UpdateTaskRequest) (*pb.UpdateTaskResponse, error) {
	if err := s.db.UpdateTask(ctx, req.GetAgentId(), req.GetId(), taskUpdateFromProto(req)); err != nil {
		return nil, s.status(err)
	}
	return &pb.UpdateTaskResponse{}, nil
}

// Conversions of the storage types added with components, relationships
// and tasks. Metadata that must tell "absent" from "empty" is encoded with
// encodeJSONObject, which writes {} for an empty, non-nil map.

func encodeJSONObject(m map[string]any) []byte {
	if m == nil {
		return nil
	}
	if len(m) == 0 {
		return []byte("{}")
	}
	return encodeMap(m)
}

func decodeJSONObject(b []byte) map[string]any {
	if len(b) == 0 {
		return nil
	}
	if m := decodeMap(b); m != nil {
		return m
	}
	return map[string]any{}
}

func memoryUpdateToProto(agentID string, u *MemoryUpdate) *pb.UpdateMemoryRequest {
	req := &pb.UpdateMemoryRequest{AgentId: agentID, Id: u.ID, MetadataJson: encodeMap(u.Metadata),
		Embedding: u.Embedding, ClearEmbedding: u.ClearEmbedding}
	if u.Content != nil {
		req.Content = contentToProto(u.Content)
	}
	return req
}

func memoryUpdateFromProto(req *pb.UpdateMemoryRequest) MemoryUpdate {
	u := MemoryUpdate{ID: req.GetId(), Metadata: decodeMap(req.GetMetadataJson()), Embedding: req.GetEmbedding(),
		ClearEmbedding: req.GetClearEmbedding()}
	if req.GetContent() != nil {
		c := contentFromProto(req.GetContent())
		u.Content = &c
	}
	return u
}

func componentToProto(c *Component) *pb.Component {
	return &pb.Component{Id: c.ID, EntityId: c.EntityID, AgentId: c.AgentID, RoomId: c.RoomID, WorldId: c.WorldID,
		SourceEntityId: c.SourceEntityID, Type: validUTF8(c.Type), DataJson: encodeMap(c.Data), CreatedAt: c.CreatedAt}
}

func componentFromProto(c *pb.Component) Component {
	return Component{ID: c.GetId(), EntityID: c.GetEntityId(), AgentID: c.GetAgentId(), RoomID: c.GetRoomId(),
		WorldID: c.GetWorldId(), SourceEntityID: c.GetSourceEntityId(), Type: c.GetType(),
		Data: decodeMap(c.GetDataJson()), CreatedAt: c.GetCreatedAt()}
}

func relationshipToProto(r *Relationship) *pb.Relationship {
	return &pb.Relationship{Id: r.ID, SourceEntityId: r.SourceEntityID, TargetEntityId: r.TargetEntityID, AgentId: r.AgentID,
		Tags: validUTF8s(r.Tags), MetadataJson: encodeMap(r.Metadata), CreatedAt: r.CreatedAt}
}

func relationshipFromProto(r *pb.Relationship) Relationship {
	return Relationship{ID: r.GetId(), SourceEntityID: r.GetSourceEntityId(), TargetEntityID: r.GetTargetEntityId(),
		AgentID: r.GetAgentId(), Tags: r.GetTags(), Metadata: decodeMap(r.GetMetadataJson()), CreatedAt: r.GetCreatedAt()}
}

func taskToProto(t *Task) *pb.Task {
	return &pb.Task{Id: t.ID, Name: validUTF8(t.Name), Description: validUTF8(t.Description), RoomId: t.RoomID,
		WorldId: t.WorldID, EntityId: t.EntityID, AgentId: t.AgentID, Tags: validUTF8s(t.Tags),
		MetadataJson: encodeMap(t.Metadata), CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

func taskFromProto(t *pb.Task) Task {
	return Task{ID: t.GetId(), Name: t.GetName(), Description: t.GetDescription(), RoomID: t.GetRoomId(),
		WorldID: t.GetWorldId(), EntityID: t.GetEntityId(), AgentID: t.GetAgentId(), Tags: t.GetTags(),
		Metadata: decodeMap(t.GetMetadataJson()), CreatedAt: t.GetCreatedAt(), UpdatedAt: t.GetUpdatedAt()}
}

func taskUpdateToProto(agentID, id string, u *TaskUpdate) *pb.UpdateTaskRequest {
	return &pb.UpdateTaskRequest{AgentId: agentID, Id: id, Name: u.Name, Description: u.Description, RoomId: u.RoomID,
		WorldId: u.WorldID, EntityId: u.EntityID, ReplaceTags: u.Tags != nil, Tags: validUTF8s(u.Tags),
		MetadataJson: encodeJSONObject(u.Metadata)}
}

func taskUpdateFromProto(req *pb.UpdateTaskRequest) TaskUpdate {
	u := TaskUpdate{Name: req.Name, Description: req.Description, RoomID: req.RoomId, WorldID: req.WorldId,
		EntityID: req.EntityId, Metadata: decodeJSONObject(req.GetMetadataJson())}
	if req.GetReplaceTags() {
		u.Tags = req.GetTags()
		if u.Tags == nil {
			u.Tags = []string{}
		}
	}
	return u
}

// entitiesToProto encodes entities; with components, the components of all
// of them travel beside them, each naming its entity.
func entitiesToProto(es []Entity, withComponents bool) *pb.GetEntitiesResponse {
	out := &pb.GetEntitiesResponse{Entities: make([]*pb.Entity, len(es))}
	for i := range es {
		out.Entities[i] = entityToProto(&es[i])
		if withComponents {
			for j := range es[i].Components {
				c := componentToProto(&es[i].Components[j])
				c.EntityId = es[i].ID
				out.Components = append(out.Components, c)
			}
		}
	}
	return out
}

// entitiesFromProto decodes entities; with components, each entity gets
// its own (an empty, non-nil slice when it has none).
func entitiesFromProto(res *pb.GetEntitiesResponse, withComponents bool) []Entity {
	out := make([]Entity, len(res.GetEntities()))
	byID := make(map[string]int, len(out))
	for i, e := range res.GetEntities() {
		out[i] = entityFromProto(e)
		if withComponents {
			out[i].Components = []Component{}
			byID[out[i].ID] = i
		}
	}
	if withComponents {
		for _, c := range res.GetComponents() {
			if i, ok := byID[c.GetEntityId()]; ok {
				out[i].Components = append(out[i].Components, componentFromProto(c))
			}
		}
	}
	return out
}

func cachedEmbeddingsQueryToProto(agentID string, q *CachedEmbeddingsQuery) *pb.GetCachedEmbeddingsRequest {
	return &pb.GetCachedEmbeddingsRequest{AgentId: agentID, Table: validUTF8(q.Table), Text: validUTF8(q.Text), Field: validUTF8(q.Field),
		Threshold: clampInt32(q.Threshold), Count: clampInt32(q.Count)}
}

func cachedEmbeddingsQueryFromProto(req *pb.GetCachedEmbeddingsRequest) CachedEmbeddingsQuery {
	return CachedEmbeddingsQuery{Table: req.GetTable(), Text: req.GetText(), Field: req.GetField(),
		Threshold: int(req.GetThreshold()), Count: int(req.GetCount())}
}

// clampInt32 keeps a count within an int32 field: a larger one must not
// wrap around to a negative or small number on the wire.
func clampInt32(n int) int32 {
	const maxInt32, minInt32 = 1<<31 - 1, -1 << 31
	switch {
	case n > maxInt32:
		return maxInt32
	case n < minInt32:
		return minInt32
	}
	return int32(n)
}
