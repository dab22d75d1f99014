// Package scaffold writes a new plugin, ready to build, test and check:
// `agenthost plugins new NAME --lang go|typescript|python`. Each language
// gets one provider, one action, a test that also runs `agenthost plugins
// check`, a README and a Makefile whose default target builds the
// executable agenthost-plugin-NAME. The templates are embedded.
package scaffold

import (
	"bufio"
	"bytes"
	"embed"
	"errors"
	"fmt"
	"go/format"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/template"
	"unicode"

	"github.com/agenthost/agenthost/internal/contract"
)

//go:embed all:templates
var templates embed.FS

// SDKModule is the Go SDK's module path.
const SDKModule = "github.com/agenthost/agenthost"

// GoVersion is the go line of a Go plugin's go.mod: the SDK's own (a test
// keeps it equal to the repository's go.mod).
const GoVersion = "1.26.8"

// Languages are the languages a plugin can be written in.
var Languages = []string{"go", "typescript", "python"}

// Options say what to write.
type Options struct {
	// Name is the plugin's name: the NAME of agenthost-plugin-NAME.
	Name string
	// Lang is one of Languages.
	Lang string
	// Dir is where to write; it must not exist or be empty.
	Dir string
	// AgenthostDir is a checkout of agenthost, for a Go plugin's replace
	// directive and the SDK packages of the others. Empty: the checkout Dir
	// is in, else the one this program was built from, if it is still
	// there.
	AgenthostDir string
}

// Result says what was written.
type Result struct {
	Dir   string
	Files []string
	// Checkout is the agenthost checkout the plugin builds against ("" when
	// none was found).
	Checkout string
}

// Write writes a new plugin.
func Write(o Options) (*Result, error) {
	if !contract.ValidPluginName(o.Name) {
		return nil, fmt.Errorf("%q cannot name a plugin: use letters, digits, '-', '_' and '.', starting with a letter or digit (it names the executable agenthost-plugin-NAME)", o.Name)
	}
	if !slices.Contains(Languages, o.Lang) {
		return nil, fmt.Errorf("no language %q: choose one of %s", o.Lang, strings.Join(Languages, ", "))
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s already exists and is not empty: choose another folder with --dir", o.Dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	checkout, err := findCheckout(dir, o.AgenthostDir)
	if err != nil {
		return nil, err
	}
	data := templateData{Name: o.Name, Upper: upper(o.Name), Title: title(o.Name), SDKModule: SDKModule, GoVersion: GoVersion,
		Checkout: checkout}
	if checkout != "" {
		data.Replace = checkout
		if rel, err := filepath.Rel(dir, checkout); err == nil && insideOf(dir, checkout) {
			// Inside the checkout: a relative path, as examples/go-plugin
			// has, keeps working when the checkout moves.
			data.Replace = filepath.ToSlash(rel)
		}
	}
	sdkRoot := "/path/to/agenthost"
	if data.Replace != "" {
		sdkRoot = data.Replace
	}
	data.TypeScriptSDK, data.PythonSDK = path.Join(sdkRoot, "sdk/typescript"), path.Join(sdkRoot, "sdk/python")
	root := "templates/" + o.Lang
	res := &Result{Dir: dir, Checkout: checkout}
	err = fs.WalkDir(templates, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := strings.TrimPrefix(p, root+"/")
		out, mode, err := render(p, data)
		if err != nil {
			return err
		}
		name := outputName(rel, o.Name)
		to := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(to, out, mode); err != nil {
			return err
		}
		res.Files = append(res.Files, name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("write the plugin into %s: %w", o.Dir, err)
	}
	return res, nil
}

// templateData is what the templates see.
type templateData struct {
	// Name is the plugin's name, Upper the prefix of its provider and
	// action names (WEATHER for weather), Title its name for people.
	Name, Upper, Title   string
	SDKModule, GoVersion string
	// Checkout is the agenthost checkout (absolute); Replace is the path a
	// Go plugin's replace directive names (relative inside the checkout).
	Checkout, Replace string
	// TypeScriptSDK and PythonSDK are the SDK packages' folders, as the
	// plugin's files name them (a placeholder without a checkout).
	TypeScriptSDK, PythonSDK string
}

// render executes one template. A .go file is formatted; a file whose name
// ends in .x.tmpl is made executable.
func render(p string, data templateData) ([]byte, fs.FileMode, error) {
	src, err := templates.ReadFile(p)
	if err != nil {
		return nil, 0, err
	}
	t, err := template.New(path.Base(p)).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, 0, fmt.Errorf("template %s: %w", p, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, 0, fmt.Errorf("template %s: %w", p, err)
	}
	out := b.Bytes()
	if strings.HasSuffix(p, ".go.tmpl") {
		if out, err = format.Source(out); err != nil {
			return nil, 0, fmt.Errorf("template %s makes Go that does not parse: %w", p, err)
		}
	}
	mode := fs.FileMode(0o644)
	if strings.HasSuffix(p, ".x.tmpl") {
		mode = 0o755
	}
	return out, mode, nil
}

// outputName is a template's file name: without .tmpl (and .x), with
// PLUGIN replaced by the executable's name, gitignore and npmrc as dot
// files.
func outputName(rel, name string) string {
	rel = strings.TrimSuffix(strings.TrimSuffix(rel, ".tmpl"), ".x")
	rel = strings.ReplaceAll(rel, "PLUGIN", "agenthost-plugin-"+name)
	if b := path.Base(rel); b == "gitignore" || b == "npmrc" {
		rel = path.Join(path.Dir(rel), "."+b)
	}
	return rel
}

// findCheckout is the agenthost checkout to build against: the one given,
// else the one dir is in, else the one this program was built from.
func findCheckout(dir, given string) (string, error) {
	if given != "" {
		abs, err := filepath.Abs(given)
		if err != nil {
			return "", err
		}
		if !isCheckout(abs) {
			return "", fmt.Errorf("%s is not a checkout of agenthost: its go.mod does not declare module %s", given, SDKModule)
		}
		return abs, nil
	}
	for d := dir; ; d = filepath.Dir(d) {
		if isCheckout(d) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	// The source file this was compiled from, when it was built from a
	// checkout (not with -trimpath) that is still there.
	if file := builtFrom(); filepath.IsAbs(file) {
		for d := filepath.Dir(file); filepath.Dir(d) != d; d = filepath.Dir(d) {
			if isCheckout(d) {
				return d, nil
			}
		}
	}
	return "", nil
}

// builtFrom is the path of this source file when it was compiled.
var builtFrom = func() string {
	_, file, _, _ := runtime.Caller(0)
	return file
}

// isCheckout reports whether dir holds agenthost's go.mod.
func isCheckout(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.TrimSpace(m) == SDKModule
		}
	}
	return false
}

func insideOf(dir, root string) bool {
	rel, err := filepath.Rel(root, dir)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// upper is a name as the prefix of provider and action names:
// "my-weather" → "MY_WEATHER".
func upper(name string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return unicode.ToUpper(r)
		}
		return '_'
	}, name)
}

// title is a name for people: "my-weather" → "My weather".
func title(name string) string {
	s := strings.NewReplacer("-", " ", "_", " ", ".", " ").Replace(name)
	return strings.ToUpper(s[:1]) + s[1:]
}
