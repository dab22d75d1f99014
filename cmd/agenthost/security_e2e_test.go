//go:build linux

package main

import (
	"github.com/agenthost/agenthost/internal/testwait"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStartRefusesOpenAddressWithoutKey: `agenthost start` on an address
// other machines reach, without an API key, stops before it runs anything
// and says what to do; --insecure-no-auth starts it, with a warning.
func TestStartRefusesOpenAddressWithoutKey(t *testing.T) {
	t.Parallel()
	port := strconv.Itoa(freePort(t))
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "SERVER_HOST=0.0.0.0", "AGENTHOST_LOG_LEVEL=info"}
	cmd := exec.Command(bins.agenthost, "start", "--port", port, "--data-dir", t.TempDir())
	cmd.Dir, cmd.Env = t.TempDir(), env
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("agenthost start on 0.0.0.0 without a key did not stop")
	}
	if err == nil || !strings.Contains(string(out), "AGENTHOST_API_KEY") || !strings.Contains(string(out), "--insecure-no-auth") {
		t.Fatalf("want a refusal that says to set AGENTHOST_API_KEY: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "agent running") {
		t.Errorf("agents started before the refusal:\n%s", out)
	}

	cmd = exec.Command(bins.agenthost, "start", "--port", port, "--data-dir", t.TempDir(), "--insecure-no-auth")
	cmd.Dir, cmd.Env = t.TempDir(), env
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if !testwait.Poll(60*time.Second, func() bool { return healthy("http://127.0.0.1:" + port) }) {
		t.Fatalf("--insecure-no-auth: the daemon did not come up\n%s", log.String())
	}
	// Logged before the daemon serves, but its output reaches log through a
	// pipe that this process copies a moment later.
	if !testwait.Poll(10*time.Second, func() bool { return strings.Contains(log.String(), "INSECURE") }) {
		t.Errorf("--insecure-no-auth should be warned about:\n%s", log.String())
	}
}
