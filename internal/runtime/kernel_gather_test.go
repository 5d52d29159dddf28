package runtime_test

import (
	"fmt"
	"testing"

	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

func gatherOpts(axis, batchDims int32) *tflite.BuiltinOptionsT {
	return &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsGatherOptions, Value: &tflite.GatherOptionsT{Axis: axis, BatchDims: batchDims}}
}

// gatherOracle is tf.gather by output multi-index: out[p0..pa-1, i_b..,
// p_a+1..] = params[p0.., indices[p0..p_b-1, i_b..], p_a+1..].
func gatherOracle(params []int, vals []int, idxShape []int, idx []int, axis, batchDims int) ([]int, []int) {
	var out []int
	out = append(out, params[:axis]...)
	out = append(out, idxShape[batchDims:]...)
	out = append(out, params[axis+1:]...)
	ir := len(idxShape) - batchDims
	res := make([]int, shapeCount(out))
	for i := range res {
		o := shapeUnravel(i, out)
		// indices position: the batch dims (shared with params) then the
		// index dims.
		ip := append(append([]int(nil), o[:batchDims]...), o[axis:axis+ir]...)
		src := append([]int(nil), o[:axis]...)
		src = append(src, idx[shapeFlat(ip, idxShape)])
		src = append(src, o[axis+ir:]...)
		res[i] = vals[shapeFlat(src, params)]
	}
	return out, res
}

func gatherIndices(tt tflite.TensorType, shape []int, v []int) (builder.Tensor, []byte) {
	var b []byte
	switch tt {
	case tflite.TensorTypeINT16:
		x := make([]int16, len(v))
		for i := range v {
			x[i] = int16(v[i])
		}
		b = builder.Int16Data(x)
	case tflite.TensorTypeINT32:
		x := make([]int32, len(v))
		for i := range v {
			x[i] = int32(v[i])
		}
		b = builder.Int32Data(x)
	case tflite.TensorTypeINT64:
		x := make([]int64, len(v))
		for i := range v {
			x[i] = int64(v[i])
		}
		b = builder.Int64Data(x)
	}
	return builder.Tensor{Type: tt, Shape: shape}, b
}

var gatherIndexTypes = []tflite.TensorType{tflite.TensorTypeINT16, tflite.TensorTypeINT32, tflite.TensorTypeINT64}

func TestGather(t *testing.T) {
	cases := []struct {
		params, idxShape []int
		idx              []int
		axis, batchDims  int
	}{
		{[]int{5}, []int{3}, []int{4, 0, 4}, 0, 0},
		{[]int{4, 3}, []int{2}, []int{3, 1}, 0, 0},
		{[]int{4, 3}, []int{2, 2}, []int{2, 0, 1, 2}, -1, 0},
		{[]int{2, 3, 4}, []int{}, []int{2}, 1, 0},
		{[]int{2, 3, 4}, []int{2, 3}, []int{0, 3, 3, 1, 2, 0}, 2, 0},
		{[]int{2, 3, 4}, []int{2, 2}, []int{2, 0, 1, 1}, 1, 1},
		{[]int{2, 3, 4}, []int{2, 3}, []int{3, 2, 1, 0, 0, 1}, 2, -1},
		{[]int{2, 3, 4}, []int{2, 3, 2}, []int{0, 1, 2, 3, 3, 2, 1, 0, 0, 0, 1, 1}, 2, 2},
		{[]int{3, 2}, []int{0}, nil, 0, 0},
	}
	for _, e := range shapeElems {
		for _, it := range gatherIndexTypes {
			for _, tc := range cases {
				t.Run(fmt.Sprintf("%s/%s/%v/%v/axis%d/batch%d", e.name, tflite.EnumNamesTensorType[it], tc.params, tc.idx, tc.axis, tc.batchDims), func(t *testing.T) {
					axis, bd := tc.axis, tc.batchDims
					if axis < 0 {
						axis += len(tc.params)
					}
					if bd < 0 {
						bd += len(tc.idxShape)
					}
					vals := shapeIota(shapeCount(tc.params))
					outShape, want := gatherOracle(tc.params, vals, tc.idxShape, tc.idx, axis, bd)
					idxT, idxB := gatherIndices(it, tc.idxShape, tc.idx)
					m := shapeModel([]builder.Tensor{shapeAct(e.tt, tc.params...), idxT, shapeOut(e.tt)},
						tflite.BuiltinOperatorGATHER, 1, gatherOpts(int32(tc.axis), int32(tc.batchDims)), []int{0, 1}, []int{2})
					shapeCheck(t, m, outShape, e.data(want), e.data(vals), idxB)
				})
			}
		}
	}

	t.Run("constant indices", func(t *testing.T) {
		e := shapeElems[5]
		m := shapeModel([]builder.Tensor{shapeAct(e.tt, 3, 2), shapeI32([]int{2}, 2, 2), shapeOut(e.tt)},
			tflite.BuiltinOperatorGATHER, 1, gatherOpts(0, 0), []int{0, 1}, []int{2})
		shapeCheck(t, m, []int{2, 2}, e.data([]int{5, 6, 5, 6}), e.data(shapeIota(6)))
	})

	t.Run("index out of range at Eval", func(t *testing.T) {
		f := tflite.TensorTypeFLOAT32
		for _, it := range gatherIndexTypes {
			idxT, _ := gatherIndices(it, []int{2}, []int{0, 0})
			m := shapeModel([]builder.Tensor{shapeAct(f, 4, 3), idxT, shapeOut(f)},
				tflite.BuiltinOperatorGATHER, 1, gatherOpts(0, 0), []int{0, 1}, []int{2})
			params := make([]byte, 48)
			for _, bad := range []int{4, -1, 1000} {
				_, b := gatherIndices(it, []int{2}, []int{1, bad})
				shapeEvalErr(t, m, fmt.Sprintf("index %d", bad), params, b)
			}
			_, b := gatherIndices(it, []int{2}, []int{3, 0})
			shapeNoAllocs(t, m, params, b)
		}
	})

	t.Run("errors", func(t *testing.T) {
		f, i32 := tflite.TensorTypeFLOAT32, tflite.TensorTypeINT32
		for _, tc := range []struct {
			name string
			idx  builder.Tensor
			opts *tflite.BuiltinOptionsT
			want string
		}{
			{"axis out of range", shapeAct(i32, 2), gatherOpts(3, 0), "out of range"},
			{"negative axis out of range", shapeAct(i32, 2), gatherOpts(-4, 0), "out of range"},
			{"batch_dims beyond axis", shapeAct(i32, 2, 3), gatherOpts(0, 1), "batch_dims"},
			{"batch_dims beyond indices", shapeAct(i32, 2), gatherOpts(2, 2), "batch_dims"},
			{"batch dimension mismatch", shapeAct(i32, 3, 2), gatherOpts(1, 1), "batch dimension 0"},
			{"float indices", shapeAct(f, 2), gatherOpts(0, 0), "unsupported"},
			{"uint8 indices", shapeAct(tflite.TensorTypeUINT8, 2), gatherOpts(0, 0), "unsupported"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m := shapeModel([]builder.Tensor{shapeAct(f, 2, 3, 4), tc.idx, shapeOut(f)},
					tflite.BuiltinOperatorGATHER, 1, tc.opts, []int{0, 1}, []int{2})
				shapePrepareErr(t, m, tc.want)
			})
		}
	})
}

// gatherNDOracle: out[i.., rest..] = params[indices[i.., :]..., rest..].
func gatherNDOracle(params []int, vals []int, idxShape []int, idx []int) ([]int, []int) {
	nd := idxShape[len(idxShape)-1]
	lead := idxShape[:len(idxShape)-1]
	out := append(append([]int(nil), lead...), params[nd:]...)
	res := make([]int, shapeCount(out))
	for i := range res {
		o := shapeUnravel(i, out)
		tuple := shapeFlat(o[:len(lead)], lead) * nd
		src := append(append([]int(nil), idx[tuple:tuple+nd]...), o[len(lead):]...)
		res[i] = vals[shapeFlat(src, params)]
	}
	return out, res
}

func TestGatherND(t *testing.T) {
	cases := []struct {
		params, idxShape []int
		idx              []int
	}{
		{[]int{3, 4}, []int{2, 2}, []int{0, 1, 2, 3}},
		{[]int{3, 4}, []int{2, 1}, []int{2, 0}},
		{[]int{2, 3, 2}, []int{3, 2}, []int{1, 2, 0, 0, 1, 0}},
		{[]int{2, 3, 2}, []int{2, 2, 3}, []int{0, 0, 0, 1, 2, 1, 0, 1, 1, 1, 0, 0}},
		{[]int{2, 3}, []int{2}, []int{1, 1}},
		{[]int{2, 3}, []int{2, 0}, nil},
	}
	for _, e := range shapeElems {
		for _, it := range gatherIndexTypes {
			for _, tc := range cases {
				t.Run(fmt.Sprintf("%s/%s/%v/%v", e.name, tflite.EnumNamesTensorType[it], tc.params, tc.idx), func(t *testing.T) {
					vals := shapeIota(shapeCount(tc.params))
					outShape, want := gatherNDOracle(tc.params, vals, tc.idxShape, tc.idx)
					idxT, idxB := gatherIndices(it, tc.idxShape, tc.idx)
					m := shapeModel([]builder.Tensor{shapeAct(e.tt, tc.params...), idxT, shapeOut(e.tt)},
						tflite.BuiltinOperatorGATHER_ND, 1, nil, []int{0, 1}, []int{2})
					shapeCheck(t, m, outShape, e.data(want), e.data(vals), idxB)
				})
			}
		}
	}

	t.Run("index out of range at Eval", func(t *testing.T) {
		f := tflite.TensorTypeFLOAT32
		idxT, _ := gatherIndices(tflite.TensorTypeINT32, []int{2, 2}, []int{0, 0, 0, 0})
		m := shapeModel([]builder.Tensor{shapeAct(f, 3, 4), idxT, shapeOut(f)},
			tflite.BuiltinOperatorGATHER_ND, 1, nil, []int{0, 1}, []int{2})
		params := make([]byte, 48)
		// [-1, 5] would be flat position 1, inside params: still an error.
		for _, bad := range [][]int{{0, 0, 3, 0}, {0, 0, 0, 4}, {0, 0, -1, 5}, {0, 0, 1, -1}} {
			_, b := gatherIndices(tflite.TensorTypeINT32, []int{2, 2}, bad)
			shapeEvalErr(t, m, "out of range", params, b)
		}
		_, b := gatherIndices(tflite.TensorTypeINT32, []int{2, 2}, []int{2, 3, 1, 0})
		shapeNoAllocs(t, m, params, b)
	})

	t.Run("errors", func(t *testing.T) {
		f, i32 := tflite.TensorTypeFLOAT32, tflite.TensorTypeINT32
		for _, tc := range []struct {
			name   string
			params builder.Tensor
			idx    builder.Tensor
			want   string
		}{
			{"tuple too long", shapeAct(f, 2, 3), shapeAct(i32, 1, 3), "address 3 dimensions"},
			{"scalar params", shapeAct(f), shapeAct(i32, 1, 1), "rank 1 or more"},
			{"scalar indices", shapeAct(f, 2), shapeAct(i32), "rank 1 or more"},
			{"float indices", shapeAct(f, 2), shapeAct(f, 1), "unsupported"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m := shapeModel([]builder.Tensor{tc.params, tc.idx, shapeOut(f)},
					tflite.BuiltinOperatorGATHER_ND, 1, nil, []int{0, 1}, []int{2})
				shapePrepareErr(t, m, tc.want)
			})
		}
	})
}
