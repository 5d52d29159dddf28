package runtime_test

import (
	"encoding/binary"
	"math"
	"math/rand"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/flexbuffers"
	"github.com/edged/edged/internal/runtime/tflite"
	"github.com/edged/edged/internal/testenv"
)

// Shared helpers of the Signal kernel tests (kernel_signal_*_test.go).

// signalLE encodes values as little-endian tensor bytes.
func signalLE[T int8 | int16 | int32 | uint32 | uint64 | float32](v []T) []byte {
	b, err := binary.Append(nil, binary.LittleEndian, v)
	if err != nil {
		panic(err)
	}
	return b
}

// signalFromLE decodes little-endian tensor bytes.
func signalFromLE[T int8 | int16 | int32 | uint32 | uint64 | float32](b []byte) []T {
	var zero T
	out := make([]T, len(b)/binary.Size(zero))
	if _, err := binary.Decode(b, binary.LittleEndian, out); err != nil {
		panic(err)
	}
	return out
}

// signalT describes a tensor of a one-operator test model; with data it is
// a constant, else a model input (inputs) or output (outputs).
type signalT struct {
	typ   tflite.TensorType
	shape []int
	data  []byte
}

// signalModel builds a model of one Signal operator.
func signalModel(custom string, opts []byte, inputs, outputs []signalT) *builder.Model {
	m := &builder.Model{}
	var ins, outs []int
	for _, t := range inputs {
		i := m.AddTensor(builder.Tensor{Name: "in", Type: t.typ, Shape: t.shape, Data: t.data})
		ins = append(ins, i)
		if t.data == nil {
			m.Inputs = append(m.Inputs, i)
		}
	}
	for _, t := range outputs {
		i := m.AddTensor(builder.Tensor{Name: "out", Type: t.typ, Shape: t.shape})
		outs = append(outs, i)
		m.Outputs = append(m.Outputs, i)
	}
	m.AddOp(builder.Op{Builtin: tflite.BuiltinOperatorCUSTOM, Custom: custom, Inputs: ins, Outputs: outs, CustomOptions: opts})
	return m
}

// signalWantError checks that a model fails to prepare with an error
// mentioning want.
func signalWantError(t *testing.T, m *builder.Model, want string) {
	t.Helper()
	err := prepareError(t, m)
	if err == nil {
		t.Fatalf("prepared; want an error mentioning %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not mention %q", err, want)
	}
}

// signalAllocs checks that invoking it allocates nothing.
func signalAllocs(t *testing.T, it *runtime.Interpreter) {
	t.Helper()
	if err := it.Invoke(); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(20, func() {
		if err := it.Invoke(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Invoke allocates %v times", n)
	}
}

// signalOptionsFuzz prepares m with its custom options truncated at every
// length and with random bytes flipped: every variant must prepare or fail
// with an error, never panic.
func signalOptionsFuzz(t *testing.T, m *builder.Model) {
	t.Helper()
	op := &m.Ops[0]
	orig := op.CustomOptions
	defer func() { op.CustomOptions = orig }()
	try := func(b []byte) {
		op.CustomOptions = b
		raw, err := m.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		model, err := runtime.LoadModel(raw)
		if err != nil {
			return
		}
		if it, err := runtime.NewInterpreter(model, nil); err == nil {
			_ = it.Invoke() // values are arbitrary; it must not panic
		}
	}
	for n := range len(orig) {
		try(orig[:n])
		try(orig[n:])
	}
	rng := rand.New(rand.NewSource(1))
	for range 300 {
		b := slices.Clone(orig)
		for range 1 + rng.Intn(3) {
			b[rng.Intn(len(b))] = byte(rng.Intn(256))
		}
		try(b)
	}
}

// ---- SignalWindow ----

func windowModel(shift int64, inShape []int, weights []int16) *builder.Model {
	return signalModel("SignalWindow", flexbuffers.NewMap().Int("shift", shift).Bytes(),
		[]signalT{{typ: tflite.TensorTypeINT16, shape: inShape}, {typ: tflite.TensorTypeINT16, shape: []int{len(weights)}, data: signalLE(weights)}},
		[]signalT{{typ: tflite.TensorTypeINT16, shape: inShape}})
}

func TestSignalWindow(t *testing.T) {
	t.Run("hand-checked", func(t *testing.T) {
		// (x*w) >> 12: an arithmetic shift (rounding toward minus
		// infinity: 3000/4096 → 0, -3000/4096 → -1), then saturation
		// (32767² >> 12 = 262127, -32768*32767 >> 12 = -262136).
		in := []int16{4096, -4096, 3, -3, 32767, -32768, 32767, 1000}
		w := []int16{4096, 4096, 1000, 1000, 32767, 32767, -32768, 0}
		want := []int16{4096, -4096, 0, -1, 32767, -32768, -32768, 0}
		got := signalFromLE[int16](runModel(t, windowModel(12, []int{1, 8}, w), signalLE(in))[0])
		if !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("shift 0 and 15", func(t *testing.T) {
		in := []int16{-7, 7, 200}
		got := signalFromLE[int16](runModel(t, windowModel(0, []int{3}, []int16{3, -3, 200}), signalLE(in))[0])
		if want := []int16{-21, -21, 32767}; !slices.Equal(got, want) {
			t.Errorf("shift 0: got %v, want %v", got, want)
		}
		got = signalFromLE[int16](runModel(t, windowModel(15, []int{3}, []int16{32767, 32767, -16384}), signalLE(in))[0])
		// -7*32767 = -229369 >> 15 = -7 (floor of -6.9998); 7*32767>>15 = 6; 200*-16384>>15 = -100.
		if want := []int16{-7, 6, -100}; !slices.Equal(got, want) {
			t.Errorf("shift 15: got %v, want %v", got, want)
		}
	})
	t.Run("random against integer oracle", func(t *testing.T) {
		rng := rand.New(rand.NewSource(3))
		const n, rows = 48, 3 // the weights repeat over every row
		in := make([]int16, n*rows)
		w := make([]int16, n)
		for i := range in {
			in[i] = int16(rng.Intn(1 << 16))
		}
		for i := range w {
			w[i] = int16(rng.Intn(1 << 16))
		}
		for _, shift := range []int64{0, 7, 12, 31} {
			got := signalFromLE[int16](runModel(t, windowModel(shift, []int{rows, n}, w), signalLE(in))[0])
			for i, x := range in {
				v := math.Floor(float64(x) * float64(w[i%n]) / math.Exp2(float64(shift)))
				v = math.Max(math.MinInt16, math.Min(math.MaxInt16, v))
				if got[i] != int16(v) {
					t.Fatalf("shift %d element %d: %d*%d gives %d, want %v", shift, i, x, w[i%n], got[i], v)
				}
			}
		}
	})
	t.Run("no allocations", func(t *testing.T) {
		it, err := runtime.NewInterpreter(buildModel(t, windowModel(12, []int{1, 480}, make([]int16, 480))), nil)
		if err != nil {
			t.Fatal(err)
		}
		signalAllocs(t, it)
	})
}

func TestSignalWindowErrors(t *testing.T) {
	in := signalT{typ: tflite.TensorTypeINT16, shape: []int{1, 4}}
	w := signalT{typ: tflite.TensorTypeINT16, shape: []int{4}, data: make([]byte, 8)}
	out := in
	opts := flexbuffers.NewMap().Int("shift", 12).Bytes()
	for _, c := range []struct {
		name    string
		opts    []byte
		in, out []signalT
		want    string
	}{
		{"no options", nil, []signalT{in, w}, []signalT{out}, "custom options are missing"},
		{"not a map", []byte{1, 4, 1}, []signalT{in, w}, []signalT{out}, "not a map"},
		{"truncated", opts[:len(opts)-3], []signalT{in, w}, []signalT{out}, "custom options"},
		{"shift missing", flexbuffers.NewMap().Int("shaft", 1).Bytes(), []signalT{in, w}, []signalT{out}, `"shift" is missing`},
		{"shift a float", flexbuffers.NewMap().Float("shift", 12).Bytes(), []signalT{in, w}, []signalT{out}, "want an integer"},
		{"shift a string", flexbuffers.NewMap().String("shift", "12").Bytes(), []signalT{in, w}, []signalT{out}, "want an integer"},
		{"shift 32", flexbuffers.NewMap().Int("shift", 32).Bytes(), []signalT{in, w}, []signalT{out}, "want 0 to 31"},
		{"shift negative", flexbuffers.NewMap().Int("shift", -1).Bytes(), []signalT{in, w}, []signalT{out}, "want 0 to 31"},
		{"int8 input", opts, []signalT{{typ: tflite.TensorTypeINT8, shape: []int{1, 4}}, w}, []signalT{out}, "unsupported tensor type"},
		{"weights rank 2", opts, []signalT{in, {typ: tflite.TensorTypeINT16, shape: []int{1, 4}, data: make([]byte, 8)}}, []signalT{out}, "rank 1"},
		{"not whole windows", opts, []signalT{{typ: tflite.TensorTypeINT16, shape: []int{6}}, w}, []signalT{{typ: tflite.TensorTypeINT16, shape: []int{6}}}, "whole number of windows"},
		{"output rank", opts, []signalT{in, w}, []signalT{{typ: tflite.TensorTypeINT16, shape: []int{4}}}, "rank 2"},
		{"output shape", opts, []signalT{in, w}, []signalT{{typ: tflite.TensorTypeINT16, shape: []int{1, 5}}}, "computed output shape"},
		{"one input", opts, []signalT{in}, []signalT{out}, "has 1 inputs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			signalWantError(t, signalModel("SignalWindow", c.opts, c.in, c.out), c.want)
		})
	}
	t.Run("fuzzed options", func(t *testing.T) {
		signalOptionsFuzz(t, signalModel("SignalWindow", opts, []signalT{in, w}, []signalT{out}))
	})
}

// ---- audio_preprocessor_int8.tflite, end to end ----

// signalPipeline runs a model of Signal operators whose other operators
// belong to other kernel families: each run of consecutive operators edged
// runs here (the Signal ops and RESHAPE) becomes a model of its own, built
// from the real model's tensors, constants and options, with an interpreter
// that keeps its state across frames; the builtin "glue" operators between
// them (CAST, STRIDED_SLICE, CONCATENATION and int32 MUL, ADD, DIV, MINIMUM,
// MAXIMUM) are computed by the test itself.
type signalPipeline struct {
	graph  *runtime.Subgraph
	stages []signalStage
	vals   map[int][]byte // tensor index → contents for the current frame
}

type signalStage struct {
	ops             []int
	it              *runtime.Interpreter // nil: glue, computed in Go
	inputs, outputs []int                // tensor indices in the real model
}

func signalRunsHere(op runtime.OpCode) bool {
	return strings.HasPrefix(op.Custom, "Signal") || op.Builtin == tflite.BuiltinOperatorRESHAPE
}

func newSignalPipeline(t *testing.T, path string) *signalPipeline {
	t.Helper()
	m, err := runtime.LoadModelFile(path)
	if err != nil {
		t.Fatal(err)
	}
	g := m.Subgraphs[0]
	p := &signalPipeline{graph: g, vals: map[int][]byte{}}
	for i := 0; i < len(g.Operators); {
		here := signalRunsHere(g.Operators[i].Code)
		j := i
		for j < len(g.Operators) && signalRunsHere(g.Operators[j].Code) == here {
			j++
		}
		st := signalStage{}
		for k := i; k < j; k++ {
			st.ops = append(st.ops, k)
		}
		if here {
			p.buildStage(t, &st, j)
		}
		p.stages = append(p.stages, st)
		i = j
	}
	return p
}

// buildStage makes the model of operators st.ops; operators from next on
// (and the model's outputs) say which results leave the stage.
func (p *signalPipeline) buildStage(t *testing.T, st *signalStage, next int) {
	g := p.graph
	produced := map[int]bool{}
	for _, o := range st.ops {
		for _, out := range g.Operators[o].Outputs {
			produced[out] = true
		}
	}
	usedLater := map[int]bool{}
	for _, op := range g.Operators[next:] {
		for _, in := range op.Inputs {
			usedLater[in] = true
		}
	}
	for _, out := range g.Outputs {
		usedLater[out] = true
	}
	b := &builder.Model{}
	index := map[int]int{}
	tensor := func(orig int) int {
		if i, ok := index[orig]; ok {
			return i
		}
		ti := &g.Tensors[orig]
		i := b.AddTensor(builder.Tensor{Name: ti.Name, Type: tflite.TensorType(ti.Type), Shape: ti.Shape, Data: ti.Data})
		index[orig] = i
		if ti.Data == nil && !produced[orig] {
			st.inputs = append(st.inputs, orig)
			b.Inputs = append(b.Inputs, i)
		}
		return i
	}
	for _, o := range st.ops {
		op := &g.Operators[o]
		bop := builder.Op{Builtin: op.Code.Builtin, Custom: op.Code.Custom, Version: op.Code.Version, CustomOptions: op.CustomOptions}
		for _, in := range op.Inputs {
			bop.Inputs = append(bop.Inputs, tensor(in))
		}
		for _, out := range op.Outputs {
			bop.Outputs = append(bop.Outputs, tensor(out))
			if usedLater[out] {
				st.outputs = append(st.outputs, out)
				b.Outputs = append(b.Outputs, index[out])
			}
		}
		b.AddOp(bop)
	}
	it, err := runtime.NewInterpreter(buildModel(t, b), nil)
	if err != nil {
		t.Fatalf("operators %v: %v", st.ops, err)
	}
	st.it = it
}

// frame runs one input record through the model and returns the output.
func (p *signalPipeline) frame(t *testing.T, in []byte) []byte {
	t.Helper()
	g := p.graph
	p.vals[g.Inputs[0]] = in
	for _, st := range p.stages {
		if st.it == nil {
			for _, o := range st.ops {
				p.glue(t, &g.Operators[o])
			}
			continue
		}
		for k, idx := range st.inputs {
			if err := st.it.Inputs()[k].CopyFrom(p.vals[idx]); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.it.Invoke(); err != nil {
			t.Fatal(err)
		}
		for k, idx := range st.outputs {
			p.vals[idx] = slices.Clone(st.it.Outputs()[k].Bytes())
		}
	}
	return p.vals[g.Outputs[0]]
}

func (p *signalPipeline) reset() {
	for _, st := range p.stages {
		if st.it != nil {
			st.it.Reset()
		}
	}
}

// signalInts decodes a tensor's contents of an integer type.
func signalInts(typ runtime.DType, b []byte) []int64 {
	var out []int64
	switch typ {
	case runtime.Int8:
		for _, x := range signalFromLE[int8](b) {
			out = append(out, int64(x))
		}
	case runtime.Int16:
		for _, x := range signalFromLE[int16](b) {
			out = append(out, int64(x))
		}
	case runtime.Int32:
		for _, x := range signalFromLE[int32](b) {
			out = append(out, int64(x))
		}
	case runtime.Uint32:
		for _, x := range signalFromLE[uint32](b) {
			out = append(out, int64(x))
		}
	default:
		panic("signalInts: type " + typ.String())
	}
	return out
}

// signalEncodeInts converts integers to a type, wrapping as a C cast does.
func signalEncodeInts(typ runtime.DType, v []int64) []byte {
	switch typ {
	case runtime.Int8:
		o := make([]int8, len(v))
		for i, x := range v {
			o[i] = int8(x)
		}
		return signalLE(o)
	case runtime.Int16:
		o := make([]int16, len(v))
		for i, x := range v {
			o[i] = int16(x)
		}
		return signalLE(o)
	case runtime.Int32:
		o := make([]int32, len(v))
		for i, x := range v {
			o[i] = int32(x)
		}
		return signalLE(o)
	case runtime.Uint32:
		o := make([]uint32, len(v))
		for i, x := range v {
			o[i] = uint32(x)
		}
		return signalLE(o)
	}
	panic("signalEncodeInts: type " + typ.String())
}

// glue computes one builtin operator of the 1-D integer kinds the audio
// preprocessor uses between its Signal stages.
func (p *signalPipeline) glue(t *testing.T, op *runtime.Operator) {
	t.Helper()
	g := p.graph
	val := func(i int) []int64 {
		ti := &g.Tensors[op.Inputs[i]]
		b := ti.Data
		if b == nil {
			b = p.vals[op.Inputs[i]]
		}
		return signalInts(ti.Type, b)
	}
	out := &g.Tensors[op.Outputs[0]]
	var res []int64
	switch op.Code.Builtin {
	case tflite.BuiltinOperatorCAST:
		res = val(0)
	case tflite.BuiltinOperatorSTRIDED_SLICE:
		x, begin, end, stride := val(0), val(1), val(2), val(3)
		if len(begin) != 1 || stride[0] != 1 {
			t.Fatalf("operator %d: only 1-D unit-stride slices are computed here", op.Index)
		}
		res = x[begin[0]:end[0]]
	case tflite.BuiltinOperatorCONCATENATION:
		for i := range op.Inputs {
			res = append(res, val(i)...)
		}
	case tflite.BuiltinOperatorMUL, tflite.BuiltinOperatorADD, tflite.BuiltinOperatorDIV,
		tflite.BuiltinOperatorMINIMUM, tflite.BuiltinOperatorMAXIMUM:
		x, y := val(0), val(1)
		if out.Type != runtime.Int32 || len(y) != 1 {
			t.Fatalf("operator %d: only int32 with a scalar operand is computed here", op.Index)
		}
		for _, a := range x {
			b := y[0]
			var r int64
			switch op.Code.Builtin {
			case tflite.BuiltinOperatorMUL:
				r = int64(int32(a * b))
			case tflite.BuiltinOperatorADD:
				r = int64(int32(a + b))
			case tflite.BuiltinOperatorDIV:
				r = a / b // truncates, as C does
			case tflite.BuiltinOperatorMINIMUM:
				r = min(a, b)
			default:
				r = max(a, b)
			}
			res = append(res, r)
		}
	default:
		t.Fatalf("operator %d %s is not computed here", op.Index, op.Code)
	}
	if len(res) != runtime.NumElements(out.Shape) {
		t.Fatalf("operator %d %s: %d results for output shape %v", op.Index, op.Code, len(res), out.Shape)
	}
	p.vals[op.Outputs[0]] = signalEncodeInts(out.Type, res)
}

func audioPreprocessorCases(t *testing.T) []*testenv.GoldenCase {
	var cases []*testenv.GoldenCase
	for _, c := range testenv.GoldenCases(t) {
		if c.Model == "audio_preprocessor_int8.tflite" {
			cases = append(cases, c)
		}
	}
	if len(cases) == 0 {
		t.Fatal("no golden cases of audio_preprocessor_int8.tflite")
	}
	return cases
}

// TestSignalAudioPreprocessorGolden runs every golden case of micro_speech's
// audio preprocessor through the Signal kernels (stream cases: one pipeline,
// state carried across the frames) and compares byte for byte.
func TestSignalAudioPreprocessorGolden(t *testing.T) {
	for _, c := range audioPreprocessorCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			p := newSignalPipeline(t, c.ModelPath)
			in, err := os.ReadFile(c.InputPath(0))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(c.OutputPath(0))
			if err != nil {
				t.Fatal(err)
			}
			n := len(in) / c.Frames
			var got []byte
			for f := range c.Frames {
				got = append(got, p.frame(t, in[f*n:(f+1)*n])...)
			}
			if err := testenv.CompareOutput("int8", got, want, 0); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestSignalAudioPreprocessorReset checks that Reset clears the Signal
// state (the spectral subtraction noise estimate): after it, the same frames
// give the same outputs as from a fresh interpreter; and that no stage
// allocates per invoke.
func TestSignalAudioPreprocessorReset(t *testing.T) {
	c := audioPreprocessorCases(t)[0]
	for _, cc := range audioPreprocessorCases(t) {
		if cc.Frames > 1 {
			c = cc
			break
		}
	}
	in, err := os.ReadFile(c.InputPath(0))
	if err != nil {
		t.Fatal(err)
	}
	n := len(in) / c.Frames
	p := newSignalPipeline(t, c.ModelPath)
	run := func() (out []byte) {
		for f := range 3 {
			out = append(out, p.frame(t, in[f*n:(f+1)*n])...)
		}
		return out
	}
	first := run()
	second := run()
	if slices.Equal(first, second) {
		t.Fatal("state carried over three frames changes nothing; the test cannot see a reset")
	}
	p.reset()
	if again := run(); !slices.Equal(first, again) {
		t.Errorf("after Reset: %v, want %v", again, first)
	}
	for _, st := range p.stages {
		if st.it != nil {
			signalAllocs(t, st.it)
		}
	}
}
