package quantize

import (
	"math"
	"testing"
)

func TestSigmoidTable(t *testing.T) {
	if SigmoidTableEntry(0) != 32768 || SigmoidTableEntry(255) != 65535 {
		t.Fatalf("table ends %d, %d; want 32768 (sigmoid 0) and 65535", SigmoidTableEntry(0), SigmoidTableEntry(255))
	}
	for i := range 256 {
		want := 65536 / (1 + math.Exp(-float64(i)/24))
		if d := math.Abs(float64(SigmoidTableEntry(i)) - want); d > 1.2 {
			t.Errorf("entry %d = %d, 65536·sigmoid(%d/24) = %.2f", i, SigmoidTableEntry(i), i, want)
		}
		if i > 0 && SigmoidTableEntry(i) < SigmoidTableEntry(i-1) {
			t.Errorf("entry %d decreases", i)
		}
	}
}

// all16 is every int16 value.
func all16() []int16 {
	v := make([]int16, 65536)
	for i := range v {
		v[i] = int16(i - 32768)
	}
	return v
}

// Values worked out by hand from the table, T[k] being entry k.
func TestLogisticTanhInt16Exact(t *testing.T) {
	cases := []struct {
		name     string
		tanh     bool
		mult     int32
		shift    int
		in, want int16
	}{
		{"logistic(0)", false, 0, 0, 0, 16384},
		// Q3.12 input 2048 = 0.5: 3x = 6144 = 12·512, (T[12]·512 + 512) >> 10
		// with T[12] = 40794.
		{"logistic(0.5)", false, 0, 0, 2048, 20397},
		{"logistic(-0.5)", false, 0, 0, -2048, 32768 - 20397},
		// 3x = 300 interpolates between T[0] = 32768 and T[1] = 33451:
		// (32768·512 + 300·683 + 512) >> 10 = 16584.
		{"logistic_interpolated", false, 0, 0, 100, 16584},
		{"logistic_interpolated_negative", false, 0, 0, -100, 32768 - 16584},
		// Multiplier 0, shift 2 scales by 12: |x|·12 >> 9 ≥ 255 saturates.
		{"logistic_saturated", false, 0, 2, 32767, 32767},
		{"logistic_saturated_negative", false, 0, 2, -32768, 1},
		{"tanh(0)", true, 0, 0, 0, 0},
		// 3x = 12288 = 48·256: (T[48]·256 - 2^23 + 128) >> 8, T[48] = 57724.
		{"tanh(1)", true, 0, 0, 4096, 24956},
		{"tanh(-1)", true, 0, 0, -4096, -24956},
		// 3x = 300 = 256 + 44: (T[1]·256 + 44·(T[2]-T[1]) - 2^23 + 128) >> 8.
		{"tanh_interpolated", true, 0, 0, 100, 800},
		{"tanh_saturated", true, 0, 4, 32767, 32767},
		{"tanh_saturated_negative", true, 0, 4, -32768, -32767},
		// Multiplier 3 with a right shift of 2 (a cell state of scale
		// 2^-14): (3·5 + 2) >> 2 = 4, (T[0]·256 + 4·683 - 2^23 + 128) >> 8.
		{"tanh_right_shift", true, 3, 2, 5, 11},
		{"tanh_right_shift_negative", true, 3, 2, -5, -11},
	}
	for _, c := range cases {
		out := []int16{0}
		if c.tanh {
			TanhInt16([]int16{c.in}, out, c.mult, c.shift)
		} else {
			LogisticInt16([]int16{c.in}, out, c.mult, c.shift)
		}
		if out[0] != c.want {
			t.Errorf("%s: f(%d) = %d, want %d", c.name, c.in, out[0], c.want)
		}
	}
}

// With the default Q3.12 input, logistic(-x) = 1 - logistic(x) and
// tanh(-x) = -tanh(x) hold exactly: the negative branch's rounding
// constants are chosen for it.
func TestLogisticTanhInt16Symmetry(t *testing.T) {
	in := all16()[1:] // -32767..32767
	neg := make([]int16, len(in))
	for i, x := range in {
		neg[i] = -x
	}
	a, b := make([]int16, len(in)), make([]int16, len(in))
	LogisticInt16(in, a, 0, 0)
	LogisticInt16(neg, b, 0, 0)
	for i := range in {
		if int32(a[i])+int32(b[i]) != 32768 {
			t.Fatalf("logistic(%d) + logistic(%d) = %d + %d, want 32768", in[i], neg[i], a[i], b[i])
		}
	}
	TanhInt16(in, a, 0, 0)
	TanhInt16(neg, b, 0, 0)
	for i := range in {
		if a[i] != -b[i] {
			t.Fatalf("tanh(%d) = %d, tanh(%d) = %d", in[i], a[i], neg[i], b[i])
		}
	}
}

// TestLogisticTanhInt16Accuracy bounds the error against the true functions
// over every int16 input, for the input scalings TFLM's LSTM uses (gates:
// Q3.12; cell states of scale 2^-11, 2^-14 and 2^-8). The LSTM tests'
// tolerances build on these bounds (3.1e-5 and 4.5e-5 for Q3.12 and 2^-11).
func TestLogisticTanhInt16Accuracy(t *testing.T) {
	in := all16()
	out := make([]int16, len(in))
	for _, c := range []struct {
		name                 string
		mult                 int32
		shift                int
		scale                float64 // input units per 1.0
		logisticMax, tanhMax float64
	}{
		{"Q3.12", 0, 0, 4096, 3.1e-5, 4.6e-5},
		{"cell_2^-11", 0, 1, 2048, 3.1e-5, 4.6e-5},
		{"cell_2^-8", 0, 4, 256, 3.1e-5, 4.6e-5},
		// The right shift rounds the input to a coarser grid.
		{"cell_2^-14", 3, 2, 16384, 3.9e-5, 7.5e-5},
	} {
		LogisticInt16(in, out, c.mult, c.shift)
		var worst float64
		for i, x := range in {
			want := 1 / (1 + math.Exp(-float64(x)/c.scale))
			worst = max(worst, math.Abs(float64(out[i])/32768-want))
		}
		if worst > c.logisticMax {
			t.Errorf("%s: logistic error %.3g > %.3g", c.name, worst, c.logisticMax)
		}
		TanhInt16(in, out, c.mult, c.shift)
		worst = 0
		for i, x := range in {
			worst = max(worst, math.Abs(float64(out[i])/32768-math.Tanh(float64(x)/c.scale)))
		}
		if worst > c.tanhMax {
			t.Errorf("%s: tanh error %.3g > %.3g", c.name, worst, c.tanhMax)
		}
	}
}

func TestLogisticTanhInt16InPlace(t *testing.T) {
	in := []int16{-30000, -4096, -1, 0, 1, 4096, 30000}
	want := make([]int16, len(in))
	LogisticInt16(in, want, 0, 0)
	got := append([]int16(nil), in...)
	LogisticInt16(got, got, 0, 0)
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("in place %v, separate %v", got, want)
		}
	}
}

func TestInt16ActivationParamsValid(t *testing.T) {
	for _, c := range []struct {
		mult  int32
		shift int
		ok    bool
	}{
		{0, 0, true},
		{0, 14, true},  // 3·2^14·32768 < 2^31
		{0, 15, false}, // 3·2^15·32768 overflows
		{3, 31, true},
		{3, 32, false},
		{65535, 0, true}, // 65535·32768 = 2^31 - 32768
		{65536, 0, false},
		{65535, 1, true}, // plus the rounding term 1: still 2^31 - 32767
		{-1, 0, false},
		{0, -1, false},
	} {
		if got := Int16ActivationParamsValid(c.mult, c.shift); got != c.ok {
			t.Errorf("Int16ActivationParamsValid(%d, %d) = %v, want %v", c.mult, c.shift, got, c.ok)
		}
	}
}
