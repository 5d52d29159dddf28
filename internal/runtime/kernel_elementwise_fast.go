package runtime

import (
	"math"

	"github.com/edged/edged/internal/quantize"
)

// Optimized int8/uint8 ADD, SUB, MUL and SOFTMAX. Each computes what its
// reference kernel computes, with the per-value work done once in Prepare:
//
//   - ADD/SUB: an input's rescaled value, RoundingDivideByPOT(SRDHM((x +
//     offset) << leftShift, M), s), depends on its 8-bit value alone: two
//     256-entry tables, then the reference's output rescaling.
//   - MUL: the reference arithmetic with the requantization inlined
//     (requantOne, exact for the multipliers QuantizeMultiplier makes).
//   - SOFTMAX: the exponential of a difference from the row maximum depends
//     on the difference alone, at most 256 values: a table.

// addSubTables returns the two inputs' rescaled values for every byte.
func addSubTables[T int8 | uint8](q *addSubQuant) (ta, tb *[256]int32) {
	ta, tb = new([256]int32), new([256]int32)
	scale := int32(1) << q.leftShift
	for i := range 256 {
		v := int32(T(i))
		x := (q.in1Offset + v) * scale
		y := (q.in2Offset + v) * scale
		ta[i] = quantize.RoundingDivideByPOT(quantize.SaturatingRoundingDoublingHighMul(x, q.in1Mult.Significand), -q.in1Mult.Shift)
		tb[i] = quantize.RoundingDivideByPOT(quantize.SaturatingRoundingDoublingHighMul(y, q.in2Mult.Significand), -q.in2Mult.Shift)
	}
	return ta, tb
}

// prepareFast chooses the table kernel for 8-bit ADD/SUB.
func (k *addSub) prepareFast(c *PrepareContext) {
	if !c.Optimized() {
		return
	}
	switch k.out.Type {
	case Int8:
		k.ta, k.tb = addSubTables[int8](&k.q)
	case Uint8:
		k.ta, k.tb = addSubTables[uint8](&k.q)
	default:
		return
	}
	k.simd, k.simdParams = c.simd(), newAddParams(&k.q)
	if k.bc.flatSame {
		k.par = newParallelRange(c.pool(), k.bc.n, func(lo, hi int) {
			addSubFlat(k, k.in1.Uint8s()[lo:hi], k.in2.Uint8s()[lo:hi], k.out.Uint8s()[lo:hi])
		})
	}
}

// addSubTable is the optimized 8-bit ADD/SUB over the inputs' bytes: the
// SIMD row kernel where both rows are contiguous, the tables elsewhere;
// inputs of one shape are split across threads.
func addSubTable(k *addSub, a, b, out []byte) {
	if k.par != nil {
		k.par.run()
		return
	}
	k.bc.rows(func(ia, sa, ib, sb, o, n int) {
		if sa == 1 && sb == 1 {
			addSubFlat(k, a[ia:ia+n], b[ib:ib+n], out[o:o+n])
			return
		}
		for i := range n {
			out[o+i] = addSubOne(k, a[ia+i*sa], b[ib+i*sb])
		}
	})
}

// addSubFlat adds or subtracts equal-length rows.
func addSubFlat(k *addSub, a, b, out []byte) {
	done := addRow(k.simd, k.simdParams, a, b, out, k.out.Type == Int8, k.sub)
	for i := done; i < len(out); i++ {
		out[i] = addSubOne(k, a[i], b[i])
	}
}

func addSubOne(k *addSub, va, vb byte) byte {
	q := &k.q
	sx, sy := k.ta[va], k.tb[vb]
	raw := sx + sy
	if k.sub {
		raw = sx - sy
	}
	mo := q.outMult
	v := elemRoundingDivideByPOT(quantize.SaturatingRoundingDoublingHighMul(raw, mo.Significand), -mo.Shift) + q.outOffset
	return byte(clampInt32(v, q.actMin, q.actMax))
}

// prepareFast chooses the inlined kernel for 8-bit MUL when the multiplier
// is one requantOne reproduces (shift in [-31, 30]).
func (k *mulOp) prepareFast(c *PrepareContext) {
	if !c.Optimized() || (k.out.Type != Int8 && k.out.Type != Uint8) || k.mult.Shift > 30 || k.mult.Shift < -31 {
		return
	}
	k.rq = newRequantParams([]quantize.Multiplier{k.mult}, k.outOffset, k.actMin, k.actMax)
	k.simd = c.simd()
	if k.bc.flatSame {
		signed := k.out.Type == Int8
		k.par = newParallelRange(c.pool(), k.bc.n, func(lo, hi int) {
			mulFlat(k, k.in1.Uint8s()[lo:hi], k.in2.Uint8s()[lo:hi], k.out.Uint8s()[lo:hi], signed)
		})
	}
}

// mulFast is the optimized 8-bit MUL over the tensors' bytes: the SIMD
// row kernel where both rows are contiguous, the inlined arithmetic for the
// rest; inputs of one shape are split across threads.
func mulFast(k *mulOp, a, b, out []byte, signed bool) {
	if k.par != nil {
		k.par.run()
		return
	}
	k.bc.rows(func(ia, sa, ib, sb, o, n int) {
		if sa == 1 && sb == 1 {
			mulFlat(k, a[ia:ia+n], b[ib:ib+n], out[o:o+n], signed)
			return
		}
		for i := range n {
			out[o+i] = mulOne(k, a[ia+i*sa], b[ib+i*sb], signed)
		}
	})
}

// mulFlat multiplies equal-length rows.
func mulFlat(k *mulOp, a, b, out []byte, signed bool) {
	done := mulRow(k.simd, a, b, out, signed, k.in1Offset, k.in2Offset, k.rq)
	for i := done; i < len(out); i++ {
		out[i] = mulOne(k, a[i], b[i], signed)
	}
}

func mulOne(k *mulOp, va, vb byte, signed bool) byte {
	r := k.rq
	var x, y int32
	if signed {
		x, y = k.in1Offset+int32(int8(va)), k.in2Offset+int32(int8(vb))
	} else {
		x, y = k.in1Offset+int32(va), k.in2Offset+int32(vb)
	}
	return byte(requantOne(x*y, r.sig[0], r.lsh[0], r.rsh[0], r.mask[0], r.thr[0], r.zp, r.lo, r.hi))
}

// prepareFast tabulates the exponential of every possible difference.
func (k *softmax) prepareFast(c *PrepareContext) {
	if !c.Optimized() || (k.input.Type != Int8 && k.input.Type != Uint8) {
		return
	}
	k.expTable = new([256]int32)
	for d := range 256 {
		diff := -int32(d)
		if diff >= k.diffMin {
			scaled := quantize.MultiplyByQuantizedMultiplierGreaterThanOne(diff, k.inputMult.Significand, k.inputMult.Shift)
			k.expTable[d] = quantize.ExpOnNegativeValues(scaled, softmaxScaledDiffIntegerBits)
		}
	}
	// Many rows: split across threads.
	k.par = newParallelItems(c.pool(), k.outer, k.depth, func(lo, hi int) {
		in, out := k.input.Bytes()[lo*k.depth:hi*k.depth], k.output.Bytes()[lo*k.depth:hi*k.depth]
		if k.input.Type == Int8 {
			softmaxTable(k, view[int8](in), view[int8](out), math.MinInt8, math.MaxInt8, hi-lo)
		} else {
			softmaxTable(k, in, out, 0, math.MaxUint8, hi-lo)
		}
	})
}

// softmaxTable is softmaxQuantized with the exponentials from the table,
// over rows rows of in and out.
func softmaxTable[T int8 | uint8](k *softmax, in, out []T, outMin, outMax int32, rows int) {
	et := k.expTable
	for i := range rows {
		row := in[i*k.depth : (i+1)*k.depth]
		orow := out[i*k.depth : (i+1)*k.depth]
		maxIn := row[0]
		for _, x := range row {
			if x > maxIn {
				maxIn = x
			}
		}
		var sumOfExps int32
		for _, x := range row {
			diff := int32(x) - int32(maxIn)
			if diff >= k.diffMin {
				sumOfExps += quantize.Rescale(et[uint8(-diff)], 0, softmaxAccumIntegerBits)
			}
		}
		shiftedScale, bitsOverUnit := quantize.GetReciprocal(sumOfExps, softmaxAccumIntegerBits)
		exponent := bitsOverUnit + 31 - k.outputBits
		for j, x := range row {
			diff := int32(x) - int32(maxIn)
			if diff < k.diffMin {
				orow[j] = T(outMin)
				continue
			}
			unsat := quantize.RoundingDivideByPOT(quantize.SaturatingRoundingDoublingHighMul(shiftedScale, et[uint8(-diff)]), exponent)
			orow[j] = T(clampInt32(unsat+outMin, outMin, outMax))
		}
	}
}

// lutRows lays a 256-entry table out for the SIMD lookup: 16 rows of 16
// entries, each repeated in both 128-bit lanes.
func lutRows(lut *[256]uint8) *[16][32]byte {
	t := new([16][32]byte)
	for h := range 16 {
		copy(t[h][:16], lut[h*16:h*16+16])
		copy(t[h][16:], lut[h*16:h*16+16])
	}
	return t
}

// prepareFast tabulates an 8-bit to 8-bit requantization: the reference
// kernel's result for each of the 256 inputs.
func (k *quantizeOp) prepareFast(c *PrepareContext) {
	in, out := k.input.Type, k.output.Type
	if !c.Optimized() || !k.requantizing || k.flipSignBit || (in != Int8 && in != Uint8) || (out != Int8 && out != Uint8) {
		return
	}
	var src [256]byte
	for i := range src {
		src[i] = byte(i)
	}
	lut := new([256]uint8)
	saved := [2][]byte{k.input.data, k.output.data}
	k.input.data, k.output.data = src[:], lut[:]
	if in == Int8 {
		quantizeRequantizeFrom(k, k.input.Int8s())
	} else {
		quantizeRequantizeFrom(k, k.input.Uint8s())
	}
	k.input.data, k.output.data = saved[0], saved[1]
	k.lut, k.lutRows, k.simd = lut, lutRows(lut), c.simd()
	k.par = lutParallel(c, k.input, k.output, lut, k.lutRows)
}

// lutParallel splits a large tensor's table lookups across threads (nil
// when it stays whole).
func lutParallel(c *PrepareContext, in, out *Tensor, lut *[256]uint8, rows *[16][32]byte) *parallelRange {
	simd := c.simd()
	return newParallelRange(c.pool(), in.NumElements(), func(lo, hi int) {
		lookupBytes(simd, in.Uint8s()[lo:hi], out.Uint8s()[lo:hi], lut, rows)
	})
}

// lutRun maps in's bytes through the table into out, split across threads
// when par says so.
func lutRun(par *parallelRange, simd simdKind, in, out *Tensor, lut *[256]uint8, rows *[16][32]byte) {
	if par != nil {
		par.run()
		return
	}
	lookupBytes(simd, in.Uint8s(), out.Uint8s(), lut, rows)
}

// maxRowsGo: for count pixels, dst[p·dstStride + i] = max(dst[...],
// src[p·srcStride + i]), i < n, as signed or unsigned bytes.
func maxRowsGo(dst []byte, dstStride int, src []byte, srcStride, n, count int, signed bool) {
	for p := range count {
		d, s := dst[p*dstStride:p*dstStride+n], src[p*srcStride:p*srcStride+n]
		if signed {
			for i, v := range s {
				if int8(v) > int8(d[i]) {
					d[i] = v
				}
			}
			continue
		}
		for i, v := range s {
			if v > d[i] {
				d[i] = v
			}
		}
	}
}

// prepareFast sets up the optimized 8-bit MAX_POOL_2D: input rows padded
// with the type's lowest value (which never wins a maximum, as positions
// outside the input do not count in the reference), the window maximum as
// row-wise maxima over the output row.
func (k *pool2D) prepareFast(c *PrepareContext) {
	if !c.Optimized() || !k.max || (k.input.Type != Int8 && k.input.Type != Uint8) {
		return
	}
	g := &k.g
	rowW := max(g.pad.width+g.inW, (g.outW-1)*g.strideW+g.filterW)
	k.padRow = make([]byte, rowW*g.inDepth)
	k.simd = c.simd()
}

func maxPoolFast(k *pool2D, in, out []byte) {
	g := &k.g
	signed := k.input.Type == Int8
	lowest, typeLo, typeHi := byte(0), int32(0), int32(255)
	if signed {
		lowest, typeLo, typeHi = 0x80, -128, 127
	}
	clamp := k.actMin > typeLo || k.actMax < typeHi
	c := g.inDepth
	row := k.padRow
	padW := g.pad.width
	for i := range row[:padW*c] {
		row[i] = lowest
	}
	for i := range row[(padW+g.inW)*c:] {
		row[(padW+g.inW)*c+i] = lowest
	}
	for b := range g.batches {
		for oy := range g.outH {
			o := out[(b*g.outH+oy)*g.outW*c : (b*g.outH+oy+1)*g.outW*c]
			for i := range o {
				o[i] = lowest
			}
			iy0 := oy*g.strideH - g.pad.height
			for fy := range g.filterH {
				iy := iy0 + fy
				if iy < 0 || iy >= g.inH {
					continue
				}
				copy(row[padW*c:(padW+g.inW)*c], in[(b*g.inH+iy)*g.inW*c:])
				for fx := range g.filterW {
					maxRows(k.simd, o, c, row[fx*c:], g.strideW*c, c, g.outW, signed)
				}
			}
			if clamp {
				for i, v := range o {
					x := int32(v)
					if signed {
						x = int32(int8(v))
					}
					o[i] = byte(clampInt32(x, k.actMin, k.actMax))
				}
			}
		}
	}
}

// padFast is padRef for paddings that leave the innermost dimension alone:
// the two innermost dimensions are whole rows (left fill, the input's
// pixels, right fill), so each row is one copy instead of one per pixel.
func padFast(k *pad, fill []byte) {
	es := k.input.Type.Size()
	in, out := k.input.Bytes(), k.output.Bytes()
	os, l, r := k.outShape, k.left, k.right
	px := os[4] * es // bytes per pixel (innermost dimension)
	row := os[3] * px
	ld, rd := l[3]*px, r[3]*px
	inRow := row - ld - rd
	inPos, outPos := 0, 0
	for b := range os[0] {
		for p := range os[1] {
			for h := range os[2] {
				dst := out[outPos : outPos+row]
				outPos += row
				if b < l[0] || b >= os[0]-r[0] || p < l[1] || p >= os[1]-r[1] || h < l[2] || h >= os[2]-r[2] {
					shapeFill(dst, fill)
					continue
				}
				shapeFill(dst[:ld], fill)
				copy(dst[ld:ld+inRow], in[inPos:inPos+inRow])
				inPos += inRow
				shapeFill(dst[ld+inRow:], fill)
			}
		}
	}
}

// prepareFastAverage sets up the optimized 8-bit AVERAGE_POOL_2D: window
// sums accumulated a whole pixel of channels at a time (no index arithmetic
// per element), then the reference's rounding division and clamp.
func (k *pool2D) prepareFastAverage(c *PrepareContext) {
	if !c.Optimized() || k.max || (k.input.Type != Int8 && k.input.Type != Uint8) {
		return
	}
	k.sums = make([]int32, k.g.inDepth)
}

func averagePoolFast(k *pool2D, in, out []byte) error {
	g := &k.g
	signed := k.input.Type == Int8
	c := g.inDepth
	acc := k.sums[:c]
	for b := range g.batches {
		for oy := range g.outH {
			for ox := range g.outW {
				inY0, inX0, y0, y1, x0, x1 := g.poolWindow(oy, ox)
				if y1 <= y0 || x1 <= x0 {
					return errEmptyPoolWindow
				}
				count := int32((y1 - y0) * (x1 - x0))
				clear(acc)
				for fy := y0; fy < y1; fy++ {
					row := ((b*g.inH+inY0+fy)*g.inW + inX0) * c
					for fx := x0; fx < x1; fx++ {
						px := in[row+fx*c : row+fx*c+c]
						if signed {
							for ch, v := range px {
								acc[ch] += int32(int8(v))
							}
						} else {
							for ch, v := range px {
								acc[ch] += int32(v)
							}
						}
					}
				}
				o := out[((b*g.outH+oy)*g.outW+ox)*c:][:c]
				for ch, a := range acc {
					o[ch] = byte(clampInt32(poolAverage(a, count), k.actMin, k.actMax))
				}
			}
		}
	}
	return nil
}
