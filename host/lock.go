package host

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Pinning. `agenthost plugins lock` writes plugins.lock in the working
// folder: the name, version, path and SHA-256 of every third-party plugin.
// While the file exists the daemon starts only binaries that match it: a
// plugin missing from it, or whose file has another checksum, is refused
// with a log line naming the file and both checksums. The check binds to
// what runs: the confinement trampoline hashes the file it opened and
// executes that very file (an ELF binary through its descriptor), and
// without confinement go-plugin's SecureConfig checks the file before it
// starts it. Bundled plugins are the agenthost executable itself, and an
// attached process (--attach) was started by its author: neither is
// pinned.

// LockFile is the name of the lock file, in the daemon's working folder.
const LockFile = "plugins.lock"

// Lock is the content of plugins.lock.
type Lock struct {
	Comment string      `json:"comment,omitempty"`
	Plugins []LockEntry `json:"plugins"`
}

// LockEntry pins one plugin's binary.
type LockEntry struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Path    string `json:"path"`
	SHA256  string `json:"sha256"`
}

// lockComment says in the file what it is.
const lockComment = "Written by `agenthost plugins lock`: while this file exists, the daemon started in this folder runs only the plugin binaries below. Accept a new binary with `agenthost plugins lock --update NAME`."

// ReadLock reads a lock file; it returns nil and no error when there is none.
func ReadLock(path string) (*Lock, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var l Lock
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("%s is not a plugins.lock written by `agenthost plugins lock`: %w", path, err)
	}
	seen := map[string]bool{}
	for _, e := range l.Plugins {
		if sum, err := hex.DecodeString(e.SHA256); err != nil || len(sum) != 32 {
			return nil, fmt.Errorf("%s: plugin %q: sha256 %q is not a SHA-256 in hex", path, e.Name, e.SHA256)
		}
		if e.Name == "" || seen[e.Name] {
			return nil, fmt.Errorf("%s: plugin name %q is empty or listed twice", path, e.Name)
		}
		seen[e.Name] = true
	}
	return &l, nil
}

// Entry returns the entry of a plugin, or nil.
func (l *Lock) Entry(name string) *LockEntry {
	if l == nil {
		return nil
	}
	for i := range l.Plugins {
		if l.Plugins[i].Name == name {
			return &l.Plugins[i]
		}
	}
	return nil
}

// Set adds or replaces the entry of e.Name.
func (l *Lock) Set(e LockEntry) {
	if old := l.Entry(e.Name); old != nil {
		*old = e
		return
	}
	l.Plugins = append(l.Plugins, e)
}

// WriteLock writes a lock file whole or not at all: a daemon reading it
// meanwhile sees the old one or the new one.
func WriteLock(path string, l *Lock) error {
	sort.Slice(l.Plugins, func(i, j int) bool { return l.Plugins[i].Name < l.Plugins[j].Name })
	l.Comment = lockComment
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".plugins.lock-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// lockPath is the lock file the manager honours, or "" when it pins
// nothing (`agenthost plugins lock` reads plugins to lock them).
func (m *Manager) lockPath() string {
	if m.cfg.NoLock || m.cfg.WorkDir == "" {
		return ""
	}
	return filepath.Join(m.cfg.WorkDir, LockFile)
}

// admitBinary checks a plugin's binary against plugins.lock before it is
// started, and returns the checksum the start must hold it to ("" when
// nothing is pinned).
func (m *Manager) admitBinary(spec PluginSpec) (string, error) {
	path := m.lockPath()
	if path == "" || spec.Bundled || spec.Attach != nil {
		return "", nil
	}
	l, err := ReadLock(path)
	if err != nil {
		return "", fmt.Errorf("plugin %s refused: %w", spec.Name, err)
	}
	if l == nil {
		return "", nil
	}
	e := l.Entry(spec.Name)
	if e == nil {
		m.log.Error("plugin binary refused: it is not in plugins.lock", "plugin", spec.Name, "file", spec.Path, "lock", path)
		return "", fmt.Errorf("plugin %s (%s) refused: it is not in %s; accept it with `agenthost plugins lock --update %s`",
			spec.Name, spec.Path, path, spec.Name)
	}
	actual, err := FileSHA256(spec.Path)
	if err != nil {
		return "", fmt.Errorf("plugin %s refused: checksum: %w", spec.Name, err)
	}
	if actual != e.SHA256 {
		m.log.Error("plugin binary refused: it does not match plugins.lock", "plugin", spec.Name, "file", spec.Path,
			"expected_sha256", e.SHA256, "actual_sha256", actual, "lock", path)
		return "", fmt.Errorf("plugin %s refused: %s has SHA-256 %s, but %s expects %s; accept it with `agenthost plugins lock --update %s`",
			spec.Name, spec.Path, actual, path, e.SHA256, spec.Name)
	}
	return e.SHA256, nil
}

// lockState says, for the API and `plugins list`, a third-party plugin's
// checksum and whether plugins.lock pins that very binary.
func (m *Manager) lockState(p *PluginProcess) (sum string, locked bool) {
	spec := p.Spec()
	if spec.Bundled || spec.Attach != nil {
		return "", false
	}
	sum = p.checksum()
	if path := m.lockPath(); path != "" && sum != "" {
		if l, err := ReadLock(path); err == nil {
			if e := l.Entry(spec.Name); e != nil && e.SHA256 == sum {
				locked = true
			}
		}
	}
	return sum, locked
}
