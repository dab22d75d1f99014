// Package memtrim gives a process's free memory back to the system when a
// burst of work is over.
//
// The Go runtime collects garbage when the heap has doubled since the last
// collection, and then returns free pages to the system gradually. A
// process that handled a burst of messages and fell quiet therefore keeps
// the garbage of its last messages, and the pages it freed, for minutes:
// in the daemon and in each plugin process, several megabytes that nobody
// will use until the next burst. Start watches how much the process
// allocates and, once that pauses after a burst, collects the garbage and
// returns every free page (debug.FreeOSMemory). It costs one collection per
// burst and nothing while the process is busy or idle.
//
// The first trim, once the process has started, also drops the process's
// mappings of its executable's code and read-only data (dropStartupPages).
// Every process of agenthost runs the same large executable, and starting
// one maps far more of it than the process goes on to use: the init code
// of every package linked in, and, since the kernel maps the pages around
// each one touched (fault-around), their neighbours too. The pages stay in
// the operating system's file cache; those the process still needs are
// mapped again on their first use, the rest no longer count in its
// memory. Writable pages are never dropped.
package memtrim

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

const (
	// every is how often the allocations are looked at; a burst is over
	// when one interval saw less than quiet bytes allocated.
	every = 200 * time.Millisecond
	quiet = 64 << 10
	// burst is how much must have been allocated since the last trim for
	// another one to be worth a collection (about two messages' worth in
	// a plugin process).
	burst = 512 << 10
)

var once sync.Once

// Start begins watching, once per process; it returns at once.
func Start() {
	once.Do(func() {
		w := &watcher{quiet: quiet, burst: burst, trim: Trim, started: dropStartupPages}
		go func() {
			for range time.Tick(every) {
				w.look(allocated())
			}
		}()
	})
}

// Trim collects the garbage and returns every free page to the system.
func Trim() { debug.FreeOSMemory() }

// allocated is the total of bytes the process has allocated on the heap.
func allocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// watcher decides, from the running total of allocated bytes seen at each
// interval, when a burst is over. The process's start is its first burst.
type watcher struct {
	quiet, burst uint64
	trim         func()
	// started runs after the first trim: the process has started.
	started func()

	last, sinceTrim uint64
}

// look takes the total at the end of an interval and trims when the
// interval was quiet after a burst. It reports whether it trimmed.
func (w *watcher) look(total uint64) bool {
	d := total - w.last
	w.last = total
	w.sinceTrim += d
	if d >= w.quiet || w.sinceTrim < w.burst {
		return false
	}
	w.sinceTrim = 0
	w.trim()
	if w.started != nil {
		w.started()
		w.started = nil
	}
	return true
}
