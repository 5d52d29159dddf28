package runtime_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
	"github.com/edged/edged/internal/testenv"
)

// fcModel is a small int8 model: input [1,4] -> FULLY_CONNECTED (3 units,
// RELU) -> RESHAPE [3] -> SOFTMAX.
func fcModel() *builder.Model {
	m := &builder.Model{Description: "fc test"}
	in := m.AddTensor(builder.Tensor{Name: "input", Type: tflite.TensorTypeINT8, Shape: []int{1, 4}, Scale: []float32{0.05}, ZeroPoint: []int64{-3}})
	w := m.AddTensor(builder.Tensor{Name: "weights", Type: tflite.TensorTypeINT8, Shape: []int{3, 4},
		Data: builder.Int8Data([]int8{1, -2, 3, -4, 50, 60, -70, 80, -127, 127, 0, 9}), Scale: []float32{0.02}, ZeroPoint: []int64{0}})
	b := m.AddTensor(builder.Tensor{Name: "bias", Type: tflite.TensorTypeINT32, Shape: []int{3},
		Data: builder.Int32Data([]int32{100, -200, 300}), Scale: []float32{0.001}, ZeroPoint: []int64{0}})
	fc := m.AddTensor(builder.Tensor{Name: "fc", Type: tflite.TensorTypeINT8, Shape: []int{1, 3}, Scale: []float32{0.1}, ZeroPoint: []int64{-128}})
	shape := m.AddTensor(builder.Tensor{Name: "shape", Type: tflite.TensorTypeINT32, Shape: []int{1}, Data: builder.Int32Data([]int32{-1})})
	flat := m.AddTensor(builder.Tensor{Name: "flat", Type: tflite.TensorTypeINT8, Shape: []int{3}, Scale: []float32{0.1}, ZeroPoint: []int64{-128}})
	out := m.AddTensor(builder.Tensor{Name: "probs", Type: tflite.TensorTypeINT8, Shape: []int{3}, Scale: []float32{1.0 / 256}, ZeroPoint: []int64{-128}})
	m.AddOp(builder.Op{Builtin: tflite.BuiltinOperatorFULLY_CONNECTED, Inputs: []int{in, w, b}, Outputs: []int{fc},
		Options: &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsFullyConnectedOptions, Value: &tflite.FullyConnectedOptionsT{FusedActivationFunction: tflite.ActivationFunctionTypeRELU}}})
	m.AddOp(builder.Op{Builtin: tflite.BuiltinOperatorRESHAPE, Inputs: []int{fc, shape}, Outputs: []int{flat}})
	m.AddOp(builder.Op{Builtin: tflite.BuiltinOperatorSOFTMAX, Inputs: []int{flat}, Outputs: []int{out},
		Options: &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsSoftmaxOptions, Value: &tflite.SoftmaxOptionsT{Beta: 1}}})
	m.Inputs, m.Outputs = []int{in}, []int{out}
	return m
}

func mustBytes(t testing.TB, m *builder.Model) []byte {
	t.Helper()
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuilderModelRoundTrip(t *testing.T) {
	m := fcModel()
	m.Metadata = map[string][]byte{"min_runtime_version": []byte("1.5.0")}
	model, err := runtime.LoadModel(mustBytes(t, m))
	if err != nil {
		t.Fatal(err)
	}
	g := model.Subgraphs[0]
	if model.Description != "fc test" || len(g.Tensors) != 7 || len(g.Operators) != 3 {
		t.Fatalf("model %q: %d tensors, %d operators", model.Description, len(g.Tensors), len(g.Operators))
	}
	w := g.Tensors[1]
	if w.Name != "weights" || w.Type != runtime.Int8 || !runtime.SameShape(w.Shape, []int{3, 4}) || w.Quant.Scale[0] != 0.02 || int8(w.Data[1]) != -2 {
		t.Errorf("weights read back as %+v", w)
	}
	if op := g.Operators[0]; op.Code.Name() != "FULLY_CONNECTED" || op.Code.Version != 1 || len(op.Inputs) != 3 {
		t.Errorf("operator 0 read back as %+v", op)
	}
	if len(model.Metadata) != 1 || model.Metadata[0].Name != "min_runtime_version" || string(model.Metadata[0].Data) != "1.5.0" {
		t.Errorf("metadata read back as %+v", model.Metadata)
	}
}

func TestExternalBuffersMatchInline(t *testing.T) {
	m := fcModel()
	inline := runModel(t, m, []byte{10, 20, 236, 5})
	m.ExternalBuffers = true
	b := mustBytes(t, m)
	model, err := runtime.LoadModel(b)
	if err != nil {
		t.Fatal(err)
	}
	if model.Subgraphs[0].Tensors[1].Data == nil {
		t.Fatal("external weights not found")
	}
	external := runModel(t, m, []byte{10, 20, 236, 5})
	if !bytes.Equal(inline[0], external[0]) {
		t.Errorf("external buffers give %v, inline %v", external[0], inline[0])
	}
	// A buffer pointing past the end of the file is an error.
	if _, err := runtime.LoadModel(b[:len(b)-13]); err == nil || !strings.Contains(err.Error(), "past the end of the file") {
		t.Errorf("truncated external data: got %v", err)
	}
}

// TestMalformedModels checks each validation names the problem.
func TestMalformedModels(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(m *builder.Model)
		want   string
	}{
		{"operator input out of range", func(m *builder.Model) { m.Ops[0].Inputs[0] = 99 }, "tensor index 99 out of range"},
		{"operator output out of range", func(m *builder.Model) { m.Ops[2].Outputs[0] = -5 }, "tensor index -5 out of range"},
		{"subgraph input out of range", func(m *builder.Model) { m.Inputs = []int{7} }, "tensor index 7 out of range"},
		{"scale/zero point count", func(m *builder.Model) { m.Tensors[0].ZeroPoint = []int64{1, 2} }, "1 scales and 2 zero points"},
		{"per-channel dimension", func(m *builder.Model) {
			m.Tensors[1].Scale = []float32{1, 2, 3}
			m.Tensors[1].ZeroPoint = []int64{0, 0, 0}
			m.Tensors[1].QuantizedDimension = 1
		}, "dimension 1 (quantized_dimension) has 4 entries"},
		{"quantized dimension out of range", func(m *builder.Model) {
			m.Tensors[1].Scale = []float32{1, 2, 3}
			m.Tensors[1].ZeroPoint = []int64{0, 0, 0}
			m.Tensors[1].QuantizedDimension = 5
		}, "quantized_dimension 5 out of range"},
		{"buffer size vs shape", func(m *builder.Model) { m.Tensors[1].Shape = []int{3, 5}; m.SkipChecks = true }, "buffer 1 holds 12 bytes, but shape [3,5] of int8 needs 15"},
		{"negative dimension", func(m *builder.Model) { m.Tensors[3].Shape = []int{1, -3} }, "dimension 1 is -3"},
		{"rank", func(m *builder.Model) { m.Tensors[3].Shape = make([]int, 17) }, "rank 17 exceeds"},
		{"hostile size", func(m *builder.Model) { m.Tensors[3].Shape = []int{1 << 30, 1 << 30, 1 << 30} }, "larger than"},
		{"read before written", func(m *builder.Model) { m.Ops[0], m.Ops[1] = m.Ops[1], m.Ops[0] }, "before operator 1 writes it"},
		{"dangling input", func(m *builder.Model) {
			m.Ops[1].Inputs[0] = m.AddTensor(builder.Tensor{Name: "orphan", Type: tflite.TensorTypeINT8, Shape: []int{1, 3}})
		}, "not a constant, a variable, a subgraph input"},
		{"two writers", func(m *builder.Model) { m.Ops[1].Outputs[0] = 3 }, "written by operators 0 and 1"},
		{"writes a constant", func(m *builder.Model) { m.Ops[2].Outputs[0] = 1 }, "writes constant tensor 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := fcModel()
			c.mutate(m)
			_, err := runtime.LoadModel(mustBytes(t, m))
			var me *runtime.ModelError
			if err == nil || !errors.As(err, &me) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a ModelError containing %q", err, c.want)
			}
		})
	}
}

func TestNotAModel(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":          nil,
		"short":          []byte("TFL3"),
		"wrong id":       append([]byte{8, 0, 0, 0}, []byte("ONNX....")...),
		"offset too far": append([]byte{0xff, 0xff, 0, 0}, []byte("TFL3")...),
	} {
		if _, err := runtime.LoadModel(b); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestPrepareErrorsNameTheOperator(t *testing.T) {
	t.Run("unsupported op", func(t *testing.T) {
		m := fcModel()
		m.Ops[2].Builtin = tflite.BuiltinOperatorLSH_PROJECTION
		m.Ops[2].Options = nil
		err := prepareError(t, m)
		if err == nil || !strings.Contains(err.Error(), "operator 2 LSH_PROJECTION v1 (inputs int8[3]; outputs int8[3]): operator LSH_PROJECTION is not supported") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("custom op", func(t *testing.T) {
		m := fcModel()
		m.Ops[2] = builder.Op{Builtin: tflite.BuiltinOperatorCUSTOM, Custom: "MyOp", Inputs: m.Ops[2].Inputs, Outputs: m.Ops[2].Outputs}
		if err := prepareError(t, m); err == nil || !strings.Contains(err.Error(), `custom operator "MyOp" is not supported`) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("version too new", func(t *testing.T) {
		m := fcModel()
		m.Ops[2].Version = 99
		if err := prepareError(t, m); err == nil || !strings.Contains(err.Error(), "SOFTMAX version 99 is not supported") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("type", func(t *testing.T) {
		m := fcModel()
		m.Tensors[1].Type = tflite.TensorTypeUINT8
		err := prepareError(t, m)
		if err == nil || !strings.Contains(err.Error(), "operator 0 FULLY_CONNECTED v1") || !runtime.IsUnsupportedType(err) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("declared shape disagrees", func(t *testing.T) {
		m := fcModel()
		m.Tensors[3].Shape = []int{1, 4}
		if err := prepareError(t, m); err == nil || !strings.Contains(err.Error(), "computed output shape [1,3], the model declares [1,4]") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("arena limit", func(t *testing.T) {
		_, err := runtime.NewInterpreter(buildModel(t, fcModel()), &runtime.Options{MaxArenaBytes: 8})
		if err == nil || !strings.Contains(err.Error(), "more than the limit of 8") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestInputSizeChecked(t *testing.T) {
	it, err := runtime.NewInterpreter(buildModel(t, fcModel()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := it.Inputs()[0].CopyFrom(make([]byte, 5)); err == nil || !strings.Contains(err.Error(), "takes 4 bytes, got 5") {
		t.Fatalf("got %v", err)
	}
}

// TestConcurrentInterpreters runs interpreters of one model on several
// goroutines (run with -race): each must give the single-threaded answer.
func TestConcurrentInterpreters(t *testing.T) {
	model := buildModel(t, fcModel())
	rng := rand.New(rand.NewPCG(7, 7))
	inputs := make([][]byte, 64)
	want := make([][]byte, len(inputs))
	ref, err := runtime.NewInterpreter(model, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range inputs {
		inputs[i] = make([]byte, 4)
		for j := range inputs[i] {
			inputs[i][j] = byte(rng.Uint32())
		}
		want[i] = invoke(t, ref, inputs[i])[0]
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			it, err := runtime.NewInterpreter(model, nil)
			if err != nil {
				t.Error(err)
				return
			}
			for round := range 50 {
				i := (g*7 + round) % len(inputs)
				if err := it.Inputs()[0].CopyFrom(inputs[i]); err != nil {
					t.Error(err)
					return
				}
				if err := it.Invoke(); err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(it.Outputs()[0].Bytes(), want[i]) {
					t.Errorf("goroutine %d round %d: got %v, want %v", g, round, it.Outputs()[0].Bytes(), want[i])
					return
				}
			}
		})
	}
	wg.Wait()
}

func sharedModels(t *testing.T) []string {
	paths, err := filepath.Glob(filepath.Join(testenv.SharedDir(t), "models", "*.tflite"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no shared models: %v", err)
	}
	return paths
}

func TestSharedModelsLoad(t *testing.T) {
	for _, p := range sharedModels(t) {
		m, err := runtime.LoadModelFile(p)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(p), err)
			continue
		}
		t.Logf("%s: %d tensors, %d operators", filepath.Base(p), len(m.Subgraphs[0].Tensors), len(m.Subgraphs[0].Operators))
	}
}

// TestCorruptSharedModels truncates and bit-flips every shared model: each
// copy must give an error or a model that prepares and runs, never a panic.
func TestCorruptSharedModels(t *testing.T) {
	for _, p := range sharedModels(t) {
		orig, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(p)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(uint64(len(orig)), 11))
			lengths := []int{0, 1, 4, 7, 8, 12, 16, 31, 64, len(orig) / 2, len(orig) - 1}
			for range 40 {
				lengths = append(lengths, rng.IntN(len(orig)))
			}
			for _, n := range lengths {
				if _, err := runtime.LoadModel(orig[:n]); err == nil && n < len(orig)/2 {
					t.Errorf("truncated to %d of %d bytes: no error", n, len(orig))
				}
			}
			flips := 300
			if testing.Short() {
				flips = 60
			}
			for i := range flips {
				b := append([]byte(nil), orig...)
				// Mostly the flatbuffer's structure (the start and the end of
				// the file, where tables live), sometimes anywhere.
				for range 1 + rng.IntN(4) {
					pos := rng.IntN(len(b))
					if i%2 == 0 && len(b) > 8192 {
						if rng.IntN(2) == 0 {
							pos = rng.IntN(4096)
						} else {
							pos = len(b) - 1 - rng.IntN(4096)
						}
					}
					b[pos] ^= 1 << rng.IntN(8)
				}
				exerciseModel(t, b, 20_000_000)
			}
		})
	}
}

// exerciseModel loads b and, when it loads, prepares and (when small enough)
// invokes it. Errors are fine; panics fail the test by crashing it.
func exerciseModel(t testing.TB, b []byte, maxMACs int64) {
	m, err := runtime.LoadModel(b)
	if err != nil {
		return
	}
	it, err := runtime.NewInterpreter(m, &runtime.Options{MaxArenaBytes: 64 << 20})
	if err != nil {
		return
	}
	if it.MACs() > maxMACs {
		return
	}
	_ = it.Invoke()
}

// seedModels are builder models covering the reader's features, for the
// fuzzer's seed corpus.
func seedModels() []*builder.Model {
	plain := fcModel()
	external := fcModel()
	external.ExternalBuffers = true
	meta := fcModel()
	meta.Metadata = map[string][]byte{"min_runtime_version": []byte("2.3.0")}
	return []*builder.Model{plain, external, meta}
}
