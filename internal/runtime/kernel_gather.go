package runtime

import (
	"fmt"

	"github.com/edged/edged/internal/runtime/tflite"
)

// GATHER and GATHER_ND: picking slices of a tensor by index, any element
// type, int16/int32/int64 indices.
//
// GATHER (axis, batch_dims; reference_ops::Gather): output shape
// params[:axis] + indices[batch_dims:] + params[axis+1:]. GATHER_ND
// (reference_ops::GatherNd): the innermost indices dimension addresses the
// leading dimensions of params; output shape indices[:-1] +
// params[nd:]. An index outside its dimension is an error at Eval (TFLite's
// GATHER fails too; TFLM's GATHER_ND only checks the flat position, edged
// checks each index).

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorGATHER, MaxVersion: 7, New: func() Kernel { return &gather{} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorGATHER_ND, MaxVersion: 5, New: func() Kernel { return &gatherND{} }})
}

// gatherIndex is an index element type.
type gatherIndex interface{ ~int16 | ~int32 | ~int64 }

func gatherCheckIndices(t *Tensor) error {
	switch t.Type {
	case Int16, Int32, Int64:
		return nil
	}
	return UnsupportedTypes("indices", t.Type)
}

type gather struct {
	params, indices, output *Tensor

	batch, outer, coords, axisSize int
	inner                          int // bytes of one gathered slice
}

func (k *gather) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(2, 2, 1); err != nil {
		return err
	}
	var opts tflite.GatherOptions
	if err := c.Options(tflite.BuiltinOptionsGatherOptions, &opts); err != nil {
		return err
	}
	k.params, k.indices, k.output = c.Input(0), c.Input(1), c.Output(0)
	p, idx := k.params, k.indices
	if err := sameTypes(p, k.output); err != nil {
		return err
	}
	if err := shapeCheckMovable("params", p); err != nil {
		return err
	}
	if err := gatherCheckIndices(idx); err != nil {
		return err
	}
	pRank, iRank := len(p.Shape), len(idx.Shape)
	axis, err := shapeAxis("axis", int(opts.Axis()), pRank)
	if err != nil {
		return err
	}
	batchDims := int(opts.BatchDims())
	if batchDims < 0 {
		batchDims += iRank
	}
	if batchDims < 0 || batchDims > axis || batchDims > iRank {
		return fmt.Errorf("batch_dims %d must be in [0, %d] (axis %d, indices %s)", opts.BatchDims(), min(axis, iRank), axis, idx)
	}
	for i := range batchDims {
		if p.Shape[i] != idx.Shape[i] {
			return fmt.Errorf("batch dimension %d differs: params %s, indices %s", i, p, idx)
		}
	}
	shape := make([]int, 0, pRank+iRank-1-batchDims)
	shape = append(shape, p.Shape[:axis]...)
	shape = append(shape, idx.Shape[batchDims:]...)
	shape = append(shape, p.Shape[axis+1:]...)
	if err := c.SetOutputShape(0, shape); err != nil {
		return err
	}
	k.batch = shapeProduct(p.Shape[:batchDims])
	k.outer = shapeProduct(p.Shape[batchDims:axis])
	k.coords = shapeProduct(idx.Shape[batchDims:])
	k.axisSize = p.Shape[axis]
	k.inner = shapeProduct(p.Shape[axis+1:]) * p.Type.Size()
	return nil
}

func (k *gather) Eval() error {
	switch k.indices.Type {
	case Int16:
		return gatherRef(k, k.indices.Int16s())
	case Int32:
		return gatherRef(k, k.indices.Int32s())
	case Int64:
		return gatherRef(k, k.indices.Int64s())
	}
	return nil
}

// gatherRef is the reference kernel (reference_ops::Gather): for each batch
// and outer index, the slices the batch's indices name.
func gatherRef[I gatherIndex](k *gather, indices []I) error {
	in, out := k.params.Bytes(), k.output.Bytes()
	n := k.inner
	for b := range k.batch {
		for o := range k.outer {
			for c := range k.coords {
				i := int64(indices[b*k.coords+c])
				if i < 0 || i >= int64(k.axisSize) {
					return fmt.Errorf("index %d (at position %d of indices %s) is out of range [0, %d)", i, b*k.coords+c, k.indices, k.axisSize)
				}
				dst := ((b*k.outer+o)*k.coords + c) * n
				src := ((b*k.outer+o)*k.axisSize + int(i)) * n
				copy(out[dst:dst+n], in[src:src+n])
			}
		}
	}
	return nil
}

type gatherND struct {
	params, indices, output *Tensor

	slices int   // number of index tuples
	nd     int   // length of one index tuple
	dims   []int // the params dimensions the tuples address
	stride []int // their strides, in bytes
	block  int   // bytes of one gathered slice
}

func (k *gatherND) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(2, 2, 1); err != nil {
		return err
	}
	k.params, k.indices, k.output = c.Input(0), c.Input(1), c.Output(0)
	p, idx := k.params, k.indices
	if err := sameTypes(p, k.output); err != nil {
		return err
	}
	if err := shapeCheckMovable("params", p); err != nil {
		return err
	}
	if err := gatherCheckIndices(idx); err != nil {
		return err
	}
	pRank, iRank := len(p.Shape), len(idx.Shape)
	if pRank < 1 {
		return fmt.Errorf("params %s must have rank 1 or more", p)
	}
	if iRank < 1 {
		return fmt.Errorf("indices %s must have rank 1 or more", idx)
	}
	k.nd = idx.Shape[iRank-1]
	if k.nd > pRank {
		return fmt.Errorf("indices %s address %d dimensions, params %s has %d", idx, k.nd, p, pRank)
	}
	shape := make([]int, 0, iRank-1+pRank-k.nd)
	shape = append(shape, idx.Shape[:iRank-1]...)
	shape = append(shape, p.Shape[k.nd:]...)
	if err := c.SetOutputShape(0, shape); err != nil {
		return err
	}
	k.slices = shapeProduct(idx.Shape[:iRank-1])
	es := p.Type.Size()
	k.block = shapeProduct(p.Shape[k.nd:]) * es
	k.dims = append([]int(nil), p.Shape[:k.nd]...)
	k.stride = make([]int, k.nd)
	s := k.block
	for i := k.nd - 1; i >= 0; i-- {
		k.stride[i] = s
		s *= p.Shape[i]
	}
	return nil
}

func (k *gatherND) Eval() error {
	switch k.indices.Type {
	case Int16:
		return gatherNDRef(k, k.indices.Int16s())
	case Int32:
		return gatherNDRef(k, k.indices.Int32s())
	case Int64:
		return gatherNDRef(k, k.indices.Int64s())
	}
	return nil
}

// gatherNDRef is the reference kernel (reference_ops::GatherNd).
func gatherNDRef[I gatherIndex](k *gatherND, indices []I) error {
	in, out := k.params.Bytes(), k.output.Bytes()
	for s := range k.slices {
		from := 0
		for j := range k.nd {
			i := int64(indices[s*k.nd+j])
			if i < 0 || i >= int64(k.dims[j]) {
				return fmt.Errorf("index %d (entry %d of tuple %d of indices %s) is out of range [0, %d)", i, j, s, k.indices, k.dims[j])
			}
			from += int(i) * k.stride[j]
		}
		copy(out[s*k.block:(s+1)*k.block], in[from:from+k.block])
	}
	return nil
}
