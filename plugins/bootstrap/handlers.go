package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/google/uuid"
)

// The events bootstrap handles besides MESSAGE_RECEIVED, named as elizaOS
// names them.
const (
	EventVoiceMessageReceived = "VOICE_MESSAGE_RECEIVED"
	EventChannelCleared       = sdk.EventChannelCleared
	EventWorldConnected       = "WORLD_CONNECTED"
	EventEntityLeft           = "ENTITY_LEFT"
	EventEntityUpdated        = "ENTITY_UPDATED"
	EventPostGenerated        = "POST_GENERATED"
)

// Entity statuses kept in an entity's metadata.status.
const (
	entityActive   = "ACTIVE"
	entityInactive = "INACTIVE"
)

// eventHandlers are the plugin's event subscriptions.
//
// Payloads are elizaOS's (the event's Payload, its JSON object, with the
// message of the message events in Event.Message or in payload.message).
// Ids in a payload are taken as the agent's when they are UUIDs, as
// elizaOS's platform plugins send them; any other id is a platform's and is
// made the agent's with createUniqueUuid, as the host does for incoming
// messages.
func (b *bootstrap) eventHandlers() []sdk.EventHandler {
	return []sdk.EventHandler{
		{Type: sdk.EventMessageReceived, Handle: b.handleMessage},
		{Type: EventVoiceMessageReceived, Handle: b.handleVoiceMessage},
		{Type: sdk.EventReactionReceived, Handle: b.handleReaction},
		{Type: sdk.EventMessageDeleted, Handle: b.handleMessageDeleted},
		{Type: EventChannelCleared, Handle: b.handleChannelCleared},
		{Type: sdk.EventWorldJoined, Handle: b.handleWorld},
		{Type: EventWorldConnected, Handle: b.handleWorld},
		{Type: sdk.EventEntityJoined, Handle: b.handleEntity},
		{Type: EventEntityUpdated, Handle: b.handleEntity},
		{Type: EventEntityLeft, Handle: b.handleEntityLeft},
		{Type: EventPostGenerated, Handle: b.handlePost},
	}
}

// agentScoped returns a payload's id as the agent's: a UUID as it is, any
// other string through createUniqueUuid.
func agentScoped(a *sdk.Agent, id string) string {
	id = strings.TrimSpace(id)
	switch {
	case id == "":
		return ""
	case sdk.IsUUID(id):
		return strings.ToLower(id)
	}
	return sdk.CreateUniqueUUID(a.ID, id)
}

// decodePayload reads the event's payload into v, through JSON.
func decodePayload(ev *sdk.Event, v any) error {
	if len(ev.Payload) == 0 {
		return nil
	}
	if e, ok := ev.Payload["_decodeError"].(string); ok {
		return fmt.Errorf("the payload is not a JSON object: %s", e)
	}
	raw, err := json.Marshal(ev.Payload)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// eventMessage returns the message of a message event: Event.Message, or
// else payload.message. Its ids are made the agent's.
func eventMessage(a *sdk.Agent, ev *sdk.Event) (*sdk.Memory, error) {
	m := ev.Message
	if m == nil {
		var p struct {
			Message *sdk.Memory `json:"message"`
		}
		if err := decodePayload(ev, &p); err != nil {
			return nil, fmt.Errorf("%s: %w", ev.Type, err)
		}
		m = p.Message
	}
	if m == nil {
		return nil, fmt.Errorf("%s without a message", ev.Type)
	}
	c := *m
	c.ID, c.EntityID, c.RoomID, c.WorldID = agentScoped(a, c.ID), agentScoped(a, c.EntityID), agentScoped(a, c.RoomID), agentScoped(a, c.WorldID)
	c.Content.InReplyTo = agentScoped(a, c.Content.InReplyTo)
	if c.Content.Source == "" {
		c.Content.Source = ev.Source
	}
	return &c, nil
}

// handleReaction stores a reaction (an emoji on a message, as a memory of
// its own) among the room's messages. A reaction delivered twice is stored
// once.
func (b *bootstrap) handleReaction(ctx context.Context, a *sdk.Agent, ev *sdk.Event) error {
	m, err := eventMessage(a, ev)
	if err != nil {
		return err
	}
	if m.RoomID == "" || m.EntityID == "" {
		return fmt.Errorf("%s: the reaction needs a roomId and an entityId", ev.Type)
	}
	m.AgentID = a.ID
	m.Table = sdk.TableMessages
	if m.CreatedAt == 0 {
		m.CreatedAt = time.Now().UnixMilli()
	}
	_, created, err := storage.For(a).CreateMemory(ctx, m, sdk.TableMessages, false)
	b.forgetWindow(a, m.RoomID)
	if err != nil {
		return fmt.Errorf("store the reaction: %w", err)
	}
	if !created {
		a.Logger(ctx).Debug("reaction already stored", "memory", m.ID)
	}
	return nil
}

// handleMessageDeleted deletes the memory of a message the platform
// deleted.
func (b *bootstrap) handleMessageDeleted(ctx context.Context, a *sdk.Agent, ev *sdk.Event) error {
	m, err := eventMessage(a, ev)
	if err != nil {
		return err
	}
	if m.ID == "" {
		return fmt.Errorf("%s: the message has no id", ev.Type)
	}
	err = storage.For(a).DeleteMemory(ctx, m.ID)
	// The event may not say the message's room.
	b.forgetWindows(a)
	if err != nil {
		return fmt.Errorf("delete message %s: %w", m.ID, err)
	}
	return nil
}

// handleChannelCleared deletes the messages and action results of a room
// whose channel was cleared (payload roomId, or channelId). Other memories
// of the room (facts, documents) stay, as in elizaOS.
func (b *bootstrap) handleChannelCleared(ctx context.Context, a *sdk.Agent, ev *sdk.Event) error {
	var p struct {
		RoomID    string `json:"roomId"`
		ChannelID string `json:"channelId"`
	}
	if err := decodePayload(ev, &p); err != nil {
		return fmt.Errorf("%s: %w", ev.Type, err)
	}
	room := agentScoped(a, firstNonEmpty(p.RoomID, p.ChannelID))
	if room == "" {
		return fmt.Errorf("%s without a roomId or channelId", ev.Type)
	}
	n, err := storage.For(a).DeleteAllMemories(ctx, room, sdk.TableMessages)
	defer b.forgetWindow(a, room)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, sdk.ErrUnavailable) {
			return fmt.Errorf("clear room %s: %w", room, err)
		}
		// A runtime without the bulk delete: one by one, as elizaOS does.
		a.Logger(ctx).Debug("bulk delete failed; deleting one by one", "room", room, "error", err)
		if n, err = deleteRoomMessages(ctx, a, room); err != nil {
			return fmt.Errorf("clear room %s: %w", room, err)
		}
	}
	// What the agent's actions did in the room goes with its messages.
	if m, err := storage.For(a).DeleteAllMemories(ctx, room, sdk.TableActionResults); err == nil {
		n += m
	} else {
		a.Logger(ctx).Warn("clearing the room's action results failed", "room", room, "error", err)
	}
	if n == 0 {
		// The host announces the rooms it cleared itself: nothing is left.
		a.Logger(ctx).Debug("room cleared", "room", room, "deleted", n)
		return nil
	}
	a.Logger(ctx).Info("room cleared", "room", room, "deleted", n)
	return nil
}

func deleteRoomMessages(ctx context.Context, a *sdk.Agent, room string) (int64, error) {
	var n int64
	for {
		ms, err := storage.For(a).GetMemories(ctx, storage.MemoryQuery{Table: sdk.TableMessages, RoomID: room, Count: 500, OmitEmbeddings: true})
		if err != nil {
			return n, err
		}
		if len(ms) == 0 {
			return n, nil
		}
		before := n
		for _, m := range ms {
			if m.ID == "" {
				continue
			}
			if err := storage.For(a).DeleteMemory(ctx, m.ID); err != nil {
				return n, err
			}
			n++
		}
		if n == before {
			return n, nil
		}
	}
}

// handleVoiceMessage runs a transcribed voice message through the
// MESSAGE_RECEIVED pipeline. Its replies go where the payload's target
// says, or else back to the message's room on its source: the run was
// started by the plugin that emitted the event, not by the host, so there
// is no host run to answer through unless the emitter named one.
func (b *bootstrap) handleVoiceMessage(ctx context.Context, a *sdk.Agent, ev *sdk.Event) error {
	m, err := eventMessage(a, ev)
	if err != nil {
		return err
	}
	var p struct {
		Target *sdk.Target `json:"target"`
	}
	_ = decodePayload(ev, &p)
	t := b.defaultTarget(ctx, a, firstNonEmpty(m.Content.Source, ev.Source), m.RoomID, m.EntityID)
	if p.Target != nil && p.Target.Source != "" {
		t = *p.Target
	}
	e := *ev
	e.Message = m
	if e.RunID == "" {
		e.RunID = uuid.NewString()
	}
	if e.Source == "" {
		e.Source = m.Content.Source
	}
	key := a.ID + "\x00" + e.RunID
	b.eventRuns.Store(key, t)
	defer b.eventRuns.Delete(key)
	return b.handleMessage(ctx, a, &e)
}

// defaultTarget is where a message to a room goes: the room's channel on
// the source.
func (b *bootstrap) defaultTarget(ctx context.Context, a *sdk.Agent, source, roomID, entityID string) sdk.Target {
	t := sdk.Target{Source: source, RoomID: roomID, EntityID: entityID}
	if room, err := cachedRoom(ctx, a, roomID); err == nil && room != nil {
		t.ChannelID, t.ServerID = room.ChannelID, room.ServerID
		t.Source = firstNonEmpty(t.Source, room.Source)
	}
	return t
}

// respond sends a stored reply of a run: through the host's run (the
// source the message came from), or, for a run an event started, to the
// event's target.
func (b *bootstrap) respond(ctx context.Context, a *sdk.Agent, runID string, reply *sdk.Memory) error {
	v, evRun := b.eventRuns.Load(a.ID + "\x00" + runID)
	_, err := a.Respond(ctx, runID, reply.Content, reply.ID)
	if err == nil || !evRun || !errors.Is(err, sdk.ErrNotFound) {
		return err
	}
	_, err = a.SendMessage(ctx, v.(sdk.Target), reply.Content)
	return err
}
