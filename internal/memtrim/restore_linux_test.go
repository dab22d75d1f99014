package memtrim

import (
	"os"
	"testing"
)

var garbage [][]byte

// churn makes the heap grow by about n bytes of garbage, touched as work
// touches what it allocates.
func churn(n int) {
	for i := 0; i < n/(64<<10); i++ {
		b := make([]byte, 64<<10)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1
		}
		garbage = append(garbage, b)
	}
	garbage = nil
}

// residentPages counts the pages of runs that are in memory.
func residentPages(runs []span) int {
	n := 0
	for _, r := range runs {
		for _, v := range resident(r) {
			n += int(v & 1)
		}
	}
	return n
}

// startRestoring skips a test where the kernel cannot populate, and
// forgets what earlier tests in this process left populated ahead of the
// runtime, which would hold the test back.
func startRestoring(t *testing.T) {
	t.Helper()
	if noPopulate.Load() {
		t.Skip("this kernel refuses MADV_POPULATE_WRITE")
	}
	restore.mu.Lock()
	restore.ahead = 0
	restore.mu.Unlock()
}

// A trim notes the heap pages it gave back; calls after it populate them
// again, lowest first, never more than lookahead ahead of what the runtime
// takes, however many calls come without work.
func TestWakePopulatesWhatTheTrimGaveBack(t *testing.T) {
	startRestoring(t)
	Trim() // the first trim of a process, after its start, notes nothing
	churn(16 << 20)
	Trim()
	restore.mu.Lock()
	runs := append([]span(nil), restore.runs...)
	restore.mu.Unlock()
	if !restoring.Load() || len(runs) == 0 {
		t.Fatal("a trim after 16 MiB of garbage noted no pages to populate again")
	}
	page := os.Getpagesize()
	total := 0
	for _, r := range runs {
		total += int(r.end-r.start) / page
	}
	if total < (lookahead+restoreChunk)/page*2 {
		t.Fatalf("the trim noted %d pages; the heap grew by 16 MiB", total)
	}
	if got := residentPages(runs); got > total/10 {
		t.Fatalf("%d of the %d pages given back are still resident", got, total)
	}

	for range 50 {
		Wake()
	}
	got := residentPages(runs)
	if got < lookahead/page/2 {
		t.Fatalf("after the wakes %d pages are resident again; want about %d", got, lookahead/page)
	}
	// Fifty calls without work populate no more than one: the runtime
	// took none of them.
	if max := (lookahead + restoreChunk) / page; got > max+total/10 {
		t.Fatalf("fifty idle wakes populated %d pages; at most %d may be ahead of the runtime", got, max)
	}

	// Work that takes the populated pages, and faults in more than were
	// populated, lets the next wake go further: past the pages the work
	// faulted in itself, twice as far as it took.
	left := pagesLeft()
	released := releasedBytes()
	churn(4 << 20)
	taken := int(released-releasedBytes()) / page
	before := residentPages(runs)
	Wake()
	if after := pagesLeft(); after >= left {
		t.Fatalf("after the runtime took pages, a wake populated nothing more (%d pages left to populate, %d before)", after, left)
	}
	if fresh := residentPages(runs) - before; taken > 0 && fresh < taken*3/2 {
		t.Fatalf("the runtime took %d pages; the wake after it populated %d that were not resident, want about twice as many", taken, fresh)
	}
}

func releasedBytes() uint64 {
	restore.mu.Lock()
	defer restore.mu.Unlock()
	return restore.releasedHeap()
}

func pagesLeft() int {
	restore.mu.Lock()
	defer restore.mu.Unlock()
	n := 0
	for _, r := range restore.runs {
		n += int(r.end-r.start) / os.Getpagesize()
	}
	return n
}
