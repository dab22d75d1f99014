package host

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// Idempotent messages. A client that may send a message again (its request
// timed out, its connection dropped) names the message with a key: the
// Idempotency-Key header of POST /api/agents/{agentId}/messages, or the
// clientMessageId of a WebSocket message frame. A key belongs to an agent
// and a user name, and the two ways share them.
//
// Two things make a retry safe. The message's id is derived from the key,
// so a second delivery reaches the bootstrap plugin as the message it has
// stored already, which it does not answer again: this holds across a
// restart of the daemon. And the daemon remembers recent outcomes: a retry
// while the first delivery is in flight waits for it, and a retry after it
// gets the same answer (the same reply ids); one that comes after the
// daemon forgot (a restart, or an hour) gets the replies read back from the
// room's memories. A delivery that failed is forgotten at once, so the
// retry is handled anew (as a duplicate of the stored message if the
// failure came after the message was stored).

const (
	maxIdempotencyKey = 255
	// idempotencyTTL and maxIdempotent bound what is remembered; past
	// them the stored replies answer a retry.
	idempotencyTTL = time.Hour
	maxIdempotent  = 1000
)

// ErrIdempotencyKeyReused: a key came back with another message.
var ErrIdempotencyKeyReused = errors.New("idempotency key reused for another message")

type idemKey struct{ agent, user, key string }

// messageResult is what a delivered message answers.
type messageResult struct {
	MessageID string
	RoomID    string
	RunID     string
	Replies   []replyJSON
	Duplicate bool
	// Restored: the replies were read back from the room, not made now.
	Restored bool
}

// data is the result as the HTTP API's envelope carries it.
func (m *messageResult) data() map[string]any {
	out := map[string]any{"messages": m.Replies, "roomId": m.RoomID, "messageId": m.MessageID}
	if m.Duplicate {
		// The message was handled before (delivered twice): no replies now.
		out["duplicate"] = true
	}
	return out
}

// idemCall is one keyed delivery: in flight until done is closed, then
// result is set, or nil when it failed.
type idemCall struct {
	fingerprint string
	done        chan struct{}
	result      *messageResult
	finished    time.Time
}

// idemStore remembers keyed deliveries: those in flight, and the recent
// results, oldest first in order for eviction.
type idemStore struct {
	mu    sync.Mutex
	m     map[idemKey]*idemCall
	order []idemKey
}

func newIdemStore() *idemStore { return &idemStore{m: map[idemKey]*idemCall{}} }

// begin returns the delivery of a key and whether the caller makes it (it
// must then call finish). A key in use for another message is an error.
func (s *idemStore) begin(k idemKey, fingerprint string) (*idemCall, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evict(time.Now())
	if c := s.m[k]; c != nil {
		if c.fingerprint != fingerprint {
			return nil, false, fmt.Errorf("key %q was used by %s for another message to this agent (other text or room); use a new key for a new message: %w",
				safeText(k.key, 60), safeText(k.user, 60), ErrIdempotencyKeyReused)
		}
		return c, false, nil
	}
	c := &idemCall{fingerprint: fingerprint, done: make(chan struct{})}
	s.m[k] = c
	return c, true, nil
}

// finish records the outcome of a delivery begun here; a failed one (nil
// result) is forgotten, so that a retry makes it again.
func (s *idemStore) finish(k idemKey, c *idemCall, res *messageResult) {
	s.mu.Lock()
	c.result, c.finished = res, time.Now()
	if res == nil {
		delete(s.m, k)
	} else {
		s.order = append(s.order, k)
	}
	s.mu.Unlock()
	close(c.done)
}

// evict forgets finished deliveries past the TTL, and the oldest while
// there are too many; those in flight stay.
func (s *idemStore) evict(now time.Time) {
	n := 0
	for _, k := range s.order {
		c := s.m[k]
		if c == nil || c.result == nil {
			n++ // forgotten already
			continue
		}
		if now.Sub(c.finished) < idempotencyTTL && len(s.m) <= maxIdempotent {
			break
		}
		delete(s.m, k)
		n++
	}
	s.order = slices.Delete(s.order, 0, n)
}

// await waits for a delivery made by another request. It returns its
// result, or nil when that delivery failed (the caller begins again).
func (c *idemCall) await(ctx context.Context) (*messageResult, error) {
	select {
	case <-c.done:
		return c.result, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// idempotencyKeyOK checks a client's key: 1 to max visible ASCII
// characters, as the Idempotency-Key header's drafts have it.
func idempotencyKeyOK(key string, max int) error {
	if key == "" || len(key) > max {
		return fmt.Errorf("must be 1 to %d characters, got %d", max, len(key))
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return fmt.Errorf("must be visible ASCII characters (letters, digits, punctuation), got %q", safeText(key, 60))
		}
	}
	return nil
}

// keyedMessageID is the id of the message a key names: the same for every
// delivery of it, in this process or the next.
func keyedMessageID(a *AgentRuntime, user, key string) string {
	return sdk.CreateUniqueUUID(a.ID, "api-message:"+user+"\n"+key)
}

// deliverOnce delivers a keyed message (see the top of this file): it
// returns the result, and whether it is a replay of an earlier delivery.
// first is called, once, when this call is the one that delivers.
func (d *Daemon) deliverOnce(ctx context.Context, a *AgentRuntime, in *incoming, key string, userName string,
	first func(*incoming)) (*messageResult, bool, error) {
	k := idemKey{agent: a.ID, user: userName, key: key}
	fp := in.roomID + "\n" + in.content.GetText()
	for {
		c, mine, err := d.api.idem.begin(k, fp)
		if err != nil {
			return nil, false, err
		}
		if !mine {
			res, err := c.await(ctx)
			if err != nil {
				return nil, false, err
			}
			if res != nil {
				return res, true, nil
			}
			continue // that delivery failed: make it again
		}
		if first != nil {
			first(in)
		}
		res, err := d.deliver(ctx, a, in)
		if err == nil && res.Duplicate && d.cl == nil {
			// (In a cluster the agent's node did this.)
			// Delivered by an earlier process, or before a failure: the
			// replies it got are in the room.
			res.Replies = d.storedReplies(ctx, a, in.roomID, in.messageID)
			res.Duplicate = len(res.Replies) == 0
			res.Restored = !res.Duplicate
		}
		if err != nil {
			res = nil
		}
		d.api.idem.finish(k, c, res)
		return res, false, err
	}
}

// deliver hands a message to the agent and shapes what it answered.
func (d *Daemon) deliver(ctx context.Context, a *AgentRuntime, in *incoming) (*messageResult, error) {
	if d.cl != nil {
		return d.clusterDeliver(ctx, a, in)
	}
	return d.deliverLocal(ctx, a, in)
}

// deliverLocal hands a message to an agent that runs here.
func (d *Daemon) deliverLocal(ctx context.Context, a *AgentRuntime, in *incoming) (*messageResult, error) {
	res, replies, err := a.receive(ctx, in)
	if err != nil {
		return nil, err
	}
	out := &messageResult{MessageID: in.messageID, RoomID: in.roomID, RunID: res.GetRunId(), Replies: []replyJSON{}, Duplicate: res.GetDuplicate()}
	for _, rp := range replies {
		actions := rp.content.GetActions()
		if actions == nil {
			actions = []string{}
		}
		out.Replies = append(out.Replies, replyJSON{ID: rp.id, Text: rp.content.GetText(), Actions: actions})
	}
	return out, nil
}

// storedReplies reads back the agent's replies to a message from its room,
// oldest first.
func (d *Daemon) storedReplies(ctx context.Context, a *AgentRuntime, roomID, messageID string) []replyJSON {
	out, _ := d.storedAnswer(ctx, a, roomID, messageID)
	return out
}

// storedAnswer is storedReplies, and whether the agent recorded any
// answer at all (a reply, or the decision not to answer).
func (d *Daemon) storedAnswer(ctx context.Context, a *AgentRuntime, roomID, messageID string) ([]replyJSON, bool) {
	out := []replyJSON{}
	recorded := false
	p, c, err := a.db(ctx)
	if err != nil {
		return out, true
	}
	res, err := c.db.GetMemories(ctx, &pb.GetMemoriesRequest{AgentId: a.ID, RoomId: roomID, Table: sdk.TableMessages, Count: 200})
	if err != nil {
		a.log.Warn("could not read the replies to a message sent again", "message", messageID, "error", p.callErr(c, "GetMemories", err))
		return out, true
	}
	mems := res.GetMemories()
	for i := len(mems) - 1; i >= 0; i-- {
		m := mems[i]
		if m.GetEntityId() == a.ID && m.GetContent().GetInReplyTo() == messageID {
			recorded = true
		}
		if m.GetEntityId() == a.ID && m.GetContent().GetInReplyTo() == messageID && !ignored(m.GetContent()) {
			actions := m.GetContent().GetActions()
			if actions == nil {
				actions = []string{}
			}
			out = append(out, replyJSON{ID: m.GetId(), Text: m.GetContent().GetText(), Actions: actions})
		}
	}
	return out, recorded
}

// ignored is the record of a decision not to answer, which is no reply.
func ignored(c *pb.Content) bool {
	return c.GetText() == "" && slices.Equal(c.GetActions(), []string{"IGNORE"})
}
