package sysmon

import (
	"slices"
	"testing"
)

func TestWithAddsTheSettingOnce(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []string
		want []string
	}{
		{"no GODEBUG", []string{"HOME=/h"}, []string{"HOME=/h", "GODEBUG=" + Setting}},
		{"empty GODEBUG", []string{"GODEBUG=", "A=b"}, []string{"GODEBUG=" + Setting, "A=b"}},
		{"other settings kept", []string{"GODEBUG=http2client=0"}, []string{"GODEBUG=http2client=0," + Setting}},
		{"the operator's schedtrace kept", []string{"GODEBUG=gctrace=1, schedtrace=0"}, []string{"GODEBUG=gctrace=1, schedtrace=0"}},
		{"only the first GODEBUG counts", []string{"GODEBUG=x=1", "GODEBUG=schedtrace=5"}, []string{"GODEBUG=x=1," + Setting, "GODEBUG=schedtrace=5"}},
		{"a look-alike is not schedtrace", []string{"GODEBUG=schedtracex=1"}, []string{"GODEBUG=schedtracex=1," + Setting}},
	} {
		in := slices.Clone(c.in)
		if got := With(c.in); !slices.Equal(got, c.want) {
			t.Errorf("%s: With(%q) = %q, want %q", c.name, c.in, got, c.want)
		}
		if !slices.Equal(in, c.in) {
			t.Errorf("%s: With changed its argument to %q", c.name, c.in)
		}
		if got := With(With(c.in)); !slices.Equal(got, c.want) {
			t.Errorf("%s: With twice = %q, want %q", c.name, got, c.want)
		}
	}
}
