// Package hnsw is an approximate nearest-neighbour index for cosine
// similarity: a Hierarchical Navigable Small World graph (Malkov and
// Yashunin, 2016) over vectors quantized to 8 bits.
//
// Each vector is scaled to unit length and stored as int8 values with one
// float32 scale, a quarter of its float32 size: 100,000 vectors of 1,536
// dimensions take 150 MB instead of 600 MB, which matters inside a plugin
// whose data segment the host bounds (1 GiB by default). The similarity of
// two stored vectors is an integer dot product. It is approximate (about
// 1e-3 off); callers that need exact values re-rank the best candidates
// with their full-precision vectors.
//
// The maintained Go HNSW library served by the module proxy
// (github.com/coder/hnsw) keeps float32 vectors in memory, four times the
// size, has no notion of deleted nodes other than removing them from the
// graph, and its saved form carries no checksum; an index that must stay
// small, survive a crash mid-write and keep deleted nodes as waypoints was
// less work to write than to wrap.
//
// A Graph is not safe for concurrent use: callers hold a lock around Add and
// Delete, and may run any number of Searches at once under a read lock.
// Nodes are numbered from 0 in the order they were added. A deleted node
// stays in the graph as a waypoint but is never returned.
package hnsw

import (
	"math"
	"math/rand/v2"
	"sync"
	"unsafe"
)

// Config shapes a graph. Zero values take the defaults.
type Config struct {
	// M is how many neighbours a node keeps on the upper layers (twice as
	// many on layer 0). Default 16.
	M int
	// EfConstruction is the breadth of the search that finds a new node's
	// neighbours. Default 100.
	EfConstruction int
	// Seed makes the random layer assignment repeatable.
	Seed uint64
}

// Graph is the index.
type Graph struct {
	dim    int
	m, m0  int
	efc    int
	ml     float64
	rng    *rand.Rand
	vecs   []int8    // n*dim
	scales []float32 // per node: value = int8 * scale
	levels []uint8
	// l0 holds layer 0: per node one count followed by m0 neighbours.
	l0 []uint32
	// up holds the upper layers of the nodes that have them: per level
	// one count followed by m neighbours.
	up      map[uint32][]uint32
	deleted []uint64 // bit set
	nDel    int
	entry   uint32
	top     int // level of entry; -1 when empty
	visit   sync.Pool
}

// New returns an empty graph for vectors of dim values.
func New(dim int, c Config) *Graph {
	if c.M <= 0 {
		c.M = 16
	}
	if c.EfConstruction <= 0 {
		c.EfConstruction = 100
	}
	g := &Graph{dim: dim, m: c.M, m0: 2 * c.M, efc: c.EfConstruction, ml: 1 / math.Log(float64(c.M)),
		rng: rand.New(rand.NewPCG(c.Seed, 0x9e3779b97f4a7c15)), up: map[uint32][]uint32{}, top: -1}
	return g
}

// Dim is the size of the vectors.
func (g *Graph) Dim() int { return g.dim }

// Len is the number of nodes, deleted ones included.
func (g *Graph) Len() int { return len(g.levels) }

// Deleted is the number of deleted nodes.
func (g *Graph) Deleted() int { return g.nDel }

// IsDeleted reports whether node id is deleted.
func (g *Graph) IsDeleted(id uint32) bool { return g.deleted[id>>6]&(1<<(id&63)) != 0 }

// Delete marks node id deleted; it stays a waypoint.
func (g *Graph) Delete(id uint32) {
	if int(id) >= g.Len() || g.IsDeleted(id) {
		return
	}
	g.deleted[id>>6] |= 1 << (id & 63)
	g.nDel++
}

// Bytes is about how much memory the graph holds.
func (g *Graph) Bytes() int {
	n := len(g.vecs) + 4*len(g.scales) + len(g.levels) + 4*len(g.l0) + 8*len(g.deleted)
	for _, l := range g.up {
		n += 4*len(l) + 16
	}
	return n
}

// Query is a vector prepared for searching: quantized like the stored ones.
type Query struct {
	q     []int8
	scale float32
}

// Prepare quantizes v for Search; ok is false for a zero vector or one of
// another size, which has no meaningful similarity.
func (g *Graph) Prepare(v []float32) (q Query, ok bool) {
	if len(v) != g.dim {
		return Query{}, false
	}
	q.q = make([]int8, g.dim)
	q.scale, ok = quantize(v, q.q)
	return q, ok
}

// quantize writes v scaled to unit length as int8 values into dst and
// returns the scale that turns them back; false for a zero vector.
func quantize(v []float32, dst []int8) (float32, bool) {
	var ss, mx float64
	for _, x := range v {
		f := float64(x)
		ss += f * f
		if a := math.Abs(f); a > mx {
			mx = a
		}
	}
	if ss == 0 || math.IsNaN(ss) || math.IsInf(ss, 0) {
		return 0, false
	}
	n := math.Sqrt(ss)
	s := mx / n / 127 // the largest value maps to ±127
	for i, x := range v {
		dst[i] = int8(math.Round(float64(x) / n / s))
	}
	return float32(s), true
}

// Add inserts v as a new node and returns its id. A zero vector (or one of
// another size) is added deleted, so that ids stay dense.
func (g *Graph) Add(v []float32) uint32 {
	id := uint32(len(g.levels))
	g.vecs = append(g.vecs, make([]int8, g.dim)...)
	s, ok := 0.0, false
	if len(v) == g.dim {
		var s32 float32
		s32, ok = quantize(v, g.vecs[int(id)*g.dim:])
		s = float64(s32)
	}
	g.scales = append(g.scales, float32(s))
	lvl := int(math.Floor(-math.Log(1-g.rng.Float64()) * g.ml))
	if lvl > 30 {
		lvl = 30
	}
	g.levels = append(g.levels, uint8(lvl))
	g.l0 = append(g.l0, make([]uint32, g.m0+1)...)
	if lvl > 0 {
		g.up[id] = make([]uint32, lvl*(g.m+1))
	}
	if int(id>>6) >= len(g.deleted) {
		g.deleted = append(g.deleted, 0)
	}
	if !ok {
		g.deleted[id>>6] |= 1 << (id & 63)
		g.nDel++
		return id
	}
	g.link(id, lvl)
	return id
}

// link connects a new node into the graph.
func (g *Graph) link(id uint32, lvl int) {
	if g.top < 0 {
		g.entry, g.top = id, lvl
		return
	}
	q := Query{q: g.vec(id), scale: g.scales[id]}
	cur := g.entry
	curSim := g.sim(&q, cur)
	for l := g.top; l > lvl; l-- {
		cur, curSim = g.greedy(&q, cur, curSim, l)
	}
	vs := g.visited()
	defer g.visit.Put(vs)
	for l := min(lvl, g.top); l >= 0; l-- {
		cands := g.searchLayer(&q, []cand{{cur, curSim}}, g.efc, l, vs, nil)
		maxN := g.m
		if l == 0 {
			maxN = g.m0
		}
		sel := g.selectNeighbours(cands, g.m)
		g.setLinks(id, l, sel)
		for _, c := range sel {
			g.addLink(c.id, id, c.sim, l, maxN)
		}
		cur, curSim = cands[0].id, cands[0].sim
	}
	if lvl > g.top {
		g.entry, g.top = id, lvl
	}
}

func (g *Graph) vec(id uint32) []int8 { return g.vecs[int(id)*g.dim : int(id+1)*g.dim] }

// links returns node id's neighbour list at level l (count first).
func (g *Graph) links(id uint32, l int) []uint32 {
	if l == 0 {
		return g.l0[int(id)*(g.m0+1) : int(id+1)*(g.m0+1)]
	}
	u := g.up[id]
	return u[(l-1)*(g.m+1) : l*(g.m+1)]
}

func (g *Graph) setLinks(id uint32, l int, cs []cand) {
	ls := g.links(id, l)
	ls[0] = uint32(len(cs))
	for i, c := range cs {
		ls[1+i] = c.id
	}
}

// addLink adds to into from's neighbours at level l, pruning them with the
// selection heuristic when they are full.
func (g *Graph) addLink(from, to uint32, sim float32, l, maxN int) {
	ls := g.links(from, l)
	n := int(ls[0])
	if n < maxN {
		ls[1+n] = to
		ls[0]++
		return
	}
	q := Query{q: g.vec(from), scale: g.scales[from]}
	cs := make([]cand, 0, n+1)
	for _, nb := range ls[1 : 1+n] {
		cs = append(cs, cand{nb, g.sim(&q, nb)})
	}
	cs = append(cs, cand{to, sim})
	sortDesc(cs)
	sel := g.selectNeighbours(cs, maxN)
	g.setLinks(from, l, sel)
}

// selectNeighbours is the heuristic of the paper (algorithm 4): a candidate
// is kept when it is closer to the base than to every neighbour kept so
// far, so that links spread in every direction; the rest fill up what is
// left. cs is sorted most similar first.
func (g *Graph) selectNeighbours(cs []cand, m int) []cand {
	if len(cs) <= m {
		return append([]cand(nil), cs...)
	}
	out := make([]cand, 0, m)
	var pruned []cand
	for _, c := range cs {
		if len(out) == m {
			break
		}
		qc := Query{q: g.vec(c.id), scale: g.scales[c.id]}
		good := true
		for _, o := range out {
			if g.sim(&qc, o.id) > c.sim {
				good = false
				break
			}
		}
		if good {
			out = append(out, c)
		} else {
			pruned = append(pruned, c)
		}
	}
	for _, c := range pruned {
		if len(out) == m {
			break
		}
		out = append(out, c)
	}
	return out
}

// greedy walks level l towards q from cur while a neighbour is closer.
func (g *Graph) greedy(q *Query, cur uint32, curSim float32, l int) (uint32, float32) {
	for changed := true; changed; {
		changed = false
		ls := g.links(cur, l)
		for _, nb := range ls[1 : 1+ls[0]] {
			if s := g.sim(q, nb); s > curSim {
				cur, curSim, changed = nb, s, true
			}
		}
	}
	return cur, curSim
}

// Result is a node found by Search.
type Result struct {
	ID uint32
	// Similarity is the approximate cosine similarity.
	Similarity float32
}

// Search returns up to k live nodes most similar to q, most similar first,
// among those keep accepts (all when keep is nil). ef (at least k) is the
// breadth of the search: larger finds more of the true nearest at a cost.
func (g *Graph) Search(q Query, k, ef int, keep func(id uint32) bool) []Result {
	if g.top < 0 || k <= 0 || q.q == nil {
		return nil
	}
	ef = max(ef, k)
	cur := g.entry
	curSim := g.sim(&q, cur)
	for l := g.top; l > 0; l-- {
		cur, curSim = g.greedy(&q, cur, curSim, l)
	}
	vs := g.visited()
	defer g.visit.Put(vs)
	accept := func(id uint32) bool { return !g.IsDeleted(id) && (keep == nil || keep(id)) }
	found := g.searchLayer(&q, []cand{{cur, curSim}}, ef, 0, vs, accept)
	if len(found) > k {
		found = found[:k]
	}
	out := make([]Result, len(found))
	for i, c := range found {
		out[i] = Result{ID: c.id, Similarity: c.sim}
	}
	return out
}

// Scan compares q with every live node keep accepts and returns the k most
// similar: what Search approximates, for small selections.
func (g *Graph) Scan(q Query, k int, keep func(id uint32) bool) []Result {
	if k <= 0 || q.q == nil {
		return nil
	}
	h := &minHeap{}
	for id := uint32(0); int(id) < g.Len(); id++ {
		if g.IsDeleted(id) || (keep != nil && !keep(id)) {
			continue
		}
		s := g.sim(&q, id)
		if len(*h) < k {
			h.push(cand{id, s})
		} else if s > (*h)[0].sim {
			(*h)[0] = cand{id, s}
			h.down(0)
		}
	}
	out := make([]Result, len(*h))
	for i := len(out) - 1; i >= 0; i-- {
		c := h.pop()
		out[i] = Result{ID: c.id, Similarity: c.sim}
	}
	return out
}

// searchLayer is the beam search of the paper (algorithm 2) at level l:
// it returns up to ef nodes, most similar first. With accept set, only
// accepted nodes are returned, but every node is walked through.
func (g *Graph) searchLayer(q *Query, entry []cand, ef, l int, vs *visitSet, accept func(uint32) bool) []cand {
	vs.reset(g.Len())
	cands := &maxHeap{}
	res := &minHeap{}
	for _, e := range entry {
		vs.set(e.id)
		cands.push(e)
		if accept == nil || accept(e.id) {
			res.push(e)
		}
	}
	for len(*cands) > 0 {
		c := cands.pop()
		if len(*res) >= ef && c.sim < (*res)[0].sim {
			break
		}
		ls := g.links(c.id, l)
		for _, nb := range ls[1 : 1+ls[0]] {
			if vs.has(nb) {
				continue
			}
			vs.set(nb)
			s := g.sim(q, nb)
			if len(*res) < ef || s > (*res)[0].sim {
				cands.push(cand{nb, s})
				if accept == nil || accept(nb) {
					res.push(cand{nb, s})
					if len(*res) > ef {
						res.pop()
					}
				}
			}
		}
	}
	out := make([]cand, len(*res))
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = res.pop()
	}
	return out
}

// sim is the approximate cosine similarity of q and node id.
func (g *Graph) sim(q *Query, id uint32) float32 {
	return float32(dot(q.q, g.vec(id))) * q.scale * g.scales[id]
}

// dotGo is the integer dot product of two vectors of the same length.
func dotGo(a, b []int8) int32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 int32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		aa, bb := a[i:i+8:i+8], b[i:i+8:i+8]
		s0 += int32(aa[0])*int32(bb[0]) + int32(aa[4])*int32(bb[4])
		s1 += int32(aa[1])*int32(bb[1]) + int32(aa[5])*int32(bb[5])
		s2 += int32(aa[2])*int32(bb[2]) + int32(aa[6])*int32(bb[6])
		s3 += int32(aa[3])*int32(bb[3]) + int32(aa[7])*int32(bb[7])
	}
	for ; i < len(a); i++ {
		s0 += int32(a[i]) * int32(b[i])
	}
	return s0 + s1 + s2 + s3
}

func (g *Graph) visited() *visitSet {
	if v, ok := g.visit.Get().(*visitSet); ok {
		return v
	}
	return &visitSet{}
}

// visitSet marks nodes with a generation number, so that clearing it is
// free.
type visitSet struct {
	gen  uint16
	mark []uint16
}

func (v *visitSet) reset(n int) {
	if len(v.mark) < n {
		v.mark = append(v.mark, make([]uint16, n-len(v.mark)+n/4)...)
	}
	v.gen++
	if v.gen == 0 {
		clear(v.mark)
		v.gen = 1
	}
}

func (v *visitSet) has(id uint32) bool { return v.mark[id] == v.gen }
func (v *visitSet) set(id uint32)      { v.mark[id] = v.gen }

type cand struct {
	id  uint32
	sim float32
}

// maxHeap pops the most similar first; minHeap the least similar. Typed
// rather than container/heap, whose interface boxes every element.
type (
	maxHeap []cand
	minHeap []cand
)

func (h *maxHeap) push(c cand) { *h = append(*h, c); siftUp(*h, len(*h)-1, moreSimilar) }
func (h *maxHeap) pop() cand   { return popHeap((*[]cand)(h), moreSimilar) }
func (h *minHeap) push(c cand) { *h = append(*h, c); siftUp(*h, len(*h)-1, lessSimilar) }
func (h *minHeap) pop() cand   { return popHeap((*[]cand)(h), lessSimilar) }
func (h *minHeap) down(i int)  { siftDown(*h, i, lessSimilar) }

func moreSimilar(a, b cand) bool { return a.sim > b.sim }
func lessSimilar(a, b cand) bool { return a.sim < b.sim }

func siftUp(h []cand, i int, before func(a, b cand) bool) {
	for i > 0 {
		p := (i - 1) / 2
		if !before(h[i], h[p]) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func siftDown(h []cand, i int, before func(a, b cand) bool) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		c := l
		if r := l + 1; r < len(h) && before(h[r], h[l]) {
			c = r
		}
		if !before(h[c], h[i]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

func popHeap(h *[]cand, before func(a, b cand) bool) cand {
	old := *h
	top := old[0]
	n := len(old) - 1
	old[0] = old[n]
	*h = old[:n]
	siftDown(*h, 0, before)
	return top
}

func sortDesc(cs []cand) {
	// insertion sort: the lists are short (at most 2M+1)
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && cs[j].sim > cs[j-1].sim; j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

// int8Bytes is v's memory as bytes, for reading and writing it whole.
func int8Bytes(v []int8) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v))
}
