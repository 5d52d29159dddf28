package runtime_test

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

func TestDepthwiseConv2D(t *testing.T) {
	same, valid := tflite.PaddingSAME, tflite.PaddingVALID
	relu, relu6, n1 := tflite.ActivationFunctionTypeRELU, tflite.ActivationFunctionTypeRELU6, tflite.ActivationFunctionTypeRELU_N1_TO_1
	var cases []convCase
	for _, typ := range []runtime.DType{runtime.Int8, runtime.Uint8, runtime.Int16, runtime.Float32} {
		base := []convCase{
			{name: "3x3_same", in: []int{1, 7, 6, 4}, filter: []int{1, 3, 3, 4}, padding: same},
			{name: "3x3_valid_batches", in: []int{2, 7, 6, 3}, filter: []int{1, 3, 3, 3}, padding: valid},
			{name: "multiplier_2", in: []int{1, 6, 5, 3}, filter: []int{1, 3, 3, 6}, padding: same},
			{name: "multiplier_4_unit_depth", in: []int{1, 6, 6, 1}, filter: []int{1, 3, 2, 4}, padding: same},
			{name: "stride2_same_odd_padding", in: []int{1, 8, 9, 4}, filter: []int{1, 3, 2, 4}, stride: [2]int{2, 3}, padding: same},
			{name: "stride2_valid", in: []int{1, 9, 9, 2}, filter: []int{1, 3, 3, 2}, stride: [2]int{2, 2}, padding: valid},
			{name: "dilation_same", in: []int{1, 9, 8, 3}, filter: []int{1, 3, 3, 3}, dilation: [2]int{2, 3}, padding: same},
			{name: "dilation_valid_multiplier", in: []int{1, 11, 10, 2}, filter: []int{1, 2, 3, 4}, dilation: [2]int{3, 2}, stride: [2]int{2, 1}, padding: valid},
			{name: "micro_speech_like", in: []int{1, 49, 40, 1}, filter: []int{1, 10, 8, 8}, stride: [2]int{2, 2}, padding: same, act: relu},
			{name: "relu", in: []int{1, 5, 5, 4}, filter: []int{1, 3, 3, 4}, padding: same, act: relu},
			{name: "relu6", in: []int{1, 5, 5, 4}, filter: []int{1, 3, 3, 8}, padding: same, act: relu6},
			{name: "relu_n1_to_1", in: []int{1, 5, 5, 4}, filter: []int{1, 3, 3, 4}, padding: same, act: n1},
			{name: "no_bias", in: []int{1, 5, 4, 3}, filter: []int{1, 3, 3, 3}, padding: same, noBias: true},
			{name: "omitted_bias", in: []int{1, 5, 4, 3}, filter: []int{1, 3, 3, 6}, padding: same, omitBias: true},
			{name: "per_tensor", in: []int{1, 5, 4, 3}, filter: []int{1, 3, 3, 3}, padding: same, perTensor: true},
		}
		for i, c := range base {
			c.depthwise, c.typ, c.seed = true, typ, int64(200+i)
			c.name = typ.String() + "/" + c.name
			if typ == runtime.Uint8 && c.perTensor {
				continue
			}
			if typ == runtime.Int16 && c.act == n1 {
				c.act = relu6
			}
			cases = append(cases, c)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runConvCase(t, c) })
	}
}

func TestDepthwiseConv2DProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	types := []runtime.DType{runtime.Int8, runtime.Uint8, runtime.Int16, runtime.Float32}
	for i := range 60 {
		typ := types[i%len(types)]
		inD, mult := 1+rng.Intn(5), 1+rng.Intn(3)
		c := convCase{
			depthwise: true,
			typ:       typ,
			in:        []int{1 + rng.Intn(2), 1 + rng.Intn(9), 1 + rng.Intn(9), inD},
			filter:    []int{1, 1 + rng.Intn(4), 1 + rng.Intn(4), inD * mult},
			stride:    [2]int{1 + rng.Intn(3), 1 + rng.Intn(3)},
			dilation:  [2]int{1 + rng.Intn(2), 1 + rng.Intn(2)},
			padding:   tflite.Padding(rng.Intn(2)),
			noBias:    rng.Intn(4) == 0,
			seed:      int64(300 + i),
		}
		if c.padding == tflite.PaddingVALID {
			for d := 1; d <= 2; d++ {
				if eff := (c.filter[d]-1)*c.dilation[d-1] + 1; eff > c.in[d] {
					c.in[d] = eff + rng.Intn(3)
				}
			}
		}
		c.name = fmt.Sprintf("%d_%s_in%v_f%v_s%v_d%v_%s", i, typ, c.in, c.filter, c.stride, c.dilation, c.padding)
		t.Run(c.name, func(t *testing.T) {
			b := c.build()
			out := runModel(t, b.model, b.input)
			// Tiny outputs may all clamp; check the tolerance only.
			b.want.checkTolerance(t, c.typ, out[0])
		})
	}
}

// TestDepthwiseConv2DExact: requantization factor exactly 1/4 (see
// TestConv2DExact), depth multiplier 2 over two input channels.
func TestDepthwiseConv2DExact(t *testing.T) {
	// Input 1×2×2×2 (pixels p0..p3, channels c0, c1); filter 1×1×1×4:
	// outputs 0,1 read c0 with weights 1 and -1; outputs 2,3 read c1 with
	// weights 3 and 20.
	x := []int8{
		2, 2, // p0
		-6, -2, // p1
		10, 30, // p2
		-10, -30, // p3
	}
	m := convExactModel(tflite.TensorTypeINT8, tflite.BuiltinOperatorDEPTHWISE_CONV_2D, []int{1, 2, 2, 2}, []int{1, 1, 1, 4},
		builder.Int8Data([]int8{1, -1, 3, 20}), 0.25, 0, 0, 0, tflite.ActivationFunctionTypeNONE, []int{1, 2, 2, 4})
	got := int8s(runModel(t, m, builder.Int8Data(x))[0])
	want := []int8{
		1, -1, 2, 10, // 0.5, -0.5, 1.5, 10
		-2, 2, -2, -10, // -1.5, 1.5, -1.5, -10
		3, -3, 23, 127, // 2.5, -2.5, 22.5, 150
		-3, 3, -23, -128, // -2.5, 2.5, -22.5, -150
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func depthwiseOpts(m *builder.Model) *tflite.DepthwiseConv2DOptionsT {
	return m.Ops[0].Options.Value.(*tflite.DepthwiseConv2DOptionsT)
}

func TestDepthwiseConv2DErrors(t *testing.T) {
	cases := append(convCommonErrors(),
		modelMutation{"filter_rank_3", func(m *builder.Model) { m.Tensors[1].Shape = []int{3, 3, 8}; m.Tensors[1].QuantizedDimension = 2 }, "shape [1, height, width, channels]"},
		modelMutation{"filter_batch_2", func(m *builder.Model) {
			f := &m.Tensors[1]
			f.Shape, f.Scale, f.ZeroPoint = []int{2, 3, 3, 4}, f.Scale[:4], f.ZeroPoint[:4]
		}, "shape [1, height, width, channels]"},
		modelMutation{"depth_multiplier_option", func(m *builder.Model) { depthwiseOpts(m).DepthMultiplier = 3 }, "depth multiplier"},
		modelMutation{"channels_not_multiple", func(m *builder.Model) { m.Tensors[0].Shape = []int{1, 5, 5, 3} }, "not a multiple"},
		modelMutation{"stride_zero", func(m *builder.Model) { depthwiseOpts(m).StrideH = 0 }, "stride"},
		modelMutation{"dilation_zero", func(m *builder.Model) { depthwiseOpts(m).DilationWFactor = 0 }, "dilation"},
		modelMutation{"valid_filter_too_large", func(m *builder.Model) {
			depthwiseOpts(m).Padding = tflite.PaddingVALID
			depthwiseOpts(m).DilationWFactor = 3
		}, "does not fit"},
		modelMutation{"per_channel_wrong_dimension", func(m *builder.Model) {
			f := &m.Tensors[1]
			f.Scale, f.ZeroPoint, f.QuantizedDimension = f.Scale[:3], f.ZeroPoint[:3], 1
		}, "dimension 1"},
		modelMutation{"int16_int32_bias", func(m *builder.Model) {
			for _, i := range []int{0, 3} {
				m.Tensors[i].Type = tflite.TensorTypeINT16
				m.Tensors[i].ZeroPoint[0] = 0
			}
		}, "unsupported tensor type"},
		modelMutation{"int16_multiplier_too_large", func(m *builder.Model) {
			for _, i := range []int{0, 3} {
				m.Tensors[i].Type = tflite.TensorTypeINT16
				m.Tensors[i].ZeroPoint[0] = 0
			}
			m.Tensors[3].Scale[0] = 1e-9
			b := &m.Tensors[2]
			b.Type, b.Data = tflite.TensorTypeINT64, make([]byte, 2*len(b.Data))
		}, "too large"},
	)
	runPrepareErrors(t, depthwiseBaseModel, cases)
}
