//go:build !amd64 && !arm64 && !arm

// Architectures without SIMD micro-kernels: the pure-Go kernels.

package runtime

func detectSIMD() simdKind { return simdNone }

func gemm(_ simdKind, a []int16, p *packedFilter, acc []int32, accStride, tiles int) {
	gemmGo(a, p, acc, accStride, tiles)
}
