package runtime

import "golang.org/x/sys/cpu"

// 32-bit ARM: the NEON GEMM micro-kernel (fast_simd_arm.s) where the CPU
// has NEON (armv7), pure Go for everything else and on armv6.

func detectSIMD() simdKind {
	if cpu.ARM.HasNEON {
		return simdNEON32
	}
	return simdNone
}

//go:noescape
func gemmNEON32(a *int16, kp int, w *int16, nb int, bias *int32, acc *int32, accStride int, tiles int)

// gemm runs the micro-kernel of kind s on tiles × gemmMR rows of a (see
// gemmGo).
func gemm(s simdKind, a []int16, p *packedFilter, acc []int32, accStride, tiles int) {
	if s == simdNEON32 {
		_ = a[tiles*gemmMR*p.kp-1]
		_ = acc[(tiles*gemmMR-1)*accStride+p.nb*gemmNR-1]
		gemmNEON32(&a[0], p.kp, &p.w[0], p.nb, &p.bias[0], &acc[0], accStride, tiles)
		return
	}
	gemmGo(a, p, acc, accStride, tiles)
}

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
