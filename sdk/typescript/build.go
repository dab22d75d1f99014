//go:build unix

// Package typescript builds the TypeScript SDK (@agenthost/sdk) for the
// tests that use it. The SDK itself is TypeScript (src/); this file only
// runs npm and tsc.
package typescript

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Build installs the SDK's npm packages (npm ci) and compiles it (tsc) in
// dir, the SDK's folder, when node_modules or dist is missing or older
// than its sources. Test binaries that build it at the same time take
// turns.
func Build(dir string) error {
	for _, tool := range []string{"node", "npm", "npx"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not on PATH: the TypeScript SDK needs Node.js 20 or newer "+
				"with npm (Debian: apt-get install nodejs npm): %v", tool, err)
		}
	}
	unlock, err := Lock(dir)
	if err != nil {
		return err
	}
	defer unlock()
	// npm writes node_modules/.package-lock.json on every install.
	if Stale(filepath.Join(dir, "node_modules", ".package-lock.json"),
		filepath.Join(dir, "package-lock.json"), filepath.Join(dir, "package.json")) {
		if err := Run(dir, "npm", "ci", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts"); err != nil {
			return err
		}
	}
	srcs := []string{filepath.Join(dir, "tsconfig.json"), filepath.Join(dir, "package-lock.json")}
	_ = filepath.WalkDir(filepath.Join(dir, "src"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".ts") {
			srcs = append(srcs, path)
		}
		return nil
	})
	if Stale(filepath.Join(dir, "dist", "index.js"), srcs...) {
		// "--" keeps npx from reading tsc's flags as its own.
		if err := Run(dir, "npx", "--no", "--", "tsc", "--project", "tsconfig.json"); err != nil {
			return err
		}
		// tsc leaves dist/index.js alone when it did not change; the
		// next Build must still see that dist is current.
		now := time.Now()
		if err := os.Chtimes(filepath.Join(dir, "dist", "index.js"), now, now); err != nil {
			return err
		}
	}
	return nil
}

// Lock takes dir's build lock, a file next to the sources, until the
// returned function is called: other test binaries build the same folder.
func Lock(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// Stale reports whether target is missing or older than any of sources.
func Stale(target string, sources ...string) bool {
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

// Run runs a command in dir, its output in the error when it fails.
func Run(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s in %s: %v\n%s", name, strings.Join(args, " "), dir, err, out)
	}
	return nil
}
