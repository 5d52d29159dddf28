package finetune

import (
	"math"
)

// imprintHead builds a head without training, by weight imprinting (as
// Coral's ImprintingEngine does): each trained class's weights are the
// normalized mean of its examples' normalized feature vectors, so a class
// scores the cosine between an example and its class mean. The features are
// standardized first (centred: ReLU embeddings are all non-negative, and
// cosines between them say little until the common mean is removed). The
// FULLY_CONNECTED layer cannot normalize its input, but every class's score
// is divided by the same norm, so leaving it out changes no prediction; it
// only sets the softmax temperature, which is fitted instead: one scale
// (and, with frozen classes, one bias) chosen on a grid to minimize the
// class-balanced training loss.
func imprintHead(fm *featureMap, classes int, train []sample, frozen int, fixedLogits func([]int8, []float32)) *linearHead {
	k := classes - frozen
	h := &linearHead{classes: k, dim: fm.out, w: make([]float32, k*fm.out), b: make([]float32, k)}
	z := make([]float32, fm.out)
	counts := make([]int, k)
	var normSum float64
	feats := make([][]float32, len(train))
	for i, s := range train {
		fm.apply(s.x, z)
		n := norm(z)
		normSum += n
		feats[i] = append([]float32(nil), z...)
		c := s.label - frozen
		if c < 0 || n == 0 {
			continue
		}
		counts[c]++
		row := h.w[c*fm.out : (c+1)*fm.out]
		for j, v := range z {
			row[j] += float32(float64(v) / n)
		}
	}
	meanNorm := normSum / float64(max(len(train), 1))
	if meanNorm == 0 {
		meanNorm = 1
	}
	for c := range k {
		row := h.w[c*fm.out : (c+1)*fm.out]
		if n := norm(row); n > 0 {
			for j := range row {
				row[j] = float32(float64(row[j]) / n / meanNorm)
			}
		}
	}
	// cos[i][c]: the unscaled score of sample i for trained class c.
	cos := make([][]float32, len(train))
	var fixed [][]float32
	if frozen > 0 {
		fixed = make([][]float32, len(train))
	}
	for i, s := range train {
		cos[i] = make([]float32, k)
		for c := range k {
			var d float32
			for j, v := range feats[i] {
				d += h.w[c*fm.out+j] * v
			}
			cos[i][c] = d
		}
		if frozen > 0 {
			fixed[i] = make([]float32, frozen)
			fixedLogits(s.x, fixed[i])
		}
	}
	cw := classWeights(train, classes, frozen)
	logits := make([]float32, classes)
	probs := make([]float32, classes)
	loss := func(scale, bias float32) float64 {
		var l, ws float64
		for i, s := range train {
			if frozen > 0 {
				copy(logits, fixed[i])
			}
			for c := range k {
				logits[frozen+c] = scale*cos[i][c] + bias
			}
			softmax(logits, probs)
			w := float64(cw[s.label])
			l -= w * math.Log(math.Max(float64(probs[s.label]), 1e-12))
			ws += w
		}
		return l / math.Max(ws, 1e-12)
	}
	bestScale, bestBias, bestLoss := float32(1), float32(0), math.Inf(1)
	biases := []float32{0}
	if frozen > 0 {
		biases = nil
		for b := -20.0; b <= 20; b += 1 {
			biases = append(biases, float32(b))
		}
	}
	for s := 0.5; s <= 64; s *= math.Sqrt2 {
		for _, b := range biases {
			if l := loss(float32(s), b); l < bestLoss {
				bestScale, bestBias, bestLoss = float32(s), b, l
			}
		}
	}
	for i := range h.w {
		h.w[i] *= bestScale
	}
	for c := range h.b {
		h.b[c] = bestBias
	}
	return h
}

func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}
