//go:build unix

// Package typescriptplugin builds the TypeScript example plugin for tests.
// The plugin itself is TypeScript (src/main.ts) on the SDK in
// sdk/typescript; this Go file only runs npm and tsc.
package typescriptplugin

import (
	"path/filepath"

	"github.com/agenthost/agenthost/sdk/typescript"
)

// LauncherName is the example's executable, the file a plugin folder holds.
const LauncherName = "agenthost-plugin-typescript-example"

// Build builds the SDK, installs the example's npm packages (npm ci; the
// SDK is copied in, not linked, so that a confined plugin reads only its
// own folder) and compiles the example (tsc) in dir, the example's folder,
// when anything is missing or older than what it is made from, and returns
// the launcher's absolute path. Tests of this folder and the host's
// end-to-end tests share it.
func Build(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	sdkDir := filepath.Join(dir, "..", "..", "sdk", "typescript")
	if err := typescript.Build(sdkDir); err != nil {
		return "", err
	}
	unlock, err := typescript.Lock(dir)
	if err != nil {
		return "", err
	}
	defer unlock()
	// npm writes node_modules/.package-lock.json on every install.
	if typescript.Stale(filepath.Join(dir, "node_modules", ".package-lock.json"),
		filepath.Join(dir, "package-lock.json"), filepath.Join(dir, "package.json"),
		filepath.Join(sdkDir, "dist", "index.js"), filepath.Join(sdkDir, "package.json")) {
		if err := typescript.Run(dir, "npm", "ci", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts"); err != nil {
			return "", err
		}
	}
	if typescript.Stale(filepath.Join(dir, "dist", "main.js"), filepath.Join(dir, "src", "main.ts"),
		filepath.Join(dir, "tsconfig.json"), filepath.Join(dir, "node_modules", ".package-lock.json")) {
		// "--" keeps npx from reading tsc's flags as its own.
		if err := typescript.Run(dir, "npx", "--no", "--", "tsc", "--project", "tsconfig.json"); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, LauncherName), nil
}
