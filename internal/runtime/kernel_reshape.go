package runtime

import (
	"fmt"

	"github.com/edged/edged/internal/runtime/tflite"
)

// RESHAPE: the same elements under a new shape. The shape comes from the
// constant shape input, else the options' new_shape, else the model's
// declared output shape; one dimension may be -1 and is inferred.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorRESHAPE, MaxVersion: 1, New: func() Kernel { return &reshape{} }})
}

type reshape struct {
	input, output *Tensor
}

func (k *reshape) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(1, 2, 1); err != nil {
		return err
	}
	k.input, k.output = c.Input(0), c.Output(0)
	if err := sameTypes(k.input, k.output); err != nil {
		return err
	}
	var shape []int
	switch s := c.Input(1); {
	case s != nil && s.Const:
		if s.Type != Int32 || len(s.Shape) > 1 {
			return fmt.Errorf("shape input %s must be a 1-D int32 tensor", s)
		}
		for _, v := range s.Int32s() {
			shape = append(shape, int(v))
		}
	default:
		var opts tflite.ReshapeOptions
		if err := c.Options(tflite.BuiltinOptionsReshapeOptions, &opts); err != nil {
			return err
		}
		if n := opts.NewShapeLength(); n > 0 {
			for i := range n {
				shape = append(shape, int(opts.NewShape(i)))
			}
		} else {
			shape = append(shape, c.it.graph.Tensors[k.output.Index].Shape...)
			if c.NumInputs() == 1 && len(shape) == 1 && shape[0] == 0 {
				shape = shape[:0] // legacy scalar marker
			}
		}
	}
	shape, err := inferShape(shape, k.input.NumElements())
	if err != nil {
		return err
	}
	return c.SetOutputShape(0, shape)
}

// inferShape resolves one -1 dimension so that shape holds n elements, and
// checks that it does.
func inferShape(shape []int, n int) ([]int, error) {
	shape = append([]int(nil), shape...)
	stretch, known := -1, 1
	for i, d := range shape {
		switch {
		case d == -1 && stretch < 0:
			stretch = i
		case d < 0:
			return nil, fmt.Errorf("new shape %s has an invalid dimension", FormatShape(shape))
		default:
			known *= d
		}
	}
	if stretch >= 0 {
		if known == 0 || n%known != 0 {
			return nil, fmt.Errorf("cannot reshape %d elements into %s", n, FormatShape(shape))
		}
		shape[stretch] = n / known
		known *= shape[stretch]
	}
	if known != n {
		return nil, fmt.Errorf("cannot reshape %d elements into %s (%d elements)", n, FormatShape(shape), known)
	}
	return shape, nil
}

func (k *reshape) Eval() error {
	copy(k.output.Bytes(), k.input.Bytes())
	return nil
}
