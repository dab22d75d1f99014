//go:build !linux

package host

import (
	"errors"
	"os/exec"
)

// On other systems the SDK's parent watchdog ends orphaned plugins.
func setProcAttrs(*exec.Cmd) {}

func killGroup(int) {}

func setGroupNice(int, int) error { return errors.ErrUnsupported }

func ownNice() int { return 0 }

func exited(int) bool { return false }

func killPID(int) {}
