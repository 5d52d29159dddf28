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

func energyModel(bins, start, end int) *builder.Model {
	return signalModel("SignalEnergy", flexbuffers.NewMap().Int("start_index", int64(start)).Int("end_index", int64(end)).Bytes(),
		[]signalT{{typ: tflite.TensorTypeINT16, shape: []int{2 * bins}}},
		[]signalT{{typ: tflite.TensorTypeUINT32, shape: []int{bins}}})
}

func TestSignalEnergy(t *testing.T) {
	t.Run("hand-checked", func(t *testing.T) {
		in := []int16{
			3, 4, // 25
			-3, 4, // 25
			32767, 32767, // 2·32767² = 2147352578
			-32768, -32768, // 2³¹: wraps in int32 as in TFLM, reads back as uint32 2147483648
			-32768, 0, // 2³⁰
			7, 7, // outside [start, end): 0
		}
		got := signalFromLE[uint32](runModel(t, energyModel(6, 0, 5), signalLE(in))[0])
		if want := []uint32{25, 25, 2147352578, 2147483648, 1073741824, 0}; !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("random range", func(t *testing.T) {
		rng := rand.New(rand.NewSource(6))
		const bins = 257
		it, err := runtime.NewInterpreter(buildModel(t, energyModel(bins, 5, 241)), nil)
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			in := make([]int16, 2*bins)
			for i := range in {
				in[i] = int16(rng.Intn(1 << 16))
			}
			got := signalFromLE[uint32](invoke(t, it, signalLE(in))[0])
			for k := range bins {
				var want uint64
				if k >= 5 && k < 241 {
					re, im := int64(in[2*k]), int64(in[2*k+1])
					want = uint64(re*re+im*im) & 0xFFFFFFFF
				}
				if uint64(got[k]) != want {
					t.Fatalf("bin %d (%d, %d): got %d, want %d", k, in[2*k], in[2*k+1], got[k], want)
				}
			}
		}
		signalAllocs(t, it)
	})
}

func TestSignalEnergyErrors(t *testing.T) {
	in := signalT{typ: tflite.TensorTypeINT16, shape: []int{8}}
	out := signalT{typ: tflite.TensorTypeUINT32, shape: []int{4}}
	opts := func(start, end int64) []byte {
		return flexbuffers.NewMap().Int("start_index", start).Int("end_index", end).Bytes()
	}
	for _, c := range []struct {
		name    string
		opts    []byte
		in, out signalT
		want    string
	}{
		{"start missing", flexbuffers.NewMap().Int("end_index", 2).Bytes(), in, out, `"start_index" is missing`},
		{"end missing", flexbuffers.NewMap().Int("start_index", 2).Bytes(), in, out, `"end_index" is missing`},
		{"end past the bins", opts(0, 5), in, out, "do not lie within"},
		{"start after end", opts(3, 2), in, out, "do not lie within"},
		{"negative start", opts(-1, 2), in, out, "want 0 to"},
		{"odd input", opts(0, 2), signalT{typ: tflite.TensorTypeINT16, shape: []int{7}}, out, "odd"},
		{"int32 input", opts(0, 2), signalT{typ: tflite.TensorTypeINT32, shape: []int{8}}, out, "unsupported tensor type"},
		{"int32 output", opts(0, 2), in, signalT{typ: tflite.TensorTypeINT32, shape: []int{4}}, "unsupported tensor type"},
		{"output length", opts(0, 2), in, signalT{typ: tflite.TensorTypeUINT32, shape: []int{8}}, "computed output shape"},
	} {
		t.Run(c.name, func(t *testing.T) {
			signalWantError(t, signalModel("SignalEnergy", c.opts, []signalT{c.in}, []signalT{c.out}), c.want)
		})
	}
	t.Run("fuzzed options", func(t *testing.T) {
		signalOptionsFuzz(t, energyModel(4, 1, 3))
	})
}
