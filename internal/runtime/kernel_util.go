package runtime

import (
	"fmt"
	"math"

	"github.com/edged/edged/internal/quantize"
	"github.com/edged/edged/internal/runtime/tflite"
)

// Shared Prepare-time helpers for the kernels: activation ranges, the
// requantization multipliers of convolution-like ops and type checks. They
// follow tensorflow/lite/kernels/kernel_util.cc as TFLM builds it.

// typeRange is the value range of an integer tensor type.
func typeRange(t DType) (lo, hi int32, ok bool) {
	switch t {
	case Int8:
		return math.MinInt8, math.MaxInt8, true
	case Uint8:
		return 0, math.MaxUint8, true
	case Int16:
		return math.MinInt16, math.MaxInt16, true
	case Int32:
		return math.MinInt32, math.MaxInt32, true
	}
	return 0, 0, false
}

// quantizeForRange quantizes f the way CalculateActivationRangeQuantized
// does: float division, round half away from zero, then the zero point.
func quantizeForRange(scale float32, zeroPoint int32, f float32) (int32, error) {
	tmp := float32(math.Round(float64(f / scale)))
	if !(tmp >= math.MinInt32 && tmp <= math.MaxInt32) {
		return 0, fmt.Errorf("activation bound %g does not fit the output quantization (scale %g)", f, scale)
	}
	return zeroPoint + int32(tmp), nil
}

// activationRangeQuantized is the clamp range of a quantized output with a
// fused activation.
func activationRangeQuantized(act tflite.ActivationFunctionType, out *Tensor) (lo, hi int32, err error) {
	qmin, qmax, ok := typeRange(out.Type)
	if !ok || out.Type == Int32 {
		return 0, 0, fmt.Errorf("output %s: quantized activation range needs an int8, uint8 or int16 output", out)
	}
	scale, zp := out.Scale(), out.ZeroPoint()
	bound := func(f float32) int32 {
		if err != nil {
			return 0
		}
		var q int32
		q, err = quantizeForRange(scale, zp, f)
		return q
	}
	switch act {
	case tflite.ActivationFunctionTypeNONE:
		return qmin, qmax, nil
	case tflite.ActivationFunctionTypeRELU:
		lo, hi = max(qmin, bound(0)), qmax
	case tflite.ActivationFunctionTypeRELU6:
		lo, hi = max(qmin, bound(0)), min(qmax, bound(6))
	case tflite.ActivationFunctionTypeRELU_N1_TO_1:
		lo, hi = max(qmin, bound(-1)), min(qmax, bound(1))
	default:
		return 0, 0, fmt.Errorf("fused activation %s is not supported on quantized outputs", tflite.EnumNamesActivationFunctionType[act])
	}
	return lo, hi, err
}

// activationRangeFloat is the clamp range of a float output with a fused
// activation.
func activationRangeFloat(act tflite.ActivationFunctionType) (lo, hi float32, err error) {
	switch act {
	case tflite.ActivationFunctionTypeNONE:
		return -math.MaxFloat32, math.MaxFloat32, nil
	case tflite.ActivationFunctionTypeRELU:
		return 0, math.MaxFloat32, nil
	case tflite.ActivationFunctionTypeRELU6:
		return 0, 6, nil
	case tflite.ActivationFunctionTypeRELU_N1_TO_1:
		return -1, 1, nil
	}
	return 0, 0, fmt.Errorf("fused activation %s is not supported", tflite.EnumNamesActivationFunctionType[act])
}

// requireQuantized checks that a tensor of an integer type has affine
// quantization parameters.
func requireQuantized(what string, t *Tensor) error {
	if !t.Quant.Quantized() {
		return fmt.Errorf("%s %s has no quantization parameters", what, t)
	}
	return nil
}

// channelMultipliers computes the per-output-channel requantization of a
// convolution-like op with a per-channel (or per-tensor, broadcast) filter:
// input_scale * filter_scale[c] / output_scale in double precision, as
// PopulateConvolutionQuantizationParams does.
func channelMultipliers(input, filter, output *Tensor, channels int) ([]quantize.Multiplier, error) {
	scales := filter.Quant.Scale
	if len(scales) != 1 && len(scales) != channels {
		return nil, fmt.Errorf("filter %s has %d scales for %d output channels", filter, len(scales), channels)
	}
	out := make([]quantize.Multiplier, channels)
	for c := range out {
		s := scales[0]
		if len(scales) > 1 {
			s = scales[c]
		}
		m, err := quantize.CheckedMultiplier(float64(input.Scale()) * float64(s) / float64(output.Scale()))
		if err != nil {
			return nil, fmt.Errorf("output channel %d: %w", c, err)
		}
		out[c] = m
	}
	return out, nil
}

// tensorMultiplier computes the single requantization multiplier of
// GetQuantizedConvolutionMultipler: the input and filter scales multiplied in
// float32, then divided by the output scale in double. It also applies that
// function's check that the bias scale matches input_scale * filter_scale.
func tensorMultiplier(input, filter, bias, output *Tensor) (quantize.Multiplier, error) {
	inputProductScale := float64(input.Scale() * filter.Scale())
	if bias != nil && bias.Quant.Quantized() {
		diff := math.Abs(float64(input.Scale())*float64(filter.Scale()) - float64(bias.Scale()))
		if diff/float64(output.Scale()) > 0.02 {
			return quantize.Multiplier{}, fmt.Errorf("bias scale %g does not match input scale × filter scale %g", bias.Scale(), inputProductScale)
		}
	}
	return quantize.CheckedMultiplier(inputProductScale / float64(output.Scale()))
}

// checkZeroPointRange checks a zero point fits the tensor's integer type.
func checkZeroPointRange(what string, t *Tensor) error {
	lo, hi, ok := typeRange(t.Type)
	if !ok {
		return nil
	}
	if zp := t.ZeroPoint(); zp < lo || zp > hi {
		return fmt.Errorf("%s %s has zero point %d outside its type's range", what, t, zp)
	}
	return nil
}

// sameTypes checks tensors share one element type.
func sameTypes(ts ...*Tensor) error {
	for _, t := range ts[1:] {
		if t.Type != ts[0].Type {
			return fmt.Errorf("tensor %s is %s, tensor %s is %s; they must match", ts[0], ts[0].Type, t, t.Type)
		}
	}
	return nil
}

// clampInt32 limits v to [lo, hi].
func clampInt32(v, lo, hi int32) int32 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// clampFloat32 limits v to [lo, hi] exactly as TensorFlow Lite's
// ActivationFunctionWithMinMax, std::min(std::max(v, lo), hi), does. Go's
// built-in min and max differ from std::min/std::max on -0 and NaN, which
// would change output bits.
func clampFloat32(v, lo, hi float32) float32 {
	if v < lo {
		v = lo
	}
	if hi < v {
		v = hi
	}
	return v
}
