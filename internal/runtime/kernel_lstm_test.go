package runtime_test

import (
	"bytes"
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

// lstmSpec describes an UNIDIRECTIONAL_SEQUENCE_LSTM test model by its real
// parameters; lstmSpec.model quantizes them as a converter would.
type lstmSpec struct {
	typ                         runtime.DType // activations: Float32, Int8 or Int16
	batch, steps, inputs, cells int
	timeMajor                   bool
	cellClip                    float32
	// w (cells × inputs), r (cells × cells) and b (cells) per gate, in
	// the model's gate order: input, forget, cell, output.
	w, r, b [4][]float32
	// Quantization of the input, hidden state (= output) and cell state.
	inScale, hidScale, cellScale float32
	inZP, hidZP                  int64
}

// lstmQuant is a spec's quantized weights and biases.
type lstmQuant struct {
	wScale [8]float32 // slots 1..8: input weights, then recurrent
	wq     [8][]int64
	bq     [4][]int64 // bias in steps of inScale × input weight scale
}

func (s *lstmSpec) quant() *lstmQuant {
	q := &lstmQuant{}
	for slot := range 8 {
		w := s.w[slot%4]
		if slot >= 4 {
			w = s.r[slot%4]
		}
		var maxAbs float64
		for _, v := range w {
			maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
		}
		if maxAbs == 0 {
			maxAbs = 1
		}
		scale := float32(maxAbs / 127)
		q.wScale[slot] = scale
		q.wq[slot] = make([]int64, len(w))
		for i, v := range w {
			q.wq[slot][i] = max(-127, min(127, int64(math.Round(float64(v)/float64(scale)))))
		}
	}
	for g := range 4 {
		bs := float64(s.inScale) * float64(q.wScale[g])
		q.bq[g] = make([]int64, len(s.b[g]))
		for i, v := range s.b[g] {
			q.bq[g][i] = int64(math.Round(float64(v) / bs))
		}
	}
	return q
}

func (s *lstmSpec) biasType() runtime.DType {
	switch s.typ {
	case runtime.Int8:
		return runtime.Int32
	case runtime.Int16:
		return runtime.Int64
	}
	return runtime.Float32
}

func (s *lstmSpec) inputShape() []int {
	if s.timeMajor {
		return []int{s.steps, s.batch, s.inputs}
	}
	return []int{s.batch, s.steps, s.inputs}
}

func (s *lstmSpec) outputShape() []int {
	sh := s.inputShape()
	return []int{sh[0], sh[1], s.cells}
}

// model builds a one-operator model of the spec (see lstmAssemble).
func (s *lstmSpec) model() *builder.Model {
	act := tflite.TensorType(s.typ)
	quantized := s.typ != runtime.Float32
	qt := func(t builder.Tensor, scale float32, zp int64) builder.Tensor {
		if quantized {
			t.Scale, t.ZeroPoint = []float32{scale}, []int64{zp}
		}
		return t
	}
	var p lstmTensors
	p.input = qt(builder.Tensor{Name: "input", Type: act, Shape: s.inputShape()}, s.inScale, s.inZP)
	q := s.quant()
	for slot := range 8 {
		shape := []int{s.cells, s.inputs}
		w := s.w[slot%4]
		if slot >= 4 {
			shape = []int{s.cells, s.cells}
			w = s.r[slot%4]
		}
		p.weights[slot] = builder.Tensor{Name: "weights", Type: tflite.TensorTypeFLOAT32, Shape: shape, Data: builder.Float32Data(w)}
		if quantized {
			p.weights[slot] = builder.Tensor{Name: "weights", Type: tflite.TensorTypeINT8, Shape: shape, Data: encodeInts(runtime.Int8, q.wq[slot]),
				Scale: []float32{q.wScale[slot]}, ZeroPoint: []int64{0}}
		}
	}
	for g := range 4 {
		p.biases[g] = builder.Tensor{Name: "bias", Type: tflite.TensorTypeFLOAT32, Shape: []int{s.cells}, Data: builder.Float32Data(s.b[g])}
		if quantized {
			p.biases[g] = builder.Tensor{Name: "bias", Type: tflite.TensorType(s.biasType()), Shape: []int{s.cells}, Data: encodeInts(s.biasType(), q.bq[g]),
				Scale: []float32{s.inScale * q.wScale[g]}, ZeroPoint: []int64{0}}
		}
	}
	p.hidden = qt(builder.Tensor{Name: "hidden", Type: act, Shape: []int{s.batch, s.cells}, Variable: true}, s.hidScale, s.hidZP)
	cellType := tflite.TensorTypeINT16
	if !quantized {
		cellType = tflite.TensorTypeFLOAT32
	}
	p.cell = qt(builder.Tensor{Name: "cell", Type: cellType, Shape: []int{s.batch, s.cells}, Variable: true}, s.cellScale, 0)
	p.output = qt(builder.Tensor{Name: "output", Type: act, Shape: s.outputShape()}, s.hidScale, s.hidZP)
	p.options = tflite.UnidirectionalSequenceLSTMOptionsT{
		FusedActivationFunction: tflite.ActivationFunctionTypeTANH,
		CellClip:                s.cellClip,
		TimeMajor:               s.timeMajor,
	}
	return lstmAssemble(&p)
}

// lstmTensors are the tensors and options of a one-operator LSTM model.
type lstmTensors struct {
	input, hidden, cell, output builder.Tensor
	weights                     [8]builder.Tensor // operator inputs 1-8
	biases                      [4]builder.Tensor // operator inputs 12-15
	options                     tflite.UnidirectionalSequenceLSTMOptionsT
}

// lstmAssemble builds the model: tensor 0 is the input, 1-8 the weights,
// 9-12 the biases, 13 the hidden state, 14 the cell state, 15 the output;
// the optional inputs (peephole, projection, layer norm) are omitted.
func lstmAssemble(p *lstmTensors) *builder.Model {
	m := &builder.Model{}
	inputs := make([]int, 24)
	for i := range inputs {
		inputs[i] = -1
	}
	inputs[0] = m.AddTensor(p.input)
	for slot, w := range p.weights {
		inputs[1+slot] = m.AddTensor(w)
	}
	for g, b := range p.biases {
		inputs[12+g] = m.AddTensor(b)
	}
	inputs[18] = m.AddTensor(p.hidden)
	inputs[19] = m.AddTensor(p.cell)
	out := m.AddTensor(p.output)
	opts := p.options
	m.AddOp(builder.Op{
		Builtin: tflite.BuiltinOperatorUNIDIRECTIONAL_SEQUENCE_LSTM,
		Inputs:  inputs,
		Outputs: []int{out},
		Options: &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsUnidirectionalSequenceLSTMOptions, Value: &opts},
	})
	m.Inputs, m.Outputs = []int{inputs[0]}, []int{out}
	return m
}

// Tensor indices in lstmSpec.model.
const (
	lstmHiddenIndex = 13
	lstmCellIndex   = 14
)

// randomLSTMSpec makes a spec with weights in ±0.6, biases in ±0.5 (the
// forget gate's shifted up by 1, as Keras initializes it) and the usual
// converter quantization: inputs and hidden state over [-1, 1], cell state
// of scale 2^-11 (±16).
func randomLSTMSpec(rng *rand.Rand, typ runtime.DType, batch, steps, inputs, cells int, timeMajor bool) *lstmSpec {
	s := &lstmSpec{typ: typ, batch: batch, steps: steps, inputs: inputs, cells: cells, timeMajor: timeMajor}
	uniform := func(n int, a float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32((rng.Float64()*2 - 1) * a)
		}
		return v
	}
	for g := range 4 {
		s.w[g] = uniform(cells*inputs, 0.6)
		s.r[g] = uniform(cells*cells, 0.6)
		s.b[g] = uniform(cells, 0.5)
	}
	for i := range s.b[1] {
		s.b[1][i]++
	}
	s.cellScale = 1.0 / 2048
	switch typ {
	case runtime.Int8:
		s.inScale, s.inZP = 2.0/255, -1
		s.hidScale, s.hidZP = 1.0/128, 0
	case runtime.Int16:
		s.inScale = 1.0 / 32767
		s.hidScale = 1.0 / 32768
	}
	return s
}

// randomInput returns real input values in [-1, 1) for one invoke, in the
// input tensor's layout.
func (s *lstmSpec) randomInput(rng *rand.Rand) []float32 {
	x := make([]float32, s.batch*s.steps*s.inputs)
	for i := range x {
		x[i] = float32(rng.Float64()*2 - 1)
	}
	return x
}

// inputBytes quantizes real input values into the input tensor's bytes.
func (s *lstmSpec) inputBytes(x []float32) []byte {
	if s.typ == runtime.Float32 {
		return builder.Float32Data(x)
	}
	lo, hi := dtypeRange(s.typ)
	v := make([]int64, len(x))
	for i, f := range x {
		v[i] = max(lo, min(hi, int64(math.Round(float64(f)/float64(s.inScale)))+s.inZP))
	}
	return encodeInts(s.typ, v)
}

// realWeights returns the weights and biases the kernel computes with:
// dequantized for a quantized spec. w holds operator inputs 1-8, b 12-15.
func (s *lstmSpec) realWeights() (w [8][]float64, b [4][]float64) {
	q := s.quant()
	for slot := range 8 {
		src := s.w[slot%4]
		if slot >= 4 {
			src = s.r[slot%4]
		}
		w[slot] = make([]float64, len(src))
		for i, v := range src {
			w[slot][i] = float64(v)
			if s.typ != runtime.Float32 {
				w[slot][i] = float64(q.wq[slot][i]) * float64(q.wScale[slot])
			}
		}
	}
	for g := range 4 {
		b[g] = make([]float64, len(s.b[g]))
		for i, v := range s.b[g] {
			b[g][i] = float64(v)
			if s.typ != runtime.Float32 {
				b[g][i] = float64(q.bq[g][i]) * float64(s.inScale) * float64(q.wScale[g])
			}
		}
	}
	return w, b
}

func lstmSigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// lstmOracleStep is one LSTM time step for one batch row in float64, the
// definition the kernel approximates: gates i, f, o = sigmoid and the cell
// gate = tanh of W·x + R·h + b; c' = f·c + i·g, limited to the range the
// cell state tensor can hold [cLo, cHi] and to ±clip when clip > 0;
// h' = o·tanh(c'), limited to the hidden state's range [hLo, hHi].
func lstmOracleStep(w [8][]float64, b [4][]float64, x, h, c []float64, clip, cLo, cHi, hLo, hHi float64) (hNew, cNew []float64) {
	nIn, nCell := len(x), len(h)
	hNew, cNew = make([]float64, nCell), make([]float64, nCell)
	for j := range nCell {
		var pre [4]float64
		for g := range 4 {
			pre[g] = b[g][j]
			for k, v := range x {
				pre[g] += w[g][j*nIn+k] * v
			}
			for k, v := range h {
				pre[g] += w[4+g][j*nCell+k] * v
			}
		}
		i, f, g, o := lstmSigmoid(pre[0]), lstmSigmoid(pre[1]), math.Tanh(pre[2]), lstmSigmoid(pre[3])
		cj := max(cLo, min(cHi, f*c[j]+i*g))
		if clip > 0 {
			cj = max(-clip, min(clip, cj))
		}
		cNew[j] = cj
		hNew[j] = max(hLo, min(hHi, o*math.Tanh(cj)))
	}
	return hNew, cNew
}

// lstmTolerance bounds |kernel - oracle| for one step that starts from the
// kernel's own state, for the hidden state and the cell state, in real
// units. cPrev is the cell's value before the step.
//
// Float: float32 rounding of sums of a few terms of magnitude ≤ ~4.
//
// Integer path (all with the inputs x and h exactly the quantized values
// both see, and weights and biases dequantized):
//   - each gate's two fully connected parts are requantized to the Q3.12
//     grid, each within 1 step (2^-12) with TFLite's double rounding: the
//     pre-activation is off by ≤ 2^-11 = 4.9e-4 (the tests keep it inside
//     Q3.12's ±8, so it does not saturate);
//   - the table sigmoid is within 3.1e-5 and the table tanh within 4.5e-5 of
//     the true functions (TestLogisticInt16Accuracy, TestTanhInt16Accuracy):
//     a sigmoid gate (slope ≤ 1/4) is off by ≤ 1.6e-4, the tanh gate
//     (slope ≤ 1) by ≤ 5.4e-4;
//   - c' = f·c + i·g with |i|, |g| ≤ 1 and two products each requantized to
//     the cell scale within 1 step: ≤ |c|·1.6e-4 + 1.6e-4 + 5.4e-4 + 2·cellScale;
//   - h' = o·tanh(c'), tanh reading c' exactly: ≤ δc' + 4.5e-5 + 1.6e-4 plus
//     1 step of the hidden scale for the final requantization.
func lstmTolerance(s *lstmSpec, cPrev float64) (tolH, tolC float64) {
	if s.typ == runtime.Float32 {
		return 1e-5, 1e-5
	}
	tolC = 1.6e-4*math.Abs(cPrev) + 7e-4 + 2*float64(s.cellScale)
	return tolC + 2.1e-4 + float64(s.hidScale), tolC
}

// lstmDequantize reads a tensor's values in real units.
func lstmDequantize(t *runtime.Tensor) []float64 {
	v := decodeValues(t.Type, t.Bytes())
	if t.Type != runtime.Float32 {
		for i := range v {
			v[i] = (v[i] - float64(t.ZeroPoint())) * float64(t.Scale())
		}
	}
	return v
}

// lstmRange is the real range a tensor's type can hold.
func lstmRange(t *runtime.Tensor) (lo, hi float64) {
	if t.Type == runtime.Float32 {
		return math.Inf(-1), math.Inf(1)
	}
	qlo, qhi := dtypeRange(t.Type)
	s, zp := float64(t.Scale()), float64(t.ZeroPoint())
	return (float64(qlo) - zp) * s, (float64(qhi) - zp) * s
}

func TestLSTMOracle(t *testing.T) {
	type config struct {
		name                 string
		batch, inputs, cells int
		timeMajor            bool
		clip                 float32
		cellScale            float32
		asymmetric           bool
	}
	configs := []config{
		{name: "single_row", batch: 1, inputs: 3, cells: 4},
		{name: "one_input_one_cell", batch: 1, inputs: 1, cells: 1},
		{name: "batch3", batch: 3, inputs: 5, cells: 5},
		{name: "batch2_time_major", batch: 2, inputs: 4, cells: 3, timeMajor: true},
		{name: "cell_clip", batch: 2, inputs: 3, cells: 4, clip: 0.3},
		{name: "asymmetric", batch: 2, inputs: 3, cells: 4, asymmetric: true},
		// Cell scales other than the usual 2^-11 take tanh's other
		// input scalings: a left shift, and a right shift.
		{name: "cell_scale_2^-8", batch: 1, inputs: 4, cells: 4, cellScale: 1.0 / 256},
		{name: "cell_scale_2^-14_saturating", batch: 2, inputs: 4, cells: 3, cellScale: 1.0 / 16384, timeMajor: true},
	}
	rng := rand.New(rand.NewSource(41))
	for _, typ := range []runtime.DType{runtime.Float32, runtime.Int8, runtime.Int16} {
		for _, cfg := range configs {
			if cfg.asymmetric && typ != runtime.Int8 {
				continue
			}
			t.Run(typ.String()+"/"+cfg.name, func(t *testing.T) {
				s := randomLSTMSpec(rng, typ, cfg.batch, 1, cfg.inputs, cfg.cells, cfg.timeMajor)
				s.cellClip = cfg.clip
				if cfg.cellScale != 0 {
					s.cellScale = cfg.cellScale
				}
				if cfg.asymmetric {
					s.inZP, s.hidZP = -7, 5
				}
				runLSTMOracle(t, rng, s, 6)
			})
		}
	}
}

// runLSTMOracle invokes a one-step model n times and checks every step
// against lstmOracleStep started from the kernel's own state.
func runLSTMOracle(t *testing.T, rng *rand.Rand, s *lstmSpec, n int) {
	t.Helper()
	it, err := runtime.NewInterpreter(buildModel(t, s.model()), nil)
	if err != nil {
		t.Fatal(err)
	}
	w, b := s.realWeights()
	hidden, cell := it.Tensor(lstmHiddenIndex), it.Tensor(lstmCellIndex)
	cLo, cHi := lstmRange(cell)
	hLo, hHi := lstmRange(hidden)
	var worstH, worstC float64
	for step := range n {
		h0, c0 := lstmDequantize(hidden), lstmDequantize(cell)
		in := s.inputBytes(s.randomInput(rng))
		if err := it.Inputs()[0].CopyFrom(in); err != nil {
			t.Fatal(err)
		}
		x := lstmDequantize(it.Inputs()[0])
		if err := it.Invoke(); err != nil {
			t.Fatal(err)
		}
		out, h1, c1 := lstmDequantize(it.Outputs()[0]), lstmDequantize(hidden), lstmDequantize(cell)
		for r := range s.batch {
			xr := x[r*s.inputs : (r+1)*s.inputs]
			rs := func(v []float64) []float64 { return v[r*s.cells : (r+1)*s.cells] }
			wantH, wantC := lstmOracleStep(w, b, xr, rs(h0), rs(c0), float64(s.cellClip), cLo, cHi, hLo, hHi)
			for j := range s.cells {
				tolH, tolC := lstmTolerance(s, rs(c0)[j])
				gotH, gotC := rs(h1)[j], rs(c1)[j]
				if rs(out)[j] != gotH {
					t.Fatalf("step %d row %d cell %d: output %v differs from hidden state %v", step, r, j, rs(out)[j], gotH)
				}
				if d := math.Abs(gotH - wantH[j]); d > tolH {
					t.Errorf("step %d row %d cell %d: hidden %v, oracle %v (|diff| %.3g > %.3g)", step, r, j, gotH, wantH[j], d, tolH)
				} else {
					worstH = max(worstH, d/tolH)
				}
				if d := math.Abs(gotC - wantC[j]); d > tolC {
					t.Errorf("step %d row %d cell %d: cell %v, oracle %v (|diff| %.3g > %.3g)", step, r, j, gotC, wantC[j], d, tolC)
				} else {
					worstC = max(worstC, d/tolC)
				}
			}
		}
	}
	t.Logf("worst |diff| / tolerance: hidden %.2f, cell %.2f", worstH, worstC)
}

// lstmExactModel is a one-cell, one-input int8 LSTM whose arithmetic is
// exact enough to follow by hand: input and hidden scale 2^-7, weight scale
// 2^-5, so every fully connected part has requantization factor
// 2^-12 / 2^-12 = 1 and the gate pre-activations (Q3.12) are the integer
// sums themselves; cell scale 2^-11.
func lstmExactModel(steps int, clip float32) *builder.Model {
	i8 := func(v ...int64) []byte { return encodeInts(runtime.Int8, v) }
	var p lstmTensors
	p.input = builder.Tensor{Name: "x", Type: tflite.TensorTypeINT8, Shape: []int{1, steps, 1}, Scale: []float32{1.0 / 128}, ZeroPoint: []int64{0}}
	// Input weights (input, forget, cell, output gate) 1, 0, 2, -1; recurrent
	// weights 1, 0, 0, 0.
	for slot, v := range []int64{32, 0, 64, -32, 32, 0, 0, 0} {
		p.weights[slot] = builder.Tensor{Name: "w", Type: tflite.TensorTypeINT8, Shape: []int{1, 1}, Data: i8(v), Scale: []float32{1.0 / 32}, ZeroPoint: []int64{0}}
	}
	// Biases 0, 1, 0, 2 in steps of 2^-12.
	for g, v := range []int64{0, 4096, 0, 8192} {
		p.biases[g] = builder.Tensor{Name: "b", Type: tflite.TensorTypeINT32, Shape: []int{1}, Data: encodeInts(runtime.Int32, []int64{v}), Scale: []float32{1.0 / 4096}, ZeroPoint: []int64{0}}
	}
	p.hidden = builder.Tensor{Name: "h", Type: tflite.TensorTypeINT8, Shape: []int{1, 1}, Variable: true, Scale: []float32{1.0 / 128}, ZeroPoint: []int64{0}}
	p.cell = builder.Tensor{Name: "c", Type: tflite.TensorTypeINT16, Shape: []int{1, 1}, Variable: true, Scale: []float32{1.0 / 2048}, ZeroPoint: []int64{0}}
	p.output = builder.Tensor{Name: "y", Type: tflite.TensorTypeINT8, Shape: []int{1, steps, 1}, Scale: []float32{1.0 / 128}, ZeroPoint: []int64{0}}
	p.options = tflite.UnidirectionalSequenceLSTMOptionsT{FusedActivationFunction: tflite.ActivationFunctionTypeTANH, CellClip: clip}
	return lstmAssemble(&p)
}

// TestLSTMExact follows three steps of lstmExactModel with input x = 64
// (0.5) by hand. T[k] is entry k of the int16 sigmoid table.
//
// Step 1 (h = 0, c = 0): pre-activations i = 32·64 = 2048, f = 4096,
// g = 64·64 = 4096, o = -32·64 + 8192 = 6144.
// Sigmoid of p: a = 3p, k = a>>9, fraction a&511 = 0 here, result
// (T[k]·512 + 512) >> 10: i = T[12]=40794 → 20397, f = T[24]=47911 → 23956,
// o = T[36]=53581 → 26791. Tanh of p: a = 3p = 12288, k = a>>8 = 48,
// (T[48]·256 - 2^23 + 128) >> 8 with T[48] = 57724 → g = 24956.
// f·c = 0; i·g = 509027532, requantized by 2^-30/2^-11 = 2^-19 (multiplier
// 2^30, shift -18: SRDHM halves with rounding to 254513766, then a rounding
// shift by 18) → 971 = c.
// tanh(c): scale 2^-11 gives tanh input 6c = 5826, k = 22, fraction 194 →
// 14467; h = 14467·26791 = 387585397 requantized by 2^-30/2^-7 = 2^-23 → 46.
// Step 2 (h = 46, c = 971): pre i = 2048 + 32·46 = 3520 → 23020;
// f·c = 23956·971 requantized by 2^-15 → 710; i·g → 1096; c = 1806;
// tanh → 23178; h → 74.
// Step 3 (h = 74, c = 1806): pre i = 4416 → 24449; f·c → 1320; i·g → 1164;
// c = 2484; tanh → 27444; h → 88.
//
// With cell_clip 0.25 (512 cell steps) c is clipped to 512 every step:
// tanh → 8026, h → 26; step 2 and 3 repeat it (pre i = 2048 + 32·26 = 2880).
func TestLSTMExact(t *testing.T) {
	for _, c := range []struct {
		name     string
		clip     float32
		want     []int8
		wantCell int16
	}{
		{"no_clip", 0, []int8{46, 74, 88}, 2484},
		{"clip_0.25", 0.25, []int8{26, 26, 26}, 512},
	} {
		t.Run(c.name, func(t *testing.T) {
			it, err := runtime.NewInterpreter(buildModel(t, lstmExactModel(3, c.clip)), nil)
			if err != nil {
				t.Fatal(err)
			}
			got := int8s(invoke(t, it, []byte{64, 64, 64})[0])
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("outputs %v, want %v", got, c.want)
			}
			if h := int8(it.Tensor(lstmHiddenIndex).Bytes()[0]); h != c.want[2] {
				t.Errorf("hidden state %d, want %d", h, c.want[2])
			}
			if cell := it.Tensor(lstmCellIndex).Int16s()[0]; cell != c.wantCell {
				t.Errorf("cell state %d, want %d", cell, c.wantCell)
			}
		})
	}
}

// lstmStepSlice extracts time step t of a [batch, time, n] or
// [time, batch, n] tensor's bytes (elemSize bytes per element).
func lstmStepSlice(b []byte, timeMajor bool, batch, steps, n, elemSize, t int) []byte {
	row := n * elemSize
	if timeMajor {
		return b[t*batch*row : (t+1)*batch*row]
	}
	var out []byte
	for r := range batch {
		out = append(out, b[(r*steps+t)*row:(r*steps+t+1)*row]...)
	}
	return out
}

// TestLSTMState checks that the hidden and cell states carry over between
// invokes: a sequence of 4 steps run as one invoke gives the same bytes as
// 4 one-step invokes of the same weights, and Reset starts the sequence
// over.
func TestLSTMState(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	for _, typ := range []runtime.DType{runtime.Float32, runtime.Int8, runtime.Int16} {
		for _, timeMajor := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/time_major_%v", typ, timeMajor), func(t *testing.T) {
				const steps, batch = 4, 2
				whole := randomLSTMSpec(rng, typ, batch, steps, 3, 4, timeMajor)
				if typ == runtime.Int8 {
					// Reset must fill the hidden state with its zero point.
					whole.hidZP, whole.inZP = 9, -3
				}
				single := *whole
				single.steps = 1
				x := whole.inputBytes(whole.randomInput(rng))
				elem := typ.Size()

				itWhole, err := runtime.NewInterpreter(buildModel(t, whole.model()), nil)
				if err != nil {
					t.Fatal(err)
				}
				want := invoke(t, itWhole, x)[0]
				itSingle, err := runtime.NewInterpreter(buildModel(t, single.model()), nil)
				if err != nil {
					t.Fatal(err)
				}
				for round := range 2 {
					for step := range steps {
						got := invoke(t, itSingle, lstmStepSlice(x, timeMajor, batch, steps, 3, elem, step))[0]
						if w := lstmStepSlice(want, timeMajor, batch, steps, 4, elem, step); !bytes.Equal(got, w) {
							t.Fatalf("round %d step %d: one-step invoke gives % x, the whole sequence % x", round, step, got, w)
						}
					}
					for _, idx := range []int{lstmHiddenIndex, lstmCellIndex} {
						if a, b := itSingle.Tensor(idx).Bytes(), itWhole.Tensor(idx).Bytes(); !bytes.Equal(a, b) {
							t.Fatalf("round %d: state tensor %d is % x after the steps, % x after the sequence", round, idx, a, b)
						}
					}
					itSingle.Reset()
					h := decodeValues(typ, itSingle.Tensor(lstmHiddenIndex).Bytes())
					for _, v := range h {
						if v != float64(whole.hidZP) {
							t.Fatalf("after Reset the hidden state holds %v, want the zero point %d", h, whole.hidZP)
						}
					}
				}
			})
		}
	}
}

func TestLSTMMACs(t *testing.T) {
	s := randomLSTMSpec(rand.New(rand.NewSource(1)), runtime.Int8, 2, 5, 3, 4, false)
	it, err := runtime.NewInterpreter(buildModel(t, s.model()), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Per step and batch row: 4 gates × cells × (inputs + cells).
	if got, want := it.MACs(), int64(5*2*4*4*(3+4)); got != want {
		t.Fatalf("MACs %d, want %d", got, want)
	}
}

func TestLSTMZeroAllocs(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for _, typ := range []runtime.DType{runtime.Float32, runtime.Int8, runtime.Int16} {
		for _, timeMajor := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/time_major_%v", typ, timeMajor), func(t *testing.T) {
				s := randomLSTMSpec(rng, typ, 2, 3, 4, 5, timeMajor)
				s.cellClip = 0.5
				assertNoAllocs(t, s.model(), s.inputBytes(s.randomInput(rng)))
			})
		}
	}
}

// lstmBaseModel is the model the error cases mutate: int8, batch 1, 2
// steps, 3 inputs, 2 cells.
func lstmBaseModel() *builder.Model {
	return randomLSTMSpec(rand.New(rand.NewSource(3)), runtime.Int8, 1, 2, 3, 2, false).model()
}

func lstmOpts(m *builder.Model) *tflite.UnidirectionalSequenceLSTMOptionsT {
	return m.Ops[0].Options.Value.(*tflite.UnidirectionalSequenceLSTMOptionsT)
}

// lstmAddInput adds a constant tensor and connects it to operator input
// slot.
func lstmAddInput(m *builder.Model, slot int, typ tflite.TensorType, shape []int) {
	n := 1
	for _, d := range shape {
		n *= d
	}
	size := map[tflite.TensorType]int{tflite.TensorTypeINT8: 1, tflite.TensorTypeINT16: 2, tflite.TensorTypeINT32: 4, tflite.TensorTypeFLOAT32: 4}[typ]
	m.Ops[0].Inputs[slot] = m.AddTensor(builder.Tensor{Name: "extra", Type: typ, Shape: shape, Data: make([]byte, n*size), Scale: []float32{0.01}, ZeroPoint: []int64{0}})
}

// lstmToInt16 turns lstmBaseModel into a 16x8 model (int16 activations,
// int64 biases).
func lstmToInt16(m *builder.Model) {
	for _, i := range []int{0, lstmHiddenIndex, 15} {
		m.Tensors[i].Type = tflite.TensorTypeINT16
		m.Tensors[i].ZeroPoint = []int64{0}
	}
	for i := 9; i <= 12; i++ {
		m.Tensors[i].Type = tflite.TensorTypeINT64
		m.Tensors[i].Data = make([]byte, 8*2)
	}
}

func TestLSTMErrors(t *testing.T) {
	runPrepareErrors(t, lstmBaseModel, []modelMutation{
		// Variants TFLM's kernel does not implement.
		{"cifg", func(m *builder.Model) {
			in := m.Ops[0].Inputs
			in[1], in[5], in[12] = -1, -1, -1
		}, "CIFG"},
		{"peephole", func(m *builder.Model) { lstmAddInput(m, 10, tflite.TensorTypeINT16, []int{2}) }, "peephole"},
		{"projection_weights", func(m *builder.Model) { lstmAddInput(m, 16, tflite.TensorTypeINT8, []int{2, 2}) }, "projection weights"},
		{"projection_bias", func(m *builder.Model) { lstmAddInput(m, 17, tflite.TensorTypeINT32, []int{2}) }, "projection bias"},
		{"layer_norm", func(m *builder.Model) { lstmAddInput(m, 21, tflite.TensorTypeINT16, []int{2}) }, "layer normalization"},
		{"diagonal_recurrent", func(m *builder.Model) { lstmOpts(m).DiagonalRecurrentTensors = true }, "diagonal recurrent"},
		{"relu_cell_activation", func(m *builder.Model) { lstmOpts(m).FusedActivationFunction = tflite.ActivationFunctionTypeRELU }, "cell gate activation RELU"},
		{"hybrid", func(m *builder.Model) {
			for _, i := range []int{0, lstmHiddenIndex, lstmCellIndex, 15} {
				m.Tensors[i].Type = tflite.TensorTypeFLOAT32
			}
		}, "hybrid"},
		// Operator shape.
		{"23_inputs", func(m *builder.Model) { m.Ops[0].Inputs = m.Ops[0].Inputs[:23] }, "has 23 inputs, want 24"},
		{"forget_weights_omitted", func(m *builder.Model) { m.Ops[0].Inputs[2] = -1 }, "required input 2"},
		{"hidden_omitted", func(m *builder.Model) { m.Ops[0].Inputs[18] = -1 }, "required input 18"},
		{"wrong_options", func(m *builder.Model) {
			m.Ops[0].Options = &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsSVDFOptions, Value: &tflite.SVDFOptionsT{Rank: 1}}
		}, "options"},
		// Shapes.
		{"input_rank_2", func(m *builder.Model) { m.Tensors[0].Shape = []int{2, 3} }, "rank 3"},
		{"hidden_rank_1", func(m *builder.Model) { m.Tensors[lstmHiddenIndex].Shape = []int{2} }, "rank 2"},
		{"input_size_mismatch", func(m *builder.Model) { m.Tensors[0].Shape = []int{1, 2, 4} }, "input-to-input weights"},
		{"cells_mismatch", func(m *builder.Model) { m.Tensors[lstmHiddenIndex].Shape = []int{1, 3} }, "must have shape [3,3]"},
		{"bias_size", func(m *builder.Model) {
			m.Tensors[10].Shape, m.Tensors[10].Data = []int{3}, make([]byte, 12)
		}, "forget gate bias"},
		{"hidden_batch", func(m *builder.Model) { m.Tensors[lstmHiddenIndex].Shape = []int{2, 2} }, "hidden state"},
		{"cell_batch", func(m *builder.Model) { m.Tensors[lstmCellIndex].Shape = []int{2, 2} }, "cell state"},
		{"output_shape", func(m *builder.Model) { m.Tensors[15].Shape = []int{1, 2, 3} }, "shape"},
		{"hidden_not_variable", func(m *builder.Model) {
			m.Tensors[lstmHiddenIndex].Variable = false
			m.Tensors[lstmHiddenIndex].Data = make([]byte, 2)
		}, "variable"},
		{"cell_not_variable", func(m *builder.Model) {
			m.Tensors[lstmCellIndex].Variable = false
			m.Tensors[lstmCellIndex].Data = make([]byte, 4)
		}, "variable"},
		// Types and quantization.
		{"cell_int8", func(m *builder.Model) { m.Tensors[lstmCellIndex].Type = tflite.TensorTypeINT8 }, "unsupported tensor type"},
		{"output_int16", func(m *builder.Model) { m.Tensors[15].Type = tflite.TensorTypeINT16 }, "unsupported tensor type"},
		{"uint8", func(m *builder.Model) {
			for _, i := range []int{0, lstmHiddenIndex, 15} {
				m.Tensors[i].Type = tflite.TensorTypeUINT8
			}
		}, "unsupported tensor type"},
		{"weights_int16", func(m *builder.Model) {
			m.Tensors[7].Type, m.Tensors[7].Data = tflite.TensorTypeINT16, make([]byte, 8)
		}, "unsupported tensor type"},
		{"int16_with_int32_bias", func(m *builder.Model) {
			for _, i := range []int{0, lstmHiddenIndex, 15} {
				m.Tensors[i].Type, m.Tensors[i].ZeroPoint = tflite.TensorTypeINT16, []int64{0}
			}
		}, "unsupported tensor type"},
		{"per_channel_weights", func(m *builder.Model) {
			w := &m.Tensors[2]
			w.Scale, w.ZeroPoint = []float32{0.01, 0.02}, []int64{0, 0}
		}, "per channel"},
		{"input_unquantized", func(m *builder.Model) { m.Tensors[0].Scale, m.Tensors[0].ZeroPoint = nil, nil }, "no quantization"},
		{"cell_unquantized", func(m *builder.Model) {
			m.Tensors[lstmCellIndex].Scale, m.Tensors[lstmCellIndex].ZeroPoint = nil, nil
		}, "no quantization"},
		{"weights_unquantized", func(m *builder.Model) { m.Tensors[6].Scale, m.Tensors[6].ZeroPoint = nil, nil }, "no quantization"},
		{"cell_scale_too_large", func(m *builder.Model) { m.Tensors[lstmCellIndex].Scale = []float32{16} }, "outside the range"},
		{"negative_weight_scale", func(m *builder.Model) { m.Tensors[3].Scale = []float32{-0.01} }, "requantization factor"},
		{"int16_fc_factor_too_large", func(m *builder.Model) {
			lstmToInt16(m)
			m.Tensors[4].Scale = []float32{4096}
		}, "too large"},
	})
	// The 16x8 form of the base model prepares.
	m := lstmBaseModel()
	lstmToInt16(m)
	if err := prepareError(t, m); err != nil {
		t.Fatalf("int16 base model: %v", err)
	}
}
