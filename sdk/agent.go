package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"google.golang.org/grpc"
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
	// AuthorIsBot says the author is a bot or another agent. Agents do not
	// answer such messages unless configured to, so two agents in one room
	// never talk to each other in an endless loop.
	AuthorIsBot bool
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
		AuthorIsBot: in.AuthorIsBot,
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
	res, err := rt.GetRooms(ctx, &pb.GetRoomsRequest{AgentId: a.ID, Ids: q.IDs, ParticipantId: q.ParticipantID,
		ParticipantIds: q.ParticipantIDs, WorldId: q.WorldID})
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
		EntityId: q.EntityID, WorldId: q.WorldID, Count: int32(q.Count), Unique: q.Unique, Start: q.Start, End: q.End,
		OmitEmbeddings: q.OmitEmbeddings}
}

func memoryQueryFromProto(q *pb.GetMemoriesRequest) MemoryQuery {
	return MemoryQuery{Table: q.GetTable(), RoomID: q.GetRoomId(), RoomIDs: q.GetRoomIds(), EntityID: q.GetEntityId(),
		WorldID: q.GetWorldId(), Count: int(q.GetCount()), Unique: q.GetUnique(), Start: q.GetStart(), End: q.GetEnd(),
		OmitEmbeddings: q.GetOmitEmbeddings()}
}

func searchQueryToProto(agentID string, q *SearchQuery) *pb.SearchMemoriesRequest {
	return &pb.SearchMemoriesRequest{AgentId: agentID, Table: q.Table, Embedding: q.Embedding, Threshold: q.Threshold,
		Count: int32(q.Count), Unique: q.Unique, RoomId: q.RoomID, WorldId: q.WorldID, EntityId: q.EntityID}
}

func searchQueryFromProto(q *pb.SearchMemoriesRequest) SearchQuery {
	return SearchQuery{Table: q.GetTable(), Embedding: q.GetEmbedding(), Threshold: q.GetThreshold(), Count: int(q.GetCount()),
		Unique: q.GetUnique(), RoomID: q.GetRoomId(), WorldID: q.GetWorldId(), EntityID: q.GetEntityId()}
}

// storageCall runs one storage call on the Runtime with the default
// deadline.
func storageCall[T any](a *Agent, ctx context.Context, method string, call func(context.Context, pb.RuntimeClient) (T, error)) (T, error) {
	var zero T
	rt, err := a.client()
	if err != nil {
		return zero, err
	}
	ctx, cancel := withDeadline(ctx, DefaultCallTimeout)
	defer cancel()
	res, err := call(ctx, rt)
	if err != nil {
		return zero, callErr(method, err)
	}
	return res, nil
}

// UpdateMemory changes what u sets of a stored memory: the content, the
// metadata (merged key by key; a nil value deletes the key), the embedding.
// found is false when no memory has u.ID.
func (a *Agent) UpdateMemory(ctx context.Context, u MemoryUpdate) (found bool, err error) {
	res, err := storageCall(a, ctx, "UpdateMemory", func(ctx context.Context, rt pb.RuntimeClient) (*pb.UpdateMemoryResponse, error) {
		return rt.UpdateMemory(ctx, memoryUpdateToProto(a.ID, &u))
	})
	return res.GetFound(), err
}

// DeleteManyMemories deletes the memories among ids in one transaction.
func (a *Agent) DeleteManyMemories(ctx context.Context, ids []string) (int64, error) {
	res, err := storageCall(a, ctx, "DeleteManyMemories", func(ctx context.Context, rt pb.RuntimeClient) (*pb.DeleteMemoryResponse, error) {
		return rt.DeleteManyMemories(ctx, &pb.DeleteManyMemoriesRequest{AgentId: a.ID, Ids: ids})
	})
	return res.GetDeleted(), err
}

// DeleteAllMemories deletes a room's memories of a table (all tables when
// table is empty).
func (a *Agent) DeleteAllMemories(ctx context.Context, roomID, table string) (int64, error) {
	res, err := storageCall(a, ctx, "DeleteAllMemories", func(ctx context.Context, rt pb.RuntimeClient) (*pb.DeleteMemoryResponse, error) {
		return rt.DeleteAllMemories(ctx, &pb.DeleteAllMemoriesRequest{AgentId: a.ID, RoomId: roomID, Table: table})
	})
	return res.GetDeleted(), err
}

// GetEntitiesForRoom returns the entities that take part in a room.
func (a *Agent) GetEntitiesForRoom(ctx context.Context, roomID string) ([]Entity, error) {
	res, err := storageCall(a, ctx, "GetEntitiesForRoom", func(ctx context.Context, rt pb.RuntimeClient) (*pb.GetEntitiesResponse, error) {
		return rt.GetEntitiesForRoom(ctx, &pb.GetEntitiesForRoomRequest{AgentId: a.ID, RoomId: roomID})
	})
	out := make([]Entity, len(res.GetEntities()))
	for i, e := range res.GetEntities() {
		out[i] = entityFromProto(e)
	}
	return out, err
}

// deleteByID runs one of the Runtime's delete-by-id calls.
func (a *Agent) deleteByID(ctx context.Context, method, id string, call func(pb.RuntimeClient) func(context.Context, *pb.DeleteByIDRequest, ...grpc.CallOption) (*pb.DeleteByIDResponse, error)) (int64, error) {
	res, err := storageCall(a, ctx, method, func(ctx context.Context, rt pb.RuntimeClient) (*pb.DeleteByIDResponse, error) {
		return call(rt)(ctx, &pb.DeleteByIDRequest{AgentId: a.ID, Id: id})
	})
	return res.GetDeleted(), err
}

// DeleteEntity deletes an entity with its components, relationships and
// participations.
func (a *Agent) DeleteEntity(ctx context.Context, id string) (int64, error) {
	return a.deleteByID(ctx, "DeleteEntity", id, func(rt pb.RuntimeClient) func(context.Context, *pb.DeleteByIDRequest, ...grpc.CallOption) (*pb.DeleteByIDResponse, error) {
		return rt.DeleteEntity
	})
}

// UpsertRoom creates or replaces a room.
func (a *Agent) UpsertRoom(ctx context.Context, r Room) error {
	_, err := storageCall(a, ctx, "UpsertRoom", func(ctx context.Context, rt pb.RuntimeClient) (*pb.UpsertRoomResponse, error) {
		return rt.UpsertRoom(ctx, &pb.UpsertRoomRequest{AgentId: a.ID, Room: roomToProto(&r)})
	})
	return err
}

// DeleteRoom deletes a room with its participants, memories and logs.
func (a *Agent) DeleteRoom(ctx context.Context, id string) (int64, error) {
	return a.deleteByID(ctx, "DeleteRoom", id, func(rt pb.RuntimeClient) func(context.Context, *pb.DeleteByIDRequest, ...grpc.CallOption) (*pb.DeleteByIDResponse, error) {
		return rt.DeleteRoom
	})
}

// DeleteWorld deletes a world and its rooms.
func (a *Agent) DeleteWorld(ctx context.Context, id string) (int64, error) {
	return a.deleteByID(ctx, "DeleteWorld", id, func(rt pb.RuntimeClient) func(context.Context, *pb.DeleteByIDRequest, ...grpc.CallOption) (*pb.DeleteByIDResponse, error) {
		return rt.DeleteWorld
	})
}

// RemoveParticipant takes an entity out of a room.
func (a *Agent) RemoveParticipant(ctx context.Context, roomID, entityID string) (bool, error) {
	res, err := storageCall(a, ctx, "RemoveParticipant", func(ctx context.Context, rt pb.RuntimeClient) (*pb.RemoveParticipantResponse, error) {
		return rt.RemoveParticipant(ctx, &pb.RemoveParticipantRequest{AgentId: a.ID, RoomId: roomID, EntityId: entityID})
	})
	return res.GetRemoved(), err
}

// CreateComponent stores a component of an entity; created is false when
// its id was stored already.
func (a *Agent) CreateComponent(ctx context.Context, c Component) (id string, created bool, err error) {
	res, err := storageCall(a, ctx, "CreateComponent", func(ctx context.Context, rt pb.RuntimeClient) (*pb.CreateComponentResponse, error) {
		return rt.CreateComponent(ctx, &pb.ComponentRequest{AgentId: a.ID, Component: componentToProto(&c)})
	})
	return res.GetId(), res.GetCreated(), err
}

// UpdateComponent replaces a stored component.
func (a *Agent) UpdateComponent(ctx context.Context, c Component) error {
	_, err := storageCall(a, ctx, "UpdateComponent", func(ctx context.Context, rt pb.RuntimeClient) (*pb.UpdateComponentResponse, error) {
		return rt.UpdateComponent(ctx, &pb.ComponentRequest{AgentId: a.ID, Component: componentToProto(&c)})
	})
	return err
}

// GetComponents returns the components of entities.
func (a *Agent) GetComponents(ctx context.Context, q ComponentQuery) ([]Component, error) {
	res, err := storageCall(a, ctx, "GetComponents", func(ctx context.Context, rt pb.RuntimeClient) (*pb.GetComponentsResponse, error) {
		return rt.GetComponents(ctx, &pb.GetComponentsRequest{AgentId: a.ID, EntityIds: q.EntityIDs, Type: q.Type,
			WorldId: q.WorldID, SourceEntityId: q.SourceEntityID})
	})
	out := make([]Component, len(res.GetComponents()))
	for i, c := range res.GetComponents() {
		out[i] = componentFromProto(c)
	}
	return out, err
}

// DeleteComponent deletes a component.
func (a *Agent) DeleteComponent(ctx context.Context, id string) (int64, error) {
	return a.deleteByID(ctx, "DeleteComponent", id, func(rt pb.RuntimeClient) func(context.Context, *pb.DeleteByIDRequest, ...grpc.CallOption) (*pb.DeleteByIDResponse, error) {
		return rt.DeleteComponent
	})
}

// CreateRelationship stores a relationship between two entities; created
// is false when one from the same source to the same target was stored.
func (a *Agent) CreateRelationship(ctx context.Context, r Relationship) (id string, created bool, err error) {
	res, err := storageCall(a, ctx, "CreateRelationship", func(ctx context.Context, rt pb.RuntimeClient) (*pb.CreateRelationshipResponse, error) {
		return rt.CreateRelationship(ctx, &pb.RelationshipRequest{AgentId: a.ID, Relationship: relationshipToProto(&r)})
	})
	return res.GetId(), res.GetCreated(), err
}

// UpdateRelationship replaces the tags and metadata of the relationship
// from r.SourceEntityID to r.TargetEntityID.
func (a *Agent) UpdateRelationship(ctx context.Context, r Relationship) error {
	_, err := storageCall(a, ctx, "UpdateRelationship", func(ctx context.Context, rt pb.RuntimeClient) (*pb.UpdateRelationshipResponse, error) {
		return rt.UpdateRelationship(ctx, &pb.RelationshipRequest{AgentId: a.ID, Relationship: relationshipToProto(&r)})
	})
	return err
}

// GetRelationships returns relationships by entity and tags (any of them).
func (a *Agent) GetRelationships(ctx context.Context, q RelationshipQuery) ([]Relationship, error) {
	res, err := storageCall(a, ctx, "GetRelationships", func(ctx context.Context, rt pb.RuntimeClient) (*pb.GetRelationshipsResponse, error) {
		return rt.GetRelationships(ctx, &pb.GetRelationshipsRequest{AgentId: a.ID, EntityId: q.EntityID,
			SourceEntityId: q.SourceEntityID, TargetEntityId: q.TargetEntityID, Tags: q.Tags})
	})
	out := make([]Relationship, len(res.GetRelationships()))
	for i, r := range res.GetRelationships() {
		out[i] = relationshipFromProto(r)
	}
	return out, err
}

// CreateTask stores a task and returns its id.
func (a *Agent) CreateTask(ctx context.Context, t Task) (string, error) {
	res, err := storageCall(a, ctx, "CreateTask", func(ctx context.Context, rt pb.RuntimeClient) (*pb.CreateTaskResponse, error) {
		return rt.CreateTask(ctx, &pb.CreateTaskRequest{AgentId: a.ID, Task: taskToProto(&t)})
	})
	return res.GetId(), err
}

// GetTask returns one task, or an error wrapping ErrNotFound.
func (a *Agent) GetTask(ctx context.Context, id string) (Task, error) {
	res, err := storageCall(a, ctx, "GetTask", func(ctx context.Context, rt pb.RuntimeClient) (*pb.TaskResponse, error) {
		return rt.GetTask(ctx, &pb.DeleteByIDRequest{AgentId: a.ID, Id: id})
	})
	if err != nil {
		return Task{}, err
	}
	return taskFromProto(res.GetTask()), nil
}

// GetTasks returns tasks by room, entity, world, name and tags (all of them).
func (a *Agent) GetTasks(ctx context.Context, q TaskQuery) ([]Task, error) {
	res, err := storageCall(a, ctx, "GetTasks", func(ctx context.Context, rt pb.RuntimeClient) (*pb.GetTasksResponse, error) {
		return rt.GetTasks(ctx, &pb.GetTasksRequest{AgentId: a.ID, RoomId: q.RoomID, EntityId: q.EntityID, WorldId: q.WorldID,
			Name: q.Name, Tags: q.Tags})
	})
	out := make([]Task, len(res.GetTasks()))
	for i, t := range res.GetTasks() {
		out[i] = taskFromProto(t)
	}
	return out, err
}

// UpdateTask changes what u sets of a task.
func (a *Agent) UpdateTask(ctx context.Context, id string, u TaskUpdate) error {
	_, err := storageCall(a, ctx, "UpdateTask", func(ctx context.Context, rt pb.RuntimeClient) (*pb.UpdateTaskResponse, error) {
		return rt.UpdateTask(ctx, taskUpdateToProto(a.ID, id, &u))
	})
	return err
}

// DeleteTask deletes a task.
func (a *Agent) DeleteTask(ctx context.Context, id string) (int64, error) {
	return a.deleteByID(ctx, "DeleteTask", id, func(rt pb.RuntimeClient) func(context.Context, *pb.DeleteByIDRequest, ...grpc.CallOption) (*pb.DeleteByIDResponse, error) {
		return rt.DeleteTask
	})
}

// GetLogs returns the agent's log entries, newest first.
func (a *Agent) GetLogs(ctx context.Context, q LogQuery) ([]LogEntry, error) {
	res, err := storageCall(a, ctx, "GetLogs", func(ctx context.Context, rt pb.RuntimeClient) (*pb.GetLogsResponse, error) {
		return rt.GetLogs(ctx, &pb.GetLogsRequest{AgentId: a.ID, RoomId: q.RoomID, EntityId: q.EntityID, Type: q.Type,
			Count: int32(q.Count), Offset: int32(q.Offset)})
	})
	out := make([]LogEntry, len(res.GetLogs()))
	for i, l := range res.GetLogs() {
		out[i] = logFromProto(l)
	}
	return out, err
}

// DeleteLog deletes a log entry.
func (a *Agent) DeleteLog(ctx context.Context, id string) (int64, error) {
	return a.deleteByID(ctx, "DeleteLog", id, func(rt pb.RuntimeClient) func(context.Context, *pb.DeleteByIDRequest, ...grpc.CallOption) (*pb.DeleteByIDResponse, error) {
		return rt.DeleteLog
	})
}

// GetEntitiesWithComponents is GetEntities with each entity's components
// attached (Components is empty, not nil, for an entity without any).
func (a *Agent) GetEntitiesWithComponents(ctx context.Context, ids ...string) ([]Entity, error) {
	res, err := storageCall(a, ctx, "GetEntities", func(ctx context.Context, rt pb.RuntimeClient) (*pb.GetEntitiesResponse, error) {
		return rt.GetEntities(ctx, &pb.GetEntitiesRequest{AgentId: a.ID, Ids: ids, IncludeComponents: true})
	})
	if err != nil {
		return nil, err
	}
	return entitiesFromProto(res, true), nil
}

// GetEntitiesForRoomWithComponents is GetEntitiesForRoom with each
// entity's components attached (elizaOS's getEntitiesForRoom(roomId,
// true)).
func (a *Agent) GetEntitiesForRoomWithComponents(ctx context.Context, roomID string) ([]Entity, error) {
	res, err := storageCall(a, ctx, "GetEntitiesForRoom", func(ctx context.Context, rt pb.RuntimeClient) (*pb.GetEntitiesResponse, error) {
		return rt.GetEntitiesForRoom(ctx, &pb.GetEntitiesForRoomRequest{AgentId: a.ID, RoomId: roomID, IncludeComponents: true})
	})
	if err != nil {
		return nil, err
	}
	return entitiesFromProto(res, true), nil
}

// SearchEntities finds the agent's entities by name, oldest first:
// names that contain q.NameContains in lower case, or equal one of q.Names.
func (a *Agent) SearchEntities(ctx context.Context, q EntitySearch) ([]Entity, error) {
	res, err := storageCall(a, ctx, "SearchEntities", func(ctx context.Context, rt pb.RuntimeClient) (*pb.GetEntitiesResponse, error) {
		return rt.SearchEntities(ctx, &pb.SearchEntitiesRequest{AgentId: a.ID, NameContains: validUTF8(q.NameContains),
			Names: validUTF8s(q.Names), Count: clampInt32(q.Count), IncludeComponents: q.WithComponents})
	})
	if err != nil {
		return nil, err
	}
	return entitiesFromProto(res, q.WithComponents), nil
}

// GetCachedEmbeddings returns the stored embeddings of the memories whose
// text is within q.Threshold edits of q.Text, closest first (elizaOS's
// legacy getCachedEmbeddings): a text embedded before need not be embedded
// again.
func (a *Agent) GetCachedEmbeddings(ctx context.Context, q CachedEmbeddingsQuery) ([]CachedEmbedding, error) {
	res, err := storageCall(a, ctx, "GetCachedEmbeddings", func(ctx context.Context, rt pb.RuntimeClient) (*pb.GetCachedEmbeddingsResponse, error) {
		return rt.GetCachedEmbeddings(ctx, cachedEmbeddingsQueryToProto(a.ID, &q))
	})
	if err != nil {
		return nil, err
	}
	out := make([]CachedEmbedding, len(res.GetEmbeddings()))
	for i, c := range res.GetEmbeddings() {
		out[i] = CachedEmbedding{MemoryID: c.GetMemoryId(), Embedding: c.GetEmbedding(), LevenshteinScore: int(c.GetLevenshteinScore())}
	}
	return out, nil
}

// AddParticipants makes entities participants of a room in one
// transaction and returns how many were not participants before.
func (a *Agent) AddParticipants(ctx context.Context, roomID string, entityIDs ...string) (int64, error) {
	res, err := storageCall(a, ctx, "AddParticipants", func(ctx context.Context, rt pb.RuntimeClient) (*pb.AddParticipantsResponse, error) {
		return rt.AddParticipants(ctx, &pb.AddParticipantsRequest{AgentId: a.ID, RoomId: roomID, EntityIds: entityIDs})
	})
	return res.GetAdded(), err
}

// UpsertRooms creates or replaces several rooms in one transaction.
func (a *Agent) UpsertRooms(ctx context.Context, rooms ...Room) error {
	req := &pb.UpsertRoomsRequest{AgentId: a.ID, Rooms: make([]*pb.Room, len(rooms))}
	for i := range rooms {
		req.Rooms[i] = roomToProto(&rooms[i])
	}
	_, err := storageCall(a, ctx, "UpsertRooms", func(ctx context.Context, rt pb.RuntimeClient) (*pb.UpsertRoomsResponse, error) {
		return rt.UpsertRooms(ctx, req)
	})
	return err
}

// DeleteRoomsByWorld deletes the rooms of a world, with their participants,
// memories and logs, and keeps the world.
func (a *Agent) DeleteRoomsByWorld(ctx context.Context, worldID string) (int64, error) {
	return a.deleteByID(ctx, "DeleteRoomsByWorld", worldID, func(rt pb.RuntimeClient) func(context.Context, *pb.DeleteByIDRequest, ...grpc.CallOption) (*pb.DeleteByIDResponse, error) {
		return rt.DeleteRoomsByWorld
	})
}
