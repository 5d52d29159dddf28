package runtime

import (
	"math"

	"github.com/edged/edged/internal/runtime/tflite"
)

// CAST converts every element to the output's type with C++ static_cast
// semantics, as TFLM cast.cc and full TensorFlow Lite cast.cc do:
// integers wrap modulo 2^bits, floats round to nearest even when narrowed,
// float to integer truncates toward zero, anything to bool is "not zero"
// (NaN included) and bool is 0 or 1. Types: bool, int8, uint8, int16,
// uint16, int32, uint32, int64, float32, float64. Quantization parameters
// are ignored, as TensorFlow Lite ignores them.
//
// A float outside the integer type's range (undefined behaviour in C++)
// saturates to the type's range and NaN becomes 0 (what AArch64's
// conversion instructions do), the same on every platform edged runs on.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorCAST, MaxVersion: 7, New: func() Kernel { return &castOp{} }})
}

type castOp struct {
	input, output *Tensor
}

func castSupported(t DType) bool {
	return KnownInputType(t, Bool, Int8, Uint8, Int16, Uint16, Int32, Uint32, Int64, Float32, Float64)
}

func (k *castOp) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(1, 1, 1); err != nil {
		return err
	}
	var opts tflite.CastOptions
	if err := c.Options(tflite.BuiltinOptionsCastOptions, &opts); err != nil {
		return err
	}
	k.input, k.output = c.Input(0), c.Output(0)
	if !castSupported(k.input.Type) || !castSupported(k.output.Type) {
		return UnsupportedTypes("CAST input, output", k.input.Type, k.output.Type)
	}
	return c.SetOutputShape(0, k.input.Shape)
}

func (k *castOp) Eval() error {
	in := k.input
	switch in.Type {
	case Bool:
		castFromBool(k.output, in.Uint8s())
	case Int8:
		castFrom(k.output, in.Int8s())
	case Uint8:
		castFrom(k.output, in.Uint8s())
	case Int16:
		castFrom(k.output, in.Int16s())
	case Uint16:
		castFrom(k.output, in.Uint16s())
	case Int32:
		castFrom(k.output, in.Int32s())
	case Uint32:
		castFrom(k.output, in.Uint32s())
	case Int64:
		castFrom(k.output, in.Int64s())
	case Float32:
		castFrom(k.output, in.Float32s())
	case Float64:
		castFrom(k.output, in.Float64s())
	}
	return nil
}

type castNumber interface {
	~int8 | ~uint8 | ~int16 | ~uint16 | ~int32 | ~uint32 | ~int64 | ~float32 | ~float64
}

// castFrom converts in to the output tensor's type.
func castFrom[F castNumber](out *Tensor, in []F) {
	switch out.Type {
	case Bool:
		castToBool(in, out.Uint8s())
	case Int8:
		castTo(in, out.Int8s(), math.MinInt8, math.MaxInt8)
	case Uint8:
		castTo(in, out.Uint8s(), 0, math.MaxUint8)
	case Int16:
		castTo(in, out.Int16s(), math.MinInt16, math.MaxInt16)
	case Uint16:
		castTo(in, out.Uint16s(), 0, math.MaxUint16)
	case Int32:
		castTo(in, out.Int32s(), math.MinInt32, math.MaxInt32)
	case Uint32:
		castTo(in, out.Uint32s(), 0, math.MaxUint32)
	case Int64:
		castTo(in, out.Int64s(), math.MinInt64, math.MaxInt64)
	case Float32:
		castTo(in, out.Float32s(), 0, 0)
	case Float64:
		castTo(in, out.Float64s(), 0, 0)
	}
}

// castFromBool converts a bool tensor's bytes (any nonzero byte is true)
// to 0 or 1 of the output's type.
func castFromBool(out *Tensor, in []uint8) {
	switch out.Type {
	case Bool:
		castToBool(in, out.Uint8s())
	case Int8:
		castBoolTo(in, out.Int8s())
	case Uint8:
		castBoolTo(in, out.Uint8s())
	case Int16:
		castBoolTo(in, out.Int16s())
	case Uint16:
		castBoolTo(in, out.Uint16s())
	case Int32:
		castBoolTo(in, out.Int32s())
	case Uint32:
		castBoolTo(in, out.Uint32s())
	case Int64:
		castBoolTo(in, out.Int64s())
	case Float32:
		castBoolTo(in, out.Float32s())
	case Float64:
		castBoolTo(in, out.Float64s())
	}
}

func castBoolTo[T castNumber](in []uint8, out []T) {
	for i, x := range in {
		if x != 0 {
			out[i] = 1
		} else {
			out[i] = 0
		}
	}
}

// castToBool is static_cast<bool>: true for every nonzero value.
func castToBool[F castNumber](in []F, out []uint8) {
	for i, x := range in {
		if x != 0 {
			out[i] = 1
		} else {
			out[i] = 0
		}
	}
}

// castTo is the reference kernel for every numeric pair. lo and hi are the
// range of an integer T, used to saturate out-of-range floats.
func castTo[F castNumber, T castNumber](in []F, out []T, lo, hi int64) {
	if !castIsFloat[F]() || castIsFloat[T]() {
		// Integer to anything, float to float: Go's conversions are C++'s
		// (wrapping for integers, round to nearest even for floats).
		for i, x := range in {
			out[i] = T(x)
		}
		return
	}
	flo, fhi := float64(lo), float64(hi)
	for i, x := range in {
		f := float64(x)
		switch {
		case f != f:
			out[i] = 0
		case f <= flo:
			out[i] = T(lo)
		case f >= fhi:
			out[i] = T(hi)
		default:
			out[i] = T(f) // truncation toward zero, in range
		}
	}
}

// castIsFloat reports whether T is a floating-point type.
func castIsFloat[T castNumber]() bool {
	var zero T
	switch any(zero).(type) {
	case float32, float64:
		return true
	}
	return false
}
