package finetune

import (
	"math/rand/v2"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

// Tiny model used by the tests: int8 input [1, T, F, 1] → DEPTHWISE_CONV_2D
// (3×3, multiplier 4, SAME, RELU, per-channel weights) → [1, T, F, 4] →
// FULLY_CONNECTED head → RESHAPE → SOFTMAX, with a metadata entry.
const (
	tinyT, tinyF, tinyC = 6, 4, 4
	tinyDim             = tinyT * tinyF * tinyC
)

var (
	tinyIn    = Quant{0.05, -10}
	tinyEmbed = Quant{0.04, -128}
	tinyLogit = Quant{0.1, 5}
)

// tinyModel builds the model with a head of the given classes, with or
// without bias, seeded random constants.
func tinyModel(t testing.TB, classes int, withBias bool, seed uint64) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	var m builder.Model
	m.Description = "finetune test model"
	m.Metadata = map[string][]byte{"min_runtime_version": []byte("1.5.0")}
	in := m.AddTensor(builder.Tensor{Name: "features", Type: tflite.TensorTypeINT8, Shape: []int{1, tinyT, tinyF, 1},
		Scale: []float32{tinyIn.Scale}, ZeroPoint: []int64{int64(tinyIn.ZeroPoint)}})
	dw := make([]int8, 3*3*tinyC)
	for i := range dw {
		dw[i] = int8(rng.IntN(255) - 127)
	}
	dwScales := []float32{0.01, 0.012, 0.008, 0.011}
	dwW := m.AddTensor(builder.Tensor{Name: "dw/weights", Type: tflite.TensorTypeINT8, Shape: []int{1, 3, 3, tinyC}, Data: builder.Int8Data(dw),
		Scale: dwScales, ZeroPoint: make([]int64, tinyC), QuantizedDimension: 3})
	dwBias := make([]int32, tinyC)
	biasScales := make([]float32, tinyC)
	for c := range dwBias {
		dwBias[c] = int32(rng.IntN(400) - 100)
		biasScales[c] = tinyIn.Scale * dwScales[c]
	}
	dwB := m.AddTensor(builder.Tensor{Name: "dw/bias", Type: tflite.TensorTypeINT32, Shape: []int{tinyC}, Data: builder.Int32Data(dwBias),
		Scale: biasScales, ZeroPoint: make([]int64, tinyC)})
	emb := m.AddTensor(builder.Tensor{Name: "embedding", Type: tflite.TensorTypeINT8, Shape: []int{1, tinyT, tinyF, tinyC},
		Scale: []float32{tinyEmbed.Scale}, ZeroPoint: []int64{int64(tinyEmbed.ZeroPoint)}})
	m.AddOp(builder.Op{Builtin: tflite.BuiltinOperatorDEPTHWISE_CONV_2D, Version: 3, Inputs: []int{in, dwW, dwB}, Outputs: []int{emb},
		Options: &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsDepthwiseConv2DOptions, Value: &tflite.DepthwiseConv2DOptionsT{
			Padding: tflite.PaddingSAME, StrideW: 1, StrideH: 1, DepthMultiplier: tinyC, FusedActivationFunction: tflite.ActivationFunctionTypeRELU,
			DilationWFactor: 1, DilationHFactor: 1}}})
	fcW := make([]int8, classes*tinyDim)
	for i := range fcW {
		fcW[i] = int8(rng.IntN(255) - 127)
	}
	const wScale = 0.002
	w := m.AddTensor(builder.Tensor{Name: "head/weights", Type: tflite.TensorTypeINT8, Shape: []int{classes, tinyDim}, Data: builder.Int8Data(fcW),
		Scale: []float32{wScale}, ZeroPoint: []int64{0}})
	inputs := []int{emb, w}
	if withBias {
		fcB := make([]int32, classes)
		for i := range fcB {
			fcB[i] = int32(rng.IntN(2000) - 1000)
		}
		b := m.AddTensor(builder.Tensor{Name: "head/bias", Type: tflite.TensorTypeINT32, Shape: []int{classes}, Data: builder.Int32Data(fcB),
			Scale: []float32{tinyEmbed.Scale * wScale}, ZeroPoint: []int64{0}})
		inputs = append(inputs, b)
	}
	logits := m.AddTensor(builder.Tensor{Name: "logits", Type: tflite.TensorTypeINT8, Shape: []int{1, classes},
		Scale: []float32{tinyLogit.Scale}, ZeroPoint: []int64{int64(tinyLogit.ZeroPoint)}})
	m.AddOp(builder.Op{Builtin: tflite.BuiltinOperatorFULLY_CONNECTED, Version: 4, Inputs: inputs, Outputs: []int{logits},
		Options: &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsFullyConnectedOptions, Value: &tflite.FullyConnectedOptionsT{}}})
	shape := m.AddTensor(builder.Tensor{Name: "reshape/shape", Type: tflite.TensorTypeINT32, Shape: []int{2}, Data: builder.Int32Data([]int32{1, int32(classes)})})
	reshaped := m.AddTensor(builder.Tensor{Name: "reshaped", Type: tflite.TensorTypeINT8, Shape: []int{1, classes},
		Scale: []float32{tinyLogit.Scale}, ZeroPoint: []int64{int64(tinyLogit.ZeroPoint)}})
	m.AddOp(builder.Op{Builtin: tflite.BuiltinOperatorRESHAPE, Inputs: []int{logits, shape}, Outputs: []int{reshaped},
		Options: &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsReshapeOptions, Value: &tflite.ReshapeOptionsT{NewShape: []int32{1, int32(classes)}}}})
	probs := m.AddTensor(builder.Tensor{Name: "probabilities", Type: tflite.TensorTypeINT8, Shape: []int{1, classes},
		Scale: []float32{1.0 / 256}, ZeroPoint: []int64{-128}})
	m.AddOp(builder.Op{Builtin: tflite.BuiltinOperatorSOFTMAX, Inputs: []int{reshaped}, Outputs: []int{probs},
		Options: &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsSoftmaxOptions, Value: &tflite.SoftmaxOptionsT{Beta: 1}}})
	m.Inputs, m.Outputs = []int{in}, []int{probs}
	raw, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// tinyExamples makes n examples per class: class c is loud in frequency
// band c (of tinyF), at a random time, with noise. Every third example's
// group repeats, so the validation split has groups to work with.
func tinyExamples(classes, n int, seed uint64) []Example {
	rng := rand.New(rand.NewPCG(seed, 2))
	var out []Example
	for c := range classes {
		for i := range n {
			x := make([]int8, tinyT*tinyF)
			for j := range x {
				x[j] = int8(rng.IntN(40) - 60)
			}
			t0 := rng.IntN(tinyT - 2)
			for t := t0; t < t0+3; t++ {
				x[t*tinyF+c%tinyF] = int8(60 + rng.IntN(60))
				if c >= tinyF {
					x[t*tinyF+(c+1)%tinyF] = int8(40 + rng.IntN(60))
				}
			}
			out = append(out, Example{Name: labelName(c) + string(rune('a'+i%26)), Label: labelName(c), Group: string(rune('A' + i/3)), Input: x})
		}
	}
	return out
}

func labelName(c int) string { return string(rune('a'+c)) + "_class" }

func loadTiny(t testing.TB, raw []byte) (*runtime.Model, *Head) {
	t.Helper()
	m, err := runtime.LoadModel(raw)
	if err != nil {
		t.Fatal(err)
	}
	h, err := FindHead(m, raw)
	if err != nil {
		t.Fatal(err)
	}
	return m, h
}
