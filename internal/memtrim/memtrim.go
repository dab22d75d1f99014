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
// returns every free page (debug.FreeOSMemory). It costs two collections per
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
//
// During a burst the watcher also lets the heap grow further between
// collections. Each process of agenthost keeps a few megabytes live, so
// the runtime's default (collect when the heap has doubled) collects every
// few megabytes allocated: at a few hundred messages a second, fifteen to
// twenty collections a second in every process, and with four processes
// on two cores, a collection's mark workers take the CPU the other
// processes wait for. While a burst lasts, the heap may grow by headroom
// (the GC percent is raised to match the live heap, up to maxPercent);
// the trim at its end collects, gives the pages back and restores the
// percent, so an idle process is as small as before. The burst after a
// trim has its pages populated again ahead of it, which costs far less
// than faulting them in one by one (restore.go). The process's start,
// its first burst, is not tuned: a daemon starting a thousand agents is
// measured as soon as they are ready, before that burst's trim. A process
// started with GOGC set is left to it.
package memtrim

import (
	"os"
	"runtime"
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
	// busy is what an interval must allocate to count as part of a burst
	// heavy enough for the heap to grow (5 MB/s); headroom is how much it
	// may grow between collections then, and maxPercent bounds the GC
	// percent that takes with a very small live heap.
	busy       = 1 << 20
	headroom   = 8 << 20
	maxPercent = 800
)

var once sync.Once

// Start begins watching, once per process; it returns at once.
func Start() {
	once.Do(func() {
		w := &watcher{quiet: quiet, burst: burst, trim: Trim, started: dropStartupPages}
		if os.Getenv("GOGC") == "" {
			w.tune = &gcTuner{busy: busy, headroom: headroom, normal: 100, max: maxPercent,
				set: debug.SetGCPercent, live: liveHeap}
		}
		go func() {
			for range time.Tick(every) {
				w.look(allocated())
			}
		}()
	})
}

// Trim collects the garbage and returns every free page to the system.
// It collects twice: a collection only sets aside what the process's
// sync.Pools hold, and the next one frees it. After a burst, gRPC's pools
// alone hold a megabyte or more of read buffers in the daemon and in the
// sql plugin; a second collection of a heap of a few megabytes costs about
// a millisecond, once per burst.
func Trim() {
	// One at a time: a trim notes the heap's pages in remembered.
	trimMu.Lock()
	defer trimMu.Unlock()
	// The first trim follows the process's start, whose heap is not one
	// that bursts of messages need again: populating it would only bring
	// back an idle process's memory.
	var before *heapSnapshot
	if trims > 0 {
		before = snapshotHeap()
	}
	trims++
	runtime.GC()
	debug.FreeOSMemory()
	restore.set(givenBack(before))
}

var (
	trimMu sync.Mutex
	trims  int
)

// allocated is the total of bytes the process has allocated on the heap.
func allocated() uint64 { return readMetric("/gc/heap/allocs:bytes") }

// liveHeap is the heap the last collection found in use.
func liveHeap() uint64 { return readMetric("/gc/heap/live:bytes") }

func readMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// gcTuner raises the GC percent while a burst lasts (see the package doc).
type gcTuner struct {
	busy, headroom uint64
	// normal is the percent outside bursts, max the highest one set.
	normal, max int
	set         func(percent int) int
	live        func() uint64
	// at is the percent set now.
	at int
}

// interval takes what the last interval allocated: a busy one sets the
// percent that gives the live heap its headroom.
func (g *gcTuner) interval(allocated uint64) {
	if allocated < g.busy {
		return
	}
	p := g.normal
	if l := g.live(); l > 0 {
		p = int(min(uint64(g.max), g.headroom*100/l))
	}
	p = max(p, g.normal)
	if p != g.at && !(g.at == 0 && p == g.normal) {
		g.set(p)
		g.at = p
	}
}

// reset puts the normal percent back once the burst is over.
func (g *gcTuner) reset() {
	if g.at != 0 && g.at != g.normal {
		g.set(g.normal)
	}
	g.at = 0
}

// watcher decides, from the running total of allocated bytes seen at each
// interval, when a burst is over. The process's start is its first burst.
type watcher struct {
	quiet, burst uint64
	trim         func()
	// started runs after the first trim: the process has started.
	started func()
	// tune, if set, lets the heap grow during a burst once the process
	// has started (trimmed once).
	tune    *gcTuner
	trimmed bool

	last, sinceTrim uint64
}

// look takes the total at the end of an interval and trims when the
// interval was quiet after a burst. It reports whether it trimmed.
func (w *watcher) look(total uint64) bool {
	d := total - w.last
	w.last = total
	w.sinceTrim += d
	if w.tune != nil && w.trimmed {
		w.tune.interval(d)
	}
	if d >= w.quiet || w.sinceTrim < w.burst {
		return false
	}
	w.sinceTrim = 0
	if w.tune != nil {
		// Before the trim's collection, so that it sees the percent
		// an idle process runs with.
		w.tune.reset()
	}
	w.trim()
	w.trimmed = true
	if w.started != nil {
		w.started()
		w.started = nil
	}
	return true
}
