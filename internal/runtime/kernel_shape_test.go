package runtime_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

// Helpers shared by the shape-op family's tests (concat, pad, transpose,
// slice, split, gather, arg_min_max, resize): all prefixed "shape".

// shapeElem is an element type the data-movement tests run on. Test values
// are small positive integers; enc turns one into the type's bytes (int8
// and uint8 wrap, bool keeps the low bit, float32 adds a fraction).
type shapeElem struct {
	name string
	tt   tflite.TensorType
	enc  func(v int) []byte
}

func (e shapeElem) data(vals []int) []byte {
	var out []byte
	for _, v := range vals {
		out = append(out, e.enc(v)...)
	}
	if out == nil {
		out = []byte{}
	}
	return out
}

var shapeElems = []shapeElem{
	{"int8", tflite.TensorTypeINT8, func(v int) []byte { return []byte{byte(int8(v*7 - 100))} }},
	{"uint8", tflite.TensorTypeUINT8, func(v int) []byte { return []byte{byte(v*3 + 1)} }},
	{"int16", tflite.TensorTypeINT16, func(v int) []byte { return binary.LittleEndian.AppendUint16(nil, uint16(int16(-v*301))) }},
	{"int32", tflite.TensorTypeINT32, func(v int) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(int32(v*100003))) }},
	{"int64", tflite.TensorTypeINT64, func(v int) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(int64(v)<<33+int64(v))) }},
	{"float32", tflite.TensorTypeFLOAT32, func(v int) []byte {
		return binary.LittleEndian.AppendUint32(nil, math.Float32bits(float32(v)+0.25))
	}},
	{"bool", tflite.TensorTypeBOOL, func(v int) []byte { return []byte{byte(v & 1)} }},
}

// shapeIota is 1..n.
func shapeIota(n int) []int {
	v := make([]int, n)
	for i := range v {
		v[i] = i + 1
	}
	return v
}

func shapeCount(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// shapeStrides is the row-major strides of shape.
func shapeStrides(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}

// shapeUnravel is the multi-index of flat position i.
func shapeUnravel(i int, shape []int) []int {
	idx := make([]int, len(shape))
	for d := len(shape) - 1; d >= 0; d-- {
		if shape[d] > 0 {
			idx[d] = i % shape[d]
			i /= shape[d]
		}
	}
	return idx
}

// shapeFlat is the flat position of a multi-index.
func shapeFlat(idx, shape []int) int {
	p := 0
	for d, s := range shapeStrides(shape) {
		p += idx[d] * s
	}
	return p
}

// shapeAct is an activation tensor of the given type and shape.
func shapeAct(tt tflite.TensorType, shape ...int) builder.Tensor {
	return builder.Tensor{Type: tt, Shape: shape}
}

// shapeOut is an output tensor whose shape the model leaves unknown, so the
// test sees the shape the kernel computes.
func shapeOut(tt tflite.TensorType) builder.Tensor {
	return builder.Tensor{Type: tt}
}

// shapeQ adds per-tensor quantization.
func shapeQ(t builder.Tensor, scale float32, zp int64) builder.Tensor {
	t.Scale, t.ZeroPoint = []float32{scale}, []int64{zp}
	return t
}

func shapeI32(shape []int, v ...int32) builder.Tensor {
	return builder.Tensor{Type: tflite.TensorTypeINT32, Shape: shape, Data: builder.Int32Data(v)}
}

func shapeI64(shape []int, v ...int64) builder.Tensor {
	return builder.Tensor{Type: tflite.TensorTypeINT64, Shape: shape, Data: builder.Int64Data(v)}
}

// shapeModel builds a one-operator model over tensors: the op's inputs
// without data become the model's inputs, in order; its outputs the
// model's outputs.
func shapeModel(tensors []builder.Tensor, code tflite.BuiltinOperator, version int, opts *tflite.BuiltinOptionsT, inputs, outputs []int) *builder.Model {
	m := &builder.Model{Tensors: tensors}
	m.AddOp(builder.Op{Builtin: code, Version: version, Inputs: inputs, Outputs: outputs, Options: opts})
	for _, i := range inputs {
		if i >= 0 && tensors[i].Data == nil && !slices.Contains(m.Inputs, i) {
			m.Inputs = append(m.Inputs, i)
		}
	}
	m.Outputs = outputs
	return m
}

// shapeRun prepares and invokes m once, returning the outputs' bytes and
// shapes.
func shapeRun(t *testing.T, m *builder.Model, inputs ...[]byte) ([][]byte, [][]int) {
	t.Helper()
	it, err := runtime.NewInterpreter(buildModel(t, m), nil)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	outs := invoke(t, it, inputs...)
	shapes := make([][]int, len(it.Outputs()))
	for i, o := range it.Outputs() {
		shapes[i] = append([]int{}, o.Shape...)
	}
	return outs, shapes
}

// shapeCheck runs m and compares output 0 with want (bytes and shape).
func shapeCheck(t *testing.T, m *builder.Model, wantShape []int, want []byte, inputs ...[]byte) {
	t.Helper()
	outs, shapes := shapeRun(t, m, inputs...)
	if !slices.Equal(shapes[0], wantShape) {
		t.Fatalf("output shape %v, want %v", shapes[0], wantShape)
	}
	if !bytes.Equal(outs[0], want) {
		t.Fatalf("output\n got %v\nwant %v", outs[0], want)
	}
}

// shapePrepareErr checks that m fails to prepare with an error mentioning
// each of the substrings.
func shapePrepareErr(t *testing.T, m *builder.Model, substr ...string) {
	t.Helper()
	err := prepareError(t, m)
	if err == nil {
		t.Fatalf("prepared without error, want an error mentioning %q", substr)
	}
	for _, s := range substr {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("error %q does not mention %q", err, s)
		}
	}
}

// shapeEvalErr checks that m prepares but its invocation with the inputs
// fails with an error mentioning substr.
func shapeEvalErr(t *testing.T, m *builder.Model, substr string, inputs ...[]byte) {
	t.Helper()
	it, err := runtime.NewInterpreter(buildModel(t, m), nil)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	for i, in := range inputs {
		if err := it.Inputs()[i].CopyFrom(in); err != nil {
			t.Fatal(err)
		}
	}
	err = it.Invoke()
	if err == nil {
		t.Fatalf("invoked without error, want an error mentioning %q", substr)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Fatalf("error %q does not mention %q", err, substr)
	}
}

// shapeNoAllocs checks that invoking m (after a warm-up invocation)
// allocates nothing.
func shapeNoAllocs(t *testing.T, m *builder.Model, inputs ...[]byte) {
	t.Helper()
	it, err := runtime.NewInterpreter(buildModel(t, m), nil)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	invoke(t, it, inputs...)
	var invokeErr error
	allocs := testing.AllocsPerRun(20, func() {
		if err := it.Invoke(); err != nil {
			invokeErr = err
		}
	})
	if invokeErr != nil {
		t.Fatal(invokeErr)
	}
	if allocs != 0 {
		t.Fatalf("Invoke allocates %v times per run, want 0", allocs)
	}
}

func squeezeOpts(dims ...int32) *tflite.BuiltinOptionsT {
	return &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsSqueezeOptions, Value: &tflite.SqueezeOptionsT{SqueezeDims: dims}}
}

func TestSqueeze(t *testing.T) {
	cases := []struct {
		in   []int
		dims []int32
		want []int
	}{
		{[]int{1, 3, 1, 2}, nil, []int{3, 2}},
		{[]int{1, 3, 1, 2}, []int32{-2}, []int{1, 3, 2}},
		{[]int{1, 3, 1, 2}, []int32{0, 2}, []int{3, 2}},
		{[]int{1, 1}, nil, []int{}},
		{[]int{2, 3}, nil, []int{2, 3}},
	}
	for _, e := range shapeElems {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/%v/%v", e.name, tc.in, tc.dims), func(t *testing.T) {
				data := e.data(shapeIota(shapeCount(tc.in)))
				m := shapeModel([]builder.Tensor{shapeAct(e.tt, tc.in...), shapeOut(e.tt)},
					tflite.BuiltinOperatorSQUEEZE, 1, squeezeOpts(tc.dims...), []int{0}, []int{1})
				shapeCheck(t, m, tc.want, data, data)
			})
		}
	}
	t.Run("errors", func(t *testing.T) {
		f := tflite.TensorTypeFLOAT32
		for _, tc := range []struct {
			name string
			in   []int
			dims []int32
			want string
		}{
			{"not size 1", []int{1, 3}, []int32{1}, "not 1"},
			{"out of range", []int{1, 3}, []int32{2}, "out of range"},
			{"negative out of range", []int{1, 3}, []int32{-3}, "out of range"},
			{"rank 9", []int{1, 1, 1, 1, 1, 1, 1, 1, 1}, nil, "rank 9"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m := shapeModel([]builder.Tensor{shapeAct(f, tc.in...), shapeOut(f)},
					tflite.BuiltinOperatorSQUEEZE, 1, squeezeOpts(tc.dims...), []int{0}, []int{1})
				shapePrepareErr(t, m, tc.want)
			})
		}
		m := shapeModel([]builder.Tensor{shapeAct(f, 1, 3), shapeAct(tflite.TensorTypeINT8, 3)},
			tflite.BuiltinOperatorSQUEEZE, 1, nil, []int{0}, []int{1})
		shapePrepareErr(t, m, "must match")
	})
}

func TestExpandDims(t *testing.T) {
	cases := []struct {
		axis int32
		want []int
	}{
		{0, []int{1, 3, 2}}, {1, []int{3, 1, 2}}, {2, []int{3, 2, 1}},
		{-1, []int{3, 2, 1}}, {-3, []int{1, 3, 2}},
	}
	for _, e := range shapeElems {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/axis%d", e.name, tc.axis), func(t *testing.T) {
				data := e.data(shapeIota(6))
				m := shapeModel([]builder.Tensor{shapeAct(e.tt, 3, 2), shapeI32(nil, tc.axis), shapeOut(e.tt)},
					tflite.BuiltinOperatorEXPAND_DIMS, 1, nil, []int{0, 1}, []int{2})
				shapeCheck(t, m, tc.want, data, data)
			})
		}
	}
	t.Run("int64 axis", func(t *testing.T) {
		f := tflite.TensorTypeFLOAT32
		data := shapeElems[5].data(shapeIota(6))
		m := shapeModel([]builder.Tensor{shapeAct(f, 3, 2), shapeI64([]int{1}, -2), shapeOut(f)},
			tflite.BuiltinOperatorEXPAND_DIMS, 1, nil, []int{0, 1}, []int{2})
		shapeCheck(t, m, []int{3, 1, 2}, data, data)
	})
	t.Run("errors", func(t *testing.T) {
		f := tflite.TensorTypeFLOAT32
		for _, tc := range []struct {
			name string
			axis builder.Tensor
			want string
		}{
			{"axis too large", shapeI32(nil, 3), "out of range"},
			{"axis too small", shapeI32(nil, -4), "out of range"},
			{"two values", shapeI32([]int{2}, 0, 1), "exactly one value"},
			{"float axis", builder.Tensor{Type: f, Data: builder.Float32Data([]float32{0})}, "int32 or int64"},
			{"non-constant axis", shapeAct(tflite.TensorTypeINT32), "constant"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m := shapeModel([]builder.Tensor{shapeAct(f, 3, 2), tc.axis, shapeOut(f)},
					tflite.BuiltinOperatorEXPAND_DIMS, 1, nil, []int{0, 1}, []int{2})
				shapePrepareErr(t, m, tc.want)
			})
		}
	})
}

func TestShapeOpsNoAllocs(t *testing.T) {
	f := tflite.TensorTypeFLOAT32
	t.Run("squeeze", func(t *testing.T) {
		m := shapeModel([]builder.Tensor{shapeAct(f, 1, 3), shapeOut(f)},
			tflite.BuiltinOperatorSQUEEZE, 1, nil, []int{0}, []int{1})
		shapeNoAllocs(t, m, make([]byte, 12))
	})
	t.Run("expand_dims", func(t *testing.T) {
		m := shapeModel([]builder.Tensor{shapeAct(f, 3), shapeI32(nil, 0), shapeOut(f)},
			tflite.BuiltinOperatorEXPAND_DIMS, 1, nil, []int{0, 1}, []int{2})
		shapeNoAllocs(t, m, make([]byte, 12))
	})
}
