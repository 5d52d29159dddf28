package runtime

import (
	"fmt"

	"github.com/edged/edged/internal/runtime/tflite"
)

// SPLIT and SPLIT_V: cutting a tensor along an axis into num_splits pieces,
// equal ones (SPLIT: inputs axis, tensor) or of the sizes the size_splits
// input lists, one of which may be -1 for the rest (SPLIT_V: inputs tensor,
// size_splits, axis). The axis is a constant input, as TFLM requires; it
// may be negative. Non-constant size_splits are read at Eval and must match
// the outputs' declared shapes, as TFLM takes them.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorSPLIT, MaxVersion: 4, New: func() Kernel { return &split{} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorSPLIT_V, MaxVersion: 2, New: func() Kernel { return &split{v: true} }})
}

type split struct {
	v       bool // SPLIT_V
	input   *Tensor
	outputs []*Tensor
	outer   int   // product of the dimensions before the axis
	inner   int   // bytes per index along the axis
	sizes   []int // per output: its size along the axis

	sizeSplits *Tensor // SPLIT_V's non-constant size_splits, else nil
	raw        []int
}

func (k *split) Prepare(c *PrepareContext) error {
	nIn := 2
	if k.v {
		nIn = 3
	}
	if err := c.ExpectIO(nIn, nIn, c.NumOutputs()); err != nil {
		return err
	}
	var n int
	var axisT *Tensor
	if k.v {
		var opts tflite.SplitVOptions
		if err := c.Options(tflite.BuiltinOptionsSplitVOptions, &opts); err != nil {
			return err
		}
		n = int(opts.NumSplits())
		k.input, axisT = c.Input(0), c.Input(2)
	} else {
		var opts tflite.SplitOptions
		if err := c.Options(tflite.BuiltinOptionsSplitOptions, &opts); err != nil {
			return err
		}
		n = int(opts.NumSplits())
		axisT, k.input = c.Input(0), c.Input(1)
	}
	in := k.input
	if n < 1 || c.NumOutputs() != n {
		return fmt.Errorf("num_splits is %d, the operator has %d outputs", n, c.NumOutputs())
	}
	if err := shapeCheckMovable("input", in); err != nil {
		return err
	}
	axisV, err := shapeConstScalar("axis", axisT)
	if err != nil {
		return err
	}
	axis, err := shapeAxis("axis", axisV, len(in.Shape))
	if err != nil {
		return err
	}
	dim := in.Shape[axis]
	k.sizes = make([]int, n)
	k.outputs = make([]*Tensor, n)
	for i := range k.outputs {
		k.outputs[i] = c.Output(i)
		if err := sameTypes(in, k.outputs[i]); err != nil {
			return err
		}
	}
	switch {
	case !k.v:
		if dim%n != 0 {
			return fmt.Errorf("input %s has %d elements along axis %d, not divisible into %d splits", in, dim, axis, n)
		}
		for i := range k.sizes {
			k.sizes[i] = dim / n
		}
	case c.Input(1).Const:
		if err := k.splitSizes(c.Input(1), n, dim); err != nil {
			return err
		}
	default:
		// Sizes from the outputs' declared shapes, checked against
		// size_splits at Eval.
		k.sizeSplits = c.Input(1)
		if err := k.checkSizeSplits(k.sizeSplits, n); err != nil {
			return err
		}
		sum := 0
		for i, o := range k.outputs {
			shape, err := shapeDeclared(c, o, len(in.Shape), fmt.Sprintf("size_splits %s is not constant", k.sizeSplits))
			if err != nil {
				return err
			}
			k.sizes[i] = shape[axis]
			sum += shape[axis]
		}
		if sum != dim {
			return fmt.Errorf("outputs declare %d elements along axis %d, input %s has %d", sum, axis, in, dim)
		}
	}
	for i := range k.outputs {
		shape := append([]int(nil), in.Shape...)
		shape[axis] = k.sizes[i]
		if err := c.SetOutputShape(i, shape); err != nil {
			return err
		}
	}
	k.outer = shapeProduct(in.Shape[:axis])
	k.inner = shapeProduct(in.Shape[axis+1:]) * in.Type.Size()
	return nil
}

func (k *split) checkSizeSplits(t *Tensor, n int) error {
	if !shapeIntTensor(t) {
		return fmt.Errorf("size_splits %s must be an int32 or int64 tensor", t)
	}
	if len(t.Shape) != 1 || t.Shape[0] != n {
		return fmt.Errorf("size_splits %s must be a vector of %d values", t, n)
	}
	k.raw = make([]int, n)
	return nil
}

// splitSizes reads constant size_splits, resolving one -1.
func (k *split) splitSizes(t *Tensor, n, dim int) error {
	if err := k.checkSizeSplits(t, n); err != nil {
		return err
	}
	shapeReadInts(t, k.raw)
	return splitResolve(t, k.raw, k.sizes, dim)
}

// splitResolve turns size_splits into sizes: at most one -1 takes what the
// others leave of dim; the sizes must add up to dim.
func splitResolve(t *Tensor, raw, sizes []int, dim int) error {
	unknown, sum := -1, 0
	for i, s := range raw {
		switch {
		case s == -1 && unknown < 0:
			unknown = i
		case s < 0:
			return fmt.Errorf("size_splits %s: entry %d is %d", t, i, s)
		default:
			sum += s
		}
		sizes[i] = s
	}
	if unknown >= 0 {
		if sum > dim {
			return fmt.Errorf("size_splits %s add up to %d, more than the %d elements along the axis", t, sum, dim)
		}
		sizes[unknown] = dim - sum
		sum = dim
	}
	if sum != dim {
		return fmt.Errorf("size_splits %s add up to %d, the axis has %d elements", t, sum, dim)
	}
	return nil
}

func (k *split) Eval() error {
	if k.sizeSplits != nil {
		shapeReadInts(k.sizeSplits, k.raw)
		for i, s := range k.raw {
			if s != k.sizes[i] && !(s == -1 && splitOnlyUnknown(k.raw, i)) {
				return fmt.Errorf("size_splits %s gives output %d size %d along the axis, it has %d", k.sizeSplits, i, s, k.sizes[i])
			}
		}
	}
	splitRef(k)
	return nil
}

// splitOnlyUnknown reports whether entry i is the only -1 of raw (the sizes
// were already checked to add up, so it stands for the declared size).
func splitOnlyUnknown(raw []int, i int) bool {
	for j, s := range raw {
		if j != i && s == -1 {
			return false
		}
	}
	return true
}

// splitRef is the reference kernel: for each outer index, each output's
// block in turn from the input.
func splitRef(k *split) {
	in := k.input.Bytes()
	pos := 0
	for o := range k.outer {
		for i, t := range k.outputs {
			n := k.sizes[i] * k.inner
			copy(t.Bytes()[o*n:(o+1)*n], in[pos:pos+n])
			pos += n
		}
	}
}
