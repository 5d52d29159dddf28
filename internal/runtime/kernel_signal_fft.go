package runtime

import (
	"fmt"
	"math"

	"github.com/edged/edged/internal/runtime/tflite"
)

// SignalFftAutoScale: shifts an int16 frame left as far as its largest
// magnitude allows (so the fixed-point FFT keeps precision) and outputs the
// shift. SignalRfft: the real-input FFT of every row (zero-padded to
// fft_length), with KISS FFT's arithmetic (kernel_signal_kissfft.go), for
// int16, int32 and float32 as TFLM registers them.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorCUSTOM, Custom: "SignalFftAutoScale", MaxVersion: 1, New: func() Kernel { return &signalFftAutoScale{} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorCUSTOM, Custom: "SignalRfft", MaxVersion: 1, New: func() Kernel { return &signalRfft{} }})
}

type signalFftAutoScale struct {
	input, output, scaleBits *Tensor
}

func (k *signalFftAutoScale) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(1, 1, 2); err != nil {
		return err
	}
	k.input, k.output, k.scaleBits = c.Input(0), c.Output(0), c.Output(1)
	if err := signalCheck("input", k.input, Int16, 1); err != nil {
		return err
	}
	if err := signalCheck("output", k.output, Int16, 1); err != nil {
		return err
	}
	if err := signalCheck("scale bits output", k.scaleBits, Int32, 0); err != nil {
		return err
	}
	if err := c.SetOutputShape(0, k.input.Shape); err != nil {
		return err
	}
	return c.SetOutputShape(1, []int{})
}

func (k *signalFftAutoScale) Eval() error {
	k.scaleBits.Int32s()[0] = signalFftAutoScaleRef(k.input.Int16s(), k.output.Int16s())
	return nil
}

// signalMaxAbs16 is tflm_signal::MaxAbs16 (portable version): the running
// maximum is an int16, so -(-32768) wraps to -32768 and a later element
// larger than that replaces it, as in TFLM.
func signalMaxAbs16(in []int16) int16 {
	var m int16
	for _, v := range in {
		if int32(v) > int32(m) {
			m = v
		} else if -int32(v) > int32(m) {
			m = -v
		}
	}
	return m
}

// signalFftAutoScaleRef is the reference kernel (tflm_signal::FftAutoScale).
func signalFftAutoScaleRef(in, out []int16) int32 {
	m := signalMaxAbs16(in)
	// The int16 maximum converts to uint32 with sign extension.
	scaleBits := 16 - int32(signalMSB32(uint32(int32(m)))) - 1
	if scaleBits <= 0 {
		scaleBits = 0
	}
	mul := int32(1) << scaleBits
	for i, x := range in {
		out[i] = int16(int32(x) * mul)
	}
	return scaleBits
}

// maxRfftLength bounds fft_length: far above any audio front end, and keeps
// a hostile model from making edged allocate twiddle tables without bound.
const maxRfftLength = 1 << 20

type signalRfft struct {
	input, output *Tensor
	typ           DType
	fftLength     int
	inputLength   int // last input dimension, at most fftLength
	rows          int
	work          *Scratch // one zero-padded row

	fft16 *kissFixedR[int16]
	fft32 *kissFixedR[int32]
	fftF  *kissFloatR
}

func (k *signalRfft) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(1, 1, 1); err != nil {
		return err
	}
	m, err := signalOptions(c)
	if err != nil {
		return err
	}
	t, err := signalIntOption(m, "T", 0, math.MaxUint8)
	if err != nil {
		return err
	}
	switch DType(t) {
	case Int16, Int32, Float32:
		k.typ = DType(t)
	default:
		return UnsupportedTypes("option T", DType(t))
	}
	n, err := signalIntOption(m, "fft_length", 2, maxRfftLength)
	if err != nil {
		return err
	}
	if n%2 != 0 {
		return fmt.Errorf("option \"fft_length\" is %d, must be even", n)
	}
	k.fftLength = int(n)
	k.input, k.output = c.Input(0), c.Output(0)
	if err := signalCheck("input", k.input, k.typ, -1); err != nil {
		return err
	}
	if err := signalCheck("output", k.output, k.typ, len(k.input.Shape)); err != nil {
		return err
	}
	k.inputLength = k.input.Dim(-1)
	if k.inputLength > k.fftLength {
		return fmt.Errorf("input %s has rows of %d samples, more than fft_length %d", k.input, k.inputLength, k.fftLength)
	}
	if k.inputLength == 0 {
		return fmt.Errorf("input %s has empty rows", k.input)
	}
	k.rows = k.input.NumElements() / k.inputLength
	// Every row gives fft_length/2+1 complex bins, stored (real, imag).
	shape := append(append([]int(nil), k.input.Shape[:len(k.input.Shape)-1]...), k.fftLength+2)
	if err := c.SetOutputShape(0, shape); err != nil {
		return err
	}
	k.work = c.RequestScratch(k.fftLength * k.typ.Size())
	switch k.typ {
	case Int16:
		k.fft16 = newKissFixedR[int16](k.fftLength)
	case Int32:
		k.fft32 = newKissFixedR[int32](k.fftLength)
	case Float32:
		k.fftF = newKissFloatR(k.fftLength)
	}
	return nil
}

func (k *signalRfft) Eval() error {
	switch k.typ {
	case Int16:
		signalRfftRows(k, k.input.Int16s(), k.output.Bytes(), k.fft16)
	case Int32:
		signalRfftRows(k, k.input.Int32s(), k.output.Bytes(), k.fft32)
	case Float32:
		signalRfftRows(k, k.input.Float32s(), k.output.Bytes(), k.fftF)
	}
	return nil
}

// kissReal is a prepared real FFT of one sample type.
type kissReal[T int16 | int32 | float32] interface {
	transform(in, out []kissCpx[T])
}

// signalRfftRows is the reference kernel: each row is copied into the work
// area, zero-padded to fft_length and transformed.
func signalRfftRows[T int16 | int32 | float32](k *signalRfft, in []T, outBytes []byte, fft kissReal[T]) {
	bins := k.fftLength/2 + 1
	out := view[kissCpx[T]](outBytes)
	work := view[T](k.work.Bytes)
	pairs := view[kissCpx[T]](k.work.Bytes)
	for r := range k.rows {
		n := copy(work, in[r*k.inputLength:(r+1)*k.inputLength])
		clear(work[n:])
		fft.transform(pairs, out[r*bins:(r+1)*bins])
	}
}
