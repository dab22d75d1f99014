package host

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// fileID is what the host knows of a plugin's executable: enough to tell
// that it was replaced (a new inode when renamed over it) or rewritten in
// place (a new size or modification time).
type fileID struct {
	Dev, Ino uint64
	Size     int64
	ModTime  time.Time
	Exec     bool
}

// statFile reads the identity of the file at path, following symbolic
// links: a link pointed elsewhere is a new binary too.
func statFile(path string) (fileID, error) {
	info, err := os.Stat(path)
	if err != nil {
		return fileID{}, err
	}
	if info.IsDir() {
		return fileID{}, fmt.Errorf("%s is a folder", path)
	}
	id := fileID{Size: info.Size(), ModTime: info.ModTime(), Exec: info.Mode()&0o111 != 0}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		id.Dev, id.Ino = uint64(st.Dev), st.Ino
	}
	return id, nil
}

// same reports whether two identities are of the same unchanged file.
func (f fileID) same(g fileID) bool {
	return f.Dev == g.Dev && f.Ino == g.Ino && f.Size == g.Size && f.ModTime.Equal(g.ModTime) && f.Exec == g.Exec
}

// FileSHA256 is the hex SHA-256 of a file: the checksum plugins.lock pins.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
