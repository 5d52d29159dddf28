package runtime_test

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

// --- QUANTIZE ---

func elemQuantizeModel(in, out elemT) *builder.Model {
	return elemModel(tflite.BuiltinOperatorQUANTIZE, nil, []elemT{in}, out)
}

// TestQuantizeFloat checks float32 -> int8/uint8/int16 against
// clamp(round(x / scale) + zero point), rounding halves away from zero.
func TestQuantizeFloat(t *testing.T) {
	f32 := tflite.TensorTypeFLOAT32
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, typ := range elemQuantTypes {
		t.Run(elemTypeName(typ), func(t *testing.T) {
			r := rand.New(rand.NewPCG(50, uint64(typ)))
			lo, hi := elemRange(typ)
			for i := range 40 {
				scale := elemRandScale(r)
				zp := elemRandZP(r, typ)
				if i == 0 {
					scale, zp = 0.5, 0
				}
				x := []float32{1.25, -1.25, 0.75, -0.75, 0, 1e30, -1e30, inf, -inf, nan}
				for range 50 {
					x = append(x, float32((r.Float64()*2-1)*float64(hi-lo))*scale)
				}
				shape := []int{len(x)}
				m := elemQuantizeModel(elemF(f32, shape), elemQ(typ, shape, scale, zp))
				got := elemDecode(typ, runModel(t, m, builder.Float32Data(x))[0])
				for j, v := range x {
					var q int64
					switch f := float64(v / scale); {
					case math.IsNaN(f):
						q = zp
					case f > 1e18:
						q = hi
					case f < -1e18:
						q = lo
					default:
						q = min(max(int64(math.Round(f))+zp, lo), hi)
					}
					if got[j] != q {
						t.Fatalf("quantize(%v) with scale %v, zero point %d: %d, want %d", v, scale, zp, got[j], q)
					}
				}
				if i == 0 {
					// Halves of scale 0.5: ±1.25 → ±2.5 → ±3, ±0.75 → ±1.5 → ±2.
					for j, w := range []int64{3, -3, 2, -2, 0, hi, lo, hi, lo, 0} {
						if w = min(max(w, lo), hi); got[j] != w {
							t.Errorf("quantize(%v) = %d, want %d", x[j], got[j], w)
						}
					}
				}
			}
		})
	}
}

// TestRequantizeOracle checks every integer pair against
// round((q - zp_in) * scale_in / scale_out) + zp_out within one step.
func TestRequantizeOracle(t *testing.T) {
	i8, u8, i16, i32 := tflite.TensorTypeINT8, tflite.TensorTypeUINT8, tflite.TensorTypeINT16, tflite.TensorTypeINT32
	pairs := [][2]tflite.TensorType{{i8, i8}, {i8, u8}, {i8, i16}, {i8, i32}, {u8, i8}, {u8, u8}, {i16, i8}, {i16, i16}, {i16, i32}, {i32, i8}, {i32, i16}}
	for _, p := range pairs {
		from, to := p[0], p[1]
		t.Run(elemTypeName(from)+"->"+elemTypeName(to), func(t *testing.T) {
			r := rand.New(rand.NewPCG(51, uint64(from)<<8|uint64(to)))
			lo, hi := elemRange(to)
			for i := range 40 {
				si, so := elemRandScale(r), elemRandScale(r)
				if i%4 == 0 {
					so = si
				}
				zi, zo := elemRandZP(r, from), elemRandZP(r, to)
				if from == i32 {
					zi = r.Int64N(2001) - 1000
				}
				if to == i32 {
					zo = r.Int64N(2001) - 1000
				}
				var in []int64
				if from == i32 {
					for range 64 {
						in = append(in, r.Int64N(400001)-200000)
					}
				} else {
					in = elemRandInts(r, from, 64)
				}
				shape := []int{4, 16}
				m := elemQuantizeModel(elemQ(from, shape, si, zi), elemQ(to, shape, so, zo))
				got := elemDecode(to, runModel(t, m, elemEncode(from, in))[0])
				for j, q := range in {
					real := float64(q-zi) * float64(si) / float64(so)
					want := min(max(int64(math.Round(real))+zo, lo), hi)
					if math.Abs(float64(got[j]-want)) > 1 {
						t.Fatalf("requantize %d (scale %v zp %d -> scale %v zp %d): %d, want %d ± 1", q, si, zi, so, zo, got[j], want)
					}
				}
			}
		})
	}
}

// TestRequantizeExact checks hand-derived results: equal scales only move
// the zero point (int8 <-> uint8 by flipping the sign bit), doubling is
// exact, and halving rounds halves toward +infinity (TensorFlow Lite's
// doubling high multiply).
func TestRequantizeExact(t *testing.T) {
	i8, u8, i16 := tflite.TensorTypeINT8, tflite.TensorTypeUINT8, tflite.TensorTypeINT16
	for _, c := range []struct {
		name     string
		from, to tflite.TensorType
		si, so   float32
		zi, zo   int64
		in, want []int64
	}{
		{"int8 to uint8 sign flip", i8, u8, 0.1, 0.1, -3, 125, []int64{-128, -1, 0, 127}, []int64{0, 127, 128, 255}},
		{"uint8 to int8 sign flip", u8, i8, 0.1, 0.1, 128, 0, []int64{0, 127, 128, 255}, []int64{-128, -1, 0, 127}},
		{"int8 zero point move saturates", i8, i8, 1, 1, 0, 10, []int64{-128, 0, 117, 127}, []int64{-118, 10, 127, 127}},
		{"int8 doubling", i8, i8, 1, 0.5, 1, 0, []int64{1, 2, -10, 100}, []int64{0, 2, -22, 127}},
		{"int8 halving rounds half up", i8, i8, 0.5, 1, 0, 0, []int64{3, -3, 1, -1, 5, -5}, []int64{2, -1, 1, 0, 3, -2}},
		{"int16 to int8", i16, i8, 1.0 / 256, 1.0 / 16, 0, -5, []int64{256, -256, 4096, -32768}, []int64{11, -21, 127, -128}},
	} {
		t.Run(c.name, func(t *testing.T) {
			shape := []int{len(c.in)}
			got := elemDecode(c.to, runModel(t, elemQuantizeModel(elemQ(c.from, shape, c.si, c.zi), elemQ(c.to, shape, c.so, c.zo)), elemEncode(c.from, c.in))[0])
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("element %d: %d -> %d, want %d", i, c.in[i], got[i], c.want[i])
				}
			}
		})
	}
}

func TestQuantizeErrors(t *testing.T) {
	s := []int{2}
	f32, i8, u8, i16, i32 := tflite.TensorTypeFLOAT32, tflite.TensorTypeINT8, tflite.TensorTypeUINT8, tflite.TensorTypeINT16, tflite.TensorTypeINT32
	perChannel := elemT{typ: i8, shape: []int{2}, scale: []float32{1, 2}, zp: []int64{0, 0}}
	for _, c := range []struct {
		name      string
		in, out   elemT
		fragments []string
	}{
		{"float to int32", elemF(f32, s), elemQ(i32, s, 1, 0), []string{"unsupported tensor type", "float32", "int32"}},
		{"uint8 to int16", elemQ(u8, s, 1, 0), elemQ(i16, s, 1, 0), []string{"unsupported tensor type"}},
		{"output not quantized", elemF(f32, s), elemF(i8, s), []string{"no quantization parameters"}},
		{"per-channel output", elemF(f32, s), perChannel, []string{"per-tensor"}},
		{"input not quantized", elemF(i8, s), elemQ(i8, s, 1, 0), []string{"input", "no quantization parameters"}},
		{"zero output scale", elemF(f32, s), elemQ(i8, s, 0, 0), []string{"scale 0"}},
		{"shape mismatch", elemF(f32, s), elemQ(i8, []int{3}, 1, 0), []string{"computed output shape [2]"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			elemWantError(t, elemQuantizeModel(c.in, c.out), c.fragments...)
		})
	}
}

// --- DEQUANTIZE ---

func elemDequantizeModel(in elemT) *builder.Model {
	return elemModel(tflite.BuiltinOperatorDEQUANTIZE, nil, []elemT{in}, elemF(tflite.TensorTypeFLOAT32, in.shape))
}

// TestDequantize checks float(double(scale) * (q - zero point)).
func TestDequantize(t *testing.T) {
	for _, typ := range elemQuantTypes {
		t.Run(elemTypeName(typ), func(t *testing.T) {
			r := rand.New(rand.NewPCG(52, uint64(typ)))
			for range 20 {
				scale, zp := elemRandScale(r), elemRandZP(r, typ)
				in := elemRandInts(r, typ, 30)
				lo, hi := elemRange(typ)
				in = append(in, lo, hi, zp)
				shape := []int{len(in)}
				got := float32s(runModel(t, elemDequantizeModel(elemQ(typ, shape, scale, zp)), elemEncode(typ, in))[0])
				for i, q := range in {
					want := float32(float64(scale) * float64(q-zp))
					if got[i] != want {
						t.Fatalf("dequantize(%d) with scale %v, zero point %d: %v, want %v", q, scale, zp, got[i], want)
					}
				}
			}
		})
	}
}

func TestDequantizePerChannel(t *testing.T) {
	i8 := tflite.TensorTypeINT8
	in := []int64{10, -10, 3, 4, 5, -128}
	for _, c := range []struct {
		name  string
		shape []int
		axis  int
		scale []float32
		zp    []int64
		want  []float32
	}{
		// [2,3] along dimension 1: element (i, j) uses channel j.
		{"last axis", []int{2, 3}, 1, []float32{0.5, 0.25, 2}, []int64{0, 2, -1}, []float32{5, -3, 8, 2, 0.75, -254}},
		// [2,3] along dimension 0: element (i, j) uses channel i.
		{"first axis", []int{2, 3}, 0, []float32{0.5, 0.1}, []int64{0, 4}, []float32{5, -5, 1.5, 0, float32(0.1) * 1, float32(0.1) * -132}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := elemDequantizeModel(elemT{typ: i8, shape: c.shape, scale: c.scale, zp: c.zp, qdim: c.axis})
			got := float32s(runModel(t, m, elemEncode(i8, in))[0])
			for i := range c.want {
				if got[i] != c.want[i] {
					t.Errorf("element %d: %v, want %v", i, got[i], c.want[i])
				}
			}
		})
	}
}

func TestDequantizeFloat16(t *testing.T) {
	halves := []uint16{0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x8000, 0x7c00, 0xfc00, 0x3555, 0x0400}
	want := []float32{1, -2, 65504, 1.0 / (1 << 24), 1023.0 / (1 << 24), float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), 0.333251953125, 1.0 / (1 << 14)}
	data := make([]byte, 0, 2*len(halves))
	for _, h := range halves {
		data = binary.LittleEndian.AppendUint16(data, h)
	}
	data = binary.LittleEndian.AppendUint16(data, 0x7e00) // NaN
	shape := []int{len(halves) + 1}
	got := float32s(runModel(t, elemDequantizeModel(elemF(tflite.TensorTypeFLOAT16, shape)), data)[0])
	for i, w := range want {
		if math.Float32bits(got[i]) != math.Float32bits(w) {
			t.Errorf("half %#04x: %v, want %v", halves[i], got[i], w)
		}
	}
	if !math.IsNaN(float64(got[len(halves)])) {
		t.Errorf("half 0x7e00: %v, want NaN", got[len(halves)])
	}
}

func TestDequantizeErrors(t *testing.T) {
	s := []int{2, 3}
	i8 := tflite.TensorTypeINT8
	for _, c := range []struct {
		name      string
		m         *builder.Model
		fragments []string
	}{
		{"int8 output", elemModel(tflite.BuiltinOperatorDEQUANTIZE, nil, []elemT{elemQ(i8, s, 1, 0)}, elemQ(i8, s, 1, 0)), []string{"unsupported tensor type"}},
		{"float input", elemDequantizeModel(elemF(tflite.TensorTypeFLOAT32, s)), []string{"unsupported tensor type"}},
		{"int32 input", elemDequantizeModel(elemQ(tflite.TensorTypeINT32, s, 1, 0)), []string{"unsupported tensor type"}},
		{"not quantized", elemDequantizeModel(elemF(i8, s)), []string{"no quantization parameters"}},
		{"two inputs", elemModel(tflite.BuiltinOperatorDEQUANTIZE, nil, []elemT{elemQ(i8, s, 1, 0), elemQ(i8, s, 1, 0)}, elemF(tflite.TensorTypeFLOAT32, s)), []string{"2 inputs"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			elemWantError(t, c.m, c.fragments...)
		})
	}
}

func TestQuantizeZeroAllocs(t *testing.T) {
	f32, i8, u8, i16 := tflite.TensorTypeFLOAT32, tflite.TensorTypeINT8, tflite.TensorTypeUINT8, tflite.TensorTypeINT16
	s := []int{4, 8}
	elemZeroAllocs(t, elemQuantizeModel(elemF(f32, s), elemQ(i8, s, 0.1, 3)), make([]byte, 128))
	elemZeroAllocs(t, elemQuantizeModel(elemQ(i8, s, 0.1, 3), elemQ(i8, s, 0.3, -2)), make([]byte, 32))
	elemZeroAllocs(t, elemQuantizeModel(elemQ(i8, s, 0.1, 3), elemQ(u8, s, 0.1, 131)), make([]byte, 32))
	elemZeroAllocs(t, elemDequantizeModel(elemQ(i16, s, 0.1, 0)), make([]byte, 64))
	elemZeroAllocs(t, elemDequantizeModel(elemT{typ: i8, shape: s, scale: make([]float32, 8), zp: make([]int64, 8), qdim: 1}), make([]byte, 32))
}
