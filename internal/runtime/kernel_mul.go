package runtime

import (
	"fmt"
	"math"

	"github.com/edged/edged/internal/quantize"
	"github.com/edged/edged/internal/runtime/tflite"
)

// MUL, element-wise with broadcasting and a fused activation.
//
// Quantized: out = zp_out + M * (in1 - zp1) * (in2 - zp2), with M =
// scale1 * scale2 / scale_out. int8 and int16 follow TFLM (mul_common.cc:
// M in double; int16 needs zero points of 0); uint8 follows full
// TensorFlow Lite (mul.cc: M computed in float). float32, int32 and int64
// multiply directly (integers wrap) and clamp to the activation range.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorMUL, MaxVersion: 7, New: func() Kernel { return &mulOp{} }})
}

type mulOp struct {
	elemBinary

	in1Offset, in2Offset, outOffset int32
	mult                            quantize.Multiplier
	actMin, actMax                  int32
	rq                              *requantParams // the optimized 8-bit kernel's (nil: reference)
	simd                            simdKind
	par                             *parallelRange // same-shape inputs split across threads

	fActMin, fActMax float32
	iActMin, iActMax int64
}

func (k *mulOp) Prepare(c *PrepareContext) error {
	if err := k.prepareBinary(c); err != nil {
		return err
	}
	var opts tflite.MulOptions
	if err := c.Options(tflite.BuiltinOptionsMulOptions, &opts); err != nil {
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
		k.iActMin, k.iActMax, err = elemIntActivation(act, math.MinInt32, math.MaxInt32)
		return err
	case Int64:
		k.iActMin, k.iActMax, err = elemIntActivation(act, math.MinInt64, math.MaxInt64)
		return err
	case Int8, Int16, Uint8:
	default:
		return UnsupportedTypes("MUL input", out.Type)
	}
	if err := checkElemQuant(in1, in2, out); err != nil {
		return err
	}
	k.in1Offset, k.in2Offset, k.outOffset = -in1.ZeroPoint(), -in2.ZeroPoint(), out.ZeroPoint()
	if out.Type == Int16 && (k.in1Offset != 0 || k.in2Offset != 0 || k.outOffset != 0) {
		return fmt.Errorf("int16 MUL needs zero points of 0, tensors have %d, %d and %d", -k.in1Offset, -k.in2Offset, k.outOffset)
	}
	var real float64
	if out.Type == Uint8 {
		real = float64(in1.Scale() * in2.Scale() / out.Scale())
	} else {
		real = float64(in1.Scale()) * float64(in2.Scale()) / float64(out.Scale())
	}
	if k.mult, err = elemMultiplier("output rescaling", real); err != nil {
		return fmt.Errorf("output %s: %w", out, err)
	}
	if k.actMin, k.actMax, err = activationRangeQuantized(act, out); err != nil {
		return err
	}
	k.prepareFast(c)
	return nil
}

func (k *mulOp) Eval() error {
	switch k.out.Type {
	case Float32:
		mulFloat(&k.bc, k.in1.Float32s(), k.in2.Float32s(), k.out.Float32s(), k.fActMin, k.fActMax)
	case Int32:
		mulInt(&k.bc, k.in1.Int32s(), k.in2.Int32s(), k.out.Int32s(), int32(k.iActMin), int32(k.iActMax))
	case Int64:
		mulInt(&k.bc, k.in1.Int64s(), k.in2.Int64s(), k.out.Int64s(), k.iActMin, k.iActMax)
	case Int8:
		if k.rq != nil {
			mulFast(k, k.in1.Uint8s(), k.in2.Uint8s(), k.out.Uint8s(), true)
			break
		}
		mulQuantized(k, k.in1.Int8s(), k.in2.Int8s(), k.out.Int8s())
	case Uint8:
		if k.rq != nil {
			mulFast(k, k.in1.Uint8s(), k.in2.Uint8s(), k.out.Uint8s(), false)
			break
		}
		mulQuantized(k, k.in1.Uint8s(), k.in2.Uint8s(), k.out.Uint8s())
	case Int16:
		mulQuantized(k, k.in1.Int16s(), k.in2.Int16s(), k.out.Int16s())
	}
	return nil
}

// mulQuantized is the reference kernel for quantized MUL
// (reference_integer_ops::Mul / BroadcastMul6DSlow, reference_ops::Mul for
// uint8).
func mulQuantized[T int8 | uint8 | int16](k *mulOp, a, b, out []T) {
	m := k.mult
	k.bc.rows(func(ia, sa, ib, sb, o, n int) {
		for i := range n {
			x := k.in1Offset + int32(a[ia+i*sa])
			y := k.in2Offset + int32(b[ib+i*sb])
			v := k.outOffset + quantize.MultiplyByQuantizedMultiplier(x*y, m.Significand, m.Shift)
			out[o+i] = T(clampInt32(v, k.actMin, k.actMax))
		}
	})
}

// mulFloat is the float32 reference kernel.
func mulFloat(bc *binaryBroadcast, a, b, out []float32, lo, hi float32) {
	bc.rows(func(ia, sa, ib, sb, o, n int) {
		for i := range n {
			out[o+i] = clampFloat32(a[ia+i*sa]*b[ib+i*sb], lo, hi)
		}
	})
}

// mulInt is the reference kernel for int32 and int64 (wrapping multiply).
func mulInt[T int32 | int64](bc *binaryBroadcast, a, b, out []T, lo, hi T) {
	bc.rows(func(ia, sa, ib, sb, o, n int) {
		for i := range n {
			out[o+i] = min(max(a[ia+i*sa]*b[ib+i*sb], lo), hi)
		}
	})
}
