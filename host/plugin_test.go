package host

import (
	"context"
	"os"
	"path/filepath"
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
