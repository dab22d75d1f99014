package host

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// The data dir holds the daemon's state: each plugin's folder
// (DATA_DIR/plugins/NAME, the sql plugin's SQLite database among them) and
// the lock that keeps two daemons off one data dir.

// lockFileName is the lock file of a data dir. A daemon holds it exclusively
// for its lifetime and writes its pid and address into it; `agenthost db`
// commands hold it shared.
const lockFileName = "daemon.lock"

// PluginDir is a plugin's own folder in a data dir. The sql plugin keeps
// its SQLite database there, as sql.FileName.
func PluginDir(dataDir, plugin string) string {
	return filepath.Join(dataDir, "plugins", plugin)
}

// dataDirLock is a held lock on a data dir.
type dataDirLock struct {
	f *os.File
}

// openDataDir makes the data dir private (0700, even if it existed with a
// looser mode), takes its lock (exclusive for a daemon, shared for a tool)
// and moves a SQLite database an earlier version kept at its top into the
// sql plugin's folder. create=false refuses a data dir that does not exist.
func openDataDir(dir string, exclusive, create bool) (*dataDirLock, error) {
	info, err := os.Stat(dir)
	switch {
	case err == nil && !info.IsDir():
		return nil, fmt.Errorf("the data dir %s is a file, not a folder: move it away, or choose another folder with --data-dir", dir)
	case errors.Is(err, fs.ErrNotExist) && !create:
		return nil, fmt.Errorf("there is no data dir at %s: the daemon makes it at its first start (`agenthost start --data-dir %s`), or give the folder of an existing one with --data-dir", dir, dir)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, dataDirErr(dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, dataDirErr(dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, dataDirErr(dir, err)
	}
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, dataDirErr(dir, err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		holder := lockHolder(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("the data dir %s is in use by %s: stop it first, or give this one another --data-dir", dir, holder)
		}
		return nil, fmt.Errorf("lock the data dir %s: %w", dir, err)
	}
	l := &dataDirLock{f: f}
	if err := moveLegacyDatabase(dir); err != nil {
		l.release()
		return nil, err
	}
	return l, nil
}

// dataDirErr says what is wrong with a data dir in words to act on.
func dataDirErr(dir string, err error) error {
	switch {
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("the data dir %s is not writable by this user (uid %d): permission denied; fix its owner or mode, or choose another folder with --data-dir", dir, os.Getuid())
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("the data dir %s lies under a file, not a folder: choose another folder with --data-dir", dir)
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("the data dir %s is on a read-only file system: choose another folder with --data-dir", dir)
	}
	return fmt.Errorf("data dir %s: %w (choose another folder with --data-dir)", dir, err)
}

// lockHolder describes whoever holds a data dir's lock, from what a daemon
// wrote into it.
func lockHolder(f *os.File) string {
	pid, addr := 0, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "pid":
			pid, _ = strconv.Atoi(v)
		case "addr":
			addr = v
		}
	}
	if pid <= 0 || !processAlive(pid) {
		return "another agenthost process (an `agenthost db` command)"
	}
	if addr == "" {
		return fmt.Sprintf("another agenthost daemon (pid %d)", pid)
	}
	return fmt.Sprintf("another agenthost daemon (pid %d, listening on %s)", pid, addr)
}

// note records the daemon's pid and address in the lock file, for the
// message a second daemon prints.
func (l *dataDirLock) note(addr string) {
	if l == nil {
		return
	}
	_ = l.f.Truncate(0)
	_, _ = l.f.WriteAt([]byte(fmt.Sprintf("pid=%d\naddr=%s\n", os.Getpid(), addr)), 0)
}

func (l *dataDirLock) release() {
	if l == nil || l.f == nil {
		return
	}
	// Unlock before closing: a plugin forked at that moment shares the
	// descriptor until it execs, and closing alone would leave the lock
	// held by it, refusing the next daemon on this data dir.
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}

// legacyDatabase is where versions before plugins had their own folders
// kept the SQLite database: at the top of the data dir, which confinement
// now keeps every plugin out of.
const legacyDatabase = "agenthost.db"

// moveLegacyDatabase moves DATA_DIR/agenthost.db (with its -wal and -shm)
// into the sql plugin's folder, once. The lock is held, so no daemon has
// the files open.
func moveLegacyDatabase(dir string) error {
	old := filepath.Join(dir, legacyDatabase)
	if _, err := os.Stat(old); err != nil {
		return nil
	}
	newDir := PluginDir(dir, "sql")
	if _, err := os.Stat(filepath.Join(newDir, legacyDatabase)); err == nil {
		return nil
	}
	if err := os.MkdirAll(newDir, 0o700); err != nil {
		return dataDirErr(dir, err)
	}
	// The WAL first: a database without its WAL would lose what the WAL
	// holds, while a leftover WAL next to nothing is harmless.
	for _, suffix := range []string{"-wal", "-shm", ""} {
		from := old + suffix
		if _, err := os.Stat(from); err != nil {
			continue
		}
		if err := os.Rename(from, filepath.Join(newDir, legacyDatabase+suffix)); err != nil {
			return fmt.Errorf("move the database %s into %s: %w", from, newDir, err)
		}
	}
	return nil
}
