package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Agent is one agent as a plugin sees it: its id, character and settings,
// and the host's Runtime bound to it. Handlers receive it; it is safe for
// concurrent use.
type Agent struct {
	ID        string
	Character *Character
	// Settings are resolved as elizaOS does: character secrets, then
	// settings, then settings.secrets, then the host's environment.
	Settings map[string]string

	rt pb.RuntimeClient
}

// ErrNoRuntime is returned by Agent methods when the plugin was never given
// a Runtime (a handler called directly in a unit test).
var ErrNoRuntime = errors.New("no host runtime: the plugin was not started by agenthost")

// Setting returns a resolved setting, or "" if it is not set.
func (a *Agent) Setting(key string) string { return a.Settings[key] }

// Name is the character's name.
func (a *Agent) Name() string {
	if a.Character == nil {
		return ""
	}
	return a.Character.Name
}

// withDeadline bounds calls whose caller gave no deadline, so a stuck host
// can never hang a plugin forever.
func withDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// callErr turns a gRPC status into an error that reads well in a log.
func callErr(method string, err error) error {
	if err == nil {
		return nil
	}
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.NotFound:
			return fmt.Errorf("runtime %s: %w: %s", method, ErrNotFound, s.Message())
		case codes.InvalidArgument:
			return fmt.Errorf("runtime %s: %w: %s", method, ErrInvalid, s.Message())
		case codes.Unavailable:
			// Kept as a kind so the handler's own error reaches the host as
			// Unavailable too, and the user learns a plugin went down.
			return fmt.Errorf("runtime %s: %s: %w", method, s.Message(), ErrUnavailable)
		case codes.DeadlineExceeded:
			return fmt.Errorf("runtime %s: %s: %w", method, s.Message(), context.DeadlineExceeded)
		}
		return fmt.Errorf("runtime %s: %s (%s)", method, s.Message(), s.Code())
	}
	return fmt.Errorf("runtime %s: %w", method, err)
}

// ErrNotFound is wrapped by errors for things that do not exist.
var ErrNotFound = errors.New("not found")

func (a *Agent) client() (pb.RuntimeClient, error) {
	if a == nil || a.rt == nil {
		return nil, ErrNoRuntime
	}
	return a.rt, nil
}

// UseModel calls the agent's model of req.Type with the highest priority.
func (a *Agent) UseModel(ctx context.Context, req ModelRequest) (*ModelResponse, error) {
	rt, err := a.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDeadline(ctx, DefaultRunTimeout)
	defer cancel()
	res, err := rt.UseModel(ctx, modelRequestToProto(a.ID, &req))
	if err != nil {
		return nil, callErr("UseModel "+req.Type, err)
	}
	return modelResponseFromProto(res), nil
}

// StreamModel is UseModel with the text handed to onText as the model makes
// it. The returned response holds the whole answer.
func (a *Agent) StreamModel(ctx context.Context, req ModelRequest, onText func(text string) error) (*ModelResponse, error) {
	rt, err := a.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDeadline(ctx, DefaultRunTimeout)
	defer cancel()
	stream, err := rt.StreamModel(ctx, modelRequestToProto(a.ID, &req))
	if err != nil {
		return nil, callErr("StreamModel "+req.Type, err)
	}
	for {
		chunk, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("runtime StreamModel %s: the stream ended without a final answer", req.Type)
			}
			return nil, callErr("StreamModel "+req.Type, err)
		}
		if f := chunk.GetFinal(); f != nil {
			return modelResponseFromProto(f), nil
		}
		if onText != nil && chunk.GetText() != "" {
			if err := onText(chunk.GetText()); err != nil {
				return nil, err
			}
		}
	}
}

// GenerateText asks a text model (TEXT_SMALL, TEXT_LARGE) for a completion.
func (a *Agent) GenerateText(ctx context.Context, modelType, prompt string) (string, error) {
	res, err := a.UseModel(ctx, ModelRequest{Type: modelType, Prompt: prompt})
	if err != nil {
		return "", err
	}
	return res.Text, nil
}

// Embed returns the TEXT_EMBEDDING vector of text.
func (a *Agent) Embed(ctx context.Context, text string) ([]float32, error) {
	res, err := a.UseModel(ctx, ModelRequest{Type: ModelTextEmbedding, Text: text})
	if err != nil {
		return nil, err
	}
	if len(res.Embedding) == 0 {
		return nil, fmt.Errorf("model %s returned no embedding", res.Provider)
	}
	return res.Embedding, nil
}

// ComposeOptions selects the providers of ComposeState.
type ComposeOptions struct {
	// Include adds providers (dynamic ones, by name) to the default set.
	Include []string
	// OnlyInclude runs exactly Include.
	OnlyInclude bool
	SkipCache   bool
	RunID       string
}

// ComposeState runs the agent's providers for msg and returns the state.
func (a *Agent) ComposeState(ctx context.Context, msg *Memory, opts ComposeOptions) (*State, error) {
	rt, err := a.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDeadline(ctx, DefaultCallTimeout)
	defer cancel()
	st, err := rt.ComposeState(ctx, &pb.ComposeStateRequest{AgentId: a.ID, Message: memoryToProto(msg),
		Include: opts.Include, OnlyInclude: opts.OnlyInclude, SkipCache: opts.SkipCache, RunId: opts.RunID})
	if err != nil {
		return nil, callErr("ComposeState", err)
	}
	return stateFromProto(st), nil
}

// ProcessActions runs the actions named in responses, in order, each one's
// result passed to the next.
func (a *Agent) ProcessActions(ctx context.Context, msg *Memory, responses []Memory, st *State, runID string) ([]ActionOutcome, error) {
	rt, err := a.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDeadline(ctx, DefaultRunTimeout)
	defer cancel()
	res, err := rt.ProcessActions(ctx, &pb.ProcessActionsRequest{AgentId: a.ID, Message: memoryToProto(msg),
		Responses: memoriesToProto(responses), State: stateToProto(st), RunId: runID})
	if err != nil {
		return nil, callErr("ProcessActions", err)
	}
	return outcomesFromProto(res.GetResults()), nil
}

// Evaluate runs the agent's evaluators after a response.
func (a *Agent) Evaluate(ctx context.Context, call EvaluatorCall) ([]EvaluatorOutcome, error) {
	rt, err := a.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDeadline(ctx, DefaultRunTimeout)
	defer cancel()
	res, err := rt.Evaluate(ctx, &pb.EvaluateRequest{AgentId: a.ID, Message: memoryToProto(call.Message),
		State: stateToProto(call.State), DidRespond: call.DidRespond, Responses: memoriesToProto(call.Responses), RunId: call.RunID})
	if err != nil {
		return nil, callErr("Evaluate", err)
	}
	out := make([]EvaluatorOutcome, 0, len(res.GetOutcomes()))
	for _, o := range res.GetOutcomes() {
		out = append(out, EvaluatorOutcome{Name: o.GetName(), Ran: o.GetRan(), Error: o.GetError()})
	}
	return out, nil
}

// EmitEvent hands an event to the plugins subscribed to its type.
func (a *Agent) EmitEvent(ctx context.Context, ev Event) error {
	rt, err := a.client()
	if err != nil {
		return err
	}
	ctx, cancel := withDeadline(ctx, DefaultCallTimeout)
	defer cancel()
	_, err = rt.EmitEvent(ctx, &pb.EmitEventRequest{AgentId: a.ID, Type: ev.Type, Source: ev.Source,
		Message: memoryToProto(ev.Message), PayloadJson: encodeMap(ev.Payload), RunId: ev.RunID})
	return callErr("EmitEvent "+ev.Type, err)
}

// IncomingMessage is a message from a platform, in the platform's own ids.
type IncomingMessage struct {
	Source      string
	MessageID   string
	ChannelID   string
	ServerID    string
	UserID      string
	UserName    string
	DisplayName string
	ThreadID    string
	// InReplyTo is the platform's id of the message this one answers.
	InReplyTo   string
	Content     Content
	ChannelType ChannelType
	RoomName    string
	WorldName   string
	CreatedAt   int64
	// Wait makes ReceiveMessage return only after the agent has handled
	// the message, with its replies.
	Wait bool
}

// Received is what the host made of an incoming message.
type Received struct {
	MemoryID  string
	RoomID    string
	WorldID   string
	EntityID  string
	RunID     string
	Replies   []Content
	Duplicate bool
}

// ReceiveMessage is how a connector hands an incoming message to the host.
// The host maps the platform's ids to the agent's, stores nothing itself, and
// emits MESSAGE_RECEIVED.
func (a *Agent) ReceiveMessage(ctx context.Context, in IncomingMessage) (*Received, error) {
	rt, err := a.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDeadline(ctx, DefaultRunTimeout)
	defer cancel()
	res, err := rt.ReceiveMessage(ctx, &pb.ReceiveMessageRequest{
		AgentId: a.ID, Source: in.Source, MessageId: in.MessageID, ChannelId: in.ChannelID, ServerId: in.ServerID,
		UserId: in.UserID, UserName: validUTF8(in.UserName), DisplayName: validUTF8(in.DisplayName), ThreadId: in.ThreadID,
		InReplyTo: in.InReplyTo, Content: contentToProto(&in.Content), ChannelType: string(in.ChannelType),
		RoomName: validUTF8(in.RoomName), WorldName: validUTF8(in.WorldName), CreatedAt: in.CreatedAt, Wait: in.Wait,
	})
	if err != nil {
		return nil, callErr("ReceiveMessage", err)
	}
	r := &Received{MemoryID: res.GetMemoryId(), RoomID: res.GetRoomId(), WorldID: res.GetWorldId(),
		EntityID: res.GetEntityId(), RunID: res.GetRunId(), Duplicate: res.GetDuplicate()}
	for _, c := range res.GetReplies() {
		r.Replies = append(r.Replies, contentFromProto(c))
	}
	return r, nil
}

// Respond sends content back to where the run's message came from (the
// elizaOS callback). memoryID names the stored reply, if any.
func (a *Agent) Respond(ctx context.Context, runID string, c Content, memoryID string) ([]string, error) {
	rt, err := a.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDeadline(ctx, DefaultCallTimeout)
	defer cancel()
	res, err := rt.Respond(ctx, &pb.RespondRequest{AgentId: a.ID, RunId: runID, Content: contentToProto(&c), MemoryId: memoryID})
	if err != nil {
		return nil, callErr("Respond", err)
	}
	return res.GetMessageIds(), nil
}

// SendMessage sends content to a target, routed by target.Source.
func (a *Agent) SendMessage(ctx context.Context, t Target, c Content) ([]string, error) {
	rt, err := a.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDeadline(ctx, DefaultCallTimeout)
	defer cancel()
	res, err := rt.SendMessage(ctx, &pb.SendMessageRequest{AgentId: a.ID, Target: targetToProto(&t), Content: contentToProto(&c)})
	if err != nil {
		return nil, callErr("SendMessage", err)
	}
	return res.GetMessageIds(), nil
}

// CreateMemory stores m in table and returns its id; created is false when a
// memory with that id was already stored.
func (a *Agent) CreateMemory(ctx context.Context, m *Memory, table string, unique bool) (id string, created bool, err error) {
	rt, err := a.client()
	if err != nil {
		return "", false, err
	}
	ctx, cancel := withDeadline(ctx, DefaultCallTimeout)
	defer cancel()
	res, err := rt.CreateMemory(ctx, &pb.CreateMemoryRequest{AgentId: a.ID, Memory: memoryToProto(m), Table: table, Unique: unique})
	if err != nil {
		return "", false, callErr("CreateMemory", err)
	}
	return res.GetId(), res.GetCreated(), nil
}

// GetMemories returns memories, newest first.
func (a *Agent) GetMemories(ctx context.Context, q MemoryQuery) ([]Memory, error) {
	rt, err := a.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDeadline(ctx, DefaultCallTimeout)
	defer cancel()
	res, err := rt.GetMemories(ctx, memoryQueryToProto(a.ID, &q))
	if err != nil {
		return nil, callErr("GetMemories", err)
	}
	return memoriesFromProto(res.GetMemories()), nil
}

// GetMemoriesByIDs returns the memories with these ids that exist.
func (a *Agent) GetMemoriesByIDs(ctx context.Context, ids []string, table string) ([]Memory, error) {
	rt, err := a.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDeadline(ctx, DefaultCallTimeout)
	defer cancel()
	res, err := rt.GetMemoriesByIDs(ctx, &pb.GetMemoriesByIDsRequest{AgentId: a.ID, Ids: ids, Table: table})
	if err != nil {
		return nil, callErr("GetMemoriesByIDs", err)
	}
	return memoriesFromProto(res.GetMemories()), nil
}

// SearchMemories returns the memories most similar to q.Embedding.
func (a *Agent) SearchMemories(ctx context.Context, q SearchQuery) ([]Memory, error) {
	rt, err := a.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDeadline(ctx, DefaultCallTimeout)
	defer cancel()
	res, err := rt.SearchMemories(ctx, searchQueryToProto(a.ID, &q))
	if err != nil {
		return nil, callErr("SearchMemories", err)
	}
	return memoriesFromProto(res.GetMemories()), nil
}

// DeleteMemory deletes one memory.
func (a *Agent) DeleteMemory(ctx context.Context, id string) error {
	rt, err := a.client()
	if err != nil {
		return err
	}
	ctx, cancel := withDeadline(ctx, DefaultCallTimeout)
	defer cancel()
	_, err = rt.DeleteMemory(ctx, &pb.DeleteMemoryRequest{AgentId: a.ID, Id: id})
	return callErr("DeleteMemory", err)
}

// CountMemories counts a room's memories in a table.
func (a *Agent) CountMemories(ctx context.Context, roomID, table string, unique bool) (int64, error) {
	rt, err := a.client()
	if err != nil {
		return 0, err
	}
	ctx, cancel := withDeadline(ctx, DefaultCallTimeout)
	defer cancel()
	res, err := rt.CountMemories(ctx, &pb.CountMemoriesRequest{AgentId: a.ID, RoomId: roomID, Table: table, Unique: unique})
	if err != nil {
		return 0, callErr("CountMemories", err)
	}
	return res.GetCount(), nil
}

// EnsureConnection makes sure the world, room, entity and participations
// exist.
func (a *Agent) EnsureConnection(ctx context.Context, c Connection) error {
	rt, err := a.client()
	if err != nil {
		return err
	}
	ctx, cancel := withDeadline(ctx, DefaultCallTimeout)
	defer cancel()
	_, err = rt.EnsureConnection(ctx, &pb.EnsureConnectionRequest{AgentId: a.ID, Entity: entityToProto(&c.Entity), Room: roomToProto(&c.Room), World: worldToProto(&c.World)})
	return callErr("EnsureConnection", err)
}

// GetEntities returns the entities with these ids that exist.
func (a *Agent) GetEntities(ctx context.Context, ids ...string) ([]Entity, error) {
	rt, err := a.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDeadline(ctx, DefaultCallTimeout)
	defer cancel()
	res, err := rt.GetEntities(ctx, &pb.GetEntitiesRequest{AgentId: a.ID, Ids: ids})
	if err != nil {
		return nil, callErr("GetEntities", err)
	}
	out := make([]Entity, len(res.GetEntities()))
	for i, e := range res.GetEntities() {
		out[i] = entityFromProto(e)
	}
	return out, nil
}

// UpsertEntities creates or replaces entities.
func (a *Agent) UpsertEntities(ctx context.Context, entities ...Entity) error {
	rt, err := a.client()
	if err != nil {
		return err
	}
	ctx, cancel := withDeadline(ctx, DefaultCallTimeout)
	defer cancel()
	req := &pb.UpsertEntitiesRequest{AgentId: a.ID}
	for i := range entities {
		req.Entities = append(req.Entities, entityToProto(&entities[i]))
	}
	_, err = rt.UpsertEntities(ctx, req)
	return callErr("UpsertEntities", err)
}

// GetRooms returns rooms by ids, by participant or by world.
func (a *Agent) GetRooms(ctx context.Context, q RoomQuery) ([]Room, error) {
	rt, err := a.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDeadline(ctx, DefaultCallTimeout)
	defer cancel()
	res, err := rt.GetRooms(ctx, &pb.GetRoomsRequest{AgentId: a.ID, Ids: q.IDs, ParticipantId: q.ParticipantID, WorldId: q.WorldID})
	if err != nil {
		return nil, callErr("GetRooms", err)
	}
	out := make([]Room, len(res.GetRooms()))
	for i, r := range res.GetRooms() {
		out[i] = roomFromProto(r)
	}
	return out, nil
}

// GetRoom returns one room, or an error wrapping ErrNotFound.
func (a *Agent) GetRoom(ctx context.Context, id string) (*Room, error) {
	rooms, err := a.GetRooms(ctx, RoomQuery{IDs: []string{id}})
	if err != nil {
		return nil, err
	}
	if len(rooms) == 0 {
		return nil, fmt.Errorf("room %s: %w", id, ErrNotFound)
	}
	return &rooms[0], nil
}

// GetWorlds returns the worlds with these ids that exist.
func (a *Agent) GetWorlds(ctx context.Context, ids ...string) ([]World, error) {
	rt, err := a.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDeadline(ctx, DefaultCallTimeout)
	defer cancel()
	res, err := rt.GetWorlds(ctx, &pb.GetWorldsRequest{AgentId: a.ID, Ids: ids})
	if err != nil {
		return nil, callErr("GetWorlds", err)
	}
	out := make([]World, len(res.GetWorlds()))
	for i, w := range res.GetWorlds() {
		out[i] = worldFromProto(w)
	}
	return out, nil
}

// UpsertWorld creates or replaces a world.
func (a *Agent) UpsertWorld(ctx context.Context, w World) error {
	rt, err := a.client()
	if err != nil {
		return err
	}
	ctx, cancel := withDeadline(ctx, DefaultCallTimeout)
	defer cancel()
	_, err = rt.UpsertWorld(ctx, &pb.UpsertWorldRequest{AgentId: a.ID, World: worldToProto(&w)})
	return callErr("UpsertWorld", err)
}

// GetParticipants returns the entity ids of a room's participants.
func (a *Agent) GetParticipants(ctx context.Context, roomID string) ([]string, error) {
	rt, err := a.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDeadline(ctx, DefaultCallTimeout)
	defer cancel()
	res, err := rt.GetParticipants(ctx, &pb.GetParticipantsRequest{AgentId: a.ID, RoomId: roomID})
	if err != nil {
		return nil, callErr("GetParticipants", err)
	}
	return res.GetEntityIds(), nil
}

// GetParticipantState returns FOLLOWED, MUTED or "".
func (a *Agent) GetParticipantState(ctx context.Context, roomID, entityID string) (string, error) {
	rt, err := a.client()
	if err != nil {
		return "", err
	}
	ctx, cancel := withDeadline(ctx, DefaultCallTimeout)
	defer cancel()
	res, err := rt.GetParticipantState(ctx, &pb.ParticipantStateRequest{AgentId: a.ID, RoomId: roomID, EntityId: entityID})
	if err != nil {
		return "", callErr("GetParticipantState", err)
	}
	return res.GetState(), nil
}

// SetParticipantState sets FOLLOWED, MUTED or "".
func (a *Agent) SetParticipantState(ctx context.Context, roomID, entityID, state string) error {
	rt, err := a.client()
	if err != nil {
		return err
	}
	ctx, cancel := withDeadline(ctx, DefaultCallTimeout)
	defer cancel()
	_, err = rt.SetParticipantState(ctx, &pb.ParticipantStateRequest{AgentId: a.ID, RoomId: roomID, EntityId: entityID, State: state})
	return callErr("SetParticipantState", err)
}

// AddLog records a timeline entry (a model call, an action, a run).
func (a *Agent) AddLog(ctx context.Context, l LogEntry) error {
	rt, err := a.client()
	if err != nil {
		return err
	}
	ctx, cancel := withDeadline(ctx, DefaultCallTimeout)
	defer cancel()
	l.AgentID = a.ID
	_, err = rt.AddLog(ctx, &pb.AddLogRequest{Log: logToProto(&l)})
	return callErr("AddLog", err)
}

// GetCache returns a cached value.
func (a *Agent) GetCache(ctx context.Context, key string) ([]byte, bool, error) {
	rt, err := a.client()
	if err != nil {
		return nil, false, err
	}
	ctx, cancel := withDeadline(ctx, DefaultCallTimeout)
	defer cancel()
	res, err := rt.GetCache(ctx, &pb.GetCacheRequest{AgentId: a.ID, Key: key})
	if err != nil {
		return nil, false, callErr("GetCache", err)
	}
	return res.GetValue(), res.GetFound(), nil
}

// SetCache stores a value; ttl 0 means no expiry.
func (a *Agent) SetCache(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	rt, err := a.client()
	if err != nil {
		return err
	}
	ctx, cancel := withDeadline(ctx, DefaultCallTimeout)
	defer cancel()
	_, err = rt.SetCache(ctx, &pb.SetCacheRequest{AgentId: a.ID, Key: key, Value: value, TtlMs: ttl.Milliseconds()})
	return callErr("SetCache", err)
}

func memoryQueryToProto(agentID string, q *MemoryQuery) *pb.GetMemoriesRequest {
	return &pb.GetMemoriesRequest{AgentId: agentID, Table: q.Table, RoomId: q.RoomID, RoomIds: q.RoomIDs,
		EntityId: q.EntityID, WorldId: q.WorldID, Count: int32(q.Count), Unique: q.Unique, Start: q.Start, End: q.End}
}

func memoryQueryFromProto(q *pb.GetMemoriesRequest) MemoryQuery {
	return MemoryQuery{Table: q.GetTable(), RoomID: q.GetRoomId(), RoomIDs: q.GetRoomIds(), EntityID: q.GetEntityId(),
		WorldID: q.GetWorldId(), Count: int(q.GetCount()), Unique: q.GetUnique(), Start: q.GetStart(), End: q.GetEnd()}
}

func searchQueryToProto(agentID string, q *SearchQuery) *pb.SearchMemoriesRequest {
	return &pb.SearchMemoriesRequest{AgentId: agentID, Table: q.Table, Embedding: q.Embedding, Threshold: q.Threshold,
		Count: int32(q.Count), Unique: q.Unique, RoomId: q.RoomID, WorldId: q.WorldID, EntityId: q.EntityID}
}

func searchQueryFromProto(q *pb.SearchMemoriesRequest) SearchQuery {
	return SearchQuery{Table: q.GetTable(), Embedding: q.GetEmbedding(), Threshold: q.GetThreshold(), Count: int(q.GetCount()),
		Unique: q.GetUnique(), RoomID: q.GetRoomId(), WorldID: q.GetWorldId(), EntityID: q.GetEntityId()}
}
