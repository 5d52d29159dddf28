package runtime

import (
	"fmt"

	"github.com/edged/edged/internal/runtime/tflite"
)

// SignalPCAN: per-channel automatic gain control (PCAN): each filter bank
// channel is multiplied by a gain looked up from its noise estimate in a
// piecewise-quadratic table, then compressed by the "shrink" function.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorCUSTOM, Custom: "SignalPCAN", MaxVersion: 1, New: func() Kernel { return &signalPCAN{} }})
}

const (
	signalPcanSnrBits    = 12
	signalPcanOutputBits = 6
	// signalPcanLUTSize is the gain table's length: three coefficients
	// per interval up to a top bit of 32 (4*32 - 3).
	signalPcanLUTSize = 125
)

type signalPCAN struct {
	input, noise, lut, output *Tensor
	snrShift                  uint
}

func (k *signalPCAN) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(3, 3, 1); err != nil {
		return err
	}
	m, err := signalOptions(c)
	if err != nil {
		return err
	}
	shift, err := signalIntOption(m, "snr_shift", 0, 63)
	if err != nil {
		return err
	}
	k.snrShift = uint(shift)
	k.input, k.noise, k.lut, k.output = c.Input(0), c.Input(1), c.Input(2), c.Output(0)
	if err := signalCheck("input", k.input, Uint32, 1); err != nil {
		return err
	}
	if err := signalCheck("noise estimate", k.noise, Uint32, 1); err != nil {
		return err
	}
	if err := signalCheck("gain table", k.lut, Int16, 1); err != nil {
		return err
	}
	if err := signalCheck("output", k.output, Uint32, 1); err != nil {
		return err
	}
	if k.noise.Dim(0) != k.input.Dim(0) {
		return fmt.Errorf("noise estimate %s and input %s differ in length", k.noise, k.input)
	}
	if k.lut.Dim(0) < signalPcanLUTSize {
		return fmt.Errorf("gain table %s has %d entries, want at least %d", k.lut, k.lut.Dim(0), signalPcanLUTSize)
	}
	return c.SetOutputShape(0, k.input.Shape)
}

func (k *signalPCAN) Eval() error {
	out := k.output.Uint32s()
	copy(out, k.input.Uint32s())
	signalPcanRef(k.lut.Int16s(), k.snrShift, k.noise.Uint32s(), out)
	return nil
}

// signalWideDynamic is WideDynamicFunction: the gain for noise level x from
// the table's quadratic segment of x's top bit.
func signalWideDynamic(x uint32, lut []int16) int16 {
	if x <= 2 {
		return lut[x]
	}
	interval := int32(signalMSB32(x))
	seg := lut[4*interval-6:]
	var f uint32
	if interval < 11 {
		f = x << (11 - interval)
	} else {
		f = x >> (interval - 11)
	}
	frac := int32(int16(f & 0x3FF))
	result := (int32(seg[2]) * frac) >> 5
	result += int32(uint32(int32(seg[1])) << 5)
	result *= frac
	result = (result + 1<<14) >> 15
	result += int32(seg[0])
	return int16(result)
}

// signalPcanShrink is PcanShrink: x²/4 below 2, x-1 above, from
// signalPcanSnrBits to signalPcanOutputBits fraction bits.
func signalPcanShrink(x uint32) uint32 {
	if x < 2<<signalPcanSnrBits {
		return (x * x) >> (2 + 2*signalPcanSnrBits - signalPcanOutputBits)
	}
	return x>>(signalPcanSnrBits-signalPcanOutputBits) - 1<<signalPcanOutputBits
}

// signalPcanRef is the reference kernel
// (tflm_signal::ApplyPcanAutoGainControlFixed), in place on out. The int16
// gain converts to uint32 with sign extension, as in TFLM.
func signalPcanRef(lut []int16, snrShift uint, noise, out []uint32) {
	for i := range out {
		gain := uint32(int32(signalWideDynamic(noise[i], lut)))
		snr := uint32((uint64(out[i]) * uint64(gain)) >> snrShift)
		out[i] = signalPcanShrink(snr)
	}
}
