package memtrim

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// Only a private, read-only mapping of the executable with nothing but the
// file's pages in it may be dropped.
func TestCleanFileSpans(t *testing.T) {
	const smaps = `00400000-011d9000 r-xp 00000000 fd:01 42 /opt/agenthost
Size:              14180 kB
Rss:               10000 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
011d9000-0293f000 r--p 00dd9000 fd:01 42 /opt/agenthost
Anonymous:             0 kB
0293f000-02940000 r--p 0253f000 fd:01 42 /opt/agenthost
Anonymous:             4 kB
02940000-02a0b000 rw-p 02540000 fd:01 42 /opt/agenthost
Anonymous:           408 kB
02a0b000-02a0c000 rw-p 00000000 00:00 0
Anonymous:             4 kB
7f0000000000-7f0000100000 r--s 00000000 fd:01 77 /data/agenthost.db
Anonymous:             0 kB
7f0000200000-7f0000300000 r--p 00000000 fd:01 78 /opt/agenthost copy
Anonymous:             0 kB
7ffc00000000-7ffc00002000 r-xp 00000000 00:00 0                          [vdso]
Anonymous:             0 kB
`
	got := cleanFileSpans(strings.NewReader(smaps), "/opt/agenthost")
	want := []span{{0x400000, 0x11d9000}, {0x11d9000, 0x293f000}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("spans %x, want %x", got, want)
	}
}

// marked lives in the executable's writable data, which the drop must
// leave alone: were its page dropped, it would read back as in the file.
var marked = 1

// Dropping the pages of the running test binary shrinks what it maps of
// its executable, and the program carries on: its code faults back in and
// its data keeps what was written to it.
func TestDropStartupPages(t *testing.T) {
	marked = 42
	before := exeRss(t)
	dropStartupPages()
	after := exeRss(t)
	if after >= before {
		t.Errorf("executable resident: %d KiB before the drop, %d KiB after", before, after)
	}
	if marked != 42 {
		t.Errorf("written data lost: %d, want 42", marked)
	}
	t.Logf("pages of the executable resident: %d KiB, then %d KiB", before, after)
}

// exeRss is the resident KiB of this process's mappings of its executable.
func exeRss(t *testing.T) int {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	kib, err := ResidentKiB(exe)
	if err != nil || kib == 0 {
		t.Fatalf("executable resident: %d KiB, %v", kib, err)
	}
	return kib
}
