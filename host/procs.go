package host

import (
	"os"
	"runtime"
	"sync"
	"time"
)

// procGovernor runs the daemon's Go code on one thread while it handles at
// most one message at a time, and on all of them (GOMAXPROCS's default)
// once two or more are in flight.
//
// A message handled alone is a chain of hand-offs: the HTTP handler, a
// gRPC call to a plugin, the goroutine that writes it, the one that reads
// the answer, each waking the next. With a second thread free, the runtime
// wakes it for each hand-off, and it mostly finds nothing to do before it
// sleeps again. With one thread, the goroutine woken runs next on the same
// one. On two cores, in three alternated pairs of 300 messages sent one at
// a time, the daemon took 18–36% less CPU per message (2.9–3.0 ms against
// 1.9–2.4) and the p50 moved by −15%, +5% and −7%; ten senders at once,
// which bring it back to every thread, made 288, 230 and 272 messages/s
// against 261, 261 and 245. A message counts from its arrival to its
// answer (AgentRuntime.receive): what its handler does after the last
// reply overlaps the next message of a conversation.
//
// While the daemon is on one thread, oneCPU also holds its threads and its
// plugins' on one CPU (affinity.go).
//
// An operator who sets GOMAXPROCS keeps it: the governor does nothing.
type procGovernor struct {
	max   int
	set   func(int)
	now   func() time.Time
	quiet time.Duration

	mu       sync.Mutex
	inFlight int
	procs    int
	// lastBusy is when more than one message was last in flight; the
	// timer takes the daemon back to one thread once quiet has passed
	// since.
	lastBusy time.Time
	timer    *time.Timer
}

// quietBeforeOne is how long at most one message must have been in flight
// before the daemon goes back to one thread: a load of concurrent senders
// has a moment with one message in flight between two of its messages,
// and must not flap.
const quietBeforeOne = 500 * time.Millisecond

// newProcGovernor returns nil, a governor that does nothing, when the
// operator set GOMAXPROCS or the process has one thread anyway. With one
// thread, cpu (nil for none) holds the daemon and its plugins on one CPU.
func newProcGovernor(cpu *oneCPU) *procGovernor {
	n := runtime.GOMAXPROCS(0)
	if os.Getenv("GOMAXPROCS") != "" || n < 2 {
		return nil
	}
	set := func(k int) {
		if k == n {
			// The runtime's default again, which follows a CPU limit the
			// process is given later; an explicit call stops that.
			runtime.SetDefaultGOMAXPROCS()
			cpu.unpin()
			return
		}
		runtime.GOMAXPROCS(k)
		cpu.pin()
	}
	return &procGovernor{max: n, procs: n, quiet: quietBeforeOne, set: set, now: time.Now}
}

// enter counts a message in flight.
func (g *procGovernor) enter() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inFlight++
	if g.inFlight > 1 {
		g.lastBusy = g.now()
		if g.procs != g.max {
			g.procs = g.max
			g.set(g.max)
		}
	}
}

// leave counts a message done.
func (g *procGovernor) leave() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inFlight--
	g.toOne()
}

// settle is leave's look again, on the timer.
func (g *procGovernor) settle() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.toOne()
}

// toOne goes to one thread if no more than one message has been in flight
// for the quiet moment, or looks again when it will have been. g.mu is
// held.
func (g *procGovernor) toOne() {
	if g.inFlight > 1 || g.procs == 1 {
		return
	}
	if wait := g.quiet - g.now().Sub(g.lastBusy); wait > 0 {
		if g.timer == nil {
			g.timer = time.AfterFunc(wait, g.settle)
		} else {
			g.timer.Reset(wait)
		}
		return
	}
	g.procs = 1
	g.set(1)
}

// pluginPIDs lists the plugin processes the daemon started and that run.
func (d *Daemon) pluginPIDs() []int {
	if d.mgr == nil {
		return nil
	}
	var pids []int
	for _, p := range d.mgr.Plugins() {
		if pid := p.startedPID(); pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}
