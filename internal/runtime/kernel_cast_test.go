package runtime_test

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

func elemCastModel(from, to tflite.TensorType, n int) *builder.Model {
	return elemModel(tflite.BuiltinOperatorCAST, nil, []elemT{elemF(from, []int{n})}, elemF(to, []int{n}))
}

func TestCastIntegers(t *testing.T) {
	i8, u8, i16, u16, i32, u32, i64, b := tflite.TensorTypeINT8, tflite.TensorTypeUINT8, tflite.TensorTypeINT16, tflite.TensorTypeUINT16,
		tflite.TensorTypeINT32, tflite.TensorTypeUINT32, tflite.TensorTypeINT64, tflite.TensorTypeBOOL
	for _, c := range []struct {
		name     string
		from, to tflite.TensorType
		in, want []int64
	}{
		{"int32 to int8 wraps", i32, i8, []int64{300, -129, 127, -5}, []int64{44, 127, 127, -5}},
		{"int32 to uint8 wraps", i32, u8, []int64{256, -1, 255, 7}, []int64{0, 255, 255, 7}},
		{"uint32 to int32 wraps", u32, i32, []int64{math.MaxUint32, 1 << 31, 5, 0}, []int64{-1, math.MinInt32, 5, 0}},
		{"int32 to uint32", i32, u32, []int64{-1, 5, math.MinInt32, 0}, []int64{math.MaxUint32, 5, 1 << 31, 0}},
		{"int16 to int32 widens", i16, i32, []int64{-32768, 32767, -1, 0}, []int64{-32768, 32767, -1, 0}},
		{"uint8 to int16", u8, i16, []int64{255, 0, 128, 1}, []int64{255, 0, 128, 1}},
		{"int8 to uint16", i8, u16, []int64{-1, -128, 127, 0}, []int64{65535, 65408, 127, 0}},
		{"int64 to int32 wraps", i64, i32, []int64{1 << 32, 1<<32 + 7, -1, math.MaxInt64}, []int64{0, 7, -1, -1}},
		{"int32 to bool", i32, b, []int64{0, 1, -7, 256}, []int64{0, 1, 1, 1}},
		{"bool to int16", b, i16, []int64{0, 1, 2, 255}, []int64{0, 1, 1, 1}},
		{"bool to bool", b, b, []int64{0, 1, 2, 255}, []int64{0, 1, 1, 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := elemDecode(c.to, runModel(t, elemCastModel(c.from, c.to, len(c.in)), elemEncode(c.from, c.in))[0])
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("%d -> %d, want %d", c.in[i], got[i], c.want[i])
				}
			}
		})
	}
}

// TestCastFromFloat: truncation toward zero; out-of-range values saturate
// and NaN becomes 0; anything nonzero (NaN included) is true.
func TestCastFromFloat(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	in := []float32{2.9, -2.9, 0.5, -0.5, 300, -300, 3e9, -3e9, inf, -inf, nan, 1e20}
	i8, u8, i16, u16, i32, u32, i64, b := tflite.TensorTypeINT8, tflite.TensorTypeUINT8, tflite.TensorTypeINT16, tflite.TensorTypeUINT16,
		tflite.TensorTypeINT32, tflite.TensorTypeUINT32, tflite.TensorTypeINT64, tflite.TensorTypeBOOL
	for _, c := range []struct {
		to   tflite.TensorType
		want []int64
	}{
		{i8, []int64{2, -2, 0, 0, 127, -128, 127, -128, 127, -128, 0, 127}},
		{u8, []int64{2, 0, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255}},
		{i16, []int64{2, -2, 0, 0, 300, -300, 32767, -32768, 32767, -32768, 0, 32767}},
		{u16, []int64{2, 0, 0, 0, 300, 0, 65535, 0, 65535, 0, 0, 65535}},
		{i32, []int64{2, -2, 0, 0, 300, -300, math.MaxInt32, math.MinInt32, math.MaxInt32, math.MinInt32, 0, math.MaxInt32}},
		{u32, []int64{2, 0, 0, 0, 300, 0, 3e9, 0, math.MaxUint32, 0, 0, math.MaxUint32}},
		{i64, []int64{2, -2, 0, 0, 300, -300, 3e9, -3e9, math.MaxInt64, math.MinInt64, 0, math.MaxInt64}},
		{b, []int64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
	} {
		t.Run(elemTypeName(c.to), func(t *testing.T) {
			got := elemDecode(c.to, runModel(t, elemCastModel(tflite.TensorTypeFLOAT32, c.to, len(in)), builder.Float32Data(in))[0])
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("%v -> %d, want %d", in[i], got[i], c.want[i])
				}
			}
		})
	}
	t.Run("float64 to int32", func(t *testing.T) {
		in := []float64{-2147483648.9, 2147483647.9, -0.99, 1e300}
		got := elemDecode(i32, runModel(t, elemCastModel(tflite.TensorTypeFLOAT64, i32, len(in)), elemFloat64Data(in))[0])
		for i, w := range []int64{math.MinInt32, math.MaxInt32, 0, math.MaxInt32} {
			if got[i] != w {
				t.Errorf("%v -> %d, want %d", in[i], got[i], w)
			}
		}
	})
	t.Run("zero to bool", func(t *testing.T) {
		z := []float32{0, float32(math.Copysign(0, -1))}
		got := elemDecode(b, runModel(t, elemCastModel(tflite.TensorTypeFLOAT32, b, 2), builder.Float32Data(z))[0])
		if got[0] != 0 || got[1] != 0 {
			t.Errorf("±0 -> %v, want false", got)
		}
	})
}

func TestCastToFloat(t *testing.T) {
	f32 := tflite.TensorTypeFLOAT32
	for _, c := range []struct {
		name string
		from tflite.TensorType
		in   []int64
		want []float32
	}{
		{"int32", tflite.TensorTypeINT32, []int64{-7, 1<<24 + 1, math.MaxInt32}, []float32{-7, 1 << 24, 1 << 31}},
		{"int64 rounds to nearest even", tflite.TensorTypeINT64, []int64{1<<24 + 3, -(1<<25 + 2), 1 << 62}, []float32{1<<24 + 4, -(1 << 25), 1 << 62}},
		{"uint32", tflite.TensorTypeUINT32, []int64{math.MaxUint32, 3}, []float32{1 << 32, 3}},
		{"int8", tflite.TensorTypeINT8, []int64{-128, 127}, []float32{-128, 127}},
		{"bool", tflite.TensorTypeBOOL, []int64{0, 1, 3}, []float32{0, 1, 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := float32s(runModel(t, elemCastModel(c.from, f32, len(c.in)), elemEncode(c.from, c.in))[0])
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("%d -> %v, want %v", c.in[i], got[i], c.want[i])
				}
			}
		})
	}
	t.Run("float64 to float32", func(t *testing.T) {
		in := []float64{0.1, 1e300, -1e-300, 1 + 1.0/(1<<24)}
		got := float32s(runModel(t, elemCastModel(tflite.TensorTypeFLOAT64, f32, len(in)), elemFloat64Data(in))[0])
		for i, w := range []float32{0.1, float32(math.Inf(1)), float32(math.Copysign(0, -1)), 1} {
			if math.Float32bits(got[i]) != math.Float32bits(w) {
				t.Errorf("%v -> %v, want %v", in[i], got[i], w)
			}
		}
	})
	t.Run("float32 to float64", func(t *testing.T) {
		in := []float32{0.1, -3}
		out := runModel(t, elemCastModel(f32, tflite.TensorTypeFLOAT64, len(in)), builder.Float32Data(in))[0]
		for i, x := range in {
			if g := math.Float64frombits(binary.LittleEndian.Uint64(out[8*i:])); g != float64(x) {
				t.Errorf("%v -> %v, want %v", x, g, float64(x))
			}
		}
	})
}

func TestCastErrors(t *testing.T) {
	s := []int{2}
	elemWantError(t, elemCastModel(tflite.TensorTypeSTRING, tflite.TensorTypeINT32, 2), "unsupported tensor type")
	elemWantError(t, elemCastModel(tflite.TensorTypeFLOAT32, tflite.TensorTypeFLOAT16, 2), "unsupported tensor type", "float16")
	elemWantError(t, elemModel(tflite.BuiltinOperatorCAST, nil, []elemT{elemF(tflite.TensorTypeINT32, s)}, elemF(tflite.TensorTypeINT8, []int{3})), "computed output shape [2]")
	elemWantError(t, elemModel(tflite.BuiltinOperatorCAST, nil, []elemT{elemF(tflite.TensorTypeINT32, s), elemF(tflite.TensorTypeINT32, s)}, elemF(tflite.TensorTypeINT8, s)), "2 inputs")
}

func TestCastZeroAllocs(t *testing.T) {
	elemZeroAllocs(t, elemCastModel(tflite.TensorTypeFLOAT32, tflite.TensorTypeINT8, 16), make([]byte, 64))
	elemZeroAllocs(t, elemCastModel(tflite.TensorTypeINT32, tflite.TensorTypeUINT32, 16), make([]byte, 64))
	elemZeroAllocs(t, elemCastModel(tflite.TensorTypeBOOL, tflite.TensorTypeFLOAT32, 16), make([]byte, 16))
}
