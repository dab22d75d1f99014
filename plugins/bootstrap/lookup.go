package bootstrap

import (
	"context"
	"errors"
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

// flight is a read under way: the askers that come while it is share its
// answer rather than each making the same round trip. The providers of a
// message run side by side, and on a first message (nothing read yet)
// each used to read the room's world for itself.
type flight struct {
	done chan struct{}
	v    any
	err  error
}

var lookups = struct {
	mu sync.Mutex
	m  map[string]lookupEntry
	// flights are the reads under way, by key. forget drops a key's
	// flight too: an asker after a write reads anew, and the flight's
	// answer, which may predate the write, is not kept.
	flights map[string]*flight
}{m: map[string]lookupEntry{}, flights: map[string]*flight{}}

func cached(key string, load func() (any, error)) (any, error) {
	lookups.mu.Lock()
	if e, ok := lookups.m[key]; ok && time.Since(e.at) < lookupTTL {
		lookups.mu.Unlock()
		return e.v, e.err
	}
	if f, ok := lookups.flights[key]; ok {
		lookups.mu.Unlock()
		<-f.done
		if isCut(f.err) {
			// Its asker's context ended (a run that stopped early): read
			// with this asker's.
			return cached(key, load)
		}
		return f.v, f.err
	}
	f := &flight{done: make(chan struct{}), err: errNoAnswer}
	lookups.flights[key] = f
	lookups.mu.Unlock()
	defer func() {
		lookups.mu.Lock()
		if lookups.flights[key] == f {
			delete(lookups.flights, key)
			// A read cut off by its caller's context says nothing of the
			// record: the next asker reads again.
			if !isCut(f.err) && f.err != errNoAnswer {
				storeLocked(key, f.v, f.err)
			}
		}
		lookups.mu.Unlock()
		close(f.done)
	}()
	f.v, f.err = load()
	return f.v, f.err
}

// cachedAs is cached for a load of one type: what callers get back is
// that type, its zero value when the read failed.
func cachedAs[T any](key string, load func() (T, error)) (T, error) {
	v, err := cached(key, func() (any, error) { return load() })
	t, _ := v.(T)
	return t, err
}

// errNoAnswer is what the askers sharing a read get when it panicked.
var errNoAnswer = errors.New("the read gave no answer")

// isCut reports an error of a call cut off by its caller's context.
func isCut(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// store keeps a value read now.
func store(key string, v any, err error) {
	lookups.mu.Lock()
	defer lookups.mu.Unlock()
	storeLocked(key, v, err)
}

func storeLocked(key string, v any, err error) {
	now := time.Now()
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
		delete(lookups.flights, k)
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
	return cachedAs(roomKey(a, id), func() (*sdk.Room, error) { return storage.For(a).GetRoom(ctx, id) })
}

// cachedWorld returns the world with this id, or nil if there is none.
func cachedWorld(ctx context.Context, a *sdk.Agent, id string) (*sdk.World, error) {
	w, err := cachedAs(worldKey(a, id), func() (*sdk.World, error) {
		written(worldKey(a, id))
		ws, err := storage.For(a).GetWorlds(ctx, id)
		if err != nil || len(ws) == 0 {
			return nil, err
		}
		return &ws[0], nil
	})
	if w != nil {
		// Callers may change what they get, its metadata's roles and
		// ownership among it; the cached one stays as read.
		c := *w
		c.Metadata, _ = deepCopy(w.Metadata).(map[string]any)
		w = &c
	}
	return w, err
}

// deepCopy copies the maps and lists of a value decoded from JSON.
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if v == nil {
			return v
		}
		c := make(map[string]any, len(v))
		for k, e := range v {
			c[k] = deepCopy(e)
		}
		return c
	case []any:
		if v == nil {
			return v
		}
		c := make([]any, len(v))
		for i, e := range v {
			c[i] = deepCopy(e)
		}
		return c
	default:
		return v
	}
}

// cachedParticipantState is storage.For(a).GetParticipantState, reused for lookupTTL.
func cachedParticipantState(ctx context.Context, a *sdk.Agent, room, entity string) (string, error) {
	return cachedAs(participantKey(a, room, entity), func() (string, error) { return storage.For(a).GetParticipantState(ctx, room, entity) })
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
	written(worldKey(a, w.ID))
	err := storage.For(a).UpsertWorld(ctx, w)
	forget(worldKey(a, w.ID))
	return err
}

func nameKey(a *sdk.Agent, id string) string { return "name\x00" + a.ID + "\x00" + id }

// peek returns a fresh cached value without loading it; a read of it
// under way is waited for.
func peek(key string) (any, bool) {
	lookups.mu.Lock()
	e, ok := lookups.m[key]
	f, loading := lookups.flights[key]
	lookups.mu.Unlock()
	if ok && e.err == nil && time.Since(e.at) < lookupTTL {
		return e.v, true
	}
	if !loading {
		return nil, false
	}
	<-f.done
	return f.v, f.err == nil
}

// keep caches a value read or written elsewhere. It is newer than what a
// read under way may bring back, which is not kept then.
func keep(key string, v any) {
	lookups.mu.Lock()
	defer lookups.mu.Unlock()
	delete(lookups.flights, key)
	storeLocked(key, v, nil)
}

// Two reads of every message's state are of things that change only when
// actions run or tasks are written: the room's recent action results
// (RECENT_MESSAGES) and its tasks waiting for a choice (CHOICE). They are
// reused for lookupTTL under the agent's generation, which moves on
// whenever this plugin runs actions (the host records their results
// then) or writes a task, a relationship, a component or an entity (and
// so do the reads of roomreads.go): what this plugin does shows at once, what
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

// changingStore is a Store whose every write (of a task, a relationship or
// a component) moves the agent's generation on.
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

func (s changingStore) SaveRelationship(ctx context.Context, a *sdk.Agent, r Relationship) error {
	defer changed(a)
	return s.Store.SaveRelationship(ctx, a, r)
}

func (s changingStore) SaveComponent(ctx context.Context, a *sdk.Agent, c Component) error {
	defer changed(a)
	return s.Store.SaveComponent(ctx, a, c)
}

func (s changingStore) DeleteComponent(ctx context.Context, a *sdk.Agent, entityID, id string) error {
	defer changed(a)
	return s.Store.DeleteComponent(ctx, a, entityID, id)
}

// Writes behind: a write the reply need not wait for (the owner a DM's
// world gets on its first message) is made after the reply, while this
// process's readers already see it in the cache (keep). Until it is done,
// the reads of its record that go to the store and this plugin's other
// writes of it wait for it (written), so that none reads the record
// without it or writes it back without it; one that waits starts it at
// once. The run that holds it starts it when it has replied and waits for
// it before it ends. Made at once, it took the database's write lock just
// before the reply's store, which then waited for it.
var writes = struct {
	mu sync.Mutex
	m  map[string]*pendingWrite
}{m: map[string]*pendingWrite{}}

// pendingWrite is a write behind: made once started, after the write of
// its record before it.
type pendingWrite struct {
	start func()
	done  chan struct{}
}

// writeBehind holds write until it is started, by the caller or by a
// reader or writer of key that waits for it (written).
func writeBehind(key string, write func()) *pendingWrite {
	begin := make(chan struct{})
	p := &pendingWrite{start: sync.OnceFunc(func() { close(begin) }), done: make(chan struct{})}
	writes.mu.Lock()
	prev := writes.m[key]
	writes.m[key] = p
	writes.mu.Unlock()
	go func() {
		defer func() {
			writes.mu.Lock()
			if writes.m[key] == p {
				delete(writes.m, key)
			}
			writes.mu.Unlock()
			close(p.done)
		}()
		<-begin
		if prev != nil {
			prev.wait()
		}
		write()
	}()
	return p
}

// wait starts the write and waits for it.
func (p *pendingWrite) wait() {
	p.start()
	<-p.done
}

// written makes the writes behind of key held or under way and waits for
// them.
func written(key string) {
	writes.mu.Lock()
	p := writes.m[key]
	writes.mu.Unlock()
	if p != nil {
		p.wait()
	}
}

// prefetch starts, side by side, the reads every message's handling makes
// one after another or from several providers at once: the agent's state
// in the room, the room and its world, the room's action results and
// choices waiting, the sender's name and other rooms, and in a DM the
// worlds the sender owns. Each goes into the cache, where
// the askers find it or wait for it (cached); warm, they cost nothing. On
// the first message of a conversation they were a dozen round trips, each
// through the host to the database plugin, most of them in a row.
func (b *bootstrap) prefetch(ctx context.Context, a *sdk.Agent, msg *sdk.Memory) {
	if msg.RoomID == "" {
		return
	}
	go func() { _, _ = cachedParticipantState(ctx, a, msg.RoomID, a.ID) }()
	go func() { _, _ = actionResults(ctx, a, msg.RoomID) }()
	go func() { _, _ = b.pendingChoices(ctx, a, msg.RoomID) }()
	go roomAndWorld(ctx, a, msg)
	if msg.WorldID != "" {
		// Most rooms are in the world their messages name: read it beside
		// the room rather than after it.
		go func() { _, _ = cachedWorld(ctx, a, msg.WorldID) }()
	}
	if msg.EntityID == "" || msg.EntityID == a.ID {
		return
	}
	go func() {
		_, _ = cached(nameKey(a, msg.EntityID), func() (any, error) { return entityNameOf(ctx, a, msg.EntityID) })
	}()
	go func() { _, _ = participantRooms(ctx, a, msg.EntityID) }()
	if msg.Content.ChannelType == sdk.ChannelDM {
		go func() { _, _ = ownedWorlds(ctx, a, msg.EntityID) }()
	}
}
