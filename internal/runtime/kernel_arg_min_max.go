package runtime

import (
	"fmt"

	"github.com/edged/edged/internal/runtime/tflite"
)

// ARG_MAX and ARG_MIN: the index of the largest (smallest) element along
// the axis a constant input gives, as reference_ops::ArgMinMax with TFLM's
// plain > and < comparisons: ties keep the first index, and a NaN never
// replaces the current best (a leading NaN stays). Inputs float32, uint8,
// int8, int16, int32, int64; the output (int32 or int64) drops the axis.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorARG_MAX, MaxVersion: 3, New: func() Kernel { return &argMinMax{max: true} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorARG_MIN, MaxVersion: 3, New: func() Kernel { return &argMinMax{} }})
}

type argMinMax struct {
	max           bool
	input, output *Tensor
	outer, axisSz int
	inner         int
}

func (k *argMinMax) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(2, 2, 1); err != nil {
		return err
	}
	var optType tflite.TensorType
	if k.max {
		var opts tflite.ArgMaxOptions
		if err := c.Options(tflite.BuiltinOptionsArgMaxOptions, &opts); err != nil {
			return err
		}
		optType = opts.OutputType()
	} else {
		var opts tflite.ArgMinOptions
		if err := c.Options(tflite.BuiltinOptionsArgMinOptions, &opts); err != nil {
			return err
		}
		optType = opts.OutputType()
	}
	k.input, k.output = c.Input(0), c.Output(0)
	in, out := k.input, k.output
	switch in.Type {
	case Float32, Uint8, Int8, Int16, Int32, Int64:
	default:
		return UnsupportedTypes("input", in.Type)
	}
	if out.Type != Int32 && out.Type != Int64 {
		return UnsupportedTypes("output", out.Type)
	}
	// The options' output_type defaults to float32 when unset; TFLM goes by
	// the output tensor's type, and so does edged unless the options name
	// a different index type.
	if (optType == tflite.TensorTypeINT32 || optType == tflite.TensorTypeINT64) && DType(optType) != out.Type {
		return fmt.Errorf("options ask for %s indices, output %s is %s", DType(optType), out, out.Type)
	}
	if len(in.Shape) < 1 {
		return fmt.Errorf("input %s must have rank 1 or more", in)
	}
	axisV, err := shapeConstScalar("axis", c.Input(1))
	if err != nil {
		return err
	}
	axis, err := shapeAxis("axis", axisV, len(in.Shape))
	if err != nil {
		return err
	}
	k.axisSz = in.Shape[axis]
	k.outer = shapeProduct(in.Shape[:axis])
	k.inner = shapeProduct(in.Shape[axis+1:])
	if k.axisSz == 0 && k.outer*k.inner > 0 {
		return fmt.Errorf("input %s has no elements along axis %d", in, axis)
	}
	shape := append(append([]int(nil), in.Shape[:axis]...), in.Shape[axis+1:]...)
	return c.SetOutputShape(0, shape)
}

func (k *argMinMax) Eval() error {
	switch k.output.Type {
	case Int32:
		argMinMaxDispatch(k, k.output.Int32s())
	case Int64:
		argMinMaxDispatch(k, k.output.Int64s())
	}
	return nil
}

func argMinMaxDispatch[O int32 | int64](k *argMinMax, out []O) {
	in := k.input
	switch in.Type {
	case Float32:
		argMinMaxRef(k, in.Float32s(), out)
	case Uint8:
		argMinMaxRef(k, in.Uint8s(), out)
	case Int8:
		argMinMaxRef(k, in.Int8s(), out)
	case Int16:
		argMinMaxRef(k, in.Int16s(), out)
	case Int32:
		argMinMaxRef(k, in.Int32s(), out)
	case Int64:
		argMinMaxRef(k, in.Int64s(), out)
	}
}

// argMinMaxRef is the reference kernel: for each (outer, inner) position,
// scan the axis keeping the first best value.
func argMinMaxRef[T float32 | uint8 | int8 | int16 | int32 | int64, O int32 | int64](k *argMinMax, in []T, out []O) {
	n, inner := k.axisSz, k.inner
	for o := range k.outer {
		for j := range inner {
			base := o*n*inner + j
			best, bestIdx := in[base], 0
			for i := 1; i < n; i++ {
				v := in[base+i*inner]
				if (k.max && v > best) || (!k.max && v < best) {
					best, bestIdx = v, i
				}
			}
			out[o*inner+j] = O(bestIdx)
		}
	}
}
