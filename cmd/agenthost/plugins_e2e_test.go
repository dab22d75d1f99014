//go:build linux

package main

// The plugin author's tools: `agenthost plugins list` naming what is wrong
// with a plugin, `agenthost plugins check` holding plugins to the contract,
// and `agenthost plugins new` writing plugins that pass it.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	pythonplugin "github.com/agenthost/agenthost/examples/python-plugin"
	typescriptplugin "github.com/agenthost/agenthost/examples/typescript-plugin"
	"github.com/agenthost/agenthost/host/plugincheck"
)

// pluginsList runs `agenthost plugins list --json` with the plugins of dir
// and returns each plugin's error by name, and the command's log.
func pluginsList(t *testing.T, dir string) (map[string]string, string) {
	t.Helper()
	cmd := exec.Command(bins.agenthost, "plugins", "list", "--json")
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AGENTHOST_PLUGIN_PATH=" + dir}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("plugins list: %v\n%s%s", err, out, stderr.String())
	}
	var res struct {
		Plugins []struct {
			Name  string `json:"name"`
			Error string `json:"error"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	errs := map[string]string{}
	for _, p := range res.Plugins {
		errs[p.Name] = p.Error
	}
	return errs, stderr.String()
}

// TestPluginsListNamesWhatIsWrong: a plugin whose manifest calls it by
// another name than its file is refused, naming both; a plugin whose
// interpreter fails before the handshake shows what it wrote on stderr, in
// its error and in a warning, not go-plugin's guess about architectures.
func TestPluginsListNamesWhatIsWrong(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink(bins.scripted, filepath.Join(dir, "agenthost-plugin-renamed")); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho 'Traceback (most recent call last):' >&2\necho \"ModuleNotFoundError: No module named 'grpc'\" >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(dir, "agenthost-plugin-crashy"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	errs, log := pluginsList(t, dir)
	if got := errs["renamed"]; !strings.Contains(got, `its manifest names it "scripted"`) || !strings.Contains(got, `found as "renamed"`) {
		t.Errorf("renamed: %q", got)
	}
	got := errs["crashy"]
	if !strings.Contains(got, "exited before its handshake") || !strings.Contains(got, "No module named 'grpc'") || strings.Contains(got, "architecture") {
		t.Errorf("crashy: %q", got)
	}
	if !strings.Contains(log, "[WARN]") || !strings.Contains(log, "Traceback (most recent call last)") {
		t.Errorf("the log should show crashy's stderr at warn level:\n%s", log)
	}
}

// pluginsCheck runs `agenthost plugins check --json PATH` and returns its
// report and exit status.
func pluginsCheck(t *testing.T, path string) (plugincheck.Report, int) {
	t.Helper()
	cmd := exec.Command(bins.agenthost, "plugins", "check", "--json", path)
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var r plugincheck.Report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("plugins check %s: %v\n%s\n%s", path, err, out, stderr.String())
	}
	return r, code
}

// requirePass fails the test with the failed checks of a report that did
// not pass.
func requirePass(t *testing.T, r plugincheck.Report, code int) {
	t.Helper()
	if code != 0 || !r.Passed || len(r.Checks) != 18 {
		for _, c := range r.Failed() {
			t.Errorf("%s: %s: %s %v", c.Status, c.Name, c.Reason, c.Details)
		}
		t.Fatalf("plugins check %s: exit %d, passed %v, %d checks", r.Path, code, r.Passed, len(r.Checks))
	}
}

// TestPluginsCheckExamples: the examples pass every check.
func TestPluginsCheckExamples(t *testing.T) {
	t.Run("go", func(t *testing.T) {
		t.Parallel()
		bin, err := goPluginBin()
		if err != nil {
			t.Fatal(err)
		}
		r, code := pluginsCheck(t, bin)
		requirePass(t, r, code)
		// The example's action calls the Runtime, so cancellation was
		// tried on it, not passed for want of anything to cancel.
		for _, c := range r.Checks {
			if c.Name == "cancellation" && !strings.Contains(strings.Join(c.Details, "\n"), "action WAVE: its Runtime call Runtime.Respond was cancelled") {
				t.Errorf("cancellation: %s %v", c.Reason, c.Details)
			}
		}
	})
	for name, build := range map[string]func(string) (string, error){"typescript": typescriptplugin.Build, "python": pythonplugin.Build} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			launcher, err := build(filepath.Join("..", "..", "examples", name+"-plugin"))
			if err != nil {
				t.Fatal(err)
			}
			abs, _ := filepath.Abs(launcher)
			r, code := pluginsCheck(t, abs)
			requirePass(t, r, code)
		})
	}
}

// TestPluginsCheckBrokenPlugins: a plugin broken in one way fails the check
// that names the way, and it is the first check to fail; the exit status
// is not 0, and the text report ends with "check: reason".
func TestPluginsCheckBrokenPlugins(t *testing.T) {
	dir := t.TempDir()
	link := func(name, target string) string {
		path := filepath.Join(dir, "agenthost-plugin-"+name)
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
		return path
	}
	ok := link("broken-ok", bins.broken)
	for _, c := range []struct {
		path, check, reason string
	}{
		{link("broken-nohealth", bins.broken), "health", "grpc.health.v1.Health is not served (UNIMPLEMENTED)"},
		{link("broken-notls", bins.broken), "mtls", "the handshake carries no certificate: the plugin serves without TLS"},
		{link("oldproto", bins.oldproto), "handshake", "the plugin chose app protocol 2, but the host offered 1"},
		{link("broken-badmanifest", bins.broken), "describe", `its manifest names it "not-its-file-name", but it was found as "broken-badmanifest"`},
		{link("broken-nocancel", bins.broken), "cancellation", "provider BROKEN_LOOKUP went on after the host cancelled it: its Runtime call Runtime.UseModel was still waiting"},
	} {
		t.Run(c.check, func(t *testing.T) {
			t.Parallel()
			r, code := pluginsCheck(t, c.path)
			failed := r.Failed()
			if code == 0 || r.Passed || len(failed) == 0 {
				t.Fatalf("exit %d, passed %v: %+v", code, r.Passed, r.Checks)
			}
			if failed[0].Name != c.check || failed[0].Status != plugincheck.Fail || !strings.Contains(failed[0].Reason, c.reason) {
				t.Errorf("first failure %s: %s (%s), want %s: …%s…", failed[0].Name, failed[0].Status, failed[0].Reason, c.check, c.reason)
			}
			for _, f := range failed[1:] {
				if f.Status == plugincheck.Fail {
					t.Errorf("a second check failed: %s: %s", f.Name, f.Reason)
				}
			}
		})
	}
	t.Run("ok", func(t *testing.T) {
		t.Parallel()
		r, code := pluginsCheck(t, ok)
		requirePass(t, r, code)
	})
	t.Run("text", func(t *testing.T) {
		t.Parallel()
		cmd := exec.Command(bins.agenthost, "plugins", "check", filepath.Join(dir, "agenthost-plugin-broken-nohealth"))
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
			t.Fatalf("want a failing exit status, got %v", err)
		}
		if !strings.Contains(string(out), "\nFAIL  health ") || !strings.HasSuffix(string(out), "\nhealth: grpc.health.v1.Health is not served (UNIMPLEMENTED): the host pings every plugin with it, and restarts one that does not answer\n") {
			t.Errorf("the text report should end with the failure:\n%s", out)
		}
		if !strings.Contains(stderr.String(), "1 of 18 checks did not pass; the first: health:") {
			t.Errorf("stderr: %s", stderr.String())
		}
	})
}

// scaffolded writes a plugin with `agenthost plugins new`, builds it with its
// Makefile, runs its test (which runs `agenthost plugins check` itself)
// and checks the executable it built. It returns the plugin's folder.
func scaffolded(t *testing.T, lang string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "agenthost-plugin-scaffolded")
	out, stderr, code := cli(t, "", "", "", "plugins", "new", "scaffolded", "--lang", lang, "--dir", dir)
	if code != 0 {
		t.Fatalf("plugins new: exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "it builds against the agenthost checkout") {
		t.Errorf("plugins new should have found the checkout it was built from:\n%s", out)
	}
	make := func(target ...string) {
		t.Helper()
		cmd := exec.Command("make", append(target, "AGENTHOST="+bins.agenthost)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make %s: %v\n%s", strings.Join(target, " "), err, out)
		}
	}
	make()
	exe := filepath.Join(dir, "agenthost-plugin-scaffolded")
	if info, err := os.Stat(exe); err != nil || info.Mode()&0o111 == 0 {
		t.Fatalf("make did not build the executable %s: %v", exe, err)
	}
	make("test")
	r, code := pluginsCheck(t, exe)
	requirePass(t, r, code)
	return dir
}

// TestPluginsNewGo: the Go plugin `agenthost plugins new` writes builds
// outside the repository (against the checkout agenthost was built from),
// its tests pass, and so does every check.
func TestPluginsNewGo(t *testing.T) {
	dir := scaffolded(t, "go")
	if gomod, _ := os.ReadFile(filepath.Join(dir, "go.mod")); !strings.Contains(string(gomod), "\nreplace github.com/agenthost/agenthost => ") {
		t.Errorf("go.mod:\n%s", gomod)
	}
}

// TestPluginsNewTypeScript: the TypeScript plugin `agenthost plugins new`
// writes builds with npm and tsc against the SDK of the checkout
// agenthost was built from, its test passes, and so does every check.
func TestPluginsNewTypeScript(t *testing.T) {
	dir := scaffolded(t, "typescript")
	if pkg, _ := os.ReadFile(filepath.Join(dir, "package.json")); !strings.Contains(string(pkg), `"@agenthost/sdk": "file:/`) {
		t.Errorf("package.json:\n%s", pkg)
	}
}

// TestPluginsNewPython: the Python plugin `agenthost plugins new` writes,
// with the SDK of the checkout agenthost was built from copied into it,
// passes its tests and every check.
func TestPluginsNewPython(t *testing.T) {
	dir := scaffolded(t, "python")
	if _, err := os.Stat(filepath.Join(dir, "lib", "agenthost_sdk", "__init__.py")); err != nil {
		t.Errorf("make did not copy the SDK into lib/: %v", err)
	}
}
