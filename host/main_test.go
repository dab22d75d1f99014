package host

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// agenthostBin is the real agenthost binary, built once for this package's
// tests: the bundled plugins run as its child processes.
var agenthostBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "agenthost-host-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	agenthostBin = filepath.Join(dir, "agenthost")
	cmd := exec.Command("go", "build", "-o", agenthostBin, "../cmd/agenthost")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build agenthost:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
