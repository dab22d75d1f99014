package contract

import "testing"

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
		if !IsUUID(id) || id[14] != '7' {
			t.Fatalf("id %d: %q, want a version 7 UUID", i, id)
		}
		if id <= prev {
			t.Fatalf("id %d: %s after %s, want each after the last", i, id, prev)
		}
		prev = id
	}
}
