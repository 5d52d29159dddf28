package runtime

import (
	"fmt"

	"github.com/edged/edged/internal/runtime/tflite"
)

// PAD and PADV2: a constant border around a tensor of up to 5 dimensions,
// as reference_ops::Pad. The paddings input is a [rank, 2] integer tensor
// (before, after). PAD fills with zero (the output's zero point for
// quantized int8 and uint8, as TFLM and TFLite do; int16 fills with 0 like
// TFLM, so a quantized int16 output must have zero point 0); PADV2 fills
// with its scalar constant_values input, which must then share the output's
// quantization.
//
// Constant paddings give the output shape at Prepare. Non-constant ones are
// read at Eval: the output must declare its full shape and the paddings
// must produce exactly it.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorPAD, MaxVersion: 4, New: func() Kernel { return &pad{} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorPADV2, MaxVersion: 4, New: func() Kernel { return &pad{} }})
}

// padMaxRank is reference_ops::PadKernelMaxDimensionCount.
const padMaxRank = 5

type pad struct {
	input, paddings, value, output *Tensor

	dynamic bool // paddings are read at Eval
	raw     []int
	// Paddings and shapes extended to 5 dimensions (leading 1s, 0 padding).
	left, right [padMaxRank]int
	inShape     [padMaxRank]int
	outShape    [padMaxRank]int

	fill []byte // the pad value's bytes, when there is no value input

	optimized bool // padFast may run instead of padRef
}

func (k *pad) Prepare(c *PrepareContext) error {
	k.optimized = c.Optimized()
	if err := c.ExpectIO(2, 3, 1); err != nil {
		return err
	}
	k.input, k.paddings, k.value, k.output = c.Input(0), c.Input(1), c.Input(2), c.Output(0)
	in, p, out := k.input, k.paddings, k.output
	if err := sameTypes(in, out); err != nil {
		return err
	}
	if err := shapeCheckMovable("input", in); err != nil {
		return err
	}
	rank := len(in.Shape)
	if rank > padMaxRank {
		return fmt.Errorf("input %s has rank %d, more than %d", in, rank, padMaxRank)
	}
	if !shapeIntTensor(p) {
		return fmt.Errorf("paddings %s must be an int32 or int64 tensor", p)
	}
	if len(p.Shape) != 2 || p.Shape[0] != rank || p.Shape[1] != 2 {
		if !(rank == 0 && p.NumElements() == 0) {
			return fmt.Errorf("paddings %s must have shape [%d,2] for input %s", p, rank, in)
		}
	}
	k.raw = make([]int, 2*rank)

	var shape []int
	if p.Const {
		shapeReadInts(p, k.raw)
		shape = make([]int, rank)
		for i := range rank {
			l, r := k.raw[2*i], k.raw[2*i+1]
			if l < 0 || r < 0 {
				return fmt.Errorf("paddings %s: dimension %d has negative padding (%d, %d)", p, i, l, r)
			}
			shape[i] = in.Shape[i] + l + r
		}
	} else {
		k.dynamic = true
		var err error
		if shape, err = shapeDeclared(c, out, rank, fmt.Sprintf("paddings %s is not constant", p)); err != nil {
			return err
		}
	}
	if err := c.SetOutputShape(0, shape); err != nil {
		return err
	}
	ext := padMaxRank - rank
	for i := range padMaxRank {
		k.inShape[i], k.outShape[i] = 1, 1
	}
	for i := range rank {
		k.inShape[ext+i], k.outShape[ext+i] = in.Shape[i], shape[i]
	}
	if !k.dynamic {
		k.setPaddings()
	}
	return k.preparePadValue()
}

// preparePadValue checks the constant_values input, or computes the value
// PAD fills with.
func (k *pad) preparePadValue() error {
	in, out, v := k.input, k.output, k.value
	if v != nil {
		if err := sameTypes(in, v); err != nil {
			return err
		}
		if v.NumElements() != 1 {
			return fmt.Errorf("constant_values %s must hold exactly one value", v)
		}
		if out.Quant.Quantized() && (v.Scale() != out.Scale() || v.ZeroPoint() != out.ZeroPoint()) {
			return fmt.Errorf("constant_values %s has scale %g and zero point %d, output %s has %g and %d; they must match", v, v.Scale(), v.ZeroPoint(), out, out.Scale(), out.ZeroPoint())
		}
		return nil
	}
	k.fill = make([]byte, in.Type.Size())
	zp := out.ZeroPoint()
	switch in.Type {
	case Int8:
		if err := checkZeroPointRange("output", out); err != nil {
			return err
		}
		k.fill[0] = byte(int8(zp))
	case Uint8:
		if err := checkZeroPointRange("output", out); err != nil {
			return err
		}
		k.fill[0] = byte(uint8(zp))
	case Int16:
		if zp != 0 {
			return fmt.Errorf("int16 output %s has zero point %d; PAD fills int16 with 0, so it must be 0", out, zp)
		}
	}
	return nil
}

// setPaddings spreads the raw paddings over the 5-dimension layout.
func (k *pad) setPaddings() {
	rank := len(k.raw) / 2
	ext := padMaxRank - rank
	for i := range rank {
		k.left[ext+i], k.right[ext+i] = k.raw[2*i], k.raw[2*i+1]
	}
}

func (k *pad) Eval() error {
	if k.dynamic {
		shapeReadInts(k.paddings, k.raw)
		ext := padMaxRank - len(k.raw)/2
		for i := range len(k.raw) / 2 {
			l, r := k.raw[2*i], k.raw[2*i+1]
			if l < 0 || r < 0 {
				return fmt.Errorf("paddings %s: dimension %d has negative padding (%d, %d)", k.paddings, i, l, r)
			}
			if k.inShape[ext+i]+l+r != k.outShape[ext+i] {
				return fmt.Errorf("paddings %s: dimension %d padded by (%d, %d) gives %d, the output %s has %d", k.paddings, i, l, r, k.inShape[ext+i]+l+r, k.output, k.outShape[ext+i])
			}
		}
		k.setPaddings()
	}
	fill := k.fill
	if k.value != nil {
		fill = k.value.Bytes()[:k.input.Type.Size()]
	}
	if k.optimized && k.left[4] == 0 && k.right[4] == 0 {
		padFast(k, fill)
		return nil
	}
	padRef(k, fill)
	return nil
}

// padRef is the reference kernel, reference_ops::PadImpl's 5-dimension
// walk over the output with whole rows of the innermost dimension at a time:
// rows inside the padding of an outer dimension are all fill; other rows are
// left fill, a copy of the input row, right fill.
func padRef(k *pad, fill []byte) {
	es := k.input.Type.Size()
	in, out := k.input.Bytes(), k.output.Bytes()
	os, l, r := k.outShape, k.left, k.right
	depth := os[4] * es
	ld, rd := l[4]*es, r[4]*es
	inRow := depth - ld - rd
	inPos, outPos := 0, 0
	for b := range os[0] {
		for p := range os[1] {
			for h := range os[2] {
				for w := range os[3] {
					row := out[outPos : outPos+depth]
					outPos += depth
					if b < l[0] || b >= os[0]-r[0] ||
						p < l[1] || p >= os[1]-r[1] ||
						h < l[2] || h >= os[2]-r[2] ||
						w < l[3] || w >= os[3]-r[3] {
						shapeFill(row, fill)
						continue
					}
					shapeFill(row[:ld], fill)
					copy(row[ld:ld+inRow], in[inPos:inPos+inRow])
					inPos += inRow
					shapeFill(row[ld+inRow:], fill)
				}
			}
		}
	}
}
