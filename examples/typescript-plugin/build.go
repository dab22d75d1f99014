//go:build unix

// Package typescriptplugin builds the TypeScript example plugin for tests.
// The plugin itself is TypeScript (src/); this Go file only runs npm and tsc.
package typescriptplugin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// LauncherName is the example's executable, the file a plugin folder holds.
const LauncherName = "agenthost-plugin-typescript-example"

// Build installs the npm packages (npm ci) and compiles the TypeScript (tsc)
// in dir, the example's folder, when node_modules or dist is missing or
// older than its sources, and returns the launcher's absolute path. Tests of
// this folder and the host's end-to-end tests share it.
func Build(dir string) (string, error) {
	for _, tool := range []string{"node", "npm", "npx"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("%s is not on PATH: the TypeScript example plugin needs Node.js 20 or newer "+
				"with npm (Debian: apt-get install nodejs npm): %v", tool, err)
		}
	}

	// Another test binary (the host's end-to-end test) may build this folder
	// at the same time; take turns.
	lock, err := os.OpenFile(filepath.Join(dir, ".build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck

	// npm writes node_modules/.package-lock.json on every install.
	if stale(filepath.Join(dir, "node_modules", ".package-lock.json"),
		filepath.Join(dir, "package-lock.json"), filepath.Join(dir, "package.json")) {
		if err := run(dir, "npm", "ci", "--no-audit", "--no-fund"); err != nil {
			return "", err
		}
	}
	srcs, _ := filepath.Glob(filepath.Join(dir, "src", "*.ts"))
	srcs = append(srcs, filepath.Join(dir, "tsconfig.json"), filepath.Join(dir, "package-lock.json"))
	if stale(filepath.Join(dir, "dist", "main.js"), srcs...) {
		// "--" keeps npx from reading tsc's flags as its own.
		if err := run(dir, "npx", "--no", "--", "tsc", "--project", "tsconfig.json"); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, LauncherName), nil
}

// stale reports whether target is missing or older than any of sources.
func stale(target string, sources ...string) bool {
	ti, err := os.Stat(target)
	if err != nil {
		return true
	}
	for _, s := range sources {
		if si, err := os.Stat(s); err == nil && si.ModTime().After(ti.ModTime()) {
			return true
		}
	}
	return false
}

func run(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s in %s: %v\n%s", name, strings.Join(args, " "), dir, err, out)
	}
	return nil
}
