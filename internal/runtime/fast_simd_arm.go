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
