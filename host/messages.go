package host

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/internal/memtrim"
	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/google/uuid"
)

// run is one message being handled: where replies go and who waits.
type run struct {
	id      string
	agent   *AgentRuntime
	source  string
	target  *pb.Target
	message *pb.Memory

	mu      sync.Mutex
	replies []reply
	// duplicate: the handler found the message handled already (a
	// RUN_ENDED of this run said so).
	duplicate bool
	// answered is closed when the run's only handler sent its last reply
	// (RespondRequest.last): its replies are complete.
	answered     chan struct{}
	answeredOnce sync.Once
}

// lastReply notes that the run's handler sent its last reply.
func (r *run) lastReply() {
	r.answeredOnce.Do(func() { close(r.answered) })
}

// noteRunEnded marks a run in flight as a duplicate delivery when its
// RUN_ENDED says so: reason "duplicate…" (bootstrap's "duplicate
// delivery") or "duplicate": true.
func (a *AgentRuntime) noteRunEnded(req *pb.HandleEventRequest) {
	r := a.d.runs.get(req.GetRunId())
	if r == nil || r.agent != a {
		return
	}
	var p struct {
		Reason    string `json:"reason"`
		Duplicate bool   `json:"duplicate"`
	}
	if json.Unmarshal(req.GetPayloadJson(), &p) != nil {
		return
	}
	if p.Duplicate || strings.HasPrefix(strings.ToLower(p.Reason), "duplicate") {
		r.mu.Lock()
		r.duplicate = true
		r.mu.Unlock()
	}
}

// replyMemory is the agent's message of the run's room that holds c, in
// reply to the run's message.
func (r *run) replyMemory(c *pb.Content) *pb.Memory {
	return contract.ReplyMemory(contract.NewID(), r.agent.ID, r.message, c)
}

// reply is one answer of a run, with the id of its stored memory.
type reply struct {
	id      string
	content *pb.Content
}

// receive maps an incoming message to the agent's ids, makes sure the
// world, room and sender exist, and emits MESSAGE_RECEIVED.
func (a *AgentRuntime) receive(ctx context.Context, in *incoming) (*pb.ReceiveMessageResponse, []reply, error) {
	if st, _ := a.Status(); st != AgentRunning {
		return nil, nil, fmt.Errorf("agent %s is %s, not running", a.Name, st)
	}
	// Until its answer: what the handler does after it sends its last
	// reply overlaps the next message of a conversation, and must not
	// count as a second one in flight (procs.go).
	a.d.procs.enter()
	defer a.d.procs.leave()
	memtrim.Wake()
	p, c, err := a.db(ctx)
	if err != nil {
		return nil, nil, err
	}
	conn := &pb.EnsureConnectionRequest{AgentId: a.ID,
		Entity: &pb.Entity{Id: in.entityID, Names: in.names, MetadataJson: in.entityMeta, AgentId: a.ID},
		Room:   &pb.Room{Id: in.roomID, Name: in.roomName, AgentId: a.ID, Source: in.source, Type: in.channelType, ChannelId: in.channelID, ServerId: in.serverID, WorldId: in.worldID},
		World:  &pb.World{Id: in.worldID, Name: in.worldName, AgentId: a.ID, ServerId: in.serverID},
	}
	if key, fresh := a.ensured.check(conn); !fresh {
		dctx, cancel := ensureDeadline(ctx, contract.DefaultCallTimeout)
		_, err = c.db.EnsureConnection(dctx, conn)
		cancel()
		if err != nil {
			return nil, nil, fmt.Errorf("store the sender and room: %w", p.callErr(c, "EnsureConnection", err))
		}
		a.ensured.remember(key)
	}
	content := in.content
	if content == nil {
		content = &pb.Content{}
	}
	content.Source = in.source
	if content.GetChannelType() == "" {
		content.ChannelType = in.channelType
	}
	msg := &pb.Memory{Id: in.messageID, EntityId: in.entityID, AgentId: a.ID, RoomId: in.roomID, WorldId: in.worldID,
		CreatedAt: in.createdAt, Content: content, Table: sdk.TableMessages}
	if in.authorIsBot {
		// Handlers see who wrote it: agents do not answer bots by default.
		msg.MetadataJson = mustJSON(map[string]any{"authorIsBot": true})
	}
	r := &run{id: uuid.NewString(), agent: a, source: in.source, message: msg, answered: make(chan struct{}),
		target: &pb.Target{Source: in.source, RoomId: in.roomID, ChannelId: in.channelID, ServerId: in.serverID, EntityId: in.entityID, ThreadId: in.threadID}}
	a.d.runs.put(r)
	finish := a.d.runStarted(r)
	end := func(err error) {
		finish(err)
		a.states.Drop(msg.GetId())
		a.d.runs.remove(r.id)
	}
	res := &pb.ReceiveMessageResponse{MemoryId: msg.GetId(), RoomId: in.roomID, WorldId: in.worldID, EntityId: in.entityID, RunId: r.id}
	if len(a.registry().Events[sdk.EventMessageReceived]) == 0 {
		a.log.Warn("no plugin of this agent handles MESSAGE_RECEIVED; the message is ignored (add the bootstrap plugin)")
		end(nil)
		return res, nil, nil
	}
	// The handler may send its last reply before it returns: the caller
	// has its answer then, and the handler finishes on its own, no longer
	// cut short by the caller going away.
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if dl, ok := ctx.Deadline(); ok {
		cancel()
		hctx, cancel = context.WithDeadline(context.WithoutCancel(ctx), dl)
	}
	defer context.AfterFunc(ctx, cancel)()
	handled := make(chan error, 1)
	go func() {
		err := a.emit(hctx, &pb.HandleEventRequest{Type: sdk.EventMessageReceived, RunId: r.id, Source: in.source, Message: msg})
		cancel()
		end(err)
		handled <- err
	}()
	// answered closes only on the last reply of the event's one handler
	// (respond, onlyHandler).
	select {
	case err := <-handled:
		if err != nil {
			return nil, nil, fmt.Errorf("handle message: %w", err)
		}
	case <-r.answered:
		go func() {
			if err := <-handled; err != nil {
				a.log.Warn("handling a message failed after its last reply was sent", "run", r.id, "error", err)
			}
		}()
	}
	r.mu.Lock()
	replies := r.replies
	res.Duplicate = r.duplicate
	r.mu.Unlock()
	for _, rp := range replies {
		res.Replies = append(res.Replies, rp.content)
	}
	return res, replies, nil
}

// respond delivers a reply of a run: to its platform through the plugin
// serving the run's source, and to whoever waits for the run. A reply the
// caller did not store (no memory id: an action answering through the
// SDK's Respond, elizaOS's callback) is stored here first, among the
// room's messages, as elizaOS's platforms store what a callback sends: so
// the room's history holds every reply a user saw, once, with its id.
func (a *AgentRuntime) respond(ctx context.Context, req *pb.RespondRequest) (*pb.RespondResponse, error) {
	r := a.d.runs.get(req.GetRunId())
	if r == nil || r.agent != a {
		return nil, fmt.Errorf("respond: run %q of agent %s is not in flight (it finished or never existed): %w", req.GetRunId(), a.Name, sdk.ErrNotFound)
	}
	id := req.GetMemoryId()
	if id == "" && r.message.GetRoomId() != "" {
		m := r.replyMemory(req.GetContent())
		if err := a.createMemory(ctx, m); err != nil {
			return nil, fmt.Errorf("respond: store the reply: %w", err)
		}
		id = m.GetId()
	}
	r.mu.Lock()
	r.replies = append(r.replies, reply{id: id, content: req.GetContent()})
	r.mu.Unlock()
	res := &pb.RespondResponse{}
	if id != "" {
		res.MessageIds = []string{id}
	}
	if p := a.registry().Sources[r.source]; p != nil {
		sent, err := a.send(ctx, p, r.target, req.GetContent())
		if err != nil {
			return nil, err
		}
		res.MessageIds = sent
	}
	a.d.publish(a, r, req.GetContent())
	if req.GetLast() && a.onlyHandler(callerPlugin(ctx)) {
		r.lastReply()
	}
	return res, nil
}

// onlyHandler reports whether p is the one plugin of the agent that
// handles MESSAGE_RECEIVED: only its last reply completes a run's
// replies. Another plugin (an action's, say) cannot cut the answer short.
func (a *AgentRuntime) onlyHandler(p *PluginProcess) bool {
	subs := a.registry().Events[sdk.EventMessageReceived]
	return p != nil && len(subs) == 1 && subs[0] == p
}

// sendMessage routes content to the plugin that serves the target's source.
func (a *AgentRuntime) sendMessage(ctx context.Context, req *pb.SendMessageRequest) (*pb.SendMessageResponse, error) {
	src := req.GetTarget().GetSource()
	p := a.registry().Sources[src]
	if p == nil {
		return nil, fmt.Errorf("send message: no plugin of agent %s sends to source %q: %w", a.Name, src, sdk.ErrInvalid)
	}
	ids, err := a.send(ctx, p, req.GetTarget(), req.GetContent())
	if err != nil {
		return nil, err
	}
	return &pb.SendMessageResponse{MessageIds: ids}, nil
}

func (a *AgentRuntime) send(ctx context.Context, p *PluginProcess, t *pb.Target, content *pb.Content) ([]string, error) {
	ctx, cancel := ensureDeadline(ctx, contract.DefaultCallTimeout)
	defer cancel()
	res, err := p.sendOnce(ctx, &pb.SendMessageRequest{AgentId: a.ID, Target: t, Content: content, DeliveryId: uuid.NewString()})
	if err != nil {
		return nil, err
	}
	return res.GetMessageIds(), nil
}

// incoming is a message with its ids already mapped to the agent's.
type incoming struct {
	source, messageID, entityID, roomID, worldID string
	channelID, serverID, threadID                string
	names                                        []string
	entityMeta                                   []byte
	roomName, worldName, channelType             string
	createdAt                                    int64
	content                                      *pb.Content
	// authorIsBot: the platform says a bot or another agent wrote it.
	authorIsBot bool
}

// mapIncoming turns a connector's platform ids into the agent's ids with
// elizaOS's createUniqueUuid, so the same user in the same chat is the same
// entity and room across restarts.
func (a *AgentRuntime) mapIncoming(req *pb.ReceiveMessageRequest) *incoming {
	in := &incoming{source: req.GetSource(), channelID: req.GetChannelId(), serverID: req.GetServerId(), threadID: req.GetThreadId(),
		roomName: req.GetRoomName(), worldName: req.GetWorldName(), channelType: req.GetChannelType(), createdAt: req.GetCreatedAt(),
		content: req.GetContent()}
	ids := contract.IncomingIDs(a.ID, req)
	in.entityID, in.roomID, in.worldID, in.messageID = ids.Entity, ids.Room, ids.World, ids.Message
	if in.messageID == "" {
		in.messageID = contract.NewID()
	}
	for _, n := range []string{req.GetDisplayName(), req.GetUserName()} {
		if n != "" && !contains(in.names, n) {
			in.names = append(in.names, n)
		}
	}
	meta := map[string]any{}
	if req.GetSource() != "" {
		m := map[string]any{"id": req.GetUserId(), "userName": req.GetUserName(), "name": req.GetDisplayName()}
		if req.GetAuthorIsBot() {
			m["isBot"] = true
		}
		meta[req.GetSource()] = m
	}
	in.authorIsBot = req.GetAuthorIsBot()
	in.entityMeta = mustJSON(meta)
	if in.createdAt == 0 {
		in.createdAt = time.Now().UnixMilli()
	}
	if in.content != nil && ids.InReplyTo != "" {
		in.content.InReplyTo = ids.InReplyTo
	}
	return in
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func ensureDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// runRegistry holds the runs in flight, so Respond finds where to send.
type runRegistry struct {
	mu sync.Mutex
	m  map[string]*run
}

func (r *runRegistry) put(x *run) {
	r.mu.Lock()
	r.m[x.id] = x
	r.mu.Unlock()
}

func (r *runRegistry) get(id string) *run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[id]
}

func (r *runRegistry) remove(id string) {
	r.mu.Lock()
	delete(r.m, id)
	r.mu.Unlock()
}

// publish is where live listeners (the WebSocket) hear replies.
func (d *Daemon) publish(a *AgentRuntime, r *run, c *pb.Content) { d.api.reply(a, r, c) }
