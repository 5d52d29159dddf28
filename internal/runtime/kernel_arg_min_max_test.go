package runtime_test

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

// argElem is a numeric input type with an encoder of float64 test values
// (which the tests keep representable).
type argElem struct {
	name string
	tt   tflite.TensorType
	enc  func(v float64) []byte
}

var argElems = []argElem{
	{"float32", tflite.TensorTypeFLOAT32, func(v float64) []byte { return binary.LittleEndian.AppendUint32(nil, math.Float32bits(float32(v))) }},
	{"uint8", tflite.TensorTypeUINT8, func(v float64) []byte { return []byte{uint8(v + 128)} }},
	{"int8", tflite.TensorTypeINT8, func(v float64) []byte { return []byte{byte(int8(v))} }},
	{"int16", tflite.TensorTypeINT16, func(v float64) []byte { return binary.LittleEndian.AppendUint16(nil, uint16(int16(v*100))) }},
	{"int32", tflite.TensorTypeINT32, func(v float64) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(int32(v*1e6))) }},
	{"int64", tflite.TensorTypeINT64, func(v float64) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(int64(v*1e12))) }},
}

func argOpts(max bool, out tflite.TensorType) *tflite.BuiltinOptionsT {
	if max {
		return &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsArgMaxOptions, Value: &tflite.ArgMaxOptionsT{OutputType: out}}
	}
	return &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsArgMinOptions, Value: &tflite.ArgMinOptionsT{OutputType: out}}
}

func argCode(max bool) tflite.BuiltinOperator {
	if max {
		return tflite.BuiltinOperatorARG_MAX
	}
	return tflite.BuiltinOperatorARG_MIN
}

// argOracle: for each position without the axis, the first index along
// the axis holding the maximum (minimum).
func argOracle(shape []int, vals []float64, axis int, max bool) ([]int, []int) {
	out := append(append([]int(nil), shape[:axis]...), shape[axis+1:]...)
	res := make([]int, shapeCount(out))
	for i := range res {
		o := shapeUnravel(i, out)
		best := 0
		for a := range shape[axis] {
			src := append(append(append([]int(nil), o[:axis]...), a), o[axis:]...)
			cur := append(append(append([]int(nil), o[:axis]...), best), o[axis:]...)
			v, b := vals[shapeFlat(src, shape)], vals[shapeFlat(cur, shape)]
			if (max && v > b) || (!max && v < b) {
				best = a
			}
		}
		res[i] = best
	}
	return out, res
}

func argEncodeOut(tt tflite.TensorType, v []int) []byte {
	if tt == tflite.TensorTypeINT64 {
		x := make([]int64, len(v))
		for i := range v {
			x[i] = int64(v[i])
		}
		return builder.Int64Data(x)
	}
	x := make([]int32, len(v))
	for i := range v {
		x[i] = int32(v[i])
	}
	return builder.Int32Data(x)
}

func TestArgMinMax(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	shape := []int{2, 3, 4}
	// Small integers (many ties) and a few larger values.
	vals := make([]float64, shapeCount(shape))
	for i := range vals {
		vals[i] = float64(rng.IntN(7) - 3)
	}
	vals[5], vals[17] = 100, -100
	for _, e := range argElems {
		for _, outT := range []tflite.TensorType{tflite.TensorTypeINT32, tflite.TensorTypeINT64} {
			for _, max := range []bool{true, false} {
				for _, axis := range []int{0, 1, 2, -1, -3} {
					name := fmt.Sprintf("%s/%s/max=%v/axis%d", e.name, tflite.EnumNamesTensorType[outT], max, axis)
					t.Run(name, func(t *testing.T) {
						a := axis
						if a < 0 {
							a += len(shape)
						}
						outShape, want := argOracle(shape, vals, a, max)
						var in []byte
						for _, v := range vals {
							in = append(in, e.enc(v)...)
						}
						m := shapeModel([]builder.Tensor{shapeAct(e.tt, shape...), shapeI32(nil, int32(axis)), shapeOut(outT)},
							argCode(max), 1, argOpts(max, outT), []int{0, 1}, []int{2})
						shapeCheck(t, m, outShape, argEncodeOut(outT, want), in)
					})
				}
			}
		}
	}

	t.Run("ties take the first index", func(t *testing.T) {
		i8 := tflite.TensorTypeINT8
		m := shapeModel([]builder.Tensor{shapeAct(i8, 6), shapeI64([]int{1}, 0), shapeOut(tflite.TensorTypeINT32)},
			tflite.BuiltinOperatorARG_MAX, 1, nil, []int{0, 1}, []int{2})
		shapeCheck(t, m, []int{}, builder.Int32Data([]int32{2}), []byte{1, 3, 9, 9, 2, 9})
		m = shapeModel([]builder.Tensor{shapeAct(i8, 6), shapeI64([]int{1}, 0), shapeOut(tflite.TensorTypeINT32)},
			tflite.BuiltinOperatorARG_MIN, 1, nil, []int{0, 1}, []int{2})
		shapeCheck(t, m, []int{}, builder.Int32Data([]int32{1}), []byte{3, 0x80, 9, 0x80, 0x80, 9})
	})

	t.Run("NaN as TFLM", func(t *testing.T) {
		// Plain > and <: a NaN never replaces the best so far, and a
		// leading NaN is never replaced.
		f := tflite.TensorTypeFLOAT32
		nan := float32(math.NaN())
		for _, tc := range []struct {
			max  bool
			in   []float32
			want int32
		}{
			{true, []float32{1, nan, 3, 2}, 2},
			{true, []float32{nan, 1, 3}, 0},
			{false, []float32{1, nan, -3, 2}, 2},
			{false, []float32{nan, -1}, 0},
		} {
			m := shapeModel([]builder.Tensor{shapeAct(f, len(tc.in)), shapeI32(nil, 0), shapeOut(tflite.TensorTypeINT32)},
				argCode(tc.max), 1, nil, []int{0, 1}, []int{2})
			shapeCheck(t, m, []int{}, builder.Int32Data([]int32{tc.want}), builder.Float32Data(tc.in))
		}
	})

	t.Run("errors", func(t *testing.T) {
		f, i32 := tflite.TensorTypeFLOAT32, tflite.TensorTypeINT32
		for _, tc := range []struct {
			name    string
			tensors []builder.Tensor
			opts    *tflite.BuiltinOptionsT
			want    string
		}{
			{"axis out of range", []builder.Tensor{shapeAct(f, 2, 3), shapeI32(nil, 2), shapeOut(i32)}, nil, "out of range"},
			{"non-constant axis", []builder.Tensor{shapeAct(f, 2, 3), shapeAct(i32), shapeOut(i32)}, nil, "constant"},
			{"two axes", []builder.Tensor{shapeAct(f, 2, 3), shapeI32([]int{2}, 0, 1), shapeOut(i32)}, nil, "exactly one value"},
			{"float output", []builder.Tensor{shapeAct(f, 2, 3), shapeI32(nil, 0), shapeOut(f)}, nil, "unsupported"},
			{"bool input", []builder.Tensor{shapeAct(tflite.TensorTypeBOOL, 2, 3), shapeI32(nil, 0), shapeOut(i32)}, nil, "unsupported"},
			{"scalar input", []builder.Tensor{shapeAct(f), shapeI32(nil, 0), shapeOut(i32)}, nil, "rank 1"},
			{"empty axis", []builder.Tensor{shapeAct(f, 2, 0), shapeI32(nil, 1), shapeOut(i32)}, nil, "no elements"},
			{"options disagree", []builder.Tensor{shapeAct(f, 2, 3), shapeI32(nil, 0), shapeOut(i32)}, argOpts(true, tflite.TensorTypeINT64), "int64"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m := shapeModel(tc.tensors, tflite.BuiltinOperatorARG_MAX, 1, tc.opts, []int{0, 1}, []int{2})
				shapePrepareErr(t, m, tc.want)
			})
		}
	})
}

func TestArgMinMaxNoAllocs(t *testing.T) {
	u8 := tflite.TensorTypeUINT8
	for _, max := range []bool{true, false} {
		m := shapeModel([]builder.Tensor{shapeAct(u8, 1, 1001), shapeI32(nil, -1), shapeOut(tflite.TensorTypeINT64)},
			argCode(max), 1, argOpts(max, tflite.TensorTypeINT64), []int{0, 1}, []int{2})
		shapeNoAllocs(t, m, make([]byte, 1001))
	}
}
