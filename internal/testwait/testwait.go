// Package testwait is how the tests wait for what another goroutine or
// process will do: poll a condition within a bound and, when the bound
// passes, fail saying what was awaited.
//
// It is the tests' only way to wait. A sleep either wastes time on a fast
// machine or is too short on a busy one, and a hand-written loop tends to
// forget to say what it was waiting for. To check that something does not
// happen, do not sleep and look: wait for an event that must come after
// it, or for the code under test to say it is done (a goroutine ended, a
// counter settled), and then look.
package testwait

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The first polls come quickly, so a condition that holds almost at once
// costs little; later ones back off to maxInterval, so a long wait on a
// busy machine does not add to its load.
const (
	firstInterval = time.Millisecond
	maxInterval   = 25 * time.Millisecond
)

// For polls cond until it returns true. If timeout passes first, the test
// fails: "timed out after 30s waiting for <what>". cond runs on the
// caller's goroutine, so it may itself call t.Fatal to give up early (a
// daemon that exited, say).
func For(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// ForNil polls check until it returns nil. If timeout passes first, the
// test fails naming what was awaited and check's last error, which says
// how far things got.
func ForNil(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	var last error
	if !Poll(timeout, func() bool { last = check(); return last == nil }) {
		t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, last)
	}
}

// Poll polls cond until it returns true and reports whether it did within
// timeout. It is for callers that say themselves what a timeout means: a
// test server that adds what it saw, or a loop that must clean up first.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	interval := firstInterval
	for {
		if cond() {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			// One last look: the condition may have become true while
			// the machine was too busy to run this loop.
			return cond()
		}
		time.Sleep(min(interval, left))
		interval = min(2*interval, maxInterval)
	}
}

// ForPID waits for a process id written to file, as a test plugin that
// says it runs writes its own ($$ in a shell script), and returns it.
func ForPID(t testing.TB, timeout time.Duration, file string) int {
	t.Helper()
	var pid int
	ForNil(t, timeout, "a process id in "+file, func() error {
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err
	})
	return pid
}
