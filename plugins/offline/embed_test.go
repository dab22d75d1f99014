package offline

import (
	"math"
	"strings"
	"testing"
)

func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

func cosine(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s / (norm(a) * norm(b))
}

func TestEmbedShape(t *testing.T) {
	for _, dim := range []int{8, 64, 384, 1000, 4096} {
		v := Embed("The quick brown fox jumps over the lazy dog", dim)
		if len(v) != dim {
			t.Fatalf("len = %d, want %d", len(v), dim)
		}
		if n := norm(v); math.Abs(n-1) > 1e-5 {
			t.Errorf("dim %d: norm = %v, want 1", dim, n)
		}
	}
	if got := len(Embed("hello", 0)); got != DefaultEmbeddingDimensions {
		t.Errorf("dim 0 gave length %d, want the default %d", got, DefaultEmbeddingDimensions)
	}
}

func TestEmbedDeterministic(t *testing.T) {
	a := Embed("My cat sleeps on the sofa", 384)
	b := Embed("My cat sleeps on the sofa", 384)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("component %d differs: %v vs %v", i, a[i], b[i])
		}
	}
	// Case and punctuation are not words.
	c := Embed("my CAT sleeps, on the sofa!", 384)
	if cos := cosine(a, c); math.Abs(cos-1) > 1e-6 {
		t.Errorf("cosine with re-punctuated text = %v, want 1", cos)
	}
}

func TestEmbedRelatedCloser(t *testing.T) {
	for _, tc := range []struct{ a, related, unrelated string }{
		{"my cat sleeps on the sofa all day", "the cat sleeps all day", "stock markets fell sharply this morning"},
		{"I feel sad about my job", "my job makes me sad", "the recipe needs two eggs and flour"},
		{"PostgreSQL stores vectors for search", "vector search in PostgreSQL", "my grandmother bakes bread on sundays"},
	} {
		a := Embed(tc.a, 384)
		rel, unrel := cosine(a, Embed(tc.related, 384)), cosine(a, Embed(tc.unrelated, 384))
		if rel <= unrel {
			t.Errorf("%q: related %v <= unrelated %v", tc.a, rel, unrel)
		}
	}
}

func TestEmbedZero(t *testing.T) {
	for _, in := range []string{"", "   ", "?!.,", "🙂🙂", "\x00\xff"} {
		v := Embed(in, 16)
		if len(v) != 16 {
			t.Fatalf("Embed(%q): len %d", in, len(v))
		}
		for i, x := range v {
			if x != 0 {
				t.Errorf("Embed(%q)[%d] = %v, want 0", in, i, x)
			}
		}
	}
}

func TestEmbedHostile(t *testing.T) {
	for _, in := range []string{
		strings.Repeat("word ", 1<<18),
		strings.Repeat("x", 1<<20),
		"שלום עולם مرحبا بالعالم",
		"in\xffvalid \x00 utf8",
	} {
		v := Embed(in, 384)
		for i, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("component %d = %v", i, x)
			}
		}
		if n := norm(v); math.Abs(n-1) > 1e-5 {
			t.Errorf("norm = %v, want 1", n)
		}
	}
}
