package runtime_test

import (
	"math/rand"
	"slices"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/flexbuffers"
	"github.com/edged/edged/internal/runtime/tflite"
)

func pcanModel(shift int64, n int, lut []int16) *builder.Model {
	u32 := signalT{typ: tflite.TensorTypeUINT32, shape: []int{n}}
	return signalModel("SignalPCAN", flexbuffers.NewMap().Int("snr_shift", shift).Bytes(),
		[]signalT{u32, u32, {typ: tflite.TensorTypeINT16, shape: []int{len(lut)}, data: signalLE(lut)}}, []signalT{u32})
}

func TestSignalPCAN(t *testing.T) {
	lut := make([]int16, 125)
	lut[0], lut[1], lut[2] = 100, 200, 1000 // gains for noise 0, 1, 2
	// Noise 3 has its top bit at 2: segment (lut[2], lut[3], lut[4]) with
	// frac = (3 << 9) & 0x3FF = 512: ((32·512 >> 5) + (64 << 5))·512 =
	// 1310720, rounded >> 15 = 40, + 1000 = 1040.
	lut[3], lut[4] = 64, 32
	// Noise 4-7 (top bit 3): segment (lut[6], lut[7], lut[8]) = (-1, 0, 0):
	// a gain of -1, which TFLM sign-extends to 0xFFFFFFFF.
	lut[6] = -1
	for _, c := range []struct {
		name        string
		x, noise    uint32
		shift       int64
		want        uint32
		explanation string
	}{
		{"small snr", 100, 2, 6, 2, "100·1000 >> 6 = 1562 < 2 in Q12: 1562² >> 20 = 2"},
		{"large snr", 1000, 2, 6, 180, "1000·1000 >> 6 = 15625: (15625 >> 6) - 64 = 180"},
		{"interpolated gain", 1000, 3, 6, 189, "1000·1040 >> 6 = 16250: 253 - 64"},
		{"noise 0", 1000, 0, 0, 1498, "1000·100 = 100000: (100000 >> 6) - 64"},
		{"negative gain", 1, 5, 6, 1048511, "0xFFFFFFFF >> 6 = 67108863: (67108863 >> 6) - 64"},
		{"shrink edge", 8191 << 6 / 1000, 2, 6, 63, "524·1000 >> 6 = 8187 < 8192: 8187² >> 20 = 63"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := signalFromLE[uint32](runModel(t, pcanModel(c.shift, 1, lut), signalLE([]uint32{c.x}), signalLE([]uint32{c.noise}))[0])
			if got[0] != c.want {
				t.Errorf("x %d noise %d: got %d, want %d (%s)", c.x, c.noise, got[0], c.want, c.explanation)
			}
		})
	}
	t.Run("full range", func(t *testing.T) {
		// Every noise level, up to 2^32-1 (the last table segment), and
		// zero-gain tables: shrink(0) = 0 whatever the input.
		rng := rand.New(rand.NewSource(10))
		const n = 64
		x, noise := make([]uint32, n), make([]uint32, n)
		for i := range n {
			x[i], noise[i] = rng.Uint32(), rng.Uint32()>>uint(rng.Intn(32))
		}
		noise[0], noise[1] = 0xFFFFFFFF, 0x80000000
		it, err := runtime.NewInterpreter(buildModel(t, pcanModel(6, n, make([]int16, 125))), nil)
		if err != nil {
			t.Fatal(err)
		}
		got := signalFromLE[uint32](invoke(t, it, signalLE(x), signalLE(noise))[0])
		if !slices.Equal(got, make([]uint32, n)) {
			t.Errorf("zero gains: got %v", got)
		}
		signalAllocs(t, it)
	})
}

func TestSignalPCANErrors(t *testing.T) {
	lut := make([]int16, 125)
	for _, c := range []struct {
		name string
		m    *builder.Model
		want string
	}{
		{"short table", pcanModel(6, 4, make([]int16, 124)), "want at least 125"},
		{"shift 64", pcanModel(64, 4, lut), "want 0 to 63"},
		{"shift missing", signalModel("SignalPCAN", flexbuffers.NewMap().Int("snr", 6).Bytes(),
			[]signalT{{typ: tflite.TensorTypeUINT32, shape: []int{4}}, {typ: tflite.TensorTypeUINT32, shape: []int{4}}, {typ: tflite.TensorTypeINT16, shape: []int{125}, data: signalLE(lut)}},
			[]signalT{{typ: tflite.TensorTypeUINT32, shape: []int{4}}}), `"snr_shift" is missing`},
		{"noise length", signalModel("SignalPCAN", flexbuffers.NewMap().Int("snr_shift", 6).Bytes(),
			[]signalT{{typ: tflite.TensorTypeUINT32, shape: []int{4}}, {typ: tflite.TensorTypeUINT32, shape: []int{5}}, {typ: tflite.TensorTypeINT16, shape: []int{125}, data: signalLE(lut)}},
			[]signalT{{typ: tflite.TensorTypeUINT32, shape: []int{4}}}), "differ in length"},
		{"int32 table", signalModel("SignalPCAN", flexbuffers.NewMap().Int("snr_shift", 6).Bytes(),
			[]signalT{{typ: tflite.TensorTypeUINT32, shape: []int{4}}, {typ: tflite.TensorTypeUINT32, shape: []int{4}}, {typ: tflite.TensorTypeINT32, shape: []int{125}, data: make([]byte, 500)}},
			[]signalT{{typ: tflite.TensorTypeUINT32, shape: []int{4}}}), "unsupported tensor type"},
		{"output length", signalModel("SignalPCAN", flexbuffers.NewMap().Int("snr_shift", 6).Bytes(),
			[]signalT{{typ: tflite.TensorTypeUINT32, shape: []int{4}}, {typ: tflite.TensorTypeUINT32, shape: []int{4}}, {typ: tflite.TensorTypeINT16, shape: []int{125}, data: signalLE(lut)}},
			[]signalT{{typ: tflite.TensorTypeUINT32, shape: []int{3}}}), "computed output shape"},
	} {
		t.Run(c.name, func(t *testing.T) { signalWantError(t, c.m, c.want) })
	}
	t.Run("fuzzed options", func(t *testing.T) { signalOptionsFuzz(t, pcanModel(6, 4, lut)) })
}
