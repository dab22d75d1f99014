package host

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// runtimeServer is the Runtime service. The calling plugin comes from the
// call's token (see runtimeauth.go); a call may name only an agent that
// uses that plugin: a plugin cannot act for agents it was not given.
type runtimeServer struct {
	pb.UnimplementedRuntimeServer
	d *Daemon
}

func (s *runtimeServer) agent(ctx context.Context, id string) (*AgentRuntime, error) {
	caller := callerPlugin(ctx)
	if caller == nil {
		return nil, status.Error(codes.Unauthenticated, "runtime call without a plugin identity")
	}
	a := s.d.agentByID(id)
	if c, ok := s.d.configuring.Load(id); ok {
		// Its plugins are being configured: it is theirs from Configure on.
		a = c.(*AgentRuntime)
	}
	if a == nil || a.registry() == nil || !a.registry().Has(caller) {
		// The same answer whether the agent exists or not: a plugin learns
		// nothing about agents that are not its own.
		return nil, status.Errorf(codes.NotFound, "plugin %s serves no running agent %q", caller.Name(), id)
	}
	if a.idle() {
		return nil, status.Errorf(codes.FailedPrecondition, "agent %s is stopped", a.Name)
	}
	return a, nil
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
	a, err := s.agent(ctx, req.GetAgentId())
	if err != nil {
		return nil, err
	}
	res, err := a.useModel(ctx, req)
	return res, contract.Status(err)
}

func (s *runtimeServer) StreamModel(req *pb.ModelRequest, stream pb.Runtime_StreamModelServer) error {
	a, err := s.agent(stream.Context(), req.GetAgentId())
	if err != nil {
		return err
	}
	return contract.Status(a.streamModel(stream.Context(), req, stream.Send))
}

func (s *runtimeServer) ComposeState(ctx context.Context, req *pb.ComposeStateRequest) (*pb.State, error) {
	a, err := s.agent(ctx, req.GetAgentId())
	if err != nil {
		return nil, err
	}
	st, err := a.composeState(ctx, req)
	return st, contract.Status(err)
}

func (s *runtimeServer) ProcessActions(ctx context.Context, req *pb.ProcessActionsRequest) (*pb.ProcessActionsResponse, error) {
	a, err := s.agent(ctx, req.GetAgentId())
	if err != nil {
		return nil, err
	}
	res, err := a.processActions(ctx, req)
	return res, contract.Status(err)
}

func (s *runtimeServer) Evaluate(ctx context.Context, req *pb.EvaluateRequest) (*pb.EvaluateResponse, error) {
	a, err := s.agent(ctx, req.GetAgentId())
	if err != nil {
		return nil, err
	}
	res, err := a.evaluate(ctx, req)
	return res, contract.Status(err)
}

func (s *runtimeServer) EmitEvent(ctx context.Context, req *pb.EmitEventRequest) (*pb.EmitEventResponse, error) {
	a, err := s.agent(ctx, req.GetAgentId())
	if err != nil {
		return nil, err
	}
	ev := &pb.HandleEventRequest{Type: req.GetType(), RunId: req.GetRunId(), Source: req.GetSource(),
		Message: req.GetMessage(), PayloadJson: req.GetPayloadJson()}
	a.recordEvent(callerPlugin(ctx).Name(), ev, time.Now())
	err = a.emit(ctx, ev)
	if err != nil {
		return nil, contract.Status(err)
	}
	return &pb.EmitEventResponse{}, nil
}

func (s *runtimeServer) ReceiveMessage(ctx context.Context, req *pb.ReceiveMessageRequest) (*pb.ReceiveMessageResponse, error) {
	a, err := s.agent(ctx, req.GetAgentId())
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
		// "accepted" survives the host's own death: in a cluster, the
		// cluster's stream, whose agent's node (this one, or the next)
		// handles it.
		if s.d.cl != nil {
			dup, err := s.d.clusterHold(ctx, a, req, in.messageID)
			if err != nil {
				return nil, contract.Status(fmt.Errorf("keep the message until it is handled: %w", err))
			}
			return &pb.ReceiveMessageResponse{MemoryId: in.messageID, RoomId: in.roomID, WorldId: in.worldID, EntityId: in.entityID, Duplicate: dup}, nil
		}
		held, durable, err := a.hold(ctx, req, in.messageID)
		if err != nil {
			return nil, contract.Status(err)
		}
		res := &pb.ReceiveMessageResponse{MemoryId: in.messageID, RoomId: in.roomID, WorldId: in.worldID, EntityId: in.entityID}
		if !held {
			res.Duplicate = true
			return res, nil
		}
		a.d.background(func() { a.handleHeld(in, durable) })
		return res, nil
	}
	res, _, err := a.receive(ctx, in)
	return res, contract.Status(err)
}

func (s *runtimeServer) Respond(ctx context.Context, req *pb.RespondRequest) (*pb.RespondResponse, error) {
	a, err := s.agent(ctx, req.GetAgentId())
	if err != nil {
		return nil, err
	}
	res, err := a.respond(ctx, req)
	return res, contract.Status(err)
}

func (s *runtimeServer) SendMessage(ctx context.Context, req *pb.SendMessageRequest) (*pb.SendMessageResponse, error) {
	a, err := s.agent(ctx, req.GetAgentId())
	if err != nil {
		return nil, err
	}
	res, err := a.sendMessage(ctx, req)
	return res, contract.Status(err)
}

func (s *runtimeServer) GetSettings(ctx context.Context, req *pb.GetSettingsRequest) (*pb.GetSettingsResponse, error) {
	a, err := s.agent(ctx, req.GetAgentId())
	if err != nil {
		return nil, err
	}
	return &pb.GetSettingsResponse{Settings: a.settingsOf(callerPlugin(ctx))}, nil
}

func (s *runtimeServer) DescribeAgent(ctx context.Context, req *pb.DescribeAgentRequest) (*pb.DescribeAgentResponse, error) {
	a, err := s.agent(ctx, req.GetAgentId())
	if err != nil {
		return nil, err
	}
	out := &pb.DescribeAgentResponse{AgentId: a.ID, Name: a.Name}
	for _, p := range a.registry().Plugins {
		if m := p.Manifest(); m != nil {
			out.Plugins = append(out.Plugins, m)
		}
	}
	return out, nil
}

func (s *runtimeServer) ValidateActions(ctx context.Context, req *pb.ValidateActionsRequest) (*pb.ValidateActionsResponse, error) {
	a, err := s.agent(ctx, req.GetAgentId())
	if err != nil {
		return nil, err
	}
	return a.validateActions(ctx, req), nil
}

// storage answers a Database call a plugin made on its Runtime
// connection: one path for every storage method, declared once in
// database.proto. The caller was authenticated by its token (authUnary);
// here the method must be one plugins may call, every agent the request
// names must use the calling plugin, and the call takes one of the
// plugin's slots (admit) before it goes, re-encoded from what was checked,
// to the agent's database plugin. The answer comes back as the database
// plugin's bytes.
func (s *runtimeServer) storage(ctx context.Context, m *contract.StorageMethod, req proto.Message) (any, error) {
	caller := callerPlugin(ctx)
	if caller == nil {
		return nil, status.Error(codes.Unauthenticated, "runtime call without a plugin identity")
	}
	ids, err := m.PluginAgents(req)
	if err != nil {
		return nil, err
	}
	var db *PluginProcess
	var a *AgentRuntime
	for _, id := range ids {
		if a, err = s.agent(ctx, id); err != nil {
			return nil, err
		}
		if db != nil && a.registry().DB != db {
			return nil, status.Errorf(codes.InvalidArgument, "Database.%s names agents whose memories are kept by different database plugins; call once per agent", m.Name)
		}
		db = a.registry().DB
	}
	release, err := caller.admit(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	p, c, err := a.db(ctx)
	if err != nil {
		return nil, contract.Status(err)
	}
	if m.DeletesConnections {
		// The next message stores its sender and room again.
		for _, id := range ids {
			defer s.forgetConnections(id)
		}
	}
	ctx, cancel := ensureDeadline(ctx, contract.DefaultCallTimeout)
	defer cancel()
	res, err := m.Forward(ctx, c.conn, req)
	if err != nil {
		if k := contract.KindOf(err); k == contract.Invalid || k == contract.NotFound {
			// The database's own answer about the request: the plugin's to fix.
			return nil, err
		}
		return nil, contract.Status(p.callErr(c, m.Name, err))
	}
	return res, nil
}

// forgetConnections makes the next message store its sender and room again
// after a plugin deleted some of them.
func (s *runtimeServer) forgetConnections(agentID string) {
	if a := s.d.agentByID(agentID); a != nil {
		a.ensured.forget()
	}
}
