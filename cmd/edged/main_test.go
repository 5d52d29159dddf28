package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
	"github.com/edged/edged/internal/testenv"
)

// edgedBin is the binary built once for the tests: they run edged as a user
// would, through its command line.
var edgedBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "edged-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	edgedBin = filepath.Join(dir, "edged")
	args := []string{"build", "-tags", strings.Join(testBuildTags, ",")}
	// EDGED_TEST_BUILD_FLAGS adds go build flags for the binary the tests
	// run, e.g. -race to run the daemon's end-to-end tests under the race
	// detector.
	args = append(args, strings.Fields(os.Getenv("EDGED_TEST_BUILD_FLAGS"))...)
	build := exec.Command("go", append(args, "-o", edgedBin, ".")...)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building edged:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

func edged(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(edgedBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

// TestInferGolden runs every golden case whose operators are implemented
// through `edged infer` and compares the output files.
func TestInferGolden(t *testing.T) {
	for _, c := range testenv.GoldenCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			m, err := runtime.LoadModelFile(c.ModelPath)
			if err != nil {
				t.Fatal(err)
			}
			if testing.Short() {
				if it, err := runtime.NewInterpreter(m, nil); err == nil && it.MACs() > 1_000_000_000 {
					t.Skipf("%d MACs: too slow for -short", it.MACs())
				}
			}
			dir := t.TempDir()
			args := []string{"infer", "--model", c.ModelPath, "--output-dir", dir}
			for i := range c.Inputs {
				args = append(args, "--input", c.InputPath(i))
			}
			r := edged(t, args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			var summary inferSummary
			if err := json.Unmarshal([]byte(r.stdout), &summary); err != nil {
				t.Fatalf("summary is not JSON: %v\n%s", err, r.stdout)
			}
			if summary.Records != c.Frames || len(summary.Outputs) != len(c.Outputs) {
				t.Fatalf("summary: %d records, %d outputs; want %d, %d", summary.Records, len(summary.Outputs), c.Frames, len(c.Outputs))
			}
			for i, o := range c.Outputs {
				got, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("output_%d.bin", i)))
				if err != nil {
					t.Fatal(err)
				}
				want, err := os.ReadFile(c.OutputPath(i))
				if err != nil {
					t.Fatal(err)
				}
				if err := testenv.CompareOutput(o.DType, got, want, c.MaxAbsTolerance); err != nil {
					t.Errorf("output %d %q: %v", i, o.Name, err)
				}
				if s := summary.Outputs[i]; s.Name != o.Name || s.DType != o.DType {
					t.Errorf("summary output %d is %q %s, want %q %s", i, s.Name, s.DType, o.Name, o.DType)
				}
			}
		})
	}
}

// identityModel copies its int8[1,2] input to its output through a
// FULLY_CONNECTED with an identity matrix and no bias.
func identityModel(t *testing.T) string {
	t.Helper()
	m := &builder.Model{}
	q := func(tt builder.Tensor) builder.Tensor {
		tt.Scale, tt.ZeroPoint = []float32{1}, []int64{0}
		return tt
	}
	in := m.AddTensor(q(builder.Tensor{Name: "in", Type: tflite.TensorTypeINT8, Shape: []int{1, 2}}))
	w := m.AddTensor(q(builder.Tensor{Name: "identity", Type: tflite.TensorTypeINT8, Shape: []int{2, 2}, Data: builder.Int8Data([]int8{1, 0, 0, 1})}))
	out := m.AddTensor(q(builder.Tensor{Name: "out", Type: tflite.TensorTypeINT8, Shape: []int{1, 2}}))
	m.AddOp(builder.Op{Builtin: tflite.BuiltinOperatorFULLY_CONNECTED, Inputs: []int{in, w, -1}, Outputs: []int{out}})
	m.Inputs, m.Outputs = []int{in}, []int{out}
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "identity.tflite")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInferRecords(t *testing.T) {
	model := identityModel(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.bin")
	if err := os.WriteFile(in, []byte{1, 2, 3, 4, 0x80, 0x7f}, 0o644); err != nil {
		t.Fatal(err)
	}
	r := edged(t, "infer", "--model", model, "--input", in, "--output-dir", dir)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	got, err := os.ReadFile(filepath.Join(dir, "output_0.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, []byte{1, 2, 3, 4, 0x80, 0x7f}) {
		t.Errorf("3 records gave %v", got)
	}
	if !strings.Contains(r.stdout, `"records": 3`) {
		t.Errorf("summary does not report 3 records:\n%s", r.stdout)
	}

	// 5 bytes is not a whole number of 2-byte records.
	bad := filepath.Join(dir, "bad.bin")
	if err := os.WriteFile(bad, []byte{1, 2, 3, 4, 5}, 0o644); err != nil {
		t.Fatal(err)
	}
	r = edged(t, "infer", "--model", model, "--input", bad, "--output-dir", dir)
	if r.code != 2 || !strings.Contains(r.stderr, "takes 2 bytes per record") || !strings.Contains(r.stderr, "has 5 bytes, not a whole multiple") {
		t.Errorf("bad size: exit %d, %s", r.code, r.stderr)
	}
	r = edged(t, "infer", "--model", model, "--input", in, "--input", in, "--output-dir", dir)
	if r.code != 2 || !strings.Contains(r.stderr, "2 --input files given") {
		t.Errorf("extra input: exit %d, %s", r.code, r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"nosuch"}, {"infer"}, {"infer", "--model"}, {"bench", "--model", "x", "--runs", "0"}} {
		if r := edged(t, args...); r.code != 2 {
			t.Errorf("edged %v: exit %d, want 2 (%s)", args, r.code, r.stderr)
		}
	}
	r := edged(t, "infer", "--model", "/nonexistent.tflite", "--input", "x", "--output-dir", t.TempDir())
	if r.code != 1 || !strings.Contains(r.stderr, "/nonexistent.tflite") {
		t.Errorf("missing model: exit %d, %s", r.code, r.stderr)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.tflite")
	os.WriteFile(garbage, []byte("this is not a model at all"), 0o644)
	r = edged(t, "inspect", "--model", garbage)
	if r.code != 1 || !strings.Contains(r.stderr, "file identifier") {
		t.Errorf("garbage model: exit %d, %s", r.code, r.stderr)
	}
}

func TestInspectAndBench(t *testing.T) {
	model := identityModel(t)
	r := edged(t, "inspect", "--model", model, "--json")
	if r.code != 0 {
		t.Fatalf("inspect: exit %d: %s", r.code, r.stderr)
	}
	var rep inspectReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Operators) != 1 || rep.Operators[0].Op != "FULLY_CONNECTED" || rep.MACs != 4 || rep.ArenaBytes == 0 {
		t.Errorf("inspect report: %+v", rep)
	}
	if r := edged(t, "inspect", "--model", model); r.code != 0 || !strings.Contains(r.stdout, "FULLY_CONNECTED v1") {
		t.Errorf("inspect text: exit %d\n%s", r.code, r.stdout)
	}

	r = edged(t, "bench", "--model", model, "--runs", "50", "--json")
	if r.code != 0 {
		t.Fatalf("bench: exit %d: %s", r.code, r.stderr)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"median_us", "p90_us", "arena_bytes", "allocs_per_invoke", "macs"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("bench JSON lacks %q: %s", k, r.stdout)
		}
	}
	if raw["allocs_per_invoke"].(float64) != 0 || raw["macs"].(float64) != 4 {
		t.Errorf("bench: %s", r.stdout)
	}
}

func TestVersion(t *testing.T) {
	r := edged(t, "version")
	if r.code != 0 || !strings.Contains(r.stdout, "edged ") || !strings.Contains(r.stdout, "backends") {
		t.Errorf("version: exit %d\n%s", r.code, r.stdout)
	}
}
