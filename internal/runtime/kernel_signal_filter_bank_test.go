package runtime_test

import (
	"math"
	"math/big"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/flexbuffers"
	"github.com/edged/edged/internal/runtime/tflite"
)

// ---- SignalFilterBank ----

type filterBankTables struct {
	weights, unweights               []int16
	freqStarts, weightStarts, widths []int16
}

// filterBankModel builds a SignalFilterBank over bins energy bins; with
// constTables false the three channel tables are model inputs (after the
// spectrum), else constants.
func filterBankModel(bins, channels int, tb filterBankTables, constTables bool) *builder.Model {
	i16 := func(v []int16, constant bool) signalT {
		t := signalT{typ: tflite.TensorTypeINT16, shape: []int{len(v)}}
		if constant {
			t.data = signalLE(v)
		}
		return t
	}
	return signalModel("SignalFilterBank", flexbuffers.NewMap().Int("num_channels", int64(channels)).Bytes(),
		[]signalT{{typ: tflite.TensorTypeUINT32, shape: []int{bins}}, i16(tb.weights, true), i16(tb.unweights, true),
			i16(tb.freqStarts, constTables), i16(tb.weightStarts, constTables), i16(tb.widths, constTables)},
		[]signalT{{typ: tflite.TensorTypeUINT64, shape: []int{channels}}})
}

// filterBankOracle spells the filter bank out as a dense matrix: the band of
// table entry i adds weights to channel i and unweights to channel i+1;
// entry 0 is the scratch channel, dropped. Sums wrap modulo 2^64 with the
// int16 weights sign-extended, as in TFLM.
func filterBankOracle(x []uint32, channels int, tb filterBankTables) []uint64 {
	m := make([][]int64, channels+2)
	for i := range m {
		m[i] = make([]int64, len(x))
	}
	for i := 0; i <= channels; i++ {
		for j := 0; j < int(tb.widths[i]); j++ {
			bin, w := int(tb.freqStarts[i])+j, int(tb.weightStarts[i])+j
			m[i][bin] += int64(tb.weights[w])
			m[i+1][bin] += int64(tb.unweights[w])
		}
	}
	out := make([]uint64, channels)
	for c := range out {
		for bin, v := range x {
			out[c] += uint64(m[c+1][bin]) * uint64(v)
		}
	}
	return out
}

func TestSignalFilterBank(t *testing.T) {
	t.Run("hand-checked", func(t *testing.T) {
		// Entry 0 (scratch) covers bin 0, channel 1 bins 1-2, channel 2
		// bin 3. Channel 1 = u0·x0 + w1·x1 + w2·x2 = 10·100 - 2·1000 -
		// 3·10000 = -31000, wrapped to uint64; channel 2 = u1·x1 + u2·x2 +
		// w3·x3 = 20·1000 + 30·10000 + 4·5.
		tb := filterBankTables{
			weights: []int16{1, -2, -3, 4}, unweights: []int16{10, 20, 30, 40},
			freqStarts: []int16{0, 1, 3}, weightStarts: []int16{0, 1, 3}, widths: []int16{1, 2, 1},
		}
		got := signalFromLE[uint64](runModel(t, filterBankModel(4, 2, tb, true), signalLE([]uint32{100, 1000, 10000, 5}))[0])
		if want := []uint64{math.MaxUint64 - 31000 + 1, 320020}; !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("random against dense oracle", func(t *testing.T) {
		rng := rand.New(rand.NewSource(7))
		for trial := range 30 {
			bins, channels, nw := 20+rng.Intn(40), 1+rng.Intn(12), 10+rng.Intn(30)
			tb := filterBankTables{weights: make([]int16, nw), unweights: make([]int16, nw)}
			for i := range nw {
				tb.weights[i] = int16(rng.Intn(1 << 16))
				tb.unweights[i] = int16(rng.Intn(1 << 16))
				if trial%2 == 0 { // non-negative, as front ends make them
					tb.weights[i] &= 0x7FFF
					tb.unweights[i] &= 0x7FFF
				}
			}
			for range channels + 1 {
				w := rng.Intn(min(bins, nw) + 1)
				tb.widths = append(tb.widths, int16(w))
				tb.freqStarts = append(tb.freqStarts, int16(rng.Intn(bins-w+1)))
				tb.weightStarts = append(tb.weightStarts, int16(rng.Intn(nw-w+1)))
			}
			x := make([]uint32, bins)
			for i := range x {
				x[i] = rng.Uint32() >> uint(rng.Intn(32))
			}
			it, err := runtime.NewInterpreter(buildModel(t, filterBankModel(bins, channels, tb, true)), nil)
			if err != nil {
				t.Fatal(err)
			}
			got := signalFromLE[uint64](invoke(t, it, signalLE(x))[0])
			if want := filterBankOracle(x, channels, tb); !slices.Equal(got, want) {
				t.Fatalf("trial %d: got %v, want %v", trial, got, want)
			}
			if trial == 0 {
				signalAllocs(t, it)
			}
		}
	})
	t.Run("tables as inputs", func(t *testing.T) {
		tb := filterBankTables{
			weights: []int16{1, 2, 3, 4}, unweights: []int16{10, 20, 30, 40},
			freqStarts: []int16{0, 1, 3}, weightStarts: []int16{0, 1, 3}, widths: []int16{1, 2, 1},
		}
		it, err := runtime.NewInterpreter(buildModel(t, filterBankModel(4, 2, tb, false)), nil)
		if err != nil {
			t.Fatal(err)
		}
		x := signalLE([]uint32{100, 1000, 10000, 5})
		got := signalFromLE[uint64](invoke(t, it, x, signalLE(tb.freqStarts), signalLE(tb.weightStarts), signalLE(tb.widths))[0])
		if want := []uint64{33000, 320020}; !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
		// Tables that read outside the spectrum or the weights are
		// rejected at Eval, not read out of bounds.
		for _, bad := range [][3][]int16{
			{{0, 1, 3}, {0, 1, 3}, {1, 2, 2}},  // bins 3-4 of 4
			{{0, 1, 3}, {0, 1, 3}, {1, 4, 1}},  // weights 1-4 of 4
			{{0, -1, 3}, {0, 1, 3}, {1, 2, 1}}, // negative start
		} {
			for i, in := range it.Inputs()[1:] {
				if err := in.CopyFrom(signalLE(bad[i])); err != nil {
					t.Fatal(err)
				}
			}
			if err := it.Invoke(); err == nil || !strings.Contains(err.Error(), "channel") {
				t.Errorf("tables %v: error %v, want one naming the channel", bad, err)
			}
		}
	})
}

func TestSignalFilterBankErrors(t *testing.T) {
	ok := filterBankTables{
		weights: []int16{1, 2, 3, 4}, unweights: []int16{10, 20, 30, 40},
		freqStarts: []int16{0, 1, 3}, weightStarts: []int16{0, 1, 3}, widths: []int16{1, 2, 1},
	}
	with := func(f func(tb *filterBankTables)) filterBankTables {
		tb := ok
		tb.freqStarts, tb.weightStarts, tb.widths = slices.Clone(ok.freqStarts), slices.Clone(ok.weightStarts), slices.Clone(ok.widths)
		f(&tb)
		return tb
	}
	for _, c := range []struct {
		name string
		m    *builder.Model
		want string
	}{
		{"band past the spectrum", filterBankModel(4, 2, with(func(tb *filterBankTables) { tb.widths[2] = 2 }), true), "reads bins [3, 5)"},
		{"band past the weights", filterBankModel(8, 2, with(func(tb *filterBankTables) { tb.weightStarts[2] = 4 }), true), "reads weights [4, 5)"},
		{"negative start", filterBankModel(4, 2, with(func(tb *filterBankTables) { tb.freqStarts[1] = -1 }), true), "channel 1"},
		{"short table", filterBankModel(4, 3, ok, true), "num_channels+1 = 4 entries"},
		{"unweights shorter", filterBankModel(4, 2, with(func(tb *filterBankTables) { tb.unweights = tb.unweights[:3] }), true), "differ in length"},
	} {
		t.Run(c.name, func(t *testing.T) { signalWantError(t, c.m, c.want) })
	}
	m := filterBankModel(4, 2, ok, true)
	t.Run("num_channels missing", func(t *testing.T) {
		m := filterBankModel(4, 2, ok, true)
		m.Ops[0].CustomOptions = flexbuffers.NewMap().Int("channels", 2).Bytes()
		signalWantError(t, m, `"num_channels" is missing`)
	})
	t.Run("num_channels 0", func(t *testing.T) {
		m := filterBankModel(4, 2, ok, true)
		m.Ops[0].CustomOptions = flexbuffers.NewMap().Int("num_channels", 0).Bytes()
		signalWantError(t, m, "want 1 to")
	})
	t.Run("output length", func(t *testing.T) {
		m := filterBankModel(4, 2, ok, true)
		m.Tensors[m.Outputs[0]].Shape = []int{3}
		signalWantError(t, m, "computed output shape")
	})
	t.Run("uint32 output", func(t *testing.T) {
		m := filterBankModel(4, 2, ok, true)
		m.Tensors[m.Outputs[0]].Type = tflite.TensorTypeUINT32
		signalWantError(t, m, "unsupported tensor type")
	})
	t.Run("int32 spectrum", func(t *testing.T) {
		m := filterBankModel(4, 2, ok, true)
		m.Tensors[m.Inputs[0]].Type = tflite.TensorTypeINT32
		signalWantError(t, m, "unsupported tensor type")
	})
	t.Run("five inputs", func(t *testing.T) {
		m := filterBankModel(4, 2, ok, true)
		m.Ops[0].Inputs = m.Ops[0].Inputs[:5]
		signalWantError(t, m, "has 5 inputs")
	})
	t.Run("fuzzed options", func(t *testing.T) { signalOptionsFuzz(t, m) })
}

// ---- SignalFilterBankSquareRoot ----

func sqrtModel(n int) *builder.Model {
	return signalModel("SignalFilterBankSquareRoot", flexbuffers.NewMap().Bytes(),
		[]signalT{{typ: tflite.TensorTypeUINT64, shape: []int{n}}, {typ: tflite.TensorTypeINT32}},
		[]signalT{{typ: tflite.TensorTypeUINT32, shape: []int{n}}})
}

// sqrtOracle is the square root rounded to nearest (the integer root r, plus
// one where x - r² > r, i.e. sqrt(x) > r + 1/2), except that the result
// stays at 0xFFFF for x < 2^32 and at 0xFFFFFFFF above, as TFLM's Sqrt32
// and Sqrt64 keep it in 16 and 32 bits.
func sqrtOracle(x uint64) uint64 {
	bx := new(big.Int).SetUint64(x)
	r := new(big.Int).Sqrt(bx)
	rem := new(big.Int).Sub(bx, new(big.Int).Mul(r, r))
	res := r.Uint64()
	limit := uint64(0xFFFFFFFF)
	if x < 1<<32 {
		limit = 0xFFFF
	}
	if rem.Cmp(r) > 0 && res != limit {
		res++
	}
	return res
}

func TestSignalFilterBankSquareRoot(t *testing.T) {
	edge := []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xFFFE0001, 0xFFFF0000, 0xFFFF0001, 1<<32 - 1, 1 << 32, 1<<32 + 1,
		0xFFFFFFFE00000001, 0xFFFFFFFF00000000, math.MaxUint64, 1 << 62, 1<<63 + 12345}
	rng := rand.New(rand.NewSource(8))
	x := slices.Clone(edge)
	for len(x) < 400 {
		x = append(x, rng.Uint64()>>uint(rng.Intn(64)))
	}
	it, err := runtime.NewInterpreter(buildModel(t, sqrtModel(len(x))), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, shift := range []int32{0, 1, 7, 31} {
		got := signalFromLE[uint32](invoke(t, it, signalLE(x), signalLE([]int32{shift}))[0])
		for i, v := range x {
			if want := sqrtOracle(v) >> shift; uint64(got[i]) != want {
				t.Fatalf("sqrt(%d) >> %d: got %d, want %d", v, shift, got[i], want)
			}
		}
	}
	signalAllocs(t, it)
	for _, shift := range []int32{-1, 32} {
		for i, in := range it.Inputs() {
			_ = in.CopyFrom([][]byte{signalLE(x), signalLE([]int32{shift})}[i])
		}
		if err := it.Invoke(); err == nil || !strings.Contains(err.Error(), "scale bits") {
			t.Errorf("scale bits %d: error %v", shift, err)
		}
	}
}

func TestSignalFilterBankSquareRootErrors(t *testing.T) {
	u64 := signalT{typ: tflite.TensorTypeUINT64, shape: []int{4}}
	sb := signalT{typ: tflite.TensorTypeINT32}
	u32 := signalT{typ: tflite.TensorTypeUINT32, shape: []int{4}}
	for _, c := range []struct {
		name    string
		in, out []signalT
		want    string
	}{
		{"uint32 input", []signalT{u32, sb}, []signalT{u32}, "unsupported tensor type"},
		{"scale bits vector", []signalT{u64, {typ: tflite.TensorTypeINT32, shape: []int{1}}}, []signalT{u32}, "rank 0"},
		{"uint64 output", []signalT{u64, sb}, []signalT{u64}, "unsupported tensor type"},
		{"output length", []signalT{u64, sb}, []signalT{{typ: tflite.TensorTypeUINT32, shape: []int{5}}}, "computed output shape"},
		{"no scale bits", []signalT{u64}, []signalT{u32}, "has 1 inputs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			signalWantError(t, signalModel("SignalFilterBankSquareRoot", nil, c.in, c.out), c.want)
		})
	}
}

// ---- SignalFilterBankSpectralSubtraction ----

// The micro_speech front end's settings.
func spectralSubtractionOptions() *flexbuffers.Builder {
	return flexbuffers.NewMap().Int("num_channels", 2).
		Int("smoothing", 409).Int("one_minus_smoothing", 15975).
		Int("alternate_smoothing", 983).Int("alternate_one_minus_smoothing", 15401).
		Int("min_signal_remaining", 819).Int("smoothing_bits", 10).Int("spectral_subtraction_bits", 14).
		Bool("clamping", false)
}

func spectralSubtractionModel(opts []byte, n int) *builder.Model {
	u32 := signalT{typ: tflite.TensorTypeUINT32, shape: []int{n}}
	return signalModel("SignalFilterBankSpectralSubtraction", opts, []signalT{u32}, []signalT{u32, u32})
}

func TestSignalFilterBankSpectralSubtraction(t *testing.T) {
	// Hand-computed with spectral_subtraction_bits 14 and smoothing_bits 10.
	// Frame 1, x = (1000, 1000), scaled up: 1024000. Noise (from 0):
	// 1024000·409 >> 14 = 25562 (even channel), 1024000·983 >> 14 = 61437
	// (odd: alternate coefficients). Output: (1024000 - 25562) >> 10 =
	// 975, (1024000 - 61437) >> 10 = 940; the floors 1000·819 >> 14 = 49
	// do not bite.
	// Frame 2, x = (1000, 0): noise 0 = (1024000·409 + 25562·15975) >> 14 =
	// 50486, output (1024000 - 50486) >> 10 = 950. Channel 1: noise =
	// 61437·15401 >> 14 = 57750 exceeds the signal 0, so the output is 0;
	// with clamping the noise estimate drops to 0 too.
	frames := [][]uint32{{1000, 1000}, {1000, 0}}
	for _, c := range []struct {
		clamping  bool
		out, nois [][]uint32
	}{
		{false, [][]uint32{{975, 940}, {950, 0}}, [][]uint32{{25562, 61437}, {50486, 57750}}},
		{true, [][]uint32{{975, 940}, {950, 0}}, [][]uint32{{25562, 61437}, {50486, 0}}},
	} {
		it, err := runtime.NewInterpreter(buildModel(t, spectralSubtractionModel(spectralSubtractionOptions().Bool("clamping", c.clamping).Bytes(), 2)), nil)
		if err != nil {
			t.Fatal(err)
		}
		for round := range 2 { // the second round after Reset must repeat the first
			for f, x := range frames {
				out := invoke(t, it, signalLE(x))
				if got := signalFromLE[uint32](out[0]); !slices.Equal(got, c.out[f]) {
					t.Errorf("clamping %v round %d frame %d: output %v, want %v", c.clamping, round, f, got, c.out[f])
				}
				if got := signalFromLE[uint32](out[1]); !slices.Equal(got, c.nois[f]) {
					t.Errorf("clamping %v round %d frame %d: noise estimate %v, want %v", c.clamping, round, f, got, c.nois[f])
				}
			}
			it.Reset()
		}
		signalAllocs(t, it)
	}
	t.Run("floor", func(t *testing.T) {
		// min_signal_remaining = 1 (in Q14): the output never drops below
		// x·16384 >> 14 = x, however large the noise estimate.
		opts := spectralSubtractionOptions().Int("min_signal_remaining", 16384).Int("smoothing", 16384).Int("alternate_smoothing", 16384).Bytes()
		got := signalFromLE[uint32](runModel(t, spectralSubtractionModel(opts, 2), signalLE([]uint32{777, 5}))[0])
		if want := []uint32{777, 5}; !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
}

func TestSignalFilterBankSpectralSubtractionErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		opts []byte
		n    int
		want string
	}{
		{"smoothing missing", func() []byte {
			m := flexbuffers.NewMap().Int("num_channels", 2).Int("one_minus_smoothing", 1).Int("alternate_smoothing", 1).
				Int("alternate_one_minus_smoothing", 1).Int("min_signal_remaining", 1).Int("smoothing_bits", 1).
				Int("spectral_subtraction_bits", 1).Bool("clamping", false)
			return m.Bytes()
		}(), 2, `"smoothing" is missing`},
		{"clamping missing", flexbuffers.NewMap().Int("num_channels", 2).Int("smoothing", 1).Int("one_minus_smoothing", 1).Int("alternate_smoothing", 1).
			Int("alternate_one_minus_smoothing", 1).Int("min_signal_remaining", 1).Int("smoothing_bits", 1).
			Int("spectral_subtraction_bits", 1).Bytes(), 2, `"clamping" is missing`},
		{"clamping a string", spectralSubtractionOptions().String("clamping", "yes").Bytes(), 2, "want an integer"},
		{"clamping 2", spectralSubtractionOptions().Int("clamping", 2).Bytes(), 2, "want 0 to 1"},
		{"smoothing_bits 32", spectralSubtractionOptions().Int("smoothing_bits", 32).Bytes(), 2, "want 0 to 31"},
		{"spectral_subtraction_bits 64", spectralSubtractionOptions().Int("spectral_subtraction_bits", 64).Bytes(), 2, "want 0 to 63"},
		{"negative smoothing", spectralSubtractionOptions().Int("smoothing", -1).Bytes(), 2, "want 0 to 4294967295"},
		{"smoothing a float", spectralSubtractionOptions().Float("smoothing", 0.5).Bytes(), 2, "want an integer"},
		{"channels mismatch", spectralSubtractionOptions().Int("num_channels", 3).Bytes(), 2, "num_channels = 3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			signalWantError(t, spectralSubtractionModel(c.opts, c.n), c.want)
		})
	}
	t.Run("noise estimate length", func(t *testing.T) {
		m := spectralSubtractionModel(spectralSubtractionOptions().Bytes(), 2)
		m.Tensors[m.Outputs[1]].Shape = []int{3}
		signalWantError(t, m, "computed output shape")
	})
	t.Run("int32 noise estimate", func(t *testing.T) {
		m := spectralSubtractionModel(spectralSubtractionOptions().Bytes(), 2)
		m.Tensors[m.Outputs[1]].Type = tflite.TensorTypeINT32
		signalWantError(t, m, "unsupported tensor type")
	})
	t.Run("fuzzed options", func(t *testing.T) {
		signalOptionsFuzz(t, spectralSubtractionModel(spectralSubtractionOptions().Bytes(), 2))
	})
}

// ---- SignalFilterBankLog ----

func logModel(scale, bits int64, n int) *builder.Model {
	return signalModel("SignalFilterBankLog", flexbuffers.NewMap().Int("output_scale", scale).Int("input_correction_bits", bits).Bytes(),
		[]signalT{{typ: tflite.TensorTypeUINT32, shape: []int{n}}}, []signalT{{typ: tflite.TensorTypeINT16, shape: []int{n}}})
}

func TestSignalFilterBankLog(t *testing.T) {
	t.Run("hand-checked", func(t *testing.T) {
		// x << 3 must exceed 1; ln(8)·64 = 133.1, ln(16)·64 = 177.4; the
		// uint32 shift drops the top bit of 2^31 (→ 0); ln(2^32 - 8)·64 =
		// 1419.6.
		in := []uint32{0, 1, 2, 1 << 31, 1<<29 - 1}
		got := signalFromLE[int16](runModel(t, logModel(64, 3, len(in)), signalLE(in))[0])
		if want := []int16{0, 133, 177, 0, 1420}; !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
		// x = 2: log2 = 1.0 exactly (Q16 65536), ln = 45426 (Q16),
		// (64·45426 + 32768) >> 16 = 44.
		got = signalFromLE[int16](runModel(t, logModel(64, 0, 1), signalLE([]uint32{2}))[0])
		if got[0] != 44 {
			t.Errorf("ln(2)·64: got %d, want 44", got[0])
		}
		// Saturation at 32767, and the uint32 product output_scale·ln
		// wrapping (2^31·45426 ≡ 0 mod 2^32), as in TFLM.
		got = signalFromLE[int16](runModel(t, logModel(1<<20, 0, 1), signalLE([]uint32{1000}))[0])
		if got[0] != math.MaxInt16 {
			t.Errorf("large scale: got %d, want 32767", got[0])
		}
		got = signalFromLE[int16](runModel(t, logModel(1<<31, 0, 1), signalLE([]uint32{2}))[0])
		if got[0] != 0 {
			t.Errorf("wrapping scale: got %d, want 0", got[0])
		}
	})
	t.Run("random against float log", func(t *testing.T) {
		rng := rand.New(rand.NewSource(9))
		x := make([]uint32, 500)
		for i := range x {
			x[i] = 2 + rng.Uint32()>>uint(rng.Intn(32))
			if x[i] < 2 {
				x[i] = 2
			}
		}
		for _, c := range []struct{ scale, bits int64 }{{64, 0}, {1000, 0}, {20, 0}, {64, 3}} {
			it, err := runtime.NewInterpreter(buildModel(t, logModel(c.scale, c.bits, len(x))), nil)
			if err != nil {
				t.Fatal(err)
			}
			in := slices.Clone(x)
			for i := range in {
				in[i] >>= c.bits
				in[i] = max(in[i], 1)
			}
			got := signalFromLE[int16](invoke(t, it, signalLE(in))[0])
			for i, v := range in {
				scaled := uint64(v) << c.bits
				if scaled <= 1 {
					continue
				}
				// TFLM's interpolation between table entries shifts by 16
				// where the segment is 9 bits wide, so it barely
				// interpolates: log2 may be off by up to the largest
				// step between entries (224/65536), ln by 0.0024.
				want := math.Log(float64(scaled)) * float64(c.scale)
				if math.Abs(float64(got[i])-want) > 1+0.0025*float64(c.scale) {
					t.Fatalf("scale %d: ln(%d)·%d = %d, want %.2f", c.scale, scaled, c.scale, got[i], want)
				}
			}
			signalAllocs(t, it)
		}
	})
}

func TestSignalFilterBankLogErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		m    *builder.Model
		want string
	}{
		{"bits 32", logModel(64, 32, 4), "want 0 to 31"},
		{"negative scale", logModel(-1, 3, 4), "want 0 to 4294967295"},
		{"scale missing", signalModel("SignalFilterBankLog", flexbuffers.NewMap().Int("input_correction_bits", 3).Bytes(),
			[]signalT{{typ: tflite.TensorTypeUINT32, shape: []int{4}}}, []signalT{{typ: tflite.TensorTypeINT16, shape: []int{4}}}), `"output_scale" is missing`},
		{"int8 output", signalModel("SignalFilterBankLog", flexbuffers.NewMap().Int("output_scale", 64).Int("input_correction_bits", 3).Bytes(),
			[]signalT{{typ: tflite.TensorTypeUINT32, shape: []int{4}}}, []signalT{{typ: tflite.TensorTypeINT8, shape: []int{4}}}), "unsupported tensor type"},
		{"rank 2", signalModel("SignalFilterBankLog", flexbuffers.NewMap().Int("output_scale", 64).Int("input_correction_bits", 3).Bytes(),
			[]signalT{{typ: tflite.TensorTypeUINT32, shape: []int{1, 4}}}, []signalT{{typ: tflite.TensorTypeINT16, shape: []int{1, 4}}}), "rank 1"},
	} {
		t.Run(c.name, func(t *testing.T) { signalWantError(t, c.m, c.want) })
	}
	t.Run("fuzzed options", func(t *testing.T) { signalOptionsFuzz(t, logModel(64, 3, 4)) })
}
