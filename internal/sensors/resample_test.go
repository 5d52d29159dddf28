package sensors

import (
	"math"
	"testing"
)

// toneAmplitude measures the amplitude of a sinusoid of freq Hz in x
// (Goertzel over the whole slice).
func toneAmplitude(x []float32, freq, rate float64) float64 {
	w := 2 * math.Pi * freq / rate
	var re, im float64
	for i, v := range x {
		re += float64(v) * math.Cos(w*float64(i))
		im -= float64(v) * math.Sin(w*float64(i))
	}
	return 2 * math.Hypot(re, im) / float64(len(x))
}

func tone(freq, rate float64, n int, amp float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(amp * math.Sin(2*math.Pi*freq*float64(i)/rate))
	}
	return x
}

func TestResamplerKeepsPassBandAndRejectsAliases(t *testing.T) {
	for _, c := range []struct{ in, out int }{{48000, 16000}, {44100, 16000}, {8000, 16000}, {22050, 16000}, {32000, 16000}, {11025, 16000}} {
		r, err := NewResampler(c.in, c.out)
		if err != nil {
			t.Fatal(err)
		}
		x := tone(1000, float64(c.in), c.in, 0.5)
		y := r.Flush(r.Process(x, nil))
		if len(y) != c.out {
			t.Errorf("%d->%d: %d samples for 1 s, want %d", c.in, c.out, len(y), c.out)
		}
		if a := toneAmplitude(y[c.out/8:c.out*7/8], 1000, float64(c.out)); math.Abs(a-0.5) > 0.005 {
			t.Errorf("%d->%d: 1 kHz amplitude %g, want 0.5", c.in, c.out, a)
		}
		if c.in > c.out {
			// A tone above the output's Nyquist must not fold back.
			alias := 1.25 * float64(c.out) / 2 // above the output's Nyquist, below the input's
			r2, _ := NewResampler(c.in, c.out)
			y2 := r2.Flush(r2.Process(tone(alias, float64(c.in), c.in, 0.5), nil))
			folded := float64(c.out) - alias
			if a := toneAmplitude(y2[c.out/8:c.out*7/8], folded, float64(c.out)); a > 0.5e-3 {
				t.Errorf("%d->%d: %g Hz leaks at %g Hz with amplitude %g", c.in, c.out, alias, folded, a)
			}
		}
	}
}

func TestResamplerStreamingMatchesOneShot(t *testing.T) {
	x := tone(700, 48000, 20000, 0.3)
	one, _ := NewResampler(48000, 16000)
	want := one.Flush(one.Process(x, nil))
	chunked, _ := NewResampler(48000, 16000)
	var got []float32
	for i := 0; i < len(x); {
		n := min(1+(i*7919)%977, len(x)-i)
		got = chunked.Process(x[i:i+n], got)
		i += n
	}
	got = chunked.Flush(got)
	if len(got) != len(want) {
		t.Fatalf("chunked %d samples, one-shot %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("sample %d: chunked %g, one-shot %g", i, got[i], want[i])
		}
	}
}

func TestResamplerRejectsBadRates(t *testing.T) {
	if _, err := NewResampler(0, 16000); err == nil {
		t.Error("rate 0 accepted")
	}
	if _, err := NewResampler(16001, 16000*7); err == nil {
		t.Error("a ratio with 16000 phases was accepted")
	}
}
