package runtime_test

import (
	"os"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/testenv"
)

// heavyMACs marks models too slow for the reference kernels under emulation
// (YOLOv8n: 4.4 G multiply-accumulates); -short skips them.
const heavyMACs = 1_000_000_000

// goldenKernels are the ways every golden case runs: the optimized kernels
// (SIMD where the CPU has it), the same on two threads, their pure-Go
// micro-kernels, and the reference kernels forced.
var goldenKernels = []struct {
	name string
	opts *runtime.Options
}{
	{"optimized", &runtime.Options{}},
	{"threads2", &runtime.Options{Threads: 2}},
	{"purego", runtime.PureGo(runtime.Options{})},
	{"reference", &runtime.Options{ReferenceKernels: true}},
}

func TestGolden(t *testing.T) {
	for _, c := range testenv.GoldenCases(t) {
		for _, k := range goldenKernels {
			t.Run(c.Name+"/"+k.name, func(t *testing.T) {
				t.Parallel()
				runGoldenCase(t, c, k.opts)
			})
		}
	}
}

func runGoldenCase(t *testing.T, c *testenv.GoldenCase, opts *runtime.Options) {
	m, err := runtime.LoadModelFile(c.ModelPath)
	if err != nil {
		t.Fatal(err)
	}
	it, err := runtime.NewInterpreter(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	if testing.Short() && it.MACs() > heavyMACs {
		t.Skipf("%d MACs per invoke: too slow for -short", it.MACs())
	}
	if len(c.Inputs) != len(it.Inputs()) || len(c.Outputs) != len(it.Outputs()) {
		t.Fatalf("case has %d inputs / %d outputs, model %d / %d", len(c.Inputs), len(c.Outputs), len(it.Inputs()), len(it.Outputs()))
	}
	inputs := make([][]byte, len(c.Inputs))
	for i := range c.Inputs {
		if inputs[i], err = os.ReadFile(c.InputPath(i)); err != nil {
			t.Fatal(err)
		}
		want := it.Inputs()[i].ByteSize() * c.Frames
		if len(inputs[i]) != want {
			t.Fatalf("input %d: %d bytes, want %d (%d frames)", i, len(inputs[i]), want, c.Frames)
		}
	}
	got := make([][]byte, len(c.Outputs))
	for f := range c.Frames {
		for i, in := range it.Inputs() {
			n := in.ByteSize()
			if err := in.CopyFrom(inputs[i][f*n : (f+1)*n]); err != nil {
				t.Fatal(err)
			}
		}
		if err := it.Invoke(); err != nil {
			t.Fatalf("frame %d: %v", f, err)
		}
		for i, out := range it.Outputs() {
			got[i] = append(got[i], out.Bytes()...)
		}
	}
	for i, o := range c.Outputs {
		want, err := os.ReadFile(c.OutputPath(i))
		if err != nil {
			t.Fatal(err)
		}
		out := it.Outputs()[i]
		if out.Type.String() != o.DType || !runtime.SameShape(out.Shape, o.Shape) {
			t.Errorf("output %d %q is %s%s, case says %s%v", i, o.Name, out.Type, runtime.FormatShape(out.Shape), o.DType, o.Shape)
			continue
		}
		if err := testenv.CompareOutput(o.DType, got[i], want, c.MaxAbsTolerance); err != nil {
			t.Errorf("output %d %q (%s, reference %q): %v", i, o.Name, out.Type, referenceName(c), err)
		}
	}
	if c.Name == "person_detect_person" {
		if limit := int(1.1 * float64(c.TFLMArenaBytes)); it.ArenaBytes() > limit {
			t.Errorf("arena %d bytes, more than 1.1 × TFLM's %d", it.ArenaBytes(), c.TFLMArenaBytes)
		}
		t.Logf("arena %d bytes (TFLM uses %d)", it.ArenaBytes(), c.TFLMArenaBytes)
	}
}

func referenceName(c *testenv.GoldenCase) string {
	if c.Reference == "" {
		return "tflm"
	}
	return c.Reference
}
