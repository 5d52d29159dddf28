package sensors

import (
	"fmt"
	"math"
)

// Resampler converts a mono stream between sample rates with a polyphase
// windowed-sinc filter (Kaiser window, 16 zero crossings, cut-off at 95 % of
// the lower Nyquist frequency), so 44.1 or 48 kHz recordings can feed a
// 16 kHz model without aliasing. It is streaming: Process may be called with
// chunks of any size; Flush emits the tail.
type Resampler struct {
	inRate, outRate int
	up, down        int // output position advances down/up input samples per output
	taps            int // taps per phase (even)
	coef            [][]float32
	hist            []float32 // input samples not yet consumed; hist[0] is input index histStart
	histStart       int64
	n               int64 // next output index
	flushed         bool
}

const (
	resampleZeros   = 16
	resampleBeta    = 8.6 // Kaiser window shape: about 90 dB stop-band
	resampleMaxPhas = 8192
)

// NewResampler makes a resampler from inRate to outRate Hz.
func NewResampler(inRate, outRate int) (*Resampler, error) {
	if inRate <= 0 || outRate <= 0 {
		return nil, fmt.Errorf("resample %d Hz to %d Hz: rates must be positive", inRate, outRate)
	}
	g := gcd(inRate, outRate)
	up, down := outRate/g, inRate/g
	if up > resampleMaxPhas {
		return nil, fmt.Errorf("resample %d Hz to %d Hz: the rates' ratio %d/%d is too fine; convert the file to a common rate first (e.g. 48000, 44100 or 16000 Hz)", inRate, outRate, up, down)
	}
	r := &Resampler{inRate: inRate, outRate: outRate, up: up, down: down}
	cutoff := 0.95 * math.Min(1, float64(outRate)/float64(inRate)) // of the input Nyquist
	half := int(math.Ceil(resampleZeros / cutoff))
	r.taps = 2 * half
	r.coef = make([][]float32, up)
	for p := range up {
		frac := float64(p) / float64(up)
		c := make([]float32, r.taps)
		var sum float64
		vals := make([]float64, r.taps)
		for j := range r.taps {
			d := frac + float64(half-1-j) // distance from the output instant to tap j
			v := cutoff * sinc(cutoff*d) * kaiser(d/float64(half), resampleBeta)
			vals[j] = v
			sum += v
		}
		for j := range c {
			c[j] = float32(vals[j] / sum) // unit gain at DC in every phase
		}
		r.coef[p] = c
	}
	// Taps before the first sample read as silence.
	r.hist = make([]float32, half-1)
	r.histStart = -int64(half - 1)
	return r, nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

func kaiser(x, beta float64) float64 {
	if x < -1 || x > 1 {
		return 0
	}
	return bessel0(beta*math.Sqrt(1-x*x)) / bessel0(beta)
}

// bessel0 is the modified Bessel function of the first kind, order 0.
func bessel0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 64; k++ {
		term *= (x / (2 * float64(k))) * (x / (2 * float64(k)))
		sum += term
		if term < 1e-12*sum {
			break
		}
	}
	return sum
}

// Process appends the output for in to dst and returns it.
func (r *Resampler) Process(in []float32, dst []float32) []float32 {
	r.hist = append(r.hist, in...)
	return r.drain(dst, math.MaxInt64)
}

// drain computes every output whose taps are all available, up to output
// index limit (exclusive).
func (r *Resampler) drain(dst []float32, limit int64) []float32 {
	half := int64(r.taps / 2)
	end := r.histStart + int64(len(r.hist)) // first input index not yet available
	for r.n < limit {
		num := r.n * int64(r.down)
		base := num / int64(r.up)
		if base+half >= end {
			break
		}
		phase := num % int64(r.up)
		first := base - half + 1 - r.histStart
		var acc float32
		for j, c := range r.coef[phase] {
			acc += float32(c * r.hist[first+int64(j)])
		}
		dst = append(dst, acc)
		r.n++
	}
	// Drop input no later output needs.
	next := (r.n*int64(r.down))/int64(r.up) - half + 1
	if drop := next - r.histStart; drop > 0 {
		drop = min(drop, int64(len(r.hist)))
		r.hist = append(r.hist[:0], r.hist[drop:]...)
		r.histStart += drop
	}
	return dst
}

// Flush emits the outputs that need input past the end of the stream
// (treated as silence), so the output covers the whole input duration.
func (r *Resampler) Flush(dst []float32) []float32 {
	if r.flushed {
		return dst
	}
	r.flushed = true
	total := r.histStart + int64(len(r.hist)) // input samples seen
	want := (total*int64(r.up) + int64(r.down) - 1) / int64(r.down)
	r.hist = append(r.hist, make([]float32, r.taps)...)
	return r.drain(dst, want)
}
