//go:build !amd64 && !arm64

// The pure-Go kernels for everything but the GEMM micro-kernel, on
// architectures without SIMD micro-kernels for them (32-bit ARM has NEON
// for the GEMM only: fast_simd_arm.go).

package runtime

func requant(_ simdKind, acc []int32, accStride int, r *requantParams, out []byte, outStride, n, rows int) {
	requantRowsGo(acc, accStride, r, 0, out, outStride, n, rows)
}

func widen(_ simdKind, dst []int16, src []byte, signed bool) { widenGo(dst, src, signed) }

func dwRow(_ simdKind, d *dwFast, ring []int16, taps []int64, acc []int32) {
	dwRowGo(d, ring, taps, acc)
}

func int8PeakLoop(int) int { return 0 }

// useDot reports whether int8 filters are packed for a dot-product
// micro-kernel (none on this architecture).
func useDot(simdKind) bool { return false }
