package sqlstore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/agenthost/agenthost/plugins/sqlstore/hnsw"
)

// indexMagic starts a saved index; its last byte is the format's version.
var indexMagic = [8]byte{'a', 'h', 'v', 'e', 'c', 'i', 'x', 1}

// save writes ix to its file: to a temporary file first, synced, then
// renamed over the old one, so that a crash at any moment leaves the old
// file or the new one, whole. The file ends with a CRC-32C of everything
// before it, so that a damaged file is refused at load.
func (v *vectorIndexes) save(ix *agentIndex) error {
	if v.dir == "" || !v.current(ix) {
		return nil
	}
	if err := os.MkdirAll(v.dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(v.dir, ix.agentID+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	ix.mu.RLock()
	err = ix.writeTo(f)
	saved := ix.dirty
	ix.mu.RUnlock()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if !v.current(ix) {
		return nil // forgotten meanwhile
	}
	if err := os.Rename(tmp, v.path(ix.agentID)); err != nil {
		return err
	}
	if d, err := os.Open(v.dir); err == nil {
		_ = d.Sync() // the rename itself survives a power loss
		d.Close()
	}
	ix.mu.Lock()
	ix.dirty -= saved
	ix.mu.Unlock()
	v.log.Debug("vector index saved", "agent", ix.agentID, "file", v.path(ix.agentID))
	return nil
}

func (ix *agentIndex) writeTo(f io.Writer) error {
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	bw := bufio.NewWriterSize(io.MultiWriter(f, crc), 1<<16)
	put := func(vs ...int64) {
		var b [8]byte
		for _, x := range vs {
			binary.LittleEndian.PutUint64(b[:], uint64(x))
			bw.Write(b[:])
		}
	}
	bw.Write(indexMagic[:])
	put(int64(len(ix.agentID)))
	bw.WriteString(ix.agentID)
	put(ix.created, ix.version, int64(len(ix.strs)))
	for _, s := range ix.strs {
		put(int64(len(s)))
		bw.WriteString(s)
	}
	put(int64(len(ix.seqs)))
	for i, seq := range ix.seqs {
		a := ix.attrs[i]
		u := int64(0)
		if a.unique {
			u = 1
		}
		put(seq, int64(a.table), int64(a.room), int64(a.world), int64(a.entity), u)
	}
	if _, err := ix.g.WriteTo(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	var sum [4]byte
	binary.LittleEndian.PutUint32(sum[:], crc.Sum32())
	_, err := f.Write(sum[:])
	return err
}

// load reads the agent's saved index; nil without error when there is
// none. Any damage is an error: the caller rebuilds.
func (v *vectorIndexes) load(agentID string) (*agentIndex, error) {
	if v.dir == "" {
		return nil, nil
	}
	f, err := os.Open(v.path(agentID))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() < int64(len(indexMagic))+4 {
		return nil, fmt.Errorf("the file is %d bytes long", st.Size())
	}
	body := st.Size() - 4
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	br := bufio.NewReaderSize(io.TeeReader(io.LimitReader(f, body), crc), 1<<16)
	ix, err := readIndex(br, body, agentID)
	if err != nil {
		return nil, err
	}
	if n, _ := io.Copy(io.Discard, br); n != 0 {
		return nil, fmt.Errorf("%d bytes follow the index", n)
	}
	var sum [4]byte
	if _, err := f.ReadAt(sum[:], body); err != nil {
		return nil, err
	}
	if binary.LittleEndian.Uint32(sum[:]) != crc.Sum32() {
		return nil, errors.New("the checksum does not match: the file is damaged")
	}
	return ix, nil
}

func readIndex(br *bufio.Reader, size int64, agentID string) (*agentIndex, error) {
	var m [8]byte
	if _, err := io.ReadFull(br, m[:]); err != nil {
		return nil, err
	}
	if m != indexMagic {
		return nil, errors.New("not a vector index of this version")
	}
	get := func() (int64, error) {
		var b [8]byte
		_, err := io.ReadFull(br, b[:])
		return int64(binary.LittleEndian.Uint64(b[:])), err
	}
	str := func(max int64) (string, error) {
		n, err := get()
		if err != nil {
			return "", err
		}
		if n < 0 || n > max {
			return "", fmt.Errorf("a text of %d bytes", n)
		}
		b := make([]byte, n)
		_, err = io.ReadFull(br, b)
		return string(b), err
	}
	id, err := str(64)
	if err != nil {
		return nil, err
	}
	if id != agentID {
		return nil, fmt.Errorf("it is the index of agent %q", id)
	}
	ix := &agentIndex{agentID: agentID, live: map[int64]uint32{}, names: map[string]uint32{}}
	if ix.created, err = get(); err != nil {
		return nil, err
	}
	if ix.version, err = get(); err != nil {
		return nil, err
	}
	ns, err := get()
	if err != nil {
		return nil, err
	}
	if ns < 0 || ns > 1<<32 {
		return nil, fmt.Errorf("%d names", ns)
	}
	for range ns {
		s, err := str(MaxKeyLen * 4)
		if err != nil {
			return nil, err
		}
		if _, dup := ix.names[s]; dup {
			return nil, fmt.Errorf("name %q twice", s)
		}
		ix.intern(s)
	}
	n, err := get()
	if err != nil {
		return nil, err
	}
	if n < 0 || n >= 1<<32 {
		return nil, fmt.Errorf("%d nodes", n)
	}
	ix.seqs = make([]int64, 0, min(n, 1<<20))
	ix.attrs = make([]nodeAttrs, 0, min(n, 1<<20))
	for range n {
		var f [6]int64
		for i := range f {
			if f[i], err = get(); err != nil {
				return nil, err
			}
		}
		for _, x := range f[1:5] {
			if x < 0 || x >= ns {
				return nil, fmt.Errorf("a name numbered %d of %d", x, ns)
			}
		}
		ix.seqs = append(ix.seqs, f[0])
		ix.attrs = append(ix.attrs, nodeAttrs{table: uint32(f[1]), room: uint32(f[2]), world: uint32(f[3]), entity: uint32(f[4]), unique: f[5] == 1})
	}
	if ix.g, err = hnsw.Read(br, size, uint64(time.Now().UnixNano())); err != nil {
		return nil, err
	}
	if int64(ix.g.Len()) != n {
		return nil, fmt.Errorf("the graph has %d nodes, the index %d", ix.g.Len(), n)
	}
	for id, seq := range ix.seqs {
		if ix.g.IsDeleted(uint32(id)) {
			continue
		}
		if _, dup := ix.live[seq]; dup {
			return nil, fmt.Errorf("memory %d has two live nodes", seq)
		}
		ix.live[seq] = uint32(id)
	}
	return ix, nil
}

// removeTemporary deletes the temporary files of saves that a crash
// interrupted.
func (v *vectorIndexes) removeTemporary() {
	if v.dir == "" {
		return
	}
	tmps, _ := filepath.Glob(filepath.Join(v.dir, "*.tmp"))
	for _, t := range tmps {
		_ = os.Remove(t)
	}
}
