//go:build unix

// Package pythonplugin_test runs the Python example plugin as the daemon
// runs it (its own process, go-plugin's handshake, AutoMTLS) and calls it
// as the host does, with sdk/plugintest. What the SDK itself promises is
// tested in sdk/python; this checks the example.
package pythonplugin_test

import (
	"os"
	"testing"

	pythonplugin "github.com/agenthost/agenthost/examples/python-plugin"
	"github.com/agenthost/agenthost/internal/langsdk"
)

func TestPythonExample(t *testing.T) {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	exe, err := pythonplugin.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	langsdk.TestExample(t, exe, langsdk.Example{Name: "python-example", Provider: "PY_EXAMPLE", Action: "PY_EXAMPLE_ACTION",
		Setting: "PY_EXAMPLE_GREETING", ProviderText: "The Python example provider says hi there.", RunsKey: "pyExampleRuns"})
}
