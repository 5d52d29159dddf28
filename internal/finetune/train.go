package finetune

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
)

// featureMap turns an int8 embedding into the features a head is trained
// on: dequantized, optionally averaged over time segments (a pooling-aware
// head: the embedding [1, T, ...] is averaged over each of Segments runs of
// time steps), then centred per feature and scaled by one factor. Every step is linear, so a
// head trained on these features folds back into a FULLY_CONNECTED layer on
// the embedding itself (expand).
type featureMap struct {
	q        Quant
	dim      int   // embedding values
	rows     int   // time steps (the embedding's second dimension)
	inner    int   // values per time step
	segStart []int // segment boundaries in time steps; nil: no pooling
	pooled   int   // features from the embedding itself
	out      int   // features
	mean     []float32
	inv      []float32 // 1 / standard deviation
	// proj are extra features, linear projections of the embedding
	// (k × dim, plus projB): the current head's logits, which carry what
	// the model learned from its original, larger training set.
	proj, projB []float32
}

// newFeatureMap prepares the features of an embedding of the given shape
// and quantization; segments > 0 averages over that many time segments
// (more segments than time steps means no pooling).
func newFeatureMap(shape []int, q Quant, segments int) *featureMap {
	dim := 1
	for _, d := range shape {
		dim *= d
	}
	f := &featureMap{q: q, dim: dim, out: dim}
	// Drop leading 1s (the batch); pool over the first remaining axis when
	// there is a further one.
	s := shape
	for len(s) > 0 && s[0] == 1 {
		s = s[1:]
	}
	if segments > 0 && len(s) >= 2 && segments < s[0] {
		f.rows = s[0]
		f.inner = dim / s[0]
		for i := 0; i <= segments; i++ {
			f.segStart = append(f.segStart, i*f.rows/segments)
		}
		f.out = segments * f.inner
	}
	f.pooled = f.out
	f.mean = make([]float32, f.out)
	f.inv = make([]float32, f.out)
	for i := range f.inv {
		f.inv[i] = 1
	}
	return f
}

// addProjections appends k features w·x + b (w: k × dim) to the map.
func (f *featureMap) addProjections(w, b []float32) {
	k := len(b)
	f.proj, f.projB = w, b
	f.out = f.pooled + k
	f.mean = make([]float32, f.out)
	f.inv = make([]float32, f.out)
	for i := range f.inv {
		f.inv[i] = 1
	}
}

// segments is the number of time segments (0: no pooling).
func (f *featureMap) segments() int {
	if f.segStart == nil {
		return 0
	}
	return len(f.segStart) - 1
}

// raw computes the unstandardized features of x into dst (f.out values).
func (f *featureMap) raw(x []int8, dst []float32) {
	f.rawPooled(x, dst)
	for k := range f.projB {
		row := f.proj[k*f.dim : (k+1)*f.dim]
		var s float32
		for i, v := range x {
			s += row[i] * float32(int32(v)-f.q.ZeroPoint)
		}
		dst[f.pooled+k] = s*f.q.Scale + f.projB[k]
	}
}

func (f *featureMap) rawPooled(x []int8, dst []float32) {
	if f.segStart == nil {
		for i, v := range x {
			dst[i] = f.q.Scale * float32(int32(v)-f.q.ZeroPoint)
		}
		return
	}
	clear(dst[:f.pooled])
	for s := 0; s+1 < len(f.segStart); s++ {
		a, b := f.segStart[s], f.segStart[s+1]
		seg := dst[s*f.inner : (s+1)*f.inner]
		for t := a; t < b; t++ {
			for i, v := range x[t*f.inner : (t+1)*f.inner] {
				seg[i] += float32(int32(v) - f.q.ZeroPoint)
			}
		}
		k := f.q.Scale / float32(b-a)
		for i := range seg {
			seg[i] *= k
		}
	}
}

// apply computes the standardized features of x into dst.
func (f *featureMap) apply(x []int8, dst []float32) {
	f.raw(x, dst)
	for i := range dst[:f.out] {
		dst[i] = (dst[i] - f.mean[i]) * f.inv[i]
	}
}

// fit sets the standardization from samples.
func (f *featureMap) fit(xs [][]int8) {
	sum := make([]float64, f.out)
	sq := make([]float64, f.out)
	buf := make([]float32, f.out)
	for _, x := range xs {
		f.raw(x, buf)
		for i, v := range buf {
			sum[i] += float64(v)
			sq[i] += float64(v) * float64(v)
		}
	}
	n := float64(max(len(xs), 1))
	// One scale per block of features (the embedding's, the projections'):
	// per-feature scaling would give features that barely vary large
	// weights, which then set the int8 weights' per-class scale and crush
	// the rest (Adam adapts per weight anyway).
	block := func(a, b int) {
		var variance float64
		for i := a; i < b; i++ {
			m := sum[i] / n
			f.mean[i] = float32(m)
			variance += math.Max(sq[i]/n-m*m, 0)
		}
		inv := float32(1)
		if sd := math.Sqrt(variance / float64(max(b-a, 1))); sd > 0 {
			inv = float32(1 / sd)
		}
		for i := a; i < b; i++ {
			f.inv[i] = inv
		}
	}
	block(0, f.pooled)
	block(f.pooled, f.out)
}

// expand folds a head on the features (w: classes × f.out, b) into a head
// on the raw embedding (classes × f.dim).
func (f *featureMap) expand(w, b []float32, classes int) (W, B []float32) {
	W = make([]float32, classes*f.dim)
	B = make([]float32, classes)
	for c := range classes {
		wc := w[c*f.out : (c+1)*f.out]
		// Standardization: w·((φ−μ)·inv) = (w·inv)·φ − Σ w·inv·μ.
		eff := make([]float32, f.out)
		bias := float64(b[c])
		for i := range eff {
			eff[i] = wc[i] * f.inv[i]
			bias -= float64(eff[i]) * float64(f.mean[i])
		}
		Wc := W[c*f.dim : (c+1)*f.dim]
		for k := range f.projB {
			e := eff[f.pooled+k]
			bias += float64(e) * float64(f.projB[k])
			for i, p := range f.proj[k*f.dim : (k+1)*f.dim] {
				Wc[i] += e * p
			}
		}
		B[c] = float32(bias)
		if f.segStart == nil {
			for i, e := range eff[:f.pooled] {
				Wc[i] += e
			}
			continue
		}
		for s := 0; s+1 < len(f.segStart); s++ {
			a, e := f.segStart[s], f.segStart[s+1]
			k := 1 / float32(e-a)
			for t := a; t < e; t++ {
				for i := range f.inner {
					Wc[t*f.inner+i] += eff[s*f.inner+i] * k
				}
			}
		}
	}
	return W, B
}

// sample is one training or validation view: an int8 embedding and its
// class. Fixed holds the logits of frozen classes (extend mode).
type sample struct {
	x      []int8
	label  int
	weight float32
}

// trainConfig are the hyperparameters of head training.
type trainConfig struct {
	epochs, batch, patience int
	lr, weightDecay         float64
	smoothing               float64
	seed                    uint64
	// frozen classes come first; their logits are given per sample by
	// fixedLogits and are not trained.
	frozen      int
	fixedLogits func(x []int8, dst []float32)
	progress    func(epoch int, trainLoss, valLoss, valAcc float64)
	// stop reports whether training should end now (cancellation).
	stop func() bool
}

// trainStats describe a training run.
type trainStats struct {
	epochs, bestEpoch int
	trainLoss         float64
	valLoss, valAcc   float64
}

// linearHead is logits = W·features + B over the trainable classes.
type linearHead struct {
	classes, dim int
	w, b         []float32
}

var errCanceled = errors.New("training canceled")

// classWeights returns weights that make every class count the same in the
// loss: n / (classes present × count of the class). With frozen classes
// (extend mode), the frozen ones count as one class together: their
// examples are "none of the new classes", and a frozen class with one
// example should not weigh as much as a new class with many.
func classWeights(samples []sample, classes int, frozen ...int) []float32 {
	counts := make([]int, classes)
	for _, s := range samples {
		counts[s.label]++
	}
	if len(frozen) > 0 && frozen[0] > 0 {
		f := frozen[0]
		pooled := 0
		for c := range f {
			pooled += counts[c]
		}
		present := 0
		for _, n := range counts[f:] {
			if n > 0 {
				present++
			}
		}
		if pooled > 0 {
			present++
		}
		w := make([]float32, classes)
		for c, n := range counts {
			switch {
			case c < f && pooled > 0:
				w[c] = float32(float64(len(samples)) / float64(present*pooled))
			case c >= f && n > 0:
				w[c] = float32(float64(len(samples)) / float64(present*n))
			}
		}
		return w
	}
	present := 0
	for _, c := range counts {
		if c > 0 {
			present++
		}
	}
	w := make([]float32, classes)
	for c, n := range counts {
		if n > 0 {
			w[c] = float32(float64(len(samples)) / float64(present*n))
		}
	}
	return w
}

// trainHead trains a linear head (classes − frozen rows) on fm's features
// with minibatch Adam, class-balanced cross-entropy with label smoothing,
// decoupled weight decay and early stopping on val (best validation loss
// kept; without validation samples, all epochs run). It is deterministic
// for a seed.
func trainHead(fm *featureMap, classes int, train, val []sample, cfg trainConfig) (*linearHead, trainStats, error) {
	k := classes - cfg.frozen
	h := &linearHead{classes: k, dim: fm.out, w: make([]float32, k*fm.out), b: make([]float32, k)}
	rng := rand.New(rand.NewPCG(cfg.seed, 0x6865616400000000))
	// Small random start (Glorot-like) so classes separate from step one.
	sd := float32(math.Sqrt(1.0 / float64(fm.out)))
	for i := range h.w {
		h.w[i] = float32(rng.NormFloat64()) * sd * 0.1
	}
	// Cache features: val always; train when it fits in a modest budget.
	feats := func(ss []sample) [][]float32 {
		out := make([][]float32, len(ss))
		for i, s := range ss {
			out[i] = make([]float32, fm.out)
			fm.apply(s.x, out[i])
		}
		return out
	}
	fixed := func(ss []sample) [][]float32 {
		if cfg.frozen == 0 {
			return nil
		}
		out := make([][]float32, len(ss))
		for i, s := range ss {
			out[i] = make([]float32, cfg.frozen)
			cfg.fixedLogits(s.x, out[i])
		}
		return out
	}
	const cacheBudget = 64 << 20 // bytes of cached float features
	var trainFeat [][]float32
	if len(train)*fm.out*4 <= cacheBudget {
		trainFeat = feats(train)
	}
	valFeat := feats(val)
	trainFixed, valFixed := fixed(train), fixed(val)
	if cfg.frozen > 0 {
		// Start each new class at the decision boundary on its examples:
		// its bias at the mean of the best kept class's logit there.
		sum := make([]float64, k)
		n := make([]int, k)
		for i, s := range train {
			if c := s.label - cfg.frozen; c >= 0 {
				sum[c] += float64(slices.Max(trainFixed[i]))
				n[c]++
			}
		}
		for c := range k {
			if n[c] > 0 {
				h.b[c] = float32(sum[c] / float64(n[c]))
			}
		}
	}
	cw := classWeights(train, classes, cfg.frozen)

	mW, vW := make([]float32, len(h.w)), make([]float32, len(h.w))
	mB, vB := make([]float32, len(h.b)), make([]float32, len(h.b))
	gW, gB := make([]float32, len(h.w)), make([]float32, len(h.b))
	z := make([]float32, fm.out)
	logits := make([]float32, classes)
	probs := make([]float32, classes)
	const b1, b2, eps = 0.9, 0.999, 1e-8
	step := 0

	best := trainStats{valLoss: math.Inf(1)}
	bestW, bestB := slices.Clone(h.w), slices.Clone(h.b)
	stale := 0
	var st trainStats
	for epoch := 1; epoch <= cfg.epochs; epoch++ {
		if cfg.stop != nil && cfg.stop() {
			return nil, st, errCanceled
		}
		order := epochOrder(rng, len(train), cfg.batch)
		var lossSum, weightSum float64
		for start := 0; start < len(order); start += cfg.batch {
			end := min(start+cfg.batch, len(order))
			clear(gW)
			clear(gB)
			var bw float64
			for _, idx := range order[start:end] {
				s := &train[idx]
				x := z
				if trainFeat != nil {
					x = trainFeat[idx]
				} else {
					fm.apply(s.x, z)
				}
				var fx []float32
				if trainFixed != nil {
					fx = trainFixed[idx]
				}
				h.logits(x, fx, logits)
				softmax(logits, probs)
				w := cw[s.label] * s.weight
				bw += float64(w)
				lossSum += float64(w) * crossEntropy(probs, s.label, cfg.smoothing, cfg.frozen, classes)
				weightSum += float64(w)
				for c := range k {
					g := (probs[cfg.frozen+c] - target(cfg.frozen+c, s.label, cfg.smoothing, cfg.frozen, classes)) * w
					if g == 0 {
						continue
					}
					gB[c] += g
					row := gW[c*fm.out : (c+1)*fm.out]
					for i, v := range x {
						row[i] += g * v
					}
				}
			}
			if bw == 0 {
				continue
			}
			step++
			inv := float32(1 / bw)
			lr := float32(cfg.lr * math.Sqrt(1-math.Pow(b2, float64(step))) / (1 - math.Pow(b1, float64(step))))
			decay := float32(1 - cfg.lr*cfg.weightDecay)
			for i, g := range gW {
				g *= inv
				mW[i] = b1*mW[i] + (1-b1)*g
				vW[i] = b2*vW[i] + (1-b2)*g*g
				h.w[i] = h.w[i]*decay - lr*mW[i]/(float32(math.Sqrt(float64(vW[i])))+eps)
			}
			for i, g := range gB {
				g *= inv
				mB[i] = b1*mB[i] + (1-b1)*g
				vB[i] = b2*vB[i] + (1-b2)*g*g
				h.b[i] -= lr * mB[i] / (float32(math.Sqrt(float64(vB[i]))) + eps)
			}
		}
		st = trainStats{epochs: epoch, trainLoss: lossSum / math.Max(weightSum, 1e-12)}
		if len(val) > 0 {
			st.valLoss, st.valAcc = h.evaluate(val, valFeat, valFixed, classes, cfg.frozen)
		}
		if cfg.progress != nil {
			cfg.progress(epoch, st.trainLoss, st.valLoss, st.valAcc)
		}
		if len(val) == 0 {
			best = st
			best.bestEpoch = epoch
			continue
		}
		if st.valLoss < best.valLoss-1e-4 {
			best = st
			best.bestEpoch = epoch
			copy(bestW, h.w)
			copy(bestB, h.b)
			stale = 0
		} else if stale++; cfg.patience > 0 && stale >= cfg.patience {
			break
		}
	}
	if len(val) > 0 {
		copy(h.w, bestW)
		copy(h.b, bestB)
	}
	best.epochs = st.epochs
	return h, best, nil
}

// minStepsPerEpoch is the fewest optimizer steps an epoch takes: a few
// examples are cycled through several times, so that an epoch means as much
// training with ten examples as with a thousand.
const minStepsPerEpoch = 20

// epochOrder is one epoch's order of n samples: shuffled passes over all of
// them, enough for minStepsPerEpoch batches.
func epochOrder(rng *rand.Rand, n, batch int) []int {
	if n == 0 {
		return nil
	}
	total := max(n, minStepsPerEpoch*batch)
	order := make([]int, 0, total+n)
	for len(order) < total {
		order = append(order, rng.Perm(n)...)
	}
	return order[:total]
}

// logits writes the logits of all classes: the frozen ones from fixed, the
// trained ones from x.
func (h *linearHead) logits(x, fixed, dst []float32) {
	copy(dst, fixed)
	n := len(fixed)
	for c := range h.classes {
		row := h.w[c*h.dim : (c+1)*h.dim]
		s := h.b[c]
		for i, v := range x {
			s += row[i] * v
		}
		dst[n+c] = s
	}
}

// evaluate returns the class-balanced mean loss (no smoothing) and the
// accuracy on samples.
func (h *linearHead) evaluate(ss []sample, feats, fixed [][]float32, classes, frozen int) (loss, acc float64) {
	cw := classWeights(ss, classes, frozen)
	logits := make([]float32, classes)
	probs := make([]float32, classes)
	var wsum float64
	correct := 0
	for i, s := range ss {
		var fx []float32
		if fixed != nil {
			fx = fixed[i]
		}
		h.logits(feats[i], fx, logits)
		softmax(logits, probs)
		loss += float64(cw[s.label]) * -math.Log(math.Max(float64(probs[s.label]), 1e-12))
		wsum += float64(cw[s.label])
		if argmax(logits) == s.label {
			correct++
		}
	}
	return loss / math.Max(wsum, 1e-12), float64(correct) / float64(max(len(ss), 1))
}

// target is the smoothed one-hot target of class c for a sample of class
// label. Smoothing spreads over the trained classes only when some are
// frozen and the label is a trained class.
func target(c, label int, smoothing float64, frozen, classes int) float32 {
	n := classes
	if frozen > 0 {
		// In extend mode targets stay one-hot: the frozen classes keep
		// their own calibration.
		smoothing = 0
	}
	t := smoothing / float64(n)
	if c == label {
		t += 1 - smoothing
	}
	return float32(t)
}

func crossEntropy(probs []float32, label int, smoothing float64, frozen, classes int) float64 {
	var l float64
	for c, p := range probs {
		t := target(c, label, smoothing, frozen, classes)
		if t > 0 {
			l -= float64(t) * math.Log(math.Max(float64(p), 1e-12))
		}
	}
	return l
}

// softmax writes the softmax of logits into probs.
func softmax(logits, probs []float32) {
	m := logits[0]
	for _, v := range logits {
		m = max(m, v)
	}
	var sum float64
	for i, v := range logits {
		e := math.Exp(float64(v - m))
		probs[i] = float32(e)
		sum += e
	}
	for i := range probs {
		probs[i] = float32(float64(probs[i]) / sum)
	}
}

// argmax is the index of the largest value (the first on ties).
func argmax[T int8 | float32](v []T) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
