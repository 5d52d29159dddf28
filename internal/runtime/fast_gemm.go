package runtime

import (
	"github.com/edged/edged/internal/quantize"
)

// Building blocks of the optimized int8/uint8 kernels (CONV_2D,
// DEPTHWISE_CONV_2D, FULLY_CONNECTED). They compute exactly what the
// reference kernels compute, in another order:
//
//   - The reference accumulates Σ (w + filterOffset)·(x + inputOffset) in
//     int32 over the taps that fall inside the input. The optimized kernels
//     keep the activations as they are stored (widened to int16), fill the
//     taps outside the input with the input's zero point (so x + inputOffset
//     is 0 there, as if the tap were skipped), and fold inputOffset·Σw' into
//     the bias once in Prepare, w' = w + filterOffset. int32 addition wraps,
//     so any order of the same terms gives the same bits.
//   - Products are int16·int16 summed in pairs into int32 (x86 VPMADDWD, ARM
//     SMLAL): |x| ≤ 255 and |w'| ≤ 255, so a pair is at most 130050 in
//     magnitude and never overflows; the int32 sums wrap as the reference's.
//   - Requantization is MultiplyByQuantizedMultiplier with precomputed
//     per-channel shifts and rounding masks.

const (
	gemmNR = 16 // output channels per packed block
	gemmMR = 4  // rows (output pixels) per micro-kernel call
)

// simdKind names the micro-kernels in use.
type simdKind int

const (
	simdNone simdKind = iota // pure Go
	simdAVX2
	simdNEON
	simdNEONDot
	simdNEON32 // 32-bit ARM NEON
)

func (s simdKind) String() string {
	switch s {
	case simdAVX2:
		return "avx2"
	case simdNEON:
		return "neon"
	case simdNEONDot:
		return "neon+dotprod"
	case simdNEON32:
		return "neon (armv7)"
	}
	return "go"
}

// cpuSIMD is the best micro-kernel family this CPU runs.
var cpuSIMD = detectSIMD()

// KernelBackend names the optimized kernels' instruction set on this CPU
// ("avx2", "neon", "neon+dotprod" or "go").
func KernelBackend() string { return cpuSIMD.String() }

// packedFilter is a filter of n output channels over a depth of k (taps ×
// input channels) laid out for the int16 micro-kernel: blocks of 16 output
// channels, each [kp/2 pairs][16 channels][2] int16 (pairs of consecutive
// depth positions, kp = k rounded up to even, zero-padded), and the bias
// with the zero-point correction folded in, padded to whole blocks. For
// the dot-product micro-kernel (int8 filters on arm64 with dotprod), wDot
// holds the same filter as int8 instead, kp rounded up to 16, each block
// [kp/16 chunks][4 groups of 4 depth positions][4 quads of channels][4
// channels][4 depth positions], as gemmDotNEON reads it.
type packedFilter struct {
	n, k, kp, nb int
	w            []int16
	wDot         []int8
	bias         []int32
}

// packFilter packs rows of w (n rows of k, row o at o*k) with filterOffset
// added, and folds bias and inputOffset·Σw' into the per-channel bias; dot
// selects the dot-product layout (int8 weights only).
func packFilter[W int8 | uint8](w []W, n, k int, filterOffset, inputOffset int32, bias []int32, dot bool) *packedFilter {
	kp := k + k%2
	if dot {
		kp = (k + 15) / 16 * 16
	}
	nb := (n + gemmNR - 1) / gemmNR
	p := &packedFilter{n: n, k: k, kp: kp, nb: nb, bias: make([]int32, nb*gemmNR)}
	if dot {
		p.wDot = make([]int8, nb*kp*gemmNR)
	} else {
		p.w = make([]int16, nb*kp*gemmNR)
	}
	for o := range n {
		row := w[o*k : o*k+k]
		var sum int32
		b, j := o/gemmNR, o%gemmNR
		for d, v := range row {
			wv := int32(v) + filterOffset
			sum += wv
			if dot {
				// block b, chunk d/16, group d%16/4, quad j/4, channel j%4, depth d%4
				p.wDot[b*kp*gemmNR+(d/16)*256+(d%16/4)*64+(j/4)*16+(j%4)*4+d%4] = int8(wv)
			} else {
				p.w[b*kp*gemmNR+(d/2)*2*gemmNR+2*j+d%2] = int16(wv)
			}
		}
		if bias != nil {
			p.bias[o] = bias[o]
		}
		p.bias[o] += sum * inputOffset
	}
	return p
}

// view is the part of p from block b0 to b1.
func (p *packedFilter) view(b0, b1 int) *packedFilter {
	v := &packedFilter{n: p.n, k: p.k, kp: p.kp, nb: b1 - b0, bias: p.bias[b0*gemmNR : b1*gemmNR]}
	if p.wDot != nil {
		v.wDot = p.wDot[b0*p.kp*gemmNR : b1*p.kp*gemmNR]
	} else {
		v.w = p.w[b0*p.kp*gemmNR : b1*p.kp*gemmNR]
	}
	return v
}

// gemmGo is the pure-Go micro-kernel: for tiles × gemmMR rows of a (row m
// at m*kp) and every block b of p: acc[m*accStride + b*16 + j] =
// bias[b*16+j] + Σ_d a[m][d]·w'[b*16+j][d].
func gemmGo(a []int16, p *packedFilter, acc []int32, accStride, tiles int) {
	kp, np := p.kp, p.kp/2
	for b := range p.nb {
		wb := p.w[b*kp*gemmNR : (b+1)*kp*gemmNR]
		for m := range tiles * gemmMR {
			row := a[m*kp : m*kp+kp]
			var s [gemmNR]int32
			copy(s[:], p.bias[b*gemmNR:])
			for q := range np {
				a0, a1 := int32(row[2*q]), int32(row[2*q+1])
				ww := wb[q*2*gemmNR : q*2*gemmNR+2*gemmNR]
				for j := range gemmNR {
					s[j] += a0*int32(ww[2*j]) + a1*int32(ww[2*j+1])
				}
			}
			copy(acc[m*accStride+b*gemmNR:], s[:])
		}
	}
}

// requantParams is the per-channel requantization of an int32 accumulator
// to an 8-bit output, padded to whole blocks of 16 channels:
// clamp(RoundingDivideByPOT(SRDHM(acc << lsh, sig), rsh) + zp, lo, hi).
type requantParams struct {
	sig, lsh, rsh, mask, thr []int32
	zp, lo, hi               int32
	shifts                   int // 1 if any lsh is not 0
}

func newRequantParams(mult []quantize.Multiplier, zp, lo, hi int32) *requantParams {
	n := (len(mult) + gemmNR - 1) / gemmNR * gemmNR
	r := &requantParams{sig: make([]int32, n), lsh: make([]int32, n), rsh: make([]int32, n),
		mask: make([]int32, n), thr: make([]int32, n), zp: zp, lo: lo, hi: hi}
	for c, m := range mult {
		r.sig[c] = m.Significand
		if m.Shift > 0 {
			r.lsh[c] = int32(m.Shift)
			r.shifts = 1
		} else {
			r.rsh[c] = int32(-m.Shift)
		}
		r.mask[c] = int32((int64(1) << r.rsh[c]) - 1)
		r.thr[c] = r.mask[c] >> 1
	}
	return r
}

// requantRowsGo writes channels c0..n of rows pixels from acc through
// requantGo: all of them without SIMD, the tail a vector kernel leaves.
func requantRowsGo(acc []int32, accStride int, r *requantParams, c0 int, out []byte, outStride, n, rows int) {
	for m := range rows {
		requantGo(acc[m*accStride+c0:m*accStride+n], r, c0, out[m*outStride+c0:m*outStride+n])
	}
}

// requantGo writes len(out) channels, starting at channel c0, of one output
// pixel from acc.
func requantGo(acc []int32, r *requantParams, c0 int, out []byte) {
	n := len(out)
	acc = acc[:n]
	sig, lsh, rsh, mask, thr := r.sig[c0:c0+n], r.lsh[c0:c0+n], r.rsh[c0:c0+n], r.mask[c0:c0+n], r.thr[c0:c0+n]
	for c, a := range acc {
		out[c] = byte(requantOne(a, sig[c], lsh[c], rsh[c], mask[c], thr[c], r.zp, r.lo, r.hi))
	}
}

// requantOne is MultiplyByQuantizedMultiplier (double rounding) plus the
// output offset and clamp. The significand is never MinInt32, so the
// saturating high multiply cannot saturate, and its rounding, nudging
// toward zero and truncating, equals floor((a·b + 2^30) / 2^31).
func requantOne(a, sig, lsh, rsh, mask, thr, zp, lo, hi int32) int32 {
	x := a << uint(lsh)
	v := int32((int64(x)*int64(sig) + 1<<30) >> 31)
	rem := v & mask
	t := thr
	if v < 0 {
		t++
	}
	v >>= uint(rsh)
	if rem > t {
		v++
	}
	v += zp
	if v < lo {
		v = lo
	}
	if v > hi {
		v = hi
	}
	return v
}

// widenGo converts 8-bit values to int16 (sign- or zero-extending).
func widenGo(dst []int16, src []byte, signed bool) {
	dst = dst[:len(src)]
	if signed {
		for i, v := range src {
			dst[i] = int16(int8(v))
		}
		return
	}
	for i, v := range src {
		dst[i] = int16(v)
	}
}

// int16View and int32View reinterpret aligned workspace bytes.
func int16View(b []byte) []int16 { return view[int16](b) }
func int32View(b []byte) []int32 { return view[int32](b) }
