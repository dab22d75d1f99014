package discord

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// dirStore keeps JSON records as files of a directory, each written
// atomically and synced, so a record survives the process being killed
// at any moment. A store without a directory keeps nothing.
type dirStore struct {
	dir string
}

func (d dirStore) path(id string) string { return filepath.Join(d.dir, id+".json") }

func (d dirStore) put(id string, v any) error {
	if d.dir == "" {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(d.dir, "."+id+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), d.path(id)); err != nil {
		return err
	}
	return syncDir(d.dir)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func (d dirStore) remove(id string) error {
	if d.dir == "" {
		return nil
	}
	err := os.Remove(d.path(id))
	if os.IsNotExist(err) {
		return nil
	}
	return err
}

// load reads every record, oldest file name first, skipping files that
// do not parse (they are reported through bad).
func (d dirStore) load(into func(id string, raw []byte), bad func(name string, err error)) {
	if d.dir == "" {
		return
	}
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		if !os.IsNotExist(err) {
			bad(d.dir, err)
		}
		return
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".json") {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		raw, err := os.ReadFile(filepath.Join(d.dir, n))
		if err != nil {
			bad(n, err)
			continue
		}
		if !json.Valid(raw) {
			bad(n, &json.SyntaxError{Offset: 0})
			continue
		}
		into(strings.TrimSuffix(n, ".json"), raw)
	}
}
