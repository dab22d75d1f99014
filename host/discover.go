package host

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/agenthost/agenthost/internal/contract"
	goplugin "github.com/hashicorp/go-plugin"
)

// ExecPrefix is the file name prefix of a third-party plugin executable.
const ExecPrefix = "agenthost-plugin-"

// PluginSpec says how to start one plugin.
type PluginSpec struct {
	// Name is the short name: the executable's name without ExecPrefix, or
	// the bundled plugin's name. The manifest's name must match it.
	Name string
	Path string
	Args []string
	// Bundled plugins run as a child process of the agenthost executable.
	Bundled bool
	// Aliases are other names a character may use for the plugin, known
	// before it starts (e.g. "@elizaos/plugin-ollama" for openai).
	Aliases []string
	// Attach, when set, is a process its author started (under a
	// debugger, say) that the host uses instead of starting one
	// (`agenthost start --attach`, attach.go).
	Attach *goplugin.ReattachConfig
}

// where says where the plugin's process comes from, for messages.
func (s PluginSpec) where() string {
	if s.Attach != nil {
		return fmt.Sprintf("attached process %d", s.Attach.Pid)
	}
	return s.Path
}

// PluginDirs are the folders searched for plugin executables, in order:
// ./plugins, ~/.agenthost/plugins, then AGENTHOST_PLUGIN_PATH.
func PluginDirs(env func(string) string) []string {
	dirs := []string{"plugins"}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".agenthost", "plugins"))
	}
	for _, d := range filepath.SplitList(env("AGENTHOST_PLUGIN_PATH")) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// Discover lists the bundled plugins and the executables named
// agenthost-plugin-* in dirs. A bundled plugin wins over an executable of
// the same name; between folders, the first one wins. Folders that do not
// exist are skipped.
func Discover(self string, bundled []string, dirs []string) ([]PluginSpec, []string, error) {
	var specs []PluginSpec
	var warnings []string
	seen := map[string]string{}
	for _, name := range bundled {
		specs = append(specs, PluginSpec{Name: name, Path: self, Args: []string{ServeSubcommand, name}, Bundled: true})
		seen[name] = "bundled"
	}
	read := map[string]bool{}
	for _, dir := range dirs {
		// A folder named twice (./plugins run from the folder that
		// AGENTHOST_PLUGIN_PATH names) is read once: its plugins do not
		// shadow themselves.
		key, err := filepath.Abs(dir)
		if err != nil {
			key = filepath.Clean(dir)
		}
		if read[key] {
			continue
		}
		read[key] = true
		entries, err := os.ReadDir(dir)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, nil, fmt.Errorf("read plugin folder %s: %w", dir, err)
		}
		for _, e := range entries {
			name, ok := PluginName(e.Name())
			if !ok {
				continue
			}
			path := filepath.Join(dir, e.Name())
			info, err := os.Stat(path)
			if err != nil || info.IsDir() {
				continue
			}
			if !contract.ValidPluginName(name) {
				// The name makes folders and variable names: "..", "a/b"
				// or a control character must not.
				warnings = append(warnings, fmt.Sprintf("%s is not a plugin: %q is not a plugin name (letters, digits, '-', '_' and '.', starting with a letter or digit)", path, name))
				continue
			}
			if info.Mode()&0o111 == 0 {
				warnings = append(warnings, fmt.Sprintf("plugin %s at %s is not executable (chmod +x it)", name, path))
				continue
			}
			if where, dup := seen[name]; dup {
				warnings = append(warnings, fmt.Sprintf("plugin %s at %s is shadowed by %s", name, path, where))
				continue
			}
			abs, err := filepath.Abs(path)
			if err != nil {
				abs = path
			}
			seen[name] = abs
			specs = append(specs, PluginSpec{Name: name, Path: abs})
		}
	}
	sort.SliceStable(specs, func(i, j int) bool {
		if specs[i].Bundled != specs[j].Bundled {
			return specs[i].Bundled
		}
		return specs[i].Name < specs[j].Name
	})
	return specs, warnings, nil
}

// PluginName is the name of a plugin executable: the NAME of
// agenthost-plugin-NAME, without an extension such as .py. ok is false for
// a file not named so.
func PluginName(path string) (name string, ok bool) {
	name, ok = strings.CutPrefix(filepath.Base(path), ExecPrefix)
	if !ok {
		return "", false
	}
	return strings.TrimSuffix(name, filepath.Ext(name)), true
}

// ServeSubcommand is the hidden agenthost subcommand that serves a bundled
// plugin: `agenthost __plugin NAME`.
const ServeSubcommand = "__plugin"
