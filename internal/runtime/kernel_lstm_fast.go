package runtime

import (
	"math"
	"unsafe"

	"github.com/edged/edged/internal/quantize"
)

// lstmFast runs an int8 LSTM's gate matmuls (input and recurrent fully
// connected parts into the Q3.12 pre-activation) with the packed-filter
// micro-kernel: the reference's int32 accumulation with the zero points
// folded into the bias, TFLite's requantization, clamped to int16.
type lstmFast struct {
	k    *lstm
	simd simdKind
	a    []int16 // gemmMR rows of the widened input
	acc  []int32
}

func (k *lstm) prepareFast(c *PrepareContext) {
	if !c.Optimized() || k.input.Type != Int8 {
		return
	}
	f := &lstmFast{k: k, simd: c.simd()}
	kp, nb := 0, 0
	for g := range k.gates {
		gt := &k.gates[g]
		gt.fastIn = packFilter(gt.inputWeights.Int8s(), k.cells, k.inputs, gt.inputFC.filterOffset, gt.inputFC.inputOffset, gt.bias.Int32s(), false)
		gt.fastRec = packFilter(gt.recurrentWeights.Int8s(), k.cells, k.cells, gt.recurrentFC.filterOffset, gt.recurrentFC.inputOffset, nil, false)
		mult := func(m quantize.Multiplier) []quantize.Multiplier {
			ms := make([]quantize.Multiplier, k.cells)
			for i := range ms {
				ms[i] = m
			}
			return ms
		}
		gt.rqIn = newRequantParams(mult(gt.inputFC.mult), 0, math.MinInt16, math.MaxInt16)
		gt.rqRec = newRequantParams(mult(gt.recurrentFC.mult), 0, math.MinInt16, math.MaxInt16)
		kp = max(kp, gt.fastIn.kp, gt.fastRec.kp)
		nb = max(nb, gt.fastIn.nb)
	}
	f.a = make([]int16, gemmMR*kp)
	f.acc = make([]int32, gemmMR*nb*gemmNR)
	k.fast = f
}

// gate computes out = FC(in) and scratch = FC(hidden) of gate g, in and
// hidden being int8 activations' bytes (lstmFast runs for int8 only).
func (f *lstmFast) gate(g *lstmGate, in, hidden []byte, rows int, out, scratch []int16) {
	f.fc(g.fastIn, g.rqIn, in, rows, out)
	f.fc(g.fastRec, g.rqRec, hidden, rows, scratch)
}

func (f *lstmFast) fc(p *packedFilter, r *requantParams, in []byte, rows int, out []int16) {
	units, depth, stride := p.n, p.k, p.nb*gemmNR
	for r0 := 0; r0 < rows; r0 += gemmMR {
		n := min(gemmMR, rows-r0)
		for m := range n {
			widen(f.simd, f.a[m*p.kp:m*p.kp+depth], in[(r0+m)*depth:(r0+m+1)*depth], true)
		}
		gemm(f.simd, f.a[:gemmMR*p.kp], p, f.acc, stride, 1)
		for m := range n {
			o := out[(r0+m)*units : (r0+m+1)*units]
			acc := f.acc[m*stride : m*stride+units]
			for u, a := range acc {
				o[u] = int16(requantOne(a, r.sig[u], r.lsh[u], r.rsh[u], r.mask[u], r.thr[u], 0, math.MinInt16, math.MaxInt16))
			}
		}
	}
}

// lstmBytes is the bytes of a slice of int8 or int16 values.
func lstmBytes[T int8 | int16](s []T) []byte {
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(zero)))
}
