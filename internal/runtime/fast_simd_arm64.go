package runtime

import "golang.org/x/sys/cpu"

func detectSIMD() simdKind {
	if cpu.ARM64.HasASIMDDP {
		return simdNEONDot
	}
	if cpu.ARM64.HasASIMD {
		return simdNEON
	}
	return simdNone
}

func isNEON(s simdKind) bool { return s == simdNEON || s == simdNEONDot }

// NEON micro-kernels (fast_simd_arm64.s).

//go:noescape
func gemmNEON(a *int16, kp int, w *int16, nb int, bias *int32, acc *int32, accStride int, tiles int)

//go:noescape
func gemmDotNEON(a *int16, kp int, w *int8, nb int, bias *int32, acc *int32, accStride int, tiles int)

// useDot reports whether int8 filters are packed for the dot-product
// micro-kernel.
func useDot(s simdKind) bool { return s == simdNEONDot }

//go:noescape
func requantNEON(acc *int32, n int, sig, lsh, rsh, mask, thr *int32, out *byte, zp, lo, hi, rows, accStride, outStride int)

//go:noescape
func widenInt8NEON(dst *int16, src *byte, n int)

//go:noescape
func widenUint8NEON(dst *int16, src *byte, n int)

//go:noescape
func dwRowNEON(base *int16, taps *int64, ntaps, cp int, w *int16, bias *int32, acc *int32, outW, xstride int)

//go:noescape
func int8PeakNEON(iters int)

// gemm runs the micro-kernel of kind s on tiles × gemmMR rows of a (see
// gemmGo).
func gemm(s simdKind, a []int16, p *packedFilter, acc []int32, accStride, tiles int) {
	if p.wDot != nil {
		_ = a[tiles*gemmMR*p.kp-1]
		_ = acc[(tiles*gemmMR-1)*accStride+p.nb*gemmNR-1]
		gemmDotNEON(&a[0], p.kp, &p.wDot[0], p.nb, &p.bias[0], &acc[0], accStride, tiles)
		return
	}
	if isNEON(s) {
		_ = a[tiles*gemmMR*p.kp-1]
		_ = acc[(tiles*gemmMR-1)*accStride+p.nb*gemmNR-1]
		gemmNEON(&a[0], p.kp, &p.w[0], p.nb, &p.bias[0], &acc[0], accStride, tiles)
		return
	}
	gemmGo(a, p, acc, accStride, tiles)
}

// requant writes rows pixels of n channels (see requantGo).
func requant(s simdKind, acc []int32, accStride int, r *requantParams, out []byte, outStride, n, rows int) {
	if isNEON(s) && n >= 8 {
		v := n &^ 7
		_ = acc[(rows-1)*accStride+n-1]
		_ = out[(rows-1)*outStride+n-1]
		requantNEON(&acc[0], v, &r.sig[0], &r.lsh[0], &r.rsh[0], &r.mask[0], &r.thr[0], &out[0], int(r.zp), int(r.lo), int(r.hi), rows, accStride, outStride)
		// The rest, n%8 channels, through the same arithmetic in Go.
		requantRowsGo(acc, accStride, r, v, out, outStride, n, rows)
		return
	}
	requantRowsGo(acc, accStride, r, 0, out, outStride, n, rows)
}

// widen converts 8-bit values to int16.
func widen(s simdKind, dst []int16, src []byte, signed bool) {
	n := len(src)
	if isNEON(s) && n >= 16 {
		v := n &^ 15
		_ = dst[v-1]
		if signed {
			widenInt8NEON(&dst[0], &src[0], v)
		} else {
			widenUint8NEON(&dst[0], &src[0], v)
		}
		widenGo(dst[v:], src[v:], signed)
		return
	}
	widenGo(dst, src, signed)
}

// dwRow runs one output row of the depthwise kernel (see dwRowGo).
func dwRow(s simdKind, d *dwFast, ring []int16, taps []int64, acc []int32) {
	if isNEON(s) {
		dwRowNEON(&ring[0], &taps[0], d.taps, d.cp, &d.wNat[0], &d.bias[0], &acc[0], d.outW, d.xstride*2)
		return
	}
	dwRowGo(d, ring, taps, acc)
}

// int8PeakLoop runs the peak loop of this CPU's micro-kernel family for
// iters iterations and returns the multiply-accumulates one iteration does.
func int8PeakLoop(iters int) int {
	if !isNEON(cpuSIMD) {
		return 0
	}
	int8PeakNEON(iters)
	return 64
}
