package runtime

import (
	"fmt"
	"math"

	"github.com/edged/edged/internal/quantize"
	"github.com/edged/edged/internal/runtime/tflite"
)

// ADD and SUB, element-wise with broadcasting and a fused activation.
//
// Quantized int8 and int16 follow TFLM (add_common.cc / sub_common.cc):
// both inputs are rescaled to a common scale of twice the larger input
// scale, shifted left by 20 bits (int8) or 15 bits (int16) for headroom,
// added or subtracted and rescaled to the output. TFLM computes ADD's
// factors in double and SUB's in float; both are reproduced. uint8 follows
// full TensorFlow Lite (add.cc / sub.cc: left shift 20, factors in double,
// SUB allowing an output factor above 1). float32, int32 and int64 add or
// subtract directly and clamp to the activation range.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorADD, MaxVersion: 5, New: func() Kernel { return &addSub{} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorSUB, MaxVersion: 5, New: func() Kernel { return &addSub{sub: true} }})
}

type addSub struct {
	elemBinary
	sub bool

	q addSubQuant
	// ta, tb: the optimized 8-bit kernel's tables (nil: reference kernel).
	ta, tb     *[256]int32
	simd       simdKind
	simdParams *[160]int32 // the SIMD row kernel's parameters (nil: none)
	par        *parallelRange

	fActMin, fActMax float32
	iActMin, iActMax int64
}

// addSubQuant is TensorFlow Lite's ArithmeticParams for quantized ADD/SUB.
type addSubQuant struct {
	leftShift                       int
	in1Offset, in2Offset, outOffset int32
	in1Mult, in2Mult, outMult       quantize.Multiplier
	actMin, actMax                  int32
}

func (k *addSub) name() string {
	if k.sub {
		return "SUB"
	}
	return "ADD"
}

func (k *addSub) Prepare(c *PrepareContext) error {
	if err := k.prepareBinary(c); err != nil {
		return err
	}
	var act tflite.ActivationFunctionType
	if k.sub {
		var opts tflite.SubOptions
		if err := c.Options(tflite.BuiltinOptionsSubOptions, &opts); err != nil {
			return err
		}
		act = opts.FusedActivationFunction()
	} else {
		var opts tflite.AddOptions
		if err := c.Options(tflite.BuiltinOptionsAddOptions, &opts); err != nil {
			return err
		}
		act = opts.FusedActivationFunction()
	}
	var err error
	switch t := k.out.Type; t {
	case Float32:
		k.fActMin, k.fActMax, err = activationRangeFloat(act)
		return err
	case Int32, Int64:
		for _, x := range []*Tensor{k.in1, k.in2, k.out} {
			if x.Quant.Quantized() {
				return fmt.Errorf("%s on %s takes unquantized tensors; %s is quantized", k.name(), t, x)
			}
		}
		if t == Int32 {
			k.iActMin, k.iActMax, err = elemIntActivation(act, math.MinInt32, math.MaxInt32)
		} else {
			k.iActMin, k.iActMax, err = elemIntActivation(act, math.MinInt64, math.MaxInt64)
		}
		return err
	case Int8, Int16, Uint8:
		if err := k.prepareQuantized(act); err != nil {
			return err
		}
		k.prepareFast(c)
		return nil
	}
	return UnsupportedTypes(k.name()+" input", k.out.Type)
}

func (k *addSub) prepareQuantized(act tflite.ActivationFunctionType) error {
	in1, in2, out := k.in1, k.in2, k.out
	if err := checkElemQuant(in1, in2, out); err != nil {
		return err
	}
	q := &k.q
	q.in1Offset = -in1.ZeroPoint()
	q.in2Offset = -in2.ZeroPoint()
	q.outOffset = out.ZeroPoint()
	q.leftShift = 20
	if out.Type == Int16 {
		q.leftShift = 15
	}
	s1, s2, so := in1.Scale(), in2.Scale(), out.Scale()
	maxScale := s1 // std::max(s1, s2)
	if s1 < s2 {
		maxScale = s2
	}
	var r1, r2, rOut float64
	if k.sub && out.Type != Uint8 {
		// TFLM's sub_common.cc computes in float.
		twice := 2 * maxScale
		r1 = float64(s1 / twice)
		r2 = float64(s2 / twice)
		rOut = float64(twice / (float32(int32(1)<<q.leftShift) * so))
	} else {
		twice := 2 * float64(maxScale)
		r1 = float64(s1) / twice
		r2 = float64(s2) / twice
		rOut = twice / (float64(int32(1)<<q.leftShift) * float64(so))
	}
	var err error
	if q.in1Mult, err = elemSmallMultiplier("input 1 rescaling", r1); err != nil {
		return err
	}
	if q.in2Mult, err = elemSmallMultiplier("input 2 rescaling", r2); err != nil {
		return err
	}
	if k.sub && out.Type == Uint8 && rOut > 1 {
		// Full TensorFlow Lite's sub.cc takes QuantizeMultiplierGreaterThanOne
		// for very narrow output ranges.
		q.outMult, err = elemMultiplier("output rescaling", rOut)
	} else {
		q.outMult, err = elemSmallMultiplier("output rescaling", rOut)
	}
	if err != nil {
		return fmt.Errorf("output %s: %w", out, err)
	}
	q.actMin, q.actMax, err = activationRangeQuantized(act, out)
	return err
}

func (k *addSub) Eval() error {
	switch k.out.Type {
	case Float32:
		addSubFloat(&k.bc, k.in1.Float32s(), k.in2.Float32s(), k.out.Float32s(), k.fActMin, k.fActMax, k.sub)
	case Int32:
		addSubInt(&k.bc, k.in1.Int32s(), k.in2.Int32s(), k.out.Int32s(), int32(k.iActMin), int32(k.iActMax), k.sub)
	case Int64:
		addSubInt(&k.bc, k.in1.Int64s(), k.in2.Int64s(), k.out.Int64s(), k.iActMin, k.iActMax, k.sub)
	case Int8, Uint8:
		if k.ta != nil {
			addSubTable(k, k.in1.Uint8s(), k.in2.Uint8s(), k.out.Uint8s())
			break
		}
		if k.out.Type == Int8 {
			addSubQuantized(&k.q, &k.bc, k.in1.Int8s(), k.in2.Int8s(), k.out.Int8s(), k.sub)
			break
		}
		addSubQuantized(&k.q, &k.bc, k.in1.Uint8s(), k.in2.Uint8s(), k.out.Uint8s(), k.sub)
	case Int16:
		addSubQuantized(&k.q, &k.bc, k.in1.Int16s(), k.in2.Int16s(), k.out.Int16s(), k.sub)
	}
	return nil
}

// addSubQuantized is the reference kernel for quantized ADD and SUB
// (reference_integer_ops::Add / BroadcastAdd6DSlow, reference_ops::Sub /
// BroadcastQuantSubSlow).
func addSubQuantized[T int8 | uint8 | int16](q *addSubQuant, bc *binaryBroadcast, a, b, out []T, sub bool) {
	scale := int32(1) << q.leftShift
	m1, m2, mo := q.in1Mult, q.in2Mult, q.outMult
	bc.rows(func(ia, sa, ib, sb, o, n int) {
		for i := range n {
			x := (q.in1Offset + int32(a[ia+i*sa])) * scale
			y := (q.in2Offset + int32(b[ib+i*sb])) * scale
			sx := quantize.RoundingDivideByPOT(quantize.SaturatingRoundingDoublingHighMul(x, m1.Significand), -m1.Shift)
			sy := quantize.RoundingDivideByPOT(quantize.SaturatingRoundingDoublingHighMul(y, m2.Significand), -m2.Shift)
			raw := sx + sy
			if sub {
				raw = sx - sy
			}
			// MultiplyByQuantizedMultiplierSmallerThanOneExp, also when
			// full TensorFlow Lite's uint8 SUB hands it a positive shift.
			v := elemRoundingDivideByPOT(quantize.SaturatingRoundingDoublingHighMul(raw, mo.Significand), -mo.Shift) + q.outOffset
			out[o+i] = T(clampInt32(v, q.actMin, q.actMax))
		}
	})
}

// addSubFloat is the float32 reference kernel.
func addSubFloat(bc *binaryBroadcast, a, b, out []float32, lo, hi float32, sub bool) {
	bc.rows(func(ia, sa, ib, sb, o, n int) {
		if sub {
			for i := range n {
				out[o+i] = clampFloat32(a[ia+i*sa]-b[ib+i*sb], lo, hi)
			}
			return
		}
		for i := range n {
			out[o+i] = clampFloat32(a[ia+i*sa]+b[ib+i*sb], lo, hi)
		}
	})
}

// addSubInt is the reference kernel for int32 and int64: wrapping
// arithmetic, then the activation range.
func addSubInt[T int32 | int64](bc *binaryBroadcast, a, b, out []T, lo, hi T, sub bool) {
	bc.rows(func(ia, sa, ib, sb, o, n int) {
		for i := range n {
			v := a[ia+i*sa] + b[ib+i*sb]
			if sub {
				v = a[ia+i*sa] - b[ib+i*sb]
			}
			out[o+i] = min(max(v, lo), hi)
		}
	})
}
