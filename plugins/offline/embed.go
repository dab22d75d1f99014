package offline

import (
	"math"
	"strings"
	"unicode"
)

// DefaultEmbeddingDimensions is the length of an [Embed] vector when the
// agent does not choose one. It matches common small sentence models, so a
// database created with this plugin can later take vectors from one.
const DefaultEmbeddingDimensions = 384

// bigramWeight makes a shared word pair count, but less than a shared word:
// pairs are rarer, so equal weight would let one phrase dominate.
const bigramWeight = 0.5

// Embed returns a hashed bag-of-words vector of text with dim components
// (DefaultEmbeddingDimensions if dim <= 0). Words are runs of Unicode
// letters and digits, lower-cased; each word and each pair of adjacent words
// adds ±weight to the bucket its FNV-1a hash selects, the sign coming from
// the hash too so that collisions cancel out on average instead of piling
// up. The result has unit length, or is all zeros when text has no words.
func Embed(text string, dim int) []float32 {
	if dim <= 0 {
		dim = DefaultEmbeddingDimensions
	}
	acc := make([]float64, dim)
	add := func(h uint64, w float64) {
		if h>>63 == 1 {
			w = -w
		}
		acc[h%uint64(dim)] += w
	}
	prev := ""
	for _, w := range strings.FieldsFunc(strings.ToLower(text), notWordRune) {
		add(fnv1a(fnvOffset, w), 1)
		if prev != "" {
			// The space cannot occur inside a word, so "a b" never
			// collides with a single word's hash input.
			h := fnv1a(fnvOffset, prev)
			h = fnv1a(h, " ")
			add(fnv1a(h, w), bigramWeight)
		}
		prev = w
	}
	var sum float64
	for _, v := range acc {
		sum += v * v
	}
	out := make([]float32, dim)
	if sum == 0 {
		return out
	}
	norm := math.Sqrt(sum)
	for i, v := range acc {
		out[i] = float32(v / norm)
	}
	return out
}

func notWordRune(r rune) bool {
	return !unicode.IsLetter(r) && !unicode.IsDigit(r)
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// fnv1a continues a 64-bit FNV-1a hash over s. It is written out rather than
// taken from hash/fnv to hash each word without an allocation.
func fnv1a(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}
