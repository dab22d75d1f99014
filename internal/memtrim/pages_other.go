//go:build !linux

package memtrim

// dropStartupPages does nothing where /proc/self/smaps is not there.
func dropStartupPages() {}
