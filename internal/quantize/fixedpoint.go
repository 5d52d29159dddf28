package quantize

import (
	"math"
	"math/bits"
)

// SaturatingRoundingDoublingHighMul returns the high 32 bits of 2*a*b,
// rounded to nearest (ties away from zero), saturating the single overflow
// case a == b == MinInt32. It is gemmlowp's SaturatingRoundingDoublingHighMul
// and the ARM instruction SQRDMULH.
func SaturatingRoundingDoublingHighMul(a, b int32) int32 {
	if a == b && a == math.MinInt32 {
		return math.MaxInt32
	}
	ab := int64(a) * int64(b)
	nudge := int64(1 << 30)
	if ab < 0 {
		nudge = 1 - (1 << 30)
	}
	// Go's division truncates toward zero, as C++'s does.
	return int32((ab + nudge) / (1 << 31))
}

// SaturatingRoundingDoublingHighMul16 is the int16 form of
// SaturatingRoundingDoublingHighMul.
func SaturatingRoundingDoublingHighMul16(a, b int16) int16 {
	if a == b && a == math.MinInt16 {
		return math.MaxInt16
	}
	ab := int32(a) * int32(b)
	nudge := int32(1 << 14)
	if ab < 0 {
		nudge = 1 - (1 << 14)
	}
	return int16((ab + nudge) / (1 << 15))
}

// RoundingDivideByPOT divides x by 2^exponent, rounding to nearest with ties
// away from zero. exponent must be in [0, 31].
func RoundingDivideByPOT(x int32, exponent int) int32 {
	mask := int32((int64(1) << exponent) - 1)
	remainder := x & mask
	threshold := mask >> 1
	if x < 0 {
		threshold++
	}
	result := x >> exponent
	if remainder > threshold {
		result++
	}
	return result
}

// RoundingDivideByPOT16 is the int16 form of RoundingDivideByPOT.
func RoundingDivideByPOT16(x int16, exponent int) int16 {
	mask := int16((int32(1) << exponent) - 1)
	remainder := x & mask
	threshold := mask >> 1
	if x < 0 {
		threshold++
	}
	result := x >> exponent
	if remainder > threshold {
		result++
	}
	return result
}

// SaturatingRoundingMultiplyByPOT multiplies x by 2^exponent: a saturating
// left shift for a positive exponent, a rounding right shift for a negative
// one.
func SaturatingRoundingMultiplyByPOT(x int32, exponent int) int32 {
	switch {
	case exponent == 0:
		return x
	case exponent < 0:
		return RoundingDivideByPOT(x, -exponent)
	}
	threshold := int32((int64(1) << (31 - exponent)) - 1)
	if x > threshold {
		return math.MaxInt32
	}
	if x < -threshold {
		return math.MinInt32
	}
	return x << exponent
}

// SaturatingRoundingMultiplyByPOT16 is the int16 form of
// SaturatingRoundingMultiplyByPOT.
func SaturatingRoundingMultiplyByPOT16(x int16, exponent int) int16 {
	switch {
	case exponent == 0:
		return x
	case exponent < 0:
		return RoundingDivideByPOT16(x, -exponent)
	}
	threshold := int16((int32(1) << (15 - exponent)) - 1)
	if x > threshold {
		return math.MaxInt16
	}
	if x < -threshold {
		return math.MinInt16
	}
	return x << exponent
}

// Rescale converts a Q(srcIntegerBits) fixed-point raw value to
// Q(dstIntegerBits), saturating or rounding as gemmlowp's Rescale does.
func Rescale(x int32, srcIntegerBits, dstIntegerBits int) int32 {
	return SaturatingRoundingMultiplyByPOT(x, srcIntegerBits-dstIntegerBits)
}

// RoundingHalfSum returns (a+b)/2 rounded to nearest, ties away from zero.
func RoundingHalfSum(a, b int32) int32 {
	sum := int64(a) + int64(b)
	sign := int64(1)
	if sum < 0 {
		sign = -1
	}
	return int32((sum + sign) / 2)
}

// SaturatingAdd32 adds with saturation to the int32 range.
func SaturatingAdd32(a, b int32) int32 {
	return clamp64to32(int64(a) + int64(b))
}

// SaturatingSub32 subtracts with saturation to the int32 range.
func SaturatingSub32(a, b int32) int32 {
	return clamp64to32(int64(a) - int64(b))
}

// SaturatingSub16 subtracts with saturation to the int16 range.
func SaturatingSub16(a, b int16) int16 {
	d := int32(a) - int32(b)
	if d > math.MaxInt16 {
		return math.MaxInt16
	}
	if d < math.MinInt16 {
		return math.MinInt16
	}
	return int16(d)
}

func clamp64to32(v int64) int32 {
	if v > math.MaxInt32 {
		return math.MaxInt32
	}
	if v < math.MinInt32 {
		return math.MinInt32
	}
	return int32(v)
}

// CountLeadingZeros32 counts the leading zero bits of x (32 for zero).
func CountLeadingZeros32(x uint32) int { return bits.LeadingZeros32(x) }

// CountLeadingSignBits32 counts the bits after the sign bit that equal it, as
// GCC's __builtin_clrsb does (31 for 0 and -1).
func CountLeadingSignBits32(x int32) int {
	if x < 0 {
		x = ^x
	}
	return bits.LeadingZeros32(uint32(x)) - 1
}

// Q0 constants of gemmlowp's exp and division routines.
const (
	oneQ0               = math.MaxInt32 // FixedPoint<int32, 0>::One()
	expMinusOneEighthQ0 = 1895147668    // exp(-1/8)
	oneThirdQ0          = 715827883     // 1/3
	fortyEightOver17Q2  = 1515870810    // 48/17 in Q2.29
	minus32Over17Q2     = -1010580540   // -32/17 in Q2.29
	oneQ2               = 1 << 29       // 1.0 in Q2.29
)

// expOnIntervalBetweenNegativeOneQuarterAnd0Excl returns exp(a) for a Q0.31
// value a in [-1/4, 0).
func expOnIntervalBetweenNegativeOneQuarterAnd0Excl(a int32) int32 {
	x := a + (1 << 28) // a + 1/8
	x2 := SaturatingRoundingDoublingHighMul(x, x)
	x3 := SaturatingRoundingDoublingHighMul(x2, x)
	x4 := SaturatingRoundingDoublingHighMul(x2, x2)
	x4Over4 := SaturatingRoundingMultiplyByPOT(x4, -2)
	poly := SaturatingRoundingMultiplyByPOT(
		SaturatingRoundingDoublingHighMul(x4Over4+x3, oneThirdQ0)+x2, -1)
	return expMinusOneEighthQ0 + SaturatingRoundingDoublingHighMul(expMinusOneEighthQ0, x+poly)
}

// expBarrel holds exp(-2^k) in Q0.31 for k = -2..4, the factors gemmlowp's
// exp multiplies in for each set bit of the input's integer part.
var expBarrel = [...]struct {
	exponent   int
	multiplier int32
}{
	{-2, 1672461947}, // exp(-1/4)
	{-1, 1302514674}, // exp(-1/2)
	{0, 790015084},   // exp(-1)
	{1, 290630308},   // exp(-2)
	{2, 39332535},    // exp(-4)
	{3, 720401},      // exp(-8)
	{4, 242},         // exp(-16)
}

// ExpOnNegativeValues returns exp(a) in Q0.31 for a Q(integerBits) value
// a <= 0 (gemmlowp's exp_on_negative_values).
func ExpOnNegativeValues(a int32, integerBits int) int32 {
	fractionalBits := 31 - integerBits
	oneQuarter := int32(1) << (fractionalBits - 2)
	mask := oneQuarter - 1
	aModQuarterMinusOneQuarter := (a & mask) - oneQuarter
	result := expOnIntervalBetweenNegativeOneQuarterAnd0Excl(Rescale(aModQuarterMinusOneQuarter, integerBits, 0))
	remainder := aModQuarterMinusOneQuarter - a
	for _, b := range expBarrel {
		if integerBits > b.exponent {
			shift := fractionalBits + b.exponent
			if remainder&(int32(1)<<shift) != 0 {
				result = SaturatingRoundingDoublingHighMul(result, b.multiplier)
			}
		}
	}
	if integerBits > 5 {
		clamp := -(int32(1) << (36 - integerBits))
		if a < clamp {
			result = 0
		}
	}
	if a == 0 {
		result = oneQ0
	}
	return result
}

// newtonRaphsonReciprocal returns 1/(2*halfDenominator) in Q2.29 for a Q0.31
// halfDenominator in [1/2, 1), by gemmlowp's three Newton-Raphson steps.
func newtonRaphsonReciprocal(halfDenominator int32) int32 {
	x := fortyEightOver17Q2 + SaturatingRoundingDoublingHighMul(halfDenominator, minus32Over17Q2)
	for range 3 {
		halfDenominatorTimesX := SaturatingRoundingDoublingHighMul(halfDenominator, x)
		oneMinus := oneQ2 - halfDenominatorTimesX
		x += Rescale(SaturatingRoundingDoublingHighMul(x, oneMinus), 4, 2)
	}
	return x
}

// OneOverOnePlusXForXIn01 returns 1/(1+a) in Q0.31 for a Q0.31 a in [0, 1).
func OneOverOnePlusXForXIn01(a int32) int32 {
	x := newtonRaphsonReciprocal(RoundingHalfSum(a, oneQ0))
	// ExactMulByPot<-1> turns Q2 into Q1 without touching the raw value.
	return Rescale(x, 1, 0)
}

// oneMinusXOverOnePlusXForXIn01 returns (1-a)/(1+a) in Q0.31 for a in (0, 1).
func oneMinusXOverOnePlusXForXIn01(a int32) int32 {
	x := newtonRaphsonReciprocal(RoundingHalfSum(a, oneQ0))
	return Rescale(x-oneQ2, 2, 0)
}

// Logistic returns 1/(1+exp(-a)) in Q0.31 for a Q(integerBits) value a
// (gemmlowp's logistic).
func Logistic(a int32, integerBits int) int32 {
	if a == 0 {
		return 1 << 30
	}
	abs := a
	if a < 0 {
		abs = -a
	}
	positive := OneOverOnePlusXForXIn01(ExpOnNegativeValues(-abs, integerBits))
	if a > 0 {
		return positive
	}
	return oneQ0 - positive
}

// Tanh returns tanh(a) in Q0.31 for a Q(integerBits) value a (gemmlowp's
// tanh).
func Tanh(a int32, integerBits int) int32 {
	if a == 0 {
		return 0
	}
	n := a
	if a > 0 {
		n = -a
	}
	// exp(2n) with n in Q(integerBits) is exp of n read as Q(integerBits+1).
	t := oneMinusXOverOnePlusXForXIn01(ExpOnNegativeValues(n, integerBits+1))
	if a < 0 {
		return -t
	}
	return t
}

// GetReciprocal returns 1/x for a Q(xIntegerDigits) value x > 0 as a Q0.31
// significand and the number of bits it must be shifted right
// (TFLite's GetReciprocal).
func GetReciprocal(x int32, xIntegerDigits int) (reciprocal int32, numBitsOverUnit int) {
	headroomPlusOne := CountLeadingZeros32(uint32(x))
	numBitsOverUnit = xIntegerDigits - headroomPlusOne
	shiftedSumMinusOne := int32((uint32(x) << headroomPlusOne) - (uint32(1) << 31))
	return OneOverOnePlusXForXIn01(shiftedSumMinusOne), numBitsOverUnit
}
