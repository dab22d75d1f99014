//go:build !linux

package memtrim

// dropStartupPages does nothing where /proc/self/smaps is not there.
func dropStartupPages() {}

// heapSnapshot is nothing where there is no mincore to take it with.
type heapSnapshot struct{}

func snapshotHeap() *heapSnapshot { return nil }

// span is an address range.
type span struct{ start, end uintptr }

func givenBack(*heapSnapshot) []span { return nil }

func populate(addr, n uintptr) bool { return false }

func absent(addr, n uintptr) uintptr { return n }
