package runtime_test

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

type poolCase struct {
	name    string
	max     bool
	typ     runtime.DType
	in      []int  // NHWC
	filter  [2]int // height, width
	stride  [2]int
	padding tflite.Padding
	act     tflite.ActivationFunctionType
	seed    int64
}

// poolModel builds a one-op pooling model; the input and output share
// scale and zero point.
func poolModel(c poolCase, scale float32, zp int64, outShape []int) *builder.Model {
	m := &builder.Model{}
	tt := tensorType(c.typ)
	inT := builder.Tensor{Name: "input", Type: tt, Shape: c.in}
	outT := builder.Tensor{Name: "output", Type: tt, Shape: outShape}
	if c.typ != runtime.Float32 {
		inT.Scale, inT.ZeroPoint = []float32{scale}, []int64{zp}
		outT.Scale, outT.ZeroPoint = []float32{scale}, []int64{zp}
	}
	in := m.AddTensor(inT)
	out := m.AddTensor(outT)
	op := tflite.BuiltinOperatorAVERAGE_POOL_2D
	if c.max {
		op = tflite.BuiltinOperatorMAX_POOL_2D
	}
	m.AddOp(builder.Op{Builtin: op, Inputs: []int{in}, Outputs: []int{out}, Options: &tflite.BuiltinOptionsT{
		Type: tflite.BuiltinOptionsPool2DOptions, Value: &tflite.Pool2DOptionsT{
			Padding: c.padding, StrideH: int32(c.stride[0]), StrideW: int32(c.stride[1]),
			FilterHeight: int32(c.filter[0]), FilterWidth: int32(c.filter[1]), FusedActivationFunction: c.act,
		}}})
	m.Inputs, m.Outputs = []int{in}, []int{out}
	return m
}

// runPoolCase runs a pooling case on random input against the oracle: the
// windows' in-input elements, averaged (rounded half away from zero for
// integer types, which is exact) or maximized, then clamped.
func runPoolCase(t *testing.T, c poolCase) {
	t.Helper()
	rng := rand.New(rand.NewSource(c.seed + 1))
	batches, inH, inW, depth := c.in[0], c.in[1], c.in[2], c.in[3]
	outH, padH := convOutSize(c.padding, inH, c.filter[0], c.stride[0], 1)
	outW, padW := convOutSize(c.padding, inW, c.filter[1], c.stride[1], 1)
	outShape := []int{batches, outH, outW, depth}

	n := batches * inH * inW * depth
	vals := make([]float64, n)
	var input []byte
	scale, zp := float32(0.1), int64(0)
	quant := c.typ != runtime.Float32
	if quant {
		lo, hi := dtypeRange(c.typ)
		ints := make([]int64, n)
		for i := range ints {
			ints[i] = lo + rng.Int63n(hi-lo+1)
			vals[i] = float64(ints[i])
		}
		switch c.typ {
		case runtime.Int8:
			zp = int64(rng.Intn(41) - 20)
		case runtime.Uint8:
			zp = int64(100 + rng.Intn(51))
		}
		input = encodeInts(c.typ, ints)
	} else {
		f := make([]float32, n)
		for i := range f {
			f[i] = float32(rng.Float64()*20 - 10)
			vals[i] = float64(f[i])
		}
		input = builder.Float32Data(f)
	}
	var lo, hi float64
	if quant {
		lo, hi = activationSteps(c.act, c.typ, float64(scale), zp)
	} else {
		lo, hi = activationReal(c.act)
	}

	got := decodeValues(c.typ, runModel(t, poolModel(c, scale, zp, outShape), input)[0])
	if len(got) != batches*outH*outW*depth {
		t.Fatalf("%d outputs, want %d", len(got), batches*outH*outW*depth)
	}
	for b := range batches {
		for oy := range outH {
			for ox := range outW {
				for ch := range depth {
					var sum float64
					count := 0
					m := math.Inf(-1)
					for fy := range c.filter[0] {
						for fx := range c.filter[1] {
							y, x := oy*c.stride[0]-padH+fy, ox*c.stride[1]-padW+fx
							if y < 0 || y >= inH || x < 0 || x >= inW {
								continue
							}
							v := vals[((b*inH+y)*inW+x)*depth+ch]
							sum += v
							count++
							m = math.Max(m, v)
						}
					}
					want, tol := m, 0.0
					if !c.max {
						want = sum / float64(count)
						if quant {
							want = math.Round(want)
						} else {
							tol = 1e-5 * (1 + math.Abs(want))
						}
					}
					want = math.Min(math.Max(want, lo), hi)
					o := ((b*outH+oy)*outW+ox)*depth + ch
					if math.Abs(got[o]-want) > tol {
						t.Fatalf("output %d (b %d, y %d, x %d, c %d; window of %d): got %v, want %v", o, b, oy, ox, ch, count, got[o], want)
					}
				}
			}
		}
	}
}

func TestPooling(t *testing.T) {
	same, valid := tflite.PaddingSAME, tflite.PaddingVALID
	relu, relu6, n1 := tflite.ActivationFunctionTypeRELU, tflite.ActivationFunctionTypeRELU6, tflite.ActivationFunctionTypeRELU_N1_TO_1
	base := []poolCase{
		{name: "2x2_s2_valid", in: []int{1, 8, 8, 3}, filter: [2]int{2, 2}, stride: [2]int{2, 2}, padding: valid},
		{name: "2x2_s2_same_odd", in: []int{2, 7, 5, 2}, filter: [2]int{2, 2}, stride: [2]int{2, 2}, padding: same},
		{name: "3x3_s1_same_edges", in: []int{1, 5, 6, 4}, filter: [2]int{3, 3}, stride: [2]int{1, 1}, padding: same},
		{name: "3x2_s2x1_same", in: []int{1, 7, 6, 2}, filter: [2]int{3, 2}, stride: [2]int{2, 1}, padding: same},
		{name: "global", in: []int{1, 6, 6, 8}, filter: [2]int{6, 6}, stride: [2]int{2, 2}, padding: valid},
		{name: "window_larger_than_input_same", in: []int{1, 3, 2, 3}, filter: [2]int{5, 5}, stride: [2]int{1, 1}, padding: same},
		{name: "relu", in: []int{1, 6, 6, 3}, filter: [2]int{2, 2}, stride: [2]int{1, 1}, padding: same, act: relu},
		{name: "relu6", in: []int{1, 6, 6, 3}, filter: [2]int{2, 2}, stride: [2]int{1, 1}, padding: same, act: relu6},
		{name: "relu_n1_to_1", in: []int{1, 6, 6, 3}, filter: [2]int{2, 2}, stride: [2]int{1, 1}, padding: same, act: n1},
	}
	for _, max := range []bool{false, true} {
		for _, typ := range []runtime.DType{runtime.Int8, runtime.Uint8, runtime.Int16, runtime.Float32} {
			for i, c := range base {
				c.max, c.typ, c.seed = max, typ, int64(i)
				kind := "average"
				if max {
					kind = "max"
				}
				c.name = fmt.Sprintf("%s/%s/%s", kind, typ, c.name)
				t.Run(c.name, func(t *testing.T) { runPoolCase(t, c) })
			}
		}
	}
}

func TestPoolingProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	types := []runtime.DType{runtime.Int8, runtime.Uint8, runtime.Int16, runtime.Float32}
	for i := range 80 {
		c := poolCase{
			max:     i%2 == 1,
			typ:     types[(i/2)%len(types)],
			in:      []int{1 + rng.Intn(2), 1 + rng.Intn(9), 1 + rng.Intn(9), 1 + rng.Intn(4)},
			filter:  [2]int{1 + rng.Intn(4), 1 + rng.Intn(4)},
			stride:  [2]int{1 + rng.Intn(3), 1 + rng.Intn(3)},
			padding: tflite.Padding(rng.Intn(2)),
			seed:    int64(500 + i),
		}
		if c.padding == tflite.PaddingVALID {
			c.in[1], c.in[2] = max(c.in[1], c.filter[0]), max(c.in[2], c.filter[1])
		}
		c.name = fmt.Sprintf("%d_max%v_%s_in%v_f%v_s%v_%s", i, c.max, c.typ, c.in, c.filter, c.stride, c.padding)
		t.Run(c.name, func(t *testing.T) { runPoolCase(t, c) })
	}
}

// TestAveragePoolExact checks hand-derived averages: rounding half away
// from zero, and windows clipped by SAME padding counting only the input
// positions they cover.
func TestAveragePoolExact(t *testing.T) {
	// 3×3 input, 2×2 window, stride 2, SAME: total padding 1, all after, so
	// the windows hold 4, 2, 2 and 1 elements.
	c := poolCase{typ: runtime.Int8, in: []int{1, 3, 3, 1}, filter: [2]int{2, 2}, stride: [2]int{2, 2}, padding: tflite.PaddingSAME}
	for _, tc := range []struct {
		in   []int8
		want []int8
	}{
		{[]int8{1, 2, 3, 4, 5, 6, 7, 8, 9}, []int8{3, 5, 8, 9}},              // 3, 4.5, 7.5, 9
		{[]int8{-1, -2, -3, -4, -5, -6, -7, -8, -9}, []int8{-3, -5, -8, -9}}, // half away from zero
		{[]int8{1, 0, 0, 0, 0, 0, 0, 0, 0}, []int8{0, 0, 0, 0}},              // 0.25
		{[]int8{1, 1, 0, 0, 0, 0, 0, 0, 0}, []int8{1, 0, 0, 0}},              // 0.5
		{[]int8{-1, -1, 0, 0, 0, 0, 0, 0, 0}, []int8{-1, 0, 0, 0}},           // -0.5
		{[]int8{-3, -3, 0, 0, 0, 0, 0, 0, 0}, []int8{-2, 0, 0, 0}},           // -1.5
		{[]int8{127, 127, 0, 127, 127, 0, 0, 0, 0}, []int8{127, 0, 0, 0}},    // no overflow
	} {
		got := int8s(runModel(t, poolModel(c, 1, 0, []int{1, 2, 2, 1}), builder.Int8Data(tc.in))[0])
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("input %v: got %v, want %v", tc.in, got, tc.want)
		}
	}
	// uint8 (sums never negative) rounds half up. 3×3 window, stride 1,
	// SAME over 3×3: corner windows hold 4 elements, edge windows 6, the
	// centre 9.
	c = poolCase{typ: runtime.Uint8, in: []int{1, 3, 3, 1}, filter: [2]int{3, 3}, stride: [2]int{1, 1}, padding: tflite.PaddingSAME}
	got := runModel(t, poolModel(c, 1, 0, []int{1, 3, 3, 1}), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9})[0]
	exp := []byte{
		3, 4, 4, // (1+2+4+5)/4=3, (1+2+3+4+5+6)/6=3.5→4, (2+3+5+6)/4=4
		5, 5, 6, // (1+2+4+5+7+8)/6=4.5→5, 45/9=5, (2+3+5+6+8+9)/6=5.5→6
		6, 7, 7, // (4+5+7+8)/4=6, (4+5+6+7+8+9)/6=6.5→7, (5+6+8+9)/4=7
	}
	if fmt.Sprint(got) != fmt.Sprint(exp) {
		t.Errorf("uint8: got %v, want %v", got, exp)
	}
}

func poolOpts(m *builder.Model) *tflite.Pool2DOptionsT {
	return m.Ops[0].Options.Value.(*tflite.Pool2DOptionsT)
}

func TestPoolingErrors(t *testing.T) {
	base := func() *builder.Model {
		c := poolCase{typ: runtime.Int8, in: []int{1, 4, 4, 2}, filter: [2]int{2, 2}, stride: [2]int{2, 2}, padding: tflite.PaddingVALID}
		return poolModel(c, 0.1, 3, []int{1, 2, 2, 2})
	}
	cases := []modelMutation{
		{"input_rank_3", func(m *builder.Model) { m.Tensors[0].Shape = []int{4, 4, 2} }, "rank 4"},
		{"output_type", func(m *builder.Model) { m.Tensors[1].Type = tflite.TensorTypeUINT8 }, "unsupported tensor type"},
		{"int32", func(m *builder.Model) {
			m.Tensors[0].Type, m.Tensors[1].Type = tflite.TensorTypeINT32, tflite.TensorTypeINT32
		}, "unsupported tensor type"},
		{"input_not_quantized", func(m *builder.Model) { m.Tensors[0].Scale, m.Tensors[0].ZeroPoint = nil, nil }, "no quantization"},
		{"output_scale", func(m *builder.Model) { m.Tensors[1].Scale[0] = 0.2 }, "share quantization"},
		{"output_zero_point", func(m *builder.Model) { m.Tensors[1].ZeroPoint[0] = 4 }, "share quantization"},
		{"stride_zero", func(m *builder.Model) { poolOpts(m).StrideW = 0 }, "stride"},
		{"filter_zero", func(m *builder.Model) { poolOpts(m).FilterHeight = 0 }, "filter"},
		{"unknown_padding", func(m *builder.Model) { poolOpts(m).Padding = 2 }, "padding"},
		{"valid_window_too_large", func(m *builder.Model) { poolOpts(m).FilterWidth = 5 }, "does not fit"},
		{"bad_activation", func(m *builder.Model) { poolOpts(m).FusedActivationFunction = tflite.ActivationFunctionTypeSIGN_BIT }, "activation"},
		{"declared_output_shape", func(m *builder.Model) { m.Tensors[1].Shape = []int{1, 3, 2, 2} }, "computed output shape"},
		{"two_inputs", func(m *builder.Model) { m.Ops[0].Inputs = []int{0, 0} }, "inputs"},
		{"wrong_options", func(m *builder.Model) {
			m.Ops[0].Options = &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsConv2DOptions, Value: &tflite.Conv2DOptionsT{}}
		}, "options"},
	}
	runPrepareErrors(t, base, cases)
	runPrepareErrors(t, func() *builder.Model {
		m := base()
		m.Ops[0].Builtin = tflite.BuiltinOperatorMAX_POOL_2D
		return m
	}, cases)
}

func TestPoolingZeroAllocs(t *testing.T) {
	for _, max := range []bool{false, true} {
		for _, typ := range []runtime.DType{runtime.Int8, runtime.Uint8, runtime.Int16, runtime.Float32} {
			c := poolCase{max: max, typ: typ, in: []int{1, 5, 5, 3}, filter: [2]int{2, 2}, stride: [2]int{2, 2}, padding: tflite.PaddingSAME}
			t.Run(fmt.Sprintf("max%v/%s", max, typ), func(t *testing.T) {
				assertNoAllocs(t, poolModel(c, 0.5, 0, []int{1, 3, 3, 3}), make([]byte, 75*typ.Size()))
			})
		}
	}
}
