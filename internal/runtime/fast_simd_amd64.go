package runtime

import (
	"golang.org/x/sys/cpu"

	"github.com/edged/edged/internal/quantize"
)

func detectSIMD() simdKind {
	if cpu.X86.HasAVX2 {
		return simdAVX2
	}
	return simdNone
}

// AVX2 micro-kernels (fast_simd_amd64.s).

//go:noescape
func gemmAVX2(a *int16, kp int, w *int16, nb int, bias *int32, acc *int32, accStride int, tiles int)

//go:noescape
func requantAVX2(acc *int32, n int, sig, lsh, rsh, mask, thr *int32, out *byte, zp, lo, hi, rows, accStride, outStride, shifts int)

//go:noescape
func widenInt8AVX2(dst *int16, src *byte, n int)

//go:noescape
func widenUint8AVX2(dst *int16, src *byte, n int)

//go:noescape
func dwRowAVX2(base *int16, taps *int64, npairs, ncb, tail8 int, w *int16, bias *int32, acc *int32, outW, xstride int)

// gemm runs the micro-kernel of kind s on tiles × gemmMR rows of a (see
// gemmGo).
func gemm(s simdKind, a []int16, p *packedFilter, acc []int32, accStride, tiles int) {
	if s == simdAVX2 {
		_ = a[tiles*gemmMR*p.kp-1]
		_ = acc[(tiles*gemmMR-1)*accStride+p.nb*gemmNR-1]
		gemmAVX2(&a[0], p.kp, &p.w[0], p.nb, &p.bias[0], &acc[0], accStride, tiles)
		return
	}
	gemmGo(a, p, acc, accStride, tiles)
}

// requant writes rows pixels of n channels (see requantGo).
func requant(s simdKind, acc []int32, accStride int, r *requantParams, out []byte, outStride, n, rows int) {
	if s == simdAVX2 && n >= 8 {
		v := n &^ 7
		_ = acc[(rows-1)*accStride+n-1]
		_ = out[(rows-1)*outStride+n-1]
		requantAVX2(&acc[0], v, &r.sig[0], &r.lsh[0], &r.rsh[0], &r.mask[0], &r.thr[0], &out[0], int(r.zp), int(r.lo), int(r.hi), rows, accStride, outStride, r.shifts)
		// The rest, n%8 channels, through the same arithmetic in Go.
		requantRowsGo(acc, accStride, r, v, out, outStride, n, rows)
		return
	}
	requantRowsGo(acc, accStride, r, 0, out, outStride, n, rows)
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

//go:noescape
func dw3x3AVX2(base *int16, rowOffs *int64, colStep, ncb, tail8 int, w *int16, bias *int32, acc *int32, outW, xstride, accStride int)

// dwRow runs one output row of the depthwise kernel (see dwRowGo). taps
// holds 2·npairs tap offsets (bytes) and then the filter rows' offsets.
func dwRow(s simdKind, d *dwFast, ring []int16, taps []int64, acc []int32) {
	g := &d.k.g
	if s == simdAVX2 && g.filterH == 3 && g.filterW == 3 && d.wPairs8 != nil {
		rows := taps[2*d.npairs : 2*d.npairs+3]
		if pairs := d.outW / 2; pairs > 0 {
			dw3x3AVX2(&ring[0], &rows[0], g.dilationW*d.cp*2, 1, 0, &d.wPairs8[0], &d.biasPairs8[0], &acc[0], pairs, d.xstride*4, d.cp*8)
		}
		if d.outW%2 == 1 {
			x := d.outW - 1
			dw3x3AVX2(&ring[x*d.xstride], &rows[0], g.dilationW*d.cp*2, 0, 1, &d.wPerm[0], &d.biasPerm[0], &acc[x*d.cp], 1, d.xstride*2, d.cp*4)
		}
		return
	}
	if s == simdAVX2 && g.filterH == 3 && g.filterW == 3 {
		rows := taps[2*d.npairs : 2*d.npairs+3]
		dw3x3AVX2(&ring[0], &rows[0], g.dilationW*d.cp*2, d.cp/16, d.cp%16/8, &d.wPerm[0], &d.biasPerm[0], &acc[0], d.outW, d.xstride*2, d.cp*4)
		return
	}
	if s == simdAVX2 {
		dwRowAVX2(&ring[0], &taps[0], d.npairs, d.cp/16, d.cp%16/8, &d.wPerm[0], &d.biasPerm[0], &acc[0], d.outW, d.xstride*2)
		return
	}
	dwRowGo(d, ring, taps, acc)
}

//go:noescape
func int8PeakAVX2(iters int)

// int8PeakLoop runs the peak loop of this CPU's micro-kernel family for
// iters iterations and returns the multiply-accumulates one iteration does
// (0 when there is no such loop).
func int8PeakLoop(iters int) int {
	if cpuSIMD != simdAVX2 {
		return 0
	}
	int8PeakAVX2(iters)
	return 128
}

//go:noescape
func mulRequantAVX2(a, b, out *byte, n, signed, o1, o2, sig, lsh, rsh, mask, thr, zp, lo, hi int)

// mulRow is the optimized quantized MUL of equal-length rows of bytes; it
// returns how many leading elements it did (a multiple of 8; the caller does
// the rest).
func mulRow(s simdKind, a, b, out []byte, signed bool, o1, o2 int32, r *requantParams) int {
	n := len(out) &^ 7
	if s != simdAVX2 || n == 0 {
		return 0
	}
	_, _ = a[n-1], b[n-1]
	sg := 0
	if signed {
		sg = 1
	}
	mulRequantAVX2(&a[0], &b[0], &out[0], n, sg, int(o1), int(o2), int(r.sig[0]), int(r.lsh[0]), int(r.rsh[0]), int(r.mask[0]), int(r.thr[0]), int(r.zp), int(r.lo), int(r.hi))
	return n
}

//go:noescape
func gatherAVX2(dst *int16, dstStride int, ring *int16, offs *int, nfy, run, count, xstep int)

// gatherSlack is the int16 elements of slack gatherRow needs after its
// destination and source.
const gatherSlack = 16

// gatherRow copies the patches of count pixels of one output row (see
// gatherAVX2; run and xstep in int16 elements, dst rows kp apart); false
// if there is no SIMD routine.
func gatherRow(s simdKind, dst []int16, kp int, ring []int16, offs []int, run, count, xstep int) bool {
	if s != simdAVX2 {
		return false
	}
	last := offs[len(offs)-1] + (count-1)*xstep + run
	_ = ring[last+gatherSlack-1]
	_ = dst[(count-1)*kp+len(offs)*run+gatherSlack-1]
	gatherAVX2(&dst[0], kp*2, &ring[0], &offs[0], len(offs), run*2, count, xstep*2)
	return true
}

//go:noescape
func addRequantAVX2(a, b, out *byte, n int, variant int, p *[160]int32)

// addParams are addRequantAVX2's parameters for one ADD/SUB, or nil when
// its shifts are outside what the kernel does (left shifts of the output
// rescaling, which only uint8 SUB can have).
func newAddParams(q *addSubQuant) *[160]int32 {
	if q.leftShift != 20 || q.in1Mult.Shift > 0 || q.in2Mult.Shift > 0 || q.outMult.Shift > 0 {
		return nil
	}
	p := new([160]int32)
	set := func(off int, v int32) {
		for i := range 8 {
			p[off/4+i] = v
		}
	}
	set(0, q.in1Offset)
	set(32, q.in2Offset)
	set(64, q.in1Mult.Significand)
	set(96, q.in2Mult.Significand)
	set(128, q.outMult.Significand)
	for i, m := range []quantize.Multiplier{q.in1Mult, q.in2Mult, q.outMult} {
		e := -m.Shift
		mask := int32((int64(1) << e) - 1)
		set(160+64*i, mask)
		set(192+64*i, mask>>1)
		p[(480+32*i)/4] = int32(e)
	}
	set(352, q.outOffset)
	set(384, q.actMin)
	set(416, q.actMax)
	for i := range 4 {
		p[448/4+2*i] = 1 << 30
	}
	return p
}

// addRow is the optimized 8-bit ADD/SUB of equal-length rows; it returns
// how many leading elements it did (a multiple of 8).
func addRow(s simdKind, p *[160]int32, a, b, out []byte, signed, sub bool) int {
	n := len(out) &^ 7
	if s != simdAVX2 || p == nil || n == 0 {
		return 0
	}
	_, _ = a[n-1], b[n-1]
	v := 0
	if signed {
		v |= 1
	}
	if sub {
		v |= 2
	}
	addRequantAVX2(&a[0], &b[0], &out[0], n, v, p)
	return n
}

//go:noescape
func lookupAVX2(in, out *byte, n int, tab *[16][32]byte)

//go:noescape
func maxRowsAVX2(dst *byte, dstStride int, src *byte, srcStride, n, count, signed int)

// lookupBytes maps bytes through a 256-entry table (see lookupGo); tab is the
// table in lookupAVX2's layout.
func lookupBytes(s simdKind, in, out []byte, lut *[256]uint8, tab *[16][32]byte) {
	n := len(in) &^ 31
	if s == simdAVX2 && n > 0 && tab != nil {
		_ = out[n-1]
		lookupAVX2(&in[0], &out[0], n, tab)
		in, out = in[n:], out[n:]
	}
	lookupUint8(in, out, lut)
}

// maxRows is maxRowsGo with SIMD where it has it.
func maxRows(s simdKind, dst []byte, dstStride int, src []byte, srcStride, n, count int, signed bool) {
	if s == simdAVX2 && n >= 32 && count > 0 {
		_ = dst[(count-1)*dstStride+n-1]
		_ = src[(count-1)*srcStride+n-1]
		sg := 0
		if signed {
			sg = 1
		}
		maxRowsAVX2(&dst[0], dstStride, &src[0], srcStride, n, count, sg)
		return
	}
	maxRowsGo(dst, dstStride, src, srcStride, n, count, signed)
}

// useDot reports whether int8 filters are packed for a dot-product
// micro-kernel (none on this architecture).
func useDot(simdKind) bool { return false }
