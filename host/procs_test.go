package host

import (
	"slices"
	"testing"
	"time"
)

// governed is a procGovernor on a clock of the test's, whose settings are
// recorded, not applied. Its own timer would fire only after an hour: the
// test calls settle itself, as the timer would.
func governed() (g *procGovernor, clock *time.Time, sets *[]int) {
	clock = &time.Time{}
	*clock = time.Unix(1000, 0)
	sets = &[]int{}
	g = &procGovernor{max: 4, procs: 4, quiet: time.Hour, now: func() time.Time { return *clock },
		set: func(n int) { *sets = append(*sets, n) }}
	return g, clock, sets
}

// One message at a time: one thread from the first one's end, and no
// change after.
func TestProcGovernorOneMessageAtATime(t *testing.T) {
	g, _, sets := governed()
	for range 5 {
		g.enter()
		g.leave()
	}
	if !slices.Equal(*sets, []int{1}) {
		t.Errorf("messages one at a time: settings %v, want [1]", *sets)
	}
}

// Two in flight: every thread at once; one thread again only once no more
// than one has been in flight for the quiet moment, and not while a
// second keeps coming.
func TestProcGovernorConcurrentMessages(t *testing.T) {
	g, clock, sets := governed()
	g.enter()
	g.leave()
	g.enter()
	g.enter()
	if !slices.Equal(*sets, []int{1, 4}) {
		t.Fatalf("a second message in flight: settings %v, want [1 4]", *sets)
	}
	g.leave()
	// One message stays in flight; another overlapping it now and then,
	// sooner than the quiet moment, keeps the threads.
	for range 3 {
		*clock = clock.Add(g.quiet / 2)
		g.settle()
		g.enter()
		g.leave()
	}
	if !slices.Equal(*sets, []int{1, 4}) {
		t.Fatalf("while messages overlap: settings %v, want [1 4]", *sets)
	}
	// Quiet: the timer takes it back to one thread, with one message
	// still in flight and none coming.
	*clock = clock.Add(g.quiet + time.Millisecond)
	g.settle()
	if !slices.Equal(*sets, []int{1, 4, 1}) {
		t.Fatalf("after the quiet moment: settings %v, want [1 4 1]", *sets)
	}
	g.leave()
	g.settle()
	if !slices.Equal(*sets, []int{1, 4, 1}) {
		t.Errorf("settings %v, want [1 4 1]", *sets)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.timer != nil {
		g.timer.Stop()
	}
}

// An operator's GOMAXPROCS is left alone: no governor.
func TestProcGovernorLeavesTheOperatorsSetting(t *testing.T) {
	t.Setenv("GOMAXPROCS", "3")
	if g := newProcGovernor(nil); g != nil {
		t.Errorf("with GOMAXPROCS set, want no governor, got %+v", g)
	}
	var g *procGovernor
	g.enter() // a nil governor does nothing
	g.leave()
}
