package kernels

import "testing"

func BenchmarkGather2(b *testing.B) {
	src := make([]float32, 2*4096)
	dst := make([]float32, 4096)
	b.SetBytes(4096 * 4)
	for i := 0; i < b.N; i++ {
		gatherAVX512(dst, src, 2)
	}
}
func BenchmarkGather2Short(b *testing.B) {
	src := make([]float32, 2*29)
	dst := make([]float32, 29)
	b.SetBytes(29 * 4)
	for i := 0; i < b.N; i++ {
		gatherAVX512(dst, src[:57], 2)
	}
}
