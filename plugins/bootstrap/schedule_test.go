package bootstrap

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func newTestGate(quiet, maxWait time.Duration) (*quietGate, *atomic.Int32) {
	var messages atomic.Int32
	return &quietGate{messages: &messages, quietFor: quiet, maxWait: maxWait, now: time.Now}, &messages
}

// waitAsync waits for work queued now on a goroutine; the channel tells
// when the wait returned.
func waitAsync(g *quietGate, ctx context.Context) <-chan time.Time {
	queued := time.Now()
	done := make(chan time.Time, 1)
	go func() {
		if err := g.wait(ctx, queued); err == nil {
			done <- time.Now()
		}
		close(done)
	}()
	return done
}

// An evaluation waits while a message is handled, and for the quiet
// moment after the last one; between two messages sent one after the
// other is not quiet enough.
func TestEvaluationsYieldToMessages(t *testing.T) {
	const quiet = 150 * time.Millisecond
	g, messages := newTestGate(quiet, time.Minute)
	messages.Add(1)
	done := waitAsync(g, context.Background())
	for range 4 {
		time.Sleep(30 * time.Millisecond)
		g.left()
		time.Sleep(5 * time.Millisecond)
		messages.Add(1)
	}
	select {
	case <-done:
		t.Fatal("the evaluation ran between two messages")
	default:
	}
	g.left()
	ended := time.Now()
	select {
	case at := <-done:
		if waited := at.Sub(ended); waited < quiet {
			t.Fatalf("the evaluation ran %s after the last message ended, before %s without one", waited, quiet)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the evaluation still waits after a quiet moment")
	}

	// With no message in flight for long, it runs at once.
	time.Sleep(quiet)
	start := time.Now()
	if err := g.wait(context.Background(), start); err != nil || time.Since(start) > quiet/2 {
		t.Fatalf("wait in a quiet process: %v after %s", err, time.Since(start))
	}
}

// Under a steady load an evaluation waits maxWait at most, and every
// evaluation waiting then goes with it, its own wait over or not.
func TestEvaluationsWaitBoundedAndTogether(t *testing.T) {
	const maxWait = 300 * time.Millisecond
	g, messages := newTestGate(time.Minute, maxWait)
	messages.Add(1)
	first := time.Now()
	a := waitAsync(g, context.Background())
	time.Sleep(100 * time.Millisecond)
	second := time.Now()
	b := waitAsync(g, context.Background())
	for name, ch := range map[string]<-chan time.Time{"first": a, "second": b} {
		select {
		case at := <-ch:
			if at.Sub(first) < maxWait {
				t.Fatalf("the %s evaluation ran %s after the first was queued, before it had waited %s", name, at.Sub(first), maxWait)
			}
			if at.Sub(second) >= maxWait {
				t.Fatalf("the %s evaluation ran only %s after the second was queued: it did not go with the first", name, at.Sub(second))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the %s evaluation still waits under load", name)
		}
	}

	// An agent stopping ends the wait; the evaluation stays held.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- g.wait(ctx, time.Now()) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("wait after the agent stopped: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("wait goes on after the agent stopped")
	}
}
