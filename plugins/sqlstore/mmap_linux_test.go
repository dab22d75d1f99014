package sqlstore

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/agenthost/agenthost/internal/memtrim"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/google/uuid"
)

// Reading every row of the database leaves none of the file mapped in the
// process: read through a memory map, each page read would stay resident
// in the process's memory until its connection closes.
func TestReadsLeaveTheFileUnmapped(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(ctx, Config{DataDir: dir, ExactSearch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	migrated(t, s)
	agent := newAgent(t, s)
	seed(t, s, agent, []string{uuid.NewString()}, 500, 384)
	// Move the rows from the log into the file, where a map would read them.
	if _, err := s.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	got, err := s.SearchMemories(ctx, agent, storage.SearchQuery{Table: sdk.TableMessages, Embedding: randomVector(rand.New(rand.NewPCG(1, 2)), 384)})
	if err != nil || len(got) == 0 {
		t.Fatalf("search: %d memories, %v", len(got), err)
	}
	if kib, err := memtrim.ResidentKiB(filepath.Join(dir, FileName)); err != nil || kib > 0 {
		t.Errorf("%d KiB of the database file mapped in the process after a search (%v)", kib, err)
	}
}
