package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Host is what a node asks of its daemon.
type Host interface {
	// Wanted lists the ids of the agents that should run somewhere.
	Wanted() []string
	// Run starts an agent here: this node now holds its lease.
	Run(ctx context.Context, agentID string) error
	// Halt stops an agent here, connectors included, at once: its lease is
	// lost, handed over or about to expire.
	Halt(agentID string)
	// Resync re-reads the stored agents: one changed on another node.
	Resync()
	// Forwarded serves an API request another node forwarded.
	Forwarded(req *nats.Msg) *nats.Msg
	// HandleMessage handles a message of the stream for an agent held
	// here; ErrNotHere says it is not running here (any more).
	HandleMessage(ctx context.Context, agentID string, data []byte, redelivered bool) ([]byte, error)
	// Event delivers a WebSocket event published by another node.
	Event(data []byte)
	// Failed lists the agents that failed to start here.
	Failed() []string
}

// ErrNotHere: the agent does not run on this node.
var ErrNotHere = errors.New("the agent does not run on this node")

// ErrNotNow: the message cannot be handled until the agent starts again
// (it failed to start here); it is given again much later.
var ErrNotNow = errors.New("the agent failed to start; the message waits")

// NodeInfo is a node as GET /api/cluster shows it.
type NodeInfo struct {
	ID       string    `json:"id"`
	Address  string    `json:"address"`
	Agents   int       `json:"agents"`
	LastSeen time.Time `json:"lastSeen"`
	// Held lists the agents the node holds, and Failed those of them
	// that failed to start there, for the other nodes' views.
	Held   []string `json:"held,omitempty"`
	Failed []string `json:"failed,omitempty"`
	// seen is this node's clock when the record last changed.
	seen time.Time
	// since is when this run of heartbeats began.
	since time.Time
	rev   uint64
}

// lease is a lease held here.
type lease struct {
	rev uint64
	// ok is when the last successful renewal (or the creation) was sent.
	ok   time.Time
	cons jetstream.ConsumeContext
	// renewing is held while a renewal is in flight: a release waits
	// for it, so that it deletes the lease at its latest revision.
	renewing sync.Mutex
	// busy counts the messages in hand; stopped: no more are taken.
	busy    int
	stopped bool
	cancel  context.CancelFunc // cancels the agent's start
}

// seenLease is a lease as the watch last saw it.
type seenLease struct {
	node string
	at   time.Time
}

// Stats are the node's counters for /metrics.
type Stats struct {
	Handovers, Fenced, Acquired atomic.Int64
}

// Node is this daemon's membership of the cluster.
type Node struct {
	cfg  Config
	host Host
	log  hclog.Logger

	nc     *nats.Conn
	js     jetstream.JetStream
	nodes  jetstream.KeyValue
	leases jetstream.KeyValue
	stream jetstream.Stream

	mu      sync.Mutex
	members map[string]*NodeInfo
	seen    map[string]seenLease
	held    map[string]*lease
	leaving bool
	started time.Time

	waitMu  sync.Mutex
	waiters map[string]chan []byte

	nudge  chan struct{}
	stop   context.CancelFunc
	ctx    context.Context
	wg     sync.WaitGroup
	subs   []*nats.Subscription
	starts chan struct{}

	Stats Stats
}

const (
	heartbeatEvery = 500 * time.Millisecond
	placeEvery     = 500 * time.Millisecond
	ackWait        = 10 * time.Second
	// joinGrace: a node must be heard from this long before agents are
	// handed over to it, so that a flapping node does not move them.
	joinGrace = time.Second
	hdrReply  = "Agenthost-Reply"
	hdrOrigin = "Agenthost-Origin"
)

func (n *Node) subject(parts ...string) string {
	return n.cfg.Name + "." + strings.Join(parts, ".")
}

// Open connects to NATS and makes the cluster's stream and buckets. It
// fails, naming the URL, when NATS cannot be reached or has no JetStream.
func Open(ctx context.Context, cfg Config, host Host, log hclog.Logger) (*Node, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.MoveWait <= 0 {
		cfg.MoveWait = 10 * time.Second
	}
	n := &Node{cfg: cfg, host: host, log: log.Named("cluster"), members: map[string]*NodeInfo{}, seen: map[string]seenLease{},
		held: map[string]*lease{}, waiters: map[string]chan []byte{}, nudge: make(chan struct{}, 1), started: time.Now(),
		starts: make(chan struct{}, 16)}
	nc, err := nats.Connect(cfg.URLs, nats.Name("agenthost "+cfg.NodeID), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond),
		nats.Timeout(2*time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			n.log.Warn("lost NATS; agents are stopped if their leases cannot be renewed in time", "error", err, "fence_after", cfg.fenceAfter())
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { n.log.Info("NATS reconnected", "server", c.ConnectedUrlRedacted()); n.poke() }))
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to NATS at %s (AGENTHOST_NATS_URL): %w", cfg.URLs, err)
	}
	n.nc = nc
	if err := n.setup(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return n, nil
}

func (n *Node) setup(ctx context.Context) error {
	js, err := jetstream.New(n.nc)
	if err != nil {
		return fmt.Errorf("cluster: JetStream: %w", err)
	}
	n.js = js
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n.nodes, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: n.cfg.Name + "_nodes", TTL: 10 * n.cfg.LeaseTTL,
		Storage: jetstream.FileStorage, Description: "agenthost cluster members"})
	if err != nil {
		return fmt.Errorf("cluster: the bucket %s_nodes (does the NATS server at %s run with JetStream, -js?): %w", n.cfg.Name, n.cfg.URLs, err)
	}
	// File storage: a lease outlives a restart of the NATS server, so no
	// node can take an agent that another still runs.
	n.leases, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: n.cfg.Name + "_leases", TTL: n.cfg.LeaseTTL,
		Storage: jetstream.FileStorage, Description: "agenthost agent leases: key agent id, value node id"})
	if err != nil {
		return fmt.Errorf("cluster: the bucket %s_leases: %w", n.cfg.Name, err)
	}
	n.stream, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: n.cfg.Name + "_messages", Subjects: []string{n.subject("msg", "*")},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Duplicates: 10 * time.Minute,
		Description: "agenthost messages accepted and not yet handled"})
	if err != nil {
		return fmt.Errorf("cluster: the stream %s_messages: %w", n.cfg.Name, err)
	}
	return nil
}

// ID is this node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// Config is the node's configuration.
func (n *Node) Config() Config { return n.cfg }

// Connected reports whether the node reaches NATS now.
func (n *Node) Connected() bool { return n.nc.IsConnected() }

// Join starts the node's work: subscriptions, heartbeats, watches,
// renewals, fencing and placement.
func (n *Node) Join() error {
	n.ctx, n.stop = context.WithCancel(context.Background())
	subs := []struct {
		subj string
		cb   nats.MsgHandler
	}{
		{n.subject("http", n.cfg.NodeID), func(m *nats.Msg) {
			go func() {
				res := n.host.Forwarded(m)
				if err := m.RespondMsg(res); err != nil {
					n.log.Warn("could not answer a forwarded request", "error", err)
				}
			}()
		}},
		{n.subject("reply", n.cfg.NodeID, "*"), func(m *nats.Msg) {
			tok := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
			n.waitMu.Lock()
			ch := n.waiters[tok]
			delete(n.waiters, tok)
			n.waitMu.Unlock()
			if ch != nil {
				ch <- m.Data
			}
		}},
		{n.subject("events"), func(m *nats.Msg) {
			if m.Header.Get(hdrOrigin) != n.cfg.NodeID {
				n.host.Event(m.Data)
			}
		}},
		{n.subject("agents"), func(m *nats.Msg) {
			if m.Header.Get(hdrOrigin) != n.cfg.NodeID {
				go n.host.Resync()
			}
			n.poke()
		}},
		{n.subject("nudge"), func(*nats.Msg) { n.poke() }},
	}
	for _, s := range subs {
		sub, err := n.nc.Subscribe(s.subj, s.cb)
		if err != nil {
			return fmt.Errorf("cluster: subscribe %s: %w", s.subj, err)
		}
		n.subs = append(n.subs, sub)
	}
	if err := n.checkUnique(); err != nil {
		return err
	}
	if err := n.beat(); err != nil {
		return fmt.Errorf("cluster: announce node %s: %w", n.cfg.NodeID, err)
	}
	for _, f := range []func(){n.heartbeats, n.watchNodes, n.watchLeases, n.renewals, n.fencing, n.placement} {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); f() }()
	}
	n.log.Info("joined the cluster", "cluster", n.cfg.Name, "node", n.cfg.NodeID, "lease_ttl", n.cfg.LeaseTTL)
	return nil
}

// Poke runs placement now: an agent became wanted here.
func (n *Node) Poke() { n.poke() }

// checkUnique refuses a node id that a live node uses: two nodes of one
// id would take each other's leases for their own.
func (n *Node) checkUnique() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := n.nodes.Get(ctx, n.cfg.NodeID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cluster: look up node %s: %w", n.cfg.NodeID, err)
	}
	var info NodeInfo
	if json.Unmarshal(e.Value(), &info) != nil || info.Address == n.cfg.Address {
		return nil // this node's own record, from before a restart
	}
	// The record's age as the NATS server stamped it; a generous window,
	// since this machine's clock is compared with the server's.
	if age := time.Since(e.Created()); age < 4*n.cfg.nodeTimeout() {
		return fmt.Errorf("cluster: node id %q is in use by the node at %s (heard from %s ago); give this node another with --node-id or AGENTHOST_NODE_ID",
			n.cfg.NodeID, info.Address, age.Round(100*time.Millisecond))
	}
	return nil
}

func (n *Node) poke() {
	select {
	case n.nudge <- struct{}{}:
	default:
	}
}

// beat puts this node's record.
func (n *Node) beat() error {
	n.mu.Lock()
	info := NodeInfo{ID: n.cfg.NodeID, Address: n.cfg.Address, LastSeen: time.Now().UTC()}
	for id := range n.held {
		info.Held = append(info.Held, id)
	}
	leaving := n.leaving
	n.mu.Unlock()
	if leaving {
		return nil
	}
	info.Failed = n.host.Failed()
	sort.Strings(info.Held)
	info.Agents = len(info.Held)
	b, _ := json.Marshal(info)
	ctx, cancel := context.WithTimeout(context.Background(), heartbeatEvery)
	defer cancel()
	_, err := n.nodes.Put(ctx, n.cfg.NodeID, b)
	return err
}

// every calls f each period, and when woken, until the node stops.
func (n *Node) every(period time.Duration, wake <-chan struct{}, f func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
		f()
	}
}

func (n *Node) heartbeats() {
	n.every(heartbeatEvery, nil, func() {
		if err := n.beat(); err != nil {
			n.log.Debug("heartbeat failed", "error", err)
		}
	})
}

// watch runs a watcher of a bucket until the node stops, making it anew
// when it ends (a NATS restart).
func (n *Node) watch(kv jetstream.KeyValue, f func(jetstream.KeyValueEntry)) {
	for n.ctx.Err() == nil {
		w, err := kv.WatchAll(n.ctx)
		if err != nil {
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		for e := range w.Updates() {
			if e != nil {
				f(e)
			}
		}
		_ = w.Stop()
	}
}

func (n *Node) watchNodes() {
	n.watch(n.nodes, func(e jetstream.KeyValueEntry) {
		n.mu.Lock()
		defer n.mu.Unlock()
		if e.Operation() != jetstream.KeyValuePut {
			delete(n.members, e.Key())
			n.poke()
			return
		}
		var info NodeInfo
		if json.Unmarshal(e.Value(), &info) != nil {
			return
		}
		old := n.members[e.Key()]
		if old != nil && old.rev == e.Revision() {
			return
		}
		now := time.Now()
		info.seen, info.rev, info.since = now, e.Revision(), now
		if old != nil && now.Sub(old.seen) < n.cfg.nodeTimeout() {
			info.since = old.since
		}
		n.members[e.Key()] = &info
		if old == nil {
			n.poke()
		}
	})
}

func (n *Node) watchLeases() {
	n.watch(n.leases, func(e jetstream.KeyValueEntry) {
		n.mu.Lock()
		defer n.mu.Unlock()
		if e.Operation() != jetstream.KeyValuePut {
			delete(n.seen, e.Key())
			n.poke()
			return
		}
		n.seen[e.Key()] = seenLease{node: string(e.Value()), at: time.Now()}
	})
}

// live lists the nodes heard from within the node timeout, this one
// included while it reaches NATS and is not leaving.
func (n *Node) liveLocked(now time.Time) []string {
	var out []string
	for id, m := range n.members {
		if id == n.cfg.NodeID {
			continue
		}
		if now.Sub(m.seen) < n.cfg.nodeTimeout() {
			out = append(out, id)
		}
	}
	if !n.leaving && n.nc.IsConnected() {
		out = append(out, n.cfg.NodeID)
	}
	sort.Strings(out)
	return out
}

// Owner picks an agent's node among the live ones by rendezvous hashing:
// every node computes the same, and a node that joins or leaves moves
// only the agents it wins or held.
func Owner(agentID string, live []string) string {
	best, bestScore := "", uint64(0)
	for _, id := range live {
		h := fnv.New64a()
		h.Write([]byte(agentID))
		h.Write([]byte{0})
		h.Write([]byte(id))
		// FNV alone barely spreads ids that differ in their last byte
		// (node a, b, c): a finalizer mixes every bit into every other.
		s := h.Sum64()
		s ^= s >> 33
		s *= 0xff51afd7ed558ccd
		s ^= s >> 33
		s *= 0xc4ceb9fe1a85ec53
		s ^= s >> 33
		if best == "" || s > bestScore {
			best, bestScore = id, s
		}
	}
	return best
}

// Holder is the node that holds the agent's lease as this node last saw
// it, if that node is live.
func (n *Node) Holder(agentID string) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.holderLocked(agentID, time.Now())
}

func (n *Node) holderLocked(agentID string, now time.Time) (string, bool) {
	if _, ok := n.held[agentID]; ok {
		return n.cfg.NodeID, true
	}
	s, ok := n.seen[agentID]
	if !ok || s.node == n.cfg.NodeID || now.Sub(s.at) > n.cfg.LeaseTTL {
		return "", false
	}
	m := n.members[s.node]
	if m == nil || now.Sub(m.seen) > n.cfg.nodeTimeout() {
		return "", false
	}
	return s.node, true
}

// HolderFailed reports whether the agent's holder says it failed to
// start there.
func (n *Node) HolderFailed(agentID string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	h, ok := n.holderLocked(agentID, time.Now())
	if !ok || h == n.cfg.NodeID {
		return false
	}
	for _, id := range n.members[h].Failed {
		if id == agentID {
			return true
		}
	}
	return false
}

// Holds reports whether this node holds the agent's lease.
func (n *Node) Holds(agentID string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.held[agentID]
	return ok
}

// LeasesHeld counts the leases this node holds.
func (n *Node) LeasesHeld() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.held)
}

// WaitHolder waits, MoveWait at most, for an agent to have a live holder
// other than the one given in not ("" for any). It gives up early when
// wanted says the agent should no longer run anywhere (it was stopped).
func (n *Node) WaitHolder(ctx context.Context, agentID, not string, wanted func() bool) (string, bool) {
	deadline := time.Now().Add(n.cfg.MoveWait)
	for {
		if h, ok := n.Holder(agentID); ok && h != not {
			return h, true
		}
		if time.Now().After(deadline) || ctx.Err() != nil || (wanted != nil && !wanted()) {
			return "", false
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// MoveWait is how long a request waits for an agent that moves.
func (n *Node) MoveWait() time.Duration { return n.cfg.MoveWait }

// Members lists the live nodes, this one first.
func (n *Node) Members() []NodeInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	var out []NodeInfo
	for _, id := range n.liveLocked(now) {
		var info NodeInfo
		if id == n.cfg.NodeID {
			info = NodeInfo{ID: id, Address: n.cfg.Address, Agents: len(n.held), LastSeen: now.UTC()}
		} else {
			info = *n.members[id]
			info.Held, info.Failed = nil, nil
		}
		out = append(out, info)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID == n.cfg.NodeID && out[j].ID != n.cfg.NodeID })
	return out
}

// renewals renews every lease held here, LeaseTTL/6 apart.
func (n *Node) renewals() {
	n.every(n.cfg.renewEvery(), nil, func() {
		if !n.nc.IsConnected() {
			return
		}
		n.mu.Lock()
		ids := make([]string, 0, len(n.held))
		for id := range n.held {
			ids = append(ids, id)
		}
		n.mu.Unlock()
		for _, id := range ids {
			n.renew(id)
		}
	})
}

func (n *Node) renew(id string) {
	n.mu.Lock()
	l := n.held[id]
	n.mu.Unlock()
	if l == nil {
		return
	}
	l.renewing.Lock()
	defer l.renewing.Unlock()
	n.mu.Lock()
	if n.held[id] != l || l.stopped {
		n.mu.Unlock()
		return
	}
	n.mu.Unlock()
	sent := time.Now()
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.renewEvery())
	rev, err := n.leases.Update(ctx, id, []byte(n.cfg.NodeID), l.rev)
	cancel()
	n.mu.Lock()
	defer n.mu.Unlock()
	if err == nil {
		l.rev = rev // the latest revision, even if the lease is being let go
	}
	if n.held[id] != l {
		return
	}
	switch {
	case err == nil:
		l.ok = sent
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists):
		// Expired and taken, or deleted: not ours any more.
		n.log.Error("lost the lease of an agent; stopping it here", "agent", id, "error", err)
		n.dropLocked(id, l)
		go n.host.Halt(id)
	default:
		n.log.Debug("lease renewal failed", "agent", id, "error", err)
	}
}

// dropLocked forgets a lease held here and stops consuming its messages.
func (n *Node) dropLocked(id string, l *lease) {
	delete(n.held, id)
	l.stopped = true
	if l.cancel != nil {
		l.cancel()
	}
	if l.cons != nil {
		l.cons.Stop()
	}
}

// fencing stops the agents whose leases could not be renewed in time,
// before those leases can expire.
func (n *Node) fencing() {
	n.every(50*time.Millisecond, nil, func() {
		now := time.Now()
		n.mu.Lock()
		var fenced []string
		for id, l := range n.held {
			if now.Sub(l.ok) > n.cfg.fenceAfter() {
				n.dropLocked(id, l)
				fenced = append(fenced, id)
			}
		}
		n.mu.Unlock()
		for _, id := range fenced {
			n.Stats.Fenced.Add(1)
			n.log.Error("could not renew the lease in time (NATS unreachable?): the agent is stopped here before another node may take it",
				"agent", id, "fence_after", n.cfg.fenceAfter())
			n.host.Halt(id)
		}
	})
}

// placement takes the agents this node owns and hands over those it
// holds but no longer owns, every half second and when something moves.
func (n *Node) placement() { n.every(placeEvery, n.nudge, n.place) }

func (n *Node) place() {
	if !n.nc.IsConnected() {
		return
	}
	wanted := n.host.Wanted()
	want := map[string]bool{}
	for _, id := range wanted {
		want[id] = true
	}
	now := time.Now()
	n.mu.Lock()
	if n.leaving {
		n.mu.Unlock()
		return
	}
	live := n.liveLocked(now)
	var take, give []string
	for id := range n.held {
		if !want[id] {
			give = append(give, id)
			continue
		}
		if o := Owner(id, live); o != n.cfg.NodeID && o != "" {
			if now.Sub(n.joinedLocked(o)) > joinGrace {
				give = append(give, id)
			}
		}
	}
	for _, id := range wanted {
		if _, ok := n.held[id]; ok {
			continue
		}
		if Owner(id, live) != n.cfg.NodeID {
			continue
		}
		if s, ok := n.seen[id]; ok && s.node != n.cfg.NodeID && now.Sub(s.at) < n.cfg.LeaseTTL {
			// Held elsewhere and renewed lately: it is handed over, or
			// expires, first.
			continue
		}
		take = append(take, id)
	}
	n.mu.Unlock()
	for _, id := range give {
		n.release(id, "handover")
	}
	for _, id := range take {
		n.acquire(id)
	}
}

// joinedLocked is when this node first heard of a node in its current
// run of heartbeats.
func (n *Node) joinedLocked(id string) time.Time {
	if m := n.members[id]; m != nil {
		return m.since
	}
	return time.Now()
}

// acquire creates the agent's lease and starts it here.
func (n *Node) acquire(id string) {
	sent := time.Now()
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.renewEvery())
	rev, err := n.leases.Create(ctx, id, []byte(n.cfg.NodeID))
	cancel()
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			n.log.Debug("could not take a lease", "agent", id, "error", err)
		}
		return
	}
	sctx, scancel := context.WithCancel(n.ctx)
	l := &lease{rev: rev, ok: sent, cancel: scancel}
	n.mu.Lock()
	n.held[id] = l
	n.mu.Unlock()
	n.Stats.Acquired.Add(1)
	n.log.Info("lease taken; starting the agent here", "agent", id)
	go func() {
		n.starts <- struct{}{}
		defer func() { <-n.starts }()
		if sctx.Err() != nil {
			return
		}
		if err := n.host.Run(sctx, id); err != nil {
			// The lease stays: the agent is listed failed here rather
			// than tried on every node in turn. Its messages are
			// consumed all the same, to be answered that it failed.
			n.log.Error("the agent failed to start on this node", "agent", id, "error", err)
			go func() { _ = n.beat() }()
		} else {
			n.mu.Lock()
			still := n.held[id] == l
			n.mu.Unlock()
			if !still {
				n.host.Halt(id)
				return
			}
		}
		if err := n.consume(id, l); err != nil {
			n.log.Error("could not consume the agent's messages", "agent", id, "error", err)
		}
	}()
}

// release hands a lease over: no new messages, the ones in hand finish
// (bounded), the agent stops, the lease is deleted.
func (n *Node) release(id, why string) {
	n.mu.Lock()
	l := n.held[id]
	if l == nil {
		n.mu.Unlock()
		return
	}
	l.stopped = true
	if l.cons != nil {
		l.cons.Stop()
	}
	n.mu.Unlock()
	// The messages in hand finish first, within a bound: one that does
	// not is given to the next holder.
	for deadline := time.Now().Add(n.cfg.fenceAfter() / 2); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		n.mu.Lock()
		busy := l.busy
		n.mu.Unlock()
		if busy == 0 {
			break
		}
	}
	n.host.Halt(id)
	n.mu.Lock()
	if n.held[id] == l {
		n.dropLocked(id, l)
	}
	n.mu.Unlock()
	// No renewal is in flight once this is held, and none starts after.
	l.renewing.Lock()
	rev := l.rev
	l.renewing.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	err := n.leases.Delete(ctx, id, jetstream.LastRevision(rev))
	cancel()
	if err != nil {
		n.log.Warn("could not delete a lease; it expires by itself", "agent", id, "error", err)
	}
	n.Stats.Handovers.Add(1)
	n.log.Info("agent handed over", "agent", id, "why", why)
	_ = n.nc.Publish(n.subject("nudge"), nil)
}

// Leave hands every agent over and leaves the cluster: the node's record
// goes first, so that no node gives it anything more.
func (n *Node) Leave() {
	if n.ctx == nil {
		return
	}
	n.mu.Lock()
	n.leaving = true
	ids := make([]string, 0, len(n.held))
	for id := range n.held {
		ids = append(ids, id)
	}
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = n.nodes.Delete(ctx, n.cfg.NodeID)
	cancel()
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() { defer wg.Done(); n.release(id, "node stopping") }()
	}
	wg.Wait()
	n.log.Info("left the cluster", "handed_over", len(ids))
}

// Close stops the node's work and closes its NATS connection.
func (n *Node) Close() {
	if n.stop != nil {
		n.stop()
		n.wg.Wait()
	}
	for _, s := range n.subs {
		_ = s.Unsubscribe()
	}
	n.nc.Close()
}
