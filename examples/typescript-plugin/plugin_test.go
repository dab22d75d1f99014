//go:build unix

// Package typescriptplugin_test runs the TypeScript example plugin as the
// daemon runs it (its own process, go-plugin's handshake, AutoMTLS) and
// calls it as the host does, with sdk/plugintest. What the SDK itself
// promises is tested in sdk/typescript; this checks the example.
package typescriptplugin_test

import (
	"os"
	"testing"

	typescriptplugin "github.com/agenthost/agenthost/examples/typescript-plugin"
	"github.com/agenthost/agenthost/internal/langsdk"
)

func TestTypeScriptExample(t *testing.T) {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	exe, err := typescriptplugin.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	langsdk.TestExample(t, exe, langsdk.Example{Name: "typescript-example", Provider: "TS_EXAMPLE", Action: "TS_EXAMPLE_ACTION",
		Setting: "TS_EXAMPLE_GREETING", ProviderText: "The TypeScript example provider says hi there.", RunsKey: "tsExampleRuns"})
}
