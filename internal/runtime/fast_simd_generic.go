//go:build !amd64 && !arm64

// The pure-Go kernels for everything but the GEMM micro-kernel, on
// architectures without SIMD micro-kernels for them (32-bit ARM has NEON
// for the GEMM only: fast_simd_arm.go).

package runtime

func requant(_ simdKind, acc []int32, accStride int, r *requantParams, out []byte, outStride, n, rows int) {
	for m := range rows {
		requantGo(acc[m*accStride:m*accStride+n], r, 0, out[m*outStride:m*outStride+n])
	}
}

func widen(_ simdKind, dst []int16, src []byte, signed bool) { widenGo(dst, src, signed) }

func dwRow(_ simdKind, d *dwFast, ring []int16, taps []int64, acc []int32) {
	dwRowGo(d, ring, taps, acc)
}

func int8PeakLoop(int) int { return 0 }

func mulRow(simdKind, []byte, []byte, []byte, bool, int32, int32, *requantParams) int { return 0 }

const gatherSlack = 16

func gatherRow(simdKind, []int16, int, []int16, []int, int, int, int) bool { return false }

func newAddParams(*addSubQuant) *[160]int32 { return nil }

func addRow(simdKind, *[160]int32, []byte, []byte, []byte, bool, bool) int { return 0 }

func lookupBytes(_ simdKind, in, out []byte, lut *[256]uint8, _ *[16][32]byte) {
	lookupUint8(in, out, lut)
}

func maxRows(_ simdKind, dst []byte, dstStride int, src []byte, srcStride, n, count int, signed bool) {
	maxRowsGo(dst, dstStride, src, srcStride, n, count, signed)
}

// useDot reports whether int8 filters are packed for a dot-product
// micro-kernel (none on this architecture).
func useDot(simdKind) bool { return false }
