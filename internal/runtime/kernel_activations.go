package runtime

import (
	"fmt"
	"math"

	"github.com/edged/edged/internal/quantize"
	"github.com/edged/edged/internal/runtime/tflite"
)

// Activation functions: RELU, RELU6, RELU_N1_TO_1, LOGISTIC, TANH,
// LEAKY_RELU, HARD_SWISH and PRELU.
//
// int8 and int16 follow TensorFlow Lite Micro (micro/kernels/activations*.cc,
// logistic*.cc, tanh.cc, leaky_relu*.cc, hard_swish*.cc, prelu*.cc with the
// reference kernels they call). uint8, which TFLM lacks, follows full
// TensorFlow Lite's Prepare (tensorflow/lite/kernels/activations.cc) with its
// reference kernels: QuantizedReluX for the RELUs, the 256-entry lookup table
// for LOGISTIC and TANH. float32 follows TFLM's reference float code.
//
// int16 LOGISTIC and TANH are not implemented: TFLM computes them by
// interpolating in a hand-tuned 256-entry sigmoid table that no formula
// reproduces.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorRELU, MaxVersion: 3, New: func() Kernel { return &relu{kind: reluPlain} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorRELU6, MaxVersion: 3, New: func() Kernel { return &relu{kind: relu6} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorRELU_N1_TO_1, MaxVersion: 1, New: func() Kernel { return &relu{kind: reluN1To1} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorLOGISTIC, MaxVersion: 3, New: func() Kernel { return &logistic{} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorTANH, MaxVersion: 3, New: func() Kernel { return &tanh{} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorLEAKY_RELU, MaxVersion: 2, New: func() Kernel { return &leakyRelu{} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorHARD_SWISH, MaxVersion: 1, New: func() Kernel { return &hardSwish{} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorPRELU, MaxVersion: 1, New: func() Kernel { return &prelu{} }})
}

// actPrepareUnary checks an activation's single input and output, which
// share a type, and gives the output the input's shape.
func actPrepareUnary(c *PrepareContext) (in, out *Tensor, err error) {
	if err := c.ExpectIO(1, 1, 1); err != nil {
		return nil, nil, err
	}
	in, out = c.Input(0), c.Output(0)
	if err := sameTypes(in, out); err != nil {
		return nil, nil, err
	}
	if err := c.SetOutputShape(0, in.Shape); err != nil {
		return nil, nil, err
	}
	return in, out, nil
}

// actQuantized checks that an integer tensor carries usable per-tensor
// quantization: a positive finite scale and a zero point its type holds.
func actQuantized(what string, t *Tensor) error {
	if err := requireQuantized(what, t); err != nil {
		return err
	}
	if n := len(t.Quant.Scale); n != 1 {
		return fmt.Errorf("%s %s has %d scales; it must be quantized per tensor", what, t, n)
	}
	if s := t.Scale(); !(s > 0) || math.IsInf(float64(s), 0) {
		return fmt.Errorf("%s %s has scale %g; it must be positive and finite", what, t, s)
	}
	return checkZeroPointRange(what, t)
}

// actRange is the value range of an 8- or 16-bit integer type.
func actRange(t DType) (lo, hi int32) {
	lo, hi, _ = typeRange(t)
	return lo, hi
}

// ---------------------------------------------------------------------------
// RELU, RELU6, RELU_N1_TO_1

type reluKind int

const (
	reluPlain reluKind = iota // max(x, 0)
	relu6                     // min(max(x, 0), 6)
	reluN1To1                 // min(max(x, -1), 1)
)

type relu struct {
	kind          reluKind
	input, output *Tensor

	// clampOnly is TFLM's int8/int16 RELU6: the input clamped to the
	// quantized [0, 6] of the input's own quantization.
	clampOnly           bool
	inOffset, outOffset int32
	mult                quantize.Multiplier
	lo, hi              int32
}

func (k *relu) Prepare(c *PrepareContext) error {
	in, out, err := actPrepareUnary(c)
	if err != nil {
		return err
	}
	k.input, k.output = in, out
	switch in.Type {
	case Float32:
		return nil
	case Int8, Uint8:
	case Int16:
		if k.kind == reluN1To1 {
			return UnsupportedTypes("input", in.Type)
		}
	default:
		return UnsupportedTypes("input", in.Type)
	}
	if err := actQuantized("input", in); err != nil {
		return err
	}
	if err := actQuantized("output", out); err != nil {
		return err
	}
	tmin, tmax := actRange(in.Type)
	if k.kind == relu6 && in.Type != Uint8 {
		// TFLM's Relu6Prepare: clamp to the input's quantized 0 and 6; the
		// output's quantization is not consulted.
		six, err := quantizeForRange(in.Scale(), in.ZeroPoint(), 6)
		if err != nil {
			return fmt.Errorf("input %s: %w", in, err)
		}
		k.clampOnly = true
		k.lo, k.hi = in.ZeroPoint(), clampInt32(six, tmin, tmax)
		return nil
	}
	if in.Type == Int16 && (in.ZeroPoint() != 0 || out.ZeroPoint() != 0) {
		return fmt.Errorf("int16 input %s and output %s must have zero point 0, have %d and %d", in, out, in.ZeroPoint(), out.ZeroPoint())
	}
	// CalculateReluOpData (TFLM) and QuantizedReluX (TensorFlow Lite): the
	// float quotient of the scales, then the activation bounds on the output
	// scale.
	k.mult, err = quantize.CheckedMultiplier(float64(in.Scale() / out.Scale()))
	if err != nil {
		return fmt.Errorf("input scale / output scale: %w", err)
	}
	k.inOffset, k.outOffset = in.ZeroPoint(), out.ZeroPoint()
	var actMin, actMax float32
	bounded := true
	switch k.kind {
	case reluPlain:
		actMin, bounded = 0, false
	case relu6:
		actMin, actMax = 0, 6
	case reluN1To1:
		actMin, actMax = -1, 1
	}
	lo, err := quantizeForRange(out.Scale(), out.ZeroPoint(), actMin)
	if err != nil {
		return fmt.Errorf("output %s: %w", out, err)
	}
	k.lo, k.hi = max(tmin, lo), tmax
	if bounded {
		hi, err := quantizeForRange(out.Scale(), out.ZeroPoint(), actMax)
		if err != nil {
			return fmt.Errorf("output %s: %w", out, err)
		}
		k.hi = min(tmax, hi)
	}
	return nil
}

func (k *relu) Eval() error {
	switch k.input.Type {
	case Float32:
		in, out := k.input.Float32s(), k.output.Float32s()
		switch k.kind {
		case reluPlain:
			reluFloat(in, out)
		case relu6:
			reluBoundedFloat(in, out, 0, 6)
		case reluN1To1:
			reluBoundedFloat(in, out, -1, 1)
		}
	case Int8:
		reluEvalTyped(k, k.input.Int8s(), k.output.Int8s())
	case Uint8:
		reluEvalTyped(k, k.input.Uint8s(), k.output.Uint8s())
	case Int16:
		reluEvalTyped(k, k.input.Int16s(), k.output.Int16s())
	}
	return nil
}

func reluEvalTyped[T int8 | uint8 | int16](k *relu, in, out []T) {
	if k.clampOnly {
		reluClampQuantized(in, out, T(k.lo), T(k.hi))
		return
	}
	reluQuantized(in, out, k.inOffset, k.outOffset, k.mult, k.lo, k.hi)
}

// reluQuantized is the reference kernel of the requantizing RELUs (TFLM's
// ReluQuantized, TensorFlow Lite's ReluX): rescale x - inOffset to the
// output scale, add the output zero point, clamp to [lo, hi].
func reluQuantized[T int8 | uint8 | int16](in, out []T, inOffset, outOffset int32, m quantize.Multiplier, lo, hi int32) {
	for i, x := range in {
		v := outOffset + quantize.MultiplyByQuantizedMultiplier(int32(x)-inOffset, m.Significand, m.Shift)
		out[i] = T(clampInt32(v, lo, hi))
	}
}

// reluClampQuantized is TFLM's Relu6Quantized: the input clamped to
// [lower, upper] without requantization.
func reluClampQuantized[T int8 | uint8 | int16](in, out []T, lower, upper T) {
	for i, x := range in {
		switch {
		case x > upper:
			x = upper
		case x < lower:
			x = lower
		}
		out[i] = x
	}
}

// reluFloat is TFLM's ReluFloat: val < 0 ? 0 : val (NaN and -0 pass).
func reluFloat(in, out []float32) {
	for i, x := range in {
		if x < 0 {
			x = 0
		}
		out[i] = x
	}
}

// reluBoundedFloat is val > upper ? upper : val < lower ? lower : val, as
// TFLM's Relu6Float and TensorFlow Lite's reference Relu1.
func reluBoundedFloat(in, out []float32, lower, upper float32) {
	for i, x := range in {
		switch {
		case x > upper:
			x = upper
		case x < lower:
			x = lower
		}
		out[i] = x
	}
}

// ---------------------------------------------------------------------------
// LOGISTIC and TANH

// actSigmoidInputIntegerBits is the Q4.27 format the int8 input is rescaled
// to before gemmlowp's logistic and tanh.
const actSigmoidInputIntegerBits = 4

// actSigmoidInputParams computes, as TFLM's logistic and tanh Prepare do,
// the multiplier that rescales an input difference to Q4.27 (std::frexp of
// scale * 2^27, significand rounded to Q31) and the input radius beyond
// which the result saturates.
func actSigmoidInputParams(in *Tensor) (m quantize.Multiplier, radius int32, err error) {
	q, shift := math.Frexp(float64(in.Scale()) * (1 << (31 - actSigmoidInputIntegerBits)))
	// q < 1 - 2^-24 for a float32 scale, so the significand stays below 2^31.
	m = quantize.Multiplier{Significand: int32(math.Round(q * (1 << 31))), Shift: shift}
	// CalculateInputRadius(4, shift, 31) = floor(15 * 2^27 / 2^shift); it
	// overflows TFLM's int once shift < 0 (scale below 2^-28).
	if shift < 0 {
		return m, 0, fmt.Errorf("input %s has scale %g, too small for the fixed-point sigmoid (below 2^-28)", in, in.Scale())
	}
	r := math.Floor(float64((1<<actSigmoidInputIntegerBits)-1) * math.Ldexp(1, 31-actSigmoidInputIntegerBits-shift))
	return m, int32(r), nil
}

// logisticTransform is the float function TensorFlow Lite's uint8 and int8
// lookup tables are built from: 1 / (1 + std::exp(-x)) in float.
func logisticTransform(x float32) float32 {
	e := float32(math.Exp(float64(-x)))
	return 1 / (1 + e)
}

// tanhTransform is std::tanh on a float.
func tanhTransform(x float32) float32 { return float32(math.Tanh(float64(x))) }

type logistic struct {
	input, output *Tensor

	inZeroPoint, radius int32
	inMult              quantize.Multiplier
	lut                 [256]uint8
	// int8LUT: the optimized int8 kernel, a table of the reference
	// kernel's result for each of the 256 inputs; lutRows and simd: the
	// optimized kernels' SIMD lookup of the table (nil: reference).
	int8LUT bool
	lutRows *[16][32]byte
	simd    simdKind
	par     *parallelRange // large tensors' lookups split across threads
}

func (k *logistic) Prepare(c *PrepareContext) error {
	in, out, err := actPrepareUnary(c)
	if err != nil {
		return err
	}
	k.input, k.output = in, out
	switch in.Type {
	case Float32:
		return nil
	case Int8, Uint8:
	default:
		return UnsupportedTypes("input", in.Type)
	}
	if err := actQuantized("input", in); err != nil {
		return err
	}
	if err := actQuantized("output", out); err != nil {
		return err
	}
	if in.Type == Uint8 {
		// TensorFlow Lite's SigmoidPrepare (reference and generic kernels):
		// the output scale must be 1/256; the table takes any zero point.
		if out.Scale() != 1.0/256 {
			return fmt.Errorf("uint8 output %s must have scale 1/256, has %g", out, out.Scale())
		}
		k.lut = quantize.LUTPopulateUint8(in.Scale(), in.ZeroPoint(), out.Scale(), out.ZeroPoint(), logisticTransform)
		if c.Optimized() {
			k.lutRows, k.simd = lutRows(&k.lut), c.simd()
			k.par = lutParallel(c, in, out, &k.lut, k.lutRows)
		}
		return nil
	}
	// TFLM checks the zero point only. Its arithmetic writes Q0.8 whatever
	// output scale the model declares (converters always declare 1/256);
	// edged computes the same bytes.
	if out.ZeroPoint() != -128 {
		return fmt.Errorf("int8 output %s must have zero point -128, has %d", out, out.ZeroPoint())
	}
	k.inZeroPoint = in.ZeroPoint()
	k.inMult, k.radius, err = actSigmoidInputParams(in)
	if err == nil && c.Optimized() {
		k.lut, k.int8LUT = int8Table(func(in, out []int8) { logisticInt8(in, out, k.inZeroPoint, k.radius, k.inMult) }), true
		k.lutRows, k.simd = lutRows(&k.lut), c.simd()
		k.par = lutParallel(c, in, out, &k.lut, k.lutRows)
	}
	return err
}

func (k *logistic) Eval() error {
	switch k.input.Type {
	case Float32:
		logisticFloat(k.input.Float32s(), k.output.Float32s())
	case Int8:
		if k.int8LUT {
			lutRun(k.par, k.simd, k.input, k.output, &k.lut, k.lutRows)
			break
		}
		logisticInt8(k.input.Int8s(), k.output.Int8s(), k.inZeroPoint, k.radius, k.inMult)
	case Uint8:
		lutRun(k.par, k.simd, k.input, k.output, &k.lut, k.lutRows)
	}
	return nil
}

// logisticInt8 is reference_integer_ops::Logistic: inputs beyond the radius
// saturate; others are rescaled to Q4.27, go through gemmlowp's logistic
// (Q0.31) and are rounded to Q0.8 with zero point -128.
func logisticInt8(in, out []int8, zeroPoint, radius int32, m quantize.Multiplier) {
	for i, x := range in {
		v := int32(x) - zeroPoint
		switch {
		case v <= -radius:
			out[i] = math.MinInt8
		case v >= radius:
			out[i] = math.MaxInt8
		default:
			q4 := quantize.MultiplyByQuantizedMultiplier(v, m.Significand, m.Shift)
			q0 := quantize.Logistic(q4, actSigmoidInputIntegerBits)
			r := quantize.RoundingDivideByPOT(q0, 31-8) - 128
			out[i] = int8(clampInt32(r, math.MinInt8, math.MaxInt8))
		}
	}
}

// logisticFloat is reference_ops::Logistic for float: 1 above 16.619..., exp(x)
// below -9, 1/(1+exp(-x)) between.
func logisticFloat(in, out []float32) {
	const upper, lower = float32(16.619047164916992188), float32(-9)
	for i, x := range in {
		var r float32
		switch {
		case x > upper:
			r = 1
		case x < lower:
			r = float32(math.Exp(float64(x)))
		default:
			r = logisticTransform(x)
		}
		out[i] = r
	}
}

// lookupUint8 maps every element through a 256-entry table.
func lookupUint8(in, out []uint8, lut *[256]uint8) {
	for i, x := range in {
		out[i] = lut[x]
	}
}

type tanh struct {
	input, output *Tensor

	inZeroPoint, radius int32
	inMult              quantize.Multiplier
	lut                 [256]uint8
	// int8LUT: the optimized int8 kernel, a table of the reference
	// kernel's result for each of the 256 inputs; lutRows and simd: the
	// optimized kernels' SIMD lookup of the table (nil: reference).
	int8LUT bool
	lutRows *[16][32]byte
	simd    simdKind
	par     *parallelRange // large tensors' lookups split across threads
}

func (k *tanh) Prepare(c *PrepareContext) error {
	in, out, err := actPrepareUnary(c)
	if err != nil {
		return err
	}
	k.input, k.output = in, out
	switch in.Type {
	case Float32:
		return nil
	case Int8, Uint8:
	default:
		return UnsupportedTypes("input", in.Type)
	}
	if err := actQuantized("input", in); err != nil {
		return err
	}
	if err := actQuantized("output", out); err != nil {
		return err
	}
	if in.Type == Uint8 {
		// TensorFlow Lite's TanhPrepare (reference and generic kernels):
		// a lookup table on the tensors' own quantization.
		k.lut = quantize.LUTPopulateUint8(in.Scale(), in.ZeroPoint(), out.Scale(), out.ZeroPoint(), tanhTransform)
		if c.Optimized() {
			k.lutRows, k.simd = lutRows(&k.lut), c.simd()
			k.par = lutParallel(c, in, out, &k.lut, k.lutRows)
		}
		return nil
	}
	// TFLM does not check the output quantization: its arithmetic writes
	// Q0.7 whatever the model declares (converters declare scale 1/128,
	// zero point 0); edged computes the same bytes.
	k.inZeroPoint = in.ZeroPoint()
	k.inMult, k.radius, err = actSigmoidInputParams(in)
	if err == nil && c.Optimized() {
		k.lut, k.int8LUT = int8Table(func(in, out []int8) { tanhInt8(in, out, k.inZeroPoint, k.radius, k.inMult) }), true
		k.lutRows, k.simd = lutRows(&k.lut), c.simd()
		k.par = lutParallel(c, in, out, &k.lut, k.lutRows)
	}
	return err
}

func (k *tanh) Eval() error {
	switch k.input.Type {
	case Float32:
		tanhFloat(k.input.Float32s(), k.output.Float32s())
	case Int8:
		if k.int8LUT {
			lutRun(k.par, k.simd, k.input, k.output, &k.lut, k.lutRows)
			break
		}
		tanhInt8(k.input.Int8s(), k.output.Int8s(), k.inZeroPoint, k.radius, k.inMult)
	case Uint8:
		lutRun(k.par, k.simd, k.input, k.output, &k.lut, k.lutRows)
	}
	return nil
}

// int8Table tabulates an element-wise int8 function (a reference kernel)
// over its 256 inputs, indexed by the input's byte.
func int8Table(f func(in, out []int8)) (lut [256]uint8) {
	var in, out [256]int8
	for i := range in {
		in[i] = int8(i)
	}
	f(in[:], out[:])
	for i, v := range out {
		lut[i] = uint8(v)
	}
	return lut
}

// tanhInt8 is reference_integer_ops::Tanh: inputs beyond the radius
// saturate; others are rescaled to Q4.27, go through gemmlowp's tanh (Q0.31)
// and are rounded to Q0.7.
func tanhInt8(in, out []int8, zeroPoint, radius int32, m quantize.Multiplier) {
	for i, x := range in {
		v := int32(x) - zeroPoint
		switch {
		case v <= -radius:
			out[i] = math.MinInt8
		case v >= radius:
			out[i] = math.MaxInt8
		default:
			q4 := quantize.MultiplyByQuantizedMultiplier(v, m.Significand, m.Shift)
			q0 := quantize.Tanh(q4, actSigmoidInputIntegerBits)
			r := quantize.RoundingDivideByPOT(q0, 31-7)
			out[i] = int8(clampInt32(r, math.MinInt8, math.MaxInt8))
		}
	}
}

// tanhFloat is reference_ops::Tanh: std::tanh per element.
func tanhFloat(in, out []float32) {
	for i, x := range in {
		out[i] = tanhTransform(x)
	}
}

// ---------------------------------------------------------------------------
// LEAKY_RELU

type leakyRelu struct {
	input, output *Tensor
	alpha         float32

	inZeroPoint, outZeroPoint int32
	// alphaMult may be negative (a negative alpha); identityMult is not.
	alphaMult, identityMult quantize.Multiplier
}

func (k *leakyRelu) Prepare(c *PrepareContext) error {
	in, out, err := actPrepareUnary(c)
	if err != nil {
		return err
	}
	var opts tflite.LeakyReluOptions
	if err := c.Options(tflite.BuiltinOptionsLeakyReluOptions, &opts); err != nil {
		return err
	}
	k.input, k.output, k.alpha = in, out, opts.Alpha()
	switch in.Type {
	case Float32:
		return nil
	case Int8, Uint8, Int16:
	default:
		return UnsupportedTypes("input", in.Type)
	}
	if err := actQuantized("input", in); err != nil {
		return err
	}
	if err := actQuantized("output", out); err != nil {
		return err
	}
	if a := float64(k.alpha); math.IsNaN(a) || math.IsInf(a, 0) {
		return fmt.Errorf("alpha %g is not a finite number", k.alpha)
	}
	k.inZeroPoint, k.outZeroPoint = in.ZeroPoint(), out.ZeroPoint()
	// CalculateOpDataLeakyRelu: both factors in float, then QuantizeMultiplier.
	k.alphaMult = quantize.QuantizeMultiplier(float64(float32(in.Scale()*k.alpha) / out.Scale()))
	if k.alphaMult.Shift > 30 {
		return fmt.Errorf("input scale × alpha / output scale %g is too large", float32(in.Scale()*k.alpha)/out.Scale())
	}
	k.identityMult, err = quantize.CheckedMultiplier(float64(in.Scale() / out.Scale()))
	if err != nil {
		return fmt.Errorf("input scale / output scale: %w", err)
	}
	return nil
}

func (k *leakyRelu) Eval() error {
	switch k.input.Type {
	case Float32:
		leakyReluFloat(k.input.Float32s(), k.output.Float32s(), k.alpha)
	case Int8:
		leakyReluQuantized(k, k.input.Int8s(), k.output.Int8s())
	case Uint8:
		leakyReluQuantized(k, k.input.Uint8s(), k.output.Uint8s())
	case Int16:
		leakyReluQuantized(k, k.input.Int16s(), k.output.Int16s())
	}
	return nil
}

// leakyReluQuantized is reference_ops::QuantizeLeakyRelu: non-negative
// differences rescale by the identity multiplier, negative ones by alpha's
// (applied through its magnitude, the sign restored after).
func leakyReluQuantized[T int8 | uint8 | int16](k *leakyRelu, in, out []T) {
	qmin, qmax := actRange(k.input.Type)
	alpha := k.alphaMult
	negative := alpha.Significand < 0
	if negative {
		alpha.Significand = -alpha.Significand
	}
	id := k.identityMult
	for i, x := range in {
		v := int32(x) - k.inZeroPoint
		o := k.outZeroPoint
		if v >= 0 {
			o += quantize.MultiplyByQuantizedMultiplier(v, id.Significand, id.Shift)
		} else {
			s := quantize.MultiplyByQuantizedMultiplier(v, alpha.Significand, alpha.Shift)
			if negative {
				s = -s
			}
			o += s
		}
		out[i] = T(clampInt32(o, qmin, qmax))
	}
}

// leakyReluFloat is reference_ops::LeakyRelu: val > 0 ? val : val * alpha.
func leakyReluFloat(in, out []float32, alpha float32) {
	for i, x := range in {
		if x > 0 {
			out[i] = x
		} else {
			out[i] = x * alpha
		}
	}
}

// ---------------------------------------------------------------------------
// HARD_SWISH

type hardSwish struct {
	input, output *Tensor

	inZeroPoint, outZeroPoint int16
	// Q15 multipliers with their exponents (HardSwishParams).
	reluishMult, outMult int16
	reluishExp, outExp   int
}

func (k *hardSwish) Prepare(c *PrepareContext) error {
	in, out, err := actPrepareUnary(c)
	if err != nil {
		return err
	}
	k.input, k.output = in, out
	switch in.Type {
	case Float32:
		return nil
	case Int8, Uint8:
	default:
		return UnsupportedTypes("input", in.Type)
	}
	if err := actQuantized("input", in); err != nil {
		return err
	}
	if err := actQuantized("output", out); err != nil {
		return err
	}
	k.inZeroPoint, k.outZeroPoint = int16(in.ZeroPoint()), int16(out.ZeroPoint())
	// HardSwishPrepare, in float as TFLM and TensorFlow Lite compute it.
	hiresInputScale := float32(1.0/128.0) * in.Scale()
	const reluishScale = float32(3.0 / 32768.0)
	outM := quantize.QuantizeMultiplier(float64(hiresInputScale / out.Scale()))
	if outM.Shift > 0 {
		return fmt.Errorf("input scale / output scale %g is too large for HARD_SWISH (must be below 128)", in.Scale()/out.Scale())
	}
	k.outMult, k.outExp = quantize.DownScaleInt32ToInt16Multiplier(outM.Significand), outM.Shift
	reluishM := quantize.QuantizeMultiplier(float64(hiresInputScale / reluishScale))
	if reluishM.Shift > 31 {
		return fmt.Errorf("input scale %g is too large for HARD_SWISH", in.Scale())
	}
	k.reluishMult, k.reluishExp = quantize.DownScaleInt32ToInt16Multiplier(reluishM.Significand), reluishM.Shift
	return nil
}

func (k *hardSwish) Eval() error {
	switch k.input.Type {
	case Float32:
		hardSwishFloat(k.input.Float32s(), k.output.Float32s())
	case Int8:
		hardSwishQuantized(k, k.input.Int8s(), k.output.Int8s())
	case Uint8:
		hardSwishQuantized(k, k.input.Uint8s(), k.output.Uint8s())
	}
	return nil
}

// hardSwishSaturatingLeftShift multiplies by 2^amount, saturating to int16.
func hardSwishSaturatingLeftShift(v int16, amount int) int16 {
	r := int64(v) * (int64(1) << amount)
	return int16(min(max(r, math.MinInt16), math.MaxInt16))
}

// hardSwishDoublingHighMul is SQDMULH: the high half of 2*a*b, truncated
// toward zero, saturating the one overflow case.
func hardSwishDoublingHighMul(a, b int16) int16 {
	if a == b && a == math.MinInt16 {
		return math.MaxInt16
	}
	return int16(int32(a) * int32(b) / (1 << 15))
}

// hardSwishQuantized is reference_ops::HardSwish for int8 and uint8, in
// 16-bit fixed point: x*2^7 on the "hires" input scale, times the output
// multiplier, times a "relu-ish" factor in [0, 1] that is x rescaled from
// [-3, 3], saturated and shifted to [0, 1].
func hardSwishQuantized[T int8 | uint8](k *hardSwish, in, out []T) {
	qmin, qmax := actRange(k.input.Type)
	lo, hi := int16(qmin), int16(qmax)
	for i, x := range in {
		inputValue := int16(int32(x) - int32(k.inZeroPoint))
		hires := int16(int32(inputValue) * (1 << 7))
		preshiftOutput := quantize.SaturatingRoundingDoublingHighMul16(hires, k.outMult)
		reluish := hires
		if k.reluishExp > 0 {
			reluish = hardSwishSaturatingLeftShift(reluish, k.reluishExp-1)
		}
		reluish = quantize.SaturatingRoundingDoublingHighMul16(reluish, k.reluishMult)
		if k.reluishExp > 0 {
			reluish = hardSwishSaturatingLeftShift(reluish, 1)
		}
		if k.reluishExp < 0 {
			reluish = quantize.RoundingDivideByPOT16(reluish, -k.reluishExp)
		}
		reluish = int16((int32(reluish) + (1 << 15)) >> 1)
		v := hardSwishDoublingHighMul(reluish, preshiftOutput)
		v = quantize.RoundingDivideByPOT16(v, -k.outExp)
		v += k.outZeroPoint // int16 arithmetic, wrapping as in C++
		v = min(v, hi)
		v = max(v, lo)
		out[i] = T(v)
	}
}

// hardSwishFloat is reference_ops::HardSwish for float:
// in * std::min(6, std::max(0, in + 3)) / 6.
func hardSwishFloat(in, out []float32) {
	for i, x := range in {
		r := float32(0)
		if t := x + 3; 0 < t {
			r = t
		}
		if !(r < 6) {
			r = 6
		}
		out[i] = float32(x*r) / 6
	}
}

// ---------------------------------------------------------------------------
// PRELU

type prelu struct {
	input, alpha, output *Tensor

	// alphaStrides are alpha's element strides along the output's
	// dimensions (0 where alpha is broadcast); iter is the Eval-time
	// position, allocated once.
	alphaStrides []int
	iter         []int

	inOffset, alphaOffset, outOffset int32
	mult1, mult2                     quantize.Multiplier // x >= 0, x < 0
}

func (k *prelu) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(2, 2, 1); err != nil {
		return err
	}
	k.input, k.alpha, k.output = c.Input(0), c.Input(1), c.Output(0)
	in, alpha, out := k.input, k.alpha, k.output
	if err := sameTypes(in, out); err != nil {
		return err
	}
	switch {
	case in.Type == Float32 && alpha.Type == Float32:
	case in.Type == Int8 && alpha.Type == Int8:
	case in.Type == Uint8 && alpha.Type == Uint8:
	case in.Type == Int16 && alpha.Type == Int8:
	default:
		return UnsupportedTypes("input, alpha", in.Type, alpha.Type)
	}
	if err := k.prepareBroadcast(); err != nil {
		return err
	}
	if err := c.SetOutputShape(0, in.Shape); err != nil {
		return err
	}
	if in.Type == Float32 {
		return nil
	}
	for _, t := range []struct {
		what string
		t    *Tensor
	}{{"input", in}, {"alpha", alpha}, {"output", out}} {
		if err := actQuantized(t.what, t.t); err != nil {
			return err
		}
	}
	k.inOffset, k.alphaOffset, k.outOffset = -in.ZeroPoint(), -alpha.ZeroPoint(), out.ZeroPoint()
	var m1, m2 float64
	if in.Type == Uint8 {
		// TensorFlow Lite's PreluPrepare computes the factors in float.
		m1 = float64(in.Scale() / out.Scale())
		m2 = float64(float32(in.Scale()*alpha.Scale()) / out.Scale())
	} else {
		// TFLM's CalculatePreluParams computes them in double.
		m1 = float64(in.Scale()) / float64(out.Scale())
		m2 = float64(in.Scale()) * float64(alpha.Scale()) / float64(out.Scale())
	}
	var err error
	if k.mult1, err = quantize.CheckedMultiplier(m1); err != nil {
		return fmt.Errorf("input scale / output scale: %w", err)
	}
	if k.mult2, err = quantize.CheckedMultiplier(m2); err != nil {
		return fmt.Errorf("input scale × alpha scale / output scale: %w", err)
	}
	return nil
}

// prepareBroadcast checks that alpha broadcasts to the input's shape (the
// broadcast of the two must be the input's shape, as TensorFlow Lite
// requires) and computes alpha's strides along the input's dimensions.
func (k *prelu) prepareBroadcast() error {
	in, alpha := k.input.Shape, k.alpha.Shape
	if len(alpha) > len(in) {
		return fmt.Errorf("alpha %s has more dimensions than input %s", k.alpha, k.input)
	}
	k.alphaStrides = make([]int, len(in))
	k.iter = make([]int, len(in))
	stride := 1
	for d := len(in) - 1; d >= 0; d-- {
		ad := d - (len(in) - len(alpha))
		if ad < 0 {
			break
		}
		switch alpha[ad] {
		case in[d]:
			k.alphaStrides[d] = stride
		case 1:
			k.alphaStrides[d] = 0
		default:
			return fmt.Errorf("alpha %s does not broadcast to input %s", k.alpha, k.input)
		}
		stride *= alpha[ad]
	}
	return nil
}

func (k *prelu) Eval() error {
	switch k.input.Type {
	case Float32:
		preluFloat(k, k.input.Float32s(), k.alpha.Float32s(), k.output.Float32s())
	case Int8:
		preluQuantized(k, k.input.Int8s(), k.alpha.Int8s(), k.output.Int8s())
	case Uint8:
		preluQuantized(k, k.input.Uint8s(), k.alpha.Uint8s(), k.output.Uint8s())
	case Int16:
		preluQuantized(k, k.input.Int16s(), k.alpha.Int8s(), k.output.Int16s())
	}
	return nil
}

// actStridedNext advances the row-major position iter over shape and
// returns the offset a of a second array, whose strides along shape's
// dimensions are given, moved along with it (0 strides broadcast or reduce).
func actStridedNext(iter, shape, strides []int, a int) int {
	for d := len(shape) - 1; d >= 0; d-- {
		iter[d]++
		a += strides[d]
		if iter[d] < shape[d] {
			return a
		}
		a -= strides[d] * shape[d]
		iter[d] = 0
	}
	return a
}

// preluQuantized is reference_ops::BroadcastPrelu4DSlow: x - zp >= 0 is
// rescaled by input/output scale, otherwise (x - zp)(alpha - alpha_zp) by
// input*alpha/output scale.
func preluQuantized[T int8 | uint8 | int16, U int8 | uint8](k *prelu, in []T, alpha []U, out []T) {
	qmin, qmax := actRange(k.input.Type)
	clear(k.iter)
	shape := k.input.Shape
	a := 0
	for i, x := range in {
		v := k.inOffset + int32(x)
		var o int32
		if v >= 0 {
			o = quantize.MultiplyByQuantizedMultiplier(v, k.mult1.Significand, k.mult1.Shift)
		} else {
			av := k.alphaOffset + int32(alpha[a])
			o = quantize.MultiplyByQuantizedMultiplier(v*av, k.mult2.Significand, k.mult2.Shift)
		}
		out[i] = T(clampInt32(o+k.outOffset, qmin, qmax))
		a = actStridedNext(k.iter, shape, k.alphaStrides, a)
	}
}

// preluFloat is TFLM's BroadcastPrelu4DSlowFloat: x >= 0 ? x : x * alpha.
func preluFloat(k *prelu, in, alpha, out []float32) {
	clear(k.iter)
	shape := k.input.Shape
	a := 0
	for i, x := range in {
		if x >= 0 {
			out[i] = x
		} else {
			out[i] = x * alpha[a]
		}
		a = actStridedNext(k.iter, shape, k.alphaStrides, a)
	}
}
