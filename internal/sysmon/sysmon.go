// Package sysmon keeps the Go runtime's system monitor from its deep sleep,
// which makes the daemon and its Go plugins cheaper to run under messages.
//
// Every Go process has a monitor thread (sysmon) that takes a processor
// back from a thread blocked in a system call and preempts long-running
// goroutines. When every processor is idle it sleeps until the next timer.
// The first system call after that wakes it, and it then looks again every
// 20µs for a millisecond before it slows down: some 50 wake-ups for each
// burst of work. agenthost passes each message through four or five
// processes, a burst in each at every step, so the monitors' wake-ups were
// 9–18% of every process's CPU on a two-core virtual machine (a timer
// wake-up costs more in a virtual machine than on bare metal).
//
// With GODEBUG's schedtrace set, the monitor never takes the deep sleep: it
// looks every 10ms when nothing happens, and nothing wakes it early. The
// period is the largest the runtime takes (2147483647ms, 24.8 days), so the
// trace line it stands for is printed once every 24.8 days of the machine's
// uptime, at debug level in the host's log when a plugin prints it. Idle,
// the processes then wake 100 times a second each instead of sleeping.
package sysmon

import (
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
)

// Setting is what GODEBUG gains.
const Setting = "schedtrace=2147483647"

// With returns env (KEY=VALUE entries) with Setting added to its GODEBUG,
// unless GODEBUG names schedtrace already: an operator's own value, 0 to
// turn this off, is kept.
func With(env []string) []string {
	at := -1
	for i, kv := range env {
		// A Go process reads the first GODEBUG of its environment.
		if strings.HasPrefix(kv, "GODEBUG=") {
			at = i
			break
		}
	}
	out := slices.Clone(env)
	switch {
	case at < 0:
		return append(out, "GODEBUG="+Setting)
	case names(strings.TrimPrefix(env[at], "GODEBUG=")):
		return out
	case env[at] == "GODEBUG=":
		out[at] = "GODEBUG=" + Setting
	default:
		out[at] += "," + Setting
	}
	return out
}

// names reports whether a GODEBUG value sets schedtrace.
func names(godebug string) bool {
	for _, f := range strings.Split(godebug, ",") {
		if k, _, _ := strings.Cut(strings.TrimSpace(f), "="); k == "schedtrace" {
			return true
		}
	}
	return false
}

// Reexec replaces this process with itself, same arguments and process id,
// with Setting in its GODEBUG: the runtime reads GODEBUG's schedtrace only
// when a process starts. It returns without doing anything when the
// setting is there already or the system is not Linux, and returns the
// error when the exec fails; the process then goes on as it is.
func Reexec() error {
	if names(os.Getenv("GODEBUG")) || runtime.GOOS != "linux" {
		return nil
	}
	// /proc/self/exe is this very executable even if its file was
	// replaced since it started.
	return syscall.Exec("/proc/self/exe", os.Args, With(os.Environ()))
}
