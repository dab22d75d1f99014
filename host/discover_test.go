package host

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func TestDiscover(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	write := func(dir, name string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(a, "agenthost-plugin-weather", 0o755)
	write(a, "agenthost-plugin-notexec", 0o644)
	write(a, "unrelated-tool", 0o755)
	write(b, "agenthost-plugin-weather", 0o755) // shadowed by a
	write(b, "agenthost-plugin-sql", 0o755)     // shadowed by the bundled one
	// Names that would make folders outside the plugin's own.
	write(b, "agenthost-plugin-..", 0o755)
	write(b, "agenthost-plugin-..exe", 0o755)
	write(b, "agenthost-plugin--x", 0o755)
	specs, warnings, err := Discover("/self", []string{"sql"}, []string{a, filepath.Join(a, "missing"), b})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, ","); got != "sql,weather" {
		t.Fatalf("specs = %s, want sql,weather", got)
	}
	if !specs[0].Bundled || specs[0].Path != "/self" || strings.Join(specs[0].Args, " ") != "__plugin sql" {
		t.Errorf("bundled spec = %+v", specs[0])
	}
	if specs[1].Path != filepath.Join(a, "agenthost-plugin-weather") {
		t.Errorf("the first folder must win: %s", specs[1].Path)
	}
	joined := strings.Join(warnings, "\n")
	for _, want := range []string{"notexec", "not executable", "shadowed", `agenthost-plugin-.. is not a plugin: "." is not a plugin name`, `"." is not a plugin name`, `"-x" is not a plugin name`} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings lack %q: %s", want, joined)
		}
	}
}

// A folder the search path names twice (./plugins, run from the folder
// AGENTHOST_PLUGIN_PATH names) is read once: its plugins do not shadow
// themselves.
func TestDiscoverFolderNamedTwice(t *testing.T) {
	a := t.TempDir()
	if err := os.WriteFile(filepath.Join(a, "agenthost-plugin-weather"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Dir(a))
	specs, warnings, err := Discover("/self", nil, []string{filepath.Base(a), a, a + "/"})
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 1 || specs[0].Name != "weather" || len(warnings) != 0 {
		t.Errorf("specs %+v, warnings %q: want weather once and no warning", specs, warnings)
	}
}

func TestResolvePluginNames(t *testing.T) {
	t.Parallel()
	m := NewManager(ManagerConfig{}, []PluginSpec{{Name: "sql", Bundled: true}, {Name: "telegram", Path: "/p/agenthost-plugin-telegram"}}, nil)
	for _, name := range []string{"sql", "@elizaos/plugin-sql", "plugin-sql", "agenthost-plugin-sql", "telegram", "@elizaos/plugin-telegram"} {
		if _, err := resolvePlugin(m, name); err != nil {
			t.Errorf("resolve %q: %v", name, err)
		}
	}
	_, err := resolvePlugin(m, "@elizaos/plugin-twitter")
	if err == nil || !strings.Contains(err.Error(), `unknown plugin "@elizaos/plugin-twitter"`) || !strings.Contains(err.Error(), "sql, telegram") {
		t.Errorf("want an error listing the plugins found, got %v", err)
	}
}

func TestPluginEnvIsAllowListed(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "sk-secret")
	t.Setenv("PATH", "/usr/bin")
	t.Setenv("TMPDIR", "/tmp/daemons-own")
	m := NewManager(ManagerConfig{}, nil, nil)
	env := strings.Join(m.pluginEnv("/run/x/p/weather"), "\n")
	if strings.Contains(env, "sk-secret") {
		t.Error("a host secret leaked into a plugin's environment")
	}
	if !strings.Contains(env, "PATH=/usr/bin") {
		t.Error("PATH should reach plugins")
	}
	if strings.Contains(env, "daemons-own") || !strings.Contains(env, "TMPDIR=/run/x/p/weather") || !strings.Contains(env, "PLUGIN_UNIX_SOCKET_DIR=/run/x/p/weather") {
		t.Errorf("a plugin's temporary and socket folder should be its own, got %s", env)
	}
}

// A Go plugin runs on half the host's threads unless the operator chose a
// number for every Go process with GOMAXPROCS.
func TestPluginEnvSetsGOMAXPROCS(t *testing.T) {
	m := NewManager(ManagerConfig{}, nil, nil)
	for _, c := range []struct{ set, want string }{
		{"", "GOMAXPROCS=" + strconv.Itoa((runtime.GOMAXPROCS(0)+1)/2)},
		{"3", "GOMAXPROCS=3"},
	} {
		t.Setenv("GOMAXPROCS", c.set)
		var last string
		for _, kv := range m.pluginEnv("/run/x/p/weather") {
			if strings.HasPrefix(kv, "GOMAXPROCS=") {
				last = kv // exec.Cmd uses the last of a name
			}
		}
		if last != c.want {
			t.Errorf("with GOMAXPROCS=%q in the daemon's environment, a plugin gets %q, want %q", c.set, last, c.want)
		}
	}
	if got := pluginProcs(); got < 1 || got > runtime.GOMAXPROCS(0) {
		t.Errorf("pluginProcs() = %d with %d host threads", got, runtime.GOMAXPROCS(0))
	}
}
