package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// runtimeServer is the Runtime service as one plugin sees it. A call may
// name only an agent that uses this plugin: a plugin cannot act for agents
// it was not given.
type runtimeServer struct {
	pb.UnimplementedRuntimeServer
	d      *Daemon
	plugin *Plugin
}

func (s *runtimeServer) agent(id string) (*Agent, error) {
	a := s.d.agentByID(id)
	if a == nil || a.reg == nil {
		return nil, status.Errorf(codes.NotFound, "no agent %q is running", id)
	}
	if !a.reg.has(s.plugin) {
		return nil, status.Errorf(codes.PermissionDenied, "plugin %s is not one of agent %s's plugins", s.plugin.Name(), a.Name)
	}
	if a.idle() {
		return nil, status.Errorf(codes.FailedPrecondition, "agent %s is stopped", a.Name)
	}
	return a, nil
}

// grpcErr keeps the kind of an error when it crosses back to a plugin.
func grpcErr(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, sdk.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, sdk.ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrPluginCrashed):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Unknown, err.Error())
}

func recoverUnary(log hclog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("runtime call panicked", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = status.Errorf(codes.Internal, "host error in %s: %v", info.FullMethod, r)
			}
		}()
		return h(ctx, req)
	}
}

func (s *runtimeServer) UseModel(ctx context.Context, req *pb.ModelRequest) (*pb.ModelResponse, error) {
	a, err := s.agent(req.GetAgentId())
	if err != nil {
		return nil, err
	}
	res, err := a.useModel(ctx, req)
	return res, grpcErr(err)
}

func (s *runtimeServer) StreamModel(req *pb.ModelRequest, stream pb.Runtime_StreamModelServer) error {
	a, err := s.agent(req.GetAgentId())
	if err != nil {
		return err
	}
	return grpcErr(a.streamModel(stream.Context(), req, stream.Send))
}

func (s *runtimeServer) ComposeState(ctx context.Context, req *pb.ComposeStateRequest) (*pb.State, error) {
	a, err := s.agent(req.GetAgentId())
	if err != nil {
		return nil, err
	}
	st, err := a.composeState(ctx, req)
	return st, grpcErr(err)
}

func (s *runtimeServer) ProcessActions(ctx context.Context, req *pb.ProcessActionsRequest) (*pb.ProcessActionsResponse, error) {
	a, err := s.agent(req.GetAgentId())
	if err != nil {
		return nil, err
	}
	res, err := a.processActions(ctx, req)
	return res, grpcErr(err)
}

func (s *runtimeServer) Evaluate(ctx context.Context, req *pb.EvaluateRequest) (*pb.EvaluateResponse, error) {
	a, err := s.agent(req.GetAgentId())
	if err != nil {
		return nil, err
	}
	res, err := a.evaluate(ctx, req)
	return res, grpcErr(err)
}

func (s *runtimeServer) EmitEvent(ctx context.Context, req *pb.EmitEventRequest) (*pb.EmitEventResponse, error) {
	a, err := s.agent(req.GetAgentId())
	if err != nil {
		return nil, err
	}
	// The timeline keeps what plugins announce (RUN_STARTED, RUN_ENDED with
	// why a run stopped, ...) next to the runs, model calls and actions.
	body := map[string]any{}
	_ = json.Unmarshal(req.GetPayloadJson(), &body)
	body["event"], body["runId"], body["source"], body["plugin"] = req.GetType(), req.GetRunId(), req.GetSource(), s.plugin.Name()
	a.d.logs.add(a, &pb.LogEntry{AgentId: a.ID, RoomId: req.GetMessage().GetRoomId(), EntityId: req.GetMessage().GetEntityId(),
		Type: "event", BodyJson: mustJSON(body), CreatedAt: time.Now().UnixMilli()})
	err = a.emit(ctx, &pb.HandleEventRequest{Type: req.GetType(), RunId: req.GetRunId(), Source: req.GetSource(),
		Message: req.GetMessage(), PayloadJson: req.GetPayloadJson()})
	if err != nil {
		return nil, grpcErr(err)
	}
	return &pb.EmitEventResponse{}, nil
}

func (s *runtimeServer) ReceiveMessage(ctx context.Context, req *pb.ReceiveMessageRequest) (*pb.ReceiveMessageResponse, error) {
	a, err := s.agent(req.GetAgentId())
	if err != nil {
		return nil, err
	}
	if req.GetSource() == "" {
		return nil, status.Error(codes.InvalidArgument, "receive message: source is empty")
	}
	in := a.mapIncoming(req)
	if !req.GetWait() {
		// The connector only hands the message over; replies reach it
		// through SendMessage. It is kept in the inbox first, so that
		// "accepted" survives the host's own death.
		held, durable, err := a.hold(ctx, req, in.messageID)
		if err != nil {
			return nil, grpcErr(err)
		}
		res := &pb.ReceiveMessageResponse{MemoryId: in.messageID, RoomId: in.roomID, WorldId: in.worldID, EntityId: in.entityID}
		if !held {
			res.Duplicate = true
			return res, nil
		}
		go a.handleHeld(in, durable)
		return res, nil
	}
	res, _, err := a.receive(ctx, in)
	return res, grpcErr(err)
}

func (s *runtimeServer) Respond(ctx context.Context, req *pb.RespondRequest) (*pb.RespondResponse, error) {
	a, err := s.agent(req.GetAgentId())
	if err != nil {
		return nil, err
	}
	res, err := a.respond(ctx, req)
	return res, grpcErr(err)
}

func (s *runtimeServer) SendMessage(ctx context.Context, req *pb.SendMessageRequest) (*pb.SendMessageResponse, error) {
	a, err := s.agent(req.GetAgentId())
	if err != nil {
		return nil, err
	}
	res, err := a.sendMessage(ctx, req)
	return res, grpcErr(err)
}

func (s *runtimeServer) GetSettings(ctx context.Context, req *pb.GetSettingsRequest) (*pb.GetSettingsResponse, error) {
	a, err := s.agent(req.GetAgentId())
	if err != nil {
		return nil, err
	}
	return &pb.GetSettingsResponse{Settings: a.settings}, nil
}

func (s *runtimeServer) DescribeAgent(ctx context.Context, req *pb.DescribeAgentRequest) (*pb.DescribeAgentResponse, error) {
	a, err := s.agent(req.GetAgentId())
	if err != nil {
		return nil, err
	}
	out := &pb.DescribeAgentResponse{AgentId: a.ID, Name: a.Name}
	for _, p := range a.reg.plugins {
		if m := p.Manifest(); m != nil {
			out.Plugins = append(out.Plugins, m)
		}
	}
	return out, nil
}

func (s *runtimeServer) ValidateActions(ctx context.Context, req *pb.ValidateActionsRequest) (*pb.ValidateActionsResponse, error) {
	a, err := s.agent(req.GetAgentId())
	if err != nil {
		return nil, err
	}
	return a.validateActions(ctx, req), nil
}

// The storage calls below check the agent and forward to the database
// plugin unchanged: the messages are the same on both services.

func (s *runtimeServer) dbCall(ctx context.Context, agentID, method string, call func(context.Context, pb.DatabaseClient) error) error {
	a, err := s.agent(agentID)
	if err != nil {
		return err
	}
	p, c, err := a.db(ctx)
	if err != nil {
		return grpcErr(err)
	}
	ctx, cancel := ensureDeadline(ctx, sdk.DefaultCallTimeout)
	defer cancel()
	if err := call(ctx, c.db); err != nil {
		if st, ok := status.FromError(err); ok && (st.Code() == codes.InvalidArgument || st.Code() == codes.NotFound) {
			return err
		}
		return grpcErr(p.callErr(c, method, err))
	}
	return nil
}

func (s *runtimeServer) CreateMemory(ctx context.Context, req *pb.CreateMemoryRequest) (res *pb.CreateMemoryResponse, err error) {
	if req.GetMemory() != nil {
		req.Memory.AgentId = req.GetAgentId()
	}
	err = s.dbCall(ctx, req.GetAgentId(), "CreateMemory", func(ctx context.Context, db pb.DatabaseClient) (e error) {
		res, e = db.CreateMemory(ctx, req)
		return e
	})
	return res, err
}

func (s *runtimeServer) GetMemories(ctx context.Context, req *pb.GetMemoriesRequest) (res *pb.MemoriesResponse, err error) {
	err = s.dbCall(ctx, req.GetAgentId(), "GetMemories", func(ctx context.Context, db pb.DatabaseClient) (e error) {
		res, e = db.GetMemories(ctx, req)
		return e
	})
	return res, err
}

func (s *runtimeServer) GetMemoriesByIDs(ctx context.Context, req *pb.GetMemoriesByIDsRequest) (res *pb.MemoriesResponse, err error) {
	err = s.dbCall(ctx, req.GetAgentId(), "GetMemoriesByIDs", func(ctx context.Context, db pb.DatabaseClient) (e error) {
		res, e = db.GetMemoriesByIDs(ctx, req)
		return e
	})
	return res, err
}

func (s *runtimeServer) SearchMemories(ctx context.Context, req *pb.SearchMemoriesRequest) (res *pb.MemoriesResponse, err error) {
	err = s.dbCall(ctx, req.GetAgentId(), "SearchMemories", func(ctx context.Context, db pb.DatabaseClient) (e error) {
		res, e = db.SearchMemories(ctx, req)
		return e
	})
	return res, err
}

func (s *runtimeServer) DeleteMemory(ctx context.Context, req *pb.DeleteMemoryRequest) (res *pb.DeleteMemoryResponse, err error) {
	err = s.dbCall(ctx, req.GetAgentId(), "DeleteMemory", func(ctx context.Context, db pb.DatabaseClient) (e error) {
		res, e = db.DeleteMemory(ctx, req)
		return e
	})
	return res, err
}

func (s *runtimeServer) CountMemories(ctx context.Context, req *pb.CountMemoriesRequest) (res *pb.CountMemoriesResponse, err error) {
	err = s.dbCall(ctx, req.GetAgentId(), "CountMemories", func(ctx context.Context, db pb.DatabaseClient) (e error) {
		res, e = db.CountMemories(ctx, req)
		return e
	})
	return res, err
}

func (s *runtimeServer) EnsureConnection(ctx context.Context, req *pb.EnsureConnectionRequest) (res *pb.EnsureConnectionResponse, err error) {
	err = s.dbCall(ctx, req.GetAgentId(), "EnsureConnection", func(ctx context.Context, db pb.DatabaseClient) (e error) {
		res, e = db.EnsureConnection(ctx, req)
		return e
	})
	return res, err
}

func (s *runtimeServer) GetEntities(ctx context.Context, req *pb.GetEntitiesRequest) (res *pb.GetEntitiesResponse, err error) {
	err = s.dbCall(ctx, req.GetAgentId(), "GetEntities", func(ctx context.Context, db pb.DatabaseClient) (e error) {
		res, e = db.GetEntities(ctx, req)
		return e
	})
	return res, err
}

func (s *runtimeServer) UpsertEntities(ctx context.Context, req *pb.UpsertEntitiesRequest) (res *pb.UpsertEntitiesResponse, err error) {
	err = s.dbCall(ctx, req.GetAgentId(), "UpsertEntities", func(ctx context.Context, db pb.DatabaseClient) (e error) {
		res, e = db.UpsertEntities(ctx, req)
		return e
	})
	return res, err
}

func (s *runtimeServer) GetRooms(ctx context.Context, req *pb.GetRoomsRequest) (res *pb.GetRoomsResponse, err error) {
	err = s.dbCall(ctx, req.GetAgentId(), "GetRooms", func(ctx context.Context, db pb.DatabaseClient) (e error) {
		res, e = db.GetRooms(ctx, req)
		return e
	})
	return res, err
}

func (s *runtimeServer) GetWorlds(ctx context.Context, req *pb.GetWorldsRequest) (res *pb.GetWorldsResponse, err error) {
	err = s.dbCall(ctx, req.GetAgentId(), "GetWorlds", func(ctx context.Context, db pb.DatabaseClient) (e error) {
		res, e = db.GetWorlds(ctx, req)
		return e
	})
	return res, err
}

func (s *runtimeServer) UpsertWorld(ctx context.Context, req *pb.UpsertWorldRequest) (res *pb.UpsertWorldResponse, err error) {
	err = s.dbCall(ctx, req.GetAgentId(), "UpsertWorld", func(ctx context.Context, db pb.DatabaseClient) (e error) {
		res, e = db.UpsertWorld(ctx, req)
		return e
	})
	return res, err
}

func (s *runtimeServer) GetParticipants(ctx context.Context, req *pb.GetParticipantsRequest) (res *pb.GetParticipantsResponse, err error) {
	err = s.dbCall(ctx, req.GetAgentId(), "GetParticipants", func(ctx context.Context, db pb.DatabaseClient) (e error) {
		res, e = db.GetParticipants(ctx, req)
		return e
	})
	return res, err
}

func (s *runtimeServer) GetParticipantState(ctx context.Context, req *pb.ParticipantStateRequest) (res *pb.ParticipantStateResponse, err error) {
	err = s.dbCall(ctx, req.GetAgentId(), "GetParticipantState", func(ctx context.Context, db pb.DatabaseClient) (e error) {
		res, e = db.GetParticipantState(ctx, req)
		return e
	})
	return res, err
}

func (s *runtimeServer) SetParticipantState(ctx context.Context, req *pb.ParticipantStateRequest) (res *pb.ParticipantStateResponse, err error) {
	err = s.dbCall(ctx, req.GetAgentId(), "SetParticipantState", func(ctx context.Context, db pb.DatabaseClient) (e error) {
		res, e = db.SetParticipantState(ctx, req)
		return e
	})
	return res, err
}

func (s *runtimeServer) AddLog(ctx context.Context, req *pb.AddLogRequest) (res *pb.AddLogResponse, err error) {
	if req.GetLog() == nil {
		return nil, status.Error(codes.InvalidArgument, "add log: log is missing")
	}
	err = s.dbCall(ctx, req.GetLog().GetAgentId(), "AddLog", func(ctx context.Context, db pb.DatabaseClient) (e error) {
		res, e = db.AddLog(ctx, req)
		return e
	})
	return res, err
}

func (s *runtimeServer) GetCache(ctx context.Context, req *pb.GetCacheRequest) (res *pb.GetCacheResponse, err error) {
	err = s.dbCall(ctx, req.GetAgentId(), "GetCache", func(ctx context.Context, db pb.DatabaseClient) (e error) {
		res, e = db.GetCache(ctx, req)
		return e
	})
	return res, err
}

func (s *runtimeServer) SetCache(ctx context.Context, req *pb.SetCacheRequest) (res *pb.SetCacheResponse, err error) {
	err = s.dbCall(ctx, req.GetAgentId(), "SetCache", func(ctx context.Context, db pb.DatabaseClient) (e error) {
		res, e = db.SetCache(ctx, req)
		return e
	})
	return res, err
}

func (s *runtimeServer) DeleteCache(ctx context.Context, req *pb.GetCacheRequest) (res *pb.SetCacheResponse, err error) {
	err = s.dbCall(ctx, req.GetAgentId(), "DeleteCache", func(ctx context.Context, db pb.DatabaseClient) (e error) {
		res, e = db.DeleteCache(ctx, req)
		return e
	})
	return res, err
}

// forward checks the agent and hands req to the database plugin's method
// of the same name (the storage calls added with components, relationships
// and tasks).
func forward[Req any, Res any](s *runtimeServer, ctx context.Context, agentID, method string, req Req,
	call func(pb.DatabaseClient) func(context.Context, Req, ...grpc.CallOption) (Res, error)) (res Res, err error) {
	err = s.dbCall(ctx, agentID, method, func(ctx context.Context, db pb.DatabaseClient) (e error) {
		res, e = call(db)(ctx, req)
		return e
	})
	return res, err
}

func (s *runtimeServer) UpdateMemory(ctx context.Context, req *pb.UpdateMemoryRequest) (*pb.UpdateMemoryResponse, error) {
	return forward(s, ctx, req.GetAgentId(), "UpdateMemory", req, func(db pb.DatabaseClient) func(context.Context, *pb.UpdateMemoryRequest, ...grpc.CallOption) (*pb.UpdateMemoryResponse, error) {
		return db.UpdateMemory
	})
}

func (s *runtimeServer) DeleteManyMemories(ctx context.Context, req *pb.DeleteManyMemoriesRequest) (*pb.DeleteMemoryResponse, error) {
	return forward(s, ctx, req.GetAgentId(), "DeleteManyMemories", req, func(db pb.DatabaseClient) func(context.Context, *pb.DeleteManyMemoriesRequest, ...grpc.CallOption) (*pb.DeleteMemoryResponse, error) {
		return db.DeleteManyMemories
	})
}

func (s *runtimeServer) DeleteAllMemories(ctx context.Context, req *pb.DeleteAllMemoriesRequest) (*pb.DeleteMemoryResponse, error) {
	return forward(s, ctx, req.GetAgentId(), "DeleteAllMemories", req, func(db pb.DatabaseClient) func(context.Context, *pb.DeleteAllMemoriesRequest, ...grpc.CallOption) (*pb.DeleteMemoryResponse, error) {
		return db.DeleteAllMemories
	})
}

func (s *runtimeServer) GetEntitiesForRoom(ctx context.Context, req *pb.GetEntitiesForRoomRequest) (*pb.GetEntitiesResponse, error) {
	return forward(s, ctx, req.GetAgentId(), "GetEntitiesForRoom", req, func(db pb.DatabaseClient) func(context.Context, *pb.GetEntitiesForRoomRequest, ...grpc.CallOption) (*pb.GetEntitiesResponse, error) {
		return db.GetEntitiesForRoom
	})
}

func (s *runtimeServer) UpsertRoom(ctx context.Context, req *pb.UpsertRoomRequest) (*pb.UpsertRoomResponse, error) {
	return forward(s, ctx, req.GetAgentId(), "UpsertRoom", req, func(db pb.DatabaseClient) func(context.Context, *pb.UpsertRoomRequest, ...grpc.CallOption) (*pb.UpsertRoomResponse, error) {
		return db.UpsertRoom
	})
}

func (s *runtimeServer) RemoveParticipant(ctx context.Context, req *pb.RemoveParticipantRequest) (*pb.RemoveParticipantResponse, error) {
	defer s.forgetConnections(req.GetAgentId())
	return forward(s, ctx, req.GetAgentId(), "RemoveParticipant", req, func(db pb.DatabaseClient) func(context.Context, *pb.RemoveParticipantRequest, ...grpc.CallOption) (*pb.RemoveParticipantResponse, error) {
		return db.RemoveParticipant
	})
}

type deleteByIDCall = func(context.Context, *pb.DeleteByIDRequest, ...grpc.CallOption) (*pb.DeleteByIDResponse, error)

func (s *runtimeServer) DeleteEntity(ctx context.Context, req *pb.DeleteByIDRequest) (*pb.DeleteByIDResponse, error) {
	defer s.forgetConnections(req.GetAgentId())
	return forward(s, ctx, req.GetAgentId(), "DeleteEntity", req, func(db pb.DatabaseClient) deleteByIDCall { return db.DeleteEntity })
}

func (s *runtimeServer) DeleteRoom(ctx context.Context, req *pb.DeleteByIDRequest) (*pb.DeleteByIDResponse, error) {
	defer s.forgetConnections(req.GetAgentId())
	return forward(s, ctx, req.GetAgentId(), "DeleteRoom", req, func(db pb.DatabaseClient) deleteByIDCall { return db.DeleteRoom })
}

func (s *runtimeServer) DeleteWorld(ctx context.Context, req *pb.DeleteByIDRequest) (*pb.DeleteByIDResponse, error) {
	defer s.forgetConnections(req.GetAgentId())
	return forward(s, ctx, req.GetAgentId(), "DeleteWorld", req, func(db pb.DatabaseClient) deleteByIDCall { return db.DeleteWorld })
}

func (s *runtimeServer) DeleteComponent(ctx context.Context, req *pb.DeleteByIDRequest) (*pb.DeleteByIDResponse, error) {
	return forward(s, ctx, req.GetAgentId(), "DeleteComponent", req, func(db pb.DatabaseClient) deleteByIDCall { return db.DeleteComponent })
}

func (s *runtimeServer) DeleteTask(ctx context.Context, req *pb.DeleteByIDRequest) (*pb.DeleteByIDResponse, error) {
	return forward(s, ctx, req.GetAgentId(), "DeleteTask", req, func(db pb.DatabaseClient) deleteByIDCall { return db.DeleteTask })
}

func (s *runtimeServer) DeleteLog(ctx context.Context, req *pb.DeleteByIDRequest) (*pb.DeleteByIDResponse, error) {
	return forward(s, ctx, req.GetAgentId(), "DeleteLog", req, func(db pb.DatabaseClient) deleteByIDCall { return db.DeleteLog })
}

func (s *runtimeServer) CreateComponent(ctx context.Context, req *pb.ComponentRequest) (*pb.CreateComponentResponse, error) {
	return forward(s, ctx, req.GetAgentId(), "CreateComponent", req, func(db pb.DatabaseClient) func(context.Context, *pb.ComponentRequest, ...grpc.CallOption) (*pb.CreateComponentResponse, error) {
		return db.CreateComponent
	})
}

func (s *runtimeServer) UpdateComponent(ctx context.Context, req *pb.ComponentRequest) (*pb.UpdateComponentResponse, error) {
	return forward(s, ctx, req.GetAgentId(), "UpdateComponent", req, func(db pb.DatabaseClient) func(context.Context, *pb.ComponentRequest, ...grpc.CallOption) (*pb.UpdateComponentResponse, error) {
		return db.UpdateComponent
	})
}

func (s *runtimeServer) GetComponents(ctx context.Context, req *pb.GetComponentsRequest) (*pb.GetComponentsResponse, error) {
	return forward(s, ctx, req.GetAgentId(), "GetComponents", req, func(db pb.DatabaseClient) func(context.Context, *pb.GetComponentsRequest, ...grpc.CallOption) (*pb.GetComponentsResponse, error) {
		return db.GetComponents
	})
}

func (s *runtimeServer) CreateRelationship(ctx context.Context, req *pb.RelationshipRequest) (*pb.CreateRelationshipResponse, error) {
	return forward(s, ctx, req.GetAgentId(), "CreateRelationship", req, func(db pb.DatabaseClient) func(context.Context, *pb.RelationshipRequest, ...grpc.CallOption) (*pb.CreateRelationshipResponse, error) {
		return db.CreateRelationship
	})
}

func (s *runtimeServer) UpdateRelationship(ctx context.Context, req *pb.RelationshipRequest) (*pb.UpdateRelationshipResponse, error) {
	return forward(s, ctx, req.GetAgentId(), "UpdateRelationship", req, func(db pb.DatabaseClient) func(context.Context, *pb.RelationshipRequest, ...grpc.CallOption) (*pb.UpdateRelationshipResponse, error) {
		return db.UpdateRelationship
	})
}

func (s *runtimeServer) GetRelationships(ctx context.Context, req *pb.GetRelationshipsRequest) (*pb.GetRelationshipsResponse, error) {
	return forward(s, ctx, req.GetAgentId(), "GetRelationships", req, func(db pb.DatabaseClient) func(context.Context, *pb.GetRelationshipsRequest, ...grpc.CallOption) (*pb.GetRelationshipsResponse, error) {
		return db.GetRelationships
	})
}

func (s *runtimeServer) CreateTask(ctx context.Context, req *pb.CreateTaskRequest) (*pb.CreateTaskResponse, error) {
	return forward(s, ctx, req.GetAgentId(), "CreateTask", req, func(db pb.DatabaseClient) func(context.Context, *pb.CreateTaskRequest, ...grpc.CallOption) (*pb.CreateTaskResponse, error) {
		return db.CreateTask
	})
}

func (s *runtimeServer) GetTask(ctx context.Context, req *pb.DeleteByIDRequest) (*pb.TaskResponse, error) {
	return forward(s, ctx, req.GetAgentId(), "GetTask", req, func(db pb.DatabaseClient) func(context.Context, *pb.DeleteByIDRequest, ...grpc.CallOption) (*pb.TaskResponse, error) {
		return db.GetTask
	})
}

func (s *runtimeServer) GetTasks(ctx context.Context, req *pb.GetTasksRequest) (*pb.GetTasksResponse, error) {
	return forward(s, ctx, req.GetAgentId(), "GetTasks", req, func(db pb.DatabaseClient) func(context.Context, *pb.GetTasksRequest, ...grpc.CallOption) (*pb.GetTasksResponse, error) {
		return db.GetTasks
	})
}

func (s *runtimeServer) UpdateTask(ctx context.Context, req *pb.UpdateTaskRequest) (*pb.UpdateTaskResponse, error) {
	return forward(s, ctx, req.GetAgentId(), "UpdateTask", req, func(db pb.DatabaseClient) func(context.Context, *pb.UpdateTaskRequest, ...grpc.CallOption) (*pb.UpdateTaskResponse, error) {
		return db.UpdateTask
	})
}

func (s *runtimeServer) GetLogs(ctx context.Context, req *pb.GetLogsRequest) (*pb.GetLogsResponse, error) {
	return forward(s, ctx, req.GetAgentId(), "GetLogs", req, func(db pb.DatabaseClient) func(context.Context, *pb.GetLogsRequest, ...grpc.CallOption) (*pb.GetLogsResponse, error) {
		return db.GetLogs
	})
}

// forgetConnections makes the next message store its sender and room again
// after a plugin deleted some of them.
func (s *runtimeServer) forgetConnections(agentID string) {
	if a := s.d.agentByID(agentID); a != nil {
		a.ensured.forget()
	}
}

func (s *runtimeServer) SearchEntities(ctx context.Context, req *pb.SearchEntitiesRequest) (*pb.GetEntitiesResponse, error) {
	return forward(s, ctx, req.GetAgentId(), "SearchEntities", req, func(db pb.DatabaseClient) func(context.Context, *pb.SearchEntitiesRequest, ...grpc.CallOption) (*pb.GetEntitiesResponse, error) {
		return db.SearchEntities
	})
}

func (s *runtimeServer) GetCachedEmbeddings(ctx context.Context, req *pb.GetCachedEmbeddingsRequest) (*pb.GetCachedEmbeddingsResponse, error) {
	return forward(s, ctx, req.GetAgentId(), "GetCachedEmbeddings", req, func(db pb.DatabaseClient) func(context.Context, *pb.GetCachedEmbeddingsRequest, ...grpc.CallOption) (*pb.GetCachedEmbeddingsResponse, error) {
		return db.GetCachedEmbeddings
	})
}

func (s *runtimeServer) AddParticipants(ctx context.Context, req *pb.AddParticipantsRequest) (*pb.AddParticipantsResponse, error) {
	return forward(s, ctx, req.GetAgentId(), "AddParticipants", req, func(db pb.DatabaseClient) func(context.Context, *pb.AddParticipantsRequest, ...grpc.CallOption) (*pb.AddParticipantsResponse, error) {
		return db.AddParticipants
	})
}

func (s *runtimeServer) UpsertRooms(ctx context.Context, req *pb.UpsertRoomsRequest) (*pb.UpsertRoomsResponse, error) {
	return forward(s, ctx, req.GetAgentId(), "UpsertRooms", req, func(db pb.DatabaseClient) func(context.Context, *pb.UpsertRoomsRequest, ...grpc.CallOption) (*pb.UpsertRoomsResponse, error) {
		return db.UpsertRooms
	})
}

func (s *runtimeServer) DeleteRoomsByWorld(ctx context.Context, req *pb.DeleteByIDRequest) (*pb.DeleteByIDResponse, error) {
	defer s.forgetConnections(req.GetAgentId())
	return forward(s, ctx, req.GetAgentId(), "DeleteRoomsByWorld", req, func(db pb.DatabaseClient) deleteByIDCall { return db.DeleteRoomsByWorld })
}
