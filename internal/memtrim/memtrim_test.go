package memtrim

import (
	"reflect"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
)

// A trim comes once a burst is followed by a quiet interval: not during
// the burst, not for a trickle, not twice for one burst.
func TestWatcherTrimsOnceAfterABurst(t *testing.T) {
	trims := 0
	w := &watcher{quiet: 100, burst: 1000, trim: func() { trims++ }}
	total := uint64(0)
	step := func(alloc uint64) bool { total += alloc; return w.look(total) }
	for i, c := range []struct {
		alloc uint64
		want  bool
	}{
		{5000, false}, {0, true}, // the process's start, then quiet
		{400, false}, {400, false}, {400, false}, // a burst: busy intervals
		{10, true},              // quiet after 1200 bytes: trim
		{10, false}, {0, false}, // still quiet: nothing more to give back
		{50, false}, {50, false}, // a trickle, each interval quiet, far from a burst
		{900, false}, {0, true}, // the trickle and a new burst add up
	} {
		if got := step(c.alloc); got != c.want {
			t.Errorf("interval %d (+%d bytes): trimmed %v, want %v", i, c.alloc, got, c.want)
		}
	}
	if trims != 3 {
		t.Errorf("%d trims, want 3", trims)
	}
}

// What follows the first trim, and only it, is the process's start being
// over.
func TestWatcherStartedOnceAfterTheFirstTrim(t *testing.T) {
	trims, started := 0, 0
	w := &watcher{quiet: 100, burst: 1000, trim: func() { trims++ }, started: func() {
		if trims != 1 {
			t.Errorf("started after %d trims, want after the first", trims)
		}
		started++
	}}
	total := uint64(0)
	for _, alloc := range []uint64{5000, 0, 400, 400, 400, 10, 2000, 0} {
		total += alloc
		w.look(total)
	}
	if trims != 3 || started != 1 {
		t.Errorf("%d trims and %d starts, want 3 and 1", trims, started)
	}
}

// The real trim gives the garbage of a burst back: what the heap holds
// after it is what is still in use.
func TestTrimReturnsTheGarbage(t *testing.T) {
	keep := make([][]byte, 0, 64)
	for i := 0; i < 4096; i++ {
		b := make([]byte, 4096)
		if i%64 == 0 {
			keep = append(keep, b)
		}
	}
	w := &watcher{quiet: quiet, burst: burst}
	var before, after runtime.MemStats
	w.trim = func() {
		runtime.ReadMemStats(&before)
		Trim()
		runtime.ReadMemStats(&after)
	}
	w.look(16 << 20)
	if !w.look(16 << 20) {
		t.Fatal("no trim after a quiet interval")
	}
	if after.NumGC == before.NumGC || after.HeapIdle-after.HeapReleased > 1<<20 {
		t.Errorf("after the trim: %d collections (before %d), %d bytes free but kept", after.NumGC, before.NumGC, after.HeapIdle-after.HeapReleased)
	}
	runtime.KeepAlive(keep)
}

// What a burst left in a sync.Pool (gRPC keeps its read buffers there,
// up to 1 MiB each) is given back too: one collection only moves a pool's
// contents aside, the next drops them.
func TestTrimEmptiesPools(t *testing.T) {
	Trim()
	base := readMetric("/gc/heap/live:bytes")
	// No collection while the pool fills: all of it is there for the trim.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	var pool sync.Pool
	const n, size = 16, 256 << 10
	for range n {
		pool.Put(make([]byte, size))
	}
	Trim()
	if live := readMetric("/gc/heap/live:bytes"); live > base+1<<20 {
		t.Errorf("after the trim the heap holds %d bytes in use, %d before the pool held %d", live, base, n*size)
	}
	runtime.KeepAlive(&pool)
}

// During a burst the percent gives the live heap its headroom, within
// bounds; a trickle leaves it alone; the trim puts it back first.
func TestTunerRaisesThePercentOnlyDuringABurst(t *testing.T) {
	var sets []int
	live := uint64(4 << 20)
	order := []string{}
	w := &watcher{quiet: 100, burst: 1000, trim: func() { order = append(order, "trim") },
		tune: &gcTuner{busy: 1 << 20, headroom: 16 << 20, normal: 100, max: 800,
			set:  func(p int) int { sets = append(sets, p); order = append(order, "set"); return 0 },
			live: func() uint64 { return live }}}
	total := uint64(0)
	step := func(alloc uint64) { total += alloc; w.look(total) }
	step(2 << 20) // the process's start: busy, but not tuned
	step(0)       // its trim
	if len(sets) != 0 {
		t.Fatalf("the start set the percent: %v", sets)
	}
	order = nil
	step(50)
	step(50) // a trickle
	if len(sets) != 0 {
		t.Fatalf("a trickle set the percent: %v", sets)
	}
	step(2 << 20) // busy, live 4 MiB: 16 MiB is 400%
	step(2 << 20) // the same: no second call
	live = 1 << 20
	step(2 << 20) // live 1 MiB: 1600%, bounded to 800
	live = 64 << 20
	step(2 << 20) // a large live heap needs no more than the normal percent
	step(0)       // quiet: back to normal (already), then the trim
	if want := []int{400, 800, 100}; !reflect.DeepEqual(sets, want) {
		t.Errorf("percents set %v, want %v", sets, want)
	}
	live = 4 << 20
	sets, order = nil, nil
	step(2 << 20)
	step(0)
	if want := []int{400, 100}; !reflect.DeepEqual(sets, want) {
		t.Errorf("second burst: percents set %v, want %v", sets, want)
	}
	if want := []string{"set", "set", "trim"}; !reflect.DeepEqual(order, want) {
		t.Errorf("second burst: %v, want the normal percent back before the trim", order)
	}
}

// With the real runtime, a tuned burst of garbage over a small live heap
// runs with the percent that lets the heap grow by the headroom (or the
// highest percent), and the process's percent is the default again once
// the burst is over. The percent in effect is read from the runtime rather
// than the number of collections counted: that number also depends on how
// fast the mark workers get CPU, which a loaded machine changes (it is
// logged).
func TestTunedBurstRaisesTheRuntimesPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	// run reports the highest percent in effect, and the live heap
	// then, while 64 MiB of garbage was made in 16 busy intervals.
	run := func(tuned bool) (percent, live uint64, gcs uint32) {
		runtime.GC()
		w := &watcher{quiet: quiet, burst: burst, trim: Trim, trimmed: true}
		if tuned {
			w.tune = &gcTuner{busy: busy, headroom: headroom, normal: 100, max: maxPercent,
				set: debug.SetGCPercent, live: liveHeap}
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		w.look(allocated())
		for range 16 {
			for range 1024 {
				sink = make([]byte, 4096) // 4 MiB of garbage per interval
			}
			w.look(allocated())
			if p := readMetric("/gc/gogc:percent"); p > percent {
				percent, live = p, liveHeap()
			}
		}
		runtime.ReadMemStats(&after)
		w.look(allocated()) // quiet: the trim
		return percent, live, after.NumGC - before.NumGC
	}
	plain, _, plainGCs := run(false)
	tuned, live, tunedGCs := run(true)
	t.Logf("percent %d untuned (%d collections), %d tuned over a live heap of %d KiB (%d collections)",
		plain, plainGCs, tuned, live>>10, tunedGCs)
	if plain != 100 {
		t.Errorf("untuned, the percent was %d during the burst, want 100", plain)
	}
	if tuned != maxPercent && tuned*live/100 < headroom {
		t.Errorf("tuned, the percent was %d over a live heap of %d KiB: the heap may grow by %d KiB, want the headroom, %d KiB",
			tuned, live>>10, tuned*live/100>>10, headroom>>10)
	}
	if tuned <= 100 {
		t.Errorf("tuned, the percent stayed at %d", tuned)
	}
	if p := readMetric("/gc/gogc:percent"); p != 100 {
		t.Errorf("after the burst the percent is %d, want 100", p)
	}
}

var sink []byte
