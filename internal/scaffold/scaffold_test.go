package scaffold

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// fakeCheckout is a folder whose go.mod is agenthost's.
func fakeCheckout(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module "+SDKModule+"\n\ngo "+GoVersion+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestGoVersionIsTheSDKs: a Go plugin's go.mod names the go version the
// SDK's module needs.
func TestGoVersionIsTheSDKs(t *testing.T) {
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(readFile(t, "../../go.mod"))
	if m == nil || m[1] != GoVersion {
		t.Fatalf("go.mod says go %v; GoVersion is %s", m, GoVersion)
	}
}

// TestGoReplace: inside a checkout the replace directive is relative;
// outside, it names the checkout given or the one agenthost was built
// from; with none, it is a comment the README explains.
func TestGoReplace(t *testing.T) {
	co := fakeCheckout(t)
	inside := filepath.Join(co, "plugins", "mine")
	if _, err := Write(Options{Name: "mine", Lang: "go", Dir: inside}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(inside, "go.mod")); !strings.Contains(got, "\nreplace "+SDKModule+" => ../..\n") {
		t.Errorf("inside a checkout:\n%s", got)
	}

	outside := filepath.Join(t.TempDir(), "mine")
	res, err := Write(Options{Name: "mine", Lang: "go", Dir: outside, AgenthostDir: co})
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(outside, "go.mod")); res.Checkout != co || !strings.Contains(got, "\nreplace "+SDKModule+" => "+co+"\n") {
		t.Errorf("with --agenthost-dir %s:\n%s", co, got)
	}

	defer func(f func() string) { builtFrom = f }(builtFrom)
	builtFrom = func() string { return filepath.Join(co, "internal", "scaffold", "scaffold.go") }
	built := filepath.Join(t.TempDir(), "mine")
	if _, err := Write(Options{Name: "mine", Lang: "go", Dir: built}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(built, "go.mod")); !strings.Contains(got, "\nreplace "+SDKModule+" => "+co+"\n") {
		t.Errorf("built from %s:\n%s", co, got)
	}

	builtFrom = func() string { return SDKModule + "/internal/scaffold/scaffold.go" } // -trimpath
	none := filepath.Join(t.TempDir(), "mine")
	res, err = Write(Options{Name: "mine", Lang: "go", Dir: none})
	if err != nil {
		t.Fatal(err)
	}
	gomod := readFile(t, filepath.Join(none, "go.mod"))
	if res.Checkout != "" || !strings.Contains(gomod, "\n// replace "+SDKModule+" => /path/to/agenthost\n") || strings.Contains(gomod, "\nreplace ") {
		t.Errorf("without a checkout:\n%s", gomod)
	}
	if readme := readFile(t, filepath.Join(none, "README.md")); !strings.Contains(readme, "**not published yet**") || !strings.Contains(readme, "replace "+SDKModule+" => /path/to/agenthost") {
		t.Errorf("the README should say why and how to add the replace:\n%s", readme)
	}
}

// TestGoFiles: the Go plugin's files, named for the plugin.
func TestGoFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "x")
	res, err := Write(Options{Name: "my-weather", Lang: "go", Dir: dir, AgenthostDir: fakeCheckout(t)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"Makefile": true, "README.md": true, ".gitignore": true, "go.mod": true, "main.go": true, "plugin_test.go": true}
	for _, f := range res.Files {
		if !want[f] {
			t.Errorf("unexpected file %s", f)
		}
		delete(want, f)
	}
	if len(want) > 0 {
		t.Errorf("missing %v", want)
	}
	main := readFile(t, filepath.Join(dir, "main.go"))
	for _, s := range []string{`Name:    "my-weather"`, `Name:        "MY_WEATHER"`, `"MY_WEATHER_HELLO"`} {
		if !strings.Contains(main, s) {
			t.Errorf("main.go lacks %s:\n%s", s, main)
		}
	}
	if mk := readFile(t, filepath.Join(dir, "Makefile")); !strings.Contains(mk, "PLUGIN    := agenthost-plugin-my-weather\n\n$(PLUGIN):") {
		t.Errorf("the Makefile's first target should build the executable:\n%s", mk)
	}
}

func TestRefusals(t *testing.T) {
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Name: "my plugin", Lang: "go", Dir: t.TempDir()}, "cannot name a plugin"},
		{Options{Name: "-x", Lang: "go", Dir: t.TempDir()}, "cannot name a plugin"},
		{Options{Name: "x", Lang: "rust", Dir: t.TempDir()}, `no language "rust": choose one of go, typescript, python`},
		{Options{Name: "x", Lang: "go", Dir: full}, "already exists and is not empty"},
		{Options{Name: "x", Lang: "go", Dir: t.TempDir(), AgenthostDir: t.TempDir()}, "is not a checkout of agenthost"},
	} {
		if _, err := Write(c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want …%s…", c.o, err, c.want)
		}
	}
}

// TestTypeScriptFiles: the TypeScript plugin's launcher is executable and
// its package installs the SDK of the checkout, relative inside it.
func TestTypeScriptFiles(t *testing.T) {
	co := fakeCheckout(t)
	dir := filepath.Join(co, "plugins", "hello")
	res, err := Write(Options{Name: "hello", Lang: "typescript", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	want := ".gitignore .npmrc Makefile README.md agenthost-plugin-hello package.json src/main.ts test/check.test.mjs tsconfig.json"
	sort.Strings(res.Files)
	if got := strings.Join(res.Files, " "); got != want {
		t.Errorf("files: %s\nwant:  %s", got, want)
	}
	if info, err := os.Stat(filepath.Join(dir, "agenthost-plugin-hello")); err != nil || info.Mode()&0o111 == 0 {
		t.Errorf("the launcher should be executable: %v %v", info.Mode(), err)
	}
	if pkg := readFile(t, filepath.Join(dir, "package.json")); !strings.Contains(pkg, `"@agenthost/sdk": "file:../../sdk/typescript"`) {
		t.Errorf("package.json:\n%s", pkg)
	}
	if mk := readFile(t, filepath.Join(dir, "Makefile")); !strings.Contains(mk, "SDK       := ../../sdk/typescript\n") || !strings.Contains(mk, "\n$(PLUGIN): dist/main.js\n") {
		t.Errorf("Makefile:\n%s", mk)
	}
}

// TestPythonFiles: the Python plugin's launcher is executable and its
// Makefile copies the SDK of the checkout, relative inside it.
func TestPythonFiles(t *testing.T) {
	co := fakeCheckout(t)
	dir := filepath.Join(co, "plugins", "hello")
	res, err := Write(Options{Name: "hello", Lang: "python", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(res.Files)
	if got, want := strings.Join(res.Files, " "), ".gitignore Makefile README.md agenthost-plugin-hello main.py tests/test_plugin.py"; got != want {
		t.Errorf("files: %s\nwant:  %s", got, want)
	}
	if info, err := os.Stat(filepath.Join(dir, "agenthost-plugin-hello")); err != nil || info.Mode()&0o111 == 0 {
		t.Errorf("the launcher should be executable: %v %v", info.Mode(), err)
	}
	if mk := readFile(t, filepath.Join(dir, "Makefile")); !strings.Contains(mk, "SDK       := ../../sdk/python\n") || !strings.Contains(mk, "\n$(PLUGIN): lib/agenthost_sdk/__init__.py main.py\n") {
		t.Errorf("Makefile:\n%s", mk)
	}
	if main := readFile(t, filepath.Join(dir, "main.py")); !strings.Contains(main, `Provider("HELLO", about`) || !strings.Contains(main, `Action("HELLO_HELLO", hello`) {
		t.Errorf("main.py:\n%s", main)
	}
}
