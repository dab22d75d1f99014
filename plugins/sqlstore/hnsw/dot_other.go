//go:build !amd64

package hnsw

// dot is the integer dot product of two vectors of the same length.
func dot(a, b []int8) int32 { return dotGo(a, b) }
