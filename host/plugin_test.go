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
	bin := filepath.Join(t.TempDir(), ExecPrefix+"slow")
	// It takes its time and then fails its handshake, as a plugin may.
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nsleep 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	m := NewManager(ManagerConfig{WorkDir: t.TempDir(), DataDir: t.TempDir(), StartTimeout: 10 * time.Second},
		[]PluginSpec{{Name: "slow", Path: bin}}, hclog.NewNullLogger())
	p := m.Plugin("slow")
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
			dir := t.TempDir()
			pidFile := filepath.Join(dir, "pid")
			bin := filepath.Join(dir, ExecPrefix+"mute")
			script := "#!/bin/sh\necho $$ > " + pidFile + "\nexec sleep 60\n"
			if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			m := NewManager(ManagerConfig{WorkDir: t.TempDir(), DataDir: t.TempDir(), StartTimeout: time.Minute},
				[]PluginSpec{{Name: "mute", Path: bin}}, hclog.NewNullLogger())
			p := m.Plugin("mute")
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
