package confine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
)

// pinnedFile keeps the descriptor openPinned executes through open until
// execve.
var pinnedFile *os.File

// openPinned checks that the file at path has the SHA-256 want and returns
// what to execute. On Linux an ELF binary is executed through the very
// descriptor that was hashed (/proc/self/fd/N), so that a file renamed over
// it meanwhile is not what runs; execve opens it before it closes the
// descriptor (close-on-exec). A script is executed by its path: its
// interpreter opens it again by name, which a descriptor closed at execve
// cannot serve.
func openPinned(path, want string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open pinned plugin: %w", err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		f.Close()
		return "", fmt.Errorf("read pinned plugin %s: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		f.Close()
		return "", fmt.Errorf("%s has SHA-256 %s, but plugins.lock expects %s: refused", path, got, want)
	}
	magic := make([]byte, 4)
	if n, _ := f.ReadAt(magic, 0); n == 4 && string(magic) == "\x7fELF" && runtime.GOOS == "linux" {
		pinnedFile = f
		return fmt.Sprintf("/proc/self/fd/%d", f.Fd()), nil
	}
	f.Close()
	return path, nil
}
