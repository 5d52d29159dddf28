//go:build armnn

package armnn

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/testenv"
)

// The shared models the delegate must run, each with golden inputs: Arm NN's
// outputs agree with the pure-Go kernels' (and so with TFLM's goldens)
// within runtime.DefaultTolerance quantization steps.
var agreementCases = []string{
	"hello_world_int8_random_seed1",
	"hello_world_int8_random_seed2",
	"micro_speech_yes",
	"micro_speech_no",
	"micro_speech_silence",
	"micro_speech_noise",
	"person_detect_person",
	"person_detect_no_person",
	"person_detect_random_seed1",
	"person_detect_random_seed2",
	"mobilenet_v1_0.25_128_cat",
	"mobilenet_v1_0.25_128_quant_random_seed1",
	"mobilenet_v1_0.25_128_quant_random_seed2",
}

// driftCases are inputs on which Arm NN's floating-point requantization
// drifts further from TFLM's fixed point than the default tolerance, per
// compute backend, measured with Debian's Arm NN 20.08: CpuRef on x86-64
// (mobilenet's bird 7 steps, grace_hopper 4, random speech features 4) and
// CpuAcc on arm64 under qemu (person_detect: no_person 15 steps, random
// inputs 8 and 5; the per-channel int8 depthwise convolutions requantize
// differently). The drift is in the largest scores, after the softmax
// amplified a small logit difference. These must still agree on the top
// class and stay within driftBound steps; runtime.OpenBackend's auto
// refuses Arm NN for a model whose check inputs drift this far (which is
// what it does with person_detect on CpuAcc).
var driftCases = map[string][]string{
	"CpuRef": {"mobilenet_v1_0.25_128_bird", "mobilenet_v1_0.25_128_grace_hopper", "micro_speech_quantized_random_seed1"},
	"CpuAcc": {"person_detect_no_person", "person_detect_random_seed1", "person_detect_random_seed2"},
}

const driftBound = 16

// allCases are every golden case the tests run through Arm NN.
var allCases = slices.Compact(slices.Sorted(slices.Values(slices.Concat(agreementCases, driftCases["CpuRef"], driftCases["CpuAcc"]))))

// drifts reports whether name is a drift case on the backend b ("armnn/CpuAcc").
func drifts(b runtime.Backend, name string) bool {
	for backend, cases := range driftCases {
		if strings.Contains(b.Name(), backend) && slices.Contains(cases, name) {
			return true
		}
	}
	return false
}

func goldenCase(t *testing.T, name string) *testenv.GoldenCase {
	t.Helper()
	for _, c := range testenv.GoldenCases(t) {
		if c.Name == name {
			return c
		}
	}
	if testenv.InCI() {
		t.Fatalf("golden case %s not found", name)
	}
	t.Skipf("golden case %s not found", name)
	return nil
}

func TestComputeBackends(t *testing.T) {
	b, err := ComputeBackends()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		t.Fatal("no compute backends")
	}
	t.Logf("Arm NN %s, compute backends %v; %s", Version(), b, Describe())
}

func TestGoldenAgreement(t *testing.T) {
	for _, name := range allCases {
		t.Run(name, func(t *testing.T) {
			c := goldenCase(t, name)
			m, err := runtime.LoadModelFile(c.ModelPath)
			if err != nil {
				t.Fatal(err)
			}
			it, err := runtime.NewInterpreter(m, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Open(m)
			if err != nil {
				t.Fatalf("Arm NN refused %s: %v", c.Model, err)
			}
			defer b.Close()
			if !strings.HasPrefix(b.Name(), "armnn/") {
				t.Fatalf("name %q", b.Name())
			}
			for i := range c.Inputs {
				in, err := os.ReadFile(c.InputPath(i))
				if err != nil {
					t.Fatal(err)
				}
				if err := it.Inputs()[i].CopyFrom(in); err != nil {
					t.Fatal(err)
				}
				if err := b.Inputs()[i].CopyFrom(in); err != nil {
					t.Fatal(err)
				}
			}
			if err := it.Invoke(); err != nil {
				t.Fatal(err)
			}
			if err := b.Invoke(); err != nil {
				t.Fatal(err)
			}
			steps, fdiff, err := runtime.DiffOutputs(it.Outputs(), b.Outputs())
			if err != nil {
				t.Fatal(err)
			}
			if drifts(b, name) {
				if steps > driftBound || argmax(it.Outputs()[0]) != argmax(b.Outputs()[0]) {
					t.Fatalf("%s on %s: %d steps from int8 (bound %d), top class %d against %d", b.Name(), name, steps, driftBound,
						argmax(b.Outputs()[0]), argmax(it.Outputs()[0]))
				}
				t.Logf("%s: max difference from int8 %d steps (drift case), same top class", b.Name(), steps)
				return
			}
			if steps > runtime.DefaultTolerance || fdiff > runtime.DefaultFloatTolerance {
				t.Fatalf("%s on %s differs from int8 by %d steps (float %g); tolerance %d", b.Name(), name, steps, fdiff, runtime.DefaultTolerance)
			}
			for i := range c.Outputs {
				want, err := os.ReadFile(c.OutputPath(i))
				if err != nil {
					t.Fatal(err)
				}
				if err := testenv.CompareOutput(c.Outputs[i].DType, b.Outputs()[i].Bytes(), want, runtime.DefaultTolerance); err != nil {
					t.Fatalf("output %d against the golden: %v", i, err)
				}
			}
			t.Logf("%s: max difference from int8 %d steps; %d patches", b.Name(), steps, len(b.Notes))
		})
	}
}

func argmax(t *runtime.Tensor) int {
	best := 0
	for i := range t.NumElements() {
		v, bv := int(t.Bytes()[i]), int(t.Bytes()[best])
		if t.Type == runtime.Int8 {
			v, bv = int(int8(v)), int(int8(bv))
		}
		if v > bv {
			best = i
		}
	}
	return best
}

func TestFallbackWithReason(t *testing.T) {
	m, err := runtime.LoadModelFile(testenv.SharedFile(t, "models/trained_lstm_int8.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(m)
	var ue *UnsupportedError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "UNIDIRECTIONAL_SEQUENCE_LSTM") {
		t.Fatalf("Open = %v, want an UnsupportedError naming UNIDIRECTIONAL_SEQUENCE_LSTM", err)
	}
	for _, req := range []string{runtime.BackendArmNN, runtime.BackendAuto} {
		sel, err := runtime.OpenBackend(m, runtime.SelectOptions{Backend: req})
		if err != nil {
			t.Fatalf("%s: %v", req, err)
		}
		if sel.Backend.Name() != runtime.BackendInt8 || !strings.Contains(sel.Fallback, "UNIDIRECTIONAL_SEQUENCE_LSTM") {
			t.Fatalf("%s: backend %s, fallback %q", req, sel.Backend.Name(), sel.Fallback)
		}
		// The fallback runs the model.
		if err := sel.Backend.Invoke(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s", req, sel.Reason)
		sel.Backend.Close()
	}
}

// The parser's own refusal (an operator the list lets through but Arm NN
// cannot build) is caught too: the Signal frontend, handed over without
// Check.
func TestParserErrorCaught(t *testing.T) {
	m, err := runtime.LoadModelFile(testenv.SharedFile(t, "models/audio_preprocessor_int8.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	g := m.Subgraphs[0]
	_, _, err = openNetwork(m.Bytes(), g.Inputs, g.Outputs)
	var ae *Error
	if !errors.As(err, &ae) || ae.Code == 0 {
		t.Fatalf("openNetwork = %v, want an Arm NN error", err)
	}
	t.Logf("caught: %v", err)
}

func TestBadBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range 20 {
		junk := make([]byte, 64+rng.IntN(4096))
		for j := range junk {
			junk[j] = byte(rng.Uint32())
		}
		// Through edged's reader: an error before Arm NN sees anything.
		if _, err := OpenBytes(junk); err == nil {
			t.Fatalf("random bytes %d opened", i)
		}
		// Straight into Arm NN's parser: its exception becomes an error.
		if _, _, err := openNetwork(junk, []int{0}, []int{1}); err == nil {
			t.Fatalf("random bytes %d: Arm NN accepted them", i)
		}
	}
	good, err := os.ReadFile(testenv.SharedFile(t, "models/person_detect.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 16, 1000, len(good) / 2, len(good) - 1} {
		if _, _, err := openNetwork(good[:n], []int{0}, []int{1}); err == nil {
			t.Fatalf("person_detect truncated to %d bytes opened", n)
		}
		if _, err := OpenBytes(good[:n]); err == nil {
			t.Fatalf("person_detect truncated to %d bytes opened", n)
		}
	}
}

func TestAutoMeasuresAndAgrees(t *testing.T) {
	m, err := runtime.LoadModelFile(testenv.SharedFile(t, "models/person_detect.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	sel, err := runtime.OpenBackend(m, runtime.SelectOptions{Backend: runtime.BackendAuto, Trials: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer sel.Backend.Close()
	if !sel.Measured || sel.Trials < 1 || sel.Int8Time <= 0 || sel.DelegateTime <= 0 || !strings.HasPrefix(sel.Delegate, "armnn/") {
		t.Fatalf("not measured: %+v", sel)
	}
	if !sel.Agrees && strings.Contains(sel.Delegate, "CpuRef") {
		t.Fatalf("person_detect on random inputs disagrees on CpuRef: %s", sel.Reason)
	}
	want := runtime.BackendInt8
	if sel.Agrees && sel.DelegateTime < sel.Int8Time {
		want = sel.Delegate
	}
	if sel.Backend.Name() != want {
		t.Fatalf("chose %s, want %s: %s", sel.Backend.Name(), want, sel.Reason)
	}
	t.Log(sel.Reason)

	// A tolerance of 0 steps turns an Arm NN that rounds differently away.
	sel2, err := runtime.OpenBackend(m, runtime.SelectOptions{Backend: runtime.BackendAuto, Trials: 2, Tolerance: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer sel2.Backend.Close()
	if sel2.MaxSteps > 0 && (sel2.Agrees || sel2.Backend.Name() != runtime.BackendInt8) {
		t.Fatalf("exact tolerance with %d steps of difference: %s", sel2.MaxSteps, sel2.Reason)
	}
	t.Log(sel2.Reason)
}

func TestInvokeAllocatesNothing(t *testing.T) {
	m, err := runtime.LoadModelFile(testenv.SharedFile(t, "models/micro_speech_quantized.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(m)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if n := testing.AllocsPerRun(20, func() {
		if err := b.Invoke(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per Invoke", n)
	}
	b.Close()
	if err := b.Invoke(); err == nil {
		t.Fatal("Invoke after Close succeeded")
	}
}

// helperMode runs in a child process (TestWrongBackendPath, TestQuiet).
func TestHelper(t *testing.T) {
	switch os.Getenv("EDGED_ARMNN_TEST_HELPER") {
	case "":
		t.Skip("helper process only")
	case "open":
		m, err := runtime.LoadModelFile(os.Getenv("EDGED_ARMNN_TEST_MODEL"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := Open(m)
		if err != nil {
			os.Stderr.WriteString("OPEN ERROR: " + err.Error() + "\n")
			os.Exit(3)
		}
		if err := b.Invoke(); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
}

func runHelper(t *testing.T, env ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := testenv.SelfCommand("-test.run=^TestHelper$")
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee interface{ ExitCode() int }
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

// A wrong dynamic backend path leaves Arm NN without compute backends: that
// is an error naming the path, found when the runtime is created.
func TestWrongBackendPath(t *testing.T) {
	model := testenv.SharedFile(t, "models/hello_world_int8.tflite")
	dir := t.TempDir()
	_, stderr, code := runHelper(t, "EDGED_ARMNN_TEST_HELPER=open", "EDGED_ARMNN_TEST_MODEL="+model, "EDGED_ARMNN_BACKEND_PATH="+dir)
	if code != 3 || !strings.Contains(stderr, "found no compute backends") || !strings.Contains(stderr, dir) {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// Arm NN prints nothing on stdout: parsing, optimizing, loading and
// running person_detect (which needs the bias patch) leave only go test's
// own PASS.
func TestQuiet(t *testing.T) {
	model := testenv.SharedFile(t, "models/person_detect.tflite")
	stdout, stderr, code := runHelper(t, "EDGED_ARMNN_TEST_HELPER=open", "EDGED_ARMNN_TEST_MODEL="+model)
	if code != 0 || strings.TrimSpace(stdout) != "PASS" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestNotes(t *testing.T) {
	m, err := runtime.LoadModelFile(filepath.Join(testenv.SharedDir(t), "models", "person_detect.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(m)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if len(b.Notes) != 14 {
		t.Fatalf("%d notes: %v", len(b.Notes), b.Notes)
	}
}

// Models on the shared Arm NN runtime run at the same time from several
// goroutines, each on its own Backend, and give the answers they give
// alone.
func TestConcurrentModels(t *testing.T) {
	var models []*runtime.Model
	for _, name := range []string{"hello_world_int8.tflite", "micro_speech_quantized.tflite"} {
		m, err := runtime.LoadModelFile(testenv.SharedFile(t, "models/"+name))
		if err != nil {
			t.Fatal(err)
		}
		models = append(models, m)
	}
	errs := make(chan error, 6)
	for g := range 6 {
		m := models[g%len(models)]
		go func() {
			b, err := Open(m)
			if err != nil {
				errs <- err
				return
			}
			defer b.Close()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			runtime.FillRandom(rng, b.Inputs()[0])
			if err := b.Invoke(); err != nil {
				errs <- err
				return
			}
			want := append([]byte(nil), b.Outputs()[0].Bytes()...)
			for range 30 {
				if err := b.Invoke(); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(b.Outputs()[0].Bytes(), want) {
					errs <- errors.New("output changed between invocations of the same input")
					return
				}
			}
			errs <- nil
		}()
	}
	for range 6 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
