package bootstrap

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/sdk"
	"github.com/google/uuid"
)

// Askers of a record being read wait for that read instead of making
// their own.
func TestCachedSharesARead(t *testing.T) {
	t.Parallel()
	key := "test\x00" + uuid.NewString()
	release, reading := make(chan struct{}), make(chan struct{})
	first := make(chan any, 1)
	go func() {
		v, _ := cached(key, func() (any, error) {
			close(reading)
			<-release
			return "read", nil
		})
		first <- v
	}()
	<-reading
	var loads atomic.Int32
	second := make(chan any, 1)
	go func() {
		v, _ := cached(key, func() (any, error) { loads.Add(1); return "again", nil })
		second <- v
	}()
	// A second read of its own would be done while the first is held;
	// sharing, it waits for the first.
	if testwait.Poll(200*time.Millisecond, func() bool { return loads.Load() > 0 || len(second) > 0 }) {
		t.Fatalf("the second asker did not wait for the read under way: %d reads of its own", loads.Load())
	}
	close(release)
	if a, b := <-first, <-second; a != "read" || b != "read" || loads.Load() != 0 {
		t.Errorf("answers %v and %v, %d reads of the second's own; want both the one read's", a, b, loads.Load())
	}
}

// A write of this plugin (forget) or a value it keeps is newer than a read
// under way: that read's answer is not kept.
func TestReadUnderWayIsOlderThanAWrite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		write func(key string)
		want  any
	}{
		{"forget", func(key string) { forget(key) }, "read after"},
		{"keep", func(key string) { keep(key, "kept") }, "kept"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "test\x00" + uuid.NewString()
			release, reading, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
			go func() {
				defer close(done)
				_, _ = cached(key, func() (any, error) {
					close(reading)
					<-release
					return "read before", nil
				})
			}()
			<-reading
			tc.write(key)
			close(release)
			<-done
			if v, _ := cached(key, func() (any, error) { return "read after", nil }); v != tc.want {
				t.Errorf("after the write: %v, want %v", v, tc.want)
			}
		})
	}
}

// A read cut off by its asker's context is not the answer of the askers
// that shared it, nor kept.
func TestCutReadIsReadAgain(t *testing.T) {
	t.Parallel()
	key := "test\x00" + uuid.NewString()
	release, reading := make(chan struct{}), make(chan struct{})
	go func() {
		_, _ = cached(key, func() (any, error) {
			close(reading)
			<-release
			return nil, context.Canceled
		})
	}()
	<-reading
	var wg sync.WaitGroup
	var got any
	wg.Go(func() { got, _ = cached(key, func() (any, error) { return "own read", nil }) })
	close(release)
	wg.Wait()
	if got != "own read" {
		t.Errorf("got %v, want the asker's own read", got)
	}
}

// Writes behind are held until started; one that waits for the writes
// of a record (a reader or another writer of it) starts them, and they
// are made in order.
func TestWritesBehindInOrder(t *testing.T) {
	t.Parallel()
	key := "test\x00" + uuid.NewString()
	var mu sync.Mutex
	var order []string
	write := func(name string) func() {
		return func() {
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
		}
	}
	writeBehind(key, write("first"))
	writeBehind(key, write("second"))
	mu.Lock()
	if len(order) != 0 {
		t.Errorf("writes made before they were started: %v", order)
	}
	mu.Unlock()
	written(key)
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 2 || order[0] != "first" {
		t.Errorf("writes made %v, want first then second, both before written returns", order)
	}
}

// The first message in a DM makes its sender the owner of the world; the
// write does not hold up the reply, but it is made before the run ends.
func TestDMOwnerOnFirstMessage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, func(req sdk.ModelRequest) string { return xmlReply("hello") })
	room, world, user := uuid.NewString(), uuid.NewString(), uuid.NewString()
	f.connect(t, room, world, user, "Olga", sdk.ChannelDM)
	f.receive(t, f.message(room, world, user, "hi", sdk.ChannelDM))
	w := f.world(t, world)
	if w == nil || ownerOf(w) != user || roleOf(w, user) != RoleOwner {
		t.Fatalf("the DM's world after the first message: %+v, want %s its owner", w, user)
	}
	if n := len(f.rt.Responses()); n != 1 {
		t.Errorf("%d replies, want 1", n)
	}
}
