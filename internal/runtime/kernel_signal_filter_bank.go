package runtime

import (
	"fmt"
	"math"

	"github.com/edged/edged/internal/runtime/tflite"
)

// The filter bank stages of TFLM's audio front end:
//
//   - SignalFilterBank: triangular mel filters over an energy spectrum,
//     accumulated in uint64 (each bin feeds one channel with its weight and
//     the next with its "unweight").
//   - SignalFilterBankSquareRoot: integer square root of every channel,
//     shifted right by the FFT auto-scale bits.
//   - SignalFilterBankSpectralSubtraction: subtracts a running noise
//     estimate, kept across invocations (Reset clears it) and output too.
//   - SignalFilterBankLog: a fixed-point natural log, scaled.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorCUSTOM, Custom: "SignalFilterBank", MaxVersion: 1, New: func() Kernel { return &signalFilterBank{} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorCUSTOM, Custom: "SignalFilterBankSquareRoot", MaxVersion: 1, New: func() Kernel { return &signalFilterBankSqrt{} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorCUSTOM, Custom: "SignalFilterBankSpectralSubtraction", MaxVersion: 1, New: func() Kernel { return &signalSpectralSubtraction{} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorCUSTOM, Custom: "SignalFilterBankLog", MaxVersion: 1, New: func() Kernel { return &signalFilterBankLog{} }})
}

// ---- SignalFilterBank ----

type signalFilterBank struct {
	input, weights, unweights       *Tensor
	freqStarts, weightStarts, width *Tensor
	output                          *Tensor
	numChannels                     int
	checked                         bool     // the channel tables are constant and were checked in Prepare
	work                            []uint64 // num_channels+1 accumulators; [0] is scratch
}

func (k *signalFilterBank) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(6, 6, 1); err != nil {
		return err
	}
	m, err := signalOptions(c)
	if err != nil {
		return err
	}
	n, err := signalIntOption(m, "num_channels", 1, math.MaxInt32)
	if err != nil {
		return err
	}
	k.numChannels = int(n)
	k.input, k.weights, k.unweights = c.Input(0), c.Input(1), c.Input(2)
	k.freqStarts, k.weightStarts, k.width = c.Input(3), c.Input(4), c.Input(5)
	k.output = c.Output(0)
	if err := signalCheck("input", k.input, Uint32, 1); err != nil {
		return err
	}
	for _, in := range []struct {
		what string
		t    *Tensor
	}{{"weights", k.weights}, {"unweights", k.unweights}, {"channel frequency starts", k.freqStarts}, {"channel weight starts", k.weightStarts}, {"channel widths", k.width}} {
		if err := signalCheck(in.what, in.t, Int16, 1); err != nil {
			return err
		}
	}
	if err := signalCheck("output", k.output, Uint64, 1); err != nil {
		return err
	}
	if k.weights.Dim(0) != k.unweights.Dim(0) {
		return fmt.Errorf("weights %s and unweights %s differ in length", k.weights, k.unweights)
	}
	for _, t := range []*Tensor{k.freqStarts, k.weightStarts, k.width} {
		if t.Dim(0) != k.numChannels+1 {
			return fmt.Errorf("channel table %s must have num_channels+1 = %d entries", t, k.numChannels+1)
		}
	}
	if err := c.SetOutputShape(0, []int{k.numChannels}); err != nil {
		return err
	}
	k.work = make([]uint64, k.numChannels+1)
	if k.freqStarts.Const && k.weightStarts.Const && k.width.Const {
		if err := k.checkTables(); err != nil {
			return err
		}
		k.checked = true
	}
	return nil
}

// checkTables makes sure every channel reads inside the spectrum and the
// weights.
func (k *signalFilterBank) checkTables() error {
	fs, ws, w := k.freqStarts.Int16s(), k.weightStarts.Int16s(), k.width.Int16s()
	bins, nw := k.input.Dim(0), k.weights.Dim(0)
	for i := range k.numChannels + 1 {
		if w[i] <= 0 {
			continue
		}
		if fs[i] < 0 || int(fs[i])+int(w[i]) > bins {
			return fmt.Errorf("channel %d reads bins [%d, %d) of the %d bins of input %s", i, fs[i], int(fs[i])+int(w[i]), bins, k.input)
		}
		if ws[i] < 0 || int(ws[i])+int(w[i]) > nw {
			return fmt.Errorf("channel %d reads weights [%d, %d) of the %d weights %s", i, ws[i], int(ws[i])+int(w[i]), nw, k.weights)
		}
	}
	return nil
}

func (k *signalFilterBank) Eval() error {
	if !k.checked {
		if err := k.checkTables(); err != nil {
			return err
		}
	}
	signalFilterBankAccumulate(k.input.Uint32s(), k.weights.Int16s(), k.unweights.Int16s(),
		k.freqStarts.Int16s(), k.weightStarts.Int16s(), k.width.Int16s(), k.work)
	// Channel 0 of the work area is scratch.
	copy(k.output.Uint64s(), k.work[1:])
	return nil
}

// signalFilterBankAccumulate is the reference kernel
// (tflm_signal::FilterbankAccumulateChannels): out has num_channels+1
// entries. Weights are int16 and convert to uint64 with sign extension,
// as in TFLM.
func signalFilterBankAccumulate(in []uint32, weights, unweights, freqStarts, weightStarts, widths []int16, out []uint64) {
	var weightAcc, unweightAcc uint64
	for i := range out {
		fs, ws := int(freqStarts[i]), int(weightStarts[i])
		for j := 0; j < int(widths[i]); j++ {
			x := uint64(in[fs+j])
			weightAcc += uint64(weights[ws+j]) * x
			unweightAcc += uint64(unweights[ws+j]) * x
		}
		out[i] = weightAcc
		weightAcc, unweightAcc = unweightAcc, 0
	}
}

// ---- SignalFilterBankSquareRoot ----

type signalFilterBankSqrt struct {
	input, scaleBits, output *Tensor
}

func (k *signalFilterBankSqrt) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(2, 2, 1); err != nil {
		return err
	}
	k.input, k.scaleBits, k.output = c.Input(0), c.Input(1), c.Output(0)
	if err := signalCheck("input", k.input, Uint64, 1); err != nil {
		return err
	}
	if err := signalCheck("scale bits", k.scaleBits, Int32, 0); err != nil {
		return err
	}
	if err := signalCheck("output", k.output, Uint32, 1); err != nil {
		return err
	}
	return c.SetOutputShape(0, k.input.Shape)
}

func (k *signalFilterBankSqrt) Eval() error {
	shift := k.scaleBits.Int32s()[0]
	if shift < 0 || shift > 31 {
		return fmt.Errorf("scale bits %d outside [0, 31]", shift)
	}
	signalFilterBankSqrtRef(k.input.Uint64s(), uint(shift), k.output.Uint32s())
	return nil
}

// signalFilterBankSqrtRef is the reference kernel (tflm_signal::FilterbankSqrt).
func signalFilterBankSqrtRef(in []uint64, shift uint, out []uint32) {
	for i, x := range in {
		out[i] = signalSqrt64(x) >> shift
	}
}

// signalSqrt32 is tflm_signal::Sqrt32: bit-by-bit integer square root,
// rounded to nearest (without overflowing 0xFFFF).
func signalSqrt32(num uint32) uint16 {
	if num == 0 {
		return 0
	}
	var res uint32
	maxBit := int(32-signalMSB32(num)) | 1
	bit := uint32(1) << (31 - maxBit)
	for range (31-maxBit)/2 + 1 {
		if num >= res+bit {
			num -= res + bit
			res = res>>1 + bit
		} else {
			res >>= 1
		}
		bit >>= 2
	}
	if num > res && res != 0xFFFF {
		res++
	}
	return uint16(res)
}

// signalSqrt64 is tflm_signal::Sqrt64, which takes the 32-bit path whenever
// the upper word is clear.
func signalSqrt64(num uint64) uint32 {
	if num>>32 == 0 {
		return uint32(signalSqrt32(uint32(num)))
	}
	var res uint64
	maxBit := int(64-signalMSB64(num)) | 1
	bit := uint64(1) << (63 - maxBit)
	for range (63-maxBit)/2 + 1 {
		if num >= res+bit {
			num -= res + bit
			res = res>>1 + bit
		} else {
			res >>= 1
		}
		bit >>= 2
	}
	if num > res && res != 0xFFFFFFFF {
		res++
	}
	return uint32(res)
}

// ---- SignalFilterBankSpectralSubtraction ----

type signalSpectralSubtraction struct {
	input, output, noiseOut *Tensor
	cfg                     signalSpectralSubtractionConfig
	noise                   []uint32 // the noise estimate, kept across invocations
}

// signalSpectralSubtractionConfig is tflm_signal::SpectralSubtractionConfig.
type signalSpectralSubtractionConfig struct {
	numChannels                            int
	smoothing, oneMinusSmoothing           uint32
	alternateSmoothing, alternateOneMinus  uint32
	minSignalRemaining                     uint32
	smoothingBits, spectralSubtractionBits uint
	clamping                               bool
}

func (k *signalSpectralSubtraction) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(1, 1, 2); err != nil {
		return err
	}
	m, err := signalOptions(c)
	if err != nil {
		return err
	}
	cfg := &k.cfg
	n, err := signalIntOption(m, "num_channels", 1, math.MaxInt32)
	if err != nil {
		return err
	}
	cfg.numChannels = int(n)
	for _, o := range []struct {
		key string
		dst *uint32
	}{
		{"smoothing", &cfg.smoothing},
		{"one_minus_smoothing", &cfg.oneMinusSmoothing},
		{"alternate_smoothing", &cfg.alternateSmoothing},
		{"alternate_one_minus_smoothing", &cfg.alternateOneMinus},
		{"min_signal_remaining", &cfg.minSignalRemaining},
	} {
		v, err := signalIntOption(m, o.key, 0, math.MaxUint32)
		if err != nil {
			return err
		}
		*o.dst = uint32(v)
	}
	sb, err := signalIntOption(m, "smoothing_bits", 0, 31)
	if err != nil {
		return err
	}
	ssb, err := signalIntOption(m, "spectral_subtraction_bits", 0, 63)
	if err != nil {
		return err
	}
	cfg.smoothingBits, cfg.spectralSubtractionBits = uint(sb), uint(ssb)
	if cfg.clamping, err = signalBoolOption(m, "clamping"); err != nil {
		return err
	}
	k.input, k.output, k.noiseOut = c.Input(0), c.Output(0), c.Output(1)
	if err := signalCheck("input", k.input, Uint32, 1); err != nil {
		return err
	}
	if err := signalCheck("output", k.output, Uint32, 1); err != nil {
		return err
	}
	if err := signalCheck("noise estimate output", k.noiseOut, Uint32, 1); err != nil {
		return err
	}
	if k.input.Dim(0) != cfg.numChannels {
		return fmt.Errorf("input %s does not have num_channels = %d channels", k.input, cfg.numChannels)
	}
	shape := []int{cfg.numChannels}
	if err := c.SetOutputShape(0, shape); err != nil {
		return err
	}
	if err := c.SetOutputShape(1, shape); err != nil {
		return err
	}
	k.noise = make([]uint32, cfg.numChannels)
	return nil
}

// Reset clears the noise estimate.
func (k *signalSpectralSubtraction) Reset() { clear(k.noise) }

func (k *signalSpectralSubtraction) Eval() error {
	signalSpectralSubtractionRef(&k.cfg, k.input.Uint32s(), k.output.Uint32s(), k.noise)
	copy(k.noiseOut.Uint32s(), k.noise)
	return nil
}

// signalSpectralSubtractionRef is the reference kernel
// (tflm_signal::FilterbankSpectralSubtraction); it updates noise.
func signalSpectralSubtractionRef(cfg *signalSpectralSubtractionConfig, in, out, noise []uint32) {
	for i := range cfg.numChannels {
		smoothing, oneMinus := cfg.smoothing, cfg.oneMinusSmoothing
		if i&1 != 0 { // odd channels use the alternate coefficients
			smoothing, oneMinus = cfg.alternateSmoothing, cfg.alternateOneMinus
		}
		signalUp := in[i] << cfg.smoothingBits
		noise[i] = uint32((uint64(signalUp)*uint64(smoothing) + uint64(noise[i])*uint64(oneMinus)) >> cfg.spectralSubtractionBits)
		estimateUp := noise[i]
		if estimateUp > signalUp {
			estimateUp = signalUp
			if cfg.clamping {
				noise[i] = estimateUp
			}
		}
		floor := uint32((uint64(in[i]) * uint64(cfg.minSignalRemaining)) >> cfg.spectralSubtractionBits)
		subtracted := (signalUp - estimateUp) >> cfg.smoothingBits
		if subtracted > floor {
			out[i] = subtracted
		} else {
			out[i] = floor
		}
	}
}

// ---- SignalFilterBankLog ----

type signalFilterBankLog struct {
	input, output  *Tensor
	outputScale    uint32
	correctionBits uint
}

func (k *signalFilterBankLog) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(1, 1, 1); err != nil {
		return err
	}
	m, err := signalOptions(c)
	if err != nil {
		return err
	}
	scale, err := signalIntOption(m, "output_scale", 0, math.MaxUint32)
	if err != nil {
		return err
	}
	bits, err := signalIntOption(m, "input_correction_bits", 0, 31)
	if err != nil {
		return err
	}
	k.outputScale, k.correctionBits = uint32(scale), uint(bits)
	k.input, k.output = c.Input(0), c.Output(0)
	if err := signalCheck("input", k.input, Uint32, 1); err != nil {
		return err
	}
	if err := signalCheck("output", k.output, Int16, 1); err != nil {
		return err
	}
	return c.SetOutputShape(0, k.input.Shape)
}

func (k *signalFilterBankLog) Eval() error {
	signalFilterBankLogRef(k.input.Uint32s(), k.outputScale, k.correctionBits, k.output.Int16s())
	return nil
}

// signalFilterBankLogRef is the reference kernel (tflm_signal::FilterbankLog).
func signalFilterBankLogRef(in []uint32, outputScale uint32, correctionBits uint, out []int16) {
	for i, x := range in {
		scaled := x << correctionBits
		if scaled <= 1 {
			out[i] = 0
			continue
		}
		v := signalLog32(scaled, outputScale)
		if v > math.MaxInt16 {
			v = math.MaxInt16
		}
		out[i] = int16(v)
	}
}

// Fixed-point log (signal/src/log.cc): log2 of x from its top bit plus a
// piecewise-linear correction table over the fraction, converted to ln by a
// Q16 constant and scaled.
const (
	signalLogSegmentsLog2 = 7
	signalLogScaleLog2    = 16
	signalLogScale        = 1 << signalLogScaleLog2
	signalLogCoeff        = 45426 // round(ln 2 * 65536)
)

// signalLogLUT[i] is log2(1+f) - f in Q16 at f = i/128, rounded to nearest,
// for i = 0..128, plus a trailing 0 (TFLM's kLogLut).
var signalLogLUT = func() [1<<signalLogSegmentsLog2 + 2]int32 {
	var t [1<<signalLogSegmentsLog2 + 2]int32
	for i := 0; i <= 1<<signalLogSegmentsLog2; i++ {
		f := float64(i) / (1 << signalLogSegmentsLog2)
		t[i] = int32(math.Round((math.Log2(1+f) - f) * signalLogScale))
	}
	return t
}()

// signalLog2Fraction is Log2FractionPart32: the Q16 fraction of log2(x)
// for x with its top bit at log2x.
func signalLog2Fraction(x, log2x uint32) uint32 {
	frac := int32(int64(x) - int64(1)<<log2x)
	if log2x < signalLogScaleLog2 {
		frac <<= signalLogScaleLog2 - log2x
	} else {
		frac >>= log2x - signalLogScaleLog2
	}
	const segUnit = signalLogScale >> signalLogSegmentsLog2
	baseSeg := uint32(frac) >> (signalLogScaleLog2 - signalLogSegmentsLog2)
	c0, c1 := signalLogLUT[baseSeg], signalLogLUT[baseSeg+1]
	segBase := int32(segUnit * baseSeg)
	relPos := ((c1 - c0) * (frac - segBase)) >> signalLogScaleLog2
	return uint32(frac + c0 + relPos)
}

// signalLog32 is tflm_signal::Log32: ln(x) * outScale, x > 1. The final
// product is a uint32 that wraps, as in TFLM.
func signalLog32(x, outScale uint32) uint32 {
	integer := signalMSB32(x) - 1
	fraction := signalLog2Fraction(x, integer)
	log2 := integer<<signalLogScaleLog2 + fraction
	const round = signalLogScale / 2
	loge := uint32((uint64(signalLogCoeff)*uint64(log2) + round) >> signalLogScaleLog2)
	return (outScale*loge + round) >> signalLogScaleLog2
}
