package quantize

import (
	"errors"
	"fmt"
	"math"
)

// Requantizing float weights, biases and activations into TensorFlow Lite's
// int8 scheme, as on-device fine-tuning writes a new model: per-channel
// symmetric int8 weights (narrow range [-127, 127], zero point 0), int32
// biases at input_scale × weight_scale with zero point 0, and asymmetric
// activations whose scale and zero point are calibrated from observed
// ranges (TensorFlow Lite's ChooseQuantizationParams).

// Params are one tensor's affine quantization: real = Scale × (q − ZeroPoint).
type Params struct {
	Scale     float32
	ZeroPoint int32
}

// ChooseParams picks the scale and zero point that map [rmin, rmax] onto
// [qmin, qmax], as TensorFlow Lite's ChooseQuantizationParams does: the range
// is first widened to contain 0 (which must be exactly representable), the
// scale is (rmax − rmin) / (qmax − qmin) and the zero point is computed from
// whichever end gives the smaller rounding error, then rounded and clamped.
// A range that is a single point (0) gets scale 1 and zero point 0, so that
// kernels never see a zero scale.
func ChooseParams(rmin, rmax float64, qmin, qmax int32) (Params, error) {
	if math.IsNaN(rmin) || math.IsNaN(rmax) || math.IsInf(rmin, 0) || math.IsInf(rmax, 0) {
		return Params{}, fmt.Errorf("range [%g, %g] is not finite", rmin, rmax)
	}
	if qmin >= qmax {
		return Params{}, fmt.Errorf("integer range [%d, %d] is empty", qmin, qmax)
	}
	if rmin > rmax {
		rmin, rmax = rmax, rmin
	}
	rmin, rmax = math.Min(rmin, 0), math.Max(rmax, 0)
	if rmin == rmax {
		return Params{Scale: 1, ZeroPoint: 0}, nil
	}
	qminF, qmaxF := float64(qmin), float64(qmax)
	scale := (rmax - rmin) / (qmaxF - qminF)
	zpFromMin := qminF - rmin/scale
	zpFromMax := qmaxF - rmax/scale
	zp := zpFromMax
	if math.Abs(qminF)+math.Abs(rmin/scale) < math.Abs(qmaxF)+math.Abs(rmax/scale) {
		zp = zpFromMin
	}
	var nudged int32
	switch {
	case zp < qminF:
		nudged = qmin
	case zp > qmaxF:
		nudged = qmax
	default:
		nudged = int32(math.Round(zp))
	}
	s := float32(scale)
	if s == 0 || math.IsInf(float64(s), 0) {
		return Params{}, fmt.Errorf("range [%g, %g] gives a scale float32 cannot hold", rmin, rmax)
	}
	return Params{Scale: s, ZeroPoint: nudged}, nil
}

// ChooseParamsInt8 is ChooseParams for int8 activations ([-128, 127]).
func ChooseParamsInt8(rmin, rmax float64) (Params, error) {
	return ChooseParams(rmin, rmax, -128, 127)
}

// QuantizeValue maps a real value to the integer grid of p, rounding half
// away from zero (std::round, as TensorFlow Lite's quantize does) and
// clamping to [qmin, qmax].
func QuantizeValue(x float32, p Params, qmin, qmax int32) int32 {
	v := math.Round(float64(x)/float64(p.Scale)) + float64(p.ZeroPoint)
	switch {
	case math.IsNaN(v):
		return max(qmin, min(qmax, p.ZeroPoint))
	case v < float64(qmin):
		return qmin
	case v > float64(qmax):
		return qmax
	}
	return int32(v)
}

// DequantizeInt8 writes Scale × (q − ZeroPoint) for every q into dst
// (grown as needed) and returns it.
func DequantizeInt8(q []int8, p Params, dst []float32) []float32 {
	dst = growFloat32(dst, len(q))
	for i, v := range q {
		dst[i] = p.Scale * float32(int32(v)-p.ZeroPoint)
	}
	return dst
}

func growFloat32(dst []float32, n int) []float32 {
	if cap(dst) < n {
		return make([]float32, n)
	}
	return dst[:n]
}

// SymmetricWeights are int8 weights quantized per channel: Values has the
// float tensor's shape, channel c of Axis has scale Scales[c] and zero
// point 0.
type SymmetricWeights struct {
	Values []int8
	Scales []float32
	Axis   int
}

// MaxSymmetricInt8 is the largest magnitude of symmetric int8 weights:
// TensorFlow Lite's narrow range [-127, 127].
const MaxSymmetricInt8 = 127

// QuantizeSymmetricPerChannel quantizes float weights of the given shape
// along axis as TensorFlow Lite's converter does for int8 convolution and
// fully connected filters: scale[c] = max |w| over channel c / 127, q =
// round(w / scale[c]) clamped to [-127, 127]. A channel of zeros gets scale
// 1 (any positive scale represents it exactly). The quantization uses the
// float32 scale that the model will store, so that dequantizing reproduces
// what a runtime sees.
func QuantizeSymmetricPerChannel(w []float32, shape []int, axis int) (SymmetricWeights, error) {
	if axis < 0 || axis >= len(shape) {
		return SymmetricWeights{}, fmt.Errorf("axis %d out of range for rank %d", axis, len(shape))
	}
	n := 1
	for _, d := range shape {
		if d <= 0 {
			return SymmetricWeights{}, fmt.Errorf("shape %v has a non-positive dimension", shape)
		}
		n *= d
	}
	if n != len(w) {
		return SymmetricWeights{}, fmt.Errorf("%d weights for shape %v (%d elements)", len(w), shape, n)
	}
	channels := shape[axis]
	inner := 1
	for _, d := range shape[axis+1:] {
		inner *= d
	}
	channelOf := func(i int) int { return (i / inner) % channels }
	maxAbs := make([]float64, channels)
	for i, v := range w {
		a := math.Abs(float64(v))
		if math.IsNaN(a) || math.IsInf(a, 0) {
			return SymmetricWeights{}, fmt.Errorf("weight %d is %g", i, v)
		}
		c := channelOf(i)
		maxAbs[c] = math.Max(maxAbs[c], a)
	}
	out := SymmetricWeights{Values: make([]int8, len(w)), Scales: make([]float32, channels), Axis: axis}
	for c, m := range maxAbs {
		s := float32(m / MaxSymmetricInt8)
		if s == 0 {
			s = 1
		}
		out.Scales[c] = s
	}
	for i, v := range w {
		p := Params{Scale: out.Scales[channelOf(i)]}
		out.Values[i] = int8(QuantizeValue(v, p, -MaxSymmetricInt8, MaxSymmetricInt8))
	}
	return out, nil
}

// Dequantize returns the real values of the weights (shape as quantized).
func (w SymmetricWeights) Dequantize(shape []int) []float32 {
	channels := shape[w.Axis]
	inner := 1
	for _, d := range shape[w.Axis+1:] {
		inner *= d
	}
	out := make([]float32, len(w.Values))
	for i, q := range w.Values {
		out[i] = w.Scales[(i/inner)%channels] * float32(q)
	}
	return out
}

// ErrBiasOverflow reports a bias too large for int32 at its scale.
var ErrBiasOverflow = errors.New("bias does not fit int32 at input_scale × weight_scale")

// QuantizeBias quantizes a per-output-channel bias for an int8 layer as
// TensorFlow Lite does: scale[c] = input_scale × weight_scale[c] (in
// float32), q = round(b / scale[c]), zero point 0. weightScales has one
// scale (per tensor) or one per channel. A bias outside the int32 range at
// its scale is an error naming the channel.
func QuantizeBias(b []float32, inputScale float32, weightScales []float32) (values []int32, scales []float32, err error) {
	if len(weightScales) != 1 && len(weightScales) != len(b) {
		return nil, nil, fmt.Errorf("%d weight scales for %d bias values", len(weightScales), len(b))
	}
	values = make([]int32, len(b))
	scales = make([]float32, len(b))
	for c, v := range b {
		ws := weightScales[0]
		if len(weightScales) > 1 {
			ws = weightScales[c]
		}
		s := inputScale * ws
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return nil, nil, fmt.Errorf("channel %d: bias scale %g (input %g × weight %g) is not positive", c, s, inputScale, ws)
		}
		scales[c] = s
		q := math.Round(float64(v) / float64(s))
		if math.IsNaN(q) || q < math.MinInt32 || q > math.MaxInt32 {
			return nil, nil, fmt.Errorf("channel %d: %w (%g / %g)", c, ErrBiasOverflow, v, s)
		}
		values[c] = int32(q)
	}
	return values, scales, nil
}

// RangeObserver tracks the minimum and maximum of observed values, to
// calibrate an activation's quantization.
type RangeObserver struct {
	Min, Max float64
	N        int64
}

// Observe adds values to the range.
func (r *RangeObserver) Observe(v ...float32) {
	for _, x := range v {
		f := float64(x)
		if r.N == 0 || f < r.Min {
			r.Min = f
		}
		if r.N == 0 || f > r.Max {
			r.Max = f
		}
		r.N++
	}
}

// ParamsInt8 chooses int8 parameters for the observed range (see
// ChooseParams).
func (r *RangeObserver) ParamsInt8() (Params, error) {
	if r.N == 0 {
		return Params{}, errors.New("no values observed")
	}
	return ChooseParamsInt8(r.Min, r.Max)
}
