//go:build unix

// Package python_test runs the Python SDK's tests: its unittest suite, and
// the fixture plugin written with it through the checks every language SDK
// passes (internal/langsdk). The SDK is Python (agenthost_sdk/); this
// folder holds no other Go code.
package python_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/agenthost/agenthost/internal/langsdk"
)

// python is the interpreter with grpcio and protobuf: Debian's, which
// scripts/install-python-grpc.sh provides (make test runs it first).
func python(t testing.TB) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import grpc, google.protobuf, cryptography").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import grpc, protobuf and cryptography: run scripts/install-python-grpc.sh (%v)\n%s", py, err, out)
	}
	return py
}

func TestSDK(t *testing.T) {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	langsdk.Test(t, langsdk.Fixture{
		Path:   langsdk.Launcher(t, "agenthost-plugin-py-fixture", python(t), filepath.Join(dir, "tests", "fixture.py")),
		Name:   "py-fixture",
		Prefix: "PYF",
		Lang:   "Python",
	})
}

// TestUnits runs the SDK's own unit tests (python3 -m unittest).
func TestUnits(t *testing.T) {
	cmd := exec.Command(python(t), "-m", "unittest", "discover", "-s", "tests", "-p", "test_*.py", "-v")
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("unittest: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// TestGeneratedCodeIsCurrent compares the generated Python code with the
// protocol's Go code: a .proto change needs make proto.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	const script = `
import json
from agenthost_sdk._proto.agenthost.plugin.v1 import database_pb2, plugin_pb2, runtime_pb2, types_pb2
out = {"methods": [], "fields": {}}
def walk(m):
    if m.GetOptions().map_entry:
        return
    out["fields"][m.full_name] = ["%s=%d" % (f.name, f.number) for f in m.fields]
    for n in m.nested_types:
        walk(n)
for mod in (types_pb2, plugin_pb2, runtime_pb2, database_pb2):
    for s in mod.DESCRIPTOR.services_by_name.values():
        out["methods"] += ["/%s/%s" % (s.full_name, m.name) for m in s.methods]
    for m in mod.DESCRIPTOR.message_types_by_name.values():
        walk(m)
print(json.dumps(out))
`
	cmd := exec.Command(python(t), "-c", script)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reading the generated Python code: %v", err)
	}
	var got langsdk.Protocol
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	langsdk.CompareProtocol(t, "Python", got)
}

// BenchmarkSDK measures a health check, a provider and an action that calls
// the host back, on the fixture plugin (make bench).
func BenchmarkSDK(b *testing.B) {
	dir, err := os.Getwd()
	if err != nil {
		b.Fatal(err)
	}
	langsdk.Bench(b, langsdk.Fixture{
		Path:   langsdk.Launcher(b, "agenthost-plugin-py-fixture", python(b), filepath.Join(dir, "tests", "fixture.py")),
		Name:   "py-fixture",
		Prefix: "PYF",
		Lang:   "Python",
	})
}
