package runtime

import (
	"fmt"
	"math/bits"

	"github.com/edged/edged/internal/quantize"
	"github.com/edged/edged/internal/runtime/tflite"
)

// MEAN and SUM over the axes a constant int32 input lists, with keep_dims.
//
// int8 and int16 follow TFLM (micro/kernels/reduce_common.cc): every case,
// the 4-D mean over height and width included, goes through
// reference_ops::QuantizedMeanOrSum, which sums in int32, subtracts the input
// zero point times the element count and rescales by input/output scale, the
// mean folding 1/count into that multiplier. uint8, which TFLM lacks, goes
// through the same function as full TensorFlow Lite's reference kernels call
// it (there an empty axis list copies the input unchanged). float32 sums in
// float in input order and divides by the count, as TFLM's reference Mean
// and ReduceGeneric do (its special 4-D height/width mean adds in the same
// order, so it gives the same bits). SUM also takes int32, summed with
// wrap-around as TensorFlow Lite's reference ReduceGeneric does.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorMEAN, MaxVersion: 3, New: func() Kernel { return &reduce{mean: true} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorSUM, MaxVersion: 2, New: func() Kernel { return &reduce{} }})
}

type reduce struct {
	mean          bool
	input, output *Tensor

	// outStrides are the output's element strides along the input's
	// dimensions, 0 along reduced ones; iter is the Eval-time input
	// position, allocated once.
	outStrides []int
	iter       []int
	numOut     int
	count      int64 // input elements per output element

	// Quantized: the int32 sums live in scratch; mult rescales them (with
	// 1/count folded in for MEAN).
	sums          *Scratch
	mult          quantize.Multiplier
	inZP, outZP   int32
	copyOnly      bool // uint8 with no axes: TensorFlow Lite copies
	reduceNothing bool // an input with no elements
}

func (k *reduce) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(2, 2, 1); err != nil {
		return err
	}
	var opts tflite.ReducerOptions
	if err := c.Options(tflite.BuiltinOptionsReducerOptions, &opts); err != nil {
		return err
	}
	k.input, k.output = c.Input(0), c.Output(0)
	in, out, axisT := k.input, k.output, c.Input(1)
	if err := sameTypes(in, out); err != nil {
		return err
	}
	if axisT.Type != Int32 {
		return fmt.Errorf("axis %s must be int32, is %s", axisT, axisT.Type)
	}
	if !axisT.Const {
		return fmt.Errorf("axis %s must be a constant tensor", axisT)
	}
	rank := len(in.Shape)
	reduced := make([]bool, rank)
	axes := axisT.Int32s()[:axisT.NumElements()]
	if rank > 0 {
		for _, a := range axes {
			ra := int(a)
			if ra < 0 {
				ra += rank
			}
			if ra < 0 || ra >= rank {
				return fmt.Errorf("axis %d is out of range for input %s", a, in)
			}
			reduced[ra] = true
		}
	}

	var outShape []int
	k.count = 1
	for d, n := range in.Shape {
		switch {
		case !reduced[d]:
			outShape = append(outShape, n)
		case opts.KeepDims():
			outShape = append(outShape, 1)
		}
		if reduced[d] {
			k.count *= int64(n)
		}
	}
	if outShape == nil {
		outShape = []int{}
	}
	if err := c.SetOutputShape(0, outShape); err != nil {
		return err
	}
	k.numOut = NumElements(outShape)
	k.outStrides = make([]int, rank)
	k.iter = make([]int, rank)
	stride := 1
	for d := rank - 1; d >= 0; d-- {
		if !reduced[d] {
			k.outStrides[d] = stride
			stride *= in.Shape[d]
		}
	}
	k.reduceNothing = in.NumElements() == 0

	switch in.Type {
	case Float32:
		return nil
	case Int32:
		if k.mean {
			return UnsupportedTypes("input", in.Type)
		}
		return nil
	case Int8, Int16, Uint8:
	default:
		return UnsupportedTypes("input", in.Type)
	}
	if err := actQuantized("input", in); err != nil {
		return err
	}
	if err := actQuantized("output", out); err != nil {
		return err
	}
	k.inZP, k.outZP = in.ZeroPoint(), out.ZeroPoint()
	k.copyOnly = in.Type == Uint8 && len(axes) == 0
	m, err := quantize.CheckedMultiplier(float64(in.Scale()) / float64(out.Scale()))
	if err != nil {
		return fmt.Errorf("input scale / output scale: %w", err)
	}
	if k.mean && k.count > 0 {
		m = reduceMeanMultiplier(m, k.count)
	}
	k.mult = m
	k.sums = c.RequestScratch(4 * k.numOut)
	return nil
}

// reduceMeanMultiplier folds 1/count into the multiplier as
// QuantizedMeanOrSum does: shift the significand left by floor(log2 count)
// (at most 32, and keeping the total shift >= -31), divide it by count
// (truncating) and take the shift back out of the exponent.
func reduceMeanMultiplier(m quantize.Multiplier, count int64) quantize.Multiplier {
	shift := 63 - bits.LeadingZeros64(uint64(count))
	shift = min(shift, 32)
	shift = min(shift, 31+m.Shift)
	return quantize.Multiplier{
		Significand: int32((int64(m.Significand) << shift) / count),
		Shift:       m.Shift - shift,
	}
}

func (k *reduce) Eval() error {
	switch k.input.Type {
	case Float32:
		in, out := k.input.Float32s(), k.output.Float32s()
		if k.mean {
			reduceMeanFloat(k, in, out)
		} else {
			reduceSum(k, in, out)
		}
	case Int32:
		reduceSum(k, k.input.Int32s(), k.output.Int32s())
	case Int8:
		reduceQuantized(k, k.input.Int8s(), k.output.Int8s())
	case Uint8:
		if k.copyOnly {
			copy(k.output.Uint8s(), k.input.Uint8s())
			return nil
		}
		reduceQuantized(k, k.input.Uint8s(), k.output.Uint8s())
	case Int16:
		reduceQuantized(k, k.input.Int16s(), k.output.Int16s())
	}
	return nil
}

// reduceSum is the reference sum: acc starts at zero and every input element,
// in row-major order, is added to the output element it reduces into (Reduce
// with ReduceSumImpl or ReduceGeneric's in + current); int32 wraps around.
func reduceSum[In int8 | uint8 | int16 | int32 | float32, Acc int32 | float32](k *reduce, in []In, acc []Acc) {
	clear(acc[:k.numOut])
	if k.reduceNothing {
		return
	}
	clear(k.iter)
	shape := k.input.Shape
	o := 0
	for _, x := range in {
		acc[o] = Acc(x) + acc[o]
		o = actStridedNext(k.iter, shape, k.outStrides, o)
	}
}

// reduceMeanFloat is TFLM's float Mean: the float sum divided by the element
// count in float.
func reduceMeanFloat(k *reduce, in, out []float32) {
	reduceSum(k, in, out)
	if k.reduceNothing || k.count == 0 {
		return
	}
	n := float32(k.count)
	for i := range out[:k.numOut] {
		out[i] /= n
	}
}

// reduceQuantized is reference_ops::QuantizedMeanOrSum: the int32 sum minus
// zero point × count (in 64 bits, truncated to 32), rescaled by the
// multiplier, plus the output zero point, clamped. An empty input leaves
// zeros.
func reduceQuantized[T int8 | uint8 | int16](k *reduce, in, out []T) {
	out = out[:k.numOut]
	if k.reduceNothing {
		clear(out)
		return
	}
	sums := view[int32](k.sums.Bytes)[:k.numOut]
	reduceSum(k, in, sums)
	qmin, qmax := actRange(k.input.Type)
	zpTimesCount := int64(k.inZP) * k.count
	m := k.mult
	for i, s := range sums {
		shifted := int32(int64(s) - zpTimesCount)
		v := quantize.MultiplyByQuantizedMultiplier(shifted, m.Significand, m.Shift) + k.outZP
		out[i] = T(clampInt32(v, qmin, qmax))
	}
}
