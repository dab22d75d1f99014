//go:build linux

package confine

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// LandlockABI is the Landlock ABI version the kernel offers, 0 if none.
func LandlockABI() int {
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return 0
	}
	return int(v)
}

// handledFS is every file-system right of the kernel's Landlock ABI up to
// 8. ABI 9's right to connect to pathname unix sockets is left out on
// purpose: plugins connect to the host's Runtime socket. The network is
// not restricted at all (model APIs, Telegram, PostgreSQL).
func handledFS(abi int) uint64 {
	fs := uint64(1<<13 - 1) // ABI 1: execute … make_sym
	if abi >= 2 {
		fs |= unix.LANDLOCK_ACCESS_FS_REFER
	}
	if abi >= 3 {
		fs |= unix.LANDLOCK_ACCESS_FS_TRUNCATE
	}
	if abi >= 5 {
		fs |= unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	}
	return fs
}

// execConfined applies p to the calling thread and the process, then
// execs path. Everything per-thread (capabilities, no_new_privs, the
// Landlock domain) is set on one locked thread, the one that calls execve:
// the new program starts with that thread's state alone.
func execConfined(p Policy, path string, argv, env []string) error {
	runtime.LockOSThread()
	for _, procs := range p.Cgroups {
		if err := os.WriteFile(procs, []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			return fmt.Errorf("join cgroup %s: %w", procs, err)
		}
	}
	limits := []struct {
		name  string
		which int
		v     uint64
	}{
		{"memory", unix.RLIMIT_DATA, p.Memory},
		{"open files", unix.RLIMIT_NOFILE, p.Files},
		{"processes", unix.RLIMIT_NPROC, p.Processes},
		{"core dumps", unix.RLIMIT_CORE, 0},
	}
	for _, l := range limits {
		if l.v == 0 && l.which != unix.RLIMIT_CORE {
			continue
		}
		if l.which == unix.RLIMIT_NPROC && len(p.Cgroups) > 0 {
			continue // the cgroup's pids.max holds instead
		}
		if err := unix.Setrlimit(l.which, &unix.Rlimit{Cur: l.v, Max: l.v}); err != nil {
			return fmt.Errorf("limit %s to %d: %w", l.name, l.v, err)
		}
	}
	if err := dropCapabilities(); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	if p.Landlock {
		if err := restrictFiles(p); err != nil {
			return err
		}
	}
	if err := syscall.Exec(path, argv, env); err != nil {
		return fmt.Errorf("exec %s: %w", path, err)
	}
	return nil
}

// dropCapabilities empties the bounding set, the ambient set and the
// inheritable set, so that the plugin has no capabilities after execve even
// when the daemon runs as root: no raising its own limits, no loading
// kernel modules, no changing the network. Without CAP_SETPCAP (a daemon
// not run as root) there is nothing to drop.
func dropCapabilities() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	const setpcap = 1 << (unix.CAP_SETPCAP % 32)
	if data[unix.CAP_SETPCAP/32].Effective&setpcap != 0 {
		for c := 0; c <= unix.CAP_LAST_CAP; c++ {
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("drop capability %d: %w", c, err)
			}
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clear inheritable capabilities: %w", err)
	}
	return nil
}

// restrictFiles puts the calling thread in a Landlock domain that allows
// p.Read and p.Write and nothing else of the file system, and no signals or
// abstract unix sockets outside it (ABI 6). Paths that do not exist are
// skipped. A kernel without Landlock gets nothing: the host says so.
func restrictFiles(p Policy) error {
	abi := LandlockABI()
	if abi < 1 {
		return nil
	}
	handled := handledFS(abi)
	attr := unix.LandlockRulesetAttr{Handled_access_fs: handled}
	size := unsafe.Sizeof(attr.Handled_access_fs)
	if abi >= 4 {
		size += unsafe.Sizeof(attr.Handled_access_net)
	}
	if abi >= 6 {
		attr.Scoped = unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | unix.LANDLOCK_SCOPE_SIGNAL
		size += unsafe.Sizeof(attr.Scoped)
	}
	fd, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), size, 0)
	if errno != 0 {
		return fmt.Errorf("landlock_create_ruleset: %w", errno)
	}
	defer unix.Close(int(fd))
	const (
		read     = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR
		fileOnly = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE |
			unix.LANDLOCK_ACCESS_FS_TRUNCATE | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	)
	add := func(path string, access uint64) error {
		info, err := os.Stat(path)
		if err != nil {
			return nil
		}
		if !info.IsDir() {
			access &= fileOnly
		}
		access &= handled
		if access == 0 {
			return nil
		}
		pfd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil
		}
		defer unix.Close(pfd)
		rule := unix.LandlockPathBeneathAttr{Allowed_access: access, Parent_fd: int32(pfd)}
		if _, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, fd, unix.LANDLOCK_RULE_PATH_BENEATH,
			uintptr(unsafe.Pointer(&rule)), 0, 0, 0); errno != 0 {
			return fmt.Errorf("landlock rule for %s: %w", path, errno)
		}
		return nil
	}
	for _, path := range p.Read {
		if err := add(path, read); err != nil {
			return err
		}
	}
	for _, path := range p.Write {
		// Everything in the plugin's own folders but ioctl on devices.
		if err := add(path, handled&^unix.LANDLOCK_ACCESS_FS_IOCTL_DEV); err != nil {
			return err
		}
	}
	if _, _, errno := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); errno != 0 {
		return fmt.Errorf("landlock_restrict_self: %w", errno)
	}
	return nil
}
