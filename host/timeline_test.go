package host

import (
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/testwait"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/hashicorp/go-hclog"
)

// storedLogs is a logWriter whose batches are recorded instead of sent to
// a database plugin: what is under test is when they go.
type storedLogs struct {
	mu      sync.Mutex
	batches [][]logJob
}

func (s *storedLogs) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, b := range s.batches {
		n += len(b)
	}
	return n
}

func newTestLogWriter(t *testing.T, linger, deferFor time.Duration) (*logWriter, *storedLogs) {
	s := &storedLogs{}
	w := newLogWriter(hclog.NewNullLogger(), 1024)
	w.mu.Lock()
	w.linger, w.deferFor = linger, deferFor
	w.store = func(b []logJob) ([]logJob, error) {
		s.mu.Lock()
		s.batches = append(s.batches, b)
		s.mu.Unlock()
		return nil, nil
	}
	w.mu.Unlock()
	t.Cleanup(w.close)
	return w, s
}

// While a run is in flight, a batch of timeline entries waits for it to
// end, so that its transaction does not hold up the run's own writes; with
// no run in flight it goes after the linger.
func TestTimelineWaitsForTheRunsInFlight(t *testing.T) {
	w, s := newTestLogWriter(t, 5*time.Millisecond, time.Minute)
	w.add(nil, &pb.LogEntry{Type: "run"})
	testwait.For(t, 5*time.Second, "an entry stored with no run in flight", func() bool { return s.count() == 1 })

	w.runBegan()
	w.runBegan()
	w.add(nil, &pb.LogEntry{Type: "useModel"})
	// Nothing may happen in this window: the entry waits for the runs.
	time.Sleep(100 * time.Millisecond)
	if n := s.count(); n != 1 {
		t.Fatalf("%d entries stored while two runs were in flight, want the first one only", n)
	}
	w.runEnded()
	time.Sleep(50 * time.Millisecond)
	if n := s.count(); n != 1 {
		t.Fatalf("%d entries stored while one run was in flight, want the first one only", n)
	}
	w.runEnded()
	testwait.For(t, 5*time.Second, "the entry stored once the last run ended", func() bool { return s.count() == 2 })
}

// The moment between two messages of a conversation sent one after the
// other is not a quiet one: a batch waits until no run has been in flight
// for quietFor.
func TestTimelineWaitsForAQuietMoment(t *testing.T) {
	const quiet = 300 * time.Millisecond
	w, s := newTestLogWriter(t, time.Millisecond, time.Minute)
	w.mu.Lock()
	w.quietFor = quiet
	w.mu.Unlock()
	w.runBegan()
	w.add(nil, &pb.LogEntry{Type: "useModel"})
	for range 5 {
		time.Sleep(20 * time.Millisecond)
		w.runEnded()
		time.Sleep(5 * time.Millisecond)
		w.runBegan()
	}
	if n := s.count(); n != 0 {
		t.Fatalf("%d entries stored in the moments between runs, want none", n)
	}
	w.runEnded()
	ended := time.Now()
	testwait.For(t, 5*time.Second, "the entry stored after a quiet moment", func() bool { return s.count() == 1 })
	if waited := time.Since(ended); waited < quiet {
		t.Fatalf("the entry was stored %s after the last run ended, before %s without a run had passed", waited, quiet)
	}
}

// A batch does not wait for ever: under steady load some run is always in
// flight, and a batch goes once it has waited deferFor, or at once when
// it is full.
func TestTimelineWaitIsBounded(t *testing.T) {
	w, s := newTestLogWriter(t, 5*time.Millisecond, 50*time.Millisecond)
	w.runBegan()
	w.add(nil, &pb.LogEntry{Type: "useModel"})
	testwait.For(t, 5*time.Second, "the entry stored with a run still in flight", func() bool { return s.count() == 1 })

	w2, s2 := newTestLogWriter(t, time.Minute, time.Minute)
	w2.runBegan()
	for range maxLogBatch {
		w2.add(nil, &pb.LogEntry{Type: "useModel"})
	}
	testwait.For(t, 5*time.Second, "a full batch stored at once", func() bool { return s2.count() == maxLogBatch })
}
