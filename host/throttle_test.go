//go:build linux

package host

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestOverCallLimitLowersTheWholeProcessGroup: a plugin over its call limit
// has every process of its group lowered, children included, and the
// check after its calm period leaves it low while it still goes over.
func TestOverCallLimitLowersTheWholeProcessGroup(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("/bin/sh", "-c", "sleep 60 & wait")
	setProcAttrs(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killGroup(cmd.Process.Pid); _ = cmd.Wait() })
	p := &PluginProcess{log: hclog.NewNullLogger(), limits: Limits{Calls: 10},
		cur: &pluginConn{pid: cmd.Process.Pid}}
	p.overCallLimit()
	p.throttleCheck() // within the calm period: it stays low
	group := groupOf(t, cmd.Process.Pid)
	if len(group) < 1 {
		t.Fatal("the plugin's process group is empty")
	}
	for _, pid := range group {
		if n := niceOfPid(t, pid); n != throttledNice {
			t.Errorf("process %d of the group has nice %d, want %d", pid, n, throttledNice)
		}
	}
	p.mu.Lock()
	if p.throttle.timer != nil {
		p.throttle.timer.Stop()
	}
	p.mu.Unlock()
}

// groupOf lists the processes of a process group.
func groupOf(t *testing.T, pgid int) []int {
	t.Helper()
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(pid); len(f) > 2 && f[2] == strconv.Itoa(pgid) {
			out = append(out, pid)
		}
	}
	return out
}

func niceOfPid(t *testing.T, pid int) int {
	t.Helper()
	f := statFields(pid)
	if len(f) < 17 {
		t.Fatalf("no stat for process %d", pid)
	}
	n, _ := strconv.Atoi(f[16])
	return n
}

// statFields are the fields of /proc/PID/stat after the command name.
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
}

// TestAThrottledPluginHasOneStorageCallAtATime: over its call limit, a
// plugin's second storage call waits for its first, and gives up with
// RESOURCE_EXHAUSTED when its caller does; within it, both go at once.
func TestAThrottledPluginHasOneStorageCallAtATime(t *testing.T) {
	t.Parallel()
	p := &PluginProcess{calls: make(chan struct{}, 16), throttleSlot: make(chan struct{}, 1), limits: Limits{Calls: 10}}
	first, err := p.admit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	second, err := p.admit(context.Background())
	if err != nil {
		t.Fatalf("within its limit the second call should go at once: %v", err)
	}
	second()
	p.throttled.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	held, err := p.admit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.admit(ctx); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a second call while one is in flight: %v, want it to wait and give up with RESOURCE_EXHAUSTED", err)
	}
	held()
	again, err := p.admit(ctx)
	if err != nil {
		t.Errorf("once the first is done the next goes at once: %v", err)
	} else {
		again()
	}
	first()
}
