package runtime_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

// transposeOracle: output[i0..in] = input at index j where j[perm[d]] = i[d].
func transposeOracle(in []int, vals []int, perm []int) ([]int, []int) {
	out := make([]int, len(in))
	for d, p := range perm {
		out[d] = in[p]
	}
	res := make([]int, shapeCount(out))
	for i := range res {
		idx := shapeUnravel(i, out)
		src := make([]int, len(in))
		for d, p := range perm {
			src[p] = idx[d]
		}
		res[i] = vals[shapeFlat(src, in)]
	}
	return out, res
}

func TestTranspose(t *testing.T) {
	cases := []struct {
		in   []int
		perm []int
	}{
		{[]int{5}, []int{0}},
		{[]int{2, 3}, []int{1, 0}},
		{[]int{2, 3, 4}, []int{2, 0, 1}},
		{[]int{1, 3, 3, 4}, []int{0, 3, 1, 2}}, // YOLOv8n's NHWC -> NCHW
		{[]int{1, 4, 5, 2}, []int{0, 1, 3, 2}},
		{[]int{2, 1, 3, 2, 2}, []int{4, 2, 0, 3, 1}},
		{[]int{2, 2, 1, 3, 2, 2}, []int{5, 3, 1, 0, 4, 2}},
		{[]int{2, 0, 3}, []int{2, 1, 0}},
	}
	for _, e := range shapeElems {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/%v/%v", e.name, tc.in, tc.perm), func(t *testing.T) {
				vals := shapeIota(shapeCount(tc.in))
				outShape, want := transposeOracle(tc.in, vals, tc.perm)
				perm := make([]int32, len(tc.perm))
				for i, p := range tc.perm {
					perm[i] = int32(p)
				}
				m := shapeModel([]builder.Tensor{shapeAct(e.tt, tc.in...), shapeI32([]int{len(perm)}, perm...), shapeOut(e.tt)},
					tflite.BuiltinOperatorTRANSPOSE, 1, nil, []int{0, 1}, []int{2})
				shapeCheck(t, m, outShape, e.data(want), e.data(vals))
			})
		}
	}

	t.Run("random", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		e := shapeElems[3] // int32: every value distinct
		for range 50 {
			rank := 1 + rng.IntN(6)
			in := make([]int, rank)
			for i := range in {
				in[i] = 1 + rng.IntN(4)
			}
			p := rng.Perm(rank)
			perm := make([]int64, rank)
			for i, x := range p {
				perm[i] = int64(x)
			}
			vals := shapeIota(shapeCount(in))
			outShape, want := transposeOracle(in, vals, p)
			m := shapeModel([]builder.Tensor{shapeAct(e.tt, in...), shapeI64([]int{rank}, perm...), shapeOut(e.tt)},
				tflite.BuiltinOperatorTRANSPOSE, 1, nil, []int{0, 1}, []int{2})
			shapeCheck(t, m, outShape, e.data(want), e.data(vals))
		}
	})

	t.Run("errors", func(t *testing.T) {
		f := tflite.TensorTypeFLOAT32
		for _, tc := range []struct {
			name string
			in   []int
			perm builder.Tensor
			want string
		}{
			{"duplicate", []int{2, 3}, shapeI32([]int{2}, 0, 0), "twice"},
			{"out of range", []int{2, 3}, shapeI32([]int{2}, 0, 2), "out of range"},
			{"negative", []int{2, 3}, shapeI32([]int{2}, -1, 0), "out of range"},
			{"short", []int{2, 3}, shapeI32([]int{1}, 0), "vector of 2"},
			{"not constant", []int{2, 3}, shapeAct(tflite.TensorTypeINT32, 2), "constant"},
			{"rank 7", []int{1, 1, 1, 1, 1, 1, 1}, shapeI32([]int{7}, 0, 1, 2, 3, 4, 5, 6), "rank 7"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m := shapeModel([]builder.Tensor{shapeAct(f, tc.in...), tc.perm, shapeOut(f)},
					tflite.BuiltinOperatorTRANSPOSE, 1, nil, []int{0, 1}, []int{2})
				shapePrepareErr(t, m, tc.want)
			})
		}
	})
}

func TestTransposeNoAllocs(t *testing.T) {
	i8 := tflite.TensorTypeINT8
	m := shapeModel([]builder.Tensor{shapeAct(i8, 1, 4, 5, 6), shapeI32([]int{4}, 0, 3, 1, 2), shapeOut(i8)},
		tflite.BuiltinOperatorTRANSPOSE, 1, nil, []int{0, 1}, []int{2})
	shapeNoAllocs(t, m, make([]byte, 120))
}
