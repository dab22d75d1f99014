//go:build !linux

package host

type cpuMask = struct{}

// newOneCPU returns nil: CPU masks are set on Linux only.
func newOneCPU(func() []int, func(int, error)) *oneCPU { return nil }

func (o *oneCPU) pin()   {}
func (o *oneCPU) unpin() {}
