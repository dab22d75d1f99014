package bootstrap

import (
	"container/heap"
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// scheduler drives the task services of every agent of the process from
// one goroutine and one timer: a thousand agents cost a thousand entries in
// a heap, not a thousand goroutines and timers. A look at an agent's tasks
// runs on a goroutine of its own, so a slow database read does not hold up
// the other agents' looks.
type scheduler struct {
	mu      sync.Mutex
	h       serviceHeap
	wake    chan struct{}
	looking int // looks under way, at most maxLooks
	// messages counts the messages being handled in the process: while
	// there are any, one look at a time goes on (lookLimit).
	messages atomic.Int32
	// quiet holds evaluations back while messages are handled.
	quiet quietGate
}

// maxLooks bounds the looks under way at once. A daemon that starts ten
// thousand agents has them all due within a tick: unbounded, their reads
// would queue in the database ahead of the first messages' for a second.
const maxLooks = 4

// lookLimit is how many looks may be under way now. A daemon just started
// with a thousand agents makes their first looks while it answers its
// first messages, whose reads queue behind theirs in the host and the
// database plugin: four at a time, a first message took about three times
// a warm one in BenchmarkManyAgents, one at a time under twice. The looks
// go on meanwhile, a little later.
func (s *scheduler) lookLimit() int {
	if s.messages.Load() > 0 {
		return 1
	}
	return maxLooks
}

// handling counts a message being handled until the returned func is
// called.
func (s *scheduler) handling() func() {
	s.messages.Add(1)
	return func() {
		s.quiet.left()
		s.nudge()
	}
}

// scheduler returns the plugin's scheduler, started on first use.
func (b *bootstrap) scheduler() *scheduler {
	b.schedOnce.Do(func() {
		b.sched = &scheduler{wake: make(chan struct{}, 1)}
		b.sched.quiet = quietGate{messages: &b.sched.messages, quietFor: evalQuiet, maxWait: evalMaxWait, now: time.Now}
		go b.sched.loop()
	})
	return b.sched
}

func (s *scheduler) add(t *taskService, at time.Time) {
	s.mu.Lock()
	t.next = at
	heap.Push(&s.h, t)
	s.mu.Unlock()
	s.nudge()
}

// size is how many task services the scheduler holds.
func (s *scheduler) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h.Len() + s.looking
}

func (s *scheduler) remove(t *taskService) {
	s.mu.Lock()
	if t.index >= 0 {
		heap.Remove(&s.h, t.index)
	}
	s.mu.Unlock()
}

// poke schedules a look at t's tasks as soon as one tick has passed since
// the last (or right after the current one). Every message pokes: a busy
// agent is looked at once a tick, not twice a message.
func (s *scheduler) poke(t *taskService) {
	s.mu.Lock()
	t.interval = t.tick0
	if t.ticking {
		t.poked = true
	} else if at := t.soonest(); t.index >= 0 && at.Before(t.next) {
		t.next = at
		heap.Fix(&s.h, t.index)
	}
	s.mu.Unlock()
	s.nudge()
}

// soonest is when t may be looked at again: a tick after its last look.
func (t *taskService) soonest() time.Time {
	now, at := time.Now(), t.lastLook.Add(t.tick0)
	if at.Before(now) {
		return now
	}
	return at
}

func (s *scheduler) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *scheduler) loop() {
	timer := time.NewTimer(time.Hour)
	for {
		s.mu.Lock()
		now := time.Now()
		for s.h.Len() > 0 && !s.h[0].next.After(now) && s.looking < s.lookLimit() {
			t := heap.Pop(&s.h).(*taskService)
			if t.ctx.Err() != nil {
				continue
			}
			s.looking++
			t.ticking = true
			t.lastLook = now
			t.looks.Add(1)
			go s.look(t)
		}
		wait := time.Hour
		if s.h.Len() > 0 && s.looking < s.lookLimit() {
			wait = time.Until(s.h[0].next)
		}
		s.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-s.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
	}
}

// look runs one look at t's due tasks and schedules the next.
func (s *scheduler) look(t *taskService) {
	defer t.looks.Done()
	busy := t.tick(t.ctx)
	s.mu.Lock()
	s.looking--
	t.ticking = false
	switch {
	case busy || t.poked:
		t.interval = t.tick0
	default:
		t.interval = min(2*t.interval, max(idleTick, t.tick0))
	}
	next := time.Now().Add(t.interval)
	if t.poked {
		next = t.soonest()
	}
	t.poked = false
	if t.ctx.Err() == nil {
		t.next = next
		heap.Push(&s.h, t)
	}
	s.mu.Unlock()
	s.nudge()
}

// serviceHeap orders task services by their next look.
type serviceHeap []*taskService

func (h serviceHeap) Len() int           { return len(h) }
func (h serviceHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h serviceHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *serviceHeap) Push(x any) {
	t := x.(*taskService)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *serviceHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*h = old[:len(old)-1]
	return t
}

// Evaluations (reflection above all: a model call, a recomposed state and
// a few writes, about as much work over the processes as a message) yield
// to messages. One that ran as soon as its reply was sent shared the
// machine with the conversation's next message: with messages sent one
// after another, every fourth message's reflection slowed the next two,
// and half the messages of a run of fifty waited for one. An evaluation
// now waits for evalQuiet without a message in flight in the process,
// which a conversation at a human pace gives it at once. Under a steady
// load it waits evalMaxWait at most; then every evaluation waiting runs,
// in one batch rather than spread over the messages, and a room's
// reflection covers what the room's evaluations queued before it would
// have (its window of recent messages, up to the conversation length,
// reaches back that far unless one room took more messages than that in
// the wait).
const (
	evalQuiet   = 20 * time.Millisecond
	evalMaxWait = time.Second
)

// quietGate holds background work back while the process handles
// messages (see evalQuiet).
type quietGate struct {
	// messages counts the messages in flight (scheduler.messages).
	messages          *atomic.Int32
	quietFor, maxWait time.Duration
	now               func() time.Time

	mu sync.Mutex
	// idleSince is when the last message in flight ended.
	idleSince time.Time
	// released: the work queued up to then runs, waited for or not.
	released time.Time
	// changed is closed when the last message in flight ends or work is
	// released; nil while nobody waits.
	changed chan struct{}
}

// left counts a message done.
func (g *quietGate) left() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.messages.Add(-1) == 0 {
		g.idleSince = g.now()
		g.signal()
	}
}

func (g *quietGate) signal() {
	if g.changed != nil {
		close(g.changed)
		g.changed = nil
	}
}

// wait returns when work queued at queued may run: once no message has
// been in flight for quietFor, or once it has waited maxWait, when all the
// work waiting goes with it. It returns ctx's error if ctx ends first.
func (g *quietGate) wait(ctx context.Context, queued time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		now := g.now()
		if !queued.After(g.released) {
			return nil
		}
		due := queued.Add(g.maxWait)
		if !now.Before(due) {
			g.released = now
			g.signal()
			return nil
		}
		wait := due.Sub(now)
		if g.messages.Load() == 0 {
			idle := now.Sub(g.idleSince)
			if idle >= g.quietFor {
				return nil
			}
			wait = min(wait, g.quietFor-idle)
		}
		if g.changed == nil {
			g.changed = make(chan struct{})
		}
		changed := g.changed
		g.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-changed:
		case <-t.C:
		}
		t.Stop()
		g.mu.Lock()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}
