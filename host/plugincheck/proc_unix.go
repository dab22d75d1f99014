//go:build unix

package plugincheck

import "syscall"

// killGroup kills a process started in its own group, and what it started.
func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
