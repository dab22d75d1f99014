package contract

import (
	"testing"

	"github.com/google/uuid"
)

func TestEncodeURIComponent(t *testing.T) {
	for in, want := range map[string]string{
		"":                   "",
		"hello world":        "hello%20world",
		"a/b?c=d&e":          "a%2Fb%3Fc%3Dd%26e",
		"!~*'()-_.":          "!~*'()-_.",
		"AZaz09":             "AZaz09",
		"é":                  "%C3%A9",
		"🎉":                  "%F0%9F%8E%89",
		"\x00\x7f":           "%00%7F",
		"#$&+,/:;=?@[]`{|}^": "%23%24%26%2B%2C%2F%3A%3B%3D%3F%40%5B%5D%60%7B%7C%7D%5E",
		"\"<>\\%":            "%22%3C%3E%5C%25",
		"\xff":               "%EF%BF%BD",
	} {
		if got := jsEncodeURIComponent(in); got != want {
			t.Errorf("jsEncodeURIComponent(%q) = %q, want %q", in, got, want)
		}
	}
}

// NewID's ids are UUIDs of version 7, each one after the last in the
// order a database index sorts them, even many within one millisecond.
func TestNewIDSortsByTime(t *testing.T) {
	prev := ""
	for i := range 10000 {
		id := NewID()
		if u, err := uuid.Parse(id); err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 || !IsUUID(id) {
			t.Fatalf("id %d: %q, want a version 7 UUID (%v)", i, id, err)
		}
		if id <= prev {
			t.Fatalf("id %d: %s after %s, want each after the last", i, id, prev)
		}
		prev = id
	}
}

// More than 4096 ids in one millisecond borrow the next millisecond; a
// clock that goes back does not take the ids back with it.
func TestIDClockNeverGoesBack(t *testing.T) {
	var c idClock
	lastMS, lastSeq := int64(0), uint16(0)
	for i := range 5000 {
		now := int64(1000)
		if i == 4500 {
			now = 900 // the wall clock stepped back
		}
		ms, seq := c.next(now)
		if i > 0 && (ms < lastMS || ms == lastMS && seq <= lastSeq) {
			t.Fatalf("call %d: (%d, %d) after (%d, %d)", i, ms, seq, lastMS, lastSeq)
		}
		if seq > 0xfff {
			t.Fatalf("call %d: count %d does not fit 12 bits", i, seq)
		}
		lastMS, lastSeq = ms, seq
	}
	if lastMS != 1001 {
		t.Errorf("after 5000 ids in millisecond 1000: at %d, want 1001", lastMS)
	}
}
