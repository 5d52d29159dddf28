package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/edged/edged/internal/runtime"
)

func runInfer(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("infer", "--model M --input FILE [--input FILE]... --output-dir DIR [--reset-each] [--backend int8|armnn|auto]", stderr)
	modelPath := fs.String("model", "", "the .tflite model to run (required)")
	var inputs stringList
	fs.Var(&inputs, "input", "raw little-endian bytes of one input tensor, in subgraph input order; repeat per input.\nA file may hold K records back to back: the model then runs K times, state carried over")
	outDir := fs.String("output-dir", "", "directory for output_<i>.bin, one per subgraph output (required)")
	resetEach := fs.Bool("reset-each", false, "reset variable tensors (RNN state) before every record")
	topK := fs.Int("top", 5, "how many of each output's largest values to print")
	backend := fs.String("backend", runtime.BackendInt8, backendFlagHelp)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *modelPath == "" || *outDir == "" {
		return usagef("--model and --output-dir are required")
	}
	m, err := runtime.LoadModelFile(*modelPath)
	if err != nil {
		return err
	}
	sel, err := openBackend(m, *backend, nil, stderr, "edged infer")
	if err != nil {
		if _, ok := err.(*usageError); ok {
			return err
		}
		return fmt.Errorf("%s: %w", *modelPath, err)
	}
	it := sel.Backend
	defer it.Close()
	if len(inputs) != len(it.Inputs()) {
		return usagef("%d --input files given; %s has %d inputs: %s", len(inputs), *modelPath, len(it.Inputs()), describeTensors(it.Inputs()))
	}

	// Every input file must hold the same whole number of records.
	data := make([][]byte, len(inputs))
	records := -1
	for i, path := range inputs {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("input %d: %w", i, err)
		}
		t := it.Inputs()[i]
		size := t.ByteSize()
		if size == 0 || len(b) == 0 || len(b)%size != 0 {
			return usagef("input %d %s (%s%s) takes %d bytes per record; %s has %d bytes, not a whole multiple", i, quoted(t.Name), t.Type, runtime.FormatShape(t.Shape), size, path, len(b))
		}
		k := len(b) / size
		if records >= 0 && k != records {
			return usagef("input %d %s holds %d records, but input 0 holds %d; every input needs the same count", i, path, k, records)
		}
		records = k
		data[i] = b
	}

	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return err
	}
	files := make([]*os.File, len(it.Outputs()))
	writers := make([]*bufio.Writer, len(files))
	for i := range files {
		f, err := os.Create(filepath.Join(*outDir, fmt.Sprintf("output_%d.bin", i)))
		if err != nil {
			return err
		}
		defer f.Close()
		files[i], writers[i] = f, bufio.NewWriter(f)
	}

	var total time.Duration
	for r := range records {
		if *resetEach && r > 0 {
			it.Reset()
		}
		for i, t := range it.Inputs() {
			n := t.ByteSize()
			if err := t.CopyFrom(data[i][r*n : (r+1)*n]); err != nil {
				return err
			}
		}
		start := time.Now()
		if err := it.Invoke(); err != nil {
			return fmt.Errorf("record %d: %w", r, err)
		}
		total += time.Since(start)
		for i, t := range it.Outputs() {
			if _, err := writers[i].Write(t.Bytes()); err != nil {
				return err
			}
		}
	}
	for i := range files {
		if err := writers[i].Flush(); err != nil {
			return err
		}
		if err := files[i].Close(); err != nil {
			return err
		}
	}

	summary := inferSummary{Model: *modelPath, Backend: it.Name(), Fallback: sel.Fallback, Records: records, InvokeMicros: float64(total.Nanoseconds()) / 1e3 / float64(records)}
	for i, t := range it.Outputs() {
		summary.Outputs = append(summary.Outputs, describeOutput(i, t, filepath.Join(*outDir, fmt.Sprintf("output_%d.bin", i)), *topK))
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(summary)
}

type inferSummary struct {
	Model        string          `json:"model"`
	Backend      string          `json:"backend"`
	Fallback     string          `json:"fallback,omitempty"`
	Records      int             `json:"records"`
	InvokeMicros float64         `json:"invoke_us_mean"`
	Outputs      []outputSummary `json:"outputs"`
}

type outputSummary struct {
	Index     int      `json:"index"`
	Name      string   `json:"name"`
	DType     string   `json:"dtype"`
	Shape     []int    `json:"shape"`
	Scale     any      `json:"scale,omitempty"`
	ZeroPoint any      `json:"zero_point,omitempty"`
	File      string   `json:"file"`
	Top       []topVal `json:"top"`
	TopNote   string   `json:"top_note,omitempty"`
}

type topVal struct {
	Index       int     `json:"index"`
	Value       float64 `json:"value"`
	Dequantized float64 `json:"dequantized"`
}

func describeOutput(i int, t *runtime.Tensor, file string, k int) outputSummary {
	o := outputSummary{Index: i, Name: t.Name, DType: t.Type.String(), Shape: t.Shape, File: file}
	if q := t.Quant; q.Quantized() {
		if len(q.Scale) == 1 {
			o.Scale, o.ZeroPoint = q.Scale[0], q.ZeroPoint[0]
		} else {
			o.Scale, o.ZeroPoint = q.Scale, q.ZeroPoint
		}
	}
	n := t.NumElements()
	vals := make([]topVal, 0, n)
	for j := range n {
		v, ok := elementValue(t, j)
		if !ok {
			o.TopNote = fmt.Sprintf("values of type %s are not summarized", t.Type)
			return o
		}
		dq := v
		if q := t.Quant; q.Quantized() {
			c := 0
			if len(q.Scale) > 1 {
				c = channelOf(t, j)
			}
			dq = float64(q.Scale[c]) * (v - float64(q.ZeroPoint[c]))
		}
		vals = append(vals, topVal{Index: j, Value: v, Dequantized: dq})
	}
	sort.SliceStable(vals, func(a, b int) bool { return vals[a].Dequantized > vals[b].Dequantized })
	if len(vals) > k {
		vals = vals[:k]
	}
	o.Top = vals
	if n > 0 {
		o.TopNote = "largest values of the last record, by flat index"
	}
	return o
}

// channelOf is the index along the quantized dimension of flat element j.
func channelOf(t *runtime.Tensor, j int) int {
	qd := t.Quant.QuantizedDimension
	inner := 1
	for _, d := range t.Shape[qd+1:] {
		inner *= d
	}
	return (j / inner) % t.Shape[qd]
}

func elementValue(t *runtime.Tensor, j int) (float64, bool) {
	b := t.Bytes()
	switch t.Type {
	case runtime.Int8:
		return float64(int8(b[j])), true
	case runtime.Uint8, runtime.Bool:
		return float64(b[j]), true
	case runtime.Int16:
		return float64(int16(binary.LittleEndian.Uint16(b[2*j:]))), true
	case runtime.Int32:
		return float64(int32(binary.LittleEndian.Uint32(b[4*j:]))), true
	case runtime.Int64:
		return float64(int64(binary.LittleEndian.Uint64(b[8*j:]))), true
	case runtime.Float32:
		v := float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:])))
		if math.IsNaN(v) {
			return math.Inf(-1), true
		}
		return v, true
	}
	return 0, false
}

func describeTensors(ts []*runtime.Tensor) string {
	var s string
	for i, t := range ts {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%d %s %s%s (%d bytes)", i, quoted(t.Name), t.Type, runtime.FormatShape(t.Shape), t.ByteSize())
	}
	return s
}

func quoted(s string) string { return fmt.Sprintf("%q", s) }

var errNoModel = errors.New("--model is required")
