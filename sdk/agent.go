package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
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

	rt     pb.RuntimeClient
	db     pb.DatabaseClient
	plugin *pluginScope
	// pluginSet names the agent's plugins (ConfigureRequest.plugin_set):
	// agents that share it share DescribeAgent's answer.
	pluginSet string
}

// ErrNoRuntime is returned by Agent methods when the plugin was never given
// a Runtime (a handler called directly in a unit test).
var ErrNoRuntime = errors.New("no host runtime: the plugin was not started by agenthost")

// Setting returns a resolved setting as given, or "" if it is not set (its
// Default is not applied: [Agent.Config] reads typed values with it). The
// host sends only the settings the plugin declares in [Plugin.Settings];
// reading another logs a warning once, since it can only ever be "".
func (a *Agent) Setting(key string) string {
	if a.plugin != nil {
		a.plugin.check(key)
	}
	return a.Settings[key]
}

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

// callErr turns a gRPC status into an error of its kind (see errors.go)
// that names the call.
func callErr(method string, err error) error { return contract.FromStatus("runtime "+method, err) }

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
	ctx, cancel := withDeadline(ctx, contract.DefaultRunTimeout)
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
	ctx, cancel := withDeadline(ctx, contract.DefaultRunTimeout)
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
// When every provider selected is this plugin's own, the state is composed
// here in the plugin's process, by the host's rules (see compose.go);
// otherwise the host composes it, calling each plugin whose providers it
// selects.
func (a *Agent) ComposeState(ctx context.Context, msg *Memory, opts ComposeOptions) (*State, error) {
	rt, err := a.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDeadline(ctx, contract.DefaultCallTimeout)
	defer cancel()
	if st, ok := a.composeLocally(ctx, msg, opts); ok {
		return st, nil
	}
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
	ctx, cancel := withDeadline(ctx, contract.DefaultRunTimeout)
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
	ctx, cancel := withDeadline(ctx, contract.DefaultRunTimeout)
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

// EmitEvent hands an event to the plugins subscribed to its type, and to
// the agent's timeline. Inside an event handler (ctx is the handler's, or
// derived from it), an event no plugin of the agent subscribes to is kept
// and handed back with the handler's answer: no call to the host, and
// the timeline has it all the same.
func (a *Agent) EmitEvent(ctx context.Context, ev Event) error {
	if a.deferEmit(ctx, ev) {
		return nil
	}
	return a.emitCall(ctx, &pb.EmitEventRequest{AgentId: a.ID, Type: ev.Type, Source: ev.Source,
		Message: memoryToProto(ev.Message), PayloadJson: encodeMap(ev.Payload), RunId: ev.RunID})
}

// emitCall sends one event to the host.
func (a *Agent) emitCall(ctx context.Context, req *pb.EmitEventRequest) error {
	rt, err := a.client()
	if err != nil {
		return err
	}
	ctx, cancel := withDeadline(ctx, contract.DefaultCallTimeout)
	defer cancel()
	_, err = rt.EmitEvent(ctx, req)
	return callErr("EmitEvent "+req.GetType(), err)
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
	ctx, cancel := withDeadline(ctx, contract.DefaultRunTimeout)
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
// elizaOS callback). memoryID names the reply's memory if the caller
// stored it; with "" the host stores it among the room's messages (as
// elizaOS's platforms store what a callback sends), so an action that
// answers with Respond needs nothing else for its reply to be in the
// room's history.
func (a *Agent) Respond(ctx context.Context, runID string, c Content, memoryID string) ([]string, error) {
	return a.respond(ctx, runID, c, memoryID, false)
}

// RespondLast is Respond for the run's last reply: the handler sends
// nothing more for the run. The host can then answer whoever waits for
// the run's replies (an HTTP client) at once, while the handler finishes
// what it does after the reply.
func (a *Agent) RespondLast(ctx context.Context, runID string, c Content, memoryID string) ([]string, error) {
	return a.respond(ctx, runID, c, memoryID, true)
}

func (a *Agent) respond(ctx context.Context, runID string, c Content, memoryID string, last bool) ([]string, error) {
	rt, err := a.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDeadline(ctx, contract.DefaultCallTimeout)
	defer cancel()
	res, err := rt.Respond(ctx, &pb.RespondRequest{AgentId: a.ID, RunId: runID, Content: contentToProto(&c), MemoryId: memoryID, Last: last})
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
	ctx, cancel := withDeadline(ctx, contract.DefaultCallTimeout)
	defer cancel()
	res, err := rt.SendMessage(ctx, &pb.SendMessageRequest{AgentId: a.ID, Target: targetToProto(&t), Content: contentToProto(&c)})
	if err != nil {
		return nil, callErr("SendMessage", err)
	}
	return res.GetMessageIds(), nil
}
