package runtime_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

func elemMulOpts(act tflite.ActivationFunctionType) *tflite.BuiltinOptionsT {
	return &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsMulOptions, Value: &tflite.MulOptionsT{FusedActivationFunction: act}}
}

func elemMulReal(x, y float64) float64 { return x * y }

func TestMulQuantizedOracle(t *testing.T) {
	acts := []tflite.ActivationFunctionType{tflite.ActivationFunctionTypeNONE, tflite.ActivationFunctionTypeRELU, tflite.ActivationFunctionTypeRELU6}
	for _, typ := range elemQuantTypes {
		t.Run(elemTypeName(typ), func(t *testing.T) {
			r := rand.New(rand.NewPCG(20, uint64(typ)))
			for i := range 150 {
				a, b := elemRandBroadcastShapes(r, 5)
				s1, s2 := elemRandScale(r), elemRandScale(r)
				// Output scales from tight (most results saturate) to
				// loose (most round to a few steps).
				_, hi1 := elemRange(typ)
				so := s1 * s2 * float32(hi1) * float32(math.Exp(-3+5*r.Float64()))
				act := acts[r.IntN(len(acts))]
				if i%2 == 0 {
					act = tflite.ActivationFunctionTypeNONE
				}
				elemCheckQuantOracle(t, r, tflite.BuiltinOperatorMUL, elemQuantCase{
					typ: typ, a: a, b: b, s1: s1, s2: s2, so: so,
					z1: elemRandZP(r, typ), z2: elemRandZP(r, typ), zo: elemRandZP(r, typ),
					act: act, opts: elemMulOpts(act),
				}, elemMulReal)
			}
		})
	}
	// The quantization of YOLOv8n's SiLU multiplies (x * sigmoid(x)).
	t.Run("yolov8n silu", func(t *testing.T) {
		i8 := tflite.TensorTypeINT8
		r := rand.New(rand.NewPCG(21, 1))
		shape := []int{1, 8, 8, 16}
		for _, p := range [][6]float64{
			{0.43521, -3, 0.00390625, -128, 0.22293828, -127},
			{1.0384797, -2, 0.00390625, -128, 0.52544075, -127},
			{0.05954203, -11, 0.00390625, -128, 0.034330856, -112},
		} {
			elemCheckQuantOracle(t, r, tflite.BuiltinOperatorMUL, elemQuantCase{
				typ: i8, a: shape, b: shape, s1: float32(p[0]), z1: int64(p[1]), s2: float32(p[2]), z2: int64(p[3]), so: float32(p[4]), zo: int64(p[5]),
			}, elemMulReal)
		}
	})
}

// TestMulQuantizedExact checks hand-derived results, including TensorFlow
// Lite's rounding of halves toward +infinity in its doubling high
// multiply (a factor of 0.5 has no right shift after it).
func TestMulQuantizedExact(t *testing.T) {
	i8, u8, i16 := tflite.TensorTypeINT8, tflite.TensorTypeUINT8, tflite.TensorTypeINT16
	none := tflite.ActivationFunctionTypeNONE
	for _, c := range []struct {
		name       string
		typ        tflite.TensorType
		s1, s2, so float32
		z1, z2, zo int64
		act        tflite.ActivationFunctionType
		a, b, want []int64
	}{
		{"int8 unit scales saturate", i8, 1, 1, 1, 0, 0, 0, none,
			[]int64{10, 12, -12, -3}, []int64{12, 12, 12, 5}, []int64{120, 127, -128, -15}},
		{"int8 halves round up", i8, 1, 1, 2, 0, 0, 0, none,
			[]int64{1, -1, 1, -1, 5, -5}, []int64{3, 3, 1, 1, 5, 5}, []int64{2, -1, 1, 0, 13, -12}},
		{"int8 relu", i8, 1, 1, 1, 0, 0, -20, tflite.ActivationFunctionTypeRELU,
			[]int64{3, 3}, []int64{-4, 4}, []int64{-20, -8}},
		{"uint8 zero points", u8, 1.0 / 16, 1.0 / 16, 1.0 / 16, 128, 128, 128, none,
			[]int64{132, 124, 255}, []int64{136, 136, 255}, []int64{130, 126, 255}},
		{"int16", i16, 1.0 / 128, 1.0 / 128, 1.0 / 128, 0, 0, 0, none,
			[]int64{128, -32768, 100}, []int64{256, -32768, -3}, []int64{256, 32767, -2}},
		// Scales where the factor computed in float (full TensorFlow Lite,
		// uint8) and in double (TFLM, int8) round differently.
		{"uint8 factor in float", u8, 0.577068508, 0.0426110178, 1.28402805, 0, 0, 0, none,
			[]int64{23}, []int64{185}, []int64{82}},
		{"int8 factor in double", i8, 0.577068508, 0.0426110178, 1.28402805, -128, -128, -128, none,
			[]int64{-105}, []int64{57}, []int64{-47}},
	} {
		t.Run(c.name, func(t *testing.T) {
			shape := []int{len(c.a)}
			m := elemModel(tflite.BuiltinOperatorMUL, elemMulOpts(c.act), []elemT{elemQ(c.typ, shape, c.s1, c.z1), elemQ(c.typ, shape, c.s2, c.z2)}, elemQ(c.typ, shape, c.so, c.zo))
			got := elemDecode(c.typ, runModel(t, m, elemEncode(c.typ, c.a), elemEncode(c.typ, c.b))[0])
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("element %d: %d * %d -> %d, want %d", i, c.a[i], c.b[i], got[i], c.want[i])
				}
			}
		})
	}
}

// TestMulUint8ExtremeScale: traffic_model.tflite multiplies uint8 tensors
// into outputs of scale ~3e-35 (a factor of ~3e30, its shift far beyond
// 31). The model must load; a zero product stays at the zero point.
func TestMulUint8ExtremeScale(t *testing.T) {
	u8 := tflite.TensorTypeUINT8
	shape := []int{4}
	m := elemModel(tflite.BuiltinOperatorMUL, nil, []elemT{elemQ(u8, shape, 0.023529412, 0), elemQ(u8, shape, 0.00390625, 0)}, elemQ(u8, shape, 2.972124e-35, 0))
	got := elemDecode(u8, runModel(t, m, elemEncode(u8, []int64{0, 0, 7, 0}), elemEncode(u8, []int64{0, 9, 0, 255}))[0])
	for i, g := range got {
		if g != 0 {
			t.Errorf("element %d: zero product gives %d, want 0", i, g)
		}
	}
}

func TestMulFloatAndIntegers(t *testing.T) {
	f32, i32, i64 := tflite.TensorTypeFLOAT32, tflite.TensorTypeINT32, tflite.TensorTypeINT64
	t.Run("float32 relu6", func(t *testing.T) {
		a := []float32{-2, 0.5, 1.5, 3, 100, float32(math.Copysign(0, -1))}
		b := []float32{1.5, 3}
		m := elemModel(tflite.BuiltinOperatorMUL, elemMulOpts(tflite.ActivationFunctionTypeRELU6), []elemT{elemF(f32, []int{3, 2}), elemF(f32, []int{2})}, elemF(f32, []int{3, 2}))
		got := float32s(runModel(t, m, builder.Float32Data(a), builder.Float32Data(b))[0])
		for i, x := range a {
			want := min(max(x*b[i%2], 0), 6)
			if got[i] != want {
				t.Errorf("element %d: %v, want %v", i, got[i], want)
			}
		}
	})
	for _, c := range []struct {
		name    string
		typ     tflite.TensorType
		act     tflite.ActivationFunctionType
		a, b, w []int64
	}{
		{"int32 wraps", i32, tflite.ActivationFunctionTypeNONE,
			[]int64{65536, math.MaxInt32, -7}, []int64{65536, 2, 3}, []int64{0, -2, -21}},
		{"int32 relu", i32, tflite.ActivationFunctionTypeRELU,
			[]int64{65536, math.MaxInt32, -7}, []int64{65536, 2, 3}, []int64{0, 0, 0}},
		{"int64", i64, tflite.ActivationFunctionTypeNONE,
			[]int64{1 << 40, math.MaxInt64, -7}, []int64{1 << 20, 2, 3}, []int64{1 << 60, -2, -21}},
	} {
		t.Run(c.name, func(t *testing.T) {
			shape := []int{len(c.a)}
			m := elemModel(tflite.BuiltinOperatorMUL, elemMulOpts(c.act), []elemT{elemF(c.typ, shape), elemF(c.typ, shape)}, elemF(c.typ, shape))
			got := elemDecode(c.typ, runModel(t, m, elemEncode(c.typ, c.a), elemEncode(c.typ, c.b))[0])
			for i := range got {
				if got[i] != c.w[i] {
					t.Errorf("element %d: %d, want %d", i, got[i], c.w[i])
				}
			}
		})
	}
}

func TestMulErrors(t *testing.T) {
	i8, u8, i16 := tflite.TensorTypeINT8, tflite.TensorTypeUINT8, tflite.TensorTypeINT16
	s := []int{2}
	for _, c := range []struct {
		name      string
		ins       []elemT
		out       elemT
		fragments []string
	}{
		{"mixed types", []elemT{elemQ(i8, s, 1, 0), elemQ(u8, s, 1, 0)}, elemQ(i8, s, 1, 0), []string{"must match"}},
		{"int16 zero point", []elemT{elemQ(i16, s, 1, 3), elemQ(i16, s, 1, 0)}, elemQ(i16, s, 1, 0), []string{"zero points of 0"}},
		{"missing quantization", []elemT{elemF(i8, s), elemQ(i8, s, 1, 0)}, elemQ(i8, s, 1, 0), []string{"no quantization parameters"}},
		{"nan scale", []elemT{elemQ(i8, s, float32(math.NaN()), 0), elemQ(i8, s, 1, 0)}, elemQ(i8, s, 1, 0), []string{"scale NaN"}},
		{"infinite factor", []elemT{elemQ(u8, s, 1e30, 0), elemQ(u8, s, 1e30, 0)}, elemQ(u8, s, 1, 0), []string{"not a finite"}},
		{"bool", []elemT{elemF(tflite.TensorTypeBOOL, s), elemF(tflite.TensorTypeBOOL, s)}, elemF(tflite.TensorTypeBOOL, s), []string{"unsupported tensor type"}},
		{"broadcast", []elemT{elemQ(i8, []int{2}, 1, 0), elemQ(i8, []int{3}, 1, 0)}, elemQ(i8, nil, 1, 0), []string{"cannot be broadcast"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			elemWantError(t, elemModel(tflite.BuiltinOperatorMUL, nil, c.ins, c.out), c.fragments...)
		})
	}
}

func TestMulZeroAllocs(t *testing.T) {
	i8 := tflite.TensorTypeINT8
	a, b := []int{1, 4, 4, 8}, []int{1, 1, 1, 8}
	m := elemModel(tflite.BuiltinOperatorMUL, elemMulOpts(tflite.ActivationFunctionTypeRELU), []elemT{elemQ(i8, a, 0.5, -3), elemQ(i8, b, 0.01, 4)}, elemQ(i8, a, 0.02, 1))
	elemZeroAllocs(t, m, make([]byte, 128), make([]byte, 8))
	f32 := tflite.TensorTypeFLOAT32
	m = elemModel(tflite.BuiltinOperatorMUL, nil, []elemT{elemF(f32, a), elemF(f32, b)}, elemF(f32, a))
	elemZeroAllocs(t, m, make([]byte, 512), make([]byte, 32))
}
