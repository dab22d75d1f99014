//go:build !linux

package host

import "os/exec"

// On other systems the SDK's parent watchdog ends orphaned plugins.
func setProcAttrs(*exec.Cmd) {}

func killGroup(int) {}
