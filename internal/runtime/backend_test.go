package runtime_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/internal/runtime"
)

// fakeDelegate runs the model on a pure-Go interpreter, slowed down or with
// its outputs shifted, so OpenBackend's decisions can be tested anywhere.
type fakeDelegate struct {
	*runtime.Interpreter
	delay  time.Duration
	shift  byte
	closed *bool
}

func (f *fakeDelegate) Name() string { return "armnn/Fake" }
func (f *fakeDelegate) Invoke() error {
	if err := f.Interpreter.Invoke(); err != nil {
		return err
	}
	time.Sleep(f.delay)
	for _, t := range f.Outputs() {
		for i, v := range t.Int8s() { // towards 0: no wrap-around
			if v >= 0 {
				t.Int8s()[i] = v - int8(f.shift)
			} else {
				t.Int8s()[i] = v + int8(f.shift)
			}
		}
	}
	return nil
}
func (f *fakeDelegate) Close() error { *f.closed = true; return nil }

func withFake(t *testing.T, open func(m *runtime.Model) (runtime.Backend, error)) {
	t.Cleanup(runtime.SwapDelegate(runtime.BackendArmNN, runtime.Delegate{Name: runtime.BackendArmNN, Open: open}))
}

func TestOpenBackendWithoutDelegates(t *testing.T) {
	t.Cleanup(runtime.SwapDelegate(runtime.BackendArmNN, runtime.Delegate{}))
	m := buildModel(t, fcModel())
	for _, name := range []string{"", runtime.BackendAuto, runtime.BackendInt8} {
		sel, err := runtime.OpenBackend(m, runtime.SelectOptions{Backend: name})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := sel.Backend.(*runtime.Interpreter); !ok || sel.Backend.Name() != "int8" || sel.Measured || sel.Fallback != "" {
			t.Fatalf("%q: %+v", name, sel)
		}
	}
	if _, err := runtime.OpenBackend(m, runtime.SelectOptions{Backend: runtime.BackendArmNN}); !errors.Is(err, runtime.ErrArmNNNotBuilt) ||
		!strings.Contains(err.Error(), "use the edged-armnn build") {
		t.Fatalf("armnn without Arm NN: %v", err)
	}
	if err := runtime.CheckBackendName("tpu"); err == nil || !strings.Contains(err.Error(), "unknown backend") {
		t.Fatalf("CheckBackendName(tpu) = %v", err)
	}
}

func TestOpenBackendAuto(t *testing.T) {
	m := buildModel(t, fcModel())
	for _, tc := range []struct {
		name        string
		delay       time.Duration
		shift       byte
		slowInt8    bool
		tolerance   int
		want        string
		wantClosed  bool
		wantAgrees  bool
		wantReasons string
	}{
		{name: "slower", delay: 2 * time.Millisecond, want: "int8", wantClosed: true, wantAgrees: true, wantReasons: "slower"},
		{name: "disagrees", shift: 5, want: "int8", wantClosed: true, wantReasons: "disagrees"},
		{name: "within tolerance but slower", shift: 3, delay: time.Millisecond, want: "int8", wantClosed: true, wantAgrees: true},
		{name: "exact tolerance", shift: 1, tolerance: -1, want: "int8", wantClosed: true, wantReasons: "tolerance 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			closed := false
			withFake(t, func(m *runtime.Model) (runtime.Backend, error) {
				it, err := runtime.NewInterpreter(m, nil)
				return &fakeDelegate{Interpreter: it, delay: tc.delay, shift: tc.shift, closed: &closed}, err
			})
			sel, err := runtime.OpenBackend(m, runtime.SelectOptions{Backend: runtime.BackendAuto, Trials: 3, Tolerance: tc.tolerance})
			if err != nil {
				t.Fatal(err)
			}
			if sel.Backend.Name() != tc.want || closed != tc.wantClosed || sel.Agrees != tc.wantAgrees || !sel.Measured || sel.Trials != 3 ||
				sel.Delegate != "armnn/Fake" || !strings.Contains(sel.Reason, tc.wantReasons) {
				t.Fatalf("%+v (closed %v)", sel, closed)
			}
			if tc.shift > 0 && sel.MaxSteps != int64(tc.shift) {
				t.Fatalf("max steps %d, want %d", sel.MaxSteps, tc.shift)
			}
		})
	}
}

// A delegate faster than the pure-Go kernels and in agreement is kept: the
// fake runs on a precomputed answer.
type instantDelegate struct {
	in, out []*runtime.Tensor
	answer  []byte
}

func (d *instantDelegate) Name() string               { return "armnn/Instant" }
func (d *instantDelegate) Inputs() []*runtime.Tensor  { return d.in }
func (d *instantDelegate) Outputs() []*runtime.Tensor { return d.out }
func (d *instantDelegate) Reset()                     {}
func (d *instantDelegate) Close() error               { return nil }
func (d *instantDelegate) Invoke() error {
	copy(d.out[0].Bytes(), d.answer)
	return nil
}

func TestOpenBackendAutoKeepsFasterAgreeingDelegate(t *testing.T) {
	// A model whose output does not depend on its input: SOFTMAX of a
	// constant-weight FULLY_CONNECTED with zero weights.
	bm := fcModel()
	for i := range bm.Tensors {
		if bm.Tensors[i].Name == "weights" {
			bm.Tensors[i].Data = make([]byte, len(bm.Tensors[i].Data))
		}
	}
	m := buildModel(t, bm)
	it, err := runtime.NewInterpreter(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := it.Invoke(); err != nil {
		t.Fatal(err)
	}
	answer := append([]byte(nil), it.Outputs()[0].Bytes()...)
	withFake(t, func(m *runtime.Model) (runtime.Backend, error) {
		g := m.Subgraphs[0]
		in, _ := runtime.NewTensor(&g.Tensors[g.Inputs[0]])
		out, _ := runtime.NewTensor(&g.Tensors[g.Outputs[0]])
		return &instantDelegate{in: []*runtime.Tensor{in}, out: []*runtime.Tensor{out}, answer: answer}, nil
	})
	sel, err := runtime.OpenBackend(m, runtime.SelectOptions{Trials: 5})
	if err != nil {
		t.Fatal(err)
	}
	if sel.Backend.Name() != "armnn/Instant" || !sel.Agrees || sel.MaxSteps != 0 || !strings.Contains(sel.Reason, "faster") {
		t.Fatalf("%+v", sel)
	}
}

func TestOpenBackendFallback(t *testing.T) {
	m := buildModel(t, fcModel())
	withFake(t, func(*runtime.Model) (runtime.Backend, error) {
		return nil, errors.New("lacks the operator(s) FULLY_CONNECTED")
	})
	for _, name := range []string{runtime.BackendArmNN, runtime.BackendAuto} {
		sel, err := runtime.OpenBackend(m, runtime.SelectOptions{Backend: name})
		if err != nil {
			t.Fatal(err)
		}
		if sel.Backend.Name() != "int8" || sel.Fallback != "lacks the operator(s) FULLY_CONNECTED" || !strings.Contains(sel.Reason, "FULLY_CONNECTED") {
			t.Fatalf("%s: %+v", name, sel)
		}
		if err := sel.Backend.Invoke(); err != nil {
			t.Fatal(err)
		}
	}
	// armnn asked for and available: no measurement, the delegate runs.
	closed := false
	withFake(t, func(m *runtime.Model) (runtime.Backend, error) {
		it, err := runtime.NewInterpreter(m, nil)
		return &fakeDelegate{Interpreter: it, closed: &closed}, err
	})
	sel, err := runtime.OpenBackend(m, runtime.SelectOptions{Backend: runtime.BackendArmNN})
	if err != nil || sel.Backend.Name() != "armnn/Fake" || sel.Measured {
		t.Fatalf("%+v, %v", sel, err)
	}
}

func TestDiffOutputs(t *testing.T) {
	m := buildModel(t, fcModel())
	a, _ := runtime.NewTensor(&m.Subgraphs[0].Tensors[m.Subgraphs[0].Outputs[0]])
	b, _ := runtime.NewTensor(&m.Subgraphs[0].Tensors[m.Subgraphs[0].Outputs[0]])
	a.Bytes()[1], b.Bytes()[1] = 0x7f, 0x80 // int8 127 against -128
	steps, f, err := runtime.DiffOutputs([]*runtime.Tensor{a}, []*runtime.Tensor{b})
	if err != nil || steps != 255 || f != 0 {
		t.Fatalf("steps %d float %g err %v", steps, f, err)
	}
	if _, _, err := runtime.DiffOutputs([]*runtime.Tensor{a}, nil); err == nil {
		t.Fatal("different counts compared")
	}
}
