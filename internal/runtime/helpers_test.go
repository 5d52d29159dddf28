package runtime_test

import (
	"math"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
)

// buildModel serializes m and loads it, failing the test on error.
func buildModel(t testing.TB, m *builder.Model) *runtime.Model {
	t.Helper()
	b, err := m.Bytes()
	if err != nil {
		t.Fatalf("build model: %v", err)
	}
	model, err := runtime.LoadModel(b)
	if err != nil {
		t.Fatalf("load built model: %v", err)
	}
	return model
}

// runModel builds m, sets its inputs (raw bytes, in subgraph input order),
// invokes it once and returns copies of the outputs' bytes.
func runModel(t testing.TB, m *builder.Model, inputs ...[]byte) [][]byte {
	t.Helper()
	it, err := runtime.NewInterpreter(buildModel(t, m), nil)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	return invoke(t, it, inputs...)
}

// invoke sets inputs, runs one invocation and copies the outputs.
func invoke(t testing.TB, it *runtime.Interpreter, inputs ...[]byte) [][]byte {
	t.Helper()
	if len(inputs) != len(it.Inputs()) {
		t.Fatalf("%d inputs given, model has %d", len(inputs), len(it.Inputs()))
	}
	for i, in := range inputs {
		if err := it.Inputs()[i].CopyFrom(in); err != nil {
			t.Fatal(err)
		}
	}
	if err := it.Invoke(); err != nil {
		t.Fatalf("invoke: %v", err)
	}
	out := make([][]byte, len(it.Outputs()))
	for i, o := range it.Outputs() {
		out[i] = append([]byte(nil), o.Bytes()...)
	}
	return out
}

// prepareError builds m and returns the error NewInterpreter gives (nil if
// it prepares).
func prepareError(t testing.TB, m *builder.Model) error {
	t.Helper()
	_, err := runtime.NewInterpreter(buildModel(t, m), nil)
	return err
}

func int8s(b []byte) []int8 {
	out := make([]int8, len(b))
	for i, x := range b {
		out[i] = int8(x)
	}
	return out
}

func float32s(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(uint32(b[4*i]) | uint32(b[4*i+1])<<8 | uint32(b[4*i+2])<<16 | uint32(b[4*i+3])<<24)
	}
	return out
}
