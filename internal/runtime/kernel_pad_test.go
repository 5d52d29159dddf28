package runtime_test

import (
	"fmt"
	"testing"

	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

// padOracle pads vals (shape in) by pairs, filling with fill: an output
// element is the input element at its index minus the left padding when
// that lies inside the input.
func padOracle(in []int, vals []int, pairs [][2]int, fill int) ([]int, []int) {
	out := make([]int, len(in))
	for i, d := range in {
		out[i] = d + pairs[i][0] + pairs[i][1]
	}
	res := make([]int, shapeCount(out))
	for i := range res {
		idx := shapeUnravel(i, out)
		inside := true
		for d := range idx {
			idx[d] -= pairs[d][0]
			if idx[d] < 0 || idx[d] >= in[d] {
				inside = false
			}
		}
		if inside {
			res[i] = vals[shapeFlat(idx, in)]
		} else {
			res[i] = fill
		}
	}
	return out, res
}

func padPairs(pairs [][2]int) []int32 {
	var v []int32
	for _, p := range pairs {
		v = append(v, int32(p[0]), int32(p[1]))
	}
	return v
}

func TestPad(t *testing.T) {
	cases := []struct {
		in    []int
		pairs [][2]int
	}{
		{[]int{3}, [][2]int{{1, 2}}},
		{[]int{2, 3}, [][2]int{{0, 1}, {2, 0}}},
		{[]int{1, 4, 4, 3}, [][2]int{{0, 0}, {1, 1}, {1, 1}, {0, 0}}}, // YOLOv8n's pattern
		{[]int{2, 2, 2, 2}, [][2]int{{1, 0}, {0, 2}, {1, 1}, {2, 1}}},
		{[]int{1, 2, 1, 2, 2}, [][2]int{{1, 1}, {0, 1}, {2, 0}, {0, 0}, {1, 2}}},
		{[]int{2, 3}, [][2]int{{0, 0}, {0, 0}}},
		{[]int{0, 2}, [][2]int{{1, 1}, {1, 0}}},
	}
	for _, e := range shapeElems {
		for _, tc := range cases {
			vals := shapeIota(shapeCount(tc.in))
			// PAD fills with 0 (whose encoding the oracle gets from the
			// "value 0" of each test type; see zeroFor).
			outShape, want := padOracle(tc.in, vals, tc.pairs, -1)
			wantBytes := padEncode(e, want)
			t.Run(fmt.Sprintf("PAD/%s/%v/%v", e.name, tc.in, tc.pairs), func(t *testing.T) {
				m := shapeModel([]builder.Tensor{shapeAct(e.tt, tc.in...), shapeI32([]int{len(tc.in), 2}, padPairs(tc.pairs)...), shapeOut(e.tt)},
					tflite.BuiltinOperatorPAD, 1, nil, []int{0, 1}, []int{2})
				shapeCheck(t, m, outShape, wantBytes, e.data(vals))
			})
			t.Run(fmt.Sprintf("PADV2/%s/%v/%v", e.name, tc.in, tc.pairs), func(t *testing.T) {
				// constant_values is test value 999 in the type's encoding.
				_, wantV := padOracle(tc.in, vals, tc.pairs, 999)
				cv := builder.Tensor{Type: e.tt, Data: e.enc(999)}
				m := shapeModel([]builder.Tensor{shapeAct(e.tt, tc.in...), shapeI32([]int{len(tc.in), 2}, padPairs(tc.pairs)...), cv, shapeOut(e.tt)},
					tflite.BuiltinOperatorPADV2, 1, nil, []int{0, 1, 2}, []int{3})
				shapeCheck(t, m, outShape, e.data(wantV), e.data(vals))
			})
		}
	}

	t.Run("int64 paddings", func(t *testing.T) {
		e := shapeElems[3]
		pairs := [][2]int{{1, 0}, {0, 2}}
		vals := shapeIota(6)
		outShape, want := padOracle([]int{2, 3}, vals, pairs, -1)
		m := shapeModel([]builder.Tensor{shapeAct(e.tt, 2, 3), shapeI64([]int{2, 2}, 1, 0, 0, 2), shapeOut(e.tt)},
			tflite.BuiltinOperatorPAD, 1, nil, []int{0, 1}, []int{2})
		shapeCheck(t, m, outShape, padEncode(e, want), e.data(vals))
	})

	t.Run("quantized fills with zero point", func(t *testing.T) {
		// int8 zero point -5 and uint8 zero point 7 fill the border; the
		// input bytes are copied unchanged.
		i8, u8 := tflite.TensorTypeINT8, tflite.TensorTypeUINT8
		m := shapeModel([]builder.Tensor{shapeQ(shapeAct(i8, 1, 2), 0.1, -5), shapeI32([]int{2, 2}, 0, 0, 1, 1), shapeQ(shapeOut(i8), 0.1, -5)},
			tflite.BuiltinOperatorPAD, 1, nil, []int{0, 1}, []int{2})
		shapeCheck(t, m, []int{1, 4}, []byte{0xfb, 0x80, 0x7f, 0xfb}, []byte{0x80, 0x7f})
		m = shapeModel([]builder.Tensor{shapeQ(shapeAct(u8, 2), 0.1, 7), shapeI32([]int{1, 2}, 2, 1), shapeQ(shapeOut(u8), 0.1, 7)},
			tflite.BuiltinOperatorPAD, 1, nil, []int{0, 1}, []int{2})
		shapeCheck(t, m, []int{5}, []byte{7, 7, 0, 255, 7}, []byte{0, 255})
		// PADV2 on int8 fills with constant_values' byte.
		cv := shapeQ(builder.Tensor{Type: i8, Data: []byte{0x90}}, 0.1, -5)
		m = shapeModel([]builder.Tensor{shapeQ(shapeAct(i8, 2), 0.1, -5), shapeI32([]int{1, 2}, 1, 0), cv, shapeQ(shapeOut(i8), 0.1, -5)},
			tflite.BuiltinOperatorPADV2, 1, nil, []int{0, 1, 2}, []int{3})
		shapeCheck(t, m, []int{3}, []byte{0x90, 1, 2}, []byte{1, 2})
	})

	t.Run("non-constant paddings", func(t *testing.T) {
		f := tflite.TensorTypeFLOAT32
		e := shapeElems[5]
		pairs := [][2]int{{1, 0}, {1, 2}}
		vals := shapeIota(6)
		outShape, want := padOracle([]int{2, 3}, vals, pairs, -1)
		tensors := []builder.Tensor{shapeAct(f, 2, 3), shapeAct(tflite.TensorTypeINT32, 2, 2), shapeAct(f, outShape...)}
		m := shapeModel(tensors, tflite.BuiltinOperatorPAD, 1, nil, []int{0, 1}, []int{2})
		shapeCheck(t, m, outShape, padEncode(e, want), e.data(vals), builder.Int32Data(padPairs(pairs)))
		// Paddings that do not give the declared shape, or negative ones,
		// fail at Eval.
		shapeEvalErr(t, m, "gives 5", e.data(vals), builder.Int32Data([]int32{1, 0, 2, 0}))
		shapeEvalErr(t, m, "negative", e.data(vals), builder.Int32Data([]int32{1, 0, -1, 5}))
		shapeNoAllocs(t, m, e.data(vals), builder.Int32Data(padPairs(pairs)))
		// The output must declare its shape.
		tensors[2] = shapeAct(f, 3, -1)
		shapePrepareErr(t, shapeModel(tensors, tflite.BuiltinOperatorPAD, 1, nil, []int{0, 1}, []int{2}), "not constant", "full shape")
	})

	t.Run("errors", func(t *testing.T) {
		f, i8, i16 := tflite.TensorTypeFLOAT32, tflite.TensorTypeINT8, tflite.TensorTypeINT16
		for _, tc := range []struct {
			name    string
			code    tflite.BuiltinOperator
			tensors []builder.Tensor
			want    string
		}{
			{"rank 6", tflite.BuiltinOperatorPAD, []builder.Tensor{shapeAct(f, 1, 1, 1, 1, 1, 1), shapeI32([]int{6, 2}, make([]int32, 12)...), shapeOut(f)}, "rank 6"},
			{"paddings shape", tflite.BuiltinOperatorPAD, []builder.Tensor{shapeAct(f, 2, 2), shapeI32([]int{4}, 0, 0, 0, 0), shapeOut(f)}, "[2,2]"},
			{"paddings rows", tflite.BuiltinOperatorPAD, []builder.Tensor{shapeAct(f, 2, 2), shapeI32([]int{1, 2}, 0, 0), shapeOut(f)}, "[2,2]"},
			{"negative padding", tflite.BuiltinOperatorPAD, []builder.Tensor{shapeAct(f, 2), shapeI32([]int{1, 2}, -1, 0), shapeOut(f)}, "negative"},
			{"float paddings", tflite.BuiltinOperatorPAD, []builder.Tensor{shapeAct(f, 2), {Type: f, Shape: []int{1, 2}, Data: builder.Float32Data([]float32{0, 0})}, shapeOut(f)}, "int32 or int64"},
			{"type mismatch", tflite.BuiltinOperatorPAD, []builder.Tensor{shapeAct(f, 2), shapeI32([]int{1, 2}, 0, 0), shapeOut(i8)}, "must match"},
			{"int16 zero point", tflite.BuiltinOperatorPAD, []builder.Tensor{shapeQ(shapeAct(i16, 2), 1, 3), shapeI32([]int{1, 2}, 0, 0), shapeQ(shapeOut(i16), 1, 3)}, "zero point 3"},
			{"int8 zero point range", tflite.BuiltinOperatorPAD, []builder.Tensor{shapeQ(shapeAct(i8, 2), 1, 300), shapeI32([]int{1, 2}, 0, 0), shapeQ(shapeOut(i8), 1, 300)}, "zero point 300"},
			{"declared shape", tflite.BuiltinOperatorPAD, []builder.Tensor{shapeAct(f, 2), shapeI32([]int{1, 2}, 1, 1), shapeAct(f, 5)}, "computed output shape [4]"},
			{"PADV2 value type", tflite.BuiltinOperatorPADV2, []builder.Tensor{shapeAct(f, 2), shapeI32([]int{1, 2}, 0, 0), shapeI32(nil, 0), shapeOut(f)}, "must match"},
			{"PADV2 value count", tflite.BuiltinOperatorPADV2, []builder.Tensor{shapeAct(f, 2), shapeI32([]int{1, 2}, 0, 0), {Type: f, Shape: []int{2}, Data: make([]byte, 8)}, shapeOut(f)}, "exactly one value"},
			{"PADV2 value quantization", tflite.BuiltinOperatorPADV2, []builder.Tensor{shapeQ(shapeAct(i8, 2), 0.5, 0), shapeI32([]int{1, 2}, 0, 0), shapeQ(builder.Tensor{Type: i8, Data: []byte{0}}, 0.25, 0), shapeQ(shapeOut(i8), 0.5, 0)}, "must match"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				n := len(tc.tensors) - 1
				inputs := make([]int, n)
				for i := range inputs {
					inputs[i] = i
				}
				shapePrepareErr(t, shapeModel(tc.tensors, tc.code, 1, nil, inputs, []int{n}), tc.want)
			})
		}
	})
}

// padEncode encodes oracle values where -1 marks PAD's fill: the type's
// zero (all-zero bytes, for every unquantized test type).
func padEncode(e shapeElem, vals []int) []byte {
	var out []byte
	zero := make([]byte, len(e.enc(1)))
	for _, v := range vals {
		if v == -1 {
			out = append(out, zero...)
		} else {
			out = append(out, e.enc(v)...)
		}
	}
	if out == nil {
		out = []byte{}
	}
	return out
}

func TestPadNoAllocs(t *testing.T) {
	i8 := tflite.TensorTypeINT8
	m := shapeModel([]builder.Tensor{shapeQ(shapeAct(i8, 1, 4, 4, 3), 0.1, -5), shapeI32([]int{4, 2}, 0, 0, 1, 1, 1, 1, 0, 0), shapeQ(shapeOut(i8), 0.1, -5)},
		tflite.BuiltinOperatorPAD, 1, nil, []int{0, 1}, []int{2})
	shapeNoAllocs(t, m, make([]byte, 48))
	f := tflite.TensorTypeFLOAT32
	m = shapeModel([]builder.Tensor{shapeAct(f, 2, 3), shapeI32([]int{2, 2}, 1, 0, 0, 2), {Type: f, Data: builder.Float32Data([]float32{1.5})}, shapeOut(f)},
		tflite.BuiltinOperatorPADV2, 1, nil, []int{0, 1, 2}, []int{3})
	shapeNoAllocs(t, m, make([]byte, 24))
}
