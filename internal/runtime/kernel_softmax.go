package runtime

import (
	"fmt"
	"math"

	"github.com/edged/edged/internal/quantize"
	"github.com/edged/edged/internal/runtime/tflite"
)

// SOFTMAX over the last dimension: float32, and int8 / uint8 with TFLM's
// fixed-point exp (reference_ops::Softmax with PreprocessSoftmaxScaling:
// differences in Q5.26, sums in Q12.19).

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorSOFTMAX, MaxVersion: 3, New: func() Kernel { return &softmax{} }})
}

const (
	softmaxScaledDiffIntegerBits = 5
	softmaxAccumIntegerBits      = 12
)

type softmax struct {
	input, output *Tensor
	outer, depth  int

	beta       float32
	inputMult  quantize.Multiplier
	diffMin    int32
	outputBits int
	expTable   *[256]int32 // the optimized kernel's exponentials (nil: reference)
	par        *parallelRange
}

func (k *softmax) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(1, 1, 1); err != nil {
		return err
	}
	var opts tflite.SoftmaxOptions
	if err := c.Options(tflite.BuiltinOptionsSoftmaxOptions, &opts); err != nil {
		return err
	}
	k.input, k.output = c.Input(0), c.Output(0)
	in, out := k.input, k.output
	if len(in.Shape) < 1 {
		return fmt.Errorf("input %s must have rank 1 or more", in)
	}
	if err := c.SetOutputShape(0, in.Shape); err != nil {
		return err
	}
	k.depth = in.Dim(-1)
	if k.depth == 0 {
		return fmt.Errorf("input %s has an empty last dimension", in)
	}
	k.outer = in.NumElements() / k.depth
	k.beta = opts.Beta()
	switch {
	case in.Type == Float32 && out.Type == Float32:
		return nil
	case in.Type == Int8 && out.Type == Int8:
		if out.ZeroPoint() != -128 || out.Scale() != 1.0/256 {
			return fmt.Errorf("int8 output %s must have scale 1/256 and zero point -128, has %g and %d", out, out.Scale(), out.ZeroPoint())
		}
	case in.Type == Uint8 && out.Type == Uint8:
		if out.ZeroPoint() != 0 || out.Scale() != 1.0/256 {
			return fmt.Errorf("uint8 output %s must have scale 1/256 and zero point 0, has %g and %d", out, out.Scale(), out.ZeroPoint())
		}
	default:
		return UnsupportedTypes("input, output", in.Type, out.Type)
	}
	if err := requireQuantized("input", in); err != nil {
		return err
	}
	k.outputBits = 8
	k.inputMult = quantize.PreprocessSoftmaxScaling(float64(k.beta), float64(in.Scale()), softmaxScaledDiffIntegerBits)
	if k.inputMult.Shift < 0 || k.inputMult.Shift > 30 {
		return fmt.Errorf("beta %g × input scale %g gives an unusable multiplier", k.beta, in.Scale())
	}
	k.diffMin = -int32(quantize.CalculateInputRadius(softmaxScaledDiffIntegerBits, k.inputMult.Shift, 31))
	k.prepareFast(c)
	return nil
}

func (k *softmax) Eval() error {
	switch k.input.Type {
	case Float32:
		softmaxFloat(k, k.input.Float32s(), k.output.Float32s())
	case Int8:
		if k.par != nil {
			k.par.run()
			break
		}
		if k.expTable != nil {
			softmaxTable(k, k.input.Int8s(), k.output.Int8s(), math.MinInt8, math.MaxInt8, k.outer)
			break
		}
		softmaxQuantized(k, k.input.Int8s(), k.output.Int8s(), math.MinInt8, math.MaxInt8)
	case Uint8:
		if k.par != nil {
			k.par.run()
			break
		}
		if k.expTable != nil {
			softmaxTable(k, k.input.Uint8s(), k.output.Uint8s(), 0, math.MaxUint8, k.outer)
			break
		}
		softmaxQuantized(k, k.input.Uint8s(), k.output.Uint8s(), 0, math.MaxUint8)
	}
	return nil
}

// softmaxQuantized is the reference kernel for int8 and uint8.
func softmaxQuantized[T int8 | uint8](k *softmax, in, out []T, outMin, outMax int32) {
	mult, shift := k.inputMult.Significand, k.inputMult.Shift
	for i := range k.outer {
		row := in[i*k.depth : (i+1)*k.depth]
		orow := out[i*k.depth : (i+1)*k.depth]
		maxIn := row[0]
		for _, x := range row {
			if x > maxIn {
				maxIn = x
			}
		}
		var sumOfExps int32 // Q12.19
		for _, x := range row {
			diff := int32(x) - int32(maxIn)
			if diff >= k.diffMin {
				scaled := quantize.MultiplyByQuantizedMultiplierGreaterThanOne(diff, mult, shift)
				e := quantize.ExpOnNegativeValues(scaled, softmaxScaledDiffIntegerBits)
				sumOfExps += quantize.Rescale(e, 0, softmaxAccumIntegerBits)
			}
		}
		shiftedScale, bitsOverUnit := quantize.GetReciprocal(sumOfExps, softmaxAccumIntegerBits)
		exponent := bitsOverUnit + 31 - k.outputBits
		for j, x := range row {
			diff := int32(x) - int32(maxIn)
			if diff < k.diffMin {
				orow[j] = T(outMin)
				continue
			}
			scaled := quantize.MultiplyByQuantizedMultiplierGreaterThanOne(diff, mult, shift)
			e := quantize.ExpOnNegativeValues(scaled, softmaxScaledDiffIntegerBits)
			unsat := quantize.RoundingDivideByPOT(quantize.SaturatingRoundingDoublingHighMul(shiftedScale, e), exponent)
			orow[j] = T(clampInt32(unsat+outMin, outMin, outMax))
		}
	}
}

// softmaxFloat is the float32 reference kernel.
func softmaxFloat(k *softmax, in, out []float32) {
	for i := range k.outer {
		row := in[i*k.depth : (i+1)*k.depth]
		orow := out[i*k.depth : (i+1)*k.depth]
		maxIn := float32(-math.MaxFloat32)
		for _, x := range row {
			if maxIn < x { // std::max(max, x)
				maxIn = x
			}
		}
		var sum float32
		for j, x := range row {
			e := float32(math.Exp(float64(float32((x - maxIn) * k.beta))))
			orow[j] = e
			sum += e
		}
		for j := range orow {
			orow[j] /= sum
		}
	}
}
