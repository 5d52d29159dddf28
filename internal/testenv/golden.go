package testenv

import (
	"encoding/json"
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
