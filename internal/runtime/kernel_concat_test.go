package runtime_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

func concatOpts(axis int32, act tflite.ActivationFunctionType) *tflite.BuiltinOptionsT {
	return &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsConcatenationOptions,
		Value: &tflite.ConcatenationOptionsT{Axis: axis, FusedActivationFunction: act}}
}

// concatOracle concatenates value lists by output multi-index: along the
// axis, the output position picks the input whose range covers it.
func concatOracle(shapes [][]int, vals [][]int, axis int) ([]int, []int) {
	out := append([]int(nil), shapes[0]...)
	out[axis] = 0
	for _, s := range shapes {
		out[axis] += s[axis]
	}
	res := make([]int, shapeCount(out))
	for i := range res {
		idx := shapeUnravel(i, out)
		a := idx[axis]
		for j, s := range shapes {
			if a < s[axis] {
				idx[axis] = a
				res[i] = vals[j][shapeFlat(idx, s)]
				break
			}
			a -= s[axis]
		}
	}
	return out, res
}

func TestConcatenation(t *testing.T) {
	cases := []struct {
		shapes [][]int
		axis   int
	}{
		{[][]int{{2, 1, 3}, {2, 2, 3}, {2, 3, 3}}, 1},
		{[][]int{{2, 1, 3}, {2, 2, 3}, {2, 3, 3}}, -2},
		{[][]int{{2, 3}, {1, 3}}, 0},
		{[][]int{{2, 3}, {2, 1}, {2, 2}, {2, 4}}, -1},
		{[][]int{{1, 2, 2, 3}, {1, 2, 2, 5}}, 3},
		{[][]int{{4}}, 0},
		{[][]int{{2, 0, 3}, {2, 2, 3}}, 1},
	}
	for _, e := range shapeElems {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/%v/axis%d", e.name, tc.shapes, tc.axis), func(t *testing.T) {
				var tensors []builder.Tensor
				var inputs []int
				var vals [][]int
				var data [][]byte
				next := 1
				for i, s := range tc.shapes {
					tensors = append(tensors, shapeAct(e.tt, s...))
					inputs = append(inputs, i)
					v := make([]int, shapeCount(s))
					for j := range v {
						v[j] = next
						next++
					}
					vals = append(vals, v)
					data = append(data, e.data(v))
				}
				tensors = append(tensors, shapeOut(e.tt))
				axis := tc.axis
				if axis < 0 {
					axis += len(tc.shapes[0])
				}
				wantShape, want := concatOracle(tc.shapes, vals, axis)
				m := shapeModel(tensors, tflite.BuiltinOperatorCONCATENATION, 1, concatOpts(int32(tc.axis), 0), inputs, []int{len(tc.shapes)})
				shapeCheck(t, m, wantShape, e.data(want), data...)
			})
		}
	}

	t.Run("constant input", func(t *testing.T) {
		i32 := tflite.TensorTypeINT32
		m := shapeModel([]builder.Tensor{shapeI32([]int{2}, 7, 8), shapeAct(i32, 3), shapeOut(i32)},
			tflite.BuiltinOperatorCONCATENATION, 1, concatOpts(0, 0), []int{0, 1, 0}, []int{2})
		shapeCheck(t, m, []int{7}, builder.Int32Data([]int32{7, 8, 1, 2, 3, 7, 8}), builder.Int32Data([]int32{1, 2, 3}))
	})

	t.Run("scalars", func(t *testing.T) {
		i32 := tflite.TensorTypeINT32
		m := shapeModel([]builder.Tensor{shapeAct(i32), shapeAct(i32), shapeOut(i32)},
			tflite.BuiltinOperatorCONCATENATION, 1, concatOpts(0, 0), []int{0, 1}, []int{2})
		shapeCheck(t, m, []int{2}, builder.Int32Data([]int32{5, -6}), builder.Int32Data([]int32{5}), builder.Int32Data([]int32{-6}))
	})

	t.Run("int8 same quantization", func(t *testing.T) {
		i8 := tflite.TensorTypeINT8
		m := shapeModel([]builder.Tensor{shapeQ(shapeAct(i8, 1, 2), 0.5, -3), shapeQ(shapeAct(i8, 1, 1), 0.5, -3), shapeQ(shapeOut(i8), 0.5, -3)},
			tflite.BuiltinOperatorCONCATENATION, 1, concatOpts(1, 0), []int{0, 1}, []int{2})
		shapeCheck(t, m, []int{1, 3}, []byte{1, 0x80, 0x7f}, []byte{1, 0x80}, []byte{0x7f})
	})

	t.Run("float activation", func(t *testing.T) {
		f := tflite.TensorTypeFLOAT32
		for _, tc := range []struct {
			act  tflite.ActivationFunctionType
			want []float32
		}{
			{tflite.ActivationFunctionTypeNONE, []float32{-7, -0.5, 0.5, 3, 6.5, 1}},
			{tflite.ActivationFunctionTypeRELU, []float32{0, 0, 0.5, 3, 6.5, 1}},
			{tflite.ActivationFunctionTypeRELU6, []float32{0, 0, 0.5, 3, 6, 1}},
			{tflite.ActivationFunctionTypeRELU_N1_TO_1, []float32{-1, -0.5, 0.5, 1, 1, 1}},
		} {
			t.Run(tflite.EnumNamesActivationFunctionType[tc.act], func(t *testing.T) {
				m := shapeModel([]builder.Tensor{shapeAct(f, 2, 2), shapeAct(f, 2, 1), shapeOut(f)},
					tflite.BuiltinOperatorCONCATENATION, 1, concatOpts(1, tc.act), []int{0, 1}, []int{2})
				want := []float32{tc.want[0], tc.want[1], tc.want[4], tc.want[2], tc.want[3], tc.want[5]}
				shapeCheck(t, m, []int{2, 3}, builder.Float32Data(want),
					builder.Float32Data([]float32{-7, -0.5, 0.5, 3}), builder.Float32Data([]float32{6.5, 1}))
			})
		}
	})

	t.Run("errors", func(t *testing.T) {
		f, i8, i16 := tflite.TensorTypeFLOAT32, tflite.TensorTypeINT8, tflite.TensorTypeINT16
		for _, tc := range []struct {
			name    string
			tensors []builder.Tensor
			opts    *tflite.BuiltinOptionsT
			want    string
		}{
			{"axis too large", []builder.Tensor{shapeAct(f, 2, 3), shapeAct(f, 2, 3), shapeOut(f)}, concatOpts(2, 0), "out of range"},
			{"axis too small", []builder.Tensor{shapeAct(f, 2, 3), shapeAct(f, 2, 3), shapeOut(f)}, concatOpts(-3, 0), "out of range"},
			{"rank mismatch", []builder.Tensor{shapeAct(f, 2, 3), shapeAct(f, 2, 3, 1), shapeOut(f)}, concatOpts(1, 0), "rank"},
			{"dimension mismatch", []builder.Tensor{shapeAct(f, 2, 3), shapeAct(f, 3, 3), shapeOut(f)}, concatOpts(1, 0), "dimension 0"},
			{"type mismatch", []builder.Tensor{shapeAct(f, 2, 3), shapeAct(i8, 2, 3), shapeOut(f)}, concatOpts(1, 0), "must match"},
			{"int8 scale mismatch", []builder.Tensor{shapeQ(shapeAct(i8, 2), 0.5, 0), shapeQ(shapeAct(i8, 2), 0.25, 0), shapeQ(shapeOut(i8), 0.5, 0)}, concatOpts(0, 0), "does not requantize"},
			{"int8 zero point mismatch", []builder.Tensor{shapeQ(shapeAct(i8, 2), 0.5, 0), shapeQ(shapeAct(i8, 2), 0.5, 1), shapeQ(shapeOut(i8), 0.5, 0)}, concatOpts(0, 0), "does not requantize"},
			{"int16 zero point", []builder.Tensor{shapeQ(shapeAct(i16, 2), 0.5, 0), shapeQ(shapeAct(i16, 2), 0.5, 1), shapeQ(shapeOut(i16), 0.5, 0)}, concatOpts(0, 0), "zero point 1"},
			{"int8 activation", []builder.Tensor{shapeAct(i8, 2), shapeAct(i8, 2), shapeOut(i8)}, concatOpts(0, tflite.ActivationFunctionTypeRELU), "RELU"},
			{"float tanh activation", []builder.Tensor{shapeAct(f, 2), shapeAct(f, 2), shapeOut(f)}, concatOpts(0, tflite.ActivationFunctionTypeTANH), "TANH"},
			{"declared shape", []builder.Tensor{shapeAct(f, 2), shapeAct(f, 2), shapeAct(f, 5)}, concatOpts(0, 0), "computed output shape [4]"},
			{"uint8 rescale without output scale", []builder.Tensor{shapeQ(shapeAct(tflite.TensorTypeUINT8, 2), 0.5, 0), shapeOut(tflite.TensorTypeUINT8)}, concatOpts(0, 0), "no usable scale"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				n := len(tc.tensors) - 1
				inputs := make([]int, n)
				for i := range inputs {
					inputs[i] = i
				}
				m := shapeModel(tc.tensors, tflite.BuiltinOperatorCONCATENATION, 1, tc.opts, inputs, []int{n})
				shapePrepareErr(t, m, tc.want)
			})
		}
	})
}

// TestConcatenationUint8Rescale checks full TFLite's
// ConcatenationWithScaling: inputs quantized like the output are copied,
// others requantized with rounding half away from zero and saturation.
func TestConcatenationUint8Rescale(t *testing.T) {
	u8 := tflite.TensorTypeUINT8
	t.Run("hand computed", func(t *testing.T) {
		// Input 0 (scale 0.5, zp 1) into scale 1, zp 5: q_out = round((q-1)/2) + 5,
		// ties away from zero: q=0 -> round(-0.5) = -1 -> 4; q=2 -> 1 -> 6;
		// q=4 -> round(1.5) = 2 -> 7; q=6 -> round(2.5) = 3 -> 8; q=255 -> 127 -> 132.
		// Input 1 is quantized like the output: copied. Input 2 (scale 4, zp 0):
		// q*4 + 5 saturating: 0 -> 5, 10 -> 45, 100 -> 255.
		// Input 3 (scale 2, zp 100): (q-100)*2 + 5: 97 -> 0 (saturates from -1), 98 -> 1.
		m := shapeModel([]builder.Tensor{
			shapeQ(shapeAct(u8, 5), 0.5, 1),
			shapeQ(shapeAct(u8, 2), 1, 5),
			shapeQ(shapeAct(u8, 3), 4, 0),
			shapeQ(shapeAct(u8, 2), 2, 100),
			shapeQ(shapeOut(u8), 1, 5),
		}, tflite.BuiltinOperatorCONCATENATION, 1, concatOpts(0, 0), []int{0, 1, 2, 3}, []int{4})
		want := []byte{4, 6, 7, 8, 132, 0, 255, 5, 45, 255, 0, 1}
		shapeCheck(t, m, []int{12}, want, []byte{0, 2, 4, 6, 255}, []byte{0, 255}, []byte{0, 10, 100}, []byte{97, 98})
	})
	t.Run("float oracle", func(t *testing.T) {
		// The traffic model's box-encoding concatenation: three inputs, each
		// quantized differently, along axis 1. Oracle: dequantize, requantize
		// in float64; the kernel's float32 steps may differ from it only
		// where the float64 value sits within 1e-4 of a rounding tie.
		shapes := [][]int{{1, 6, 4}, {1, 3, 4}, {1, 2, 4}}
		scales := []float32{0.032328233, 0.03199876, 0.027407568}
		zps := []int64{117, 115, 131}
		outScale, outZP := float32(0.032328233), int64(117)
		var tensors []builder.Tensor
		var vals [][]int
		var data [][]byte
		for i, s := range shapes {
			tensors = append(tensors, shapeQ(shapeAct(u8, s...), scales[i], zps[i]))
			v := make([]int, shapeCount(s))
			for j := range v {
				v[j] = (j*37 + i*101 + 3) % 256
			}
			vals = append(vals, v)
			d := make([]byte, len(v))
			for j, x := range v {
				d[j] = byte(x)
			}
			data = append(data, d)
		}
		tensors = append(tensors, shapeQ(shapeOut(u8), outScale, outZP))
		// Requantize each input's values first, then place them.
		req := make([][]int, len(vals))
		ambiguous := make([][]bool, len(vals))
		for i, v := range vals {
			req[i] = make([]int, len(v))
			ambiguous[i] = make([]bool, len(v))
			for j, q := range v {
				if i == 0 {
					req[i][j] = q // same quantization as the output: copied
					continue
				}
				f := (float64(q) - float64(zps[i])) * float64(scales[i]) / float64(outScale)
				frac := math.Abs(f - math.Trunc(f))
				ambiguous[i][j] = math.Abs(frac-0.5) < 1e-4
				r := int(math.Round(f)) + int(outZP)
				req[i][j] = min(max(r, 0), 255)
			}
		}
		wantShape, want := concatOracle(shapes, req, 1)
		_, amb := concatOracle(shapes, concatBoolsToInts(ambiguous), 1)
		m := shapeModel(tensors, tflite.BuiltinOperatorCONCATENATION, 1, concatOpts(1, 0), []int{0, 1, 2}, []int{3})
		outs, gotShapes := shapeRun(t, m, data...)
		if fmt.Sprint(gotShapes[0]) != fmt.Sprint(wantShape) {
			t.Fatalf("shape %v, want %v", gotShapes[0], wantShape)
		}
		for i, w := range want {
			if amb[i] == 1 {
				continue
			}
			if int(outs[0][i]) != w {
				t.Errorf("element %d: got %d, want %d", i, outs[0][i], w)
			}
		}
	})
}

func concatBoolsToInts(b [][]bool) [][]int {
	out := make([][]int, len(b))
	for i, r := range b {
		out[i] = make([]int, len(r))
		for j, x := range r {
			if x {
				out[i][j] = 1
			}
		}
	}
	return out
}

func packOpts(n, axis int32) *tflite.BuiltinOptionsT {
	return &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsPackOptions, Value: &tflite.PackOptionsT{ValuesCount: n, Axis: axis}}
}

func unpackOpts(n, axis int32) *tflite.BuiltinOptionsT {
	return &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsUnpackOptions, Value: &tflite.UnpackOptionsT{Num: n, Axis: axis}}
}

func TestPackUnpack(t *testing.T) {
	in := []int{2, 3}
	for _, e := range shapeElems {
		for _, axis := range []int{0, 1, 2, -1, -3} {
			a := axis
			if a < 0 {
				a += len(in) + 1
			}
			const n = 3
			// Packed shape and values: packed[..., k at axis, ...] = input k.
			packed := append(append(append([]int(nil), in[:a]...), n), in[a:]...)
			vals := make([][]int, n)
			for k := range vals {
				vals[k] = make([]int, shapeCount(in))
				for j := range vals[k] {
					vals[k][j] = 1 + k*100 + j
				}
			}
			want := make([]int, shapeCount(packed))
			for i := range want {
				idx := shapeUnravel(i, packed)
				k := idx[a]
				rest := append(append([]int(nil), idx[:a]...), idx[a+1:]...)
				want[i] = vals[k][shapeFlat(rest, in)]
			}
			t.Run(fmt.Sprintf("pack/%s/axis%d", e.name, axis), func(t *testing.T) {
				tensors := []builder.Tensor{shapeAct(e.tt, in...), shapeAct(e.tt, in...), shapeAct(e.tt, in...), shapeOut(e.tt)}
				m := shapeModel(tensors, tflite.BuiltinOperatorPACK, 1, packOpts(n, int32(axis)), []int{0, 1, 2}, []int{3})
				shapeCheck(t, m, packed, e.data(want), e.data(vals[0]), e.data(vals[1]), e.data(vals[2]))
			})
			t.Run(fmt.Sprintf("unpack/%s/axis%d", e.name, axis), func(t *testing.T) {
				tensors := []builder.Tensor{shapeAct(e.tt, packed...), shapeOut(e.tt), shapeOut(e.tt), shapeOut(e.tt)}
				m := shapeModel(tensors, tflite.BuiltinOperatorUNPACK, 1, unpackOpts(n, int32(axis)), []int{0}, []int{1, 2, 3})
				outs, shapes := shapeRun(t, m, e.data(want))
				for k := range n {
					if fmt.Sprint(shapes[k]) != fmt.Sprint(in) {
						t.Fatalf("output %d shape %v, want %v", k, shapes[k], in)
					}
					if string(outs[k]) != string(e.data(vals[k])) {
						t.Fatalf("output %d: got %v, want %v", k, outs[k], e.data(vals[k]))
					}
				}
			})
		}
	}
	t.Run("errors", func(t *testing.T) {
		f, i8 := tflite.TensorTypeFLOAT32, tflite.TensorTypeINT8
		m := shapeModel([]builder.Tensor{shapeAct(f, 2), shapeAct(f, 2), shapeOut(f)}, tflite.BuiltinOperatorPACK, 1, packOpts(3, 0), []int{0, 1}, []int{2})
		shapePrepareErr(t, m, "values_count 3")
		m = shapeModel([]builder.Tensor{shapeAct(f, 2), shapeAct(f, 3), shapeOut(f)}, tflite.BuiltinOperatorPACK, 1, packOpts(2, 0), []int{0, 1}, []int{2})
		shapePrepareErr(t, m, "differ in shape")
		m = shapeModel([]builder.Tensor{shapeAct(f, 2), shapeAct(f, 2), shapeOut(f)}, tflite.BuiltinOperatorPACK, 1, packOpts(2, 2), []int{0, 1}, []int{2})
		shapePrepareErr(t, m, "out of range")
		m = shapeModel([]builder.Tensor{shapeQ(shapeAct(i8, 2), 0.5, 0), shapeQ(shapeAct(i8, 2), 0.5, 1), shapeQ(shapeOut(i8), 0.5, 0)}, tflite.BuiltinOperatorPACK, 1, packOpts(2, 0), []int{0, 1}, []int{2})
		shapePrepareErr(t, m, "does not requantize")
		m = shapeModel([]builder.Tensor{shapeAct(f, 2, 3), shapeOut(f), shapeOut(f)}, tflite.BuiltinOperatorUNPACK, 1, unpackOpts(2, 1), []int{0}, []int{1, 2})
		shapePrepareErr(t, m, "num 2")
		m = shapeModel([]builder.Tensor{shapeAct(f, 2, 3), shapeOut(f), shapeOut(f)}, tflite.BuiltinOperatorUNPACK, 1, unpackOpts(2, 2), []int{0}, []int{1, 2})
		shapePrepareErr(t, m, "out of range")
		m = shapeModel([]builder.Tensor{shapeAct(f, 3, 2), shapeOut(f), shapeOut(f)}, tflite.BuiltinOperatorUNPACK, 1, unpackOpts(3, 0), []int{0}, []int{1, 2})
		shapePrepareErr(t, m, "has 2 outputs")
		m = shapeModel([]builder.Tensor{shapeQ(shapeAct(i8, 2, 2), 0.5, 0), shapeQ(shapeOut(i8), 0.5, 0), shapeQ(shapeOut(i8), 0.25, 0)}, tflite.BuiltinOperatorUNPACK, 1, unpackOpts(2, 0), []int{0}, []int{1, 2})
		shapePrepareErr(t, m, "does not requantize")
	})
}

func TestConcatNoAllocs(t *testing.T) {
	u8 := tflite.TensorTypeUINT8
	t.Run("concatenation uint8 rescale", func(t *testing.T) {
		m := shapeModel([]builder.Tensor{shapeQ(shapeAct(u8, 2, 3), 0.5, 1), shapeQ(shapeAct(u8, 2, 2), 1, 5), shapeQ(shapeOut(u8), 1, 5)},
			tflite.BuiltinOperatorCONCATENATION, 1, concatOpts(1, 0), []int{0, 1}, []int{2})
		shapeNoAllocs(t, m, make([]byte, 6), make([]byte, 4))
	})
	t.Run("concatenation float relu", func(t *testing.T) {
		f := tflite.TensorTypeFLOAT32
		m := shapeModel([]builder.Tensor{shapeAct(f, 2, 3), shapeAct(f, 2, 2), shapeOut(f)},
			tflite.BuiltinOperatorCONCATENATION, 1, concatOpts(1, tflite.ActivationFunctionTypeRELU), []int{0, 1}, []int{2})
		shapeNoAllocs(t, m, make([]byte, 24), make([]byte, 16))
	})
	t.Run("pack", func(t *testing.T) {
		m := shapeModel([]builder.Tensor{shapeAct(u8, 2, 3), shapeAct(u8, 2, 3), shapeOut(u8)}, tflite.BuiltinOperatorPACK, 1, packOpts(2, 1), []int{0, 1}, []int{2})
		shapeNoAllocs(t, m, make([]byte, 6), make([]byte, 6))
	})
	t.Run("unpack", func(t *testing.T) {
		m := shapeModel([]builder.Tensor{shapeAct(u8, 2, 3), shapeOut(u8), shapeOut(u8), shapeOut(u8)}, tflite.BuiltinOperatorUNPACK, 1, unpackOpts(3, 1), []int{0}, []int{1, 2, 3})
		shapeNoAllocs(t, m, make([]byte, 6))
	})
}
