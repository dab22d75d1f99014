package memtrim

import (
	"runtime"
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
