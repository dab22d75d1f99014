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

func reportToProto(r MigrationReport) *pb.MigrateResponse {
	out := &pb.MigrateResponse{Backend: r.Backend, Applied: int32(r.Applied)}
	for _, m := range r.Migrations {
		out.Migrations = append(out.Migrations, &pb.MigrationInfo{Version: int32(m.Version), Name: m.Name, AppliedAt: m.AppliedAt})
	}
	return out
}

func (s *databaseServer) Migrate(ctx context.Context, _ *pb.MigrateRequest) (*pb.MigrateResponse, error) {
	r, err := s.db.Migrate(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return reportToProto(r), nil
}

func (s *databaseServer) MigrationStatus(ctx context.Context, _ *pb.MigrationStatusRequest) (*pb.MigrateResponse, error) {
	r, err := s.db.MigrationStatus(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return reportToProto(r), nil
}

func (s *databaseServer) EnsureAgent(ctx context.Context, req *pb.EnsureAgentRequest) (*pb.EnsureAgentResponse, error) {
	a, created, err := s.db.EnsureAgent(ctx, agentRecordFromProto(req.GetAgent()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.EnsureAgentResponse{Agent: agentRecordToProto(&a), Created: created}, nil
}

func (s *databaseServer) GetAgents(ctx context.Context, _ *pb.GetAgentsRequest) (*pb.GetAgentsResponse, error) {
	as, err := s.db.GetAgents(ctx)
	if err != nil {
		return nil, toStatus(err)
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
		return nil, toStatus(err)
	}
	return &pb.EnsureEmbeddingDimensionResponse{Previous: int32(prev)}, nil
}

func (s *databaseServer) CreateMemory(ctx context.Context, req *pb.CreateMemoryRequest) (*pb.CreateMemoryResponse, error) {
	if req.GetMemory() == nil {
		return nil, toStatus(fmt.Errorf("create memory: %w: memory is missing", ErrInvalid))
	}
	id, created, err := s.db.CreateMemory(ctx, req.GetAgentId(), memoryFromProto(req.GetMemory()), req.GetTable(), req.GetUnique())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.CreateMemoryResponse{Id: id, Created: created}, nil
}

func (s *databaseServer) GetMemories(ctx context.Context, req *pb.GetMemoriesRequest) (*pb.MemoriesResponse, error) {
	ms, err := s.db.GetMemories(ctx, req.GetAgentId(), memoryQueryFromProto(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.MemoriesResponse{Memories: memoriesToProto(ms)}, nil
}

func (s *databaseServer) GetMemoriesByIDs(ctx context.Context, req *pb.GetMemoriesByIDsRequest) (*pb.MemoriesResponse, error) {
	ms, err := s.db.GetMemoriesByIDs(ctx, req.GetAgentId(), req.GetIds(), req.GetTable())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.MemoriesResponse{Memories: memoriesToProto(ms)}, nil
}

func (s *databaseServer) SearchMemories(ctx context.Context, req *pb.SearchMemoriesRequest) (*pb.MemoriesResponse, error) {
	ms, err := s.db.SearchMemories(ctx, req.GetAgentId(), searchQueryFromProto(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.MemoriesResponse{Memories: memoriesToProto(ms)}, nil
}

func (s *databaseServer) DeleteMemory(ctx context.Context, req *pb.DeleteMemoryRequest) (*pb.DeleteMemoryResponse, error) {
	n, err := s.db.DeleteMemory(ctx, req.GetAgentId(), req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.DeleteMemoryResponse{Deleted: n}, nil
}

func (s *databaseServer) DeleteAllMemories(ctx context.Context, req *pb.DeleteAllMemoriesRequest) (*pb.DeleteMemoryResponse, error) {
	n, err := s.db.DeleteAllMemories(ctx, req.GetAgentId(), req.GetRoomId(), req.GetTable())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.DeleteMemoryResponse{Deleted: n}, nil
}

func (s *databaseServer) CountMemories(ctx context.Context, req *pb.CountMemoriesRequest) (*pb.CountMemoriesResponse, error) {
	n, err := s.db.CountMemories(ctx, req.GetAgentId(), req.GetRoomId(), req.GetTable(), req.GetUnique())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.CountMemoriesResponse{Count: n}, nil
}

func (s *databaseServer) EnsureConnection(ctx context.Context, req *pb.EnsureConnectionRequest) (*pb.EnsureConnectionResponse, error) {
	c := Connection{Entity: entityFromProto(req.GetEntity()), Room: roomFromProto(req.GetRoom()), World: worldFromProto(req.GetWorld())}
	if err := s.db.EnsureConnection(ctx, req.GetAgentId(), c); err != nil {
		return nil, toStatus(err)
	}
	return &pb.EnsureConnectionResponse{}, nil
}

func (s *databaseServer) GetEntities(ctx context.Context, req *pb.GetEntitiesRequest) (*pb.GetEntitiesResponse, error) {
	es, err := s.db.GetEntities(ctx, req.GetAgentId(), req.GetIds())
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.GetEntitiesResponse{}
	for i := range es {
		out.Entities = append(out.Entities, entityToProto(&es[i]))
	}
	return out, nil
}

func (s *databaseServer) UpsertEntities(ctx context.Context, req *pb.UpsertEntitiesRequest) (*pb.UpsertEntitiesResponse, error) {
	es := make([]Entity, len(req.GetEntities()))
	for i, e := range req.GetEntities() {
		es[i] = entityFromProto(e)
	}
	if err := s.db.UpsertEntities(ctx, req.GetAgentId(), es); err != nil {
		return nil, toStatus(err)
	}
	return &pb.UpsertEntitiesResponse{}, nil
}

func (s *databaseServer) GetRooms(ctx context.Context, req *pb.GetRoomsRequest) (*pb.GetRoomsResponse, error) {
	rs, err := s.db.GetRooms(ctx, req.GetAgentId(), RoomQuery{IDs: req.GetIds(), ParticipantID: req.GetParticipantId(), WorldID: req.GetWorldId()})
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.GetRoomsResponse{}
	for i := range rs {
		out.Rooms = append(out.Rooms, roomToProto(&rs[i]))
	}
	return out, nil
}

func (s *databaseServer) UpsertRoom(ctx context.Context, req *pb.UpsertRoomRequest) (*pb.UpsertRoomResponse, error) {
	if err := s.db.UpsertRoom(ctx, req.GetAgentId(), roomFromProto(req.GetRoom())); err != nil {
		return nil, toStatus(err)
	}
	return &pb.UpsertRoomResponse{}, nil
}

func (s *databaseServer) GetWorlds(ctx context.Context, req *pb.GetWorldsRequest) (*pb.GetWorldsResponse, error) {
	ws, err := s.db.GetWorlds(ctx, req.GetAgentId(), req.GetIds())
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.GetWorldsResponse{}
	for i := range ws {
		out.Worlds = append(out.Worlds, worldToProto(&ws[i]))
	}
	return out, nil
}

func (s *databaseServer) UpsertWorld(ctx context.Context, req *pb.UpsertWorldRequest) (*pb.UpsertWorldResponse, error) {
	if err := s.db.UpsertWorld(ctx, req.GetAgentId(), worldFromProto(req.GetWorld())); err != nil {
		return nil, toStatus(err)
	}
	return &pb.UpsertWorldResponse{}, nil
}

func (s *databaseServer) GetParticipants(ctx context.Context, req *pb.GetParticipantsRequest) (*pb.GetParticipantsResponse, error) {
	ids, err := s.db.GetParticipants(ctx, req.GetAgentId(), req.GetRoomId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.GetParticipantsResponse{EntityIds: ids}, nil
}

func (s *databaseServer) GetParticipantState(ctx context.Context, req *pb.ParticipantStateRequest) (*pb.ParticipantStateResponse, error) {
	st, err := s.db.GetParticipantState(ctx, req.GetAgentId(), req.GetRoomId(), req.GetEntityId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.ParticipantStateResponse{State: st}, nil
}

func (s *databaseServer) SetParticipantState(ctx context.Context, req *pb.ParticipantStateRequest) (*pb.ParticipantStateResponse, error) {
	if err := s.db.SetParticipantState(ctx, req.GetAgentId(), req.GetRoomId(), req.GetEntityId(), req.GetState()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.ParticipantStateResponse{State: req.GetState()}, nil
}

func (s *databaseServer) AddLog(ctx context.Context, req *pb.AddLogRequest) (*pb.AddLogResponse, error) {
	if req.GetLog() == nil {
		return nil, toStatus(fmt.Errorf("add log: %w: log is missing", ErrInvalid))
	}
	id, err := s.db.AddLog(ctx, logFromProto(req.GetLog()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.AddLogResponse{Id: id}, nil
}

func (s *databaseServer) GetLogs(ctx context.Context, req *pb.GetLogsRequest) (*pb.GetLogsResponse, error) {
	ls, err := s.db.GetLogs(ctx, req.GetAgentId(), LogQuery{RoomID: req.GetRoomId(), Type: req.GetType(), Count: int(req.GetCount())})
	if err != nil {
		return nil, toStatus(err)
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
		return nil, toStatus(err)
	}
	return &pb.GetCacheResponse{Value: v, Found: ok}, nil
}

func (s *databaseServer) SetCache(ctx context.Context, req *pb.SetCacheRequest) (*pb.SetCacheResponse, error) {
	if err := s.db.SetCache(ctx, req.GetAgentId(), req.GetKey(), req.GetValue(), req.GetTtlMs()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.SetCacheResponse{}, nil
}

func (s *databaseServer) DeleteCache(ctx context.Context, req *pb.GetCacheRequest) (*pb.SetCacheResponse, error) {
	if err := s.db.DeleteCache(ctx, req.GetAgentId(), req.GetKey()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.SetCacheResponse{}, nil
}
