package bootstrap

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
)

// A room's recent messages are what every message's state starts from:
// 32 of them read through the host from the database plugin, decoded
// twice on the way, for a conversation that this plugin mostly wrote
// itself (the messages it stored, the replies the host stored for it).
// A window keeps the last read of a room for lookupTTL, and this plugin's
// own writes to the room go into it as they are made, so that a message
// right after another reads nothing. Like the other reads reused for a
// moment (lookup.go), a message another plugin stored in the room on its
// own shows within lookupTTL. What may have changed the room in ways the
// window cannot follow (an action's replies, a reaction, a deletion, a
// cleared channel: the host announces those made over its API with
// MESSAGE_DELETED and CHANNEL_CLEARED) drops it.

// maxWindows bounds the windows an agent keeps; past it, the expired ones
// go, then all.
const maxWindows = 64

// roomWindow is a room's latest messages, newest first, without their
// embeddings, as read at readAt with this plugin's writes since.
type roomWindow struct {
	msgs   []sdk.Memory
	count  int
	readAt time.Time
	// forgets counts the writes to the room this plugin cannot follow: a
	// read during which one was made is not kept.
	forgets uint64
	// reading counts the reads of the room under way; while there are,
	// the messages this plugin stores are kept in stored too, and each
	// read adds the ones stored since it began to what it read (which may
	// hold them or not).
	reading int
	stored  []sdk.Memory
	// writes counts what came into the window or dropped it, for a reply
	// noted after the call that stored it (windowMark).
	writes uint64
	// expire drops the window once it is stale: an idle agent keeps
	// nothing of its rooms (32 messages each, up to 64 rooms).
	expire *time.Timer
}

// roomWindows are an agent's windows, by room.
type roomWindows struct {
	mu sync.Mutex
	m  map[string]*roomWindow
}

func (ws *roomWindows) get(roomID string) *roomWindow {
	if ws.m == nil {
		ws.m = map[string]*roomWindow{}
	}
	w := ws.m[roomID]
	if w == nil {
		if len(ws.m) >= maxWindows {
			for id, old := range ws.m {
				if old.reading == 0 && time.Since(old.readAt) >= lookupTTL {
					delete(ws.m, id)
				}
			}
			if len(ws.m) >= maxWindows {
				clear(ws.m)
			}
		}
		w = &roomWindow{}
		ws.m[roomID] = w
	}
	return w
}

// recentMessages reads the room's latest messages as RECENT_MESSAGES
// shows them (recentMessagesQuery): from its window while the window is
// fresh, from the database otherwise. The list returned is the caller's;
// the maps of its memories are shared and only read, as the other reads
// reused are.
func (b *bootstrap) recentMessages(ctx context.Context, a *sdk.Agent, roomID string) ([]sdk.Memory, error) {
	q := recentMessagesQuery(b, a, roomID)
	ws := &b.state(a).windows
	ws.mu.Lock()
	w := ws.get(roomID)
	if !w.readAt.IsZero() && w.count == q.Count && time.Since(w.readAt) < lookupTTL {
		out := slices.Clone(w.msgs)
		ws.mu.Unlock()
		return out, nil
	}
	forgets, from := w.forgets, len(w.stored)
	w.reading++
	ws.mu.Unlock()
	started := time.Now()
	ms, err := storage.For(a).GetMemories(ctx, q)
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if err == nil && ws.m[roomID] == w && w.forgets == forgets {
		kept := withoutEmbeddings(ms)
		for _, m := range w.stored[from:] {
			kept = insertNewest(kept, m, q.Count)
		}
		w.msgs, w.count, w.readAt = kept, q.Count, started
		if w.expire != nil {
			w.expire.Stop()
		}
		w.expire = time.AfterFunc(lookupTTL-time.Since(started), func() { ws.expired(roomID, w, started) })
	}
	if w.reading--; w.reading == 0 {
		w.stored = nil
	}
	return ms, err
}

// expired drops the room's window w, read at readAt, unless it was read
// again since.
func (ws *roomWindows) expired(roomID string, w *roomWindow, readAt time.Time) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if !w.readAt.Equal(readAt) {
		return
	}
	w.msgs, w.readAt = nil, time.Time{}
	if ws.m[roomID] == w && w.reading == 0 {
		delete(ws.m, roomID)
	}
}

// windowStored puts a message this plugin stored, or that the host stored
// for it, into its room's window.
func (b *bootstrap) windowStored(a *sdk.Agent, m *sdk.Memory) {
	b.windowStoredSince(a, m, nil)
}

// windowMark is where a room's window stood when a call that stores a
// message for this plugin began.
type windowMark struct {
	w      *roomWindow
	writes uint64
}

// markWindow says where the room's window stands now.
func (b *bootstrap) markWindow(a *sdk.Agent, roomID string) *windowMark {
	ws := &b.state(a).windows
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w := ws.get(roomID)
	return &windowMark{w: w, writes: w.writes}
}

// windowStoredSince is windowStored for a message stored by a call that
// began at mark, stamped by the host at a time this plugin knows only to
// within the call. When nothing else came into the window meanwhile, the
// message goes where the database lists it; otherwise its place among
// what came is not known, and the window is dropped.
func (b *bootstrap) windowStoredSince(a *sdk.Agent, m *sdk.Memory, mark *windowMark) {
	if m.RoomID == "" {
		return
	}
	// The window's copy shares nothing with the caller's, which may go on
	// changing it.
	c := *m
	c.Embedding = nil
	c.Metadata = maps.Clone(m.Metadata)
	c.Content.Extra = maps.Clone(m.Content.Extra)
	c.Content.Actions = slices.Clone(m.Content.Actions)
	c.Content.Providers = slices.Clone(m.Content.Providers)
	c.Content.Attachments = slices.Clone(m.Content.Attachments)
	ws := &b.state(a).windows
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w := ws.get(m.RoomID)
	if mark != nil && (mark.w != w || mark.writes != w.writes) {
		w.forget()
		return
	}
	w.writes++
	if w.reading > 0 {
		w.stored = append(w.stored, c)
	}
	if !w.readAt.IsZero() {
		w.msgs = insertNewest(w.msgs, c, w.count)
	}
}

// insertNewest puts m into ms (newest first) where the database lists it,
// after the newer ones and before the ones of its millisecond stored
// earlier, unless ms holds it already; at most count are kept (all when
// count is not positive). ms may be changed.
func insertNewest(ms []sdk.Memory, m sdk.Memory, count int) []sdk.Memory {
	for i := range ms {
		if sameMessage(&ms[i], &m) {
			return ms
		}
	}
	i := 0
	for i < len(ms) && ms[i].CreatedAt > m.CreatedAt {
		i++
	}
	ms = slices.Insert(ms, i, m)
	if count > 0 && len(ms) > count {
		ms = ms[:count]
	}
	return ms
}

// sameMessage reports whether two memories are one stored message. A
// reply the host stored is known here without its id (sendOnlyReply): it
// is the agent's answer of that text to that message.
func sameMessage(x, y *sdk.Memory) bool {
	if x.ID != "" && y.ID != "" {
		return x.ID == y.ID
	}
	return x.EntityID == y.EntityID && x.Content.InReplyTo == y.Content.InReplyTo && x.Content.Text == y.Content.Text
}

// actionsRan drops what this plugin keeps of the agent after actions ran
// for a message of roomID: any may have written anything, and the host
// stored the replies they sent.
func (b *bootstrap) actionsRan(a *sdk.Agent, roomID string) {
	changed(a)
	b.forgetWindow(a, roomID)
}

// forgetWindow drops the room's window: what was written to it is not
// known.
func (b *bootstrap) forgetWindow(a *sdk.Agent, roomID string) {
	if roomID == "" {
		return
	}
	ws := &b.state(a).windows
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.get(roomID).forget()
}

// forgetWindows drops every window of the agent: a message whose room is
// not known was deleted.
func (b *bootstrap) forgetWindows(a *sdk.Agent) {
	ws := &b.state(a).windows
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, w := range ws.m {
		w.forget()
	}
}

func (w *roomWindow) forget() {
	w.forgets++
	w.writes++
	w.msgs, w.readAt = nil, time.Time{}
}

func withoutEmbeddings(ms []sdk.Memory) []sdk.Memory {
	out := slices.Clone(ms)
	for i := range out {
		out[i].Embedding = nil
	}
	return out
}
