package runtime

import "golang.org/x/sys/cpu"

func detectSIMD() simdKind {
	if cpu.X86.HasAVX2 {
		return simdAVX2
	}
	return simdNone
}

// AVX2 micro-kernels (fast_simd_amd64.s).

//go:noescape
func gemmAVX2(a *int16, kp int, w *int16, nb int, bias *int32, acc *int32, accStride int)

//go:noescape
func requantAVX2(acc *int32, n int, sig, lsh, rsh, mask, thr *int32, out *byte, zp, lo, hi int)

//go:noescape
func widenInt8AVX2(dst *int16, src *byte, n int)

//go:noescape
func widenUint8AVX2(dst *int16, src *byte, n int)

//go:noescape
func dwRowAVX2(base *int16, taps *int64, npairs, ncb int, w *int16, bias *int32, acc *int32, outW, xstride int)

// gemm runs the micro-kernel of kind s (see gemmGo).
func gemm(s simdKind, a []int16, p *packedFilter, acc []int32, accStride int) {
	if s == simdAVX2 {
		_ = a[gemmMR*p.kp-1]
		_ = acc[(gemmMR-1)*accStride+p.nb*gemmNR-1]
		gemmAVX2(&a[0], p.kp, &p.w[0], p.nb, &p.bias[0], &acc[0], accStride)
		return
	}
	gemmGo(a, p, acc, accStride)
}

// requant writes len(out) channels of one pixel (see requantGo).
func requant(s simdKind, acc []int32, r *requantParams, out []byte) {
	n := len(out)
	if s == simdAVX2 && n >= 8 {
		v := n &^ 7
		_ = acc[v-1]
		requantAVX2(&acc[0], v, &r.sig[0], &r.lsh[0], &r.rsh[0], &r.mask[0], &r.thr[0], &out[0], int(r.zp), int(r.lo), int(r.hi))
		if v == n {
			return
		}
		// The rest, n%8 channels, through the same arithmetic in Go.
		for c := v; c < n; c++ {
			out[c] = byte(requantOne(acc[c], r.sig[c], r.lsh[c], r.rsh[c], r.mask[c], r.thr[c], r.zp, r.lo, r.hi))
		}
		return
	}
	requantGo(acc, r, out)
}

// widen converts 8-bit values to int16.
func widen(s simdKind, dst []int16, src []byte, signed bool) {
	n := len(src)
	if s == simdAVX2 && n >= 16 {
		v := n &^ 15
		_ = dst[v-1]
		if signed {
			widenInt8AVX2(&dst[0], &src[0], v)
		} else {
			widenUint8AVX2(&dst[0], &src[0], v)
		}
		widenGo(dst[v:], src[v:], signed)
		return
	}
	widenGo(dst, src, signed)
}

// dwRow runs one output row of the depthwise kernel (see dwRowGo).
func dwRow(s simdKind, d *dwFast, ring []int16, taps []int64, acc []int32) {
	if s == simdAVX2 {
		dwRowAVX2(&ring[0], &taps[0], d.npairs, d.cp/gemmNR, &d.wPerm[0], &d.biasPerm[0], &acc[0], d.outW, d.xstride*2)
		return
	}
	dwRowGo(d, ring, taps, acc)
}
