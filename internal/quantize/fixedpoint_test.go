package quantize

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestSaturatingRoundingDoublingHighMul(t *testing.T) {
	cases := []struct{ a, b, want int32 }{
		{1 << 30, 1 << 30, 1 << 29},
		{math.MinInt32, math.MinInt32, math.MaxInt32},
		{math.MaxInt32, math.MaxInt32, math.MaxInt32 - 1},
		// gemmlowp adds a nudge and truncates: positive ties round up,
		// negative ties round toward zero.
		{-1, 1 << 30, 0},
		{3, 1 << 30, 2},
		{-3, 1 << 30, -1},
		{math.MinInt32, 1 << 30, -(1 << 30)},
	}
	for _, c := range cases {
		if got := SaturatingRoundingDoublingHighMul(c.a, c.b); got != c.want {
			t.Errorf("SRDHM(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestRoundingDivideByPOT(t *testing.T) {
	cases := []struct {
		x    int32
		e    int
		want int32
	}{
		{5, 1, 3}, {-5, 1, -3}, {4, 1, 2}, {-4, 1, -2}, {6, 2, 2}, {-6, 2, -2}, {7, 0, 7},
		{math.MaxInt32, 31, 1}, {math.MinInt32, 31, -1}, {-(1 << 30), 31, -1}, {(1 << 30) - 1, 31, 0},
	}
	for _, c := range cases {
		if got := RoundingDivideByPOT(c.x, c.e); got != c.want {
			t.Errorf("RoundingDivideByPOT(%d, %d) = %d, want %d", c.x, c.e, got, c.want)
		}
	}
	// Against exact rational rounding, ties away from zero.
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		x := int32(r.Uint32())
		e := r.IntN(32)
		exact := float64(x) / math.Exp2(float64(e))
		want := int32(math.Round(exact))
		if got := RoundingDivideByPOT(x, e); got != want {
			t.Fatalf("RoundingDivideByPOT(%d, %d) = %d, want %d", x, e, got, want)
		}
	}
}

func TestQuantizeMultiplier(t *testing.T) {
	cases := []struct {
		m    float64
		want Multiplier
	}{
		{0, Multiplier{}},
		{0.5, Multiplier{1 << 30, 0}},
		{1, Multiplier{1 << 30, 1}},
		{0.75, Multiplier{1610612736, 0}},
		{1e-12, Multiplier{}},                          // below 2^-31: flushed
		{math.Nextafter(1, 0), Multiplier{1 << 30, 1}}, // rounds up to 2^31, renormalized
	}
	for _, c := range cases {
		if got := QuantizeMultiplier(c.m); got != c.want {
			t.Errorf("QuantizeMultiplier(%g) = %+v, want %+v", c.m, got, c.want)
		}
	}
	if _, err := CheckedMultiplier(math.NaN()); err == nil {
		t.Error("CheckedMultiplier(NaN) gave no error")
	}
	if _, err := CheckedMultiplier(1e12); err == nil {
		t.Error("CheckedMultiplier(1e12) gave no error")
	}
}

func TestMultiplyByQuantizedMultiplierIsCloseToExact(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		m := math.Exp2(-20 + 22*r.Float64())
		q := QuantizeMultiplier(m)
		x := int32(r.IntN(1<<20) - 1<<19)
		got := q.Apply(x)
		exact := float64(x) * float64(q.Significand) * math.Exp2(float64(q.Shift-31))
		if math.Abs(float64(got)-exact) > 1.0 {
			t.Fatalf("MultiplyByQuantizedMultiplier(%d, %+v) = %d, exact %g", x, q, got, exact)
		}
	}
}

func TestMultiplyByQuantizedMultiplier64(t *testing.T) {
	q := QuantizeMultiplier(0.25)
	if got := MultiplyByQuantizedMultiplier64(1000, q.Significand, q.Shift); got != 250 {
		t.Errorf("got %d, want 250", got)
	}
	if got := MultiplyByQuantizedMultiplier64(-1002, q.Significand, q.Shift); got != -250 {
		t.Errorf("got %d, want -250 (-250.5 rounds up with a single half-add)", got)
	}
}

func q(x float64, integerBits int) int32 {
	return int32(math.Round(x * math.Exp2(float64(31-integerBits))))
}

func TestExpOnNegativeValues(t *testing.T) {
	if got := ExpOnNegativeValues(0, 5); got != math.MaxInt32 {
		t.Errorf("exp(0) = %d, want MaxInt32", got)
	}
	for _, bits := range []int{0, 3, 4, 5, 6, 10} {
		limit := math.Min(math.Exp2(float64(bits)), 40)
		for x := -limit; x < 0; x += limit / 997 {
			raw := q(x, bits)
			got := float64(ExpOnNegativeValues(raw, bits)) / (1 << 31)
			want := math.Exp(float64(raw) / math.Exp2(float64(31-bits)))
			if math.Abs(got-want) > 2e-6 {
				t.Fatalf("exp(%g) in Q%d = %g, want %g", x, bits, got, want)
			}
		}
	}
	// gemmlowp clamps below -32 for wide inputs.
	if got := ExpOnNegativeValues(q(-33, 6), 6); got != 0 {
		t.Errorf("exp(-33) = %d, want 0", got)
	}
}

func TestLogisticAndTanh(t *testing.T) {
	for x := -15.9; x < 16; x += 0.013 {
		raw := q(x, 4)
		xr := float64(raw) / (1 << 27)
		gotL := float64(Logistic(raw, 4)) / (1 << 31)
		if want := 1 / (1 + math.Exp(-xr)); math.Abs(gotL-want) > 2e-6 {
			t.Fatalf("logistic(%g) = %g, want %g", xr, gotL, want)
		}
		gotT := float64(Tanh(raw, 4)) / (1 << 31)
		if want := math.Tanh(xr); math.Abs(gotT-want) > 4e-6 {
			t.Fatalf("tanh(%g) = %g, want %g", xr, gotT, want)
		}
	}
	if Logistic(0, 4) != 1<<30 || Tanh(0, 4) != 0 {
		t.Error("logistic(0) or tanh(0) wrong")
	}
}

func TestGetReciprocal(t *testing.T) {
	for _, x := range []float64{1, 1.25, 2, 3.7, 10, 100, 1000.5} {
		raw := q(x, 12)
		rec, over := GetReciprocal(raw, 12)
		got := float64(rec) / (1 << 31) / math.Exp2(float64(over))
		if math.Abs(got-1/x)/(1/x) > 1e-6 {
			t.Errorf("1/%g = %g (raw %d, shift %d)", x, got, rec, over)
		}
	}
}

func TestSoftmaxScaling(t *testing.T) {
	m := PreprocessSoftmaxScaling(1, 0.1, 5)
	real := float64(m.Significand) * math.Exp2(float64(m.Shift-31))
	if want := 0.1 * (1 << 26); math.Abs(real-want)/want > 1e-9 {
		t.Errorf("softmax multiplier %g, want %g", real, want)
	}
	if r := CalculateInputRadius(5, m.Shift, 31); r <= 0 {
		t.Errorf("input radius %d", r)
	}
}

func TestCountLeadingSignBits32(t *testing.T) {
	cases := map[int32]int{0: 31, -1: 31, 1: 30, -2: 30, math.MaxInt32: 0, math.MinInt32: 0, 1 << 20: 10}
	for x, want := range cases {
		if got := CountLeadingSignBits32(x); got != want {
			t.Errorf("clrsb(%d) = %d, want %d", x, got, want)
		}
	}
}
