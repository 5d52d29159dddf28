package runtime_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

// slicePyIndices is Python's slice.indices for a[begin:end:stride] on an
// axis of size n, with a masked bound meaning "omitted": the selected
// indices in order.
func slicePyIndices(n, begin, end, stride int, beginOmitted, endOmitted bool) []int {
	lower, upper := 0, n
	if stride < 0 {
		lower, upper = -1, n-1
	}
	adjust := func(v int, omitted bool, dflt int) int {
		if omitted {
			return dflt
		}
		if v < 0 {
			v += n
			if v < lower {
				v = lower
			}
		} else if v > upper {
			v = upper
		}
		return v
	}
	var start, stop int
	if stride > 0 {
		start, stop = adjust(begin, beginOmitted, lower), adjust(end, endOmitted, upper)
	} else {
		start, stop = adjust(begin, beginOmitted, upper), adjust(end, endOmitted, lower)
	}
	var idx []int
	for i := start; (stride > 0 && i < stop) || (stride < 0 && i > stop); i += stride {
		idx = append(idx, i)
	}
	return idx
}

// sliceGather builds the output of per-axis index lists (cartesian product
// in row-major order) from vals of shape in.
func sliceGather(in []int, vals []int, axes [][]int) []int {
	counts := make([]int, len(axes))
	for d, a := range axes {
		counts[d] = len(a)
	}
	res := make([]int, shapeCount(counts))
	for i := range res {
		idx := shapeUnravel(i, counts)
		src := make([]int, len(in))
		for d := range idx {
			src[d] = axes[d][idx[d]]
		}
		res[i] = vals[shapeFlat(src, in)]
	}
	return res
}

func ssOpts(begin, end, ellipsis, newAxis, shrink int32, offset bool) *tflite.BuiltinOptionsT {
	return &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsStridedSliceOptions, Value: &tflite.StridedSliceOptionsT{
		BeginMask: begin, EndMask: end, EllipsisMask: ellipsis, NewAxisMask: newAxis, ShrinkAxisMask: shrink, Offset: offset}}
}

func ssModel(tt tflite.TensorType, in []int, begin, end, strides []int32, opts *tflite.BuiltinOptionsT) *builder.Model {
	n := len(begin)
	return shapeModel([]builder.Tensor{shapeAct(tt, in...), shapeI32([]int{n}, begin...), shapeI32([]int{len(end)}, end...), shapeI32([]int{len(strides)}, strides...), shapeOut(tt)},
		tflite.BuiltinOperatorSTRIDED_SLICE, 1, opts, []int{0, 1, 2, 3}, []int{4})
}

func TestStridedSlice(t *testing.T) {
	// Hand-written cases, expected values written out (input values are
	// 1..n in row-major order).
	cases := []struct {
		name                string
		in                  []int
		begin, end, strides []int32
		bm, em, el, na, sh  int32
		offset              bool
		wantShape           []int
		want                []int
	}{
		{"1d step 3", []int{10}, []int32{1}, []int32{8}, []int32{3}, 0, 0, 0, 0, 0, false, []int{3}, []int{2, 5, 8}},
		{"1d negative stride clamped", []int{10}, []int32{-1}, []int32{-11}, []int32{-2}, 0, 0, 0, 0, 0, false, []int{5}, []int{10, 8, 6, 4, 2}},
		{"1d reverse by masks", []int{5}, []int32{0}, []int32{0}, []int32{-1}, 1, 1, 0, 0, 0, false, []int{5}, []int{5, 4, 3, 2, 1}},
		{"1d begin beyond end", []int{5}, []int32{4}, []int32{2}, []int32{1}, 0, 0, 0, 0, 0, false, []int{0}, []int{}},
		{"1d end clamped", []int{5}, []int32{-3}, []int32{100}, []int32{1}, 0, 0, 0, 0, 0, false, []int{3}, []int{3, 4, 5}},
		{"audio preprocessor", []int{12}, []int32{5}, []int32{11}, []int32{1}, 0, 0, 0, 0, 0, false, []int{6}, []int{6, 7, 8, 9, 10, 11}},
		{"2d shrink row", []int{3, 4}, []int32{1, 0}, []int32{2, 0}, []int32{1, 1}, 2, 2, 0, 0, 1, false, []int{4}, []int{5, 6, 7, 8}},
		{"2d shrink negative index", []int{3, 4}, []int32{-1, -1}, []int32{0, 0}, []int32{1, 1}, 0, 0, 0, 0, 3, false, []int{}, []int{12}},
		{"2d shrink with stride 2", []int{3, 4}, []int32{0, 2}, []int32{0, 3}, []int32{1, 2}, 1, 1, 0, 0, 2, false, []int{3}, []int{3, 7, 11}},
		{"yolov8n channel split high", []int{1, 2, 2, 4}, []int32{0, 0, 0, 2}, []int32{0, 0, 0, 4}, []int32{1, 1, 1, 1}, 7, 7, 0, 0, 0, false,
			[]int{1, 2, 2, 2}, []int{3, 4, 7, 8, 11, 12, 15, 16}},
		{"yolov8n channel split low", []int{1, 2, 2, 4}, []int32{0, 0, 0, 0}, []int32{0, 0, 0, 2}, []int32{1, 1, 1, 1}, 15, 7, 0, 0, 0, false,
			[]int{1, 2, 2, 2}, []int{1, 2, 5, 6, 9, 10, 13, 14}},
		{"ellipsis", []int{2, 3, 4}, []int32{0, 1}, []int32{0, 3}, []int32{1, 1}, 0, 0, 1, 0, 0, false,
			[]int{2, 3, 2}, []int{2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23}},
		{"ellipsis last", []int{2, 3, 2}, []int32{1, 0}, []int32{2, 0}, []int32{1, 1}, 0, 0, 2, 0, 1, false,
			[]int{3, 2}, []int{7, 8, 9, 10, 11, 12}},
		{"new axis and shrink", []int{2, 3}, []int32{0, 0, 1}, []int32{0, 0, 2}, []int32{1, 1, 1}, 2, 2, 0, 1, 4, false,
			[]int{1, 2}, []int{2, 5}},
		{"new axis last", []int{2, 2}, []int32{0, 0, 0}, []int32{2, 2, 0}, []int32{1, 1, 1}, 0, 0, 0, 4, 0, false,
			[]int{2, 2, 1}, []int{1, 2, 3, 4}},
		{"fewer specs than dims", []int{2, 3}, []int32{1}, []int32{2}, []int32{1}, 0, 0, 0, 0, 0, false, []int{1, 3}, []int{4, 5, 6}},
		{"offset", []int{6}, []int32{1}, []int32{3}, []int32{1}, 0, 0, 0, 0, 0, true, []int{3}, []int{2, 3, 4}},
		{"offset stride 2", []int{6}, []int32{0}, []int32{5}, []int32{2}, 0, 0, 0, 0, 0, true, []int{3}, []int{1, 3, 5}},
		{"empty axis", []int{2, 0}, []int32{0, 0}, []int32{2, 0}, []int32{1, -1}, 0, 0, 0, 0, 0, false, []int{2, 0}, []int{}},
	}
	for _, e := range shapeElems {
		for _, tc := range cases {
			t.Run(e.name+"/"+tc.name, func(t *testing.T) {
				m := ssModel(e.tt, tc.in, tc.begin, tc.end, tc.strides, ssOpts(tc.bm, tc.em, tc.el, tc.na, tc.sh, tc.offset))
				shapeCheck(t, m, tc.wantShape, e.data(tc.want), e.data(shapeIota(shapeCount(tc.in))))
			})
		}
	}

	// Random slices against Python's slicing rules, which TFLite's
	// strided_slice_logic.h implements for ranges.
	t.Run("random", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		e := shapeElems[3]
		for it := range 400 {
			rank := 1 + rng.IntN(4)
			in := make([]int, rank)
			for i := range in {
				in[i] = 1 + rng.IntN(5)
			}
			nSpec := rank
			if rng.IntN(4) == 0 {
				nSpec = 1 + rng.IntN(rank)
			}
			var begin, end, strides []int32
			var bm, em, sh int32
			var axes [][]int
			var wantShape []int
			for d := range rank {
				n := in[d]
				if d >= nSpec {
					axes = append(axes, slicePyIndices(n, 0, 0, 1, true, true))
					wantShape = append(wantShape, n)
					continue
				}
				if rng.IntN(5) == 0 {
					// shrink: a valid index, stride 1
					b := rng.IntN(2*n) - n
					begin, end, strides = append(begin, int32(b)), append(end, int32(rng.IntN(9)-4)), append(strides, 1)
					sh |= 1 << d
					if b < 0 {
						b += n
					}
					axes = append(axes, []int{b})
					continue
				}
				b, en := rng.IntN(2*n+5)-n-2, rng.IntN(2*n+5)-n-2
				s := []int{-3, -2, -1, 1, 2, 3}[rng.IntN(6)]
				bOm, eOm := rng.IntN(4) == 0, rng.IntN(4) == 0
				if bOm {
					bm |= 1 << d
				}
				if eOm {
					em |= 1 << d
				}
				begin, end, strides = append(begin, int32(b)), append(end, int32(en)), append(strides, int32(s))
				idx := slicePyIndices(n, b, en, s, bOm, eOm)
				axes = append(axes, idx)
				wantShape = append(wantShape, len(idx))
			}
			if wantShape == nil {
				wantShape = []int{}
			}
			vals := shapeIota(shapeCount(in))
			want := sliceGather(in, vals, axes)
			m := ssModel(e.tt, in, begin, end, strides, ssOpts(bm, em, 0, 0, sh, false))
			t.Run(fmt.Sprint(it), func(t *testing.T) {
				shapeCheck(t, m, wantShape, e.data(want), e.data(vals))
			})
		}
	})

	t.Run("errors", func(t *testing.T) {
		f := tflite.TensorTypeFLOAT32
		for _, tc := range []struct {
			name                string
			in                  []int
			begin, end, strides []int32
			opts                *tflite.BuiltinOptionsT
			want                string
		}{
			{"stride 0", []int{4}, []int32{0}, []int32{4}, []int32{0}, nil, "stride of axis 0 is 0"},
			{"shrink out of range", []int{3, 2}, []int32{3, 0}, []int32{4, 2}, []int32{1, 1}, ssOpts(0, 0, 0, 0, 1, false), "shrink_axis_mask"},
			{"shrink negative stride", []int{3, 2}, []int32{1, 0}, []int32{0, 2}, []int32{-1, 1}, ssOpts(0, 0, 0, 0, 1, false), "shrink_axis_mask"},
			{"lengths differ", []int{3, 2}, []int32{0, 0}, []int32{1}, []int32{1, 1}, nil, "must match"},
			{"two ellipses", []int{3, 2, 2}, []int32{0, 0}, []int32{1, 1}, []int32{1, 1}, ssOpts(0, 0, 3, 0, 0, false), "more than one ellipsis"},
			{"ellipsis beyond spec", []int{3, 2, 2}, []int32{0}, []int32{1}, []int32{1}, ssOpts(0, 0, 4, 0, 0, false), "beyond"},
			{"offset past the input", []int{6}, []int32{4}, []int32{3}, []int32{1}, ssOpts(0, 0, 0, 0, 0, true), "outside"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				shapePrepareErr(t, ssModel(f, tc.in, tc.begin, tc.end, tc.strides, tc.opts), tc.want)
			})
		}
		m := shapeModel([]builder.Tensor{shapeAct(f, 4), shapeAct(tflite.TensorTypeINT32, 1), shapeI32([]int{1}, 2), shapeI32([]int{1}, 1), shapeOut(f)},
			tflite.BuiltinOperatorSTRIDED_SLICE, 1, nil, []int{0, 1, 2, 3}, []int{4})
		shapePrepareErr(t, m, "begin", "constant")
		m = shapeModel([]builder.Tensor{shapeAct(f, 4), shapeI32([]int{1}, 0), shapeI32([]int{1}, 2), shapeI32([]int{1}, 1), shapeAct(f, 3)},
			tflite.BuiltinOperatorSTRIDED_SLICE, 1, nil, []int{0, 1, 2, 3}, []int{4})
		shapePrepareErr(t, m, "computed output shape [2]")
	})
}

func sliceModel(tt tflite.TensorType, in []int, begin, size builder.Tensor, out builder.Tensor) *builder.Model {
	return shapeModel([]builder.Tensor{shapeAct(tt, in...), begin, size, out}, tflite.BuiltinOperatorSLICE, 1, nil, []int{0, 1, 2}, []int{3})
}

func TestSlice(t *testing.T) {
	cases := []struct {
		in          []int
		begin, size []int32
	}{
		{[]int{5}, []int32{1}, []int32{3}},
		{[]int{5}, []int32{2}, []int32{-1}},
		{[]int{3, 4}, []int32{1, 1}, []int32{2, 2}},
		{[]int{3, 4}, []int32{0, 2}, []int32{-1, 1}},
		{[]int{2, 3, 4}, []int32{1, 0, 1}, []int32{1, -1, 3}},
		{[]int{1, 2, 3, 2, 2}, []int32{0, 1, 1, 0, 1}, []int32{1, 1, 2, -1, 1}},
		{[]int{3, 4}, []int32{3, 0}, []int32{0, 4}},
	}
	for _, e := range shapeElems {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/%v/%v/%v", e.name, tc.in, tc.begin, tc.size), func(t *testing.T) {
				axes := make([][]int, len(tc.in))
				wantShape := make([]int, len(tc.in))
				for d, n := range tc.in {
					b, s := int(tc.begin[d]), int(tc.size[d])
					if s == -1 {
						s = n - b
					}
					wantShape[d] = s
					for i := b; i < b+s; i++ {
						axes[d] = append(axes[d], i)
					}
				}
				vals := shapeIota(shapeCount(tc.in))
				want := sliceGather(tc.in, vals, axes)
				r := len(tc.in)
				m := sliceModel(e.tt, tc.in, shapeI32([]int{r}, tc.begin...), shapeI32([]int{r}, tc.size...), shapeOut(e.tt))
				shapeCheck(t, m, wantShape, e.data(want), e.data(vals))
				b64, s64 := make([]int64, r), make([]int64, r)
				for i := range r {
					b64[i], s64[i] = int64(tc.begin[i]), int64(tc.size[i])
				}
				m = sliceModel(e.tt, tc.in, shapeI64([]int{r}, b64...), shapeI64([]int{r}, s64...), shapeOut(e.tt))
				shapeCheck(t, m, wantShape, e.data(want), e.data(vals))
			})
		}
	}

	t.Run("non-constant begin and size", func(t *testing.T) {
		e := shapeElems[5]
		i32 := tflite.TensorTypeINT32
		m := sliceModel(e.tt, []int{3, 4}, shapeAct(i32, 2), shapeAct(i32, 2), shapeAct(e.tt, 2, 2))
		vals := shapeIota(12)
		shapeCheck(t, m, []int{2, 2}, e.data([]int{6, 7, 10, 11}), e.data(vals), builder.Int32Data([]int32{1, 1}), builder.Int32Data([]int32{2, 2}))
		shapeCheck(t, m, []int{2, 2}, e.data([]int{3, 4, 7, 8}), e.data(vals), builder.Int32Data([]int32{0, 2}), builder.Int32Data([]int32{2, -1}))
		shapeEvalErr(t, m, "has 2", e.data(vals), builder.Int32Data([]int32{0, 0}), builder.Int32Data([]int32{3, 2}))
		shapeEvalErr(t, m, "leave input", e.data(vals), builder.Int32Data([]int32{2, 0}), builder.Int32Data([]int32{2, 2}))
		shapeEvalErr(t, m, "leave input", e.data(vals), builder.Int32Data([]int32{-1, 0}), builder.Int32Data([]int32{2, 2}))
		shapeNoAllocs(t, m, e.data(vals), builder.Int32Data([]int32{1, 1}), builder.Int32Data([]int32{2, 2}))
		m = sliceModel(e.tt, []int{3, 4}, shapeAct(i32, 2), shapeAct(i32, 2), shapeAct(e.tt, 2, -1))
		shapePrepareErr(t, m, "full shape")
	})

	t.Run("errors", func(t *testing.T) {
		f := tflite.TensorTypeFLOAT32
		for _, tc := range []struct {
			name        string
			begin, size builder.Tensor
			want        string
		}{
			{"past the end", shapeI32([]int{2}, 1, 2), shapeI32([]int{2}, 3, 2), "leave input"},
			{"negative begin", shapeI32([]int{2}, -1, 0), shapeI32([]int{2}, 1, 1), "leave input"},
			{"negative size", shapeI32([]int{2}, 0, 0), shapeI32([]int{2}, -2, 1), "leave input"},
			{"begin too short", shapeI32([]int{1}, 0), shapeI32([]int{2}, 1, 1), "vector of 2"},
			{"float begin", builder.Tensor{Type: f, Shape: []int{2}, Data: make([]byte, 8)}, shapeI32([]int{2}, 1, 1), "int32 or int64"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				shapePrepareErr(t, sliceModel(f, []int{3, 4}, tc.begin, tc.size, shapeOut(f)), tc.want)
			})
		}
	})
}

func TestSliceNoAllocs(t *testing.T) {
	i8 := tflite.TensorTypeINT8
	shapeNoAllocs(t, ssModel(i8, []int{1, 4, 4, 8}, []int32{0, 0, 0, 4}, []int32{0, 0, 0, 8}, []int32{1, 1, 1, 1}, ssOpts(7, 7, 0, 0, 0, false)), make([]byte, 128))
	shapeNoAllocs(t, ssModel(i8, []int{6, 5}, []int32{-1, 0}, []int32{0, 5}, []int32{-2, 2}, nil), make([]byte, 30))
	shapeNoAllocs(t, sliceModel(i8, []int{3, 4}, shapeI32([]int{2}, 1, 1), shapeI32([]int{2}, 2, -1), shapeOut(i8)), make([]byte, 12))
}
