package finetune

import (
	"math"
	"math/rand/v2"
)

// Augment configures how extra training views of a clip are made: a random
// time shift (zero-filled), a random gain and background noise mixed in at
// a random signal-to-noise ratio. The noise comes from the training clips of
// silence or background labels when there are any, else it is synthesized
// (white, pink or brown).
type Augment struct {
	// Copies is the number of augmented views per training clip, besides
	// the clip itself (0: none).
	Copies int
	// MaxShift is the largest time shift, in samples, either way.
	MaxShift int
	// GainDB is the largest gain change, in dB, either way.
	GainDB float64
	// NoiseProb is the probability that a view gets background noise;
	// MinSNR and MaxSNR bound its level (dB below the clip's RMS).
	NoiseProb      float64
	MinSNR, MaxSNR float64
	// Speed is the largest relative change of playback speed either way
	// (0.1: 0.9× to 1.1×), which moves pitch and formants together, as a
	// different voice would.
	Speed float64
	// FreqMask and TimeMask are the widest band of feature channels and
	// the longest run of feature frames blanked (set to their mean) in a
	// view, SpecAugment-style; 0: none.
	FreqMask, TimeMask int
}

// DefaultAugment is the augmentation edged uses for audio unless told
// otherwise (see Options.Augment).
var DefaultAugment = Augment{Copies: 8, MaxShift: 3200, GainDB: 6, NoiseProb: 0.5, MinSNR: 5, MaxSNR: 30, Speed: 0.25}

// viewRNG is the random source of one view of one example: views are
// reproducible from the seed alone, whatever order or goroutine makes them.
func viewRNG(seed uint64, example, view int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(example)<<20|uint64(view)))
}

// augmentPCM writes an augmented copy of pcm into dst (same length).
// noises are background clips to mix from (may be empty).
func (a *Augment) augmentPCM(rng *rand.Rand, pcm []int16, noises [][]int16, silence bool, dst []float64) {
	src := make([]float64, len(pcm))
	for i, v := range pcm {
		src[i] = float64(v)
	}
	if a.Speed > 0 && !silence {
		src = resampleLinear(src, 1+(rng.Float64()*2-1)*a.Speed)
	}
	n := len(src)
	shift := 0
	if a.MaxShift > 0 && !silence {
		shift = rng.IntN(2*a.MaxShift+1) - a.MaxShift
	}
	// A sped-up clip is shorter than the window: centre it, then shift.
	shift += (len(dst) - n) / 2
	for i := range dst {
		j := i - shift
		if j >= 0 && j < n {
			dst[i] = src[j]
		} else {
			dst[i] = 0
		}
	}
	gain := 1.0
	if a.GainDB > 0 {
		gain = math.Pow(10, (rng.Float64()*2-1)*a.GainDB/20)
	}
	for i := range dst {
		dst[i] *= gain
	}
	if a.NoiseProb > 0 && rng.Float64() < a.NoiseProb {
		noise := make([]float64, len(dst))
		if len(noises) > 0 {
			src := noises[rng.IntN(len(noises))]
			off := rng.IntN(max(len(src), 1))
			for i := range noise {
				if len(src) > 0 {
					noise[i] = float64(src[(off+i)%len(src)])
				}
			}
		} else {
			synthNoise(rng, noise)
		}
		sig, nrms := rms(dst), rms(noise)
		if nrms > 0 {
			var level float64
			if silence || sig < 1 {
				// Background only: a level between -70 and -35 dBFS.
				level = 32768 * math.Pow(10, (-70+rng.Float64()*35)/20)
			} else {
				snr := a.MinSNR + rng.Float64()*(a.MaxSNR-a.MinSNR)
				level = sig / math.Pow(10, snr/20)
			}
			k := level / nrms
			for i := range dst {
				dst[i] += k * noise[i]
			}
		}
	}
}

// synthNoise fills dst with white, pink or brown noise of unit-ish level.
func synthNoise(rng *rand.Rand, dst []float64) {
	kind := rng.IntN(3)
	var b0, b1, b2, brown float64
	for i := range dst {
		w := rng.NormFloat64()
		switch kind {
		case 0:
			dst[i] = w
		case 1: // Paul Kellet's economy pink filter
			b0 = 0.99765*b0 + w*0.0990460
			b1 = 0.96300*b1 + w*0.2965164
			b2 = 0.57000*b2 + w*1.0526913
			dst[i] = b0 + b1 + b2 + w*0.1848
		default:
			brown = 0.98*brown + w
			dst[i] = brown
		}
	}
}

func rms(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v * v
	}
	if len(x) == 0 {
		return 0
	}
	return math.Sqrt(s / float64(len(x)))
}

// toPCM16 rounds and saturates samples to int16.
func toPCM16(src []float64, dst []int16) {
	for i, v := range src {
		v = math.Round(v)
		switch {
		case v > math.MaxInt16:
			v = math.MaxInt16
		case v < math.MinInt16:
			v = math.MinInt16
		}
		dst[i] = int16(v)
	}
}

// resampleLinear plays x at speed r (r > 1: faster, shorter) by linear
// interpolation.
func resampleLinear(x []float64, r float64) []float64 {
	if len(x) == 0 || r <= 0 {
		return x
	}
	n := int(float64(len(x)) / r)
	out := make([]float64, n)
	for i := range out {
		p := float64(i) * r
		k := int(p)
		if k+1 >= len(x) {
			out[i] = x[len(x)-1]
			continue
		}
		f := p - float64(k)
		out[i] = x[k]*(1-f) + x[k+1]*f
	}
	return out
}

// maskFeatures blanks a random band of channels and a random run of frames
// of a frames × channels feature window, setting them to the mean of what
// they cover.
func (a *Augment) maskFeatures(rng *rand.Rand, f []int8, frames, channels int) {
	blank := func(t0, t1, c0, c1 int) {
		var sum, n int
		for t := t0; t < t1; t++ {
			for c := c0; c < c1; c++ {
				sum += int(f[t*channels+c])
				n++
			}
		}
		if n == 0 {
			return
		}
		m := int8(int(math.Round(float64(sum) / float64(n))))
		for t := t0; t < t1; t++ {
			for c := c0; c < c1; c++ {
				f[t*channels+c] = m
			}
		}
	}
	if a.FreqMask > 0 && channels > 1 {
		w := rng.IntN(min(a.FreqMask, channels-1) + 1)
		c0 := rng.IntN(channels - w + 1)
		blank(0, frames, c0, c0+w)
	}
	if a.TimeMask > 0 && frames > 1 {
		w := rng.IntN(min(a.TimeMask, frames-1) + 1)
		t0 := rng.IntN(frames - w + 1)
		blank(t0, t0+w, 0, channels)
	}
}
