package runtime

import (
	"fmt"
	"math"

	"github.com/edged/edged/internal/runtime/tflite"
)

// SignalEnergy: the squared magnitude re² + im² of the int16 complex bins
// [start_index, end_index) of a spectrum, as uint32.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorCUSTOM, Custom: "SignalEnergy", MaxVersion: 1, New: func() Kernel { return &signalEnergy{} }})
}

type signalEnergy struct {
	input, output *Tensor
	start, end    int
}

func (k *signalEnergy) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(1, 1, 1); err != nil {
		return err
	}
	m, err := signalOptions(c)
	if err != nil {
		return err
	}
	k.input, k.output = c.Input(0), c.Output(0)
	if err := signalCheck("input", k.input, Int16, 1); err != nil {
		return err
	}
	if err := signalCheck("output", k.output, Uint32, 1); err != nil {
		return err
	}
	if k.input.Dim(0)%2 != 0 {
		return fmt.Errorf("input %s must hold (real, imaginary) pairs: its length is odd", k.input)
	}
	bins := k.input.Dim(0) / 2
	if err := c.SetOutputShape(0, []int{bins}); err != nil {
		return err
	}
	start, err := signalIntOption(m, "start_index", 0, math.MaxInt32)
	if err != nil {
		return err
	}
	end, err := signalIntOption(m, "end_index", 0, math.MaxInt32)
	if err != nil {
		return err
	}
	if start > end || end > int64(bins) {
		return fmt.Errorf("bins [start_index %d, end_index %d) do not lie within the %d bins of input %s", start, end, bins, k.input)
	}
	k.start, k.end = int(start), int(end)
	return nil
}

func (k *signalEnergy) Eval() error {
	out := k.output.Uint32s()
	// TFLM leaves the bins outside [start, end) as they were (whatever the
	// arena held); edged zeroes them so that results are deterministic.
	clear(out[:k.start])
	clear(out[k.end:])
	signalSpectrumToEnergy(k.input.Int16s(), k.start, k.end, out)
	return nil
}

// signalSpectrumToEnergy is the reference kernel
// (tflm_signal::SpectrumToEnergy). The sum is an int32 that wraps for
// (-32768)² + (-32768)², as in TFLM's build.
func signalSpectrumToEnergy(in []int16, start, end int, out []uint32) {
	for i := start; i < end; i++ {
		re, im := int32(in[2*i]), int32(in[2*i+1])
		out[i] = uint32(re*re + im*im)
	}
}
