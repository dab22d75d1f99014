package memtrim

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// dropStartupPages drops this process's mappings of its executable's
// read-only segments (see the package doc). A page that is used again
// faults back in from the file cache.
func dropStartupPages() {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return
	}
	spans := cleanFileSpans(f, exe)
	f.Close()
	for _, s := range spans {
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, s.start, s.end-s.start, unix.MADV_DONTNEED)
	}
}

// ResidentKiB is how much of the file at path this process has mapped and
// resident, from /proc/self/smaps.
func ResidentKiB(path string) (int, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	total, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if isHeader(fs) {
			in = len(fs) == 6 && fs[5] == path
			continue
		}
		if in && len(fs) >= 2 && fs[0] == "Rss:" {
			n, _ := strconv.Atoi(fs[1])
			total += n
		}
	}
	return total, sc.Err()
}

// isHeader reports whether the fields of a line of smaps begin a mapping:
// range, permissions, offset, device, inode and, for a file, its path.
func isHeader(f []string) bool {
	return len(f) >= 5 && strings.Contains(f[0], "-") && len(f[1]) == 4
}

// span is an address range of a mapping.
type span struct{ start, end uintptr }

// parseRange reads the "start-end" address range that begins a line of
// /proc/PID/maps or smaps.
func parseRange(r string) (span, bool) {
	lo, hi, _ := strings.Cut(r, "-")
	a, err1 := strconv.ParseUint(lo, 16, 64)
	b, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil {
		return span{}, false
	}
	return span{uintptr(a), uintptr(b)}, true
}

// cleanFileSpans reads /proc/PID/smaps and returns the mappings of path
// that hold nothing but unmodified pages of the file: private, not
// writable, and without anonymous pages. A page of such a mapping that is
// dropped reads back the same from the file. A mapping that was written
// before it was made read-only (relocations of a position-independent
// executable) has anonymous pages and is left alone, as is every
// writable one.
func cleanFileSpans(smaps io.Reader, path string) []span {
	var out []span
	open := false // the last header was kept and its fields follow
	sc := bufio.NewScanner(smaps)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if isHeader(f) {
			open = false
			if len(f) != 6 || f[5] != path || f[1][1] != '-' || f[1][3] != 'p' {
				continue
			}
			sp, ok := parseRange(f[0])
			if !ok {
				continue
			}
			out = append(out, sp)
			open = true
			continue
		}
		if open && len(f) >= 2 && f[0] == "Anonymous:" && f[1] != "0" {
			out = out[:len(out)-1]
			open = false
		}
	}
	if sc.Err() != nil {
		return nil
	}
	return out
}
