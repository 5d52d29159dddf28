package runtime

import (
	"fmt"
	"math"

	"github.com/edged/edged/internal/runtime/tflite"
)

// CONCATENATION, PACK and UNPACK: joining tensors along an axis, stacking
// them along a new axis, and the reverse.
//
// CONCATENATION follows reference_ops::Concatenation for every type but
// uint8, whose inputs may carry other quantization than the output: full
// TensorFlow Lite requantizes those in float (reference_ops::
// ConcatenationWithScaling) and so does edged. int8 inputs must share the
// output's quantization (TFLM's and TFLite's restriction), int16 ones must
// have zero point 0. TFLM and TFLite reject fused activations; edged applies
// one on float32 outputs and rejects it on other types.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorCONCATENATION, MaxVersion: 4, New: func() Kernel { return &concatenation{} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorPACK, MaxVersion: 4, New: func() Kernel { return &pack{} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorUNPACK, MaxVersion: 4, New: func() Kernel { return &unpack{} }})
}

type concatenation struct {
	inputs []*Tensor
	output *Tensor

	outer int   // product of the dimensions before the axis
	block []int // per input: bytes it contributes per outer step

	// rescale is set for uint8 inputs whose quantization differs from the
	// output's; nil entries (or a nil slice) are plain copies.
	rescale []*concatRescale
	outZP   int32

	activation     bool
	actMin, actMax float32
}

// concatRescale is ConcatenationWithScaling's per-input transform:
// q_out = round(q_in * scale + bias) + output zero point.
type concatRescale struct {
	scale, bias float32
}

func (k *concatenation) Prepare(c *PrepareContext) error {
	if c.NumInputs() < 1 {
		return fmt.Errorf("has no inputs")
	}
	if err := c.ExpectIO(c.NumInputs(), c.NumInputs(), 1); err != nil {
		return err
	}
	var opts tflite.ConcatenationOptions
	if err := c.Options(tflite.BuiltinOptionsConcatenationOptions, &opts); err != nil {
		return err
	}
	k.output = c.Output(0)
	out := k.output
	k.inputs = make([]*Tensor, c.NumInputs())
	for i := range k.inputs {
		k.inputs[i] = c.Input(i)
	}
	in0 := k.inputs[0]
	if err := sameTypes(append([]*Tensor{out}, k.inputs...)...); err != nil {
		return err
	}
	if err := shapeCheckMovable("input", in0); err != nil {
		return err
	}
	rank := len(in0.Shape)
	scalars := rank == 0 // TFLite concatenates scalars into a vector along axis 0
	if scalars {
		rank = 1
	}
	axis := int(opts.Axis())
	if scalars && axis != 0 {
		return fmt.Errorf("axis %d: scalar inputs can only be concatenated along axis 0", axis)
	}
	axis, err := shapeAxis("axis", axis, rank)
	if err != nil {
		return err
	}
	shape := append([]int(nil), in0.Shape...)
	if scalars {
		shape = []int{0}
	}
	shape[axis] = 0
	for _, t := range k.inputs {
		ts := t.Shape
		if scalars {
			if len(ts) != 0 {
				return fmt.Errorf("input %s has rank %d, input %s has rank 0", t, len(ts), in0)
			}
			ts = []int{1}
		}
		if len(ts) != rank {
			return fmt.Errorf("input %s has rank %d, input %s has rank %d", t, len(ts), in0, rank)
		}
		for d := range ts {
			if d != axis && ts[d] != shape[d] {
				return fmt.Errorf("input %s differs from input %s in dimension %d (not the axis %d)", t, in0, d, axis)
			}
		}
		shape[axis] += ts[axis]
	}
	if err := c.SetOutputShape(0, shape); err != nil {
		return err
	}

	es := in0.Type.Size()
	k.outer = shapeProduct(shape[:axis])
	inner := shapeProduct(shape[axis+1:])
	k.block = make([]int, len(k.inputs))
	for i, t := range k.inputs {
		n := 1
		if !scalars {
			n = t.Shape[axis]
		}
		k.block[i] = n * inner * es
	}

	switch in0.Type {
	case Int8:
		for _, t := range k.inputs {
			if t.Scale() != out.Scale() || t.ZeroPoint() != out.ZeroPoint() {
				return fmt.Errorf("int8 input %s has scale %g and zero point %d, the output %g and %d: int8 concatenation does not requantize", t, t.Scale(), t.ZeroPoint(), out.Scale(), out.ZeroPoint())
			}
		}
	case Int16:
		for _, t := range append([]*Tensor{out}, k.inputs...) {
			if t.ZeroPoint() != 0 {
				return fmt.Errorf("int16 tensor %s has zero point %d, int16 concatenation needs 0", t, t.ZeroPoint())
			}
		}
	case Uint8:
		if err := k.prepareRescale(); err != nil {
			return err
		}
	}

	switch act := opts.FusedActivationFunction(); {
	case act == tflite.ActivationFunctionTypeNONE:
	case in0.Type == Float32:
		lo, hi, err := activationRangeFloat(act)
		if err != nil {
			return err
		}
		k.activation, k.actMin, k.actMax = true, lo, hi
	default:
		return fmt.Errorf("fused activation %s is not supported on %s concatenation", tflite.EnumNamesActivationFunctionType[act], in0.Type)
	}
	return nil
}

// prepareRescale computes ConcatenationWithScaling's parameters for uint8
// inputs whose scale or zero point differs from the output's.
func (k *concatenation) prepareRescale() error {
	out := k.output
	k.outZP = out.ZeroPoint()
	for i, t := range k.inputs {
		if t.Scale() == out.Scale() && t.ZeroPoint() == out.ZeroPoint() {
			continue
		}
		if !(out.Scale() > 0) || math.IsInf(float64(out.Scale()), 0) {
			return fmt.Errorf("uint8 input %s needs requantizing, but output %s has no usable scale (%g)", t, out, out.Scale())
		}
		if k.rescale == nil {
			k.rescale = make([]*concatRescale, len(k.inputs))
		}
		inverse := 1 / out.Scale()
		scale := t.Scale() * inverse
		k.rescale[i] = &concatRescale{scale: scale, bias: float32(-t.ZeroPoint()) * scale}
	}
	return nil
}

func (k *concatenation) Eval() error {
	concatenationRef(k)
	if k.activation {
		out := k.output.Float32s()
		for i, v := range out {
			out[i] = clampFloat32(v, k.actMin, k.actMax)
		}
	}
	return nil
}

// concatenationRef is the reference kernel: for each outer index, each
// input's block in turn.
func concatenationRef(k *concatenation) {
	out := k.output.Bytes()
	pos := 0
	for o := range k.outer {
		for i, t := range k.inputs {
			n := k.block[i]
			src := t.Bytes()[o*n : (o+1)*n]
			dst := out[pos : pos+n]
			if k.rescale != nil && k.rescale[i] != nil {
				concatRescaleUint8(dst, src, k.rescale[i], k.outZP)
			} else {
				copy(dst, src)
			}
			pos += n
		}
	}
}

// concatRescaleUint8 requantizes as ConcatenationWithScaling: float
// q*scale + bias (two roundings, no fused multiply-add), rounded half away
// from zero, plus the output zero point, saturated to uint8.
func concatRescaleUint8(dst, src []uint8, r *concatRescale, outZP int32) {
	for j, q := range src {
		f := float32(float32(q)*r.scale) + r.bias
		v := math.Round(float64(f))
		// Clamping in float first keeps the conversion defined; values
		// beyond ±2^20 saturate below either way.
		if v > 1<<20 {
			v = 1 << 20
		} else if v < -(1 << 20) {
			v = -(1 << 20)
		}
		dst[j] = uint8(clampInt32(int32(v)+outZP, 0, math.MaxUint8))
	}
}

// pack stacks N tensors of one shape along a new axis.
type pack struct {
	inputs []*Tensor
	output *Tensor
	outer  int // product of the input dimensions before the axis
	block  int // bytes per input per outer step
}

func (k *pack) Prepare(c *PrepareContext) error {
	var opts tflite.PackOptions
	if err := c.Options(tflite.BuiltinOptionsPackOptions, &opts); err != nil {
		return err
	}
	n := int(opts.ValuesCount())
	if n < 1 {
		return fmt.Errorf("values_count %d must be at least 1", n)
	}
	if err := c.ExpectIO(n, n, 1); err != nil {
		return fmt.Errorf("values_count %d: %w", n, err)
	}
	k.output = c.Output(0)
	k.inputs = make([]*Tensor, n)
	for i := range k.inputs {
		k.inputs[i] = c.Input(i)
	}
	in0 := k.inputs[0]
	if err := sameTypes(append([]*Tensor{k.output}, k.inputs...)...); err != nil {
		return err
	}
	if err := shapeCheckMovable("input", in0); err != nil {
		return err
	}
	for _, t := range k.inputs {
		if !SameShape(t.Shape, in0.Shape) {
			return fmt.Errorf("input %s and input %s differ in shape", t, in0)
		}
		if t.Scale() != k.output.Scale() || t.ZeroPoint() != k.output.ZeroPoint() {
			return fmt.Errorf("input %s has scale %g and zero point %d, output %g and %d: pack does not requantize", t, t.Scale(), t.ZeroPoint(), k.output.Scale(), k.output.ZeroPoint())
		}
	}
	axis, err := shapeAxis("axis", int(opts.Axis()), len(in0.Shape)+1)
	if err != nil {
		return err
	}
	shape := make([]int, 0, len(in0.Shape)+1)
	shape = append(shape, in0.Shape[:axis]...)
	shape = append(shape, n)
	shape = append(shape, in0.Shape[axis:]...)
	if err := c.SetOutputShape(0, shape); err != nil {
		return err
	}
	k.outer = shapeProduct(in0.Shape[:axis])
	k.block = shapeProduct(in0.Shape[axis:]) * in0.Type.Size()
	return nil
}

func (k *pack) Eval() error {
	packRef(k)
	return nil
}

// packRef is the reference kernel: block k of input i goes to output block
// k*N + i.
func packRef(k *pack) {
	out := k.output.Bytes()
	n := len(k.inputs)
	for i, t := range k.inputs {
		in := t.Bytes()
		for o := range k.outer {
			dst := (o*n + i) * k.block
			copy(out[dst:dst+k.block], in[o*k.block:(o+1)*k.block])
		}
	}
}

// unpack splits a tensor along an axis into tensors without that axis.
type unpack struct {
	input   *Tensor
	outputs []*Tensor
	outer   int // product of the input dimensions before the axis
	block   int // bytes per output per outer step
}

func (k *unpack) Prepare(c *PrepareContext) error {
	var opts tflite.UnpackOptions
	if err := c.Options(tflite.BuiltinOptionsUnpackOptions, &opts); err != nil {
		return err
	}
	if err := c.ExpectIO(1, 1, c.NumOutputs()); err != nil {
		return err
	}
	k.input = c.Input(0)
	in := k.input
	if err := shapeCheckMovable("input", in); err != nil {
		return err
	}
	axis, err := shapeAxis("axis", int(opts.Axis()), len(in.Shape))
	if err != nil {
		return err
	}
	n := in.Shape[axis]
	if num := int(opts.Num()); num != n {
		return fmt.Errorf("num %d differs from the size %d of input %s along axis %d", num, n, in, axis)
	}
	if c.NumOutputs() != n {
		return fmt.Errorf("has %d outputs, input %s has %d along axis %d", c.NumOutputs(), in, n, axis)
	}
	shape := append(append([]int(nil), in.Shape[:axis]...), in.Shape[axis+1:]...)
	k.outputs = make([]*Tensor, n)
	for i := range k.outputs {
		t := c.Output(i)
		k.outputs[i] = t
		if err := sameTypes(in, t); err != nil {
			return err
		}
		if t.Scale() != in.Scale() || t.ZeroPoint() != in.ZeroPoint() {
			return fmt.Errorf("output %s has scale %g and zero point %d, input %g and %d: unpack does not requantize", t, t.Scale(), t.ZeroPoint(), in.Scale(), in.ZeroPoint())
		}
		if err := c.SetOutputShape(i, shape); err != nil {
			return err
		}
	}
	k.outer = shapeProduct(in.Shape[:axis])
	k.block = shapeProduct(in.Shape[axis+1:]) * in.Type.Size()
	return nil
}

func (k *unpack) Eval() error {
	unpackRef(k)
	return nil
}

// unpackRef is the reference kernel: output i takes input block k*N + i.
func unpackRef(k *unpack) {
	in := k.input.Bytes()
	n := len(k.outputs)
	for i, t := range k.outputs {
		out := t.Bytes()
		for o := range k.outer {
			src := (o*n + i) * k.block
			copy(out[o*k.block:(o+1)*k.block], in[src:src+k.block])
		}
	}
}
