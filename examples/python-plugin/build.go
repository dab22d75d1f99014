//go:build unix

// Package pythonplugin readies the Python example plugin for tests. The
// plugin itself is Python (main.py) on the SDK in sdk/python; this Go file
// only copies the SDK into the plugin's folder.
package pythonplugin

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// LauncherName is the example's executable, the file a plugin folder holds.
const LauncherName = "agenthost-plugin-python-example"

// Build copies the SDK (sdk/python/agenthost_sdk) into dir/lib, where the
// launcher finds it — a confined plugin reads only its own folder — checks
// that a python3 can run it, and returns the launcher's absolute path.
func Build(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	src := filepath.Join(dir, "..", "..", "sdk", "python", "agenthost_sdk")
	if err := syncTree(src, filepath.Join(dir, "lib", "agenthost_sdk")); err != nil {
		return "", fmt.Errorf("copy the Python SDK into the example: %w", err)
	}
	launcher := filepath.Join(dir, LauncherName)
	if out, err := exec.Command("/bin/sh", "-c", `for py in python3 /usr/bin/python3; do "$py" -c 'import grpc, google.protobuf, cryptography' 2>/dev/null && exit 0; done; exit 1`).CombinedOutput(); err != nil {
		return "", fmt.Errorf("no python3 has grpcio, protobuf and cryptography: run scripts/install-python-grpc.sh (%v) %s", err, out)
	}
	return launcher, nil
}

// syncTree makes dst's .py files those of src: changed files are replaced
// by a rename, so that a plugin starting meanwhile reads whole files, and
// files src no longer has are removed.
func syncTree(src, dst string) error {
	want := map[string]bool{}
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "__pycache__" {
				return filepath.SkipDir
			}
			return nil
		}
		if filepath.Ext(path) != ".py" {
			return nil
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		want[rel] = true
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if old, err := os.ReadFile(to); err == nil && bytes.Equal(old, b) {
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		tmp, err := os.CreateTemp(filepath.Dir(to), ".tmp-*")
		if err != nil {
			return err
		}
		if _, err := tmp.Write(b); err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			return err
		}
		if err := tmp.Close(); err != nil {
			os.Remove(tmp.Name())
			return err
		}
		if err := os.Chmod(tmp.Name(), 0o644); err != nil {
			return err
		}
		return os.Rename(tmp.Name(), to)
	})
	if err != nil {
		return err
	}
	return filepath.WalkDir(dst, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".py" {
			return err
		}
		rel, err := filepath.Rel(dst, path)
		if err != nil {
			return err
		}
		if !want[rel] && !strings.HasPrefix(d.Name(), ".tmp-") {
			return os.Remove(path)
		}
		return nil
	})
}
