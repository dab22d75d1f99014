package hnsw

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// magic starts a saved graph; its last byte is the format's version.
var magic = [8]byte{'a', 'h', 'h', 'n', 's', 'w', 0, 1}

// WriteTo writes the graph in its saved form. The form has no checksum of
// its own: the caller's file carries one (see plugins/sqlstore).
func (g *Graph) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, 1<<16)
	cw := &countWriter{w: bw}
	put := func(vs ...uint64) {
		var b [8]byte
		for _, v := range vs {
			binary.LittleEndian.PutUint64(b[:], v)
			cw.Write(b[:])
		}
	}
	cw.Write(magic[:])
	top := uint64(math.MaxUint64)
	if g.top >= 0 {
		top = uint64(g.top)
	}
	put(uint64(g.dim), uint64(g.m), uint64(g.efc), uint64(g.Len()), uint64(g.nDel), uint64(g.entry), top)
	for _, s := range g.scales {
		put(uint64(math.Float32bits(s)))
	}
	cw.Write(g.levels)
	cw.Write(int8Bytes(g.vecs))
	writeU32s(cw, g.l0)
	for _, d := range g.deleted {
		put(d)
	}
	for id := uint32(0); int(id) < g.Len(); id++ {
		if g.levels[id] > 0 {
			writeU32s(cw, g.up[id])
		}
	}
	if cw.err == nil {
		cw.err = bw.Flush()
	}
	return cw.n, cw.err
}

// Read reads a graph that WriteTo wrote, from at most size bytes. It checks
// every number it reads against the graph's shape and size, so that a
// damaged file is an error, never a graph that fails later nor an
// allocation larger than the file. seed starts the random layer assignment
// of the nodes added from now on.
func Read(r io.Reader, size int64, seed uint64) (*Graph, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var m [8]byte
	if _, err := io.ReadFull(br, m[:]); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if m != magic {
		return nil, errors.New("not a saved graph of this version")
	}
	var hdr [7]uint64
	if err := binary.Read(br, binary.LittleEndian, &hdr); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	dim, mm, efc, n, nDel, entry, top := hdr[0], hdr[1], hdr[2], hdr[3], hdr[4], hdr[5], hdr[6]
	switch {
	case dim == 0 || dim > 1<<16:
		return nil, fmt.Errorf("bad dimension %d", dim)
	case mm == 0 || mm > 256 || efc == 0 || efc > 1<<16:
		return nil, fmt.Errorf("bad shape M=%d efConstruction=%d", mm, efc)
	case n >= math.MaxUint32 || n*dim > 1<<36:
		return nil, fmt.Errorf("bad size %d", n)
	case nDel > n || (n > 0 && entry >= n):
		return nil, fmt.Errorf("bad counts: %d deleted, entry %d of %d nodes", nDel, entry, n)
	case (n == 0) != (top == math.MaxUint64) || (top != math.MaxUint64 && top > 30):
		return nil, fmt.Errorf("bad top level %d", top)
	case n*(dim+8+1+4*(2*mm+1)) > uint64(max(size, 0)):
		return nil, fmt.Errorf("%d nodes of %d values do not fit in %d bytes", n, dim, size)
	}
	g := New(int(dim), Config{M: int(mm), EfConstruction: int(efc), Seed: seed})
	g.nDel, g.entry, g.top = int(nDel), uint32(entry), -1
	if top != math.MaxUint64 {
		g.top = int(top)
	}
	g.scales = make([]float32, n)
	for i := range g.scales {
		var b [8]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return nil, fmt.Errorf("read scales: %w", err)
		}
		g.scales[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint64(b[:])))
	}
	g.levels = make([]uint8, n)
	if _, err := io.ReadFull(br, g.levels); err != nil {
		return nil, fmt.Errorf("read levels: %w", err)
	}
	g.vecs = make([]int8, n*dim)
	if _, err := io.ReadFull(br, int8Bytes(g.vecs)); err != nil {
		return nil, fmt.Errorf("read vectors: %w", err)
	}
	g.l0 = make([]uint32, n*uint64(g.m0+1))
	if err := readU32s(br, g.l0); err != nil {
		return nil, fmt.Errorf("read layer 0: %w", err)
	}
	g.deleted = make([]uint64, (n+63)/64)
	if err := binary.Read(br, binary.LittleEndian, g.deleted); err != nil {
		return nil, fmt.Errorf("read deleted nodes: %w", err)
	}
	dels := 0
	for id := uint32(0); uint64(id) < n; id++ {
		lvl := int(g.levels[id])
		if lvl > 30 || (g.top >= 0 && lvl > g.top) {
			return nil, fmt.Errorf("node %d: bad level %d", id, lvl)
		}
		if g.IsDeleted(id) {
			dels++
		}
		if lvl > 0 {
			u := make([]uint32, lvl*(g.m+1))
			if err := readU32s(br, u); err != nil {
				return nil, fmt.Errorf("read upper layers: %w", err)
			}
			g.up[id] = u
		}
		for l := 0; l <= lvl; l++ {
			ls := g.links(id, l)
			maxN := g.m
			if l == 0 {
				maxN = g.m0
			}
			if int(ls[0]) > maxN {
				return nil, fmt.Errorf("node %d: %d links at level %d", id, ls[0], l)
			}
			for _, nb := range ls[1 : 1+ls[0]] {
				if uint64(nb) >= n || int(g.levels[nb]) < l {
					return nil, fmt.Errorf("node %d: bad link to %d at level %d", id, nb, l)
				}
			}
		}
	}
	if dels != g.nDel {
		return nil, fmt.Errorf("%d nodes are marked deleted, the header says %d", dels, g.nDel)
	}
	if n > 0 && int(g.levels[entry]) != g.top {
		return nil, fmt.Errorf("entry node %d has level %d, not the top %d", entry, g.levels[entry], g.top)
	}
	return g, nil
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(b []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	c.err = err
	return n, err
}

func writeU32s(w io.Writer, vs []uint32) {
	var buf [4096]byte
	for len(vs) > 0 {
		k := min(len(vs), len(buf)/4)
		for i, v := range vs[:k] {
			binary.LittleEndian.PutUint32(buf[4*i:], v)
		}
		w.Write(buf[:4*k])
		vs = vs[k:]
	}
}

func readU32s(r io.Reader, vs []uint32) error {
	var buf [4096]byte
	for len(vs) > 0 {
		k := min(len(vs), len(buf)/4)
		if _, err := io.ReadFull(r, buf[:4*k]); err != nil {
			return err
		}
		for i := range vs[:k] {
			vs[i] = binary.LittleEndian.Uint32(buf[4*i:])
		}
		vs = vs[k:]
	}
	return nil
}
