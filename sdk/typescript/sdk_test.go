//go:build unix

package typescript_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/agenthost/agenthost/internal/langsdk"
	"github.com/agenthost/agenthost/sdk/typescript"
)

func build(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := typescript.Build(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestSDK runs the fixture plugin written with the SDK through every check
// the language SDKs pass.
func TestSDK(t *testing.T) {
	dir := build(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal(err)
	}
	langsdk.Test(t, langsdk.Fixture{
		Path:   langsdk.Launcher(t, "agenthost-plugin-ts-fixture", node, filepath.Join(dir, "dist", "test", "fixture.js")),
		Name:   "ts-fixture",
		Prefix: "TSF",
		Lang:   "TypeScript",
	})
}

// TestUnits runs the SDK's own unit tests (node --test).
func TestUnits(t *testing.T) {
	dir := build(t)
	tests, _ := filepath.Glob(filepath.Join(dir, "dist", "test", "*.test.js"))
	if len(tests) == 0 {
		t.Fatal("no unit tests in dist/test")
	}
	cmd := exec.Command("node", append([]string{"--test"}, tests...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// TestGeneratedCodeIsCurrent compares the services of the generated
// TypeScript code with the protocol's Go code: a .proto change needs make
// proto.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	dir := build(t)
	const script = `
const methods = [];
for (const f of ['types', 'plugin', 'runtime', 'database']) {
  const mod = require('./dist/gen/agenthost/plugin/v1/' + f);
  for (const [name, svc] of Object.entries(mod)) {
    if (name.endsWith('Service')) for (const m of Object.values(svc)) methods.push(m.path);
  }
}
console.log(JSON.stringify({ methods }));
`
	cmd := exec.Command("node", "-e", script)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reading the generated TypeScript code: %v", err)
	}
	var got langsdk.Protocol
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	langsdk.CompareProtocol(t, "TypeScript", got)
}

// BenchmarkSDK measures a health check, a provider and an action that calls
// the host back, on the fixture plugin (make bench).
func BenchmarkSDK(b *testing.B) {
	dir := build(b)
	node, err := exec.LookPath("node")
	if err != nil {
		b.Fatal(err)
	}
	langsdk.Bench(b, langsdk.Fixture{
		Path:   langsdk.Launcher(b, "agenthost-plugin-ts-fixture", node, filepath.Join(dir, "dist", "test", "fixture.js")),
		Name:   "ts-fixture",
		Prefix: "TSF",
		Lang:   "TypeScript",
	})
}
