package dbplugin

import (
	"context"
	"fmt"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/agenthost/agenthost/sdk/storage"
)

// server is the Database service shim over an Adapter.
type server struct {
	pb.UnimplementedDatabaseServer
	db Adapter
}

// status turns an adapter's error into a gRPC status. An adapter that can
// tell a database that went away (ClassifyError) marks such errors with
// ErrUnavailable: they travel as codes.Unavailable.
func (s *server) status(err error) error {
	if c, ok := s.db.(interface{ ClassifyError(error) error }); ok {
		err = c.ClassifyError(err)
	}
	return contract.Status(err)
}

func reportToProto(r MigrationReport) *pb.MigrationReport {
	out := &pb.MigrationReport{Backend: r.Backend, Applied: int32(r.Applied), VectorSearch: r.VectorSearch}
	for _, m := range r.Migrations {
		out.Migrations = append(out.Migrations, &pb.MigrationInfo{Version: int32(m.Version), Name: m.Name, AppliedAt: m.AppliedAt})
	}
	return out
}

func (s *server) Migrate(ctx context.Context, _ *pb.MigrateRequest) (*pb.MigrateResponse, error) {
	r, err := s.db.Migrate(ctx)
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.MigrateResponse{Report: reportToProto(r)}, nil
}

func (s *server) MigrationStatus(ctx context.Context, _ *pb.MigrationStatusRequest) (*pb.MigrationStatusResponse, error) {
	r, err := s.db.MigrationStatus(ctx)
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.MigrationStatusResponse{Report: reportToProto(r)}, nil
}

func (s *server) EnsureAgent(ctx context.Context, req *pb.EnsureAgentRequest) (*pb.EnsureAgentResponse, error) {
	a, created, err := s.db.EnsureAgent(ctx, agentRecordFromProto(req.GetAgent()))
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.EnsureAgentResponse{Agent: agentRecordToProto(&a), Created: created}, nil
}

func (s *server) GetAgents(ctx context.Context, _ *pb.GetAgentsRequest) (*pb.GetAgentsResponse, error) {
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

func (s *server) EnsureEmbeddingDimension(ctx context.Context, req *pb.EnsureEmbeddingDimensionRequest) (*pb.EnsureEmbeddingDimensionResponse, error) {
	prev, err := s.db.EnsureEmbeddingDimension(ctx, req.GetAgentId(), int(req.GetDimension()))
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.EnsureEmbeddingDimensionResponse{Previous: int32(prev)}, nil
}

func (s *server) CreateMemory(ctx context.Context, req *pb.CreateMemoryRequest) (*pb.CreateMemoryResponse, error) {
	if req.GetMemory() == nil {
		return nil, contract.Status(fmt.Errorf("create memory: %w: memory is missing", sdk.ErrInvalid))
	}
	id, created, err := s.db.CreateMemory(ctx, req.GetAgentId(), conv.MemoryFromProto(req.GetMemory()), req.GetTable(), req.GetUnique())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.CreateMemoryResponse{Id: id, Created: created}, nil
}

func (s *server) GetMemories(ctx context.Context, req *pb.GetMemoriesRequest) (*pb.GetMemoriesResponse, error) {
	ms, err := s.db.GetMemories(ctx, req.GetAgentId(), sconv.MemoryQueryFromProto(req))
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.GetMemoriesResponse{Memories: conv.MemoriesToProto(ms)}, nil
}

func (s *server) GetMemoriesByIDs(ctx context.Context, req *pb.GetMemoriesByIDsRequest) (*pb.GetMemoriesByIDsResponse, error) {
	ms, err := s.db.GetMemoriesByIDs(ctx, req.GetAgentId(), req.GetIds(), req.GetTable())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.GetMemoriesByIDsResponse{Memories: conv.MemoriesToProto(ms)}, nil
}

func (s *server) SearchMemories(ctx context.Context, req *pb.SearchMemoriesRequest) (*pb.SearchMemoriesResponse, error) {
	ms, err := s.db.SearchMemories(ctx, req.GetAgentId(), sconv.SearchQueryFromProto(req))
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.SearchMemoriesResponse{Memories: conv.MemoriesToProto(ms)}, nil
}

func (s *server) DeleteMemory(ctx context.Context, req *pb.DeleteMemoryRequest) (*pb.DeleteMemoryResponse, error) {
	n, err := s.db.DeleteMemory(ctx, req.GetAgentId(), req.GetId())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.DeleteMemoryResponse{Deleted: n}, nil
}

func (s *server) DeleteAllMemories(ctx context.Context, req *pb.DeleteAllMemoriesRequest) (*pb.DeleteAllMemoriesResponse, error) {
	n, err := s.db.DeleteAllMemories(ctx, req.GetAgentId(), req.GetRoomId(), req.GetTable())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.DeleteAllMemoriesResponse{Deleted: n}, nil
}

func (s *server) CountMemories(ctx context.Context, req *pb.CountMemoriesRequest) (*pb.CountMemoriesResponse, error) {
	n, err := s.db.CountMemories(ctx, req.GetAgentId(), req.GetRoomId(), req.GetTable(), req.GetUnique())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.CountMemoriesResponse{Count: n}, nil
}

func (s *server) EnsureConnection(ctx context.Context, req *pb.EnsureConnectionRequest) (*pb.EnsureConnectionResponse, error) {
	c := storage.Connection{Entity: conv.EntityFromProto(req.GetEntity()), Room: conv.RoomFromProto(req.GetRoom()), World: conv.WorldFromProto(req.GetWorld())}
	if err := s.db.EnsureConnection(ctx, req.GetAgentId(), c); err != nil {
		return nil, s.status(err)
	}
	return &pb.EnsureConnectionResponse{}, nil
}

func (s *server) GetEntities(ctx context.Context, req *pb.GetEntitiesRequest) (*pb.GetEntitiesResponse, error) {
	es, err := s.db.GetEntities(ctx, req.GetAgentId(), req.GetIds())
	return s.entities(ctx, req.GetAgentId(), es, err, req.GetIncludeComponents())
}

// entities answers the calls that return entities, with their components
// when asked.
func (s *server) entities(ctx context.Context, agentID string, es []sdk.Entity, err error, withComponents bool) (*pb.GetEntitiesResponse, error) {
	if err == nil && withComponents && len(es) > 0 {
		err = s.db.AttachComponents(ctx, agentID, es)
	}
	if err != nil {
		return nil, s.status(err)
	}
	return sconv.EntitiesToProto(es, withComponents), nil
}

func (s *server) UpsertEntities(ctx context.Context, req *pb.UpsertEntitiesRequest) (*pb.UpsertEntitiesResponse, error) {
	es := make([]sdk.Entity, len(req.GetEntities()))
	for i, e := range req.GetEntities() {
		es[i] = conv.EntityFromProto(e)
	}
	if err := s.db.UpsertEntities(ctx, req.GetAgentId(), es); err != nil {
		return nil, s.status(err)
	}
	return &pb.UpsertEntitiesResponse{}, nil
}

func (s *server) GetRooms(ctx context.Context, req *pb.GetRoomsRequest) (*pb.GetRoomsResponse, error) {
	rs, err := s.db.GetRooms(ctx, req.GetAgentId(), storage.RoomQuery{IDs: req.GetIds(), ParticipantID: req.GetParticipantId(),
		ParticipantIDs: req.GetParticipantIds(), WorldID: req.GetWorldId()})
	if err != nil {
		return nil, s.status(err)
	}
	out := &pb.GetRoomsResponse{}
	for i := range rs {
		out.Rooms = append(out.Rooms, conv.RoomToProto(&rs[i]))
	}
	return out, nil
}

func (s *server) UpsertRoom(ctx context.Context, req *pb.UpsertRoomRequest) (*pb.UpsertRoomResponse, error) {
	if err := s.db.UpsertRoom(ctx, req.GetAgentId(), conv.RoomFromProto(req.GetRoom())); err != nil {
		return nil, s.status(err)
	}
	return &pb.UpsertRoomResponse{}, nil
}

func (s *server) GetWorlds(ctx context.Context, req *pb.GetWorldsRequest) (*pb.GetWorldsResponse, error) {
	ws, err := s.db.GetWorlds(ctx, req.GetAgentId(), req.GetIds())
	if err != nil {
		return nil, s.status(err)
	}
	out := &pb.GetWorldsResponse{}
	for i := range ws {
		out.Worlds = append(out.Worlds, conv.WorldToProto(&ws[i]))
	}
	return out, nil
}

func (s *server) UpsertWorld(ctx context.Context, req *pb.UpsertWorldRequest) (*pb.UpsertWorldResponse, error) {
	if err := s.db.UpsertWorld(ctx, req.GetAgentId(), conv.WorldFromProto(req.GetWorld())); err != nil {
		return nil, s.status(err)
	}
	return &pb.UpsertWorldResponse{}, nil
}

func (s *server) GetParticipants(ctx context.Context, req *pb.GetParticipantsRequest) (*pb.GetParticipantsResponse, error) {
	ids, err := s.db.GetParticipants(ctx, req.GetAgentId(), req.GetRoomId())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.GetParticipantsResponse{EntityIds: ids}, nil
}

func (s *server) GetParticipantState(ctx context.Context, req *pb.GetParticipantStateRequest) (*pb.GetParticipantStateResponse, error) {
	st, err := s.db.GetParticipantState(ctx, req.GetAgentId(), req.GetRoomId(), req.GetEntityId())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.GetParticipantStateResponse{State: st}, nil
}

func (s *server) SetParticipantState(ctx context.Context, req *pb.SetParticipantStateRequest) (*pb.SetParticipantStateResponse, error) {
	if err := s.db.SetParticipantState(ctx, req.GetAgentId(), req.GetRoomId(), req.GetEntityId(), req.GetState()); err != nil {
		return nil, s.status(err)
	}
	return &pb.SetParticipantStateResponse{}, nil
}

func (s *server) AddLog(ctx context.Context, req *pb.AddLogRequest) (*pb.AddLogResponse, error) {
	if req.GetLog() == nil {
		return nil, contract.Status(fmt.Errorf("add log: %w: log is missing", sdk.ErrInvalid))
	}
	id, err := s.db.AddLog(ctx, sconv.LogFromProto(req.GetLog()))
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.AddLogResponse{Id: id}, nil
}

func (s *server) AddLogs(ctx context.Context, req *pb.AddLogsRequest) (*pb.AddLogsResponse, error) {
	logs := make([]storage.LogEntry, len(req.GetLogs()))
	for i, l := range req.GetLogs() {
		logs[i] = sconv.LogFromProto(l)
	}
	ids, err := s.db.AddLogs(ctx, logs)
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.AddLogsResponse{Ids: ids}, nil
}

func (s *server) GetLogs(ctx context.Context, req *pb.GetLogsRequest) (*pb.GetLogsResponse, error) {
	ls, err := s.db.GetLogs(ctx, req.GetAgentId(), storage.LogQuery{RoomID: req.GetRoomId(), EntityID: req.GetEntityId(), Type: req.GetType(),
		Count: int(req.GetCount()), Offset: int(req.GetOffset())})
	if err != nil {
		return nil, s.status(err)
	}
	out := &pb.GetLogsResponse{}
	for i := range ls {
		out.Logs = append(out.Logs, sconv.LogToProto(&ls[i]))
	}
	return out, nil
}

func (s *server) GetCache(ctx context.Context, req *pb.GetCacheRequest) (*pb.GetCacheResponse, error) {
	v, ok, err := s.db.GetCache(ctx, req.GetAgentId(), req.GetKey())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.GetCacheResponse{Value: v, Found: ok}, nil
}

func (s *server) SetCache(ctx context.Context, req *pb.SetCacheRequest) (*pb.SetCacheResponse, error) {
	if err := s.db.SetCache(ctx, req.GetAgentId(), req.GetKey(), req.GetValue(), req.GetTtlMs()); err != nil {
		return nil, s.status(err)
	}
	return &pb.SetCacheResponse{}, nil
}

func (s *server) DeleteCache(ctx context.Context, req *pb.DeleteCacheRequest) (*pb.DeleteCacheResponse, error) {
	if err := s.db.DeleteCache(ctx, req.GetAgentId(), req.GetKey()); err != nil {
		return nil, s.status(err)
	}
	return &pb.DeleteCacheResponse{}, nil
}

func (s *server) GetAgent(ctx context.Context, req *pb.GetAgentRequest) (*pb.GetAgentResponse, error) {
	a, err := s.db.GetAgent(ctx, req.GetId())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.GetAgentResponse{Agent: agentRecordToProto(&a)}, nil
}

func (s *server) UpdateAgent(ctx context.Context, req *pb.UpdateAgentRequest) (*pb.UpdateAgentResponse, error) {
	a, err := s.db.UpdateAgent(ctx, req.GetId(), AgentUpdate{Name: req.Name, Enabled: req.Enabled, CharacterPatch: req.GetCharacterPatchJson()})
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.UpdateAgentResponse{Agent: agentRecordToProto(&a)}, nil
}

func (s *server) DeleteAgent(ctx context.Context, req *pb.DeleteAgentRequest) (*pb.DeleteAgentResponse, error) {
	ok, err := s.db.DeleteAgent(ctx, req.GetId())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.DeleteAgentResponse{Deleted: ok}, nil
}

func (s *server) SetEmbeddingDimension(ctx context.Context, req *pb.SetEmbeddingDimensionRequest) (*pb.SetEmbeddingDimensionResponse, error) {
	prev, stale, err := s.db.SetEmbeddingDimension(ctx, req.GetAgentId(), int(req.GetDimension()))
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.SetEmbeddingDimensionResponse{Previous: int32(prev), Stale: stale}, nil
}

func (s *server) UpdateMemory(ctx context.Context, req *pb.UpdateMemoryRequest) (*pb.UpdateMemoryResponse, error) {
	found, err := s.db.UpdateMemory(ctx, req.GetAgentId(), sconv.MemoryUpdateFromProto(req))
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.UpdateMemoryResponse{Found: found}, nil
}

func (s *server) DeleteManyMemories(ctx context.Context, req *pb.DeleteManyMemoriesRequest) (*pb.DeleteManyMemoriesResponse, error) {
	n, err := s.db.DeleteManyMemories(ctx, req.GetAgentId(), req.GetIds())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.DeleteManyMemoriesResponse{Deleted: n}, nil
}

func (s *server) GetMemoriesToReembed(ctx context.Context, req *pb.GetMemoriesToReembedRequest) (*pb.GetMemoriesToReembedResponse, error) {
	ms, err := s.db.GetMemoriesToReembed(ctx, req.GetAgentId(), req.GetBefore(), int(req.GetLimit()))
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.GetMemoriesToReembedResponse{Memories: conv.MemoriesToProto(ms)}, nil
}

func (s *server) GetEntitiesForRoom(ctx context.Context, req *pb.GetEntitiesForRoomRequest) (*pb.GetEntitiesForRoomResponse, error) {
	es, err := s.db.GetEntitiesForRoom(ctx, req.GetAgentId(), req.GetRoomId())
	res, err := s.entities(ctx, req.GetAgentId(), es, err, req.GetIncludeComponents())
	if err != nil {
		return nil, err
	}
	return &pb.GetEntitiesForRoomResponse{Entities: res.GetEntities(), Components: res.GetComponents()}, nil
}

func (s *server) SearchEntities(ctx context.Context, req *pb.SearchEntitiesRequest) (*pb.SearchEntitiesResponse, error) {
	es, err := s.db.SearchEntities(ctx, req.GetAgentId(), storage.EntitySearch{NameContains: req.GetNameContains(), Names: req.GetNames(),
		Count: int(req.GetCount()), WithComponents: req.GetIncludeComponents()})
	if err != nil {
		return nil, s.status(err)
	}
	res := sconv.EntitiesToProto(es, req.GetIncludeComponents())
	return &pb.SearchEntitiesResponse{Entities: res.GetEntities(), Components: res.GetComponents()}, nil
}

func (s *server) GetCachedEmbeddings(ctx context.Context, req *pb.GetCachedEmbeddingsRequest) (*pb.GetCachedEmbeddingsResponse, error) {
	cs, err := s.db.GetCachedEmbeddings(ctx, req.GetAgentId(), sconv.CachedEmbeddingsQueryFromProto(req))
	if err != nil {
		return nil, s.status(err)
	}
	out := &pb.GetCachedEmbeddingsResponse{Embeddings: make([]*pb.CachedEmbedding, len(cs))}
	for i, c := range cs {
		out.Embeddings[i] = &pb.CachedEmbedding{Embedding: c.Embedding, LevenshteinScore: int32(c.LevenshteinScore), MemoryId: c.MemoryID}
	}
	return out, nil
}

func (s *server) AddParticipants(ctx context.Context, req *pb.AddParticipantsRequest) (*pb.AddParticipantsResponse, error) {
	n, err := s.db.AddParticipants(ctx, req.GetAgentId(), req.GetRoomId(), req.GetEntityIds())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.AddParticipantsResponse{Added: n}, nil
}

func (s *server) UpsertRooms(ctx context.Context, req *pb.UpsertRoomsRequest) (*pb.UpsertRoomsResponse, error) {
	rooms := make([]sdk.Room, len(req.GetRooms()))
	for i, r := range req.GetRooms() {
		rooms[i] = conv.RoomFromProto(r)
	}
	if err := s.db.UpsertRooms(ctx, req.GetAgentId(), rooms); err != nil {
		return nil, s.status(err)
	}
	return &pb.UpsertRoomsResponse{}, nil
}

func (s *server) DeleteRoomsByWorld(ctx context.Context, req *pb.DeleteRoomsByWorldRequest) (*pb.DeleteRoomsByWorldResponse, error) {
	n, err := s.db.DeleteRoomsByWorld(ctx, req.GetAgentId(), req.GetWorldId())
	return deleted(s, err, &pb.DeleteRoomsByWorldResponse{Deleted: n})
}

// deleted answers the delete calls, which report how many records went.
func deleted[R any](s *server, err error, res R) (R, error) {
	if err != nil {
		var none R
		return none, s.status(err)
	}
	return res, nil
}

func (s *server) DeleteEntity(ctx context.Context, req *pb.DeleteEntityRequest) (*pb.DeleteEntityResponse, error) {
	n, err := s.db.DeleteEntity(ctx, req.GetAgentId(), req.GetId())
	return deleted(s, err, &pb.DeleteEntityResponse{Deleted: n})
}

func (s *server) DeleteRoom(ctx context.Context, req *pb.DeleteRoomRequest) (*pb.DeleteRoomResponse, error) {
	n, err := s.db.DeleteRoom(ctx, req.GetAgentId(), req.GetId())
	return deleted(s, err, &pb.DeleteRoomResponse{Deleted: n})
}

func (s *server) DeleteWorld(ctx context.Context, req *pb.DeleteWorldRequest) (*pb.DeleteWorldResponse, error) {
	n, err := s.db.DeleteWorld(ctx, req.GetAgentId(), req.GetId())
	return deleted(s, err, &pb.DeleteWorldResponse{Deleted: n})
}

func (s *server) DeleteComponent(ctx context.Context, req *pb.DeleteComponentRequest) (*pb.DeleteComponentResponse, error) {
	n, err := s.db.DeleteComponent(ctx, req.GetAgentId(), req.GetId())
	return deleted(s, err, &pb.DeleteComponentResponse{Deleted: n})
}

func (s *server) DeleteTask(ctx context.Context, req *pb.DeleteTaskRequest) (*pb.DeleteTaskResponse, error) {
	n, err := s.db.DeleteTask(ctx, req.GetAgentId(), req.GetId())
	return deleted(s, err, &pb.DeleteTaskResponse{Deleted: n})
}

func (s *server) DeleteLog(ctx context.Context, req *pb.DeleteLogRequest) (*pb.DeleteLogResponse, error) {
	n, err := s.db.DeleteLog(ctx, req.GetAgentId(), req.GetId())
	return deleted(s, err, &pb.DeleteLogResponse{Deleted: n})
}

func (s *server) RemoveParticipant(ctx context.Context, req *pb.RemoveParticipantRequest) (*pb.RemoveParticipantResponse, error) {
	ok, err := s.db.RemoveParticipant(ctx, req.GetAgentId(), req.GetRoomId(), req.GetEntityId())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.RemoveParticipantResponse{Removed: ok}, nil
}

func (s *server) CreateComponent(ctx context.Context, req *pb.CreateComponentRequest) (*pb.CreateComponentResponse, error) {
	if req.GetComponent() == nil {
		return nil, contract.Status(fmt.Errorf("create component: %w: component is missing", sdk.ErrInvalid))
	}
	id, created, err := s.db.CreateComponent(ctx, req.GetAgentId(), sconv.ComponentFromProto(req.GetComponent()))
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.CreateComponentResponse{Id: id, Created: created}, nil
}

func (s *server) UpdateComponent(ctx context.Context, req *pb.UpdateComponentRequest) (*pb.UpdateComponentResponse, error) {
	if req.GetComponent() == nil {
		return nil, contract.Status(fmt.Errorf("update component: %w: component is missing", sdk.ErrInvalid))
	}
	if err := s.db.UpdateComponent(ctx, req.GetAgentId(), sconv.ComponentFromProto(req.GetComponent())); err != nil {
		return nil, s.status(err)
	}
	return &pb.UpdateComponentResponse{}, nil
}

func (s *server) GetComponents(ctx context.Context, req *pb.GetComponentsRequest) (*pb.GetComponentsResponse, error) {
	cs, err := s.db.GetComponents(ctx, req.GetAgentId(), storage.ComponentQuery{EntityIDs: req.GetEntityIds(), Type: req.GetType(),
		WorldID: req.GetWorldId(), SourceEntityID: req.GetSourceEntityId()})
	if err != nil {
		return nil, s.status(err)
	}
	out := &pb.GetComponentsResponse{}
	for i := range cs {
		out.Components = append(out.Components, sconv.ComponentToProto(&cs[i]))
	}
	return out, nil
}

func (s *server) CreateRelationship(ctx context.Context, req *pb.CreateRelationshipRequest) (*pb.CreateRelationshipResponse, error) {
	if req.GetRelationship() == nil {
		return nil, contract.Status(fmt.Errorf("create relationship: %w: relationship is missing", sdk.ErrInvalid))
	}
	id, created, err := s.db.CreateRelationship(ctx, req.GetAgentId(), sconv.RelationshipFromProto(req.GetRelationship()))
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.CreateRelationshipResponse{Id: id, Created: created}, nil
}

func (s *server) UpdateRelationship(ctx context.Context, req *pb.UpdateRelationshipRequest) (*pb.UpdateRelationshipResponse, error) {
	if req.GetRelationship() == nil {
		return nil, contract.Status(fmt.Errorf("update relationship: %w: relationship is missing", sdk.ErrInvalid))
	}
	if err := s.db.UpdateRelationship(ctx, req.GetAgentId(), sconv.RelationshipFromProto(req.GetRelationship())); err != nil {
		return nil, s.status(err)
	}
	return &pb.UpdateRelationshipResponse{}, nil
}

func (s *server) GetRelationships(ctx context.Context, req *pb.GetRelationshipsRequest) (*pb.GetRelationshipsResponse, error) {
	rs, err := s.db.GetRelationships(ctx, req.GetAgentId(), storage.RelationshipQuery{EntityID: req.GetEntityId(),
		SourceEntityID: req.GetSourceEntityId(), TargetEntityID: req.GetTargetEntityId(), Tags: req.GetTags()})
	if err != nil {
		return nil, s.status(err)
	}
	out := &pb.GetRelationshipsResponse{}
	for i := range rs {
		out.Relationships = append(out.Relationships, sconv.RelationshipToProto(&rs[i]))
	}
	return out, nil
}

func (s *server) CreateTask(ctx context.Context, req *pb.CreateTaskRequest) (*pb.CreateTaskResponse, error) {
	if req.GetTask() == nil {
		return nil, contract.Status(fmt.Errorf("create task: %w: task is missing", sdk.ErrInvalid))
	}
	id, err := s.db.CreateTask(ctx, req.GetAgentId(), sconv.TaskFromProto(req.GetTask()))
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.CreateTaskResponse{Id: id}, nil
}

func (s *server) GetTask(ctx context.Context, req *pb.GetTaskRequest) (*pb.GetTaskResponse, error) {
	t, err := s.db.GetTask(ctx, req.GetAgentId(), req.GetId())
	if err != nil {
		return nil, s.status(err)
	}
	return &pb.GetTaskResponse{Task: sconv.TaskToProto(&t)}, nil
}

func (s *server) GetTasks(ctx context.Context, req *pb.GetTasksRequest) (*pb.GetTasksResponse, error) {
	ts, err := s.db.GetTasks(ctx, req.GetAgentId(), storage.TaskQuery{RoomID: req.GetRoomId(), EntityID: req.GetEntityId(),
		WorldID: req.GetWorldId(), Name: req.GetName(), Tags: req.GetTags()})
	if err != nil {
		return nil, s.status(err)
	}
	out := &pb.GetTasksResponse{}
	for i := range ts {
		out.Tasks = append(out.Tasks, sconv.TaskToProto(&ts[i]))
	}
	return out, nil
}

func (s *server) UpdateTask(ctx context.Context, req *pb.UpdateTaskRequest) (*pb.UpdateTaskResponse, error) {
	if err := s.db.UpdateTask(ctx, req.GetAgentId(), req.GetId(), sconv.TaskUpdateFromProto(req)); err != nil {
		return nil, s.status(err)
	}
	return &pb.UpdateTaskResponse{}, nil
}
