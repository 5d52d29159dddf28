//go:build armnn

package armnn

import (
	"errors"
	"strings"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

func fcModel(t *testing.T, options bool, inputs int, perChannel bool) []byte {
	m := &builder.Model{}
	q := func(tt builder.Tensor) builder.Tensor {
		tt.Scale, tt.ZeroPoint = []float32{1}, []int64{0}
		return tt
	}
	in := m.AddTensor(q(builder.Tensor{Name: "in", Type: tflite.TensorTypeINT8, Shape: []int{1, 2}}))
	wt := q(builder.Tensor{Name: "identity", Type: tflite.TensorTypeINT8, Shape: []int{2, 2}, Data: builder.Int8Data([]int8{1, 0, 0, 1})})
	if perChannel {
		wt.Scale, wt.ZeroPoint = []float32{1, 1}, []int64{0, 0}
	}
	w := m.AddTensor(wt)
	out := m.AddTensor(q(builder.Tensor{Name: "out", Type: tflite.TensorTypeINT8, Shape: []int{1, 2}}))
	op := builder.Op{Builtin: tflite.BuiltinOperatorFULLY_CONNECTED, Inputs: []int{in, w, -1}, Outputs: []int{out}}
	if inputs == 2 {
		op.Inputs = op.Inputs[:2]
	}
	if options {
		op.Options = &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsFullyConnectedOptions, Value: &tflite.FullyConnectedOptionsT{}}
	}
	m.AddOp(op)
	m.Inputs, m.Outputs = []int{in}, []int{out}
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Hand-built models (as edged's builder writes them) that Arm NN 20.08
// would crash or throw on are refused by Check with a reason; the one it
// can take runs and agrees with the pure-Go kernels.
func TestHandBuiltModels(t *testing.T) {
	for _, tc := range []struct {
		options    bool
		inputs     int
		perChannel bool
		refused    string
	}{
		{false, 3, false, "has no FullyConnectedOptions"}, // Arm NN dereferences the missing options: SIGSEGV
		{true, 3, false, "omits input 2"},                 // Arm NN throws
		{true, 2, true, "per-channel quantized weights"},  // Arm NN asserts: SIGABRT (edged finetune writes such heads)
		{true, 2, false, ""},
	} {
		m, err := runtime.LoadModel(fcModel(t, tc.options, tc.inputs, tc.perChannel))
		if err != nil {
			t.Fatal(err)
		}
		b, err := Open(m)
		if tc.refused != "" {
			var ue *UnsupportedError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.refused) {
				t.Fatalf("%+v: Open = %v, want refusal %q", tc, err, tc.refused)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		it, err := runtime.NewInterpreter(m, nil)
		if err != nil {
			t.Fatal(err)
		}
		copy(b.Inputs()[0].Bytes(), []byte{7, 0xf0})
		copy(it.Inputs()[0].Bytes(), []byte{7, 0xf0})
		if err := b.Invoke(); err != nil {
			t.Fatal(err)
		}
		if err := it.Invoke(); err != nil {
			t.Fatal(err)
		}
		if got, want := b.Outputs()[0].Bytes(), it.Outputs()[0].Bytes(); string(got) != string(want) {
			t.Fatalf("identity: Arm NN %v, int8 %v", got, want)
		}
		b.Close()
	}
}
