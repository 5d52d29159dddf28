package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/testenv"
)

// Whichever the build, --backend int8 and auto run the model and agree
// with each other; armnn works only where it is compiled in.
func TestBackendFlag(t *testing.T) {
	model := identityModel(t)
	built := len(testBuildTags) > 0
	if _, ok := runtime.LookupDelegate(runtime.BackendArmNN); ok != built {
		t.Fatalf("Arm NN registered: %v, build tags %v", ok, testBuildTags)
	}

	r := edged(t, "version")
	if built != strings.Contains(r.stdout, "armnn (Arm NN") {
		t.Errorf("version (tags %v):\n%s", testBuildTags, r.stdout)
	}
	if !built && !strings.Contains(r.stdout, "no delegates") {
		t.Errorf("version without delegates:\n%s", r.stdout)
	}

	for _, b := range []string{"int8", "auto", "armnn"} {
		r := edged(t, "bench", "--model", model, "--runs", "3", "--backend", b, "--json")
		if b == "armnn" && !built {
			if r.code != 2 || !strings.Contains(r.stderr, "built without the Arm NN backend; use the edged-armnn build") {
				t.Errorf("bench --backend armnn without Arm NN: exit %d, %s", r.code, r.stderr)
			}
			continue
		}
		if r.code != 0 {
			t.Fatalf("bench --backend %s: exit %d: %s", b, r.code, r.stderr)
		}
		var res benchResult
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatal(err)
		}
		t.Logf("--backend %s: %s %v us", b, res.Backend, res.MedianMicros)
		if b == "int8" && (!strings.HasPrefix(res.Backend, "int8") || res.AllocsPerInvoke != 0) {
			t.Errorf("bench --backend int8: %+v", res)
		}
		if b == "auto" && built && res.Selection == nil && res.Fallback == "" {
			t.Errorf("bench --backend auto did not measure: %s", r.stdout)
		}
	}
	if r := edged(t, "bench", "--model", model, "--backend", "gpu"); r.code != 2 || !strings.Contains(r.stderr, "unknown backend") {
		t.Errorf("bench --backend gpu: exit %d, %s", r.code, r.stderr)
	}
}

// The golden cases the delegate must handle give the same answers through
// edged infer whatever the backend (exactly for int8; within the default
// tolerance for Arm NN), and models Arm NN lacks operators for still run.
func TestInferBackends(t *testing.T) {
	built := len(testBuildTags) > 0
	backends := []string{"int8", "auto"}
	if built {
		backends = append(backends, "armnn")
	}
	for _, name := range []string{"hello_world_int8_random_seed1", "micro_speech_yes", "person_detect_person", "mobilenet_v1_0.25_128_cat", "trained_lstm_int8_mnist_sample3"} {
		var c *testenv.GoldenCase
		for _, gc := range testenv.GoldenCases(t) {
			if gc.Name == name {
				c = gc
			}
		}
		if c == nil {
			t.Fatalf("golden case %s missing", name)
		}
		for _, b := range backends {
			out := t.TempDir()
			args := []string{"infer", "--model", c.ModelPath, "--output-dir", out, "--backend", b}
			for i := range c.Inputs {
				args = append(args, "--input", c.InputPath(i))
			}
			r := edged(t, args...)
			if r.code != 0 {
				t.Fatalf("%s --backend %s: exit %d: %s", name, b, r.code, r.stderr)
			}
			var sum inferSummary
			if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
				t.Fatal(err)
			}
			tol := 0.0
			if strings.HasPrefix(sum.Backend, "armnn/") {
				tol = runtime.DefaultTolerance
			}
			if b == "armnn" && strings.HasPrefix(name, "trained_lstm") {
				if sum.Backend != "int8" || !strings.Contains(sum.Fallback, "UNIDIRECTIONAL_SEQUENCE_LSTM") || !strings.Contains(r.stderr, "falling back to int8") {
					t.Errorf("%s --backend armnn: backend %s, fallback %q, stderr %s", name, sum.Backend, sum.Fallback, r.stderr)
				}
			} else if b == "armnn" && !strings.HasPrefix(sum.Backend, "armnn/") {
				t.Errorf("%s --backend armnn ran on %s (%s)", name, sum.Backend, sum.Fallback)
			}
			for i := range c.Outputs {
				got, err := os.ReadFile(filepath.Join(out, "output_"+string(rune('0'+i))+".bin"))
				if err != nil {
					t.Fatal(err)
				}
				want, err := os.ReadFile(c.OutputPath(i))
				if err != nil {
					t.Fatal(err)
				}
				if tol == 0 && c.Frames > 1 {
					continue // multi-frame goldens are checked by TestInferGolden
				}
				if err := testenv.CompareOutput(c.Outputs[i].DType, got[:len(want)], want, tol); err != nil {
					t.Errorf("%s --backend %s (%s) output %d: %v", name, b, sum.Backend, i, err)
				}
			}
		}
	}
	garbage := filepath.Join(t.TempDir(), "random.tflite")
	junk := make([]byte, 4096)
	for i := range junk {
		junk[i] = byte(i*131 + i/7)
	}
	os.WriteFile(garbage, junk, 0o644)
	in := filepath.Join(t.TempDir(), "in.bin")
	os.WriteFile(in, []byte{1}, 0o644)
	for _, b := range backends {
		r := edged(t, "infer", "--model", garbage, "--input", in, "--output-dir", t.TempDir(), "--backend", b)
		if r.code != 1 || !strings.Contains(r.stderr, "random.tflite") {
			t.Errorf("random bytes --backend %s: exit %d, %s", b, r.code, r.stderr)
		}
	}
}
