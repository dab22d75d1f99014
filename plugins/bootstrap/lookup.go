package bootstrap

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
)

// lookupTTL is how long a read of a room, a world or the agent's state in a
// room is reused. One message makes the providers and the action
// validators ask for the same few records a dozen times, each a round trip
// through the host to the database plugin; reusing them for a moment makes
// it one. This plugin's own writes drop the entry at once; a change made by
// another plugin shows within lookupTTL.
const lookupTTL = 2 * time.Second

// lookupMax bounds the cache; past it, expired entries go, then all.
const lookupMax = 4096

type lookupEntry struct {
	v   any
	err error
	at  time.Time
}

var lookups = struct {
	mu sync.Mutex
	m  map[string]lookupEntry
}{m: map[string]lookupEntry{}}

func cached(key string, load func() (any, error)) (any, error) {
	lookups.mu.Lock()
	e, ok := lookups.m[key]
	lookups.mu.Unlock()
	if ok && time.Since(e.at) < lookupTTL {
		return e.v, e.err
	}
	v, err := load()
	store(key, v, err)
	return v, err
}

// store keeps a value read now.
func store(key string, v any, err error) {
	now := time.Now()
	lookups.mu.Lock()
	defer lookups.mu.Unlock()
	if len(lookups.m) >= lookupMax {
		for k, old := range lookups.m {
			if now.Sub(old.at) >= lookupTTL {
				delete(lookups.m, k)
			}
		}
		if len(lookups.m) >= lookupMax {
			lookups.m = map[string]lookupEntry{}
		}
	}
	lookups.m[key] = lookupEntry{v: v, err: err, at: now}
}

func forget(keys ...string) {
	lookups.mu.Lock()
	for _, k := range keys {
		delete(lookups.m, k)
	}
	lookups.mu.Unlock()
}

func roomKey(a *sdk.Agent, id string) string  { return "room\x00" + a.ID + "\x00" + id }
func worldKey(a *sdk.Agent, id string) string { return "world\x00" + a.ID + "\x00" + id }
func participantKey(a *sdk.Agent, room, entity string) string {
	return "part\x00" + a.ID + "\x00" + room + "\x00" + entity
}

// cachedRoom is storage.For(a).GetRoom, reused for lookupTTL.
func cachedRoom(ctx context.Context, a *sdk.Agent, id string) (*sdk.Room, error) {
	v, err := cached(roomKey(a, id), func() (any, error) { return storage.For(a).GetRoom(ctx, id) })
	r, _ := v.(*sdk.Room)
	return r, err
}

// cachedWorld returns the world with this id, or nil if there is none.
func cachedWorld(ctx context.Context, a *sdk.Agent, id string) (*sdk.World, error) {
	v, err := cached(worldKey(a, id), func() (any, error) {
		ws, err := storage.For(a).GetWorlds(ctx, id)
		if err != nil || len(ws) == 0 {
			return (*sdk.World)(nil), err
		}
		return &ws[0], nil
	})
	w, _ := v.(*sdk.World)
	if w != nil {
		// Callers may change what they get; the cached one stays as read.
		c := *w
		w = &c
	}
	return w, err
}

// cachedParticipantState is storage.For(a).GetParticipantState, reused for lookupTTL.
func cachedParticipantState(ctx context.Context, a *sdk.Agent, room, entity string) (string, error) {
	v, err := cached(participantKey(a, room, entity), func() (any, error) { return storage.For(a).GetParticipantState(ctx, room, entity) })
	s, _ := v.(string)
	return s, err
}

// setParticipantState writes through the cache: the entry is dropped after
// the write, so no reader keeps the old state.
func setParticipantState(ctx context.Context, a *sdk.Agent, room, entity, state string) error {
	err := storage.For(a).SetParticipantState(ctx, room, entity, state)
	forget(participantKey(a, room, entity))
	return err
}

// upsertWorld writes a world and drops its cached copy.
func upsertWorld(ctx context.Context, a *sdk.Agent, w sdk.World) error {
	err := storage.For(a).UpsertWorld(ctx, w)
	forget(worldKey(a, w.ID))
	return err
}

func nameKey(a *sdk.Agent, id string) string { return "name\x00" + a.ID + "\x00" + id }

// peek returns a fresh cached value without loading it.
func peek(key string) (any, bool) {
	lookups.mu.Lock()
	defer lookups.mu.Unlock()
	e, ok := lookups.m[key]
	if !ok || e.err != nil || time.Since(e.at) >= lookupTTL {
		return nil, false
	}
	return e.v, true
}

// keep caches a value read elsewhere.
func keep(key string, v any) { store(key, v, nil) }

// Two reads of every message's state are of things that change only when
// actions run or tasks are written: the room's recent action results
// (RECENT_MESSAGES) and its tasks waiting for a choice (CHOICE). They are
// reused for lookupTTL under the agent's generation, which moves on
// whenever this plugin runs actions (the host records their results
// then) or writes a task: what this plugin does shows at once, what
// another plugin does outside an action chain shows within lookupTTL, as
// for rooms and worlds.

var generations sync.Map // agent id → *atomic.Uint64

func generation(a *sdk.Agent) *atomic.Uint64 {
	if g, ok := generations.Load(a.ID); ok {
		return g.(*atomic.Uint64)
	}
	g, _ := generations.LoadOrStore(a.ID, new(atomic.Uint64))
	return g.(*atomic.Uint64)
}

// roomReadKey names a read of the room that stands until the agent's
// generation moves on.
func roomReadKey(kind string, a *sdk.Agent, roomID string) string {
	return kind + "\x00" + a.ID + "\x00" + strconv.FormatUint(generation(a).Load(), 10) + "\x00" + roomID
}

// changed moves the agent's generation on: its room reads are read again.
func changed(a *sdk.Agent) { generation(a).Add(1) }

// changingStore is a Store whose task writes move the agent's generation
// on.
type changingStore struct{ Store }

func (s changingStore) CreateTask(ctx context.Context, a *sdk.Agent, t Task) (string, error) {
	defer changed(a)
	return s.Store.CreateTask(ctx, a, t)
}

func (s changingStore) UpdateTask(ctx context.Context, a *sdk.Agent, t Task) error {
	defer changed(a)
	return s.Store.UpdateTask(ctx, a, t)
}

func (s changingStore) DeleteTask(ctx context.Context, a *sdk.Agent, id string) error {
	defer changed(a)
	return s.Store.DeleteTask(ctx, a, id)
}
