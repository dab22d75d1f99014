package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agenthost/agenthost/plugins/sqlstore/hnsw"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/hashicorp/go-hclog"
)

const (
	// DefaultVectorIndexMin is how many memories with embeddings an agent
	// has before its searches go through the index: below it an exact scan
	// costs about as much.
	DefaultVectorIndexMin = 1000
	// VectorIndexDir is the folder of the saved indexes inside
	// Config.DataDir.
	VectorIndexDir = "vectors"
	// indexEf is the breadth of a search in the graph.
	indexEf = 128
	// indexScanMax is the largest selection (after the filters) that is
	// scanned whole rather than searched in the graph: a scan of the
	// 8-bit vectors is exact and, this small, as fast.
	indexScanMax = 4096
	// indexMaxPool bounds the candidates of one search (four times the
	// count asked for); a larger count is searched exactly.
	indexMaxPool = 1000
	// indexMaxEf bounds the breadth of a search widened for a narrow
	// filter.
	indexMaxEf = 2048
	// indexBuildBatch is how many rows a build reads per query, so that no
	// read holds a snapshot for the whole build.
	indexBuildBatch = 1000
	// indexCatchUpMax is the most changes a search applies itself; more
	// are left to a rebuild in the background while searches are exact.
	indexCatchUpMax = 2000
	// indexRebuildShare is the share of deleted nodes from which the graph
	// is rebuilt: they still cost time in every search.
	indexRebuildShare = 0.3
	// indexRetry is how long after a failed build or load the next search
	// tries again.
	indexRetry = 30 * time.Second
)

// vectorIndexes are the HNSW indexes of a store, one per agent, made on
// the first search of an agent and kept in step with the memories table
// through its change counter (agents.vector_version, copied into each
// memory row it changes; see the package doc).
type vectorIndexes struct {
	s   *Store
	dir string // "" keeps them in memory only
	min int
	log hclog.Logger

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	agents map[string]*agentIndex
	// counted holds the agents found small (see small), with the vector
	// version they had then.
	counted map[string]int64

	// answered counts the searches the index answered, exact those it
	// left to the exact path: for tests and benchmarks.
	answered, exact atomic.Int64
}

// agentIndex is the index of one agent's memories of one embedding size.
type agentIndex struct {
	agentID string
	// ready is set once the graph holds every change up to version; until
	// then searches are exact.
	ready atomic.Bool
	// busy is set while a build, a load or a save runs in the background.
	busy     atomic.Bool
	failedAt atomic.Int64 // unix ms of the last failed build

	mu      sync.RWMutex
	g       *hnsw.Graph
	created int64 // the agent's created_at: another agent of the same id is another index
	version int64 // every change up to it is in the graph
	seqs    []int64
	live    map[int64]uint32 // memory seq → its node
	attrs   []nodeAttrs
	names   map[string]uint32
	strs    []string
	dirty   int // changes since the last save
}

// nodeAttrs are what search filters look at, which no write changes after
// a memory is stored.
type nodeAttrs struct {
	table, room, world, entity uint32
	unique                     bool
}

func newVectorIndexes(s *Store, dataDir string, min int, log hclog.Logger) *vectorIndexes {
	if min == 0 {
		min = DefaultVectorIndexMin
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	v := &vectorIndexes{s: s, min: max(min, 1), log: log, agents: map[string]*agentIndex{}, counted: map[string]int64{}}
	if dataDir != "" {
		v.dir = filepath.Join(dataDir, VectorIndexDir)
	}
	v.ctx, v.cancel = context.WithCancel(context.Background())
	v.removeTemporary()
	return v
}

// close stops the background work and waits for it.
func (v *vectorIndexes) close() {
	v.cancel()
	v.wg.Wait()
}

// forget drops the agent's index and its file: the agent is gone, or its
// memories are about to be re-embedded (a graph of replaced vectors is
// better built anew than patched).
func (v *vectorIndexes) forget(agentID string) {
	v.mu.Lock()
	delete(v.agents, agentID)
	delete(v.counted, agentID)
	v.mu.Unlock()
	if v.dir != "" {
		if err := os.Remove(v.path(agentID)); err != nil && !errors.Is(err, os.ErrNotExist) {
			v.log.Warn("cannot remove a vector index", "agent", agentID, "error", err)
		}
	}
}

func (v *vectorIndexes) path(agentID string) string {
	return filepath.Join(v.dir, agentID+".hnsw")
}

// get returns the agent's index if it is ready for dim, and otherwise
// starts loading or building it in the background and returns nil.
func (v *vectorIndexes) get(agentID string, dim int) *agentIndex {
	v.mu.Lock()
	ix := v.agents[agentID]
	if ix != nil && ix.ready.Load() && ix.g.Dim() != dim {
		ix = nil // the agent's embedding size changed
	}
	if ix == nil {
		ix = &agentIndex{agentID: agentID}
		v.agents[agentID] = ix
	}
	v.mu.Unlock()
	if ix.ready.Load() {
		return ix
	}
	if time.Since(time.UnixMilli(ix.failedAt.Load())) > indexRetry && ix.busy.CompareAndSwap(false, true) {
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			defer ix.busy.Store(false)
			if err := v.open(v.ctx, ix, dim); err != nil {
				ix.failedAt.Store(time.Now().UnixMilli())
				if v.ctx.Err() == nil {
					v.log.Error("cannot build the vector index; searches stay exact", "agent", agentID, "error", err)
				}
			}
		}()
	}
	return nil
}

// deleted removes the memories of seqs from the agent's index, which
// this process deleted (other processes' deletes are found by searches).
func (v *vectorIndexes) deleted(agentID string, seqs []int64) {
	v.mu.Lock()
	ix := v.agents[agentID]
	v.mu.Unlock()
	if ix == nil || !ix.ready.Load() {
		return // a build in flight may keep them: searches drop them as they come up
	}
	ix.mu.Lock()
	for _, seq := range seqs {
		ix.remove(seq)
	}
	ix.mu.Unlock()
	v.maybeRebuild(ix)
}

// current reports whether ix is still the agent's index.
func (v *vectorIndexes) current(ix *agentIndex) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.agents[ix.agentID] == ix
}

// open loads the saved index, or builds one from the database, catches it
// up and makes it ready.
func (v *vectorIndexes) open(ctx context.Context, ix *agentIndex, dim int) error {
	start := time.Now()
	var created, version int64
	err := v.s.read().queryRow(ctx, `SELECT created_at, vector_version FROM agents WHERE id = ?`, ix.agentID).Scan(&created, &version)
	if err != nil {
		return fmt.Errorf("read agent: %w", err)
	}
	how := "loaded"
	saved, err := v.load(ix.agentID)
	switch {
	case err == nil && saved != nil:
		why := ""
		switch {
		case saved.created != created:
			why = "it belongs to an earlier agent of the same id"
		case saved.g.Dim() != dim:
			why = fmt.Sprintf("it holds embeddings of %d values, the agent's have %d", saved.g.Dim(), dim)
		case saved.version > version:
			why = "it is newer than the database (restored from a backup?)"
		default:
			why, err = v.reconcile(ctx, saved)
			if err != nil {
				return err
			}
		}
		if why != "" {
			v.log.Info("rebuilding a saved vector index", "agent", ix.agentID, "reason", why)
			saved = nil
		}
	case err != nil:
		v.log.Warn("a saved vector index does not load; rebuilding it from the database", "agent", ix.agentID, "file", v.path(ix.agentID), "error", err)
		saved = nil
	}
	if saved == nil {
		how = "built"
		saved, err = v.build(ctx, ix.agentID, created, dim)
		if err != nil {
			return err
		}
	}
	ix.mu.Lock()
	ix.g, ix.created, ix.version, ix.seqs, ix.live, ix.attrs, ix.names, ix.strs, ix.dirty =
		saved.g, saved.created, saved.version, saved.seqs, saved.live, saved.attrs, saved.names, saved.strs, saved.dirty
	ix.mu.Unlock()
	if _, err := ix.catchUp(ctx, v.s, math.MaxInt); err != nil {
		return err
	}
	// Searches may change ix once it is ready: what the log says is read
	// before.
	live, dirty := ix.g.Len()-ix.g.Deleted(), ix.dirty
	ix.ready.Store(true)
	v.log.Info("vector index ready", "agent", ix.agentID, how, live, "dimension", dim,
		"elapsed", time.Since(start).Round(time.Millisecond).String())
	if how == "built" || dirty > 0 {
		if err := v.save(ix); err != nil {
			v.log.Warn("cannot save the vector index; it is rebuilt at the next start", "agent", ix.agentID, "error", err)
		}
	}
	return nil
}

// build makes an index of the agent's memories with embeddings of dim
// values, reading them in batches.
func (v *vectorIndexes) build(ctx context.Context, agentID string, created int64, dim int) (*agentIndex, error) {
	ix := &agentIndex{agentID: agentID, created: created, live: map[int64]uint32{}, names: map[string]uint32{},
		g: hnsw.New(dim, hnsw.Config{Seed: uint64(created)})}
	r := v.s.read()
	// Everything changed up to this version is in the rows read after it;
	// what changes meanwhile has a later one and is caught up.
	if err := r.queryRow(ctx, `SELECT vector_version FROM agents WHERE id = ?`, agentID).Scan(&ix.version); err != nil {
		return nil, fmt.Errorf("read agent: %w", err)
	}
	var after int64
	for {
		rows, err := r.query(ctx, `SELECT seq, type, room_id, world_id, entity_id, is_unique, embedding_dim, embedding
			FROM memories WHERE agent_id = ? AND embedding_dim = ? AND seq > ? ORDER BY seq LIMIT ?`,
			agentID, dim, after, indexBuildBatch)
		if err != nil {
			return nil, fmt.Errorf("read memories: %w", err)
		}
		n, err := ix.addRows(rows, &after, nil)
		if err != nil {
			return nil, fmt.Errorf("read memories: %w", err)
		}
		if n < indexBuildBatch {
			return ix, nil
		}
	}
}

// addRows adds (or replaces) the nodes of rows of seq, type, room_id,
// world_id, entity_id, is_unique, embedding_dim, embedding (and
// vector_version when top is set, which then keeps the highest), and
// closes them; last is set to the last seq read. A row of another size
// than the graph's only removes the memory's node. The caller holds ix.mu
// or owns ix alone.
func (ix *agentIndex) addRows(rows *sql.Rows, last, top *int64) (int, error) {
	defer rows.Close()
	n := 0
	for rows.Next() {
		var seq, version int64
		var table, room, world, entity string
		var unique bool
		var dim int
		var emb []byte
		dest := []any{&seq, &table, &room, &world, &entity, &unique, &dim, &emb}
		if top != nil {
			dest = append(dest, &version)
		}
		if err := rows.Scan(dest...); err != nil {
			return n, err
		}
		n++
		*last = seq
		if top != nil && version > *top {
			*top = version
		}
		ix.remove(seq)
		if dim != ix.g.Dim() {
			continue
		}
		id := ix.g.Add(decodeVector(emb))
		ix.seqs = append(ix.seqs, seq)
		ix.attrs = append(ix.attrs, nodeAttrs{table: ix.intern(table), room: ix.intern(room), world: ix.intern(world),
			entity: ix.intern(entity), unique: unique})
		if !ix.g.IsDeleted(id) {
			ix.live[seq] = id
		}
		ix.dirty++
	}
	return n, rows.Err()
}

// remove deletes the node of memory seq, if it has one.
func (ix *agentIndex) remove(seq int64) {
	if id, ok := ix.live[seq]; ok {
		ix.g.Delete(id)
		delete(ix.live, seq)
		ix.dirty++
	}
}

func (ix *agentIndex) intern(s string) uint32 {
	if id, ok := ix.names[s]; ok {
		return id
	}
	id := uint32(len(ix.strs))
	ix.names[s] = id
	ix.strs = append(ix.strs, s)
	return id
}

// catchUp applies the changes made since ix.version (by this process or
// any other) when there are at most limit of them; it reports false when
// there were more, leaving ix as it was.
func (ix *agentIndex) catchUp(ctx context.Context, s *Store, limit int) (bool, error) {
	r := s.read()
	var version int64
	if err := r.queryRow(ctx, `SELECT vector_version FROM agents WHERE id = ?`, ix.agentID).Scan(&version); err != nil {
		return false, fmt.Errorf("read agent: %w", err)
	}
	ix.mu.RLock()
	behind := version > ix.version
	ix.mu.RUnlock()
	if !behind {
		return true, nil
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if version <= ix.version {
		return true, nil // another search caught up meanwhile
	}
	if limit < math.MaxInt {
		var n int
		err := r.queryRow(ctx, `SELECT count(*) FROM memories WHERE agent_id = ? AND vector_version > ?`, ix.agentID, ix.version).Scan(&n)
		if err != nil {
			return false, err
		}
		if n > limit {
			return false, nil
		}
	}
	// Writes of one agent's embeddings take the agent's row in turn
	// (agentDimension), so versions are committed in order: the rows read
	// here hold every change up to the highest version among them.
	rows, err := r.query(ctx, `SELECT seq, type, room_id, world_id, entity_id, is_unique, embedding_dim, embedding, vector_version
		FROM memories WHERE agent_id = ? AND vector_version > ? ORDER BY vector_version, seq`, ix.agentID, ix.version)
	if err != nil {
		return false, err
	}
	top := version
	var last int64
	if _, err := ix.addRows(rows, &last, &top); err != nil {
		return false, err
	}
	ix.version = top
	return true, nil
}

// searchAgent answers a search from the agent's index; ok is false when
// the index cannot answer (not ready, too small, too far behind) and the
// search must be exact.
func (v *vectorIndexes) searchAgent(ctx context.Context, r runner, agentID string, q storage.SearchQuery, count, dim int) (out []sdk.Memory, ok bool, err error) {
	defer func() {
		if ok {
			v.answered.Add(1)
		} else {
			v.exact.Add(1)
		}
	}()
	small, err := v.small(ctx, r, agentID, dim)
	if err != nil || small {
		return nil, false, err
	}
	ix := v.get(agentID, dim)
	if ix == nil {
		return nil, false, nil
	}
	caught, err := ix.catchUp(ctx, v.s, indexCatchUpMax)
	if err != nil {
		return nil, false, err
	}
	if !caught {
		v.rebuild(ix)
		return nil, false, nil
	}
	v.afterCatchUp(ix)
	return v.search(ctx, r, ix, agentID, q, count)
}

// small reports an agent without an index that has fewer than v.min
// memories of dim values, which are searched exactly: an agent gets no
// index, in memory or on disk, until it needs one. The count is asked
// again only after the agent's vectors changed.
func (v *vectorIndexes) small(ctx context.Context, r runner, agentID string, dim int) (bool, error) {
	v.mu.Lock()
	_, indexed := v.agents[agentID]
	seen, counted := v.counted[agentID]
	v.mu.Unlock()
	if indexed {
		return false, nil
	}
	var version int64
	if err := r.queryRow(ctx, `SELECT vector_version FROM agents WHERE id = ?`, agentID).Scan(&version); err != nil {
		return false, err
	}
	if counted && seen == version {
		return true, nil
	}
	var n int
	err := r.queryRow(ctx, `SELECT count(*) FROM memories WHERE agent_id = ? AND embedding_dim = ?`, agentID, dim).Scan(&n)
	if err != nil {
		return false, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if n >= v.min {
		delete(v.counted, agentID)
		return false, nil
	}
	v.counted[agentID] = version
	return true, nil
}

// search runs q over the index: the graph proposes candidates, the
// database decides. Each candidate is read back with its full vector and
// the search's filters; its similarity is the exact one of the exact path.
// ok is false when the index cannot answer for sure (too many of its
// candidates are gone from the database): the caller searches exactly.
func (v *vectorIndexes) search(ctx context.Context, r runner, ix *agentIndex, agentID string, q storage.SearchQuery, count int) (out []sdk.Memory, ok bool, err error) {
	ix.mu.RLock()
	if ix.g.Len()-ix.g.Deleted() < v.min {
		ix.mu.RUnlock()
		return nil, false, nil
	}
	pq, valid := ix.g.Prepare(q.Embedding)
	if !valid {
		ix.mu.RUnlock()
		return nil, false, nil // a zero vector: every similarity is 0
	}
	keep, none := ix.filter(q)
	if none {
		ix.mu.RUnlock()
		return nil, true, nil
	}
	pool := max(4*count, 40)
	if pool > indexMaxPool {
		ix.mu.RUnlock()
		return nil, false, nil // as many as that: the exact scan costs about the same
	}
	var found []hnsw.Result
	if keep == nil {
		found = ix.g.Search(pq, pool, max(indexEf, pool), nil)
	} else {
		n := 0
		for id := range ix.attrs {
			if keep(uint32(id)) && !ix.g.IsDeleted(uint32(id)) {
				n++
			}
		}
		live := ix.g.Len() - ix.g.Deleted()
		if n <= indexScanMax {
			found = ix.g.Scan(pq, pool, keep)
		} else {
			ef := min(indexMaxEf, max(indexEf, pool)*live/n)
			found = ix.g.Search(pq, pool, ef, keep)
		}
	}
	cands := make([]ranked, len(found))
	nodes := make(map[int64]uint32, len(found))
	for i, f := range found {
		cands[i].seq = ix.seqs[f.ID]
		nodes[cands[i].seq] = f.ID
	}
	ix.mu.RUnlock()
	if len(cands) == 0 {
		return nil, true, nil
	}

	w := searchFilters(agentID, q)
	args := make([]any, 0, len(cands))
	for _, c := range cands {
		args = append(args, c.seq)
	}
	w.add("seq IN ("+placeholders(len(cands))+")", args...)
	rows, err := r.query(ctx, `SELECT seq, embedding FROM memories WHERE `+w.String(), w.args...)
	if err != nil {
		return nil, false, err
	}
	qn := norm(q.Embedding)
	kept := make([]ranked, 0, len(cands))
	cut := false
	for rows.Next() {
		var c ranked
		var b sql.RawBytes
		if err := rows.Scan(&c.seq, &b); err != nil {
			rows.Close()
			return nil, false, err
		}
		delete(nodes, c.seq)
		c.sim = cosineEncoded(q.Embedding, qn, b)
		if q.Threshold != 0 && c.sim < q.Threshold {
			cut = true
			continue
		}
		kept = append(kept, c)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, false, err
	}
	if len(nodes) > 0 {
		// Deleted since they were indexed (by another process: deletes
		// leave no trace to catch up with), or changed in a way the next
		// catch-up applies. They are not candidates any more.
		ix.mu.Lock()
		for seq, id := range nodes {
			if ix.live[seq] == id {
				ix.remove(seq)
			}
		}
		ix.mu.Unlock()
		v.maybeRebuild(ix)
	}
	// Too few left, with a full pool and none below the threshold: what
	// the gone candidates hid may be missing.
	if len(kept) < count && len(found) == pool && !cut {
		return nil, false, nil
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].better(kept[j]) })
	if len(kept) > count {
		kept = kept[:count]
	}
	if len(kept) == 0 {
		return nil, true, nil
	}
	out, err = v.s.loadRanked(ctx, r, agentID, kept)
	return out, err == nil, err
}

// filter returns the test of q's filters on nodes, nil when q has none;
// none is set when a filter names a value no node has. The caller holds
// ix.mu.
func (ix *agentIndex) filter(q storage.SearchQuery) (keep func(uint32) bool, none bool) {
	type test struct {
		pick func(*nodeAttrs) uint32
		want uint32
	}
	var tests []test
	for _, f := range []struct {
		val  string
		pick func(*nodeAttrs) uint32
	}{
		{q.Table, func(a *nodeAttrs) uint32 { return a.table }},
		{q.RoomID, func(a *nodeAttrs) uint32 { return a.room }},
		{q.WorldID, func(a *nodeAttrs) uint32 { return a.world }},
		{q.EntityID, func(a *nodeAttrs) uint32 { return a.entity }},
	} {
		if f.val == "" {
			continue
		}
		id, ok := ix.names[f.val]
		if !ok {
			return nil, true
		}
		tests = append(tests, test{f.pick, id})
	}
	if len(tests) == 0 && !q.Unique {
		return nil, false
	}
	unique := q.Unique
	return func(id uint32) bool {
		a := &ix.attrs[id]
		if unique && !a.unique {
			return false
		}
		for _, t := range tests {
			if t.pick(a) != t.want {
				return false
			}
		}
		return true
	}, false
}

// maybeRebuild rebuilds the agent's index in the background when deleted
// nodes have become a large share of it; the old one serves meanwhile.
func (v *vectorIndexes) maybeRebuild(ix *agentIndex) {
	ix.mu.RLock()
	g := ix.g
	stale := g.Len() >= v.min && float64(g.Deleted()) > indexRebuildShare*float64(g.Len())
	ix.mu.RUnlock()
	if stale {
		v.rebuild(ix)
	}
}

// rebuild builds the agent's index anew in the background, unless
// something else runs for it already; ix serves until the new one is
// ready.
func (v *vectorIndexes) rebuild(ix *agentIndex) {
	ix.mu.RLock()
	dim, deleted := ix.g.Dim(), ix.g.Deleted()
	ix.mu.RUnlock()
	if !ix.busy.CompareAndSwap(false, true) {
		return
	}
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		defer ix.busy.Store(false)
		fresh := &agentIndex{agentID: ix.agentID}
		if err := v.rebuildInto(v.ctx, fresh, ix, dim); err != nil {
			if v.ctx.Err() == nil {
				v.log.Warn("cannot rebuild the vector index; the old one serves", "agent", ix.agentID, "error", err)
			}
			return
		}
		size := fresh.g.Len() // fresh is its own until swapped in
		v.mu.Lock()
		swapped := v.agents[ix.agentID] == ix
		if swapped {
			v.agents[ix.agentID] = fresh
		}
		v.mu.Unlock()
		if !swapped {
			return // forgotten meanwhile
		}
		v.log.Info("vector index rebuilt", "agent", ix.agentID, "memories", size, "deleted_before", deleted)
		if err := v.save(fresh); err != nil {
			v.log.Warn("cannot save the vector index; it is rebuilt at the next start", "agent", ix.agentID, "error", err)
		}
	}()
}

// rebuildInto builds fresh from the database for old's agent and catches
// it up.
func (v *vectorIndexes) rebuildInto(ctx context.Context, fresh, old *agentIndex, dim int) error {
	old.mu.RLock()
	created := old.created
	old.mu.RUnlock()
	b, err := v.build(ctx, old.agentID, created, dim)
	if err != nil {
		return err
	}
	fresh.g, fresh.created, fresh.version, fresh.seqs, fresh.live, fresh.attrs, fresh.names, fresh.strs, fresh.dirty =
		b.g, b.created, b.version, b.seqs, b.live, b.attrs, b.names, b.strs, b.dirty
	if _, err := fresh.catchUp(ctx, v.s, math.MaxInt); err != nil {
		return err
	}
	fresh.ready.Store(true)
	return nil
}

// afterCatchUp saves the index in the background when enough has changed
// since its last save, so that a restart has little to catch up with.
func (v *vectorIndexes) afterCatchUp(ix *agentIndex) {
	ix.mu.RLock()
	due := ix.dirty >= max(1000, ix.g.Len()/10)
	ix.mu.RUnlock()
	if !due || v.dir == "" || !ix.busy.CompareAndSwap(false, true) {
		return
	}
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		defer ix.busy.Store(false)
		if err := v.save(ix); err != nil {
			v.log.Warn("cannot save the vector index", "agent", ix.agentID, "error", err)
		}
	}()
}

// reconcile checks a loaded index against the memories stored now: nodes
// of memories deleted since it was saved are removed. A memory up to the
// saved version that the index lacks means the file does not match the
// database: why says so.
func (v *vectorIndexes) reconcile(ctx context.Context, ix *agentIndex) (why string, err error) {
	rows, err := v.s.read().query(ctx, `SELECT seq, vector_version FROM memories WHERE agent_id = ? AND embedding_dim = ?`,
		ix.agentID, ix.g.Dim())
	if err != nil {
		return "", fmt.Errorf("read memories: %w", err)
	}
	defer rows.Close()
	stored := make(map[int64]bool, len(ix.live))
	missing := 0
	for rows.Next() {
		var seq, version int64
		if err := rows.Scan(&seq, &version); err != nil {
			return "", err
		}
		stored[seq] = true
		if _, ok := ix.live[seq]; !ok && version <= ix.version {
			missing++
		}
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	if missing > 0 {
		return fmt.Sprintf("it lacks %d stored memories", missing), nil
	}
	for seq := range ix.live {
		if !stored[seq] {
			ix.remove(seq)
		}
	}
	return "", nil
}

// describe says how search runs, for VectorSearch.
func (v *vectorIndexes) describe() string {
	where := "in memory"
	if v.dir != "" {
		where = "saved in " + v.dir
	}
	return fmt.Sprintf("HNSW index (8-bit vectors, %s) from %d memories", where, v.min)
}
