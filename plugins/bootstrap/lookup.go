package bootstrap

import (
	"context"
	"sync"
	"time"

	"github.com/agenthost/agenthost/sdk"
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

// cachedRoom is a.GetRoom, reused for lookupTTL.
func cachedRoom(ctx context.Context, a *sdk.Agent, id string) (*sdk.Room, error) {
	v, err := cached(roomKey(a, id), func() (any, error) { return a.GetRoom(ctx, id) })
	r, _ := v.(*sdk.Room)
	return r, err
}

// cachedWorld returns the world with this id, or nil if there is none.
func cachedWorld(ctx context.Context, a *sdk.Agent, id string) (*sdk.World, error) {
	v, err := cached(worldKey(a, id), func() (any, error) {
		ws, err := a.GetWorlds(ctx, id)
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

// cachedParticipantState is a.GetParticipantState, reused for lookupTTL.
func cachedParticipantState(ctx context.Context, a *sdk.Agent, room, entity string) (string, error) {
	v, err := cached(participantKey(a, room, entity), func() (any, error) { return a.GetParticipantState(ctx, room, entity) })
	s, _ := v.(string)
	return s, err
}

// setParticipantState writes through the cache: the entry is dropped after
// the write, so no reader keeps the old state.
func setParticipantState(ctx context.Context, a *sdk.Agent, room, entity, state string) error {
	err := a.SetParticipantState(ctx, room, entity, state)
	forget(participantKey(a, room, entity))
	return err
}

// upsertWorld writes a world and drops its cached copy.
func upsertWorld(ctx context.Context, a *sdk.Agent, w sdk.World) error {
	err := a.UpsertWorld(ctx, w)
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
