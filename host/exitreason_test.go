package host

import (
	"os/exec"
	"strings"
	"testing"
)

// TestExitReasonNamesTheLimit: every way a process over its memory limit
// dies is named as the memory limit; a thread the limit on processes
// refused is named as that one; other deaths as crashes, with how the
// process ended when it said nothing.
func TestExitReasonNamesTheLimit(t *testing.T) {
	t.Parallel()
	both := Limits{Memory: 256 << 20, Processes: 32}
	memOnly := Limits{Memory: 256 << 20}
	procsOnly := Limits{Processes: 32}
	for _, c := range []struct {
		name   string
		limits Limits
		fatal  string
		want   string
	}{
		{"go heap", both, "fatal error: runtime: out of memory", "it went over its memory limit of 256 MiB (fatal error: runtime: out of memory)"},
		{"node heap", both, "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory", "it went over its memory limit of 256 MiB"},
		{"python", both, "MemoryError", "it went over its memory limit of 256 MiB"},
		{"mmap", both, "agenthost: confine plugin x: mmap: Cannot allocate memory", "it went over its memory limit of 256 MiB"},
		{"go thread ENOMEM", both, "runtime: failed to create new OS thread (have 9 already; errno=12); fatal error: newosproc", "it went over its memory limit of 256 MiB"},
		{"go thread EAGAIN", both, "runtime: failed to create new OS thread (have 31 already; errno=11); fatal error: newosproc", "it reached its limit of 32 processes and threads"},
		{"cgo thread, no limit on processes", memOnly, "runtime/cgo: pthread_create failed: Resource temporarily unavailable; SIGABRT: abort", "it went over its memory limit of 256 MiB"},
		{"cgo thread, no memory limit", procsOnly, "runtime/cgo: pthread_create failed: Resource temporarily unavailable; SIGABRT: abort", "it reached its limit of 32 processes"},
		{"out of memory without a limit", procsOnly, "fatal error: runtime: out of memory", "it crashed: fatal error: runtime: out of memory"},
		{"a panic", both, "panic: boom", "it crashed: panic: boom"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := &PluginProcess{limits: c.limits}
			w := newStderrLog(nil, nil)
			w.fatal = c.fatal
			if got := p.exitReason(&pluginConn{stderr: w}); !strings.HasPrefix(got, c.want) {
				t.Errorf("exitReason = %q, want it to start with %q", got, c.want)
			}
		})
	}
}

// TestExitReasonSaysHowASilentProcessEnded: a process that said nothing
// is described by its wait status.
func TestExitReasonSaysHowASilentProcessEnded(t *testing.T) {
	t.Parallel()
	p := &PluginProcess{}
	for _, c := range []struct {
		script, want string
	}{
		{"exit 3", "it exited with status 3"},
		{"kill -KILL $$", "it was killed by signal killed"},
	} {
		cmd := exec.Command("/bin/sh", "-c", c.script)
		_ = cmd.Run()
		if got := p.exitReason(&pluginConn{cmd: cmd, stderr: newStderrLog(nil, nil)}); got != c.want {
			t.Errorf("%s: exitReason = %q, want %q", c.script, got, c.want)
		}
	}
	if got := p.exitReason(&pluginConn{}); got != "it exited" {
		t.Errorf("with no process: %q, want %q", got, "it exited")
	}
}
