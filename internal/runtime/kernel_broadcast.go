package runtime

import (
	"fmt"
	"math"

	"github.com/edged/edged/internal/quantize"
	"github.com/edged/edged/internal/runtime/tflite"
)

// Broadcasting for element-wise binary operators (ADD, SUB, MUL, DIV,
// MINIMUM, ...), as TensorFlow Lite's CalculateShapeForBroadcast and its
// N-d slow broadcast loops (NdArrayDesc, BroadcastBinaryOpSimple): the
// shorter shape is padded with leading 1s, and along every dimension the
// extents agree or one of them is 1. Element-wise results do not depend on
// the order the output is visited in, so the walk below is free to merge
// dimensions; every output element gets op(input1[i], input2[j]) for the
// same i and j as in TensorFlow Lite.

// broadcastMaxDims is the largest rank the broadcasting kernels accept when
// the input shapes differ (TensorFlow Lite's 6-D slow broadcast paths).
// Inputs of equal shape are walked flat and may have any rank.
const broadcastMaxDims = 6

// broadcastShapes returns the shape inputs of shapes a and b broadcast to.
func broadcastShapes(a, b []int) ([]int, error) {
	rank := max(len(a), len(b))
	out := make([]int, rank)
	for i := range rank {
		da, db := 1, 1
		if j := i - (rank - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (rank - len(b)); j >= 0 {
			db = b[j]
		}
		switch {
		case da == db, db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, fmt.Errorf("shapes %s and %s cannot be broadcast (dimension %d: %d vs %d)", FormatShape(a), FormatShape(b), i, da, db)
		}
	}
	return out, nil
}

// binaryBroadcast is a precomputed walk over the output of an element-wise
// binary operator. Dimensions where the output extent is 1 are dropped and
// neighbouring dimensions that both inputs traverse the same way (both
// contiguous, or both broadcast) are merged, so the innermost loop is as
// long as possible. Each input's innermost stride is 0 (broadcast) or 1.
type binaryBroadcast struct {
	n    int // output elements
	dims int // merged dimensions, outermost first; 0 for a scalar output
	// extent, and each operand's stride along it (0 when broadcast).
	extent   [broadcastMaxDims]int
	strideA  [broadcastMaxDims]int
	strideB  [broadcastMaxDims]int
	strideO  [broadcastMaxDims]int
	flatSame bool // a, b and the output have the same number of elements
}

// newBinaryBroadcast plans the walk for inputs of shapes a and b into an
// output of shape out (as broadcastShapes computes it).
func newBinaryBroadcast(a, b, out []int) (binaryBroadcast, error) {
	bc := binaryBroadcast{n: NumElements(out)}
	if NumElements(a) == bc.n && NumElements(b) == bc.n {
		// Equal shapes (up to leading 1s): one flat loop.
		bc.flatSame = true
		if bc.n > 0 {
			bc.dims = 1
			bc.extent[0], bc.strideA[0], bc.strideB[0], bc.strideO[0] = bc.n, 1, 1, 1
		}
		return bc, nil
	}
	if len(out) > broadcastMaxDims {
		return bc, fmt.Errorf("broadcasting %s with %s: at most %d dimensions are supported", FormatShape(a), FormatShape(b), broadcastMaxDims)
	}
	if bc.n == 0 {
		return bc, nil
	}
	rank := len(out)
	// Merged dimensions, collected innermost first.
	type dim struct {
		extent         int
		bcastA, bcastB bool
	}
	var merged [broadcastMaxDims]dim
	nd := 0
	for i := rank - 1; i >= 0; i-- {
		e := out[i]
		if e == 1 {
			continue
		}
		da, db := 1, 1
		if j := i - (rank - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (rank - len(b)); j >= 0 {
			db = b[j]
		}
		ba, bb := da == 1, db == 1
		if nd > 0 && merged[nd-1].bcastA == ba && merged[nd-1].bcastB == bb {
			merged[nd-1].extent *= e
			continue
		}
		merged[nd] = dim{extent: e, bcastA: ba, bcastB: bb}
		nd++
	}
	accA, accB, accO := 1, 1, 1
	bc.dims = nd
	for k := range nd {
		d := merged[k]
		pos := nd - 1 - k // outermost first
		bc.extent[pos] = d.extent
		bc.strideO[pos] = accO
		accO *= d.extent
		if !d.bcastA {
			bc.strideA[pos] = accA
			accA *= d.extent
		}
		if !d.bcastB {
			bc.strideB[pos] = accB
			accB *= d.extent
		}
	}
	return bc, nil
}

// rows calls row once per innermost run of the output: out[o+i] for i in
// [0, n) takes a[ia+i*sa] and b[ib+i*sb], with sa and sb 0 or 1. The
// output is visited in order, so o grows by n from one call to the next.
func (bc *binaryBroadcast) rows(row func(ia, sa, ib, sb, o, n int)) {
	if bc.n == 0 {
		return
	}
	if bc.dims == 0 { // every dimension is 1: a single element
		row(0, 0, 0, 0, 0, 1)
		return
	}
	last := bc.dims - 1
	n, sa, sb := bc.extent[last], bc.strideA[last], bc.strideB[last]
	if last == 0 {
		row(0, sa, 0, sb, 0, n)
		return
	}
	var idx [broadcastMaxDims]int
	ia, ib, o := 0, 0, 0
	for {
		row(ia, sa, ib, sb, o, n)
		o += n
		// Advance the outer index, odometer style.
		d := last - 1
		for ; d >= 0; d-- {
			idx[d]++
			ia += bc.strideA[d]
			ib += bc.strideB[d]
			if idx[d] < bc.extent[d] {
				break
			}
			ia -= bc.strideA[d] * bc.extent[d]
			ib -= bc.strideB[d] * bc.extent[d]
			idx[d] = 0
		}
		if d < 0 {
			return
		}
	}
}

// elemBinary holds what every broadcasting binary kernel shares: its
// tensors and the planned walk.
type elemBinary struct {
	in1, in2, out *Tensor
	bc            binaryBroadcast
}

// prepareBinary checks a two-input, one-output element-wise operator whose
// inputs and output share one type, sets the broadcast output shape and
// plans the walk.
func (e *elemBinary) prepareBinary(c *PrepareContext) error {
	if err := c.ExpectIO(2, 2, 1); err != nil {
		return err
	}
	e.in1, e.in2, e.out = c.Input(0), c.Input(1), c.Output(0)
	if err := sameTypes(e.in1, e.in2, e.out); err != nil {
		return err
	}
	shape, err := broadcastShapes(e.in1.Shape, e.in2.Shape)
	if err != nil {
		return err
	}
	if err := c.SetOutputShape(0, shape); err != nil {
		return err
	}
	e.bc, err = newBinaryBroadcast(e.in1.Shape, e.in2.Shape, e.out.Shape)
	return err
}

// checkElemQuant checks that the tensors carry usable per-tensor
// quantization: a finite positive scale and a zero point in the type's
// range.
func checkElemQuant(ts ...*Tensor) error {
	for _, t := range ts {
		if err := requireQuantized("tensor", t); err != nil {
			return err
		}
		if s := t.Scale(); !(s > 0) || math.IsInf(float64(s), 0) {
			return fmt.Errorf("tensor %s has scale %g; it must be finite and positive", t, s)
		}
		if err := checkZeroPointRange("tensor", t); err != nil {
			return err
		}
	}
	return nil
}

// elemMultiplier quantizes a requantization factor as TensorFlow Lite's
// QuantizeMultiplier does. A factor of 2^31 or more, which only absurd
// quantization parameters give (it appears in real uint8 models on tensors
// whose values are then discarded), keeps the shift C++ ends up using: its
// `1 << shift` takes the shift count modulo 32 on x86-64 and AArch64.
func elemMultiplier(what string, m float64) (quantize.Multiplier, error) {
	if math.IsNaN(m) || math.IsInf(m, 0) || m < 0 {
		return quantize.Multiplier{}, fmt.Errorf("%s factor %g is not a finite non-negative number", what, m)
	}
	q := quantize.QuantizeMultiplier(m)
	if q.Shift > 31 {
		q.Shift &= 31
	}
	return q, nil
}

// elemSmallMultiplier is QuantizeMultiplierSmallerThanOneExp: the factor
// must lie in (0, 1), else TensorFlow Lite aborts.
func elemSmallMultiplier(what string, m float64) (quantize.Multiplier, error) {
	if !(m > 0 && m < 1) {
		return quantize.Multiplier{}, fmt.Errorf("%s factor %g must lie in (0, 1)", what, m)
	}
	q := quantize.QuantizeMultiplier(m)
	if q.Shift > 0 {
		return quantize.Multiplier{}, fmt.Errorf("%s factor %g rounds to 1 or more", what, m)
	}
	return q, nil
}

// elemIntActivation is CalculateActivationRange for integer outputs that
// are not quantized (int32, int64), given the type's range.
func elemIntActivation(act tflite.ActivationFunctionType, lowest, highest int64) (lo, hi int64, err error) {
	switch act {
	case tflite.ActivationFunctionTypeNONE:
		return lowest, highest, nil
	case tflite.ActivationFunctionTypeRELU:
		return 0, highest, nil
	case tflite.ActivationFunctionTypeRELU_N1_TO_1:
		return -1, 1, nil
	case tflite.ActivationFunctionTypeRELU6:
		return 0, 6, nil
	}
	return 0, 0, fmt.Errorf("fused activation %s is not supported", tflite.EnumNamesActivationFunctionType[act])
}

// elemRoundingDivideByPOT is gemmlowp's RoundingDivideByPOT for any
// exponent, computing what TensorFlow Lite's C++ computes when reference
// kernels call it outside [0, 31] (DIV with a small quotient, SUB with an
// output factor above 1): the mask's 64-bit shift takes its count modulo
// 64 and the 32-bit arithmetic right shift modulo 32, as on x86-64 and
// AArch64. Within [0, 31] it is the ordinary rounding right shift.
func elemRoundingDivideByPOT(x int32, exponent int) int32 {
	mask := int32((int64(1) << (uint(exponent) & 63)) - 1)
	remainder := x & mask
	threshold := mask >> 1
	if x < 0 {
		threshold++
	}
	result := x >> (uint(exponent) & 31)
	if remainder > threshold {
		result++
	}
	return result
}
