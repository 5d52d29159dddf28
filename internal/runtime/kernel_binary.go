package runtime

import (
	"fmt"
	"math"

	"github.com/edged/edged/internal/quantize"
	"github.com/edged/edged/internal/runtime/tflite"
)

// Element-wise binary operators without fused activations, all with
// broadcasting:
//
//   - SQUARED_DIFFERENCE: (a - b)²; float32, int32 (wrapping), and
//     quantized int8 and int16 as TFLM squared_difference.cc (inputs
//     rescaled to twice the larger scale after a left shift of 7 bits for
//     int8, 0 for int16, the squared difference rescaled to the output).
//   - MINIMUM, MAXIMUM: on the raw values of any numeric type, as TFLM and
//     TensorFlow Lite do (their converters give inputs and output one
//     quantization); comparisons mirror C++'s `a < b ? a : b`.
//   - FLOOR_DIV: floor(a / b) computed in double as TensorFlow Lite does,
//     for float32, int32, int16 and int8; a zero divisor is an error.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorSQUARED_DIFFERENCE, MaxVersion: 2, New: func() Kernel { return &squaredDifferenceOp{} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorMINIMUM, MaxVersion: 4, New: func() Kernel { return &minMaxOp{} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorMAXIMUM, MaxVersion: 4, New: func() Kernel { return &minMaxOp{max: true} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorFLOOR_DIV, MaxVersion: 3, New: func() Kernel { return &floorDivOp{} }})
}

// --- SQUARED_DIFFERENCE ---

type squaredDifferenceOp struct {
	elemBinary

	leftShift                       int
	in1Offset, in2Offset, outOffset int32
	in1Mult, in2Mult, outMult       quantize.Multiplier
	actMin, actMax                  int32
}

func (k *squaredDifferenceOp) Prepare(c *PrepareContext) error {
	if err := k.prepareBinary(c); err != nil {
		return err
	}
	var opts tflite.SquaredDifferenceOptions
	if err := c.Options(tflite.BuiltinOptionsSquaredDifferenceOptions, &opts); err != nil {
		return err
	}
	in1, in2, out := k.in1, k.in2, k.out
	switch out.Type {
	case Float32, Int32:
		return nil
	case Int8:
		k.leftShift = 7
	case Int16:
		k.leftShift = 0
	default:
		return UnsupportedTypes("SQUARED_DIFFERENCE input", out.Type)
	}
	if err := checkElemQuant(in1, in2, out); err != nil {
		return err
	}
	k.in1Offset, k.in2Offset, k.outOffset = -in1.ZeroPoint(), -in2.ZeroPoint(), out.ZeroPoint()
	if out.Type == Int16 && (k.in1Offset != 0 || k.in2Offset != 0 || k.outOffset != 0) {
		return fmt.Errorf("int16 SQUARED_DIFFERENCE needs zero points of 0, tensors have %d, %d and %d", -k.in1Offset, -k.in2Offset, k.outOffset)
	}
	k.actMin, k.actMax, _ = typeRange(out.Type)
	s1, s2, so := in1.Scale(), in2.Scale(), out.Scale()
	maxScale := s1
	if s1 < s2 {
		maxScale = s2
	}
	twice := 2.0 * float64(maxScale)
	var err error
	if k.in1Mult, err = elemSmallMultiplier("input 1 rescaling", float64(s1)/twice); err != nil {
		return err
	}
	if k.in2Mult, err = elemSmallMultiplier("input 2 rescaling", float64(s2)/twice); err != nil {
		return err
	}
	// (1 << 2*left_shift) * output scale is a float product in C++.
	real := twice * twice / float64(float32(int32(1)<<(2*k.leftShift))*so)
	if k.outMult, err = elemMultiplier("output rescaling", real); err != nil {
		return fmt.Errorf("output %s: %w", out, err)
	}
	return nil
}

func (k *squaredDifferenceOp) Eval() error {
	switch k.out.Type {
	case Float32:
		squaredDifferenceFloat(&k.bc, k.in1.Float32s(), k.in2.Float32s(), k.out.Float32s())
	case Int32:
		squaredDifferenceInt32(&k.bc, k.in1.Int32s(), k.in2.Int32s(), k.out.Int32s())
	case Int8:
		squaredDifferenceQuantized(k, k.in1.Int8s(), k.in2.Int8s(), k.out.Int8s())
	case Int16:
		squaredDifferenceQuantized(k, k.in1.Int16s(), k.in2.Int16s(), k.out.Int16s())
	}
	return nil
}

// squaredDifferenceQuantized is the reference kernel for int8 and int16
// (TFLM's SquaredDifference(x, y, params)).
func squaredDifferenceQuantized[T int8 | int16](k *squaredDifferenceOp, a, b, out []T) {
	scale := int32(1) << k.leftShift
	m1, m2, mo := k.in1Mult, k.in2Mult, k.outMult
	k.bc.rows(func(ia, sa, ib, sb, o, n int) {
		for i := range n {
			x := (k.in1Offset + int32(a[ia+i*sa])) * scale
			y := (k.in2Offset + int32(b[ib+i*sb])) * scale
			sx := quantize.RoundingDivideByPOT(quantize.SaturatingRoundingDoublingHighMul(x, m1.Significand), -m1.Shift)
			sy := quantize.RoundingDivideByPOT(quantize.SaturatingRoundingDoublingHighMul(y, m2.Significand), -m2.Shift)
			d := sx - sy
			v := quantize.MultiplyByQuantizedMultiplier(d*d, mo.Significand, mo.Shift) + k.outOffset
			out[o+i] = T(clampInt32(v, k.actMin, k.actMax))
		}
	})
}

// squaredDifferenceFloat is the float32 reference kernel.
func squaredDifferenceFloat(bc *binaryBroadcast, a, b, out []float32) {
	bc.rows(func(ia, sa, ib, sb, o, n int) {
		for i := range n {
			d := a[ia+i*sa] - b[ib+i*sb]
			out[o+i] = d * d
		}
	})
}

// squaredDifferenceInt32 is the int32 reference kernel (wrapping).
func squaredDifferenceInt32(bc *binaryBroadcast, a, b, out []int32) {
	bc.rows(func(ia, sa, ib, sb, o, n int) {
		for i := range n {
			d := a[ia+i*sa] - b[ib+i*sb]
			out[o+i] = d * d
		}
	})
}

// --- MINIMUM, MAXIMUM ---

type minMaxOp struct {
	elemBinary
	max bool
}

func (k *minMaxOp) Prepare(c *PrepareContext) error {
	if err := k.prepareBinary(c); err != nil {
		return err
	}
	var opts tflite.MaximumMinimumOptions
	if err := c.Options(tflite.BuiltinOptionsMaximumMinimumOptions, &opts); err != nil {
		return err
	}
	switch t := k.out.Type; t {
	case Float32, Int8, Uint8, Int16, Int32, Int64:
		return nil
	default:
		op := "MINIMUM"
		if k.max {
			op = "MAXIMUM"
		}
		return UnsupportedTypes(op+" input", t)
	}
}

func (k *minMaxOp) Eval() error {
	switch k.out.Type {
	case Float32:
		minMaxValues(&k.bc, k.in1.Float32s(), k.in2.Float32s(), k.out.Float32s(), k.max)
	case Int8:
		minMaxValues(&k.bc, k.in1.Int8s(), k.in2.Int8s(), k.out.Int8s(), k.max)
	case Uint8:
		minMaxValues(&k.bc, k.in1.Uint8s(), k.in2.Uint8s(), k.out.Uint8s(), k.max)
	case Int16:
		minMaxValues(&k.bc, k.in1.Int16s(), k.in2.Int16s(), k.out.Int16s(), k.max)
	case Int32:
		minMaxValues(&k.bc, k.in1.Int32s(), k.in2.Int32s(), k.out.Int32s(), k.max)
	case Int64:
		minMaxValues(&k.bc, k.in1.Int64s(), k.in2.Int64s(), k.out.Int64s(), k.max)
	}
	return nil
}

// minMaxValues is the reference kernel (MaximumMinimumBroadcastSlow with
// MaximumOp `a > b ? a : b` or MinimumOp `a < b ? a : b`; for floats a NaN
// in the first input yields the second).
func minMaxValues[T float32 | int8 | uint8 | int16 | int32 | int64](bc *binaryBroadcast, a, b, out []T, isMax bool) {
	bc.rows(func(ia, sa, ib, sb, o, n int) {
		if isMax {
			for i := range n {
				x, y := a[ia+i*sa], b[ib+i*sb]
				if x > y {
					out[o+i] = x
				} else {
					out[o+i] = y
				}
			}
			return
		}
		for i := range n {
			x, y := a[ia+i*sa], b[ib+i*sb]
			if x < y {
				out[o+i] = x
			} else {
				out[o+i] = y
			}
		}
	})
}

// --- FLOOR_DIV ---

type floorDivOp struct {
	elemBinary
}

func (k *floorDivOp) Prepare(c *PrepareContext) error {
	if err := k.prepareBinary(c); err != nil {
		return err
	}
	var opts tflite.FloorDivOptions
	if err := c.Options(tflite.BuiltinOptionsFloorDivOptions, &opts); err != nil {
		return err
	}
	switch t := k.out.Type; t {
	case Float32, Int32, Int16, Int8:
		return nil
	default:
		return UnsupportedTypes("FLOOR_DIV input", t)
	}
}

func (k *floorDivOp) Eval() error {
	switch k.out.Type {
	case Float32:
		return floorDivFloat(k, k.in1.Float32s(), k.in2.Float32s(), k.out.Float32s())
	case Int32:
		return floorDivInt(k, k.in1.Int32s(), k.in2.Int32s(), k.out.Int32s())
	case Int16:
		return floorDivInt(k, k.in1.Int16s(), k.in2.Int16s(), k.out.Int16s())
	case Int8:
		return floorDivInt(k, k.in1.Int8s(), k.in2.Int8s(), k.out.Int8s())
	}
	return nil
}

// floorDivFloat is the float32 reference kernel:
// float(std::floor(double(a) / double(b))).
func floorDivFloat(k *floorDivOp, a, b, out []float32) error {
	for i, d := range b {
		if d == 0 {
			return fmt.Errorf("%w: divisor element %d of %s", errDivisionByZero, i, k.in2)
		}
	}
	k.bc.rows(func(ia, sa, ib, sb, o, n int) {
		for i := range n {
			out[o+i] = float32(math.Floor(float64(a[ia+i*sa]) / float64(b[ib+i*sb])))
		}
	})
	return nil
}

// floorDivInt is the integer reference kernel. TensorFlow Lite divides in
// double and floors; for integers of 32 bits or fewer that is exact, so
// the integer form below gives the same results (the one quotient that
// overflows, MinInt / -1, wraps to MinInt as the C++ conversion does on
// x86-64).
func floorDivInt[T int8 | int16 | int32](k *floorDivOp, a, b, out []T) error {
	for i, d := range b {
		if d == 0 {
			return fmt.Errorf("%w: divisor element %d of %s", errDivisionByZero, i, k.in2)
		}
	}
	k.bc.rows(func(ia, sa, ib, sb, o, n int) {
		for i := range n {
			x, y := a[ia+i*sa], b[ib+i*sb]
			q := x / y
			if (x%y != 0) && ((x < 0) != (y < 0)) {
				q--
			}
			out[o+i] = q
		}
	})
	return nil
}
