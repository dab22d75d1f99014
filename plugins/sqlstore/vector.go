package sqlstore

import (
	"encoding/binary"
	"math"
)

// encodeVector stores v as little-endian float32, 4 bytes a value.
func encodeVector(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// decodeVector reverses encodeVector; nil for an empty blob.
func decodeVector(b []byte) []float32 {
	if len(b) == 0 {
		return nil
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// norm is the Euclidean length of v.
func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

// cosineEncoded is the cosine similarity of q (whose norm is qNorm) and the
// encoded vector b, read in place without decoding it. It is 0 when either
// vector is zero or the sizes differ.
func cosineEncoded(q []float32, qNorm float64, b []byte) float64 {
	if len(b) != 4*len(q) || qNorm == 0 {
		return 0
	}
	var dot, nb float64
	for i, x := range q {
		y := float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		dot += float64(x) * y
		nb += y * y
	}
	if nb == 0 {
		return 0
	}
	return dot / (qNorm * math.Sqrt(nb))
}
