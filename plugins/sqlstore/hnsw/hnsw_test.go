package hnsw

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
)

// exactTop is the ids of the k vectors of vs most similar to q by float64
// cosine, skipping those skip rejects.
func exactTop(vs [][]float32, q []float32, k int, skip func(int) bool) []int {
	type sc struct {
		i int
		s float64
	}
	var all []sc
	for i, v := range vs {
		if skip != nil && skip(i) {
			continue
		}
		all = append(all, sc{i, cos(q, v)})
	}
	sort.Slice(all, func(a, b int) bool { return all[a].s > all[b].s })
	out := []int{}
	for _, x := range all[:min(k, len(all))] {
		out = append(out, x.i)
	}
	return out
}

func cos(a, b []float32) float64 {
	var d, na, nb float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return d / math.Sqrt(na*nb)
}

func randomVecs(r *rand.Rand, n, dim int) [][]float32 {
	vs := make([][]float32, n)
	for i := range vs {
		vs[i] = make([]float32, dim)
		for j := range vs[i] {
			vs[i][j] = float32(r.NormFloat64())
		}
	}
	return vs
}

// clusteredVecs are n vectors around 50 centres, as embeddings of texts
// on a few topics are.
func clusteredVecs(r *rand.Rand, n, dim int) [][]float32 {
	centres := randomVecs(r, 50, dim)
	vs := make([][]float32, n)
	for i := range vs {
		c := centres[r.IntN(len(centres))]
		vs[i] = make([]float32, dim)
		for j := range vs[i] {
			vs[i][j] = c[j] + 0.6*float32(r.NormFloat64())
		}
	}
	return vs
}

// recall is the share of the exact top k that the graph finds, over
// queries that are stored vectors moved a little (as a new message is
// close to earlier ones).
func recall(t testing.TB, g *Graph, vs [][]float32, k, ef, queries int, r *rand.Rand) float64 {
	hit, total := 0, 0
	for range queries {
		base := vs[r.IntN(len(vs))]
		q := make([]float32, len(base))
		for j := range q {
			q[j] = base[j] + 0.5*float32(r.NormFloat64())
		}
		want := exactTop(vs, q, k, func(i int) bool { return g.IsDeleted(uint32(i)) })
		pq, ok := g.Prepare(q)
		if !ok {
			t.Fatal("query refused")
		}
		got := map[int]bool{}
		for _, res := range g.Search(pq, k, ef, nil) {
			got[int(res.ID)] = true
		}
		for _, w := range want {
			if got[w] {
				hit++
			}
		}
		total += len(want)
	}
	return float64(hit) / float64(total)
}

func build(vs [][]float32) *Graph {
	g := New(len(vs[0]), Config{Seed: 1})
	for _, v := range vs {
		g.Add(v)
	}
	return g
}

func TestRecall(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		name string
		vs   [][]float32
	}{
		{"random", randomVecs(r, 2000, 96)},
		{"clustered", clusteredVecs(r, 2000, 96)},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := build(c.vs)
			if rc := recall(t, g, c.vs, 10, 100, 100, r); rc < 0.95 {
				t.Fatalf("recall@10 %.3f < 0.95", rc)
			} else {
				t.Logf("recall@10 %.3f", rc)
			}
		})
	}
}

func TestDeleteAndFilter(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	vs := clusteredVecs(r, 1200, 48)
	g := build(vs)
	for id := uint32(0); id < 1200; id += 2 {
		g.Delete(id)
	}
	g.Delete(0) // twice is once
	if g.Deleted() != 600 {
		t.Fatalf("%d deleted", g.Deleted())
	}
	q, _ := g.Prepare(vs[10])
	for _, res := range g.Search(q, 50, 100, nil) {
		if res.ID%2 == 0 {
			t.Fatalf("deleted node %d returned", res.ID)
		}
	}
	if rc := recall(t, g, vs, 10, 64, 50, r); rc < 0.95 {
		t.Fatalf("recall@10 with half the nodes deleted %.3f", rc)
	}
	keep := func(id uint32) bool { return id%10 == 3 }
	got := g.Search(q, 10, 200, keep)
	want := g.Scan(q, 10, keep)
	if len(got) != 10 || len(want) != 10 {
		t.Fatalf("filtered search found %d, scan %d", len(got), len(want))
	}
	for _, res := range got {
		if !keep(res.ID) {
			t.Fatalf("node %d does not pass the filter", res.ID)
		}
	}
	// Scan is exact over the quantized vectors: its best is the
	// filter's best.
	exact := exactTop(vs, vs[10], 1, func(i int) bool { return !keep(uint32(i)) || g.IsDeleted(uint32(i)) })
	if int(want[0].ID) != exact[0] {
		t.Fatalf("scan's best %d, exact best %d", want[0].ID, exact[0])
	}
}

func TestZeroVector(t *testing.T) {
	g := New(4, Config{})
	if id := g.Add([]float32{0, 0, 0, 0}); !g.IsDeleted(id) {
		t.Fatal("a zero vector is searchable")
	}
	if _, ok := g.Prepare([]float32{0, 0, 0, 0}); ok {
		t.Fatal("a zero query was prepared")
	}
	g.Add([]float32{1, 0, 0, 0})
	q, _ := g.Prepare([]float32{1, 1, 0, 0})
	if res := g.Search(q, 5, 10, nil); len(res) != 1 || res[0].ID != 1 || math.Abs(float64(res[0].Similarity)-math.Sqrt2/2) > 0.01 {
		t.Fatalf("%+v", res)
	}
}

func TestSaveLoad(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	vs := clusteredVecs(r, 600, 32)
	g := build(vs)
	g.Delete(7)
	var buf bytes.Buffer
	if _, err := g.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	saved := buf.Bytes()
	h, err := Read(bytes.NewReader(saved), int64(len(saved)), 2)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := g.Prepare(vs[3])
	a, b := g.Search(q, 10, 50, nil), h.Search(q, 10, 50, nil)
	if len(a) != 10 || len(a) != len(b) {
		t.Fatalf("%d vs %d results", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("result %d: %+v before, %+v after", i, a[i], b[i])
		}
	}
	if !h.IsDeleted(7) || h.Deleted() != 1 {
		t.Fatal("deleted node lost")
	}
	// It goes on growing.
	h.Add(vs[0])
	if h.Len() != 601 {
		t.Fatal(h.Len())
	}
	// Every cut and many flipped bytes are errors, never a panic or a
	// graph that would fail later.
	for _, cut := range []int{0, 5, 8, 30, 100, len(saved) / 2, len(saved) - 1} {
		if _, err := Read(bytes.NewReader(saved[:cut]), int64(cut), 1); err == nil {
			t.Fatalf("a file cut at %d bytes loaded", cut)
		}
	}
	// A header that claims more nodes than the file holds is refused
	// before anything is allocated.
	huge := bytes.Clone(saved)
	binary.LittleEndian.PutUint64(huge[8+3*8:], 1<<31)
	if _, err := Read(bytes.NewReader(huge), int64(len(huge)), 1); err == nil || !strings.Contains(err.Error(), "do not fit") {
		t.Fatalf("a header of 2^31 nodes: %v", err)
	}
	for i := 0; i < 300; i++ {
		bad := bytes.Clone(saved)
		pos := r.IntN(len(bad))
		bad[pos] ^= byte(1 + r.IntN(255))
		if g2, err := Read(bytes.NewReader(bad), int64(len(bad)), 1); err == nil {
			// Bytes of vectors and scales can change without the shape
			// noticing (the file's checksum catches those); the graph must
			// still be usable.
			g2.Search(q, 10, 50, nil)
			g2.Add(vs[1])
		}
	}
}

func BenchmarkDot1536(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	x, y := make([]int8, 1536), make([]int8, 1536)
	for i := range x {
		x[i], y[i] = int8(r.IntN(255)-127), int8(r.IntN(255)-127)
	}
	var s int32
	for b.Loop() {
		s += dot(x, y)
	}
	_ = s
}

func BenchmarkBuild(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	vs := clusteredVecs(r, 5000, 1536)
	for b.Loop() {
		build(vs)
	}
}

// TestDot checks the vector kernel against the plain loop at every length
// around its block size and at the extreme values.
func TestDot(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for n := 0; n < 200; n++ {
		a, b := make([]int8, n), make([]int8, n)
		for i := range a {
			a[i], b[i] = int8(r.IntN(256)-128), int8(r.IntN(256)-128)
		}
		if got, want := dot(a, b), dotGo(a, b); got != want {
			t.Fatalf("n=%d: %d, want %d", n, got, want)
		}
	}
	a := bytes.Repeat([]byte{0x80}, 4096) // -128 everywhere
	x := make([]int8, len(a))
	for i := range x {
		x[i] = int8(a[i])
	}
	if got := dot(x, x); got != 4096*128*128 {
		t.Fatalf("extremes: %d", got)
	}
}
