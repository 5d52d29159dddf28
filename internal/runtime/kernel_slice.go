package runtime

import (
	"fmt"
	"math"

	"github.com/edged/edged/internal/runtime/tflite"
)

// STRIDED_SLICE and SLICE: a (strided) window of a tensor, any element
// type.
//
// STRIDED_SLICE follows full TensorFlow Lite: begin, end and strides are
// constant vectors; ellipsis_mask and new_axis_mask are expanded as
// strided_slice.cc's BuildStridedSliceParams does, and every axis's first
// and last index come from strided_slice_logic.h (negative indices count
// from the end, then clamping to [0, size] for positive strides and
// [-1, size-1] for negative ones, then begin_mask/end_mask override;
// shrink_axis_mask takes one element and drops the axis; offset makes end
// relative to begin). Where TensorFlow Lite would leave output elements
// unwritten (a shrunk axis whose index is out of range or whose stride is
// not positive; an offset slice running past the input) edged reports an
// error instead.
//
// SLICE takes begin and size vectors (size -1: to the end); non-constant
// ones are read at Eval and must produce the output's declared shape.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorSTRIDED_SLICE, MaxVersion: 8, New: func() Kernel { return &stridedSlice{} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorSLICE, MaxVersion: 6, New: func() Kernel { return &sliceOp{} }})
}

// sliceWalk describes which input elements a slice copies, in output order:
// along axis d it takes count[d] elements starting at start[d], step[d]
// input elements apart (stride times the axis's input stride).
type sliceWalk struct {
	start, step, count []int
	inStride           []int
	index              []int // Eval's odometer
}

func newSliceWalk(inShape []int) *sliceWalk {
	rank := len(inShape)
	w := &sliceWalk{
		start: make([]int, rank), step: make([]int, rank), count: make([]int, rank),
		inStride: make([]int, rank), index: make([]int, rank),
	}
	for i := rank - 1; i >= 0; i-- {
		w.inStride[i] = 1
		if i+1 < rank {
			w.inStride[i] = w.inStride[i+1] * inShape[i+1]
		}
	}
	return w
}

// sliceCopy runs the walk for any element size.
func sliceCopy(w *sliceWalk, in, out *Tensor) {
	switch in.Type.Size() {
	case 1:
		sliceWalkRef(w, view[uint8](in.data), view[uint8](out.data))
	case 2:
		sliceWalkRef(w, view[uint16](in.data), view[uint16](out.data))
	case 4:
		sliceWalkRef(w, view[uint32](in.data), view[uint32](out.data))
	case 8:
		sliceWalkRef(w, view[uint64](in.data), view[uint64](out.data))
	}
}

// sliceWalkRef is the reference kernel of both slices: the nested loops of
// reference_ops::StridedSlice over any number of axes, written as an
// odometer; a unit inner step copies whole runs.
func sliceWalkRef[T shapeWord](w *sliceWalk, in, out []T) {
	if len(out) == 0 {
		return
	}
	rank := len(w.count)
	if rank == 0 {
		out[0] = in[0]
		return
	}
	base := 0
	for d := range rank {
		base += w.start[d] * w.inStride[d]
	}
	last := rank - 1
	n, step := w.count[last], w.step[last]
	idx := w.index
	clear(idx)
	pos := base
	for o := 0; o < len(out); o += n {
		if step == 1 {
			copy(out[o:o+n], in[pos:pos+n])
		} else {
			p := pos
			for j := range n {
				out[o+j] = in[p]
				p += step
			}
		}
		for d := last - 1; d >= 0; d-- {
			idx[d]++
			pos += w.step[d]
			if idx[d] < w.count[d] {
				break
			}
			pos -= w.step[d] * w.count[d]
			idx[d] = 0
		}
	}
}

type stridedSlice struct {
	input, output *Tensor
	walk          *sliceWalk
}

// ssParams are the per-axis parameters after ellipsis and new axes are
// expanded (TFLite's StridedSliceParams).
type ssParams struct {
	start, stop, stride          []int
	beginMask, endMask, shrinkMk uint64
	offset                       bool
	shape                        []int // the effective input shape
}

func ssBit(mask uint64, i int) bool { return i >= 0 && i < 64 && mask&(1<<uint(i)) != 0 }

func (k *stridedSlice) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(4, 4, 1); err != nil {
		return err
	}
	var opts tflite.StridedSliceOptions
	if err := c.Options(tflite.BuiltinOptionsStridedSliceOptions, &opts); err != nil {
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
	var vecs [3][]int
	for i, name := range []string{"begin", "end", "strides"} {
		t := c.Input(1 + i)
		v, err := shapeConstInts(name, t)
		if err != nil {
			return err
		}
		if len(t.Shape) != 1 {
			return fmt.Errorf("%s %s must be a vector", name, t)
		}
		vecs[i] = v
	}
	begin, end, strides := vecs[0], vecs[1], vecs[2]
	if len(end) != len(begin) || len(strides) != len(begin) {
		return fmt.Errorf("begin, end and strides have %d, %d and %d values; they must match", len(begin), len(end), len(strides))
	}
	p, err := stridedSliceParams(opts, begin, end, strides, in.Shape)
	if err != nil {
		return err
	}

	eff := len(p.shape)
	k.walk = newSliceWalk(p.shape)
	var shape []int
	for i := range eff {
		stride := p.stride[i]
		if stride == 0 {
			return fmt.Errorf("strides %v: stride of axis %d is 0", strides, i)
		}
		size := p.shape[i]
		start := ssStartForAxis(p, i)
		stop := ssEndForAxis(p, i, start)
		count := 0
		if ssBit(p.shrinkMk, i) {
			if stride <= 0 || start < 0 || start >= size {
				return fmt.Errorf("shrink_axis_mask: axis %d takes index %d with stride %d, but it has %d elements", i, start, stride, size)
			}
			count = 1
		} else {
			count = ssCount(start, stop, stride)
			if p.offset {
				// TensorFlow Lite sizes an offset slice as ceil(end/stride)
				// whatever the input holds; it must be what the walk copies.
				want := int(math.Ceil(float64(float32(p.stop[i]) / float32(stride))))
				if want < 0 {
					want = 0
				}
				if want != count {
					return fmt.Errorf("offset slice of axis %d (begin %d, size %d, stride %d) runs outside the input's %d elements", i, p.start[i], p.stop[i], stride, size)
				}
			}
			shape = append(shape, count)
		}
		k.walk.start[i] = start
		k.walk.count[i] = count
		k.walk.step[i] = stride * k.walk.inStride[i]
	}
	if shape == nil {
		shape = []int{}
	}
	return c.SetOutputShape(0, shape)
}

// stridedSliceParams expands ellipsis_mask and new_axis_mask into
// per-axis begin/end/stride and masks, as TFLite's BuildStridedSliceParams.
func stridedSliceParams(opts tflite.StridedSliceOptions, begin, end, strides, inShape []int) (*ssParams, error) {
	n := len(begin)
	inRank := len(inShape)
	ellipsis := uint64(uint32(opts.EllipsisMask()))
	newAxis := uint64(uint32(opts.NewAxisMask()))
	if ellipsis>>uint(n) != 0 || newAxis>>uint(n) != 0 {
		return nil, fmt.Errorf("ellipsis_mask %#x or new_axis_mask %#x marks entries beyond the %d given", ellipsis, newAxis, n)
	}
	if ellipsis&(ellipsis-1) != 0 {
		return nil, fmt.Errorf("ellipsis_mask %#x has more than one ellipsis", ellipsis)
	}
	numAddAxis := 0
	for i := range n {
		if !ssBit(ellipsis, i) && ssBit(newAxis, i) {
			numAddAxis++
		}
	}
	eff := inRank + numAddAxis
	if eff > MaxRank {
		return nil, fmt.Errorf("slice has %d dimensions, more than %d", eff, MaxRank)
	}

	// Which effective axes the ellipsis covers and which are new.
	var effEllipsis, effNewAxis uint64
	ellipsisStart, expanded := eff, 0
	for i := 0; i < eff; {
		if ssBit(ellipsis, i) {
			ellipsisStart = i
			stop := max(i+1, min(i+1+numAddAxis+inRank-n, eff))
			expanded = stop - ellipsisStart - 1
			for ; i < stop; i++ {
				effEllipsis |= 1 << uint(i)
			}
			continue
		}
		if ssBit(newAxis, i-expanded) {
			effNewAxis |= 1 << uint(i)
		}
		i++
	}

	p := &ssParams{
		start: make([]int, eff), stop: make([]int, eff), stride: make([]int, eff),
		shape: make([]int, eff), offset: opts.Offset(),
	}
	beginMask := uint64(uint32(opts.BeginMask()))
	endMask := uint64(uint32(opts.EndMask()))
	shrink := uint64(uint32(opts.ShrinkAxisMask()))
	addedEllipsis, addedAxes := 0, 0
	inDim := func(i int) (int, error) {
		if j := i - addedAxes; j >= 0 && j < inRank {
			return inShape[j], nil
		}
		return 0, fmt.Errorf("slice spec does not fit input shape %s", FormatShape(inShape))
	}
	for i := range eff {
		var err error
		switch {
		case ssBit(effEllipsis, i):
			addedEllipsis = max(0, i-ellipsisStart)
			p.beginMask |= 1 << uint(i)
			p.endMask |= 1 << uint(i)
			p.stride[i] = 1
			p.shape[i], err = inDim(i)
		case ssBit(effNewAxis, i):
			p.start[i], p.stop[i], p.stride[i] = 0, 1, 1
			p.shape[i] = 1
			addedAxes++
		case i >= n+expanded:
			p.start[i], p.stop[i], p.stride[i] = 0, 0, 1
			p.beginMask |= 1 << uint(i)
			p.endMask |= 1 << uint(i)
			p.shape[i], err = inDim(i)
		default:
			orig := i - addedEllipsis
			if orig < 0 || orig >= n {
				return nil, fmt.Errorf("slice spec does not fit input shape %s", FormatShape(inShape))
			}
			p.start[i], p.stop[i], p.stride[i] = begin[orig], end[orig], strides[orig]
			if ssBit(beginMask, orig) {
				p.beginMask |= 1 << uint(i)
			}
			if ssBit(endMask, orig) {
				p.endMask |= 1 << uint(i)
			}
			if ssBit(shrink, orig) {
				p.shrinkMk |= 1 << uint(i)
			}
			p.shape[i], err = inDim(i)
		}
		if err != nil {
			return nil, err
		}
	}
	if addedAxes != numAddAxis || eff-addedAxes != inRank {
		return nil, fmt.Errorf("slice spec does not fit input shape %s", FormatShape(inShape))
	}
	return p, nil
}

// ssClamp is strided_slice::Clamp.
func ssClamp(v, lo, hi int) int {
	if hi < v {
		return hi
	}
	if v < lo {
		return lo
	}
	return v
}

// ssStartForAxis is strided_slice::StridedSliceStartForAxis.
func ssStartForAxis(p *ssParams, axis int) int {
	size := p.shape[axis]
	start := p.start[axis]
	stride := p.stride[axis]
	if start < 0 {
		start += size
	}
	if stride > 0 {
		start = ssClamp(start, 0, size)
	} else {
		start = ssClamp(start, -1, size-1)
	}
	if ssBit(p.beginMask, axis) {
		if stride > 0 {
			start = 0
		} else {
			start = size - 1
		}
	}
	return start
}

// ssEndForAxis is strided_slice::StridedSliceEndForAxis.
func ssEndForAxis(p *ssParams, axis, start int) int {
	size := p.shape[axis]
	if ssBit(p.shrinkMk, axis) {
		if start >= size {
			return start
		}
		return start + 1
	}
	end := p.stop[axis]
	if p.offset {
		end += start
	}
	stride := p.stride[axis]
	if end < 0 {
		end += size
	}
	if stride > 0 {
		end = ssClamp(end, 0, size)
	} else {
		end = ssClamp(end, -1, size-1)
	}
	if ssBit(p.endMask, axis) {
		if stride > 0 {
			end = size
		} else {
			end = -1
		}
	}
	return end
}

// ssCount is how many indices start, start+stride, ... lie before end
// (TFLite's ceil((end-start)/stride), at least 0).
func ssCount(start, end, stride int) int {
	if stride > 0 {
		if end <= start {
			return 0
		}
		return (end - start + stride - 1) / stride
	}
	if end >= start {
		return 0
	}
	return (start - end - stride - 1) / -stride
}

func (k *stridedSlice) Eval() error {
	sliceCopy(k.walk, k.input, k.output)
	return nil
}

type sliceOp struct {
	input, begin, size, output *Tensor
	walk                       *sliceWalk
	dynamic                    bool
	rawBegin, rawSize, got     []int
}

func (k *sliceOp) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(3, 3, 1); err != nil {
		return err
	}
	k.input, k.begin, k.size, k.output = c.Input(0), c.Input(1), c.Input(2), c.Output(0)
	in := k.input
	if err := sameTypes(in, k.output); err != nil {
		return err
	}
	if err := shapeCheckMovable("input", in); err != nil {
		return err
	}
	rank := len(in.Shape)
	for _, t := range []*Tensor{k.begin, k.size} {
		if !shapeIntTensor(t) {
			return fmt.Errorf("%s must be an int32 or int64 tensor", t)
		}
		if len(t.Shape) != 1 || t.Shape[0] != rank {
			return fmt.Errorf("%s must be a vector of %d values for input %s", t, rank, in)
		}
	}
	k.rawBegin, k.rawSize, k.got = make([]int, rank), make([]int, rank), make([]int, rank)
	k.walk = newSliceWalk(in.Shape)
	copy(k.walk.step, k.walk.inStride)
	if !k.begin.Const || !k.size.Const {
		k.dynamic = true
		shape, err := shapeDeclared(c, k.output, rank, "begin or size is not constant")
		if err != nil {
			return err
		}
		copy(k.walk.count, shape)
		return c.SetOutputShape(0, shape)
	}
	shape := make([]int, rank)
	if err := k.resolve(shape); err != nil {
		return err
	}
	copy(k.walk.count, shape)
	return c.SetOutputShape(0, shape)
}

// resolve reads begin and size into the walk's starts and the slice's
// shape, checking they stay inside the input.
func (k *sliceOp) resolve(shape []int) error {
	shapeReadInts(k.begin, k.rawBegin)
	shapeReadInts(k.size, k.rawSize)
	for i, d := range k.input.Shape {
		b, s := k.rawBegin[i], k.rawSize[i]
		if s == -1 {
			s = d - b
		}
		if b < 0 || b > d || s < 0 || b+s > d {
			return fmt.Errorf("begin %d, size %d of dimension %d leave input %s", k.rawBegin[i], k.rawSize[i], i, k.input)
		}
		k.walk.start[i] = b
		shape[i] = s
	}
	return nil
}

func (k *sliceOp) Eval() error {
	if k.dynamic {
		if err := k.resolve(k.got); err != nil {
			return err
		}
		for i, s := range k.got {
			if s != k.walk.count[i] {
				return fmt.Errorf("begin and size give dimension %d size %d, output %s has %d", i, s, k.output, k.walk.count[i])
			}
		}
	}
	sliceCopy(k.walk, k.input, k.output)
	return nil
}
