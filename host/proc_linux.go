package host

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// setProcAttrs puts the plugin in its own process group (so Ctrl-C reaches
// the host first and the host stops plugins in order) and has the kernel
// kill it if the host dies, SIGKILL included.
func setProcAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills whatever is left of a plugin's process group.
func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

// setGroupNice sets the nice value of every thread of every process in
// the process group pgid (a plugin and what it started).
func setGroupNice(pgid, nice int) error {
	return syscall.Setpriority(syscall.PRIO_PGRP, pgid, nice)
}

// ownNice is the daemon's nice value, which its plugins start with.
func ownNice() int {
	// The system call answers 20 - nice, so that it is never negative.
	prio, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
	if err != nil {
		return 0
	}
	return 20 - prio
}

// exited reports whether pid has exited and waits to be reaped (a
// zombie): a plugin that did so before its handshake while go-plugin
// still waited for its output, which something it started keeps open.
func exited(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] == 'Z'
}

// killPID kills one process.
func killPID(pid int) { _ = syscall.Kill(pid, syscall.SIGKILL) }
