package runtime_test

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand"
	"slices"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/flexbuffers"
	"github.com/edged/edged/internal/runtime/tflite"
)

// ---- SignalFftAutoScale ----

func autoScaleModel(n int) *builder.Model {
	return signalModel("SignalFftAutoScale", flexbuffers.NewMap().Bytes(),
		[]signalT{{typ: tflite.TensorTypeINT16, shape: []int{n}}},
		[]signalT{{typ: tflite.TensorTypeINT16, shape: []int{n}}, {typ: tflite.TensorTypeINT32}})
}

func TestSignalFftAutoScale(t *testing.T) {
	for _, c := range []struct {
		name  string
		in    []int16
		want  []int16
		scale int32
	}{
		{"tiny", []int16{1, -1, 0, 0}, []int16{16384, -16384, 0, 0}, 14},
		{"silence", []int16{0, 0, 0, 0}, []int16{0, 0, 0, 0}, 0},
		{"already full", []int16{16384, -5, 3, 0}, []int16{16384, -5, 3, 0}, 0},
		{"one bit", []int16{16383, 3, -16383, 0}, []int16{32766, 6, -32766, 0}, 1},
		{"negative max", []int16{-16384, 5, 0, 0}, []int16{-16384, 5, 0, 0}, 0},
		// TFLM's MaxAbs16 keeps the running maximum in an int16: -(-32768)
		// wraps to -32768, which any later value exceeds.
		{"-32768 first", []int16{-32768, 5, 0, 0}, []int16{0, 20480, 0, 0}, 12},
		{"-32768 last", []int16{5, 0, 0, -32768}, []int16{5, 0, 0, -32768}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := runModel(t, autoScaleModel(len(c.in)), signalLE(c.in))
			if got := signalFromLE[int16](out[0]); !slices.Equal(got, c.want) {
				t.Errorf("output %v, want %v", got, c.want)
			}
			if got := signalFromLE[int32](out[1])[0]; got != c.scale {
				t.Errorf("scale bits %d, want %d", got, c.scale)
			}
		})
	}
	t.Run("random", func(t *testing.T) {
		rng := rand.New(rand.NewSource(4))
		it, err := runtime.NewInterpreter(buildModel(t, autoScaleModel(64)), nil)
		if err != nil {
			t.Fatal(err)
		}
		for trial := range 200 {
			in := make([]int16, 64)
			for i := range in {
				in[i] = int16(rng.Intn(65535)-32767) >> uint(trial%16)
			}
			out := invoke(t, it, signalLE(in))
			maxAbs := 0
			for _, x := range in {
				maxAbs = max(maxAbs, int(math.Abs(float64(x))))
			}
			// The largest left shift that keeps |x| below 2^15.
			scale := max(0, 15-bits.Len(uint(maxAbs)))
			if maxAbs == 0 {
				scale = 0
			}
			if got := signalFromLE[int32](out[1])[0]; got != int32(scale) {
				t.Fatalf("max |x| %d: scale bits %d, want %d", maxAbs, got, scale)
			}
			for i, y := range signalFromLE[int16](out[0]) {
				if int(y) != int(in[i])<<scale {
					t.Fatalf("element %d: %d << %d gives %d", i, in[i], scale, y)
				}
			}
		}
		signalAllocs(t, it)
	})
}

func TestSignalFftAutoScaleErrors(t *testing.T) {
	in := signalT{typ: tflite.TensorTypeINT16, shape: []int{8}}
	out := signalT{typ: tflite.TensorTypeINT16, shape: []int{8}}
	scale := signalT{typ: tflite.TensorTypeINT32}
	for _, c := range []struct {
		name    string
		in, out []signalT
		want    string
	}{
		{"rank 2 input", []signalT{{typ: tflite.TensorTypeINT16, shape: []int{1, 8}}}, []signalT{out, scale}, "rank 1"},
		{"float input", []signalT{{typ: tflite.TensorTypeFLOAT32, shape: []int{8}}}, []signalT{out, scale}, "unsupported tensor type"},
		{"scale as int16", []signalT{in}, []signalT{out, {typ: tflite.TensorTypeINT16}}, "unsupported tensor type"},
		{"scale as vector", []signalT{in}, []signalT{out, {typ: tflite.TensorTypeINT32, shape: []int{1}}}, "rank 0"},
		{"one output", []signalT{in}, []signalT{out}, "has 1 outputs"},
		{"output length", []signalT{in}, []signalT{{typ: tflite.TensorTypeINT16, shape: []int{9}}, scale}, "computed output shape"},
	} {
		t.Run(c.name, func(t *testing.T) {
			signalWantError(t, signalModel("SignalFftAutoScale", nil, c.in, c.out), c.want)
		})
	}
}

// ---- SignalRfft ----

func rfftOptions(typ tflite.TensorType, n int) []byte {
	return flexbuffers.NewMap().Int("T", int64(typ)).Int("fft_length", int64(n)).Bytes()
}

func rfftModel(typ tflite.TensorType, n int, inShape []int) *builder.Model {
	outShape := slices.Clone(inShape)
	outShape[len(outShape)-1] = n + 2
	return signalModel("SignalRfft", rfftOptions(typ, n),
		[]signalT{{typ: typ, shape: inShape}}, []signalT{{typ: typ, shape: outShape}})
}

// dft is the oracle: the real input's spectrum, bins 0..n/2, in float64.
func dft(x []float64, n int) (re, im []float64) {
	for k := 0; k <= n/2; k++ {
		var r, i float64
		for j, v := range x {
			a := -2 * math.Pi * float64(j*k%n) / float64(n)
			r += v * math.Cos(a)
			i += v * math.Sin(a)
		}
		re, im = append(re, r), append(im, i)
	}
	return re, im
}

func TestSignalRfftHandChecked(t *testing.T) {
	// Fixed point divides by the radix at every stage and by 2 in the real
	// split, each a multiply by floor(32767/radix) rounded half up: the
	// result is the DFT over n, rounded down a little.
	for _, c := range []struct {
		name string
		in   []int16
		want []int16 // (re, im) per bin
	}{
		{"impulse n=4", []int16{16384, 0, 0, 0}, []int16{4096, 0, 4096, 0, 4096, 0}},
		{"delayed impulse n=4", []int16{0, 16384, 0, 0}, []int16{4096, 0, 0, -4096, -4096, 0}},
		{"dc n=4", []int16{1000, 1000, 1000, 1000}, []int16{1000, 0, 0, 0, 0, 0}},
		// 3*16383 rounds to 1 (not 1.5), then 1*16383 to 0.
		{"below resolution n=4", []int16{3, 0, 0, 0}, []int16{0, 0, 0, 0, 0, 0}},
		// Radix 3: 16384/3 → 5461, /2 → 2730 (ideal 16384/6 = 2730.7).
		{"impulse n=6", []int16{16384, 0, 0, 0, 0, 0}, []int16{2730, 0, 2730, 0, 2730, 0, 2730, 0}},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := len(c.in)
			got := signalFromLE[int16](runModel(t, rfftModel(tflite.TensorTypeINT16, n, []int{n}), signalLE(c.in))[0])
			if !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestSignalRfftAgainstDFT(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	// Lengths exercising radix 4 and 2 (512: 256 = 4·4·4·4), 3, 5 and
	// the generic butterfly (14: 7; 44: 11; 2·3·7·2 = 84), with and without
	// zero padding (input rows shorter than fft_length).
	for _, c := range []struct{ n, rows, length int }{
		{4, 1, 4}, {8, 2, 8}, {6, 1, 6}, {10, 1, 10}, {14, 1, 14}, {24, 3, 24}, {30, 1, 30},
		{44, 1, 44}, {84, 2, 80}, {100, 1, 100}, {128, 1, 100}, {512, 2, 480}, {1000, 1, 1000},
	} {
		for _, typ := range []tflite.TensorType{tflite.TensorTypeINT16, tflite.TensorTypeINT32, tflite.TensorTypeFLOAT32} {
			t.Run(fmt.Sprintf("%s n=%d rows=%d length=%d", tflite.EnumNamesTensorType[typ], c.n, c.rows, c.length), func(t *testing.T) {
				x := make([]float64, c.rows*c.length)
				var in []byte
				var tol, scale float64
				switch typ {
				case tflite.TensorTypeINT16:
					// A quarter of full scale: kissfft's fixed point
					// wraps on some full-scale inputs (as in TFLM).
					v := make([]int16, len(x))
					for i := range v {
						v[i] = int16(rng.Intn(16384) - 8192)
						x[i] = float64(v[i])
					}
					in, tol, scale = signalLE(v), 4, 1/float64(c.n)
				case tflite.TensorTypeINT32:
					v := make([]int32, len(x))
					for i := range v {
						v[i] = int32(rng.Intn(1<<30) - 1<<29)
						x[i] = float64(v[i])
					}
					in, tol, scale = signalLE(v), 5, 1/float64(c.n)
				default:
					v := make([]float32, len(x))
					for i := range v {
						v[i] = float32(rng.NormFloat64())
						x[i] = float64(v[i])
					}
					in, tol, scale = signalLE(v), 1e-6*float64(c.n+1), 1
				}
				m := rfftModel(typ, c.n, []int{c.rows, c.length})
				it, err := runtime.NewInterpreter(buildModel(t, m), nil)
				if err != nil {
					t.Fatal(err)
				}
				raw := invoke(t, it, in)[0]
				var got []float64
				switch typ {
				case tflite.TensorTypeINT16:
					for _, v := range signalFromLE[int16](raw) {
						got = append(got, float64(v))
					}
				case tflite.TensorTypeINT32:
					for _, v := range signalFromLE[int32](raw) {
						got = append(got, float64(v))
					}
				default:
					for _, v := range signalFromLE[float32](raw) {
						got = append(got, float64(v))
					}
				}
				bins := c.n/2 + 1
				for r := range c.rows {
					re, im := dft(x[r*c.length:(r+1)*c.length], c.n)
					for k := range bins {
						gr, gi := got[2*(r*bins+k)], got[2*(r*bins+k)+1]
						if math.Abs(gr-re[k]*scale) > tol || math.Abs(gi-im[k]*scale) > tol {
							t.Fatalf("row %d bin %d: got (%g, %g), want (%g, %g) ± %g", r, k, gr, gi, re[k]*scale, im[k]*scale, tol)
						}
					}
				}
				signalAllocs(t, it)
			})
		}
	}
}

func TestSignalRfftErrors(t *testing.T) {
	i16 := func(shape ...int) signalT { return signalT{typ: tflite.TensorTypeINT16, shape: shape} }
	opts := rfftOptions(tflite.TensorTypeINT16, 8)
	for _, c := range []struct {
		name    string
		opts    []byte
		in, out signalT
		want    string
	}{
		{"no options", nil, i16(8), i16(10), "custom options are missing"},
		{"T missing", flexbuffers.NewMap().Int("fft_length", 8).Bytes(), i16(8), i16(10), `"T" is missing`},
		{"fft_length missing", flexbuffers.NewMap().Int("T", 7).Bytes(), i16(8), i16(10), `"fft_length" is missing`},
		{"T int8", rfftOptions(tflite.TensorTypeINT8, 8), signalT{typ: tflite.TensorTypeINT8, shape: []int{8}}, signalT{typ: tflite.TensorTypeINT8, shape: []int{10}}, "unsupported tensor type"},
		{"T out of range", flexbuffers.NewMap().Int("T", 1000).Int("fft_length", 8).Bytes(), i16(8), i16(10), "want 0 to 255"},
		{"T not matching", rfftOptions(tflite.TensorTypeFLOAT32, 8), i16(8), i16(10), "unsupported tensor type"},
		{"odd length", rfftOptions(tflite.TensorTypeINT16, 7), i16(7), i16(9), "must be even"},
		{"zero length", rfftOptions(tflite.TensorTypeINT16, 0), i16(8), i16(10), "want 2 to"},
		{"huge length", rfftOptions(tflite.TensorTypeINT16, 1<<30), i16(8), i16(10), "want 2 to"},
		{"length a vector", flexbuffers.NewMap().Int("T", 7).Ints("fft_length", []int64{8}).Bytes(), i16(8), i16(10), "want an integer"},
		{"input too long", opts, i16(9), i16(10), "more than fft_length"},
		{"output too short", opts, i16(8), i16(8), "computed output shape"},
		{"output rank", opts, i16(2, 8), i16(10), "rank 2"},
		{"scalar input", opts, i16(), i16(), "rank 1 or more"},
	} {
		t.Run(c.name, func(t *testing.T) {
			signalWantError(t, signalModel("SignalRfft", c.opts, []signalT{c.in}, []signalT{c.out}), c.want)
		})
	}
	t.Run("fuzzed options", func(t *testing.T) {
		signalOptionsFuzz(t, rfftModel(tflite.TensorTypeINT16, 8, []int{8}))
	})
}
