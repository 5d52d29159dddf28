package runtime

import (
	"fmt"

	"github.com/edged/edged/internal/runtime/tflite"
)

// SQUEEZE and EXPAND_DIMS: the same elements under a shape with size-1
// dimensions removed or inserted, as TensorFlow Lite's squeeze.cc and
// expand_dims.cc compute it.
//
// This file also holds the helpers the shape-op family shares (concat, pad,
// transpose, slice, split, gather, arg_min_max, resize): they are prefixed
// "shape" so they do not collide with other kernel families.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorSQUEEZE, MaxVersion: 2, New: func() Kernel { return &squeeze{} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorEXPAND_DIMS, MaxVersion: 1, New: func() Kernel { return &expandDims{} }})
}

// shapeWord is the storage of one element of a 1, 2, 4 or 8 byte type:
// kernels that only move elements work on these, whatever the element type.
type shapeWord interface {
	~uint8 | ~uint16 | ~uint32 | ~uint64
}

// shapeCheckMovable checks that a tensor's elements have a fixed size that
// the data-movement kernels handle (every type but strings).
func shapeCheckMovable(what string, t *Tensor) error {
	switch t.Type.Size() {
	case 1, 2, 4, 8:
		return nil
	}
	return UnsupportedTypes(what, t.Type)
}

// shapeIntTensor reports whether t holds integers shapeReadInts can read.
func shapeIntTensor(t *Tensor) bool {
	switch t.Type {
	case Int8, Int16, Int32, Int64:
		return true
	}
	return false
}

// shapeReadInts copies the elements of an integer tensor into dst, which
// must have room for them; it does not allocate, so Eval may use it.
func shapeReadInts(t *Tensor, dst []int) {
	switch t.Type {
	case Int8:
		for i, v := range t.Int8s()[:len(dst)] {
			dst[i] = int(v)
		}
	case Int16:
		for i, v := range t.Int16s()[:len(dst)] {
			dst[i] = int(v)
		}
	case Int32:
		for i, v := range t.Int32s()[:len(dst)] {
			dst[i] = int(v)
		}
	case Int64:
		for i, v := range t.Int64s()[:len(dst)] {
			dst[i] = int(v)
		}
	}
}

// shapeConstInts returns the contents of a constant integer tensor (int32 or
// int64; int8 and int16 are accepted too).
func shapeConstInts(what string, t *Tensor) ([]int, error) {
	if !t.Const {
		return nil, fmt.Errorf("%s %s must be a constant tensor", what, t)
	}
	if !shapeIntTensor(t) {
		return nil, fmt.Errorf("%s %s must be an int32 or int64 tensor", what, t)
	}
	out := make([]int, t.NumElements())
	shapeReadInts(t, out)
	return out, nil
}

// shapeConstScalar returns the single value of a constant integer tensor of
// one element (a scalar or a 1-element vector).
func shapeConstScalar(what string, t *Tensor) (int, error) {
	v, err := shapeConstInts(what, t)
	if err != nil {
		return 0, err
	}
	if len(v) != 1 || len(t.Shape) > 1 {
		return 0, fmt.Errorf("%s %s must hold exactly one value", what, t)
	}
	return v[0], nil
}

// shapeAxis resolves a possibly negative axis against a rank: the result
// is in [0, rank).
func shapeAxis(what string, axis, rank int) (int, error) {
	a := axis
	if a < 0 {
		a += rank
	}
	if a < 0 || a >= rank {
		return 0, fmt.Errorf("%s %d is out of range for rank %d", what, axis, rank)
	}
	return a, nil
}

// shapeDeclared returns the shape the model declares for tensor t. Kernels
// whose output shape depends on a non-constant input use it (checked
// against the input's values at Eval): it must have the given rank and no
// unknown dimensions.
func shapeDeclared(c *PrepareContext, t *Tensor, rank int, why string) ([]int, error) {
	declared := c.it.graph.Tensors[t.Index].Shape
	if len(declared) != rank {
		return nil, fmt.Errorf("%s, so output %s must declare a shape of rank %d, it declares %s", why, t, rank, FormatShape(declared))
	}
	for _, d := range declared {
		if d < 0 {
			return nil, fmt.Errorf("%s, so output %s must declare its full shape, it declares %s", why, t, FormatShape(declared))
		}
	}
	return append([]int(nil), declared...), nil
}

// shapeFill fills dst with copies of the element value v (len(v) bytes).
func shapeFill(dst, v []byte) {
	if len(dst) == 0 {
		return
	}
	if len(v) == 1 {
		for i := range dst {
			dst[i] = v[0]
		}
		return
	}
	n := copy(dst, v)
	for n < len(dst) {
		n += copy(dst[n:], dst[:n])
	}
}

// shapeProduct multiplies dims.
func shapeProduct(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

// squeeze removes size-1 dimensions: the listed ones, or all of them when
// the options list none.
type squeeze struct {
	input, output *Tensor
}

// squeezeMaxRank is TensorFlow Lite's limit on the input rank.
const squeezeMaxRank = 8

func (k *squeeze) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(1, 1, 1); err != nil {
		return err
	}
	var opts tflite.SqueezeOptions
	if err := c.Options(tflite.BuiltinOptionsSqueezeOptions, &opts); err != nil {
		return err
	}
	k.input, k.output = c.Input(0), c.Output(0)
	in := k.input
	if err := sameTypes(in, k.output); err != nil {
		return err
	}
	if err := shapeCheckMovable("input", in); err != nil {
		return err
	}
	rank := len(in.Shape)
	if rank > squeezeMaxRank {
		return fmt.Errorf("input %s has rank %d, more than %d", in, rank, squeezeMaxRank)
	}
	drop := make([]bool, rank)
	if opts.SqueezeDimsLength() == 0 {
		for i, d := range in.Shape {
			drop[i] = d == 1
		}
	} else {
		for j := range opts.SqueezeDimsLength() {
			a, err := shapeAxis("squeeze dimension", int(opts.SqueezeDims(j)), rank)
			if err != nil {
				return err
			}
			if in.Shape[a] != 1 {
				return fmt.Errorf("cannot squeeze dimension %d of input %s: its size is %d, not 1", a, in, in.Shape[a])
			}
			drop[a] = true
		}
	}
	shape := []int{}
	for i, d := range in.Shape {
		if !drop[i] {
			shape = append(shape, d)
		}
	}
	return c.SetOutputShape(0, shape)
}

func (k *squeeze) Eval() error {
	copy(k.output.Bytes(), k.input.Bytes())
	return nil
}

// expandDims inserts a size-1 dimension at the position the constant axis
// input gives (negative counts from the end of the output's rank).
type expandDims struct {
	input, output *Tensor
}

func (k *expandDims) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(2, 2, 1); err != nil {
		return err
	}
	k.input, k.output = c.Input(0), c.Output(0)
	in := k.input
	if err := sameTypes(in, k.output); err != nil {
		return err
	}
	if err := shapeCheckMovable("input", in); err != nil {
		return err
	}
	axis, err := shapeConstScalar("axis", c.Input(1))
	if err != nil {
		return err
	}
	a, err := shapeAxis("axis", axis, len(in.Shape)+1)
	if err != nil {
		return err
	}
	shape := make([]int, 0, len(in.Shape)+1)
	shape = append(shape, in.Shape[:a]...)
	shape = append(shape, 1)
	shape = append(shape, in.Shape[a:]...)
	return c.SetOutputShape(0, shape)
}

func (k *expandDims) Eval() error {
	copy(k.output.Bytes(), k.input.Bytes())
	return nil
}
