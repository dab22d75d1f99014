package boundedmap

import (
	"fmt"
	"testing"
)

func TestOldestGoFirst(t *testing.T) {
	t.Parallel()
	m := New[int](3)
	for i := range 100 {
		m.Put(fmt.Sprint(i), i)
	}
	if n := m.Len(); n != 3 {
		t.Fatalf("the map holds %d entries, want 3", n)
	}
	for i := 97; i < 100; i++ {
		if got := m.Get(fmt.Sprint(i)); got != i {
			t.Errorf("entry %d = %d, want it kept", i, got)
		}
	}
	if got := m.Get("96"); got != 0 {
		t.Errorf("entry 96 = %d, want it gone", got)
	}
}

// Dropped keys do not keep their place: after many puts and drops the
// order holds only live keys, and a kept key is not pushed out early.
func TestDroppedKeysLeaveTheOrder(t *testing.T) {
	t.Parallel()
	m := New[int](4)
	m.Put("keep", 1)
	for i := range 1000 {
		k := fmt.Sprint(i)
		m.Put(k, i)
		m.Drop(k)
	}
	if got := m.Get("keep"); got != 1 {
		t.Fatalf("keep = %d, want 1: dropped keys pushed it out", got)
	}
	if n := len(m.order); n > 2*m.max+16 {
		t.Errorf("the order holds %d keys for %d live", n, m.Len())
	}
}
