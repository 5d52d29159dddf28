package runtime

import (
	"fmt"

	"github.com/edged/edged/internal/runtime/tflite"
)

// TRANSPOSE: output dimension i is input dimension perm[i], for tensors of
// up to 6 dimensions (TensorFlow Lite's limit) and any element type. The
// permutation comes from a constant int32 (or int64) input and must use
// every dimension exactly once.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorTRANSPOSE, MaxVersion: 6, New: func() Kernel { return &transpose{} }})
}

// transposeMaxRank is kTransposeMaxDimensions.
const transposeMaxRank = 6

type transpose struct {
	input, output *Tensor
	shape         []int // output shape
	stride        []int // per output dimension: its input stride, in elements
	index         []int // Eval's odometer
}

func (k *transpose) Prepare(c *PrepareContext) error {
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
	rank := len(in.Shape)
	if rank > transposeMaxRank {
		return fmt.Errorf("input %s has rank %d, more than %d", in, rank, transposeMaxRank)
	}
	permT := c.Input(1)
	perm, err := shapeConstInts("permutation", permT)
	if err != nil {
		return err
	}
	if len(permT.Shape) != 1 || len(perm) != rank {
		return fmt.Errorf("permutation %s must be a vector of %d values for input %s", permT, rank, in)
	}
	seen := make([]bool, rank)
	for i, p := range perm {
		if p < 0 || p >= rank {
			return fmt.Errorf("permutation %v: entry %d (%d) is out of range for rank %d", perm, i, p, rank)
		}
		if seen[p] {
			return fmt.Errorf("permutation %v uses dimension %d twice", perm, p)
		}
		seen[p] = true
	}
	inStride := make([]int, rank)
	for i := rank - 1; i >= 0; i-- {
		inStride[i] = 1
		if i+1 < rank {
			inStride[i] = inStride[i+1] * in.Shape[i+1]
		}
	}
	k.shape = make([]int, rank)
	k.stride = make([]int, rank)
	k.index = make([]int, rank)
	for i, p := range perm {
		k.shape[i] = in.Shape[p]
		k.stride[i] = inStride[p]
	}
	return c.SetOutputShape(0, k.shape)
}

func (k *transpose) Eval() error {
	in, out := k.input, k.output
	switch in.Type.Size() {
	case 1:
		transposeRef(k, view[uint8](in.data), view[uint8](out.data))
	case 2:
		transposeRef(k, view[uint16](in.data), view[uint16](out.data))
	case 4:
		transposeRef(k, view[uint32](in.data), view[uint32](out.data))
	case 8:
		transposeRef(k, view[uint64](in.data), view[uint64](out.data))
	}
	return nil
}

// transposeRef is the reference kernel (reference_ops::Transpose): it walks
// the output in order, keeping the matching input position, and steps along
// the innermost output dimension with that dimension's input stride.
func transposeRef[T shapeWord](k *transpose, in, out []T) {
	if len(out) == 0 {
		return
	}
	rank := len(k.shape)
	if rank == 0 {
		out[0] = in[0]
		return
	}
	last := rank - 1
	n, step := k.shape[last], k.stride[last]
	idx := k.index
	clear(idx)
	pos := 0
	for o := 0; o < len(out); o += n {
		p := pos
		for j := range n {
			out[o+j] = in[p]
			p += step
		}
		for d := last - 1; d >= 0; d-- {
			idx[d]++
			pos += k.stride[d]
			if idx[d] < k.shape[d] {
				break
			}
			pos -= k.stride[d] * k.shape[d]
			idx[d] = 0
		}
	}
}
