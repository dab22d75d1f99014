package host

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadLockRefusesWhatItCannotTrust(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, LockFile)
	if l, err := ReadLock(path); l != nil || err != nil {
		t.Fatalf("no lock: %v %v", l, err)
	}
	sum := strings.Repeat("ab", 32)
	for _, c := range []struct{ content, want string }{
		{`{"plugins": [`, "is not a plugins.lock"},
		{`{"plugins": [], "extra": 1}`, "unknown field"},
		{`{"plugins": [{"name": "w", "path": "/p", "sha256": "xyz"}]}`, "is not a SHA-256"},
		{`{"plugins": [{"name": "w", "path": "/p", "sha256": "` + sum[:62] + `"}]}`, "is not a SHA-256"},
		{`{"plugins": [{"name": "w", "path": "/p", "sha256": "` + sum + `"}, {"name": "w", "path": "/q", "sha256": "` + sum + `"}]}`, "listed twice"},
	} {
		if err := os.WriteFile(path, []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadLock(path); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: want an error naming the file and %q, got %v", c.content, c.want, err)
		}
	}
}

func TestAdmitBinary(t *testing.T) {
	work, plugins := t.TempDir(), t.TempDir()
	bin := filepath.Join(plugins, ExecPrefix+"weather")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho v1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	m := NewManager(ManagerConfig{WorkDir: work}, nil, nil)
	spec := PluginSpec{Name: "weather", Path: bin}
	// No lock: anything runs.
	if sum, err := m.admitBinary(spec); sum != "" || err != nil {
		t.Fatalf("without a lock: %q %v", sum, err)
	}
	sum, err := FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	l := &Lock{}
	l.Set(LockEntry{Name: "other", Path: "/elsewhere", SHA256: sum})
	if err := WriteLock(filepath.Join(work, LockFile), l); err != nil {
		t.Fatal(err)
	}
	if _, err := m.admitBinary(spec); err == nil || !strings.Contains(err.Error(), "is not in") || !strings.Contains(err.Error(), "plugins lock --update weather") {
		t.Fatalf("a plugin missing from the lock: %v", err)
	}
	l.Set(LockEntry{Name: "weather", Version: "1", Path: bin, SHA256: sum})
	if err := WriteLock(filepath.Join(work, LockFile), l); err != nil {
		t.Fatal(err)
	}
	if got, err := m.admitBinary(spec); got != sum || err != nil {
		t.Fatalf("the pinned binary: %q %v", got, err)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho tampered\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	actual, _ := FileSHA256(bin)
	_, err = m.admitBinary(spec)
	if err == nil || !strings.Contains(err.Error(), sum) || !strings.Contains(err.Error(), actual) || !strings.Contains(err.Error(), bin) {
		t.Fatalf("a tampered binary: want both checksums and the file, got %v", err)
	}
	// Bundled plugins are the agenthost executable: not pinned.
	if _, err := m.admitBinary(PluginSpec{Name: "sql", Path: "/self", Bundled: true}); err != nil {
		t.Fatal(err)
	}
	// The lock as written: sorted, with its comment.
	back, err := ReadLock(filepath.Join(work, LockFile))
	if err != nil || len(back.Plugins) != 2 || back.Plugins[0].Name != "other" || !strings.Contains(back.Comment, "plugins lock --update") {
		t.Fatalf("read back: %+v %v", back, err)
	}
}
