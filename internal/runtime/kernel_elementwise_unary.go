package runtime

import (
	"errors"
	"fmt"
	"math"

	"github.com/edged/edged/internal/quantize"
	"github.com/edged/edged/internal/runtime/tflite"
)

// Elementwise unary math: FLOOR, SQRT and RSQRT on float32 (TFLM's floor.cc
// and elementwise.cc: std::floor, std::sqrt, 1.f / std::sqrt), and RSQRT on
// int8 as TFLM's elementwise.cc computes it: the integer difference from the
// zero point through GetInvSqrtQuantizedMultiplierExp, then one rescale by
// 1 / (sqrt(input_scale) * output_scale).

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorFLOOR, MaxVersion: 1, New: func() Kernel { return &unaryMath{op: unaryFloor} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorSQRT, MaxVersion: 2, New: func() Kernel { return &unaryMath{op: unarySqrt} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorRSQRT, MaxVersion: 3, New: func() Kernel { return &unaryMath{op: unaryRsqrt} }})
}

type unaryOp int

const (
	unaryFloor unaryOp = iota
	unarySqrt
	unaryRsqrt
)

// unaryRsqrtShift keeps the intermediate 1/sqrt(x) an integer: it is
// computed times 2^20 and the final rescale divides that back out.
const unaryRsqrtShift = 20

// errRsqrtNegative is returned by Eval for an int8 RSQRT input below the
// zero point, which TFLM rejects the same way.
var errRsqrtNegative = errors.New("RSQRT is only defined for non-negative values")

type unaryMath struct {
	op            unaryOp
	input, output *Tensor

	inZP, outZP int32
	mult        quantize.Multiplier
}

func (k *unaryMath) Prepare(c *PrepareContext) error {
	in, out, err := actPrepareUnary(c)
	if err != nil {
		return err
	}
	k.input, k.output = in, out
	if in.Type == Float32 {
		return nil
	}
	if k.op != unaryRsqrt || in.Type != Int8 {
		return UnsupportedTypes("input", in.Type)
	}
	if err := actQuantized("input", in); err != nil {
		return err
	}
	if err := actQuantized("output", out); err != nil {
		return err
	}
	k.inZP, k.outZP = in.ZeroPoint(), out.ZeroPoint()
	// SetRsqrtOutputMultiplier: std::sqrt and the product in float, the
	// reciprocal in double.
	sqrtScale := float32(math.Sqrt(float64(in.Scale())))
	k.mult, err = quantize.CheckedMultiplier(1 / float64(sqrtScale*out.Scale()))
	if err != nil {
		return fmt.Errorf("1 / (sqrt(input scale) × output scale): %w", err)
	}
	if k.mult.Shift-unaryRsqrtShift < -31 {
		return fmt.Errorf("1 / (sqrt(input scale %g) × output scale %g) is too small for the int8 RSQRT arithmetic", in.Scale(), out.Scale())
	}
	return nil
}

func (k *unaryMath) Eval() error {
	if k.input.Type == Int8 {
		return rsqrtInt8(k.input.Int8s(), k.output.Int8s(), k.inZP, k.outZP, k.mult)
	}
	in, out := k.input.Float32s(), k.output.Float32s()
	switch k.op {
	case unaryFloor:
		floorFloat(in, out)
	case unarySqrt:
		sqrtFloat(in, out)
	case unaryRsqrt:
		rsqrtFloat(in, out)
	}
	return nil
}

// floorFloat is std::floor per element.
func floorFloat(in, out []float32) {
	for i, x := range in {
		out[i] = float32(math.Floor(float64(x)))
	}
}

// sqrtFloat is std::sqrt per element (correctly rounded, as sqrtf is).
func sqrtFloat(in, out []float32) {
	for i, x := range in {
		out[i] = float32(math.Sqrt(float64(x)))
	}
}

// rsqrtFloat is 1.f / std::sqrt(x) in float.
func rsqrtFloat(in, out []float32) {
	for i, x := range in {
		out[i] = 1 / float32(math.Sqrt(float64(x)))
	}
}

// rsqrtInt8 is TFLM's RsqrtEvalQuantized: x - zp must be >= 0; 0 gives the
// largest output; otherwise 1/sqrt(x - zp) as a multiplier and shift is
// applied to 1 (times 2^20) and the result rescaled to the output. It stops
// with an error at the first input below the zero point, as TFLM does.
func rsqrtInt8(in, out []int8, inZP, outZP int32, m quantize.Multiplier) error {
	for i, x := range in {
		v := int32(x) - inZP
		if v < 0 {
			return fmt.Errorf("element %d: %w (input %d is below the zero point %d)", i, errRsqrtNegative, x, inZP)
		}
		if v == 0 {
			out[i] = math.MaxInt8
			continue
		}
		invMult, invShift := quantize.InvSqrtQuantizedMultiplierExp(v, -1)
		data := quantize.MultiplyByQuantizedMultiplier(1, invMult, invShift+unaryRsqrtShift)
		o := quantize.MultiplyByQuantizedMultiplier(data, m.Significand, m.Shift-unaryRsqrtShift) + outZP
		out[i] = int8(clampInt32(o, math.MinInt8, math.MaxInt8))
	}
	return nil
}
