package quantize

import (
	"fmt"
	"math"
)

// Multiplier is a real factor m represented as Significand * 2^(Shift-31),
// with Significand in [2^30, 2^31) (or 0): TensorFlow Lite's
// quantized_multiplier and shift pair. Shift > 0 shifts left.
type Multiplier struct {
	Significand int32
	Shift       int
}

// QuantizeMultiplier splits m into a Q31 significand and a power of two, as
// TensorFlow Lite's QuantizeMultiplier does (std::frexp, then rounding half
// away from zero; factors below 2^-31 flush to zero).
func QuantizeMultiplier(m float64) Multiplier {
	if m == 0 {
		return Multiplier{}
	}
	q, shift := math.Frexp(m)
	qFixed := int64(math.Round(q * (1 << 31)))
	if qFixed == 1<<31 {
		qFixed /= 2
		shift++
	}
	if shift < -31 {
		shift = 0
		qFixed = 0
	}
	return Multiplier{Significand: int32(qFixed), Shift: shift}
}

// CheckedMultiplier is QuantizeMultiplier for factors that kernels apply to
// int32 accumulators: it rejects NaN, infinities, negative factors and
// factors whose shift TensorFlow Lite's arithmetic cannot express, which only
// a malformed model produces.
func CheckedMultiplier(m float64) (Multiplier, error) {
	if math.IsNaN(m) || math.IsInf(m, 0) || m < 0 {
		return Multiplier{}, fmt.Errorf("requantization factor %g is not a finite non-negative number", m)
	}
	q := QuantizeMultiplier(m)
	if q.Shift > 30 {
		return Multiplier{}, fmt.Errorf("requantization factor %g is too large (shift %d > 30)", m, q.Shift)
	}
	return q, nil
}

// Apply multiplies x by the multiplier with TensorFlow Lite's double rounding
// (MultiplyByQuantizedMultiplier).
func (q Multiplier) Apply(x int32) int32 {
	return MultiplyByQuantizedMultiplier(x, q.Significand, q.Shift)
}

// MultiplyByQuantizedMultiplier computes round(x * m) for m =
// multiplier * 2^(shift-31), rounding twice as TensorFlow Lite does when
// TFLITE_SINGLE_ROUNDING is off: a saturating rounding doubling high multiply,
// then a rounding right shift.
func MultiplyByQuantizedMultiplier(x, multiplier int32, shift int) int32 {
	leftShift, rightShift := 0, 0
	if shift > 0 {
		leftShift = shift
	} else {
		rightShift = -shift
	}
	// x * (1 << leftShift) wraps in C++ on overflow as it does here.
	return RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x*(int32(1)<<leftShift), multiplier), rightShift)
}

// MultiplyByQuantizedMultiplier64 is the int64-input form, used by kernels
// with 64-bit accumulators (int16 activations). It reduces the multiplier to
// 16 bits and rounds once, as TensorFlow Lite does. shift must be below 8
// (TensorFlow Lite's precondition); kernels check it in Prepare.
func MultiplyByQuantizedMultiplier64(x int64, multiplier int32, shift int) int32 {
	reduced := int32(0x7FFF)
	if multiplier < 0x7FFF0000 {
		reduced = (multiplier + (1 << 15)) >> 16
	}
	totalShift := 15 - shift
	x = x*int64(reduced) + (int64(1) << (totalShift - 1))
	return int32(x >> totalShift)
}

// MultiplyByQuantizedMultiplierSmallerThanOneExp is the form with a
// non-positive shift (a right shift after the high multiply).
func MultiplyByQuantizedMultiplierSmallerThanOneExp(x, multiplier int32, leftShift int) int32 {
	return RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x, multiplier), -leftShift)
}

// MultiplyByQuantizedMultiplierGreaterThanOne is the form with a
// non-negative shift (a left shift before the high multiply).
func MultiplyByQuantizedMultiplierGreaterThanOne(x, multiplier int32, leftShift int) int32 {
	return SaturatingRoundingDoublingHighMul(x*(int32(1)<<leftShift), multiplier)
}

// PreprocessSoftmaxScaling computes the multiplier that maps an input
// difference (in input quantization steps) to a Q(inputIntegerBits) value of
// beta*difference*inputScale, capped as TensorFlow Lite caps it.
func PreprocessSoftmaxScaling(beta, inputScale float64, inputIntegerBits int) Multiplier {
	const maxRealMultiplier = float64(1<<31) - 1.0
	real := math.Min(beta*inputScale*float64(int64(1)<<(31-inputIntegerBits)), maxRealMultiplier)
	return QuantizeMultiplier(real)
}

// CalculateInputRadius returns the largest input difference, in input
// steps, that a Q(inputIntegerBits) rescaling with inputLeftShift can hold.
func CalculateInputRadius(inputIntegerBits, inputLeftShift, totalSignedBits int) int {
	maxInputRescaled := 1.0 * float64((int64(1)<<inputIntegerBits)-1) *
		float64(int64(1)<<(totalSignedBits-inputIntegerBits)) /
		float64(int64(1)<<inputLeftShift)
	return int(math.Floor(maxInputRescaled))
}
