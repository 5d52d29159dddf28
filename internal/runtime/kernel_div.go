package runtime

import (
	"errors"
	"fmt"
	"math"

	"github.com/edged/edged/internal/quantize"
	"github.com/edged/edged/internal/runtime/tflite"
)

// DIV, element-wise with broadcasting and a fused activation: float32
// (IEEE division: x/0 is ±Inf or NaN), int32 (truncating division, as C++;
// a zero divisor is an error) and quantized int8 (TFLM div.cc) and uint8
// (full TensorFlow Lite div.cc). The quantized kernels divide by a Q0.31
// reciprocal of the divisor (reference_ops::DivElementwise) with M =
// scale1 / (scale2 * scale_out) computed in float, and a divisor equal to
// its zero point is an error.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorDIV, MaxVersion: 2, New: func() Kernel { return &divOp{} }})
}

type divOp struct {
	elemBinary

	in1Offset, in2Offset, outOffset int32
	mult                            quantize.Multiplier
	actMin, actMax                  int32

	fActMin, fActMax float32
}

var errDivisionByZero = errors.New("division by zero")

func (k *divOp) Prepare(c *PrepareContext) error {
	if err := k.prepareBinary(c); err != nil {
		return err
	}
	var opts tflite.DivOptions
	if err := c.Options(tflite.BuiltinOptionsDivOptions, &opts); err != nil {
		return err
	}
	act := opts.FusedActivationFunction()
	in1, in2, out := k.in1, k.in2, k.out
	var err error
	switch out.Type {
	case Float32:
		k.fActMin, k.fActMax, err = activationRangeFloat(act)
		return err
	case Int32:
		for _, x := range []*Tensor{in1, in2} {
			if x.Quant.Quantized() {
				return fmt.Errorf("DIV on int32 takes unquantized tensors; %s is quantized", x)
			}
		}
		var lo, hi int64
		lo, hi, err = elemIntActivation(act, math.MinInt32, math.MaxInt32)
		k.actMin, k.actMax = int32(lo), int32(hi)
		return err
	case Int8, Uint8:
	default:
		return UnsupportedTypes("DIV input", out.Type)
	}
	if err := checkElemQuant(in1, in2, out); err != nil {
		return err
	}
	k.in1Offset, k.in2Offset, k.outOffset = -in1.ZeroPoint(), -in2.ZeroPoint(), out.ZeroPoint()
	real := float64(in1.Scale() / (in2.Scale() * out.Scale()))
	if k.mult, err = elemMultiplier("output rescaling", real); err != nil {
		return fmt.Errorf("output %s: %w", out, err)
	}
	k.actMin, k.actMax, err = activationRangeQuantized(act, out)
	return err
}

func (k *divOp) Eval() error {
	switch k.out.Type {
	case Float32:
		divFloat(&k.bc, k.in1.Float32s(), k.in2.Float32s(), k.out.Float32s(), k.fActMin, k.fActMax)
	case Int32:
		for i, d := range k.in2.Int32s() {
			if d == 0 {
				return fmt.Errorf("%w: divisor element %d of %s", errDivisionByZero, i, k.in2)
			}
		}
		divInt32(&k.bc, k.in1.Int32s(), k.in2.Int32s(), k.out.Int32s(), k.actMin, k.actMax)
	case Int8:
		return divQuantized(k, k.in1.Int8s(), k.in2.Int8s(), k.out.Int8s())
	case Uint8:
		return divQuantized(k, k.in1.Uint8s(), k.in2.Uint8s(), k.out.Uint8s())
	}
	return nil
}

// divQuantized is the reference kernel for int8 and uint8
// (reference_ops::DivElementwise / BroadcastDivSlowQuantized). Shifts
// outside [0, 31], which small quotients produce, behave as the C++ build
// does (see elemRoundingDivideByPOT).
func divQuantized[T int8 | uint8](k *divOp, a, b, out []T) error {
	for i, d := range b {
		if k.in2Offset+int32(d) == 0 {
			return fmt.Errorf("%w: divisor element %d of %s equals its zero point", errDivisionByZero, i, k.in2)
		}
	}
	m := k.mult
	k.bc.rows(func(ia, sa, ib, sb, o, n int) {
		for i := range n {
			x := k.in1Offset + int32(a[ia+i*sa])
			y := k.in2Offset + int32(b[ib+i*sb])
			if y < 0 {
				x, y = -x, -y
			}
			recip, recipShift := quantize.GetReciprocal(y, 31)
			headroom := quantize.CountLeadingSignBits32(x)
			unscaled := quantize.SaturatingRoundingDoublingHighMul(x*(int32(1)<<headroom), recip)
			totalShift := m.Shift - recipShift - headroom
			v := k.outOffset + elemRoundingDivideByPOT(quantize.SaturatingRoundingDoublingHighMul(unscaled, m.Significand), -totalShift)
			out[o+i] = T(clampInt32(v, k.actMin, k.actMax))
		}
	})
	return nil
}

// divFloat is the float32 reference kernel.
func divFloat(bc *binaryBroadcast, a, b, out []float32, lo, hi float32) {
	bc.rows(func(ia, sa, ib, sb, o, n int) {
		for i := range n {
			out[o+i] = clampFloat32(a[ia+i*sa]/b[ib+i*sb], lo, hi)
		}
	})
}

// divInt32 is the int32 reference kernel: division truncating toward zero
// (MinInt32 / -1 wraps to MinInt32). The caller has checked for zero
// divisors.
func divInt32(bc *binaryBroadcast, a, b, out []int32, lo, hi int32) {
	bc.rows(func(ia, sa, ib, sb, o, n int) {
		for i := range n {
			out[o+i] = clampInt32(a[ia+i*sa]/b[ib+i*sb], lo, hi)
		}
	})
}
