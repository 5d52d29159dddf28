package testenv

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// GoldenTensor is one input or output of a golden case (case.json).
type GoldenTensor struct {
	Name        string          `json:"name"`
	DType       string          `json:"dtype"`
	Shape       []int           `json:"shape"`
	Scale       json.RawMessage `json:"scale"`
	ZeroPoint   json.RawMessage `json:"zero_point"`
	File        string          `json:"file"`
	TensorIndex int             `json:"tensor_index"`
	Frames      int             `json:"frames"`
}

// GoldenCase is one directory under golden/.
type GoldenCase struct {
	Name            string         `json:"-"`
	Dir             string         `json:"-"`
	ModelPath       string         `json:"-"`
	Model           string         `json:"model"`
	Inputs          []GoldenTensor `json:"inputs"`
	Outputs         []GoldenTensor `json:"outputs"`
	Frames          int            `json:"frames"`
	Reference       string         `json:"reference"`
	MaxAbsTolerance float64        `json:"max_abs_tolerance"`
	TFLMArenaBytes  int            `json:"tflm_arena_used_bytes"`
	// TFLMInvokeCPUMicros is TFLM's median thread-CPU time per invoke.
	TFLMInvokeCPUMicros float64 `json:"tflm_invoke_cpu_us_median"`
}

// InputPath returns the path of input i's bytes.
func (c *GoldenCase) InputPath(i int) string { return filepath.Join(c.Dir, c.Inputs[i].File) }

// OutputPath returns the path of output i's bytes.
func (c *GoldenCase) OutputPath(i int) string { return filepath.Join(c.Dir, c.Outputs[i].File) }

// GoldenCases reads every golden/<case>/case.json, sorted by name.
func GoldenCases(t testing.TB) []*GoldenCase {
	t.Helper()
	root := SharedDir(t)
	dirs, err := filepath.Glob(filepath.Join(root, "golden", "*", "case.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		missing(t, "no golden cases under %s", filepath.Join(root, "golden"))
	}
	sort.Strings(dirs)
	var cases []*GoldenCase
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		c := &GoldenCase{}
		if err := json.Unmarshal(b, c); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		c.Dir = filepath.Dir(p)
		c.Name = filepath.Base(c.Dir)
		c.ModelPath = filepath.Join(root, "models", c.Model)
		if c.Frames == 0 {
			c.Frames = 1
		}
		cases = append(cases, c)
	}
	return cases
}

// CompareOutput checks got against a golden output of the named dtype
// ("int8", "float32", ...): byte for byte when tol is 0, else within tol
// (quantization steps for integer types, absolute units for floats).
func CompareOutput(dtype string, got, want []byte, tol float64) error {
	size := dtypeSizes[dtype]
	if size == 0 {
		return fmt.Errorf("unknown dtype %q", dtype)
	}
	if len(got) != len(want) {
		return fmt.Errorf("%d bytes, want %d", len(got), len(want))
	}
	if bytes.Equal(got, want) {
		return nil
	}
	n := len(got) / size
	var diffs int
	var maxDiff float64
	first := -1
	for i := range n {
		if bytes.Equal(got[i*size:(i+1)*size], want[i*size:(i+1)*size]) {
			continue
		}
		d := math.Abs(element(dtype, got[i*size:]) - element(dtype, want[i*size:]))
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
	return fmt.Errorf("%d of %d elements differ (first at %d: got %v, want %v), max |diff| %g, tolerance %g",
		diffs, n, first, element(dtype, got[first*size:]), element(dtype, want[first*size:]), maxDiff, tol)
}

var dtypeSizes = map[string]int{"int8": 1, "uint8": 1, "bool": 1, "int16": 2, "int32": 4, "int64": 8, "float32": 4}

func element(dtype string, b []byte) float64 {
	switch dtype {
	case "int8":
		return float64(int8(b[0]))
	case "uint8", "bool":
		return float64(b[0])
	case "int16":
		return float64(int16(binary.LittleEndian.Uint16(b)))
	case "int32":
		return float64(int32(binary.LittleEndian.Uint32(b)))
	case "int64":
		return float64(int64(binary.LittleEndian.Uint64(b)))
	case "float32":
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
	}
	return math.NaN()
}
