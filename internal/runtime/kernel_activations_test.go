package runtime_test

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

// ---------------------------------------------------------------------------
// Helpers shared by the activation, reduce and elementwise-unary tests.

// actQ is a tensor's per-tensor quantization; nil means none.
type actQ struct {
	scale float32
	zp    int64
}

func (q *actQ) apply(t *builder.Tensor) {
	if q != nil {
		t.Scale, t.ZeroPoint = []float32{q.scale}, []int64{q.zp}
	}
}

// actOp describes a one-operator model: input 0 is the activation, extra
// holds further (constant) inputs.
type actOp struct {
	op       tflite.BuiltinOperator
	version  int
	typ      tflite.TensorType
	shape    []int
	in, out  *actQ
	outType  tflite.TensorType // 0 (which is also FLOAT32): same as typ
	outShape []int             // declared output shape; nil: unknown
	opts     *tflite.BuiltinOptionsT
	extra    []builder.Tensor
}

func (a actOp) model() *builder.Model {
	m := &builder.Model{}
	in := builder.Tensor{Name: "input", Type: a.typ, Shape: a.shape}
	a.in.apply(&in)
	ot := a.outType
	if ot == 0 {
		ot = a.typ
	}
	out := builder.Tensor{Name: "output", Type: ot, Shape: a.outShape}
	a.out.apply(&out)
	ii := m.AddTensor(in)
	inputs := []int{ii}
	for _, e := range a.extra {
		inputs = append(inputs, m.AddTensor(e))
	}
	oi := m.AddTensor(out)
	m.AddOp(builder.Op{Builtin: a.op, Version: a.version, Inputs: inputs, Outputs: []int{oi}, Options: a.opts})
	m.Inputs, m.Outputs = []int{ii}, []int{oi}
	return m
}

// actRun runs the model on raw input bytes and returns the output bytes.
func actRun(t testing.TB, a actOp, input []byte) []byte {
	t.Helper()
	return runModel(t, a.model(), input)[0]
}

// actTypeRange is the value range of an integer tensor type.
func actTypeRange(typ tflite.TensorType) (lo, hi int32) {
	switch typ {
	case tflite.TensorTypeINT8:
		return math.MinInt8, math.MaxInt8
	case tflite.TensorTypeUINT8:
		return 0, math.MaxUint8
	case tflite.TensorTypeINT16:
		return math.MinInt16, math.MaxInt16
	}
	return math.MinInt32, math.MaxInt32
}

// actEncode writes integer values as tensor bytes of typ.
func actEncode(typ tflite.TensorType, v []int32) []byte {
	switch typ {
	case tflite.TensorTypeINT8, tflite.TensorTypeUINT8:
		b := make([]byte, len(v))
		for i, x := range v {
			b[i] = byte(x)
		}
		return b
	case tflite.TensorTypeINT16:
		b := make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(b[2*i:], uint16(x))
		}
		return b
	}
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	return b
}

// actDecode reads tensor bytes of an integer type.
func actDecode(typ tflite.TensorType, b []byte) []int32 {
	switch typ {
	case tflite.TensorTypeINT8:
		v := make([]int32, len(b))
		for i, x := range b {
			v[i] = int32(int8(x))
		}
		return v
	case tflite.TensorTypeUINT8:
		v := make([]int32, len(b))
		for i, x := range b {
			v[i] = int32(x)
		}
		return v
	case tflite.TensorTypeINT16:
		v := make([]int32, len(b)/2)
		for i := range v {
			v[i] = int32(int16(binary.LittleEndian.Uint16(b[2*i:])))
		}
		return v
	}
	v := make([]int32, len(b)/4)
	for i := range v {
		v[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// actAllValues lists every value of an 8-bit type, or a spread of int16
// values.
func actAllValues(typ tflite.TensorType) []int32 {
	lo, hi := actTypeRange(typ)
	step := int32(1)
	if typ == tflite.TensorTypeINT16 {
		step = 97
	}
	var v []int32
	for x := lo; x <= hi; x += step {
		v = append(v, x)
		if x > hi-step {
			break
		}
	}
	return append(v, hi)
}

func actDequant(q *actQ, x int32) float64 { return float64(q.scale) * float64(int64(x)-q.zp) }

// actQuantize is the float oracle's requantization: round half away from
// zero, add the zero point, clamp to the type.
func actQuantize(q *actQ, typ tflite.TensorType, f float64) int32 {
	lo, hi := actTypeRange(typ)
	r := math.Round(f/float64(q.scale)) + float64(q.zp)
	return int32(math.Max(float64(lo), math.Min(float64(hi), r)))
}

// actCheckOracle compares quantized outputs with the float oracle f applied
// to the dequantized inputs, allowing tol quantization steps.
func actCheckOracle(t *testing.T, a actOp, in []int32, f func(float64) float64, tol int32) {
	t.Helper()
	got := actDecode(a.outTypeOr(), actRun(t, a, actEncode(a.typ, in)))
	if len(got) != len(in) {
		t.Fatalf("%d outputs for %d inputs", len(got), len(in))
	}
	bad := 0
	for i, x := range in {
		want := actQuantize(a.out, a.outTypeOr(), f(actDequant(a.in, x)))
		if d := got[i] - want; d > tol || d < -tol {
			if bad++; bad <= 5 {
				t.Errorf("input %d (%g): got %d, oracle %d (tolerance %d)", x, actDequant(a.in, x), got[i], want, tol)
			}
		}
	}
}

func (a actOp) outTypeOr() tflite.TensorType {
	if a.outType != 0 {
		return a.outType
	}
	return a.typ
}

// actCheckExact checks hand-derived outputs for given inputs.
func actCheckExact(t *testing.T, a actOp, in, want []int32) {
	t.Helper()
	got := actDecode(a.outTypeOr(), actRun(t, a, actEncode(a.typ, in)))
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("input %d: got %d, want %d", in[i], got[i], want[i])
		}
	}
}

// actCheckFloat compares float outputs with want bit for bit (NaN with NaN).
func actCheckFloat(t *testing.T, a actOp, in, want []float32) {
	t.Helper()
	got := float32s(actRun(t, a, builder.Float32Data(in)))
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
			t.Errorf("input %g: got %g (%#x), want %g (%#x)", in[i], got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

// actWantError checks that preparing the model fails with a message
// containing want.
func actWantError(t *testing.T, m *builder.Model, want string) {
	t.Helper()
	err := prepareError(t, m)
	if err == nil {
		t.Fatalf("prepared; want an error containing %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not mention %q", err, want)
	}
}

// actZeroAllocs checks that a warm Invoke allocates nothing.
func actZeroAllocs(t *testing.T, m *builder.Model, input []byte) {
	t.Helper()
	it, err := runtime.NewInterpreter(buildModel(t, m), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := it.Inputs()[0].CopyFrom(input); err != nil {
		t.Fatal(err)
	}
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

// actRandFloats returns n floats uniform in [lo, hi) with a few special
// values mixed in.
func actRandFloats(r *rand.Rand, n int, lo, hi float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*r.Float32()
	}
	return append(v, 0, float32(math.Copysign(0, -1)), lo, hi)
}

const (
	actI8  = tflite.TensorTypeINT8
	actU8  = tflite.TensorTypeUINT8
	actI16 = tflite.TensorTypeINT16
	actI32 = tflite.TensorTypeINT32
	actF32 = tflite.TensorTypeFLOAT32
)

// ---------------------------------------------------------------------------
// RELU, RELU6, RELU_N1_TO_1

func actClamp(x, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, x)) }

func TestReluQuantized(t *testing.T) {
	relu := func(x float64) float64 { return math.Max(x, 0) }
	relu6 := func(x float64) float64 { return actClamp(x, 0, 6) }
	relu1 := func(x float64) float64 { return actClamp(x, -1, 1) }
	cases := []struct {
		name string
		op   tflite.BuiltinOperator
		typ  tflite.TensorType
		in   actQ
		out  actQ
		f    func(float64) float64
	}{
		{"relu int8 same scale", tflite.BuiltinOperatorRELU, actI8, actQ{0.05, -20}, actQ{0.05, -20}, relu},
		{"relu int8 rescale", tflite.BuiltinOperatorRELU, actI8, actQ{0.1, 5}, actQ{0.03, -128}, relu},
		{"relu uint8 rescale", tflite.BuiltinOperatorRELU, actU8, actQ{0.1, 120}, actQ{0.07, 3}, relu},
		{"relu int16", tflite.BuiltinOperatorRELU, actI16, actQ{0.001, 0}, actQ{0.0007, 0}, relu},
		{"relu6 uint8 same scale", tflite.BuiltinOperatorRELU6, actU8, actQ{0.05, 100}, actQ{0.05, 100}, relu6},
		{"relu6 uint8 rescale", tflite.BuiltinOperatorRELU6, actU8, actQ{0.1, 128}, actQ{6.0 / 255, 0}, relu6},
		{"relu_n1_to_1 int8", tflite.BuiltinOperatorRELU_N1_TO_1, actI8, actQ{0.02, 10}, actQ{1.0 / 127, 0}, relu1},
		{"relu_n1_to_1 uint8", tflite.BuiltinOperatorRELU_N1_TO_1, actU8, actQ{0.03, 128}, actQ{2.0 / 255, 128}, relu1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := actOp{op: c.op, typ: c.typ, shape: []int{1, 1}, in: &c.in, out: &c.out}
			vals := actAllValues(c.typ)
			a.shape = []int{len(vals)}
			actCheckOracle(t, a, vals, c.f, 1)
		})
	}
}

func TestReluExact(t *testing.T) {
	t.Run("relu int8 rescale", func(t *testing.T) {
		// in 0.5, out 0.25 zp -10: real x/2 in steps of 1/4 is x*2 steps.
		a := actOp{op: tflite.BuiltinOperatorRELU, typ: actI8, shape: []int{5}, in: &actQ{0.5, 0}, out: &actQ{0.25, -10}}
		actCheckExact(t, a, []int32{3, -3, 0, 60, 127}, []int32{-4, -10, -10, 110, 127})
	})
	t.Run("relu_n1_to_1 int8 ties", func(t *testing.T) {
		// in 0.5 → out 1.0 halves: 1.5 rounds to 2, but gemmlowp's doubling
		// high multiply rounds -1.5 toward zero, to -1.
		a := actOp{op: tflite.BuiltinOperatorRELU_N1_TO_1, typ: actI8, shape: []int{6}, in: &actQ{0.5, 0}, out: &actQ{1, 0}}
		actCheckExact(t, a, []int32{3, -3, 1, -1, 9, -9}, []int32{1, -1, 1, 0, 1, -1})
	})
	t.Run("relu6 int8 clamps to the input's quantization (TFLM)", func(t *testing.T) {
		// TFLM ignores the output quantization: the input clamped to
		// [zp, zp + round(6/scale)] = [-10, 20].
		a := actOp{op: tflite.BuiltinOperatorRELU6, typ: actI8, shape: []int{5}, in: &actQ{0.2, -10}, out: &actQ{1, 50}}
		actCheckExact(t, a, []int32{-128, -10, 5, 20, 127}, []int32{-10, -10, 5, 20, 20})
	})
	t.Run("relu6 int16 clamps", func(t *testing.T) {
		a := actOp{op: tflite.BuiltinOperatorRELU6, typ: actI16, shape: []int{4}, in: &actQ{0.001, 0}, out: &actQ{0.001, 0}}
		actCheckExact(t, a, []int32{-5, 100, 6000, 32767}, []int32{0, 100, 6000, 6000})
	})
	t.Run("relu6 uint8 saturates", func(t *testing.T) {
		// out scale 0.01: 6 is 600 steps, clamped to 255.
		a := actOp{op: tflite.BuiltinOperatorRELU6, typ: actU8, shape: []int{3}, in: &actQ{0.1, 0}, out: &actQ{0.01, 0}}
		actCheckExact(t, a, []int32{0, 2, 30}, []int32{0, 20, 255})
	})
}

func TestReluFloat(t *testing.T) {
	nan := float32(math.NaN())
	negZero := float32(math.Copysign(0, -1))
	in := []float32{-2, negZero, 0, 0.5, 1.5, 7, nan, float32(math.Inf(-1))}
	cases := []struct {
		op   tflite.BuiltinOperator
		want []float32
	}{
		{tflite.BuiltinOperatorRELU, []float32{0, negZero, 0, 0.5, 1.5, 7, nan, 0}},
		{tflite.BuiltinOperatorRELU6, []float32{0, negZero, 0, 0.5, 1.5, 6, nan, 0}},
		{tflite.BuiltinOperatorRELU_N1_TO_1, []float32{-1, negZero, 0, 0.5, 1, 1, nan, -1}},
	}
	for _, c := range cases {
		t.Run(tflite.EnumNamesBuiltinOperator[c.op], func(t *testing.T) {
			actCheckFloat(t, actOp{op: c.op, typ: actF32, shape: []int{len(in)}}, in, c.want)
		})
	}
}

// ---------------------------------------------------------------------------
// LOGISTIC and TANH

func actSigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func TestLogisticTanhQuantized(t *testing.T) {
	cases := []struct {
		name    string
		op      tflite.BuiltinOperator
		typ     tflite.TensorType
		in, out actQ
		f       func(float64) float64
	}{
		{"logistic int8 scale 1/16", tflite.BuiltinOperatorLOGISTIC, actI8, actQ{1.0 / 16, 0}, actQ{1.0 / 256, -128}, actSigmoid},
		{"logistic int8 yolo-like", tflite.BuiltinOperatorLOGISTIC, actI8, actQ{0.0795, 37}, actQ{1.0 / 256, -128}, actSigmoid},
		{"logistic int8 small scale", tflite.BuiltinOperatorLOGISTIC, actI8, actQ{0.003, -100}, actQ{1.0 / 256, -128}, actSigmoid},
		{"logistic int8 large scale", tflite.BuiltinOperatorLOGISTIC, actI8, actQ{0.4, 10}, actQ{1.0 / 256, -128}, actSigmoid},
		{"logistic uint8", tflite.BuiltinOperatorLOGISTIC, actU8, actQ{0.0235, 128}, actQ{1.0 / 256, 0}, actSigmoid},
		{"logistic uint8 odd zero point", tflite.BuiltinOperatorLOGISTIC, actU8, actQ{0.1, 30}, actQ{1.0 / 256, 7}, actSigmoid},
		{"tanh int8", tflite.BuiltinOperatorTANH, actI8, actQ{1.0 / 32, 3}, actQ{1.0 / 128, 0}, math.Tanh},
		{"tanh int8 large scale", tflite.BuiltinOperatorTANH, actI8, actQ{0.2, -50}, actQ{1.0 / 128, 0}, math.Tanh},
		{"tanh uint8", tflite.BuiltinOperatorTANH, actU8, actQ{0.05, 128}, actQ{1.0 / 128, 128}, math.Tanh},
		{"tanh uint8 other output", tflite.BuiltinOperatorTANH, actU8, actQ{0.02, 100}, actQ{0.009, 120}, math.Tanh},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vals := actAllValues(c.typ)
			a := actOp{op: c.op, typ: c.typ, shape: []int{len(vals)}, in: &c.in, out: &c.out}
			actCheckOracle(t, a, vals, c.f, 1)
		})
	}
}

func TestLogisticTanhExact(t *testing.T) {
	t.Run("logistic int8", func(t *testing.T) {
		// Scale 1/16: radius floor(15*2^27/2^24) = 120 steps saturates;
		// x = 0 is exactly 1/2 (128/256); x = 1 is 0.7311 -> 187 - 128.
		a := actOp{op: tflite.BuiltinOperatorLOGISTIC, typ: actI8, shape: []int{6}, in: &actQ{1.0 / 16, 0}, out: &actQ{1.0 / 256, -128}}
		actCheckExact(t, a, []int32{0, 16, -16, 120, -120, -128}, []int32{0, 59, -59, 127, -128, -128})
	})
	t.Run("logistic uint8 table", func(t *testing.T) {
		// Entry zp is 0.5 -> 128; far right is 1.0 -> 256, clamped.
		a := actOp{op: tflite.BuiltinOperatorLOGISTIC, typ: actU8, shape: []int{3}, in: &actQ{0.1, 100}, out: &actQ{1.0 / 256, 0}}
		actCheckExact(t, a, []int32{100, 255, 0}, []int32{128, 255, 0})
	})
	t.Run("tanh int8", func(t *testing.T) {
		// tanh(1) * 128 = 97.48.
		a := actOp{op: tflite.BuiltinOperatorTANH, typ: actI8, shape: []int{4}, in: &actQ{1.0 / 16, 0}, out: &actQ{1.0 / 128, 0}}
		actCheckExact(t, a, []int32{0, 16, -16, 127}, []int32{0, 97, -97, 127})
	})
}

func TestLogisticTanhFloat(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	in := actRandFloats(r, 500, -20, 20)
	in = append(in, 16.619047164916992188, 16.62, -9, -9.01, 100, -100)
	got := float32s(actRun(t, actOp{op: tflite.BuiltinOperatorLOGISTIC, typ: actF32, shape: []int{len(in)}}, builder.Float32Data(in)))
	for i, x := range in {
		// TFLM's float logistic: 1 above 16.619..., exp(x) below -9.
		want := actSigmoid(float64(x))
		switch {
		case x > 16.619047164916992188:
			want = 1
		case x < -9:
			want = math.Exp(float64(x))
		}
		if d := math.Abs(float64(got[i]) - want); d > 1e-6*math.Max(want, 1e-30) && d > 1e-12 {
			t.Errorf("logistic(%g) = %g, want %g", x, got[i], want)
		}
	}
	if got[len(in)-2] != 1 || got[len(in)-1] != float32(math.Exp(-100)) {
		t.Errorf("logistic cut-offs: %g %g", got[len(in)-2], got[len(in)-1])
	}
	got = float32s(actRun(t, actOp{op: tflite.BuiltinOperatorTANH, typ: actF32, shape: []int{len(in)}}, builder.Float32Data(in)))
	for i, x := range in {
		if want := math.Tanh(float64(x)); math.Abs(float64(got[i])-want) > 1e-6 {
			t.Errorf("tanh(%g) = %g, want %g", x, got[i], want)
		}
	}
}

// ---------------------------------------------------------------------------
// LEAKY_RELU

func actLeakyOpts(alpha float32) *tflite.BuiltinOptionsT {
	return &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsLeakyReluOptions, Value: &tflite.LeakyReluOptionsT{Alpha: alpha}}
}

func TestLeakyRelu(t *testing.T) {
	cases := []struct {
		name    string
		typ     tflite.TensorType
		in, out actQ
		alpha   float32
	}{
		{"int8", actI8, actQ{0.05, 10}, actQ{0.04, -20}, 0.2},
		{"int8 alpha above 1", actI8, actQ{0.05, 0}, actQ{0.1, 0}, 1.7},
		{"int8 negative alpha", actI8, actQ{0.05, -5}, actQ{0.05, -5}, -0.5},
		{"uint8", actU8, actQ{0.1, 128}, actQ{0.08, 100}, 0.1},
		{"int16", actI16, actQ{0.001, 0}, actQ{0.0009, 0}, 0.3},
		{"int16 zero points", actI16, actQ{0.001, 100}, actQ{0.0009, -50}, 0.3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vals := actAllValues(c.typ)
			a := actOp{op: tflite.BuiltinOperatorLEAKY_RELU, version: 2, typ: c.typ, shape: []int{len(vals)}, in: &c.in, out: &c.out, opts: actLeakyOpts(c.alpha)}
			alpha := float64(c.alpha)
			actCheckOracle(t, a, vals, func(x float64) float64 {
				if x > 0 {
					return x
				}
				return x * alpha
			}, 1)
		})
	}
	t.Run("exact ties", func(t *testing.T) {
		// Same scales, alpha 0.5: -3 * 0.5 = -1.5 rounds toward zero in the
		// doubling high multiply, to -1; the identity path is exact.
		a := actOp{op: tflite.BuiltinOperatorLEAKY_RELU, typ: actI8, shape: []int{5}, in: &actQ{1, 0}, out: &actQ{1, 0}, opts: actLeakyOpts(0.5)}
		actCheckExact(t, a, []int32{-3, -5, 7, -128, 127}, []int32{-1, -2, 7, -64, 127})
	})
	t.Run("float", func(t *testing.T) {
		in := []float32{-2, -0.5, 0, 3, float32(math.Copysign(0, -1))}
		a := actOp{op: tflite.BuiltinOperatorLEAKY_RELU, typ: actF32, shape: []int{len(in)}, opts: actLeakyOpts(0.25)}
		actCheckFloat(t, a, in, []float32{-0.5, -0.125, 0, 3, float32(math.Copysign(0, -1))})
	})
}

// ---------------------------------------------------------------------------
// HARD_SWISH

func actHardSwish(x float64) float64 { return x * actClamp(x+3, 0, 6) / 6 }

func TestHardSwish(t *testing.T) {
	cases := []struct {
		name    string
		typ     tflite.TensorType
		in, out actQ
	}{
		{"int8", actI8, actQ{0.05, -10}, actQ{0.04, -100}},
		{"int8 small input scale", actI8, actQ{0.005, 0}, actQ{0.004, -20}},
		{"int8 wide input", actI8, actQ{0.3, 20}, actQ{0.2, -60}},
		{"uint8", actU8, actQ{0.05, 128}, actQ{0.03, 30}},
		{"uint8 wide input", actU8, actQ{1.5, 100}, actQ{1.2, 10}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vals := actAllValues(c.typ)
			a := actOp{op: tflite.BuiltinOperatorHARD_SWISH, typ: c.typ, shape: []int{len(vals)}, in: &c.in, out: &c.out}
			actCheckOracle(t, a, vals, actHardSwish, 1)
		})
	}
	t.Run("exact", func(t *testing.T) {
		// Scales 0.1: output multiplier 2^-7 (Q15 16384, exponent -6),
		// reluish multiplier 8.53 (Q15 17476, exponent 4). x = 1.0: hires
		// 1280, preshift 640, reluish 10240 -> 5461 -> 10922 -> 21845 on
		// [0, 1]; 21845*640 >> 15 = 426 (truncated), /64 rounds to 7
		// (the exact 0.667 would be 6.67 steps). x = 3.0 and 10.0 saturate
		// the reluish factor at 32767/32768 and still round to x.
		a := actOp{op: tflite.BuiltinOperatorHARD_SWISH, typ: actI8, shape: []int{5}, in: &actQ{0.1, 0}, out: &actQ{0.1, 0}}
		actCheckExact(t, a, []int32{0, 10, 30, 100, -100}, []int32{0, 7, 30, 100, 0})
		// Zero points carry through: the input zero point is output zero point.
		a = actOp{op: tflite.BuiltinOperatorHARD_SWISH, typ: actU8, shape: []int{1}, in: &actQ{0.1, 77}, out: &actQ{0.2, 33}}
		actCheckExact(t, a, []int32{77}, []int32{33})
	})
	t.Run("float", func(t *testing.T) {
		in := []float32{-4, -3, -1.5, 0, 1, 3, 5}
		want := make([]float32, len(in))
		for i, x := range in {
			r := float32(math.Max(0, math.Min(6, float64(x+3))))
			want[i] = x * r / 6
		}
		actCheckFloat(t, actOp{op: tflite.BuiltinOperatorHARD_SWISH, typ: actF32, shape: []int{len(in)}}, in, want)
	})
}

// ---------------------------------------------------------------------------
// PRELU

func TestPrelu(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	cases := []struct {
		name          string
		typ, alphaTyp tflite.TensorType
		shape, ashape []int
		in, al, out   actQ
	}{
		{"int8 per channel", actI8, actI8, []int{1, 4, 5, 3}, []int{3}, actQ{0.05, -3}, actQ{0.01, 0}, actQ{0.04, 7}},
		{"int8 broadcast rows", actI8, actI8, []int{2, 3, 4}, []int{3, 1}, actQ{0.1, 20}, actQ{0.005, -40}, actQ{0.1, 20}},
		{"int8 scalar alpha", actI8, actI8, []int{7}, []int{1}, actQ{0.1, 0}, actQ{0.02, 10}, actQ{0.09, -5}},
		{"int8 same shape", actI8, actI8, []int{2, 5}, []int{2, 5}, actQ{0.1, 0}, actQ{0.02, 10}, actQ{0.09, -5}},
		{"uint8", actU8, actU8, []int{1, 3, 3, 4}, []int{1, 1, 4}, actQ{0.05, 128}, actQ{0.004, 10}, actQ{0.05, 120}},
		{"int16 with int8 alpha", actI16, actI8, []int{3, 4}, []int{4}, actQ{0.001, 0}, actQ{0.01, 0}, actQ{0.001, 0}},
		{"rank 5", actI8, actI8, []int{2, 2, 3, 2, 2}, []int{3, 1, 2}, actQ{0.1, 0}, actQ{0.02, 10}, actQ{0.09, -5}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, na := 1, 1
			for _, d := range c.shape {
				n *= d
			}
			for _, d := range c.ashape {
				na *= d
			}
			lo, hi := actTypeRange(c.typ)
			alo, ahi := actTypeRange(c.alphaTyp)
			in := make([]int32, n)
			for i := range in {
				in[i] = lo + r.Int32N(hi-lo+1)
			}
			alpha := make([]int32, na)
			for i := range alpha {
				alpha[i] = alo + r.Int32N(ahi-alo+1)
			}
			at := builder.Tensor{Name: "alpha", Type: c.alphaTyp, Shape: c.ashape, Data: actEncode(c.alphaTyp, alpha)}
			(&c.al).apply(&at)
			a := actOp{op: tflite.BuiltinOperatorPRELU, typ: c.typ, shape: c.shape, in: &c.in, out: &c.out, extra: []builder.Tensor{at}}
			got := actDecode(c.typ, actRun(t, a, actEncode(c.typ, in)))
			// Oracle: alpha index by broadcasting the right-aligned shape.
			for i, x := range in {
				ai, stride, rem := 0, 1, i
				for d := len(c.shape) - 1; d >= 0; d-- {
					coord := rem % c.shape[d]
					rem /= c.shape[d]
					ad := d - (len(c.shape) - len(c.ashape))
					if ad < 0 {
						continue
					}
					if c.ashape[ad] != 1 {
						ai += coord * stride
					}
					stride *= c.ashape[ad]
				}
				xf := actDequant(&c.in, x)
				if xf < 0 {
					xf *= actDequant(&c.al, alpha[ai])
				}
				want := actQuantize(&c.out, c.typ, xf)
				if d := got[i] - want; d > 1 || d < -1 {
					t.Fatalf("element %d (x %d, alpha %d): got %d, oracle %d", i, x, alpha[ai], got[i], want)
				}
			}
		})
	}
	t.Run("exact", func(t *testing.T) {
		// in 0.5, alpha 0.25 (q 2 = 0.5), out 0.5: -4 -> -8 * 0.25 = -2;
		// -3 -> -6 * 0.25 = -1.5: the high multiply gives -3 (-6/2 exact),
		// the rounding right shift rounds -1.5 away from zero to -2.
		at := builder.Tensor{Name: "alpha", Type: actI8, Shape: []int{1}, Data: []byte{2}, Scale: []float32{0.25}, ZeroPoint: []int64{0}}
		a := actOp{op: tflite.BuiltinOperatorPRELU, typ: actI8, shape: []int{4}, in: &actQ{0.5, 0}, out: &actQ{0.5, 0}, extra: []builder.Tensor{at}}
		actCheckExact(t, a, []int32{-4, -3, 5, 0}, []int32{-2, -2, 5, 0})
	})
	t.Run("float", func(t *testing.T) {
		at := builder.Tensor{Name: "alpha", Type: actF32, Shape: []int{2}, Data: builder.Float32Data([]float32{0.5, -1})}
		a := actOp{op: tflite.BuiltinOperatorPRELU, typ: actF32, shape: []int{2, 2}, extra: []builder.Tensor{at}}
		actCheckFloat(t, a, []float32{-2, -2, 3, 0}, []float32{-1, 2, 3, 0})
	})
}

// ---------------------------------------------------------------------------
// Errors and allocations

func TestActivationErrors(t *testing.T) {
	q := &actQ{0.1, 0}
	sig8 := &actQ{1.0 / 256, -128}
	alpha := func(typ tflite.TensorType, shape []int) builder.Tensor {
		n := 1
		for _, d := range shape {
			n *= d
		}
		return builder.Tensor{Name: "alpha", Type: typ, Shape: shape, Data: make([]byte, n*map[tflite.TensorType]int{actI8: 1, actU8: 1, actF32: 4}[typ]), Scale: []float32{0.1}, ZeroPoint: []int64{0}}
	}
	cases := []struct {
		name string
		a    actOp
		want string
	}{
		{"relu int32", actOp{op: tflite.BuiltinOperatorRELU, typ: actI32, shape: []int{4}}, "unsupported tensor type"},
		{"relu type mismatch", actOp{op: tflite.BuiltinOperatorRELU, typ: actI8, shape: []int{4}, in: q, out: q, outType: actU8}, "must match"},
		{"relu missing quantization", actOp{op: tflite.BuiltinOperatorRELU, typ: actI8, shape: []int{4}, out: q}, "no quantization"},
		{"relu int16 zero point", actOp{op: tflite.BuiltinOperatorRELU, typ: actI16, shape: []int{4}, in: &actQ{0.1, 3}, out: q}, "zero point 0"},
		{"relu_n1_to_1 int16", actOp{op: tflite.BuiltinOperatorRELU_N1_TO_1, typ: actI16, shape: []int{4}, in: q, out: q}, "unsupported tensor type"},
		{"relu zero scale", actOp{op: tflite.BuiltinOperatorRELU, typ: actI8, shape: []int{4}, in: &actQ{0, 0}, out: q}, "positive"},
		{"relu zero point out of range", actOp{op: tflite.BuiltinOperatorRELU, typ: actI8, shape: []int{4}, in: &actQ{0.1, 300}, out: q}, "zero point"},
		{"relu output shape", actOp{op: tflite.BuiltinOperatorRELU, typ: actF32, shape: []int{4}, outShape: []int{5}}, "computed output shape"},
		{"logistic int8 output zero point", actOp{op: tflite.BuiltinOperatorLOGISTIC, typ: actI8, shape: []int{4}, in: q, out: &actQ{1.0 / 256, 0}}, "zero point -128"},
		{"logistic int8 output zero point", actOp{op: tflite.BuiltinOperatorLOGISTIC, typ: actI8, shape: []int{4}, in: q, out: &actQ{1.0 / 256, 0}}, "zero point -128"},
		{"logistic uint8 output scale", actOp{op: tflite.BuiltinOperatorLOGISTIC, typ: actU8, shape: []int{4}, in: q, out: &actQ{0.01, 0}}, "scale 1/256"},
		{"logistic int16", actOp{op: tflite.BuiltinOperatorLOGISTIC, typ: actI16, shape: []int{4}, in: q, out: q}, "unsupported tensor type"},
		{"logistic tiny input scale", actOp{op: tflite.BuiltinOperatorLOGISTIC, typ: actI8, shape: []int{4}, in: &actQ{1e-9, 0}, out: sig8}, "too small"},
		{"tanh bool", actOp{op: tflite.BuiltinOperatorTANH, typ: tflite.TensorTypeBOOL, shape: []int{4}}, "unsupported tensor type"},
		{"leaky_relu options", actOp{op: tflite.BuiltinOperatorLEAKY_RELU, typ: actF32, shape: []int{4}, opts: &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsReducerOptions, Value: &tflite.ReducerOptionsT{}}}, "LeakyReluOptions"},
		{"leaky_relu NaN alpha", actOp{op: tflite.BuiltinOperatorLEAKY_RELU, typ: actI8, shape: []int{4}, in: q, out: q, opts: actLeakyOpts(float32(math.NaN()))}, "not a finite"},
		{"hard_swish scale ratio", actOp{op: tflite.BuiltinOperatorHARD_SWISH, typ: actI8, shape: []int{4}, in: &actQ{200, 0}, out: &actQ{0.01, 0}}, "too large"},
		{"hard_swish int16", actOp{op: tflite.BuiltinOperatorHARD_SWISH, typ: actI16, shape: []int{4}, in: q, out: q}, "unsupported tensor type"},
		{"prelu one input", actOp{op: tflite.BuiltinOperatorPRELU, typ: actF32, shape: []int{4}}, "has 1 inputs, want 2"},
		{"prelu alpha type", actOp{op: tflite.BuiltinOperatorPRELU, typ: actI8, shape: []int{4}, in: q, out: q, extra: []builder.Tensor{alpha(actU8, []int{4})}}, "unsupported tensor type"},
		{"prelu alpha shape", actOp{op: tflite.BuiltinOperatorPRELU, typ: actI8, shape: []int{2, 4}, in: q, out: q, extra: []builder.Tensor{alpha(actI8, []int{3})}}, "does not broadcast"},
		{"prelu alpha rank", actOp{op: tflite.BuiltinOperatorPRELU, typ: actI8, shape: []int{4}, in: q, out: q, extra: []builder.Tensor{alpha(actI8, []int{1, 4})}}, "more dimensions"},
		{"prelu alpha unquantized", actOp{op: tflite.BuiltinOperatorPRELU, typ: actI8, shape: []int{4}, in: q, out: q, extra: []builder.Tensor{{Name: "alpha", Type: actI8, Shape: []int{4}, Data: make([]byte, 4)}}}, "no quantization"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { actWantError(t, c.a.model(), c.want) })
	}
	t.Run("per-channel input", func(t *testing.T) {
		m := actOp{op: tflite.BuiltinOperatorRELU, typ: actI8, shape: []int{2}, out: q}.model()
		m.Tensors[0].Scale, m.Tensors[0].ZeroPoint = []float32{0.1, 0.2}, []int64{0, 0}
		actWantError(t, m, "quantized per tensor")
	})
	t.Run("version", func(t *testing.T) {
		actWantError(t, actOp{op: tflite.BuiltinOperatorHARD_SWISH, version: 2, typ: actF32, shape: []int{4}}.model(), "version 2 is not supported")
	})
}

func TestActivationZeroAllocs(t *testing.T) {
	q := &actQ{0.05, 3}
	at8 := builder.Tensor{Name: "alpha", Type: actI8, Shape: []int{4}, Data: []byte{1, 2, 3, 4}, Scale: []float32{0.1}, ZeroPoint: []int64{0}}
	atf := builder.Tensor{Name: "alpha", Type: actF32, Shape: []int{4}, Data: builder.Float32Data([]float32{1, 2, 3, 4})}
	cases := []actOp{
		{op: tflite.BuiltinOperatorRELU, typ: actI8, in: q, out: &actQ{0.04, -3}},
		{op: tflite.BuiltinOperatorRELU6, typ: actI8, in: q, out: q},
		{op: tflite.BuiltinOperatorRELU6, typ: actU8, in: q, out: q},
		{op: tflite.BuiltinOperatorRELU_N1_TO_1, typ: actF32},
		{op: tflite.BuiltinOperatorLOGISTIC, typ: actI8, in: q, out: &actQ{1.0 / 256, -128}},
		{op: tflite.BuiltinOperatorLOGISTIC, typ: actU8, in: q, out: &actQ{1.0 / 256, 0}},
		{op: tflite.BuiltinOperatorLOGISTIC, typ: actF32},
		{op: tflite.BuiltinOperatorTANH, typ: actI8, in: q, out: &actQ{1.0 / 128, 0}},
		{op: tflite.BuiltinOperatorTANH, typ: actU8, in: q, out: q},
		{op: tflite.BuiltinOperatorLEAKY_RELU, typ: actI16, in: q, out: q, opts: actLeakyOpts(0.1)},
		{op: tflite.BuiltinOperatorHARD_SWISH, typ: actI8, in: q, out: q},
		{op: tflite.BuiltinOperatorHARD_SWISH, typ: actF32},
		{op: tflite.BuiltinOperatorPRELU, typ: actI8, in: q, out: q, extra: []builder.Tensor{at8}},
		{op: tflite.BuiltinOperatorPRELU, typ: actF32, extra: []builder.Tensor{atf}},
	}
	for _, a := range cases {
		t.Run(tflite.EnumNamesBuiltinOperator[a.op]+"/"+tflite.EnumNamesTensorType[a.typ], func(t *testing.T) {
			a.shape = []int{2, 3, 4}
			size := map[tflite.TensorType]int{actI8: 1, actU8: 1, actI16: 2, actF32: 4}[a.typ]
			actZeroAllocs(t, a.model(), make([]byte, 24*size))
		})
	}
}
