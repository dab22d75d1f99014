package host

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/hashicorp/go-hclog"
)

// TestStopWhileStarting stops a plugin while its process starts: the start
// ends with an error and the plugin stays stopped. Before, the start
// closed the channel its waiters wait on, which Stop had closed already,
// and the daemon panicked: a daemon stopped while a cluster node started
// an agent crashed (seen in a test whose daemon stopped right after it
// served).
func TestStopWhileStarting(t *testing.T) {
	// It takes its time and then fails its handshake, as a plugin may.
	p, _ := scriptPlugin(t, "slow", "sleep 1\n", 10*time.Second)
	done := make(chan error, 1)
	go func() { done <- p.Start(context.Background()) }()
	testwait.For(t, 5*time.Second, "the plugin to be starting", func() bool {
		st, _ := p.State()
		return st == StateStarting
	})
	p.Stop()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a start that was stopped meanwhile returned no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the start did not end within 10 s of its process failing")
	}
	if st, err := p.State(); st != StateStopped {
		t.Errorf("after the stop the plugin is %v (%v), want stopped", st, err)
	}
	if pid := p.PID(); pid != 0 {
		t.Errorf("after the stop the plugin has a process (pid %d)", pid)
	}
}

// TestStartGivenUpBeforeTheHandshake starts a plugin that never answers
// go-plugin's handshake, and gives up on it, once by the caller's context
// (a daemon asked to stop while it starts its agents) and once by Stop:
// the start ends at once and the process is gone. Before, both waited for
// the handshake's timeout (30 s by default), and SIGTERM to a daemon whose
// plugin hung there went unanswered that long.
func TestStartGivenUpBeforeTheHandshake(t *testing.T) {
	for _, how := range []string{"context", "stop"} {
		t.Run(how, func(t *testing.T) {
			p, pidFile := scriptPlugin(t, "mute", "echo $$ > PIDFILE\nexec sleep 60\n", time.Minute)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- p.Start(ctx) }()
			pid := testwait.ForPID(t, 10*time.Second, pidFile)
			t0 := time.Now()
			if how == "context" {
				cancel()
			} else {
				p.Stop()
			}
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("a start given up on returned no error")
				}
				if how == "context" && !strings.Contains(err.Error(), "given up") {
					t.Errorf("the error does not say the start was given up: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the start still waits for the handshake 10 s after it was given up")
			}
			if took := time.Since(t0); took > 5*time.Second {
				t.Errorf("the start took %s to end once given up", took)
			}
			if !testwait.Poll(5*time.Second, func() bool { return syscall.Kill(pid, 0) != nil }) {
				t.Errorf("the plugin's process %d outlived its start", pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		})
	}
}

// TestPluginThatLeavesAChildBehind starts a plugin that starts a process
// of its own and exits before its handshake. The child holds the plugin's
// output open, and go-plugin waits for that output to close: the start
// used to hang for ever once the handshake had timed out, and with it the
// agent's start and the daemon's stop. Now the start fails at the
// handshake's timeout and the child goes with its process group.
func TestPluginThatLeavesAChildBehind(t *testing.T) {
	p, pidFile := scriptPlugin(t, "forky", "sleep 60 &\necho $! > PIDFILE\nexit 1\n", time.Second)
	done := make(chan error, 1)
	go func() { done <- p.Start(context.Background()) }()
	child := testwait.ForPID(t, 10*time.Second, pidFile)
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the start of a plugin that exited before its handshake returned no error")
		}
		if !strings.Contains(err.Error(), "exited before its handshake, and a process it started kept its output open") {
			t.Errorf("the error does not say what happened: %v", err)
		}
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(child, syscall.SIGKILL)
		t.Fatal("the start still hangs 10 s after a handshake timeout of 1 s")
	}
	if !testwait.Poll(5*time.Second, func() bool { return syscall.Kill(child, 0) != nil }) {
		t.Errorf("the plugin's child %d outlived the failed start", child)
		_ = syscall.Kill(child, syscall.SIGKILL)
	}
}

// scriptPlugin is a plugin of one shell script, body, with the handshake
// timeout given: it is never a real plugin, only a process that starts,
// waits or exits as the test needs. "PIDFILE" in body is a file of the
// test's to write process ids to, returned too.
func scriptPlugin(t *testing.T, name, body string, startTimeout time.Duration) (*PluginProcess, string) {
	t.Helper()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	bin := filepath.Join(dir, ExecPrefix+name)
	script := "#!/bin/sh\n" + strings.ReplaceAll(body, "PIDFILE", pidFile)
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	m := NewManager(ManagerConfig{WorkDir: t.TempDir(), DataDir: t.TempDir(), StartTimeout: startTimeout},
		[]PluginSpec{{Name: name, Path: bin}}, hclog.NewNullLogger())
	return m.Plugin(name), pidFile
}
