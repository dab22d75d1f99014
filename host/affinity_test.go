//go:build linux

package host

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// threadCPUs lists the CPUs each thread of a process may run on
// (Cpus_allowed_list), by thread id.
func threadCPUs(t *testing.T, pid int) map[string]string {
	t.Helper()
	dirs, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("threads of %d: %v", pid, err)
	}
	out := map[string]string{}
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "status"))
		if err != nil {
			continue // the thread exited
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				out[filepath.Base(dir)] = strings.TrimSpace(v)
			}
		}
	}
	return out
}

// Pinning moves every thread of the daemon's process and of the plugin
// processes it names to one CPU, the same for all; unpinning gives each
// thread back the CPUs the process had.
func TestOneCPUMovesEveryThread(t *testing.T) {
	var failures []error
	o := newOneCPU(nil, func(_ int, err error) { failures = append(failures, err) })
	if o == nil {
		t.Skip("the test may run on one CPU only")
	}
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	o.pids = func() []int { return []int{child.Process.Pid, 999999999} }
	before := threadCPUs(t, os.Getpid())
	o.pin()
	var cpu string
	for _, pid := range []int{os.Getpid(), child.Process.Pid} {
		for tid, cpus := range threadCPUs(t, pid) {
			if strings.ContainsAny(cpus, ",-") {
				t.Errorf("pinned: thread %s of %d may run on CPUs %s, want one", tid, pid, cpus)
			}
			if cpu == "" {
				cpu = cpus
			}
			if cpus != cpu {
				t.Errorf("pinned: thread %s of %d is on CPU %s, another on %s: want one for all", tid, pid, cpus, cpu)
			}
		}
	}
	o.unpin()
	for tid, cpus := range threadCPUs(t, os.Getpid()) {
		if want, ok := before[tid]; ok && cpus != want {
			t.Errorf("unpinned: thread %s may run on CPUs %s, want %s as before", tid, cpus, want)
		}
	}
	for tid, cpus := range threadCPUs(t, child.Process.Pid) {
		if !strings.ContainsAny(cpus, ",-") {
			t.Errorf("unpinned: thread %s of the child may run on CPUs %s only", tid, cpus)
		}
	}
	if len(failures) > 0 {
		t.Errorf("a process that is gone is not a failure; got %v", failures)
	}
}
