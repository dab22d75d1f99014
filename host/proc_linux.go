package host

import (
	"os/exec"
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
