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

// Helpers shared by the element-wise kernel tests (ADD, SUB, MUL, DIV,
// SQUARED_DIFFERENCE, MINIMUM, MAXIMUM, FLOOR_DIV, QUANTIZE, DEQUANTIZE,
// CAST).

// elemT describes one tensor of an element-wise test model.
type elemT struct {
	typ   tflite.TensorType
	shape []int
	scale []float32 // nil: not quantized
	zp    []int64
	qdim  int
	data  []byte // constant contents; nil for a model input
}

func elemQ(typ tflite.TensorType, shape []int, scale float32, zp int64) elemT {
	return elemT{typ: typ, shape: shape, scale: []float32{scale}, zp: []int64{zp}}
}

func elemF(typ tflite.TensorType, shape []int) elemT { return elemT{typ: typ, shape: shape} }

// elemModel builds a model of one operator; inputs without data are model
// inputs, in order.
func elemModel(op tflite.BuiltinOperator, opts *tflite.BuiltinOptionsT, ins []elemT, out elemT) *builder.Model {
	m := &builder.Model{}
	var idx []int
	for _, in := range ins {
		i := m.AddTensor(builder.Tensor{Type: in.typ, Shape: in.shape, Scale: in.scale, ZeroPoint: in.zp, QuantizedDimension: in.qdim, Data: in.data})
		idx = append(idx, i)
		if in.data == nil {
			m.Inputs = append(m.Inputs, i)
		}
	}
	o := m.AddTensor(builder.Tensor{Type: out.typ, Shape: out.shape, Scale: out.scale, ZeroPoint: out.zp})
	m.Outputs = []int{o}
	m.AddOp(builder.Op{Builtin: op, Inputs: idx, Outputs: []int{o}, Options: opts})
	return m
}

// elemInterpreter prepares m, failing the test on error.
func elemInterpreter(t testing.TB, m *builder.Model) *runtime.Interpreter {
	t.Helper()
	it, err := runtime.NewInterpreter(buildModel(t, m), nil)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	return it
}

// elemInvokeError sets the inputs, invokes and returns Invoke's error.
func elemInvokeError(t testing.TB, m *builder.Model, inputs ...[]byte) error {
	t.Helper()
	it := elemInterpreter(t, m)
	for i, in := range inputs {
		if err := it.Inputs()[i].CopyFrom(in); err != nil {
			t.Fatal(err)
		}
	}
	return it.Invoke()
}

// elemZeroAllocs checks that a warmed-up Invoke allocates nothing.
func elemZeroAllocs(t *testing.T, m *builder.Model, inputs ...[]byte) {
	t.Helper()
	it := elemInterpreter(t, m)
	invoke(t, it, inputs...)
	if n := testing.AllocsPerRun(20, func() {
		if err := it.Invoke(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Invoke allocates %v times per run, want 0", n)
	}
}

// elemWantError checks that preparing m fails with a message containing
// every fragment.
func elemWantError(t *testing.T, m *builder.Model, fragments ...string) {
	t.Helper()
	err := prepareError(t, m)
	if err == nil {
		t.Fatalf("model prepared, want an error mentioning %q", fragments)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not mention %q", err, f)
		}
	}
}

// elemEncode writes integer values as little-endian tensor bytes.
func elemEncode(typ tflite.TensorType, v []int64) []byte {
	var out []byte
	for _, x := range v {
		switch typ {
		case tflite.TensorTypeINT8, tflite.TensorTypeUINT8, tflite.TensorTypeBOOL:
			out = append(out, byte(x))
		case tflite.TensorTypeINT16, tflite.TensorTypeUINT16:
			out = binary.LittleEndian.AppendUint16(out, uint16(x))
		case tflite.TensorTypeINT32, tflite.TensorTypeUINT32:
			out = binary.LittleEndian.AppendUint32(out, uint32(x))
		case tflite.TensorTypeINT64:
			out = binary.LittleEndian.AppendUint64(out, uint64(x))
		default:
			panic("elemEncode: type " + tflite.EnumNamesTensorType[typ])
		}
	}
	return out
}

// elemDecode reads integer tensor bytes.
func elemDecode(typ tflite.TensorType, b []byte) []int64 {
	var out []int64
	for len(b) > 0 {
		switch typ {
		case tflite.TensorTypeINT8:
			out, b = append(out, int64(int8(b[0]))), b[1:]
		case tflite.TensorTypeUINT8, tflite.TensorTypeBOOL:
			out, b = append(out, int64(b[0])), b[1:]
		case tflite.TensorTypeINT16:
			out, b = append(out, int64(int16(binary.LittleEndian.Uint16(b)))), b[2:]
		case tflite.TensorTypeUINT16:
			out, b = append(out, int64(binary.LittleEndian.Uint16(b))), b[2:]
		case tflite.TensorTypeINT32:
			out, b = append(out, int64(int32(binary.LittleEndian.Uint32(b)))), b[4:]
		case tflite.TensorTypeUINT32:
			out, b = append(out, int64(binary.LittleEndian.Uint32(b))), b[4:]
		case tflite.TensorTypeINT64:
			out, b = append(out, int64(binary.LittleEndian.Uint64(b))), b[8:]
		default:
			panic("elemDecode: type " + tflite.EnumNamesTensorType[typ])
		}
	}
	return out
}

func elemFloat64Data(v []float64) []byte {
	var out []byte
	for _, x := range v {
		out = binary.LittleEndian.AppendUint64(out, math.Float64bits(x))
	}
	return out
}

// elemRange is the value range of an integer tensor type.
func elemRange(typ tflite.TensorType) (lo, hi int64) {
	switch typ {
	case tflite.TensorTypeINT8:
		return math.MinInt8, math.MaxInt8
	case tflite.TensorTypeUINT8:
		return 0, math.MaxUint8
	case tflite.TensorTypeINT16:
		return math.MinInt16, math.MaxInt16
	case tflite.TensorTypeINT32:
		return math.MinInt32, math.MaxInt32
	}
	return math.MinInt64, math.MaxInt64
}

// elemRandInts draws n values of typ's range.
func elemRandInts(r *rand.Rand, typ tflite.TensorType, n int) []int64 {
	lo, hi := elemRange(typ)
	out := make([]int64, n)
	for i := range out {
		out[i] = lo + r.Int64N(hi-lo+1)
	}
	return out
}

// elemBroadcastIndex maps an output position to the flat index of an
// input of shape in broadcast to shape out: the naive oracle.
func elemBroadcastIndex(pos int, out, in []int) int {
	idx := 0
	stride := 1
	for d := len(out) - 1; d >= 0; d-- {
		coord := pos % out[d]
		pos /= out[d]
		j := d - (len(out) - len(in))
		if j < 0 {
			continue
		}
		if in[j] != 1 {
			idx += coord * stride
		}
		stride *= in[j]
	}
	return idx
}

// elemBroadcastShape is the NumPy broadcast of two shapes, or nil.
func elemBroadcastShape(a, b []int) []int {
	rank := max(len(a), len(b))
	out := make([]int, rank)
	for i := range rank {
		da, db := 1, 1
		if j := i - rank + len(a); j >= 0 {
			da = a[j]
		}
		if j := i - rank + len(b); j >= 0 {
			db = b[j]
		}
		switch {
		case da == db || db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil
		}
	}
	return out
}

// elemRandBroadcastShapes draws two compatible shapes of rank up to
// maxRank (0 included), with broadcast dimensions on either side.
func elemRandBroadcastShapes(r *rand.Rand, maxRank int) (a, b []int) {
	rank := r.IntN(maxRank + 1)
	for range rank {
		d := 1 + r.IntN(4)
		da, db := d, d
		switch r.IntN(4) {
		case 1:
			da = 1
		case 2:
			db = 1
		}
		a, b = append(a, da), append(b, db)
	}
	if rank > 0 && r.IntN(3) == 0 {
		a = a[r.IntN(rank+1):]
	} else if rank > 0 && r.IntN(3) == 0 {
		b = b[r.IntN(rank+1):]
	}
	if a == nil {
		a = []int{}
	}
	if b == nil {
		b = []int{}
	}
	return a, b
}

func elemAddOpts(act tflite.ActivationFunctionType) *tflite.BuiltinOptionsT {
	return &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsAddOptions, Value: &tflite.AddOptionsT{FusedActivationFunction: act}}
}

// TestBroadcastShapes walks float32 ADD over shape pairs of every rank up
// to 6 and checks every output element against the naive index oracle.
func TestBroadcastShapes(t *testing.T) {
	cases := []struct{ a, b []int }{
		{[]int{}, []int{}},
		{[]int{}, []int{3}},
		{[]int{1}, []int{2, 3}},
		{[]int{5}, []int{5}},
		{[]int{2, 3}, []int{3}},
		{[]int{2, 1}, []int{1, 3}},
		{[]int{3, 1, 2}, []int{4, 1}},
		{[]int{1, 4, 4, 3}, []int{1, 1, 1, 3}},
		{[]int{2, 1, 3, 1}, []int{1, 4, 1, 5}},
		{[]int{2, 3, 1, 2, 1}, []int{3, 4, 1, 2}},
		{[]int{1, 2, 1, 3, 1, 2}, []int{2, 1, 2, 1, 3, 1}},
		{[]int{2, 2, 2, 2, 2, 2}, []int{1}},
		{[]int{1, 1, 1, 1, 1, 1, 1, 4}, []int{4}}, // rank 8, equal element counts: flat
		{[]int{0, 3}, []int{1, 3}},
	}
	for _, c := range cases {
		t.Run(runtime.FormatShape(c.a)+"+"+runtime.FormatShape(c.b), func(t *testing.T) {
			checkBroadcastAdd(t, rand.New(rand.NewPCG(1, 2)), c.a, c.b)
		})
	}
}

func TestBroadcastRandomShapes(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		a, b := elemRandBroadcastShapes(r, 6)
		checkBroadcastAdd(t, r, a, b)
	}
}

func checkBroadcastAdd(t *testing.T, r *rand.Rand, a, b []int) {
	t.Helper()
	out := elemBroadcastShape(a, b)
	va := make([]float32, runtime.NumElements(a))
	vb := make([]float32, runtime.NumElements(b))
	for i := range va {
		va[i] = float32(r.IntN(1000))
	}
	for i := range vb {
		vb[i] = float32(r.IntN(1000)) / 1024
	}
	f32 := tflite.TensorTypeFLOAT32
	m := elemModel(tflite.BuiltinOperatorADD, nil, []elemT{elemF(f32, a), elemF(f32, b)}, elemF(f32, out))
	got := float32s(runModel(t, m, builder.Float32Data(va), builder.Float32Data(vb))[0])
	if len(got) != runtime.NumElements(out) {
		t.Fatalf("%v + %v: %d outputs, want %d", a, b, len(got), runtime.NumElements(out))
	}
	for i, g := range got {
		want := va[elemBroadcastIndex(i, out, a)] + vb[elemBroadcastIndex(i, out, b)]
		if g != want {
			t.Fatalf("%v + %v: output %d = %v, want %v", a, b, i, g, want)
		}
	}
}

func TestBroadcastErrors(t *testing.T) {
	f32 := tflite.TensorTypeFLOAT32
	for _, c := range []struct {
		name      string
		a, b, out []int
		fragments []string
	}{
		{"incompatible", []int{2, 3}, []int{3, 2}, nil, []string{"cannot be broadcast", "[2,3]", "[3,2]"}},
		{"incompatible trailing", []int{4}, []int{3}, nil, []string{"cannot be broadcast"}},
		{"rank 7", []int{2, 1, 1, 1, 1, 1, 2}, []int{2, 1}, nil, []string{"at most 6 dimensions"}},
		{"declared output disagrees", []int{2, 3}, []int{3}, []int{2, 2}, []string{"computed output shape [2,3]"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := elemModel(tflite.BuiltinOperatorADD, nil, []elemT{elemF(f32, c.a), elemF(f32, c.b)}, elemF(f32, c.out))
			elemWantError(t, m, c.fragments...)
		})
	}
}

func TestBroadcastZeroAllocs(t *testing.T) {
	f32 := tflite.TensorTypeFLOAT32
	a, b := []int{2, 1, 3, 1, 4}, []int{5, 1, 1, 4}
	m := elemModel(tflite.BuiltinOperatorADD, elemAddOpts(tflite.ActivationFunctionTypeRELU), []elemT{elemF(f32, a), elemF(f32, b)}, elemF(f32, []int{2, 5, 3, 1, 4}))
	elemZeroAllocs(t, m, builder.Float32Data(make([]float32, 24)), builder.Float32Data(make([]float32, 20)))
}

// elemShapeName names a shape pair for subtests.
func elemShapeName(a, b []int) string {
	return runtime.FormatShape(a) + "," + runtime.FormatShape(b)
}

// elemActRange is the clamp range a fused activation gives a quantized
// output: the type's range narrowed to round(bound / scale) + zero point.
func elemActRange(typ tflite.TensorType, act tflite.ActivationFunctionType, scale float32, zp int64) (lo, hi int64) {
	lo, hi = elemRange(typ)
	q := func(f float64) int64 { return zp + int64(math.Round(f/float64(scale))) }
	switch act {
	case tflite.ActivationFunctionTypeRELU:
		lo = max(lo, q(0))
	case tflite.ActivationFunctionTypeRELU6:
		lo, hi = max(lo, q(0)), min(hi, q(6))
	case tflite.ActivationFunctionTypeRELU_N1_TO_1:
		lo, hi = max(lo, q(-1)), min(hi, q(1))
	}
	return lo, hi
}

// elemQuantCase is a quantized binary operator case checked against float
// math on the dequantized inputs.
type elemQuantCase struct {
	typ        tflite.TensorType
	a, b       []int
	s1, s2, so float32
	z1, z2, zo int64
	act        tflite.ActivationFunctionType
	opts       *tflite.BuiltinOptionsT
	inA, inB   []int64 // nil: random
	avoidB     *int64  // a value the second input must not take
	// toleranceFor is the allowed |got - want| in output steps for inputs
	// x and y; one step when nil.
	toleranceFor func(x, y float64) float64
}

// elemCheckQuantOracle runs op on c and compares every output with
// clamp(round(f(x, y) / so) + zo) for the dequantized inputs x and y.
func elemCheckQuantOracle(t *testing.T, r *rand.Rand, op tflite.BuiltinOperator, c elemQuantCase, f func(x, y float64) float64) {
	t.Helper()
	out := elemBroadcastShape(c.a, c.b)
	va, vb := c.inA, c.inB
	if va == nil {
		va = elemRandInts(r, c.typ, runtime.NumElements(c.a))
	}
	if vb == nil {
		vb = elemRandInts(r, c.typ, runtime.NumElements(c.b))
		if c.avoidB != nil {
			for i := range vb {
				if vb[i] == *c.avoidB {
					vb[i] = *c.avoidB + 1
				}
			}
		}
	}
	m := elemModel(op, c.opts, []elemT{elemQ(c.typ, c.a, c.s1, c.z1), elemQ(c.typ, c.b, c.s2, c.z2)}, elemQ(c.typ, out, c.so, c.zo))
	got := elemDecode(c.typ, runModel(t, m, elemEncode(c.typ, va), elemEncode(c.typ, vb))[0])
	lo, hi := elemActRange(c.typ, c.act, c.so, c.zo)
	for i, g := range got {
		x := float64(c.s1) * float64(va[elemBroadcastIndex(i, out, c.a)]-c.z1)
		y := float64(c.s2) * float64(vb[elemBroadcastIndex(i, out, c.b)]-c.z2)
		real := f(x, y)
		want := min(max(int64(math.Round(real/float64(c.so)))+c.zo, lo), hi)
		tol := 1.0
		if c.toleranceFor != nil {
			tol = c.toleranceFor(x, y)
		}
		if math.Abs(float64(g-want)) > tol {
			t.Fatalf("%s %s: element %d: f(%g, %g) = %g: got %d, want %d ± %g (scales %g %g %g, zero points %d %d %d)",
				tflite.EnumNamesBuiltinOperator[op], elemShapeName(c.a, c.b), i, x, y, real, g, want, tol, c.s1, c.s2, c.so, c.z1, c.z2, c.zo)
		}
	}
}

// elemRandZP draws a zero point of typ's range (0 for int16).
func elemRandZP(r *rand.Rand, typ tflite.TensorType) int64 {
	if typ == tflite.TensorTypeINT16 {
		return 0
	}
	lo, hi := elemRange(typ)
	return lo + r.Int64N(hi-lo+1)
}

// elemRandScale draws a scale between e^-7 and e^0.5.
func elemRandScale(r *rand.Rand) float32 {
	return float32(math.Exp(-7 + 7.5*r.Float64()))
}

var elemQuantTypes = []tflite.TensorType{tflite.TensorTypeINT8, tflite.TensorTypeUINT8, tflite.TensorTypeINT16}

func elemTypeName(typ tflite.TensorType) string {
	return strings.ToLower(tflite.EnumNamesTensorType[typ])
}
