package runtime_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

func elemDivOpts(act tflite.ActivationFunctionType) *tflite.BuiltinOptionsT {
	return &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsDivOptions, Value: &tflite.DivOptionsT{FusedActivationFunction: act}}
}

// TestDivQuantizedOracle checks int8 and uint8 DIV against float math.
// The factor scale1 / (scale2 * scale_out) is kept at 64 or more: below
// that TensorFlow Lite's kernel shifts by more than 31 bits for small
// quotients (see TestDivQuantizedSmallQuotients).
func TestDivQuantizedOracle(t *testing.T) {
	for _, typ := range []tflite.TensorType{tflite.TensorTypeINT8, tflite.TensorTypeUINT8} {
		t.Run(elemTypeName(typ), func(t *testing.T) {
			r := rand.New(rand.NewPCG(30, uint64(typ)))
			lo, hi := elemRange(typ)
			for i := range 150 {
				a, b := elemRandBroadcastShapes(r, 4)
				s1, s2 := elemRandScale(r), elemRandScale(r)
				so := s1 / (s2 * float32(64*math.Exp(4*r.Float64())))
				z1, z2 := elemRandZP(r, typ), elemRandZP(r, typ)
				// Numerators near the zero point give quotients that do
				// not all saturate.
				va := make([]int64, runtime.NumElements(a))
				for j := range va {
					va[j] = min(max(z1+r.Int64N(9)-4, lo), hi)
					if i%3 == 0 {
						va[j] = lo + r.Int64N(hi-lo+1)
					}
				}
				act := tflite.ActivationFunctionTypeNONE
				if i%3 == 1 {
					act = tflite.ActivationFunctionTypeRELU
				}
				elemCheckQuantOracle(t, r, tflite.BuiltinOperatorDIV, elemQuantCase{
					typ: typ, a: a, b: b, s1: s1, s2: s2, so: so, z1: z1, z2: z2, zo: elemRandZP(r, typ),
					act: act, opts: elemDivOpts(act), inA: va, avoidB: &z2,
				}, func(x, y float64) float64 { return x / y })
			}
		})
	}
}

// TestDivQuantizedSmallQuotients pins down what TensorFlow Lite's
// reference DIV computes when its final rounding shift exceeds 31 bits
// (undefined behaviour in C++; x86-64 and AArch64 take shift counts modulo
// 32): a zero numerator gives zero point + 1, and 1 / 200 with unit scales
// saturates. edged reproduces it to stay bit-exact with TFLM.
func TestDivQuantizedSmallQuotients(t *testing.T) {
	i8 := tflite.TensorTypeINT8
	shape := []int{4}
	m := elemModel(tflite.BuiltinOperatorDIV, nil, []elemT{elemQ(i8, shape, 2, 0), elemQ(i8, shape, 2, 0)}, elemQ(i8, shape, 2, 0))
	got := elemDecode(i8, runModel(t, m, elemEncode(i8, []int64{0, 8, 100, -9}), elemEncode(i8, []int64{5, 4, 10, 2}))[0])
	want := []int64{1, 1, 5, -2}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("element %d: %d, want %d", i, got[i], want[i])
		}
	}
	m = elemModel(tflite.BuiltinOperatorDIV, nil, []elemT{elemQ(i8, shape, 1, 0), elemQ(i8, shape, 1, -128)}, elemQ(i8, shape, 1, 0))
	got = elemDecode(i8, runModel(t, m, elemEncode(i8, []int64{1, 1, 1, 1}), elemEncode(i8, []int64{72, 72, 72, 72}))[0])
	for i, g := range got {
		if g != 127 {
			t.Errorf("element %d: 1 / 200 = %d, want 127 as TensorFlow Lite computes", i, g)
		}
	}
}

func TestDivFloat(t *testing.T) {
	f32 := tflite.TensorTypeFLOAT32
	a := []float32{1, -1, 0, 7, -7, 1}
	b := []float32{0, 0, 0, 2, 2, 3}
	m := elemModel(tflite.BuiltinOperatorDIV, nil, []elemT{elemF(f32, []int{6}), elemF(f32, []int{6})}, elemF(f32, []int{6}))
	got := float32s(runModel(t, m, builder.Float32Data(a), builder.Float32Data(b))[0])
	// With no activation the output is still clamped to ±FLT_MAX.
	want := []float32{math.MaxFloat32, -math.MaxFloat32, float32(math.NaN()), 3.5, -3.5, float32(1) / 3}
	for i := range want {
		if got[i] != want[i] && !(math.IsNaN(float64(got[i])) && math.IsNaN(float64(want[i]))) {
			t.Errorf("element %d: %v / %v = %v, want %v", i, a[i], b[i], got[i], want[i])
		}
	}
	m = elemModel(tflite.BuiltinOperatorDIV, elemDivOpts(tflite.ActivationFunctionTypeRELU_N1_TO_1), []elemT{elemF(f32, []int{2, 3}), elemF(f32, []int{3})}, elemF(f32, []int{2, 3}))
	got = float32s(runModel(t, m, builder.Float32Data([]float32{1, 2, 3, -4, -5, 0.5}), builder.Float32Data([]float32{4, 1, 1}))[0])
	for i, w := range []float32{0.25, 1, 1, -1, -1, 0.5} {
		if got[i] != w {
			t.Errorf("relu_n1_to_1 element %d: %v, want %v", i, got[i], w)
		}
	}
}

func TestDivInt32(t *testing.T) {
	i32 := tflite.TensorTypeINT32
	shape := []int{5}
	m := elemModel(tflite.BuiltinOperatorDIV, nil, []elemT{elemF(i32, shape), elemF(i32, shape)}, elemF(i32, shape))
	a := []int64{7, -7, 7, math.MinInt32, 0}
	b := []int64{2, 2, -2, -1, 5}
	got := elemDecode(i32, runModel(t, m, elemEncode(i32, a), elemEncode(i32, b))[0])
	for i, w := range []int64{3, -3, -3, math.MinInt32, 0} {
		if got[i] != w {
			t.Errorf("%d / %d = %d, want %d", a[i], b[i], got[i], w)
		}
	}
	m = elemModel(tflite.BuiltinOperatorDIV, elemDivOpts(tflite.ActivationFunctionTypeRELU6), []elemT{elemF(i32, shape), elemF(i32, []int{1})}, elemF(i32, shape))
	got = elemDecode(i32, runModel(t, m, elemEncode(i32, []int64{100, -4, 9, 13, 2}), elemEncode(i32, []int64{2}))[0])
	for i, w := range []int64{6, 0, 4, 6, 1} {
		if got[i] != w {
			t.Errorf("relu6 element %d: %d, want %d", i, got[i], w)
		}
	}
}

// TestDivByZero: a zero divisor is an error from Invoke, not a panic.
func TestDivByZero(t *testing.T) {
	i32, i8 := tflite.TensorTypeINT32, tflite.TensorTypeINT8
	shape := []int{3}
	m := elemModel(tflite.BuiltinOperatorDIV, nil, []elemT{elemF(i32, shape), elemF(i32, shape)}, elemF(i32, shape))
	err := elemInvokeError(t, m, elemEncode(i32, []int64{1, 2, 3}), elemEncode(i32, []int64{1, 0, 1}))
	if err == nil || !strings.Contains(err.Error(), "division by zero") || !strings.Contains(err.Error(), "element 1") {
		t.Errorf("int32: error %v, want division by zero at element 1", err)
	}
	m = elemModel(tflite.BuiltinOperatorDIV, nil, []elemT{elemQ(i8, shape, 1, 0), elemQ(i8, shape, 1, 5)}, elemQ(i8, shape, 1, 0))
	err = elemInvokeError(t, m, elemEncode(i8, []int64{1, 2, 3}), elemEncode(i8, []int64{1, 2, 5}))
	if err == nil || !strings.Contains(err.Error(), "division by zero") || !strings.Contains(err.Error(), "element 2") {
		t.Errorf("int8: error %v, want division by zero at element 2", err)
	}
}

func TestDivErrors(t *testing.T) {
	s := []int{2}
	i16, i64, i32 := tflite.TensorTypeINT16, tflite.TensorTypeINT64, tflite.TensorTypeINT32
	for _, c := range []struct {
		name      string
		ins       []elemT
		out       elemT
		fragments []string
	}{
		{"int16", []elemT{elemQ(i16, s, 1, 0), elemQ(i16, s, 1, 0)}, elemQ(i16, s, 1, 0), []string{"unsupported tensor type", "int16"}},
		{"int64", []elemT{elemF(i64, s), elemF(i64, s)}, elemF(i64, s), []string{"unsupported tensor type"}},
		{"quantized int32", []elemT{elemQ(i32, s, 1, 0), elemF(i32, s)}, elemF(i32, s), []string{"unquantized"}},
		{"missing quantization", []elemT{elemF(tflite.TensorTypeINT8, s), elemQ(tflite.TensorTypeINT8, s, 1, 0)}, elemQ(tflite.TensorTypeINT8, s, 1, 0), []string{"no quantization"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			elemWantError(t, elemModel(tflite.BuiltinOperatorDIV, nil, c.ins, c.out), c.fragments...)
		})
	}
}

func TestDivZeroAllocs(t *testing.T) {
	u8, f32, i32 := tflite.TensorTypeUINT8, tflite.TensorTypeFLOAT32, tflite.TensorTypeINT32
	a, b := []int{2, 3, 4}, []int{3, 1}
	m := elemModel(tflite.BuiltinOperatorDIV, nil, []elemT{elemQ(u8, a, 0.5, 3), elemQ(u8, b, 0.01, 4)}, elemQ(u8, a, 0.02, 1))
	elemZeroAllocs(t, m, make([]byte, 24), []byte{1, 2, 3})
	m = elemModel(tflite.BuiltinOperatorDIV, nil, []elemT{elemF(f32, a), elemF(f32, b)}, elemF(f32, a))
	elemZeroAllocs(t, m, make([]byte, 96), builder.Float32Data([]float32{1, 2, 3}))
	m = elemModel(tflite.BuiltinOperatorDIV, nil, []elemT{elemF(i32, a), elemF(i32, b)}, elemF(i32, a))
	elemZeroAllocs(t, m, make([]byte, 96), elemEncode(i32, []int64{1, 2, 3}))
}
