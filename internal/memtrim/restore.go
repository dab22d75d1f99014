package memtrim

import (
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// A trim gives back every free page of the heap, and the burst after it
// takes them again one page fault at a time. On the virtual machines
// agenthost is measured on, a fault costs about 11 µs, and in the side by
// side runs each process faulted two to three thousand pages back in over
// its first hundred messages: a millisecond or more on each message.
// Populating the same pages with madvise(MADV_POPULATE_WRITE) costs under
// 1 µs a page.
//
// So each trim but the first, which follows the process's start, notes the
// heap pages resident before it (adding to those noted at earlier trims:
// the heap the process's bursts grow to, a short one or a long one), and
// each call into or out of the process after it (Wake) populates the next
// of those not resident, lowest first, which is the order the runtime's
// page allocator takes free pages in. Populating keeps at most lookahead
// bytes, or twice what the runtime took since the last call, ahead of the
// runtime, as its count of released heap bytes tells. Only pages that were
// not resident count as ahead: a call that allocates more than was
// populated faults the rest in itself, and the next call skips those pages
// (mincore) to populate beyond them, rather than counting them as
// populated and falling further behind. It must not run further: the
// runtime still counts a page populated this way as given back, so it does
// not give it back at the next trim, and calls that bring no burst (a
// periodic look at the tasks) must not bring an idle process's memory
// back. A populated page reads as zero, as a page given back does, so the
// runtime sees no other difference.
//
// Memory the runtime maps for the heap during a burst, past anything
// before it (the first burst after the start grows the heap so), is not
// populated: the runtime does not take it lowest first, and populating it
// as it grew left 6-10 MiB more in the processes after a load.

const (
	// maxRestore bounds what a trim notes: the heap a burst of messages
	// grows to, not the headroom of a long load.
	maxRestore = 16 << 20
	// restoreChunk is what one madvise populates, and lookahead how far
	// ahead of the runtime's use populating goes.
	restoreChunk = 256 << 10
	lookahead    = 512 << 10
)

// noPopulate is set once the kernel refuses to populate: trims then note
// nothing.
var noPopulate atomic.Bool

// restoring is set while the last trim's pages are not all populated.
var restoring atomic.Bool

var restore restorer

// restorer holds what the last trim gave back and how far populating it
// is ahead of the runtime.
type restorer struct {
	mu sync.Mutex
	// runs are the pages still to populate, lowest first.
	runs []span
	// released is the runtime's count of heap bytes given back to the
	// system when last looked at.
	released uint64
	// ahead is how many populated bytes the runtime has not taken yet, as
	// far as its count of released bytes tells: those it never takes are
	// not given back by a later trim, so ahead carries over from one trim
	// to the next and bounds what is populated.
	ahead  int64
	sample []metrics.Sample
}

// set takes the runs a trim gave back.
func (r *restorer) set(runs []span) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs = runs
	r.released = r.releasedHeap()
	restoring.Store(len(runs) > 0)
}

// step populates pages until populating is lookahead bytes ahead of the
// runtime, or twice what the runtime took since the last step. r.mu is
// held.
func (r *restorer) step() {
	now := r.releasedHeap()
	var taken int64
	if now < r.released {
		taken = int64(r.released - now)
		r.ahead = max(0, r.ahead-taken)
	}
	r.released = now
	// A process that took more than lookahead since its last call will
	// likely take as much again before its next.
	for r.ahead < max(lookahead, 2*taken) && len(r.runs) > 0 {
		s := &r.runs[0]
		n := min(uintptr(restoreChunk), s.end-s.start)
		fresh := absent(s.start, n)
		if fresh > 0 && !populate(s.start, n) {
			r.runs = nil
			break
		}
		s.start += n
		r.ahead += int64(fresh)
		if s.start == s.end {
			r.runs = r.runs[1:]
		}
	}
	if len(r.runs) == 0 {
		restoring.Store(false)
	}
}

func (r *restorer) releasedHeap() uint64 {
	if r.sample == nil {
		r.sample = []metrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
	}
	metrics.Read(r.sample)
	if r.sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return r.sample[0].Value.Uint64()
}

// Wake tells the package that work has arrived: after a trim, each call
// populates the next pages the trim gave back (see above), which costs a
// fraction of the page faults the work would otherwise take; otherwise it
// costs an atomic load. Call it where a message or a call enters the
// process, or a call's reply comes back; health checks need not.
func Wake() {
	if !restoring.Load() || !restore.mu.TryLock() {
		return
	}
	defer restore.mu.Unlock()
	restore.step()
}
