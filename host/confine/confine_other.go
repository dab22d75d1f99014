//go:build !linux

package confine

import (
	"fmt"
	"syscall"
)

// LandlockABI is 0: only Linux has Landlock.
func LandlockABI() int { return 0 }

// execConfined runs path unconfined: the limits and rules are Linux's.
func execConfined(_ Policy, path string, argv, env []string) error {
	if err := syscall.Exec(path, argv, env); err != nil {
		return fmt.Errorf("exec %s: %w", path, err)
	}
	return nil
}
