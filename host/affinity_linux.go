package host

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

type cpuMask = unix.CPUSet

// newOneCPU returns nil when the daemon may use only one CPU anyway, or
// its mask cannot be read.
func newOneCPU(pids func() []int, failed func(int, error)) *oneCPU {
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil || allowed.Count() < 2 {
		return nil
	}
	first := 0
	for !allowed.IsSet(first) {
		first++
	}
	return &oneCPU{allowed: allowed, first: first, pids: pids, failed: failed}
}

// pin moves every thread of the daemon and of its plugins to the CPU the
// calling thread is on, or, if that one is not allowed, to the first one
// allowed.
func (o *oneCPU) pin() {
	if o == nil {
		return
	}
	cpu := currentCPU()
	if cpu < 0 || !o.allowed.IsSet(cpu) {
		cpu = o.first
	}
	var one unix.CPUSet
	one.Set(cpu)
	o.apply(&one)
}

// unpin gives every thread back the CPUs the daemon started with.
func (o *oneCPU) unpin() {
	if o != nil {
		o.apply(&o.allowed)
	}
}

func (o *oneCPU) apply(set *unix.CPUSet) {
	if err := setProcessAffinity(os.Getpid(), set); err != nil {
		o.failed(os.Getpid(), err)
	}
	for _, pid := range o.pids() {
		if err := setProcessAffinity(pid, set); err != nil {
			o.failed(pid, err)
		}
	}
}

// setProcessAffinity sets the CPU mask of every thread of a process: the
// mask is a thread's, and a thread started later takes its creator's, so
// the threads are listed again until no new one turns up. A process or
// thread that exited meanwhile is skipped.
func setProcessAffinity(pid int, set *unix.CPUSet) error {
	done := map[int]bool{}
	var errs []error
	for range 3 {
		tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		fresh := false
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil || done[tid] {
				continue
			}
			done[tid], fresh = true, true
			if err := unix.SchedSetaffinity(tid, set); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("thread %d: %w", tid, err))
			}
		}
		if !fresh {
			break
		}
	}
	return errors.Join(errs...)
}

// currentCPU is the CPU the calling thread runs on, or -1.
func currentCPU() int {
	var cpu, node uint32
	if _, _, e := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), uintptr(unsafe.Pointer(&node)), 0); e != 0 {
		return -1
	}
	return int(cpu)
}
