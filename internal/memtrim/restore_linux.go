package memtrim

import (
	"bufio"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// heapProbe is allocated on the heap to find the mapping of the heap.
var heapProbe *[64]byte

// heapSpan is the mapping that holds the heap: the one where a new heap
// object lies.
func heapSpan() (span, bool) {
	heapProbe = new([64]byte)
	addr := uintptr(unsafe.Pointer(heapProbe))
	heapProbe = nil
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return span{}, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rng, _, _ := strings.Cut(sc.Text(), " ")
		if sp, ok := parseRange(rng); ok && sp.start <= addr && addr < sp.end {
			return sp, true
		}
	}
	return span{}, false
}

// resident is mincore's answer for s: one byte a page, low bit set when
// the page is in memory.
func resident(s span) []byte {
	page := uintptr(os.Getpagesize())
	vec := make([]byte, (s.end-s.start+page-1)/page)
	if len(vec) == 0 {
		return nil
	}
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, s.start, s.end-s.start, uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		return nil
	}
	return vec
}

// absent is how many of the n bytes from addr are not resident: those the
// runtime has not touched yet since the trim.
func absent(addr, n uintptr) uintptr {
	page := uintptr(os.Getpagesize())
	vec := resident(span{addr, addr + n})
	if vec == nil {
		return n
	}
	out := uintptr(0)
	for _, v := range vec {
		if v&1 == 0 {
			out += page
		}
	}
	return out
}

// heapSnapshot is the heap's mapping and which of its pages are resident.
type heapSnapshot struct {
	s   span
	vec []byte
}

func snapshotHeap() *heapSnapshot {
	if noPopulate.Load() {
		return nil
	}
	s, ok := heapSpan()
	if !ok {
		return nil
	}
	vec := resident(s)
	if vec == nil {
		return nil
	}
	return &heapSnapshot{s: s, vec: vec}
}

// heapPages is which pages of the heap's mapping were resident before one
// trim or another since the process started: the heap its bursts have
// grown to.
type heapPages struct {
	s    span
	seen []byte
}

var remembered heapPages

// givenBack notes the pages resident in before and returns the runs of
// noted pages not resident now, lowest first, at most maxRestore bytes.
func givenBack(before *heapSnapshot) []span {
	if before == nil {
		return nil
	}
	h := &remembered
	if h.s.start != before.s.start {
		h.s, h.seen = before.s, nil
	}
	h.s.end = max(h.s.end, before.s.end)
	for i, v := range before.vec {
		if i == len(h.seen) {
			h.seen = append(h.seen, 0)
		}
		h.seen[i] |= v & 1
	}
	now := resident(h.s)
	if now == nil {
		return nil
	}
	page := uintptr(os.Getpagesize())
	var out []span
	budget := uintptr(maxRestore)
	for i := 0; i < len(now) && i < len(h.seen) && budget > 0; i++ {
		if h.seen[i] == 0 || now[i]&1 != 0 {
			continue
		}
		start := h.s.start + uintptr(i)*page
		if n := len(out); n > 0 && out[n-1].end == start {
			out[n-1].end += page
		} else {
			out = append(out, span{start, start + page})
		}
		budget -= page
	}
	return out
}

// populate faults in n bytes from addr, as writing to them would, in one
// call. It reports false when it could not; the kernel's refusal of the
// advice (before Linux 5.14) turns restoring off for good.
func populate(addr, n uintptr) bool {
	_, _, e := unix.Syscall(unix.SYS_MADVISE, addr, n, unix.MADV_POPULATE_WRITE)
	if e == unix.EINVAL {
		noPopulate.Store(true)
	}
	return e == 0
}
