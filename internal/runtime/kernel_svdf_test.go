package runtime_test

import (
	"bytes"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

// svdfSpec describes an SVDF test model by its real parameters;
// svdfSpec.model quantizes them as a converter would.
type svdfSpec struct {
	typ                                  runtime.DType // input: Float32 or Int8
	stateType                            runtime.DType // int8 input: Int16 or Int8 time weights and state
	batch, inputs, filters, memory, rank int
	act                                  tflite.ActivationFunctionType
	noBias                               bool // bias slot omitted
	wf, wt, b                            []float32
	inScale, stateScale, outScale        float32
	inZP, stateZP, outZP                 int64
}

func (s *svdfSpec) units() int { return s.filters / s.rank }

// svdfQuant is a spec's quantized weights and bias.
type svdfQuant struct {
	wfScale, wtScale, biasScale float32
	wf, wt, b                   []int64
}

func svdfQuantize(v []float32, qmax float64) (float32, []int64) {
	var maxAbs float64
	for _, x := range v {
		maxAbs = math.Max(maxAbs, math.Abs(float64(x)))
	}
	if maxAbs == 0 {
		maxAbs = 1
	}
	scale := float32(maxAbs / qmax)
	q := make([]int64, len(v))
	for i, x := range v {
		q[i] = max(-int64(qmax), min(int64(qmax), int64(math.Round(float64(x)/float64(scale)))))
	}
	return scale, q
}

func (s *svdfSpec) quant() *svdfQuant {
	q := &svdfQuant{}
	q.wfScale, q.wf = svdfQuantize(s.wf, 127)
	wtMax := 127.0
	if s.stateType == runtime.Int16 {
		wtMax = 32767
	}
	q.wtScale, q.wt = svdfQuantize(s.wt, wtMax)
	q.biasScale = s.stateScale * q.wtScale
	q.b = make([]int64, len(s.b))
	for i, x := range s.b {
		q.b[i] = int64(math.Round(float64(x) / float64(q.biasScale)))
	}
	return q
}

// Tensor indices in svdfSpec.model.
const (
	svdfStateIndex = 4
)

// model builds a one-operator model: tensors input, feature weights, time
// weights, bias (always added, used unless noBias), state, output.
func (s *svdfSpec) model() *builder.Model {
	m := &builder.Model{}
	q := s.quant()
	quantized := s.typ != runtime.Float32
	add := func(t builder.Tensor, scale float32, zp int64) int {
		if quantized {
			t.Scale, t.ZeroPoint = []float32{scale}, []int64{zp}
		}
		return m.AddTensor(t)
	}
	f32 := tflite.TensorTypeFLOAT32
	var in, wf, wt, bias, state, out int
	if quantized {
		st := tflite.TensorType(s.stateType)
		in = add(builder.Tensor{Name: "input", Type: tflite.TensorTypeINT8, Shape: []int{s.batch, s.inputs}}, s.inScale, s.inZP)
		wf = add(builder.Tensor{Name: "weights_feature", Type: tflite.TensorTypeINT8, Shape: []int{s.filters, s.inputs}, Data: encodeInts(runtime.Int8, q.wf)}, q.wfScale, 0)
		wt = add(builder.Tensor{Name: "weights_time", Type: st, Shape: []int{s.filters, s.memory}, Data: encodeInts(s.stateType, q.wt)}, q.wtScale, 0)
		bias = add(builder.Tensor{Name: "bias", Type: tflite.TensorTypeINT32, Shape: []int{s.units()}, Data: encodeInts(runtime.Int32, q.b)}, q.biasScale, 0)
		state = add(builder.Tensor{Name: "state", Type: st, Shape: []int{s.batch, s.memory * s.filters}, Variable: true}, s.stateScale, s.stateZP)
		out = add(builder.Tensor{Name: "output", Type: tflite.TensorTypeINT8, Shape: []int{s.batch, s.units()}}, s.outScale, s.outZP)
	} else {
		in = add(builder.Tensor{Name: "input", Type: f32, Shape: []int{s.batch, s.inputs}}, 0, 0)
		wf = add(builder.Tensor{Name: "weights_feature", Type: f32, Shape: []int{s.filters, s.inputs}, Data: builder.Float32Data(s.wf)}, 0, 0)
		wt = add(builder.Tensor{Name: "weights_time", Type: f32, Shape: []int{s.filters, s.memory}, Data: builder.Float32Data(s.wt)}, 0, 0)
		bias = add(builder.Tensor{Name: "bias", Type: f32, Shape: []int{s.units()}, Data: builder.Float32Data(s.b)}, 0, 0)
		state = add(builder.Tensor{Name: "state", Type: f32, Shape: []int{s.batch, s.memory * s.filters}, Variable: true}, 0, 0)
		out = add(builder.Tensor{Name: "output", Type: f32, Shape: []int{s.batch, s.units()}}, 0, 0)
	}
	if s.noBias {
		bias = -1
	}
	m.AddOp(builder.Op{
		Builtin: tflite.BuiltinOperatorSVDF,
		Inputs:  []int{in, wf, wt, bias, state},
		Outputs: []int{out},
		Options: &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsSVDFOptions, Value: &tflite.SVDFOptionsT{
			Rank: int32(s.rank), FusedActivationFunction: s.act,
		}},
	})
	m.Inputs, m.Outputs = []int{in}, []int{out}
	return m
}

// randomSVDFSpec makes a spec with weights in ±1, bias in ±0.5, inputs over
// [-1, 1], an int16 state of scale 2^-10 (or an int8 state over ±4) and an
// output over ±8.
func randomSVDFSpec(rng *rand.Rand, typ, stateType runtime.DType, batch, inputs, filters, memory, rank int) *svdfSpec {
	s := &svdfSpec{typ: typ, stateType: stateType, batch: batch, inputs: inputs, filters: filters, memory: memory, rank: rank}
	uniform := func(n int, a float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32((rng.Float64()*2 - 1) * a)
		}
		return v
	}
	s.wf = uniform(filters*inputs, 1/math.Sqrt(float64(inputs)))
	s.wt = uniform(filters*memory, 1/math.Sqrt(float64(memory)))
	s.b = uniform(filters/rank, 0.5)
	s.inScale, s.inZP = 2.0/255, 3
	s.outScale, s.outZP = 16.0/255, -2
	switch stateType {
	case runtime.Int16:
		s.stateScale = 1.0 / 1024
	case runtime.Int8:
		s.stateScale, s.stateZP = 8.0/255, -9
	}
	return s
}

func (s *svdfSpec) randomInput(rng *rand.Rand) []float32 {
	x := make([]float32, s.batch*s.inputs)
	for i := range x {
		x[i] = float32(rng.Float64()*2 - 1)
	}
	return x
}

func (s *svdfSpec) inputBytes(x []float32) []byte {
	if s.typ == runtime.Float32 {
		return builder.Float32Data(x)
	}
	v := make([]int64, len(x))
	for i, f := range x {
		v[i] = max(-128, min(127, int64(math.Round(float64(f)/float64(s.inScale)))+s.inZP))
	}
	return encodeInts(runtime.Int8, v)
}

// svdfActivationReal is the fused activation applied to a float SVDF's
// output, by definition.
func svdfActivationReal(act tflite.ActivationFunctionType, x float64) float64 {
	switch act {
	case tflite.ActivationFunctionTypeRELU:
		return math.Max(0, x)
	case tflite.ActivationFunctionTypeRELU6:
		return math.Max(0, math.Min(6, x))
	case tflite.ActivationFunctionTypeRELU_N1_TO_1:
		return math.Max(-1, math.Min(1, x))
	case tflite.ActivationFunctionTypeTANH:
		return math.Tanh(x)
	case tflite.ActivationFunctionTypeSIGN_BIT:
		if math.Signbit(x) {
			return 1
		}
		return 0
	}
	return x
}

// realSVDFWeights returns the weights and bias the kernel computes with.
func (s *svdfSpec) realWeights() (wf, wt, b []float64) {
	q := s.quant()
	conv := func(f []float32, iv []int64, scale float32) []float64 {
		out := make([]float64, len(f))
		for i := range f {
			out[i] = float64(f[i])
			if s.typ != runtime.Float32 {
				out[i] = float64(iv[i]) * float64(scale)
			}
		}
		return out
	}
	wf, wt, b = conv(s.wf, q.wf, q.wfScale), conv(s.wt, q.wt, q.wtScale), conv(s.b, q.b, q.biasScale)
	if s.noBias {
		b = make([]float64, s.units())
	}
	return wf, wt, b
}

// TestSVDFOracle checks every invoke against the definition, started from
// the kernel's own state: the state shifts one frame (exactly), the newest
// frame is W_feature·x, and the output is act(bias + Σ W_time·state) over
// each unit's rank filters.
//
// Tolerances: the integer kernel forms both the newest state entry and the
// output as one exact integer sum requantized once (TFLite's double
// rounding with a 31-bit multiplier: within 1 step), so each is within 1
// quantization step of the real value computed from the same integers
// (clamped to the type's range); float sums of a few terms are within 1e-5.
// As in TFLM, the integer path applies no fused activation.
func TestSVDFOracle(t *testing.T) {
	type config struct {
		name                                 string
		batch, inputs, filters, memory, rank int
		act                                  tflite.ActivationFunctionType
		noBias                               bool
	}
	configs := []config{
		{name: "rank1", batch: 1, inputs: 5, filters: 4, memory: 3, rank: 1},
		{name: "rank2_batch2", batch: 2, inputs: 4, filters: 6, memory: 4, rank: 2},
		{name: "rank3_batch3", batch: 3, inputs: 3, filters: 6, memory: 2, rank: 3},
		{name: "memory1", batch: 2, inputs: 3, filters: 2, memory: 1, rank: 1},
		{name: "no_bias", batch: 1, inputs: 4, filters: 4, memory: 5, rank: 2, noBias: true},
		{name: "relu", batch: 2, inputs: 4, filters: 4, memory: 3, rank: 1, act: tflite.ActivationFunctionTypeRELU},
		{name: "relu6", batch: 1, inputs: 4, filters: 4, memory: 3, rank: 2, act: tflite.ActivationFunctionTypeRELU6},
		{name: "relu_n1_to_1", batch: 1, inputs: 4, filters: 4, memory: 3, rank: 1, act: tflite.ActivationFunctionTypeRELU_N1_TO_1},
		{name: "tanh", batch: 1, inputs: 4, filters: 4, memory: 3, rank: 1, act: tflite.ActivationFunctionTypeTANH},
		{name: "sign_bit", batch: 2, inputs: 4, filters: 4, memory: 3, rank: 1, act: tflite.ActivationFunctionTypeSIGN_BIT},
	}
	rng := rand.New(rand.NewSource(17))
	for _, types := range [][2]runtime.DType{{runtime.Float32, runtime.Float32}, {runtime.Int8, runtime.Int16}, {runtime.Int8, runtime.Int8}} {
		for _, cfg := range configs {
			name := types[0].String() + "/" + cfg.name
			if types[0] == runtime.Int8 {
				name = "int8_" + types[1].String() + "_state/" + cfg.name
			}
			t.Run(name, func(t *testing.T) {
				s := randomSVDFSpec(rng, types[0], types[1], cfg.batch, cfg.inputs, cfg.filters, cfg.memory, cfg.rank)
				s.act, s.noBias = cfg.act, cfg.noBias
				runSVDFOracle(t, rng, s, 6)
			})
		}
	}
}

func runSVDFOracle(t *testing.T, rng *rand.Rand, s *svdfSpec, n int) {
	t.Helper()
	it, err := runtime.NewInterpreter(buildModel(t, s.model()), nil)
	if err != nil {
		t.Fatal(err)
	}
	wf, wt, bias := s.realWeights()
	state := it.Tensor(svdfStateIndex)
	quantized := s.typ != runtime.Float32
	stLo, stHi := dtypeRange(s.stateType)
	// Real values to quantization steps (the unit of the tolerance).
	stateSteps := func(v float64) float64 {
		if !quantized {
			return v
		}
		return math.Max(float64(stLo), math.Min(float64(stHi), v/float64(s.stateScale)+float64(s.stateZP)))
	}
	outSteps := func(v float64) float64 {
		if !quantized {
			return v
		}
		return math.Max(-128, math.Min(127, v/float64(s.outScale)+float64(s.outZP)))
	}
	tol := 1.0
	if !quantized {
		tol = 1e-5
	}
	nM, nF, nU := s.memory, s.filters, s.units()
	for frame := range n {
		before := decodeValues(s.stateType, state.Bytes())
		in := s.inputBytes(s.randomInput(rng))
		if err := it.Inputs()[0].CopyFrom(in); err != nil {
			t.Fatal(err)
		}
		x := decodeValues(s.typ, in)
		if quantized {
			for i := range x {
				x[i] = (x[i] - float64(s.inZP)) * float64(s.inScale)
			}
		}
		if err := it.Invoke(); err != nil {
			t.Fatal(err)
		}
		after := decodeValues(s.stateType, state.Bytes())
		out := decodeValues(s.typ, it.Outputs()[0].Bytes())
		for b := range s.batch {
			for f := range nF {
				row := (b*nF + f) * nM
				for j := range nM - 1 {
					if after[row+j] != before[row+j+1] {
						t.Fatalf("frame %d batch %d filter %d: state entry %d is %v, want the previous entry %d's %v", frame, b, f, j, after[row+j], j+1, before[row+j+1])
					}
				}
				var dot float64
				for c := range s.inputs {
					dot += wf[f*s.inputs+c] * x[b*s.inputs+c]
				}
				if d := math.Abs(after[row+nM-1] - stateSteps(dot)); d > tol {
					t.Errorf("frame %d batch %d filter %d: newest state %v, want %v (|diff| %.3g)", frame, b, f, after[row+nM-1], stateSteps(dot), d)
				}
			}
			for u := range nU {
				acc := bias[u]
				for r := range s.rank {
					f := u*s.rank + r
					for j := range nM {
						v := after[(b*nF+f)*nM+j]
						if quantized {
							v = (v - float64(s.stateZP)) * float64(s.stateScale)
						}
						acc += wt[f*nM+j] * v
					}
				}
				if !quantized {
					acc = svdfActivationReal(s.act, acc)
				}
				if d := math.Abs(out[b*nU+u] - outSteps(acc)); d > tol {
					t.Errorf("frame %d batch %d unit %d: output %v, want %v (|diff| %.3g)", frame, b, u, out[b*nU+u], outSteps(acc), d)
				}
			}
		}
	}
}

// svdfExactModel: int8 input of scale 2^-7, feature weights of scale 2^-7,
// an int16 state of scale 2^-14 (so input × feature weights requantize by
// exactly 1), time weights of scale 2^-10, bias of scale 2^-24 and an
// output of scale 2^-8, zero point -5 (state × time weights requantize by
// 2^-16). Two inputs, two filters of rank 2 (one unit), memory 3.
func svdfExactModel() *builder.Model {
	m := &builder.Model{}
	in := m.AddTensor(builder.Tensor{Name: "x", Type: tflite.TensorTypeINT8, Shape: []int{1, 2}, Scale: []float32{1.0 / 128}, ZeroPoint: []int64{0}})
	wf := m.AddTensor(builder.Tensor{Name: "wf", Type: tflite.TensorTypeINT8, Shape: []int{2, 2},
		Data: encodeInts(runtime.Int8, []int64{64, -32, 16, 8}), Scale: []float32{1.0 / 128}, ZeroPoint: []int64{0}})
	wt := m.AddTensor(builder.Tensor{Name: "wt", Type: tflite.TensorTypeINT16, Shape: []int{2, 3},
		Data: encodeInts(runtime.Int16, []int64{1024, 512, 256, -1024, 0, 2048}), Scale: []float32{1.0 / 1024}, ZeroPoint: []int64{0}})
	bias := m.AddTensor(builder.Tensor{Name: "b", Type: tflite.TensorTypeINT32, Shape: []int{1},
		Data: encodeInts(runtime.Int32, []int64{-4800}), Scale: []float32{1.0 / (1 << 24)}, ZeroPoint: []int64{0}})
	state := m.AddTensor(builder.Tensor{Name: "state", Type: tflite.TensorTypeINT16, Shape: []int{1, 6}, Variable: true, Scale: []float32{1.0 / 16384}, ZeroPoint: []int64{0}})
	out := m.AddTensor(builder.Tensor{Name: "y", Type: tflite.TensorTypeINT8, Shape: []int{1, 1}, Scale: []float32{1.0 / 256}, ZeroPoint: []int64{-5}})
	m.AddOp(builder.Op{Builtin: tflite.BuiltinOperatorSVDF, Inputs: []int{in, wf, wt, bias, state}, Outputs: []int{out},
		Options: &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsSVDFOptions, Value: &tflite.SVDFOptionsT{Rank: 2}}})
	m.Inputs, m.Outputs = []int{in}, []int{out}
	return m
}

// TestSVDFExact follows three frames of svdfExactModel by hand. Feature
// weights (raw) [64 -32; 16 8], time weights [1024 512 256; -1024 0 2048],
// bias -4800; the output requantization 2^-16 is multiplier 2^30, shift -15:
// a rounding halving, then a rounding shift by 15.
//
// Frame 1, x = (100, 50): newest state entries 64·100 - 32·50 = 4800 and
// 16·100 + 8·50 = 2000; state [0 0 4800 | 0 0 2000]. Sum 256·4800 +
// 2048·2000 - 4800 = 5320000 → 2660000 → 81.18 → 81, plus -5: 76.
// Frame 2, x = (-100, 20): new entries -7040 and -1440, state
// [0 4800 -7040 | 0 2000 -1440]; 512·4800 + 256·(-7040) + 2048·(-1440) -
// 4800 = -2298560 → -1149280 → -35.07 → -35: -40.
// Frame 3, x = (127, -128): new entries 12224 and 1008, state
// [4800 -7040 12224 | 2000 -1440 1008]; sum 4451648 → 2225824 → 67.93 → 68:
// 63.
func TestSVDFExact(t *testing.T) {
	it, err := runtime.NewInterpreter(buildModel(t, svdfExactModel()), nil)
	if err != nil {
		t.Fatal(err)
	}
	frames := [][]byte{{100, 50}, {156, 20}, {127, 128}} // int8 bytes of (100, 50), (-100, 20), (127, -128)
	wantOut := []int8{76, -40, 63}
	wantState := [][]int16{{0, 0, 4800, 0, 0, 2000}, {0, 4800, -7040, 0, 2000, -1440}, {4800, -7040, 12224, 2000, -1440, 1008}}
	for round := range 2 {
		for f, x := range frames {
			got := int8(invoke(t, it, x)[0][0])
			if got != wantOut[f] {
				t.Fatalf("round %d frame %d: output %d, want %d", round, f, got, wantOut[f])
			}
			if st := it.Tensor(svdfStateIndex).Int16s(); fmt.Sprint(st) != fmt.Sprint(wantState[f]) {
				t.Fatalf("round %d frame %d: state %v, want %v", round, f, st, wantState[f])
			}
		}
		// Reset clears the state: the frames give the same outputs again.
		it.Reset()
	}
}

// TestSVDFStateReset checks Reset fills an int8 state with its zero point
// and a float state with zeros, and that state carries across invokes: the
// same frame gives different outputs before and after other frames.
func TestSVDFStateReset(t *testing.T) {
	rng := rand.New(rand.NewSource(23))
	for _, types := range [][2]runtime.DType{{runtime.Float32, runtime.Float32}, {runtime.Int8, runtime.Int16}, {runtime.Int8, runtime.Int8}} {
		t.Run(types[1].String(), func(t *testing.T) {
			s := randomSVDFSpec(rng, types[0], types[1], 2, 4, 4, 3, 2)
			it, err := runtime.NewInterpreter(buildModel(t, s.model()), nil)
			if err != nil {
				t.Fatal(err)
			}
			x := s.inputBytes(s.randomInput(rng))
			first := invoke(t, it, x)[0]
			again := invoke(t, it, x)[0]
			if bytes.Equal(first, again) {
				t.Fatalf("the second invoke of the same frame gives the same output % x: no state carried", first)
			}
			it.Reset()
			for _, v := range decodeValues(s.stateType, it.Tensor(svdfStateIndex).Bytes()) {
				if v != float64(s.stateZP) {
					t.Fatalf("state after Reset holds %v, want %d", v, s.stateZP)
				}
			}
			if got := invoke(t, it, x)[0]; !bytes.Equal(got, first) {
				t.Fatalf("after Reset the frame gives % x, first time % x", got, first)
			}
		})
	}
}

func TestSVDFMACs(t *testing.T) {
	s := randomSVDFSpec(rand.New(rand.NewSource(1)), runtime.Int8, runtime.Int16, 2, 5, 6, 4, 3)
	it, err := runtime.NewInterpreter(buildModel(t, s.model()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := it.MACs(), int64(2*6*(5+4)); got != want {
		t.Fatalf("MACs %d, want %d (batch × filters × (inputs + memory))", got, want)
	}
}

func TestSVDFZeroAllocs(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for _, types := range [][2]runtime.DType{{runtime.Float32, runtime.Float32}, {runtime.Int8, runtime.Int16}, {runtime.Int8, runtime.Int8}} {
		t.Run(types[1].String(), func(t *testing.T) {
			s := randomSVDFSpec(rng, types[0], types[1], 2, 5, 6, 4, 2)
			s.act = tflite.ActivationFunctionTypeRELU
			assertNoAllocs(t, s.model(), s.inputBytes(s.randomInput(rng)))
		})
	}
}

func svdfBaseModel() *builder.Model {
	return randomSVDFSpec(rand.New(rand.NewSource(3)), runtime.Int8, runtime.Int16, 2, 4, 6, 3, 2).model()
}

func svdfOpts(m *builder.Model) *tflite.SVDFOptionsT {
	return m.Ops[0].Options.Value.(*tflite.SVDFOptionsT)
}

func TestSVDFErrors(t *testing.T) {
	runPrepareErrors(t, svdfBaseModel, []modelMutation{
		{"4_inputs", func(m *builder.Model) { m.Ops[0].Inputs = m.Ops[0].Inputs[:4] }, "want 5"},
		{"state_omitted", func(m *builder.Model) { m.Ops[0].Inputs[4] = -1 }, "activation state"},
		{"wrong_options", func(m *builder.Model) {
			m.Ops[0].Options = &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsUnidirectionalSequenceLSTMOptions, Value: &tflite.UnidirectionalSequenceLSTMOptionsT{}}
		}, "options"},
		{"rank_0", func(m *builder.Model) { svdfOpts(m).Rank = 0 }, "rank 0"},
		{"rank_not_dividing", func(m *builder.Model) { svdfOpts(m).Rank = 4 }, "not a multiple of the rank"},
		{"input_rank_3", func(m *builder.Model) { m.Tensors[0].Shape = []int{2, 1, 4} }, "rank 2"},
		{"feature_weights_inputs", func(m *builder.Model) { m.Tensors[0].Shape = []int{2, 5} }, "feature weights"},
		{"time_weights_filters", func(m *builder.Model) {
			m.Tensors[2].Shape = []int{3, 6} // same size, wrong shape
		}, "time weights"},
		{"bias_size", func(m *builder.Model) { m.Tensors[3].Shape, m.Tensors[3].Data = []int{2}, make([]byte, 8) }, "bias"},
		{"state_shape", func(m *builder.Model) { m.Tensors[svdfStateIndex].Shape = []int{2, 17} }, "activation state"},
		{"state_not_variable", func(m *builder.Model) {
			m.Tensors[svdfStateIndex].Variable = false
			m.Tensors[svdfStateIndex].Data = make([]byte, 2*2*18)
		}, "variable"},
		{"output_shape", func(m *builder.Model) { m.Tensors[5].Shape = []int{2, 4} }, "shape"},
		{"uint8_input", func(m *builder.Model) { m.Tensors[0].Type = tflite.TensorTypeUINT8 }, "unsupported tensor type"},
		{"state_type_mismatch", func(m *builder.Model) {
			m.Tensors[svdfStateIndex].Type = tflite.TensorTypeINT8
		}, "unsupported tensor type"},
		{"bias_int64", func(m *builder.Model) {
			m.Tensors[3].Type, m.Tensors[3].Data = tflite.TensorTypeINT64, make([]byte, 8*3)
		}, "unsupported tensor type"},
		{"output_int16", func(m *builder.Model) { m.Tensors[5].Type = tflite.TensorTypeINT16 }, "unsupported tensor type"},
		{"hybrid", func(m *builder.Model) {
			for _, i := range []int{0, svdfStateIndex, 5} {
				m.Tensors[i].Type = tflite.TensorTypeFLOAT32
			}
		}, "hybrid"},
		{"input_unquantized", func(m *builder.Model) { m.Tensors[0].Scale, m.Tensors[0].ZeroPoint = nil, nil }, "no quantization"},
		{"state_unquantized", func(m *builder.Model) {
			m.Tensors[svdfStateIndex].Scale, m.Tensors[svdfStateIndex].ZeroPoint = nil, nil
		}, "no quantization"},
		// TFLM's check is absolute: the scales must agree within 1e-5.
		{"bias_scale_mismatch", func(m *builder.Model) { m.Tensors[3].Scale = []float32{2e-5} }, "bias"},
		{"feature_factor_too_large", func(m *builder.Model) { m.Tensors[svdfStateIndex].Scale = []float32{1e-20} }, "too large"},
	})
	// A float model with an activation the schema does not define.
	m := randomSVDFSpec(rand.New(rand.NewSource(4)), runtime.Float32, runtime.Float32, 1, 2, 2, 2, 1).model()
	svdfOpts(m).FusedActivationFunction = 9
	if err := prepareError(t, m); err == nil || !strings.Contains(err.Error(), "fused activation 9") {
		t.Fatalf("activation 9: error %v", err)
	}
}
