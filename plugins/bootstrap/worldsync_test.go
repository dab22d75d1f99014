package bootstrap

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// TestParallelStopsAtFirstError: the first calls hold their slots until
// call syncParallel starts, which can only be once call 3 has failed and
// given its slot back. No call after that one may start.
func TestParallelStopsAtFirstError(t *testing.T) {
	t.Parallel()
	var ran atomic.Int32
	boom := errors.New("boom")
	release := make(chan struct{})
	err := parallel(context.Background(), 1000, func(i int) error {
		ran.Add(1)
		switch {
		case i == 3:
			return boom
		case i < syncParallel:
			<-release
		case i == syncParallel:
			close(release)
		}
		return nil
	})
	if !errors.Is(err, boom) || ran.Load() == 1000 || ran.Load() != syncParallel+1 {
		t.Errorf("err %v after %d calls, want boom after %d", err, ran.Load(), syncParallel+1)
	}
	if err := parallel(context.Background(), 0, func(int) error { return boom }); err != nil {
		t.Errorf("no calls, no error: %v", err)
	}
}
