package runtime

import (
	"fmt"
	"math"

	"github.com/edged/edged/internal/quantize"
	"github.com/edged/edged/internal/runtime/tflite"
)

// QUANTIZE and DEQUANTIZE.
//
// QUANTIZE from float32 is reference_ops::AffineQuantize: q = round(x /
// scale) + zero_point, the division in float, rounding half away from zero,
// clamped to the output type (int8, uint8, int16). From an integer type it
// requantizes (reference_ops::Requantize, TFLM quantize_common.cc and full
// TensorFlow Lite quantize.cc): q_out = zp_out + M * (q_in - zp_in) with
// M = scale_in / scale_out in double and TensorFlow Lite's rounding,
// clamped. Pairs: int8 -> int8/uint8/int16/int32, uint8 -> int8/uint8,
// int16 -> int8/int16/int32, int32 -> int8/int16.
//
// DEQUANTIZE is reference_ops::Dequantize: x = float(double(scale) * (q -
// zero_point)) for int8, uint8 and int16 inputs; per-channel inputs (as
// full TensorFlow Lite dequantizes constant weights) use float(scale[c]) *
// (q - zp[c]) in float; float16 inputs are widened exactly.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorQUANTIZE, MaxVersion: 3, New: func() Kernel { return &quantizeOp{} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorDEQUANTIZE, MaxVersion: 6, New: func() Kernel { return &dequantizeOp{} }})
}

// --- QUANTIZE ---

type quantizeOp struct {
	input, output *Tensor

	scale        float32 // output scale (float input)
	inZP, outZP  int32
	mult         quantize.Multiplier // requantization
	qmin, qmax   int32
	flipSignBit  bool // requantize int8 <-> uint8 by flipping bit 7
	requantizing bool

	// The optimized 8-bit requantization: a table of the reference's
	// results (nil: reference kernel).
	lut     *[256]uint8
	lutRows *[16][32]byte
	simd    simdKind
	par     *parallelRange
}

// quantizePairs lists the requantizing type pairs.
var quantizePairs = map[[2]DType]bool{
	{Int8, Int8}: true, {Int8, Uint8}: true, {Int8, Int16}: true, {Int8, Int32}: true,
	{Uint8, Int8}: true, {Uint8, Uint8}: true,
	{Int16, Int8}: true, {Int16, Int16}: true, {Int16, Int32}: true,
	{Int32, Int8}: true, {Int32, Int16}: true,
}

func (k *quantizeOp) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(1, 1, 1); err != nil {
		return err
	}
	var opts tflite.QuantizeOptions
	if err := c.Options(tflite.BuiltinOptionsQuantizeOptions, &opts); err != nil {
		return err
	}
	k.input, k.output = c.Input(0), c.Output(0)
	in, out := k.input, k.output
	if err := c.SetOutputShape(0, in.Shape); err != nil {
		return err
	}
	switch {
	case in.Type == Float32 && KnownInputType(out.Type, Int8, Uint8, Int16):
	case quantizePairs[[2]DType{in.Type, out.Type}]:
		k.requantizing = true
	default:
		return UnsupportedTypes("QUANTIZE input, output", in.Type, out.Type)
	}
	if err := checkElemQuant(out); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	if out.Quant.PerChannel() {
		return fmt.Errorf("output %s has %d scales; QUANTIZE supports per-tensor quantization only", out, len(out.Quant.Scale))
	}
	k.scale, k.outZP = out.Scale(), out.ZeroPoint()
	k.qmin, k.qmax, _ = typeRange(out.Type)
	if !k.requantizing {
		return nil
	}
	if err := checkElemQuant(in); err != nil {
		return fmt.Errorf("input: %w", err)
	}
	if in.Quant.PerChannel() {
		return fmt.Errorf("input %s has %d scales; QUANTIZE requantizes per-tensor quantization only", in, len(in.Quant.Scale))
	}
	k.inZP = in.ZeroPoint()
	var err error
	if k.mult, err = elemMultiplier("requantization", float64(in.Scale())/float64(out.Scale())); err != nil {
		return err
	}
	// Requantize's special case: equal scales (the multiplier is exactly
	// 1) between int8 and uint8 with zero points 128 apart.
	sameScale := k.mult.Significand == 1<<30 && k.mult.Shift == 1
	zpDiff := k.inZP - k.outZP
	k.flipSignBit = sameScale && ((in.Type == Int8 && out.Type == Uint8 && zpDiff == -128) ||
		(in.Type == Uint8 && out.Type == Int8 && zpDiff == 128))
	k.prepareFast(c)
	return nil
}

func (k *quantizeOp) Eval() error {
	in, out := k.input, k.output
	if !k.requantizing {
		x := in.Float32s()
		switch out.Type {
		case Int8:
			quantizeAffine(k, x, out.Int8s())
		case Uint8:
			quantizeAffine(k, x, out.Uint8s())
		case Int16:
			quantizeAffine(k, x, out.Int16s())
		}
		return nil
	}
	if k.flipSignBit {
		b, o := in.Uint8s(), out.Uint8s()
		for i, x := range b {
			o[i] = x ^ 0x80
		}
		return nil
	}
	if k.lut != nil {
		lutRun(k.par, k.simd, in, out, k.lut, k.lutRows)
		return nil
	}
	switch in.Type {
	case Int8:
		quantizeRequantizeFrom(k, in.Int8s())
	case Uint8:
		quantizeRequantizeFrom(k, in.Uint8s())
	case Int16:
		quantizeRequantizeFrom(k, in.Int16s())
	case Int32:
		quantizeRequantizeFrom(k, in.Int32s())
	}
	return nil
}

// quantizeAffine is the reference kernel for float input
// (reference_ops::AffineQuantize). C++ converts round(x / scale) to int32
// without a range check; edged saturates (NaN counts as 0), as AArch64
// does, and adds the zero point without wrapping.
func quantizeAffine[T int8 | uint8 | int16](k *quantizeOp, in []float32, out []T) {
	zp, lo, hi := int64(k.outZP), int64(k.qmin), int64(k.qmax)
	for i, x := range in {
		r := math.Round(float64(x / k.scale)) // std::round on the float quotient
		var q int64
		switch {
		case r != r:
			q = 0
		case r <= math.MinInt32:
			q = math.MinInt32
		case r >= math.MaxInt32:
			q = math.MaxInt32
		default:
			q = int64(r)
		}
		out[i] = T(min(max(q+zp, lo), hi))
	}
}

func quantizeRequantizeFrom[I int8 | uint8 | int16 | int32](k *quantizeOp, in []I) {
	switch out := k.output; out.Type {
	case Int8:
		quantizeRequantize(k, in, out.Int8s())
	case Uint8:
		quantizeRequantize(k, in, out.Uint8s())
	case Int16:
		quantizeRequantize(k, in, out.Int16s())
	case Int32:
		quantizeRequantize(k, in, out.Int32s())
	}
}

// quantizeRequantize is the reference kernel for integer input
// (reference_ops::Requantize, general case).
func quantizeRequantize[I, O int8 | uint8 | int16 | int32](k *quantizeOp, in []I, out []O) {
	m := k.mult
	for i, x := range in {
		v := quantize.MultiplyByQuantizedMultiplier(int32(x)-k.inZP, m.Significand, m.Shift) + k.outZP
		out[i] = O(clampInt32(v, k.qmin, k.qmax))
	}
}

// --- DEQUANTIZE ---

type dequantizeOp struct {
	input, output *Tensor

	scale float64
	zp    int32

	// Per-channel: scales and zero points along axis, which splits the
	// input into outer × channels × inner elements.
	perChannel           bool
	scales               []float32
	zps                  []int32
	outer, channels, inn int
}

func (k *dequantizeOp) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(1, 1, 1); err != nil {
		return err
	}
	var opts tflite.DequantizeOptions
	if err := c.Options(tflite.BuiltinOptionsDequantizeOptions, &opts); err != nil {
		return err
	}
	k.input, k.output = c.Input(0), c.Output(0)
	in, out := k.input, k.output
	if !KnownInputType(in.Type, Int8, Uint8, Int16, Float16) || out.Type != Float32 {
		return UnsupportedTypes("DEQUANTIZE input, output", in.Type, out.Type)
	}
	if err := c.SetOutputShape(0, in.Shape); err != nil {
		return err
	}
	if in.Type == Float16 {
		return nil
	}
	if err := requireQuantized("input", in); err != nil {
		return err
	}
	q := in.Quant
	if !q.PerChannel() {
		k.scale, k.zp = float64(in.Scale()), in.ZeroPoint()
		return nil
	}
	axis := q.QuantizedDimension
	if axis < 0 || axis >= len(in.Shape) {
		return fmt.Errorf("input %s is quantized along dimension %d, outside its rank", in, axis)
	}
	k.channels = in.Shape[axis]
	if len(q.Scale) != k.channels || len(q.ZeroPoint) != k.channels {
		return fmt.Errorf("input %s has %d scales and %d zero points for %d channels along dimension %d", in, len(q.Scale), len(q.ZeroPoint), k.channels, axis)
	}
	k.perChannel = true
	k.scales = q.Scale
	k.zps = make([]int32, k.channels)
	for i, z := range q.ZeroPoint {
		k.zps[i] = int32(z)
	}
	k.outer, k.inn = NumElements(in.Shape[:axis]), NumElements(in.Shape[axis+1:])
	return nil
}

func (k *dequantizeOp) Eval() error {
	out := k.output.Float32s()
	switch in := k.input; in.Type {
	case Int8:
		dequantizeValues(k, in.Int8s(), out)
	case Uint8:
		dequantizeValues(k, in.Uint8s(), out)
	case Int16:
		dequantizeValues(k, in.Int16s(), out)
	case Float16:
		for i, h := range in.Uint16s() {
			out[i] = dequantizeHalf(h)
		}
	}
	return nil
}

// dequantizeValues is the reference kernel (reference_ops::Dequantize and
// PerChannelDequantize).
func dequantizeValues[T int8 | uint8 | int16](k *dequantizeOp, in []T, out []float32) {
	if !k.perChannel {
		for i, q := range in {
			out[i] = float32(k.scale * float64(int32(q)-k.zp))
		}
		return
	}
	i := 0
	for range k.outer {
		for c := range k.channels {
			s, zp := k.scales[c], k.zps[c]
			for range k.inn {
				out[i] = s * float32(int32(in[i])-zp)
				i++
			}
		}
	}
}

// dequantizeHalf widens an IEEE half-precision value exactly.
func dequantizeHalf(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch exp {
	case 0: // zero or subnormal: mant × 2^-24
		f := float32(mant) * (1.0 / (1 << 24))
		return math.Float32frombits(math.Float32bits(f) | sign)
	case 0x1f: // infinity or NaN, payload kept
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}
