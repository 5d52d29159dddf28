package quantize

import (
	"math"
	"math/bits"
)

// Helpers of the activation, reduction and elementwise kernels: TensorFlow
// Lite's 8-bit lookup tables (LUTPopulate / PopulateLookupTable), the
// inverse square root of the int8 RSQRT kernel and the 16-bit multipliers of
// HARD_SWISH.

// Float32ToInt32 converts f to int32 truncating toward zero, as
// static_cast<int32_t>(float) compiles on x86-64 (cvttss2si): a NaN or a
// value outside the int32 range gives math.MinInt32, the "integer
// indefinite" value. Go's own conversion leaves that case unspecified.
func Float32ToInt32(f float32) int32 {
	if !(f >= -2147483648 && f < 2147483648) {
		return math.MinInt32
	}
	return int32(f)
}

// LUTPopulateUint8 fills the 256-entry table TensorFlow Lite's uint8 kernels
// look values up in (LUTPopulate<uint8_t>, formerly PopulateLookupTable):
// entry q is the quantized transform of the dequantized q, all in float32
// arithmetic, rounded half away from zero and clamped to [0, 255].
func LUTPopulateUint8(inScale float32, inZeroPoint int32, outScale float32, outZeroPoint int32, transform func(float32) float32) (lut [256]uint8) {
	populateLUT8(0, 255, inScale, inZeroPoint, outScale, outZeroPoint, transform, &lut)
	return lut
}

// LUTPopulateInt8 is LUTPopulateUint8 for int8 tensors: entry uint8(q) holds
// the int8 result for input q, clamped to [-128, 127].
func LUTPopulateInt8(inScale float32, inZeroPoint int32, outScale float32, outZeroPoint int32, transform func(float32) float32) (lut [256]uint8) {
	populateLUT8(-128, 127, inScale, inZeroPoint, outScale, outZeroPoint, transform, &lut)
	return lut
}

func populateLUT8(minval, maxval int32, inScale float32, inZeroPoint int32, outScale float32, outZeroPoint int32, transform func(float32) float32, lut *[256]uint8) {
	inverseScale := 1 / outScale
	for val := minval; val <= maxval; val++ {
		dequantized := inScale * float32(val-inZeroPoint)
		transformed := transform(dequantized)
		rescaled := float32(math.Round(float64(transformed * inverseScale)))
		quantized := Float32ToInt32(rescaled + float32(outZeroPoint))
		q := max(min(maxval, quantized), minval)
		lut[uint8(val)] = uint8(q)
	}
}

// DownScaleInt32ToInt16Multiplier rounds a Q31 multiplier significand to
// Q15, saturating (TensorFlow Lite's DownScaleInt32ToInt16Multiplier). m
// must be non-negative.
func DownScaleInt32ToInt16Multiplier(m int32) int16 {
	const roundingOffset = 1 << 15
	if m >= math.MaxInt32-roundingOffset {
		return math.MaxInt16
	}
	return int16((m + roundingOffset) >> 16)
}

// InvSqrtQuantizedMultiplierExp returns 1/sqrt(x) for an integer x >= 0 as a
// multiplier significand and a shift (TensorFlow Lite's
// GetInvSqrtQuantizedMultiplierExp): five Newton-Raphson steps in Q3.28 on x
// normalized to [2^27, 2^29). The shift is a right shift times reverseShift
// (-1 turns it into the usual left-shift convention). x of 0 or 1 gives
// (MaxInt32, 0).
func InvSqrtQuantizedMultiplierExp(x int32, reverseShift int) (multiplier int32, shift int) {
	if x <= 1 {
		return math.MaxInt32, 0
	}
	shift = 11
	for x >= 1<<29 {
		x /= 4
		shift++
	}
	maxLeftShiftBits := bits.LeadingZeros32(uint32(x)) - 1
	leftShiftBitPairs := maxLeftShiftBits/2 - 1
	shift -= leftShiftBitPairs
	x <<= 2 * leftShiftBitPairs

	const (
		oneQ3        = 1 << 28       // 1.0 in Q3.28
		halfThreeQ3  = 1<<28 + 1<<27 // 1.5 in Q3.28
		halfSqrt2Q0  = 1518500250    // sqrt(2)/2 in Q0.31
		cubeExponent = 9 - 3         // the Q9.22 cube back to Q3.28
		diffExponent = 6 - 3         // Q6.25 products back to Q3.28
	)
	input := x >> 1                                         // Q3.28 value of x / 2^29
	halfInput := SaturatingRoundingMultiplyByPOT(input, -1) // input / 2
	r := int32(oneQ3)
	for range 5 {
		r3 := SaturatingRoundingMultiplyByPOT(
			SaturatingRoundingDoublingHighMul(SaturatingRoundingDoublingHighMul(r, r), r), cubeExponent)
		// Raw Q6 products subtract with int32 wrap-around, as gemmlowp's
		// operator- does.
		d := SaturatingRoundingDoublingHighMul(halfThreeQ3, r) - SaturatingRoundingDoublingHighMul(halfInput, r3)
		r = SaturatingRoundingMultiplyByPOT(d, diffExponent)
	}
	multiplier = SaturatingRoundingDoublingHighMul(r, halfSqrt2Q0)
	if shift < 0 {
		multiplier <<= -shift
		shift = 0
	}
	return multiplier, shift * reverseShift
}
