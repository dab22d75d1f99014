package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"reflect"
	"syscall"
	"testing"

	"github.com/lib/pq"
)

func TestVectorEncoding(t *testing.T) {
	t.Parallel()
	v := []float32{0, 1, -1, 0.5, math.MaxFloat32, math.SmallestNonzeroFloat32, -0}
	b := encodeVector(v)
	if len(b) != 4*len(v) || b[4] != 0x00 || b[7] != 0x3f { // 1.0 = 0x3f800000, little-endian
		t.Fatalf("encoding % x", b)
	}
	if got := decodeVector(b); !reflect.DeepEqual(got, v) {
		t.Fatalf("decoded %v", got)
	}
	if decodeVector(nil) != nil {
		t.Fatal("empty blob decoded to a vector")
	}
}

func TestCosine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		a, b []float32
		want float64
	}{
		{[]float32{1, 0}, []float32{1, 0}, 1},
		{[]float32{1, 0}, []float32{0, 1}, 0},
		{[]float32{1, 0}, []float32{-2, 0}, -1},
		{[]float32{1, 1}, []float32{1, 0}, 1 / math.Sqrt2},
		{[]float32{0, 0}, []float32{1, 0}, 0},
		{[]float32{1, 0}, []float32{0, 0}, 0},
		{[]float32{1, 0}, []float32{1, 0, 0}, 0},
	}
	for _, c := range cases {
		if got := cosineEncoded(c.a, norm(c.a), encodeVector(c.b)); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("cos(%v, %v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func TestJSONHasNUL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		`"\u0000"`:          true,
		`{"a":"x\u0000y"}`:  true,
		`"\\u0000"`:         false, // a backslash, then u0000
		`"\\\u0000"`:        true,
		`"\u00000"`:         true,
		`"\u0001"`:          false,
		`"\n\t\\"`:          false,
		`["\\", "\u0000"]`:  true,
		`"plain"`:           false,
		`"\\\\u0000"`:       false,
		`{"\u0000key": 1}`:  true,
		`"ends with \\"`:    false,
		`"\uD83D\uDE00"`:    false,
		`"\u0000"` + "\n":   true,
		`"u0000 \\u0000 x"`: false,
	} {
		if got := jsonHasNUL([]byte(in)); got != want {
			t.Errorf("jsonHasNUL(%s) = %v, want %v", in, got, want)
		}
	}
}

func TestMerges(t *testing.T) {
	t.Parallel()
	if got := mergeNames([]string{"a", "b"}, []string{"b", "", "c", "a", "d"}); !reflect.DeepEqual(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("mergeNames: %v", got)
	}
	if got := mergeNames(nil, nil); got != nil {
		t.Errorf("mergeNames(nil, nil) = %#v", got)
	}
}

func TestKeyPath(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]string{
		"source":  "m.source",
		"a-b_c9":  "m.a-b_c9",
		"":        `m[""]`,
		"a b":     `m["a b"]`,
		"x\xff":   `m["x\xff"]`,
		"dot.ted": `m["dot.ted"]`,
	} {
		if got := keyPath("m", key); got != want {
			t.Errorf("keyPath(%q) = %s, want %s", key, got, want)
		}
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{driver.ErrBadConn, true},
		{fmt.Errorf("begin: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), true},
		{io.ErrUnexpectedEOF, true},
		{&pq.Error{Code: "57P01"}, true},
		{&pq.Error{Code: "08006"}, true},
		{&pq.Error{Code: "23505"}, false},
		{context.DeadlineExceeded, false},
		{fmt.Errorf("x: %w", context.Canceled), false},
		{errors.New("syntax error"), false},
	} {
		if got := unreachable(tc.err); got != tc.want {
			t.Errorf("unreachable(%v) = %v", tc.err, got)
		}
	}
}
