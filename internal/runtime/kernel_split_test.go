package runtime_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

func splitOpts(n int32) *tflite.BuiltinOptionsT {
	return &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsSplitOptions, Value: &tflite.SplitOptionsT{NumSplits: n}}
}

func splitVOpts(n int32) *tflite.BuiltinOptionsT {
	return &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsSplitVOptions, Value: &tflite.SplitVOptionsT{NumSplits: n}}
}

// splitOracle cuts vals (shape in) along axis into pieces of the given
// sizes, by output multi-index.
func splitOracle(in []int, vals []int, axis int, sizes []int) ([][]int, [][]int) {
	var shapes, outs [][]int
	off := 0
	for _, s := range sizes {
		shape := append([]int(nil), in...)
		shape[axis] = s
		out := make([]int, shapeCount(shape))
		for i := range out {
			idx := shapeUnravel(i, shape)
			idx[axis] += off
			out[i] = vals[shapeFlat(idx, in)]
		}
		shapes, outs = append(shapes, shape), append(outs, out)
		off += s
	}
	return shapes, outs
}

// splitCheck runs m and compares every output.
func splitCheck(t *testing.T, m *builder.Model, e shapeElem, shapes, want [][]int, inputs ...[]byte) {
	t.Helper()
	outs, gotShapes := shapeRun(t, m, inputs...)
	for i := range want {
		if !slices.Equal(gotShapes[i], shapes[i]) {
			t.Fatalf("output %d shape %v, want %v", i, gotShapes[i], shapes[i])
		}
		if !bytes.Equal(outs[i], e.data(want[i])) {
			t.Fatalf("output %d\n got %v\nwant %v", i, outs[i], e.data(want[i]))
		}
	}
}

func TestSplit(t *testing.T) {
	in := []int{2, 6, 3}
	for _, e := range shapeElems {
		for _, tc := range []struct {
			axis int32
			n    int
		}{{0, 2}, {1, 3}, {-2, 2}, {2, 3}, {-1, 1}, {1, 6}} {
			t.Run(fmt.Sprintf("%s/axis%d/n%d", e.name, tc.axis, tc.n), func(t *testing.T) {
				axis := int(tc.axis)
				if axis < 0 {
					axis += len(in)
				}
				sizes := make([]int, tc.n)
				for i := range sizes {
					sizes[i] = in[axis] / tc.n
				}
				vals := shapeIota(shapeCount(in))
				shapes, want := splitOracle(in, vals, axis, sizes)
				tensors := []builder.Tensor{shapeI32(nil, tc.axis), shapeAct(e.tt, in...)}
				var outputs []int
				for range tc.n {
					outputs = append(outputs, len(tensors))
					tensors = append(tensors, shapeOut(e.tt))
				}
				m := shapeModel(tensors, tflite.BuiltinOperatorSPLIT, 1, splitOpts(int32(tc.n)), []int{0, 1}, outputs)
				splitCheck(t, m, e, shapes, want, e.data(vals))
			})
		}
	}
	t.Run("errors", func(t *testing.T) {
		f := tflite.TensorTypeFLOAT32
		for _, tc := range []struct {
			name string
			axis builder.Tensor
			n    int32
			outs int
			want string
		}{
			{"not divisible", shapeI32(nil, 1), 4, 4, "not divisible"},
			{"num_splits mismatch", shapeI32(nil, 1), 3, 2, "num_splits is 3"},
			{"axis out of range", shapeI32(nil, 3), 2, 2, "out of range"},
			{"non-constant axis", shapeAct(tflite.TensorTypeINT32), 2, 2, "constant"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tensors := []builder.Tensor{tc.axis, shapeAct(f, 2, 6, 3)}
				var outputs []int
				for range tc.outs {
					outputs = append(outputs, len(tensors))
					tensors = append(tensors, shapeOut(f))
				}
				shapePrepareErr(t, shapeModel(tensors, tflite.BuiltinOperatorSPLIT, 1, splitOpts(tc.n), []int{0, 1}, outputs), tc.want)
			})
		}
	})
}

func TestSplitV(t *testing.T) {
	in := []int{2, 7, 3}
	for _, e := range shapeElems {
		for _, tc := range []struct {
			axis  int32
			sizes []int32
			want  []int
		}{
			{1, []int32{2, 4, 1}, []int{2, 4, 1}},
			{1, []int32{2, -1, 1}, []int{2, 4, 1}},
			{-2, []int32{-1, 7}, []int{0, 7}},
			{0, []int32{1, 1}, []int{1, 1}},
			{2, []int32{3}, []int{3}},
			{-1, []int32{1, -1}, []int{1, 2}},
		} {
			t.Run(fmt.Sprintf("%s/axis%d/%v", e.name, tc.axis, tc.sizes), func(t *testing.T) {
				axis := int(tc.axis)
				if axis < 0 {
					axis += len(in)
				}
				vals := shapeIota(shapeCount(in))
				shapes, want := splitOracle(in, vals, axis, tc.want)
				tensors := []builder.Tensor{shapeAct(e.tt, in...), shapeI32([]int{len(tc.sizes)}, tc.sizes...), shapeI32(nil, tc.axis)}
				var outputs []int
				for range tc.sizes {
					outputs = append(outputs, len(tensors))
					tensors = append(tensors, shapeOut(e.tt))
				}
				m := shapeModel(tensors, tflite.BuiltinOperatorSPLIT_V, 1, splitVOpts(int32(len(tc.sizes))), []int{0, 1, 2}, outputs)
				splitCheck(t, m, e, shapes, want, e.data(vals))
			})
		}
	}

	t.Run("non-constant size_splits", func(t *testing.T) {
		e := shapeElems[1]
		vals := shapeIota(shapeCount(in))
		shapes, want := splitOracle(in, vals, 1, []int{3, 4})
		tensors := []builder.Tensor{shapeAct(e.tt, in...), shapeAct(tflite.TensorTypeINT64, 2), shapeI32(nil, 1), shapeAct(e.tt, 2, 3, 3), shapeAct(e.tt, 2, 4, 3)}
		m := shapeModel(tensors, tflite.BuiltinOperatorSPLIT_V, 1, splitVOpts(2), []int{0, 1, 2}, []int{3, 4})
		splitCheck(t, m, e, shapes, want, e.data(vals), builder.Int64Data([]int64{3, 4}))
		splitCheck(t, m, e, shapes, want, e.data(vals), builder.Int64Data([]int64{3, -1}))
		shapeEvalErr(t, m, "size 2", e.data(vals), builder.Int64Data([]int64{2, 5}))
		shapeEvalErr(t, m, "size -1", e.data(vals), builder.Int64Data([]int64{-1, -1}))
		shapeNoAllocs(t, m, e.data(vals), builder.Int64Data([]int64{3, 4}))
		tensors[4] = shapeAct(e.tt, 2, 3, 3)
		shapePrepareErr(t, shapeModel(tensors, tflite.BuiltinOperatorSPLIT_V, 1, splitVOpts(2), []int{0, 1, 2}, []int{3, 4}), "declare 6 elements")
	})

	t.Run("errors", func(t *testing.T) {
		f := tflite.TensorTypeFLOAT32
		for _, tc := range []struct {
			name  string
			sizes builder.Tensor
			axis  builder.Tensor
			want  string
		}{
			{"sum too small", shapeI32([]int{2}, 2, 4), shapeI32(nil, 1), "add up to 6"},
			{"sum too large", shapeI32([]int{2}, 2, 6), shapeI32(nil, 1), "add up to 8"},
			{"two unknown", shapeI32([]int{2}, -1, -1), shapeI32(nil, 1), "entry 1 is -1"},
			{"unknown overflows", shapeI32([]int{2}, 8, -1), shapeI32(nil, 1), "more than the 7"},
			{"negative", shapeI32([]int{2}, 9, -2), shapeI32(nil, 1), "entry 1 is -2"},
			{"wrong count", shapeI32([]int{3}, 2, 4, 1), shapeI32(nil, 1), "vector of 2"},
			{"axis out of range", shapeI32([]int{2}, 1, 1), shapeI32(nil, -4), "out of range"},
			{"non-constant axis", shapeI32([]int{2}, 3, 4), shapeAct(tflite.TensorTypeINT32), "constant"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tensors := []builder.Tensor{shapeAct(f, in...), tc.sizes, tc.axis, shapeOut(f), shapeOut(f)}
				shapePrepareErr(t, shapeModel(tensors, tflite.BuiltinOperatorSPLIT_V, 1, splitVOpts(2), []int{0, 1, 2}, []int{3, 4}), tc.want)
			})
		}
	})
}

func TestSplitNoAllocs(t *testing.T) {
	u8 := tflite.TensorTypeUINT8
	m := shapeModel([]builder.Tensor{shapeI32(nil, 3), shapeAct(u8, 1, 2, 2, 8), shapeOut(u8), shapeOut(u8), shapeOut(u8), shapeOut(u8)},
		tflite.BuiltinOperatorSPLIT, 1, splitOpts(4), []int{0, 1}, []int{2, 3, 4, 5})
	shapeNoAllocs(t, m, make([]byte, 32))
	m = shapeModel([]builder.Tensor{shapeAct(u8, 2, 7), shapeI32([]int{2}, 3, -1), shapeI32(nil, 1), shapeOut(u8), shapeOut(u8)},
		tflite.BuiltinOperatorSPLIT_V, 1, splitVOpts(2), []int{0, 1, 2}, []int{3, 4})
	shapeNoAllocs(t, m, make([]byte, 14))
}
