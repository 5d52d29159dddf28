package runtime_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

// --- SQUARED_DIFFERENCE ---

// TestSquaredDifferenceQuantizedOracle checks int8 and int16 against
// (x - y)² on the dequantized inputs. The inputs are rescaled to
// 2^leftShift / (2 * max scale) units (7 bits for int8, none for int16)
// before subtracting, so the tolerance grows with that rounding.
func TestSquaredDifferenceQuantizedOracle(t *testing.T) {
	for _, c := range []struct {
		typ       tflite.TensorType
		leftShift int
		maxLogK   float64
	}{
		{tflite.TensorTypeINT8, 7, 7},
		{tflite.TensorTypeINT16, 0, 13},
	} {
		t.Run(elemTypeName(c.typ), func(t *testing.T) {
			r := rand.New(rand.NewPCG(40, uint64(c.typ)))
			for range 150 {
				a, b := elemRandBroadcastShapes(r, 5)
				s1, s2 := elemRandScale(r), elemRandScale(r)
				maxS := float64(max(s1, s2))
				so := float32(maxS * maxS * math.Exp(c.maxLogK*r.Float64()))
				u := 2 * maxS / float64(int(1)<<c.leftShift) // one unit after rescaling
				elemCheckQuantOracle(t, r, tflite.BuiltinOperatorSQUARED_DIFFERENCE, elemQuantCase{
					typ: c.typ, a: a, b: b, s1: s1, s2: s2, so: so,
					z1: elemRandZP(r, c.typ), z2: elemRandZP(r, c.typ), zo: elemRandZP(r, c.typ),
					toleranceFor: func(x, y float64) float64 {
						return 2 + (4*math.Abs(x-y)*u+4*u*u)/float64(so)
					},
				}, func(x, y float64) float64 { return (x - y) * (x - y) })
			}
		})
	}
}

func TestSquaredDifferenceExact(t *testing.T) {
	i8, f32, i32 := tflite.TensorTypeINT8, tflite.TensorTypeFLOAT32, tflite.TensorTypeINT32
	// Scales of 1 make the pipeline exact: the inputs become x * 2^6, their
	// squared difference is scaled by (2 * 1)² / (2^14 * 1) = 2^-12.
	shape := []int{5}
	m := elemModel(tflite.BuiltinOperatorSQUARED_DIFFERENCE, nil, []elemT{elemQ(i8, shape, 1, 0), elemQ(i8, shape, 1, 0)}, elemQ(i8, shape, 1, -128))
	got := elemDecode(i8, runModel(t, m, elemEncode(i8, []int64{3, -3, 10, -100, 5}), elemEncode(i8, []int64{5, 4, -1, 100, 5}))[0])
	for i, w := range []int64{-124, -79, -7, 127, -128} {
		if got[i] != w {
			t.Errorf("int8 element %d: %d, want %d", i, got[i], w)
		}
	}
	m = elemModel(tflite.BuiltinOperatorSQUARED_DIFFERENCE, nil, []elemT{elemF(f32, []int{2, 2}), elemF(f32, []int{2})}, elemF(f32, []int{2, 2}))
	fg := float32s(runModel(t, m, builder.Float32Data([]float32{1.5, -2, 0, 4}), builder.Float32Data([]float32{0.5, 1}))[0])
	for i, w := range []float32{1, 9, 0.25, 9} {
		if fg[i] != w {
			t.Errorf("float element %d: %v, want %v", i, fg[i], w)
		}
	}
	m = elemModel(tflite.BuiltinOperatorSQUARED_DIFFERENCE, nil, []elemT{elemF(i32, []int{3}), elemF(i32, []int{3})}, elemF(i32, []int{3}))
	ig := elemDecode(i32, runModel(t, m, elemEncode(i32, []int64{7, -3, 65536}), elemEncode(i32, []int64{2, 4, 0}))[0])
	for i, w := range []int64{25, 49, 0} { // 65536² wraps to 0
		if ig[i] != w {
			t.Errorf("int32 element %d: %d, want %d", i, ig[i], w)
		}
	}
}

func TestSquaredDifferenceErrors(t *testing.T) {
	s := []int{2}
	i16, u8 := tflite.TensorTypeINT16, tflite.TensorTypeUINT8
	op := tflite.BuiltinOperatorSQUARED_DIFFERENCE
	elemWantError(t, elemModel(op, nil, []elemT{elemQ(u8, s, 1, 0), elemQ(u8, s, 1, 0)}, elemQ(u8, s, 1, 0)), "unsupported tensor type", "uint8")
	elemWantError(t, elemModel(op, nil, []elemT{elemQ(i16, s, 1, 2), elemQ(i16, s, 1, 0)}, elemQ(i16, s, 1, 0)), "zero points of 0")
	elemWantError(t, elemModel(op, nil, []elemT{elemQ(tflite.TensorTypeINT8, s, 0, 0), elemQ(tflite.TensorTypeINT8, s, 1, 0)}, elemQ(tflite.TensorTypeINT8, s, 1, 0)), "scale 0")
}

// --- MINIMUM, MAXIMUM ---

func TestMinMaxAllTypes(t *testing.T) {
	a := []int64{-5, 3, 7, 0, 100, -100}
	b := []int64{1, 2, 3} // broadcast along the last dimension of [2, 3]
	for _, typ := range []tflite.TensorType{tflite.TensorTypeINT8, tflite.TensorTypeUINT8, tflite.TensorTypeINT16, tflite.TensorTypeINT32, tflite.TensorTypeINT64} {
		for _, isMax := range []bool{false, true} {
			op := tflite.BuiltinOperatorMINIMUM
			if isMax {
				op = tflite.BuiltinOperatorMAXIMUM
			}
			t.Run(tflite.EnumNamesBuiltinOperator[op]+"/"+elemTypeName(typ), func(t *testing.T) {
				va := make([]int64, len(a))
				for i, x := range a {
					va[i] = x
					if typ == tflite.TensorTypeUINT8 {
						va[i] = x + 100
					}
				}
				in := []elemT{elemF(typ, []int{2, 3}), elemF(typ, []int{3})}
				out := elemF(typ, []int{2, 3})
				if typ != tflite.TensorTypeINT32 && typ != tflite.TensorTypeINT64 {
					in = []elemT{elemQ(typ, []int{2, 3}, 0.5, 0), elemQ(typ, []int{3}, 0.5, 0)}
					out = elemQ(typ, []int{2, 3}, 0.5, 0)
				}
				got := elemDecode(typ, runModel(t, elemModel(op, nil, in, out), elemEncode(typ, va), elemEncode(typ, b))[0])
				for i, x := range va {
					want := min(x, b[i%3])
					if isMax {
						want = max(x, b[i%3])
					}
					if got[i] != want {
						t.Errorf("element %d: %d, want %d", i, got[i], want)
					}
				}
			})
		}
	}
}

// TestMinMaxFloatSemantics: C++'s `a > b ? a : b`, bit for bit: a NaN
// first operand yields the second, and of two zeros the second wins.
func TestMinMaxFloatSemantics(t *testing.T) {
	f32 := tflite.TensorTypeFLOAT32
	nan := float32(math.NaN())
	negZero := float32(math.Copysign(0, -1))
	a := []float32{nan, 1, negZero, 0, -3, 2.5}
	b := []float32{1, nan, 0, negZero, -4, 2.5}
	wantMax := []float32{1, nan, 0, negZero, -3, 2.5}
	wantMin := []float32{1, nan, 0, negZero, -4, 2.5}
	for _, isMax := range []bool{false, true} {
		op, want := tflite.BuiltinOperatorMINIMUM, wantMin
		if isMax {
			op, want = tflite.BuiltinOperatorMAXIMUM, wantMax
		}
		m := elemModel(op, nil, []elemT{elemF(f32, []int{6}), elemF(f32, []int{6})}, elemF(f32, []int{6}))
		got := float32s(runModel(t, m, builder.Float32Data(a), builder.Float32Data(b))[0])
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Errorf("%s element %d (%v, %v): %v, want %v", tflite.EnumNamesBuiltinOperator[op], i, a[i], b[i], got[i], want[i])
			}
		}
	}
}

func TestMinMaxErrors(t *testing.T) {
	s := []int{2}
	b := tflite.TensorTypeBOOL
	elemWantError(t, elemModel(tflite.BuiltinOperatorMAXIMUM, nil, []elemT{elemF(b, s), elemF(b, s)}, elemF(b, s)), "unsupported tensor type", "bool")
	elemWantError(t, elemModel(tflite.BuiltinOperatorMINIMUM, nil, []elemT{elemF(tflite.TensorTypeINT32, s), elemF(tflite.TensorTypeINT64, s)}, elemF(tflite.TensorTypeINT32, s)), "must match")
	elemWantError(t, elemModel(tflite.BuiltinOperatorMINIMUM, nil, []elemT{elemF(tflite.TensorTypeINT32, []int{2}), elemF(tflite.TensorTypeINT32, []int{5})}, elemF(tflite.TensorTypeINT32, nil)), "cannot be broadcast")
}

// --- FLOOR_DIV ---

func TestFloorDiv(t *testing.T) {
	a := []int64{7, -7, 7, -7, 6, -6, 0, 1}
	b := []int64{2, 2, -2, -2, 3, 3, 5, 1}
	want := []int64{3, -4, -4, 3, 2, -2, 0, 1}
	for _, typ := range []tflite.TensorType{tflite.TensorTypeINT8, tflite.TensorTypeINT16, tflite.TensorTypeINT32} {
		t.Run(elemTypeName(typ), func(t *testing.T) {
			lo, _ := elemRange(typ)
			va, vb, w := append(a, lo), append(b, -1), append(want, lo) // MinInt / -1 wraps
			shape := []int{len(va)}
			m := elemModel(tflite.BuiltinOperatorFLOOR_DIV, nil, []elemT{elemF(typ, shape), elemF(typ, shape)}, elemF(typ, shape))
			got := elemDecode(typ, runModel(t, m, elemEncode(typ, va), elemEncode(typ, vb))[0])
			for i := range w {
				if got[i] != w[i] {
					t.Errorf("floor(%d / %d) = %d, want %d", va[i], vb[i], got[i], w[i])
				}
			}
		})
	}
	t.Run("float32 broadcast", func(t *testing.T) {
		f32 := tflite.TensorTypeFLOAT32
		m := elemModel(tflite.BuiltinOperatorFLOOR_DIV, nil, []elemT{elemF(f32, []int{2, 3}), elemF(f32, []int{3})}, elemF(f32, []int{2, 3}))
		got := float32s(runModel(t, m, builder.Float32Data([]float32{7, -7, 0.5, -0.5, 1e9, 3}), builder.Float32Data([]float32{2, 2, 0.25}))[0])
		for i, w := range []float32{3, -4, 2, -1, 5e8, 12} {
			if got[i] != w {
				t.Errorf("element %d: %v, want %v", i, got[i], w)
			}
		}
	})
}

// TestFloorDivByZero: a zero divisor (negative zero included) is an error
// from Invoke, not a panic.
func TestFloorDivByZero(t *testing.T) {
	for _, c := range []struct {
		typ  tflite.TensorType
		a, b []byte
	}{
		{tflite.TensorTypeINT32, elemEncode(tflite.TensorTypeINT32, []int64{1, 2}), elemEncode(tflite.TensorTypeINT32, []int64{3, 0})},
		{tflite.TensorTypeINT8, []byte{1, 2}, []byte{0, 1}},
		{tflite.TensorTypeFLOAT32, builder.Float32Data([]float32{1, 2}), builder.Float32Data([]float32{1, float32(math.Copysign(0, -1))})},
	} {
		t.Run(elemTypeName(c.typ), func(t *testing.T) {
			s := []int{2}
			m := elemModel(tflite.BuiltinOperatorFLOOR_DIV, nil, []elemT{elemF(c.typ, s), elemF(c.typ, s)}, elemF(c.typ, s))
			if err := elemInvokeError(t, m, c.a, c.b); err == nil || !strings.Contains(err.Error(), "division by zero") {
				t.Errorf("error %v, want division by zero", err)
			}
		})
	}
}

func TestFloorDivErrors(t *testing.T) {
	s := []int{2}
	for _, typ := range []tflite.TensorType{tflite.TensorTypeUINT8, tflite.TensorTypeINT64, tflite.TensorTypeBOOL} {
		elemWantError(t, elemModel(tflite.BuiltinOperatorFLOOR_DIV, nil, []elemT{elemF(typ, s), elemF(typ, s)}, elemF(typ, s)), "unsupported tensor type")
	}
}

func TestBinaryZeroAllocs(t *testing.T) {
	i8, f32, i32 := tflite.TensorTypeINT8, tflite.TensorTypeFLOAT32, tflite.TensorTypeINT32
	a, b := []int{2, 3, 4}, []int{3, 1}
	elemZeroAllocs(t, elemModel(tflite.BuiltinOperatorSQUARED_DIFFERENCE, nil, []elemT{elemQ(i8, a, 0.5, 3), elemQ(i8, b, 0.25, 4)}, elemQ(i8, a, 0.5, 1)), make([]byte, 24), make([]byte, 3))
	elemZeroAllocs(t, elemModel(tflite.BuiltinOperatorMAXIMUM, nil, []elemT{elemF(f32, a), elemF(f32, b)}, elemF(f32, a)), make([]byte, 96), make([]byte, 12))
	elemZeroAllocs(t, elemModel(tflite.BuiltinOperatorMINIMUM, nil, []elemT{elemF(i32, a), elemF(i32, b)}, elemF(i32, a)), make([]byte, 96), make([]byte, 12))
	elemZeroAllocs(t, elemModel(tflite.BuiltinOperatorFLOOR_DIV, nil, []elemT{elemF(i32, a), elemF(i32, b)}, elemF(i32, a)), make([]byte, 96), elemEncode(i32, []int64{1, 2, 3}))
	elemZeroAllocs(t, elemModel(tflite.BuiltinOperatorFLOOR_DIV, nil, []elemT{elemF(f32, a), elemF(f32, b)}, elemF(f32, a)), make([]byte, 96), builder.Float32Data([]float32{1, 2, 3}))
}
