package testwait

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a testing.TB that keeps the failure instead of ending the
// test, so that a timeout can be checked.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			n.Add(1)
		}
	}()
	r := &recorder{TB: t}
	For(r, 10*time.Second, "three increments", func() bool { return n.Load() == 3 })
	if r.failed != "" {
		t.Fatalf("For failed although the condition came true: %s", r.failed)
	}
}

func TestForNamesWhatItWaitedFor(t *testing.T) {
	r := &recorder{TB: t}
	calls := 0
	For(r, 20*time.Millisecond, "the reply to hello", func() bool { calls++; return false })
	if !strings.Contains(r.failed, "waiting for the reply to hello") || !strings.Contains(r.failed, "20ms") {
		t.Errorf("the failure should name what was awaited and for how long: %q", r.failed)
	}
	if calls < 2 {
		t.Errorf("the condition was tried %d times, want it polled", calls)
	}
}

func TestForNilGivesTheLastError(t *testing.T) {
	r := &recorder{TB: t}
	n := 0
	ForNil(r, 20*time.Millisecond, "two memories", func() error { n++; return fmt.Errorf("%d so far", n) })
	if !strings.Contains(r.failed, "waiting for two memories: ") || !strings.Contains(r.failed, fmt.Sprintf("%d so far", n)) {
		t.Errorf("the failure should end with the last error: %q", r.failed)
	}
	r = &recorder{TB: t}
	ForNil(r, time.Second, "nothing", func() error { return nil })
	if r.failed != "" {
		t.Errorf("a nil error at once is success: %s", r.failed)
	}
	r = &recorder{TB: t}
	left := 2
	ForNil(r, 10*time.Second, "the error to clear", func() error {
		if left--; left >= 0 {
			return errors.New("not yet")
		}
		return nil
	})
	if r.failed != "" {
		t.Errorf("the error cleared, yet: %s", r.failed)
	}
}

func TestPollLooksOnceMoreAtTheDeadline(t *testing.T) {
	start := time.Now()
	// The condition becomes true only once the time is up: Poll must
	// still see it, as a busy machine may not have run the loop in time.
	ok := Poll(5*time.Millisecond, func() bool { return time.Since(start) >= 5*time.Millisecond })
	if !ok {
		t.Error("Poll missed a condition that held at the deadline")
	}
}
