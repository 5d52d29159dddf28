package quantize

// The int16 logistic and tanh of TensorFlow Lite's integer kernels
// (reference_integer_ops::Logistic and ::Tanh for int16, which TFLM's LSTM
// uses for its gates and its cell state): a 256-entry table of the sigmoid
// with linear interpolation between entries.

// sigmoidTableUint16 holds 65536 * sigmoid(i/24) for i = 0..255 (the last
// entry capped at 65535), as TensorFlow Lite tabulates it. Entry i is the
// logistic of an input whose magnitude, in the scaled form the functions
// below compute, is i*512 (logistic) or i*256 (tanh).
//
// The numbers are TensorFlow Lite's sigmoid_table_uint16, from
// tensorflow/lite/kernels/internal/common.h, Copyright The TensorFlow
// Authors, licensed under the Apache License, Version 2.0. They are part of
// the arithmetic's definition: the table cannot be regenerated from a
// formula (rounding 65536*sigmoid(i/24) differs from it in 44 entries), so
// bit-exact results need these exact values.
var sigmoidTableUint16 = [256]uint16{
	32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149,
	40794, 41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369,
	47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169,
	53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
	57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370,
	60565, 60753, 60935, 61110, 61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302,
	62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186, 63279, 63368, 63454, 63536,
	63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
	64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786,
	64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079,
	65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258,
	65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
	65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
	65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474,
	65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498,
	65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
	65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522,
	65523, 65523, 65524, 65524, 65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528,
	65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530, 65530, 65530, 65531, 65531,
	65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
	65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
	65534, 65534, 65534, 65535,
}

// SigmoidTableEntry returns entry i (0..255) of TensorFlow Lite's int16
// sigmoid table, for tests that derive results by hand.
func SigmoidTableEntry(i int) uint16 { return sigmoidTableUint16[i] }

// The input scaling of LogisticInt16 and TanhInt16 follows TensorFlow
// Lite's (multiplier, shift) pair: the scaled input is
// (x*multiplier + round) >> shift, rounding to nearest; a multiplier of 0
// stands for 3 << shift with no right shift (a power-of-two input scale).
// The table is indexed by the scaled input: with multiplier 0 and shift 0,
// x is read as Q3.12.

// Int16ActivationParamsValid reports whether a (multiplier, shift) pair is
// one LogisticInt16 and TanhInt16 can apply without int32 overflow.
func Int16ActivationParamsValid(multiplier int32, shift int) bool {
	if shift < 0 || shift > 31 || multiplier < 0 {
		return false
	}
	m, s := int64(multiplier), shift
	if multiplier == 0 {
		if shift > 28 {
			return false
		}
		m, s = 3<<shift, 0
	}
	var round int64
	if s > 0 {
		round = int64(1) << (s - 1)
	}
	// int16 * multiplier + round must fit an int32 (and stay clear of
	// MinInt32, whose abs() is undefined in C).
	return m*32768+round <= 1<<31-1
}

// LogisticInt16 computes out[i] = 1/(1+exp(-x)) in Q0.15 for int16 inputs,
// as reference_integer_ops::Logistic does for int16: the magnitude of the
// scaled input indexes the table in steps of 512 and the remainder
// interpolates linearly; negative inputs use sigmoid(-x) = 1 - sigmoid(x).
// The parameters must pass Int16ActivationParamsValid. in and out may be the
// same slice.
func LogisticInt16(in, out []int16, multiplier int32, shift int) {
	if multiplier == 0 {
		multiplier, shift = 3<<shift, 0
	}
	var round int32
	if shift > 0 {
		round = 1 << (shift - 1)
	}
	out = out[:len(in)]
	for i, v := range in {
		x := (int32(v)*multiplier + round) >> shift
		abs := uint32(x)
		if x < 0 {
			abs = uint32(-x)
		}
		var r uint32
		if uh := abs >> 9; uh >= 255 {
			r = 0x7FFF << 10
		} else {
			ua, ub := uint32(sigmoidTableUint16[uh]), uint32(sigmoidTableUint16[uh+1])
			r = ua<<9 + (abs&0x1FF)*(ub-ua)
		}
		if x >= 0 {
			r += 1 << 9
		} else {
			r = 1<<(16+9) - r + 1<<9 - 1
		}
		out[i] = int16(r >> 10)
	}
}

// TanhInt16 computes out[i] = tanh(x) in Q0.15 for int16 inputs, as
// reference_integer_ops::Tanh does for int16, through tanh(x) =
// 2*sigmoid(2x) - 1 on the same table (steps of 256). The parameters must
// pass Int16ActivationParamsValid. in and out may be the same slice.
func TanhInt16(in, out []int16, multiplier int32, shift int) {
	if multiplier == 0 {
		multiplier, shift = 3<<shift, 0
	}
	var round int32
	if shift > 0 {
		round = 1 << (shift - 1)
	}
	out = out[:len(in)]
	for i, v := range in {
		x := (int32(v)*multiplier + round) >> shift
		abs := uint32(x)
		if x < 0 {
			abs = uint32(-x)
		}
		var r int32
		if uh := abs >> 8; uh >= 255 {
			r = 0xFFFF << 8
		} else {
			ua, ub := uint32(sigmoidTableUint16[uh]), uint32(sigmoidTableUint16[uh+1])
			r = int32(ua<<8 + (abs&0xFF)*(ub-ua))
		}
		if x >= 0 {
			r = r - 1<<(14+9) + 1<<(9-2)
		} else {
			r = -r + 1<<(14+9) + 1<<(9-2) - 1
		}
		out[i] = int16(r >> (9 - 1))
	}
}
