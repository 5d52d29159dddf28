package runtime_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/testenv"
)

// pendingOps are operators of shared golden models that belong to other
// issues' work. A golden case needing one of them is skipped with its name
// until the operator is registered; any other failure to prepare fails.
var pendingOps = map[string]string{
	"SignalWindow":                        "audio frontend (keyword spotting issue)",
	"SignalFftAutoScale":                  "audio frontend (keyword spotting issue)",
	"SignalRfft":                          "audio frontend (keyword spotting issue)",
	"SignalEnergy":                        "audio frontend (keyword spotting issue)",
	"SignalFilterBank":                    "audio frontend (keyword spotting issue)",
	"SignalFilterBankSquareRoot":          "audio frontend (keyword spotting issue)",
	"SignalFilterBankSpectralSubtraction": "audio frontend (keyword spotting issue)",
	"SignalPCAN":                          "audio frontend (keyword spotting issue)",
	"SignalFilterBankLog":                 "audio frontend (keyword spotting issue)",
	"UNIDIRECTIONAL_SEQUENCE_LSTM":        "RNN ops (keyword spotting issue)",
	"TFLite_Detection_PostProcess":        "SSD postprocess (vision issue)",
}

// heavyMACs marks models too slow for the reference kernels under emulation
// (YOLOv8n: 4.4 G multiply-accumulates); -short skips them.
const heavyMACs = 1_000_000_000

func TestGolden(t *testing.T) {
	for _, c := range testenv.GoldenCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			runGoldenCase(t, c)
		})
	}
}

func runGoldenCase(t *testing.T, c *testenv.GoldenCase) {
	m, err := runtime.LoadModelFile(c.ModelPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range m.Subgraphs[0].Operators {
		if why, ok := pendingOps[op.Code.Name()]; ok && !registered(op.Code.Name()) {
			t.Skipf("needs operator %s: %s", op.Code.Name(), why)
		}
	}
	it, err := runtime.NewInterpreter(m, nil)
	if err != nil {
		t.Fatal(err)
	}
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
		if err := compareOutput(out.Type, got[i], want, c.MaxAbsTolerance); err != nil {
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

func registered(name string) bool {
	for _, op := range runtime.SupportedOps() {
		if op.Name() == name {
			return true
		}
	}
	return false
}

// compareOutput checks got against want: byte for byte, or within tol
// quantization steps (or absolute units, for floats) where the reference
// is not exact.
func compareOutput(t runtime.DType, got, want []byte, tol float64) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d bytes, want %d", len(got), len(want))
	}
	if bytes.Equal(got, want) {
		return nil
	}
	size := t.Size()
	n := len(got) / size
	var diffs int
	var maxDiff float64
	first := -1
	for i := range n {
		if bytes.Equal(got[i*size:(i+1)*size], want[i*size:(i+1)*size]) {
			continue
		}
		d := math.Abs(element(t, got[i*size:]) - element(t, want[i*size:]))
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		if first < 0 {
			first = i
		}
		diffs++
		maxDiff = max(maxDiff, d)
	}
	if tol > 0 && maxDiff <= tol {
		return nil
	}
	return fmt.Errorf("%d of %d elements differ (first at %d: got %v, want %v), max |diff| %g > tolerance %g",
		diffs, n, first, element(t, got[first*size:]), element(t, want[first*size:]), maxDiff, tol)
}

func element(t runtime.DType, b []byte) float64 {
	switch t {
	case runtime.Int8:
		return float64(int8(b[0]))
	case runtime.Uint8, runtime.Bool:
		return float64(b[0])
	case runtime.Int16:
		return float64(int16(binary.LittleEndian.Uint16(b)))
	case runtime.Int32:
		return float64(int32(binary.LittleEndian.Uint32(b)))
	case runtime.Int64:
		return float64(int64(binary.LittleEndian.Uint64(b)))
	case runtime.Float32:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
	}
	return math.NaN()
}
