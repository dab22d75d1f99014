package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agenthost/agenthost/host"
	"github.com/agenthost/agenthost/plugins/sqlstore"
)

// TestOneDaemonPerDataDir: a second daemon on the same data dir is refused
// with the first one's pid and address, and so are the db commands that
// write, while the first one runs; once it stopped, the data dir is free.
func TestOneDaemonPerDataDir(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	first := startDaemon(t, daemonOpts{dataDir: dataDir})
	addr := strings.TrimPrefix(first.url, "http://")

	second := launch(t, daemonOpts{dataDir: dataDir})
	code, out := second.waitExit(30 * time.Second)
	want := fmt.Sprintf("in use by another agenthost daemon (pid %d, listening on %s)", first.cmd.Process.Pid, addr)
	if code == 0 || !strings.Contains(out, want) || !strings.Contains(out, "--data-dir") {
		t.Fatalf("a second daemon on the data dir: exit %d, want a message with %q:\n%s", code, want, out)
	}
	if strings.Contains(out, "agent running") || strings.Contains(out, "plugin started") {
		t.Errorf("the refused daemon started work:\n%s", out)
	}
	// The first one still answers.
	if m := first.say("Eliza", "Are you still there?"); len(m.Messages) == 0 {
		t.Fatal("the first daemon stopped answering")
	}

	out, err := runCLI(t, []string{"AGENTHOST_LOG_LEVEL=warn"}, "db", "migrate", "--data-dir", dataDir)
	if err == nil || !strings.Contains(out, want) {
		t.Fatalf("db migrate while the daemon runs: %v\n%s", err, out)
	}

	if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	first.waitExit(20 * time.Second)
	again := startDaemon(t, daemonOpts{dataDir: dataDir})
	if m := again.say("Eliza", "Hello again"); len(m.Messages) == 0 {
		t.Fatal("a daemon on the freed data dir did not answer")
	}
}

// TestDataDirErrorsTeach: a data dir that cannot be used is named, with why
// and with what to do.
func TestDataDirErrorsTeach(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	file := filepath.Join(parent, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := launch(t, daemonOpts{dataDir: file})
	if code, out := d.waitExit(20 * time.Second); code == 0 || !strings.Contains(out, "the data dir "+file+" is a file, not a folder") ||
		!strings.Contains(out, "--data-dir") || strings.Count(out, "data dir") > 3 {
		t.Errorf("data dir is a file: exit %d\n%s", code, out)
	}

	d = launch(t, daemonOpts{dataDir: filepath.Join(file, "below")})
	if code, out := d.waitExit(20 * time.Second); code == 0 || !strings.Contains(out, "lies under a file") {
		t.Errorf("data dir under a file: exit %d\n%s", code, out)
	}

	// A data dir the user may not write. root may write anything, so the
	// daemon then runs as nobody, from a folder nobody may enter.
	if os.Getuid() == 0 {
		var err error
		if parent, err = os.MkdirTemp("", "agenthost-test-nobody-"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(parent) })
	}
	locked := filepath.Join(parent, "locked")
	if err := os.Mkdir(locked, 0o755); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(locked, "data")
	if os.Getuid() != 0 {
		if err := os.Chmod(locked, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(locked, 0o755) })
	}
	cmd := exec.Command(bins.agenthost, "start", "--port", "0", "--data-dir", dataDir)
	cmd.Dir = parent
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + parent}
	if os.Getuid() == 0 {
		// The binary must be reachable by nobody.
		if err := os.Chmod(parent, 0o755); err != nil {
			t.Fatal(err)
		}
		exe := filepath.Join(parent, "agenthost")
		copyFile(t, bins.agenthost, exe, 0o755)
		cmd.Path, cmd.Args[0] = exe, exe
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		for p := filepath.Dir(parent); p != "/"; p = filepath.Dir(p) {
			if info, err := os.Stat(p); err == nil && info.Mode().Perm()&0o001 == 0 {
				t.Fatalf("nobody cannot reach %s (mode %v); the test needs a temporary folder others may enter", p, info.Mode())
			}
		}
	}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "the data dir "+dataDir+" is not writable by this user") ||
		!strings.Contains(string(out), "permission denied") || !strings.Contains(string(out), "--data-dir") {
		t.Errorf("unwritable data dir: %v\n%s", err, out)
	}
}

// TestLegacyDatabaseMoves: a database an earlier version kept at the top of
// the data dir moves into the sql plugin's folder and keeps its agents.
func TestLegacyDatabaseMoves(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	d := startDaemon(t, daemonOpts{dataDir: dataDir})
	room := d.say("Eliza", "Remember the blue door").RoomID
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	d.waitExit(20 * time.Second)
	// Put it back where the earlier version had it.
	sqlDir := host.PluginDir(dataDir, "sql")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		from := filepath.Join(sqlDir, sqlstore.FileName+suffix)
		if _, err := os.Stat(from); err == nil {
			if err := os.Rename(from, filepath.Join(dataDir, sqlstore.FileName+suffix)); err != nil {
				t.Fatal(err)
			}
		}
	}
	d = startDaemon(t, daemonOpts{dataDir: dataDir})
	mems := d.memories("Eliza", room)
	if len(mems) < 2 || mems[len(mems)-1].Content.Text != "Remember the blue door" {
		t.Fatalf("the moved database lost the conversation: %+v", mems)
	}
	if _, err := os.Stat(filepath.Join(dataDir, sqlstore.FileName)); !os.IsNotExist(err) {
		t.Errorf("the old database file is still at the top of the data dir: %v", err)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

// TestStaleRuntimeFolderRemoved: the runtime folder (sockets, plugins'
// temporary folders) of a daemon killed with SIGKILL is removed by the
// next daemon.
func TestStaleRuntimeFolderRemoved(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	d := startDaemon(t, daemonOpts{env: []string{"TMPDIR=" + tmp}})
	pid := d.cmd.Process.Pid
	stale, _ := filepath.Glob(filepath.Join(tmp, fmt.Sprintf("agenthost-%d-*", pid)))
	if len(stale) != 1 {
		t.Fatalf("want one runtime folder of pid %d in %s, got %v", pid, tmp, stale)
	}
	if _, err := os.Stat(filepath.Join(stale[0], "runtime.sock")); err != nil {
		t.Fatalf("the runtime folder has no Runtime socket: %v", err)
	}
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d.exited
	if _, err := os.Stat(stale[0]); err != nil {
		t.Fatalf("a SIGKILLed daemon cannot remove its folder, yet it is gone: %v", err)
	}
	startDaemon(t, daemonOpts{env: []string{"TMPDIR=" + tmp}})
	if _, err := os.Stat(stale[0]); !os.IsNotExist(err) {
		t.Fatalf("the next daemon left the stale runtime folder %s: %v", stale[0], err)
	}
}
