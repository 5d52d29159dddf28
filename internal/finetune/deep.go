package finetune

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/edged/edged/internal/quantize"
	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

// convLayer is the convolution before the head, in float, for deep
// fine-tuning: NHWC input [1, inH, inW, inC], weights as the model stores
// them (DEPTHWISE_CONV_2D [1, kh, kw, outC], CONV_2D [outC, kh, kw, inC]),
// output [1, outH, outW, outC] after the fused activation.
type convLayer struct {
	op                   int
	depthwise            bool
	inH, inW, inC        int
	outH, outW, outC     int
	kh, kw               int
	strideH, strideW     int
	dilH, dilW           int
	padTop, padLeft      int
	mult                 int // depth multiplier
	act                  tflite.ActivationFunctionType
	inQ                  Quant
	w, b                 []float32
	wShape               []int
	wAxis                int
	options              *tflite.BuiltinOptionsT
	code                 tflite.BuiltinOperator
	version              int
	wName, bName, inName string
}

// layerTrainable reports why operator p (which produces the head's input)
// cannot be fine-tuned, or nil when it can.
func layerTrainable(g *runtime.Subgraph, sg *tflite.SubGraphT, p int) error {
	_, err := readConvLayer(g, sg, p)
	return err
}

func readConvLayer(g *runtime.Subgraph, sg *tflite.SubGraphT, p int) (*convLayer, error) {
	o := &g.Operators[p]
	l := &convLayer{op: p, code: o.Code.Builtin, version: o.Code.Version, options: sg.Operators[p].BuiltinOptions}
	var padding tflite.Padding
	switch opts := options(sg.Operators[p]).(type) {
	case *tflite.DepthwiseConv2DOptionsT:
		l.depthwise = true
		padding, l.strideH, l.strideW = opts.Padding, int(opts.StrideH), int(opts.StrideW)
		l.dilH, l.dilW, l.act = int(opts.DilationHFactor), int(opts.DilationWFactor), opts.FusedActivationFunction
	case *tflite.Conv2DOptionsT:
		padding, l.strideH, l.strideW = opts.Padding, int(opts.StrideH), int(opts.StrideW)
		l.dilH, l.dilW, l.act = int(opts.DilationHFactor), int(opts.DilationWFactor), opts.FusedActivationFunction
	default:
		return nil, fmt.Errorf("operator %d is %s, not a convolution", p, o.Code.Name())
	}
	l.dilH, l.dilW = max(l.dilH, 1), max(l.dilW, 1)
	if len(o.Inputs) < 3 || o.Inputs[2] < 0 || len(o.Outputs) != 1 {
		return nil, errors.New("the convolution needs a bias")
	}
	in, w, b, out := &g.Tensors[o.Inputs[0]], &g.Tensors[o.Inputs[1]], &g.Tensors[o.Inputs[2]], &g.Tensors[o.Outputs[0]]
	if in.Type != runtime.Int8 || w.Type != runtime.Int8 || b.Type != runtime.Int32 || out.Type != runtime.Int8 {
		return nil, errors.New("the convolution is not int8 with an int32 bias")
	}
	if w.Data == nil || b.Data == nil || len(in.Shape) != 4 || len(w.Shape) != 4 || len(out.Shape) != 4 || in.Shape[0] != 1 {
		return nil, errors.New("the convolution's weights and bias must be constants, its tensors NHWC with one batch")
	}
	if !in.Quant.Quantized() || in.Quant.PerChannel() || !w.Quant.Quantized() {
		return nil, errors.New("the convolution's input and weights must be quantized")
	}
	for _, z := range w.Quant.ZeroPoint {
		if z != 0 {
			return nil, errors.New("the convolution's weights are not symmetric")
		}
	}
	switch l.act {
	case tflite.ActivationFunctionTypeNONE, tflite.ActivationFunctionTypeRELU, tflite.ActivationFunctionTypeRELU6:
	default:
		return nil, fmt.Errorf("fused activation %s is not supported for fine-tuning", tflite.EnumNamesActivationFunctionType[l.act])
	}
	l.inH, l.inW, l.inC = in.Shape[1], in.Shape[2], in.Shape[3]
	l.outH, l.outW, l.outC = out.Shape[1], out.Shape[2], out.Shape[3]
	l.wShape = slices.Clone(w.Shape)
	if l.depthwise {
		l.kh, l.kw, l.wAxis = w.Shape[1], w.Shape[2], 3
		if w.Shape[0] != 1 || w.Shape[3] != l.outC || l.outC%l.inC != 0 {
			return nil, errors.New("depthwise weights do not match the channels")
		}
		l.mult = l.outC / l.inC
	} else {
		l.kh, l.kw, l.wAxis = w.Shape[1], w.Shape[2], 0
		if w.Shape[0] != l.outC || w.Shape[3] != l.inC {
			return nil, errors.New("convolution weights do not match the channels")
		}
	}
	if len(w.Quant.Scale) != 1 && (len(w.Quant.Scale) != l.outC || w.Quant.QuantizedDimension != l.wAxis) {
		return nil, errors.New("the convolution's weights are not quantized per output channel")
	}
	if runtime.NumElements(b.Shape) != l.outC {
		return nil, errors.New("the convolution's bias does not have one value per channel")
	}
	// Padding as TensorFlow Lite computes it.
	effH, effW := (l.kh-1)*l.dilH+1, (l.kw-1)*l.dilW+1
	var wantH, wantW int
	switch padding {
	case tflite.PaddingSAME:
		wantH, wantW = (l.inH+l.strideH-1)/l.strideH, (l.inW+l.strideW-1)/l.strideW
	case tflite.PaddingVALID:
		wantH, wantW = (l.inH-effH+l.strideH)/l.strideH, (l.inW-effW+l.strideW)/l.strideW
	default:
		return nil, errors.New("unknown padding")
	}
	if l.strideH <= 0 || l.strideW <= 0 || wantH != l.outH || wantW != l.outW {
		return nil, errors.New("the convolution's output shape does not follow from its options")
	}
	l.padTop = max(0, ((l.outH-1)*l.strideH+effH-l.inH)/2)
	l.padLeft = max(0, ((l.outW-1)*l.strideW+effW-l.inW)/2)
	l.inQ = Quant{in.Quant.Scale[0], int32(in.Quant.ZeroPoint[0])}
	l.w = make([]float32, len(w.Data))
	channelOf := func(i int) int {
		if l.depthwise {
			return i % l.outC
		}
		return i / (l.kh * l.kw * l.inC)
	}
	for i, v := range w.Data {
		s := w.Quant.Scale[0]
		if len(w.Quant.Scale) > 1 {
			s = w.Quant.Scale[channelOf(i)]
		}
		l.w[i] = s * float32(int8(v))
	}
	bv := int32sOf(b.Data)
	l.b = make([]float32, l.outC)
	for c := range l.outC {
		s := in.Quant.Scale[0] * w.Quant.Scale[min(c, len(w.Quant.Scale)-1)]
		l.b[c] = s * float32(bv[c])
	}
	l.inName, l.wName, l.bName = in.Name, w.Name, b.Name
	return l, nil
}

// forward computes the layer's output (before the activation) for the
// dequantized input x into pre (outH × outW × outC).
func (l *convLayer) forward(x, w, b, pre []float32) {
	for oh := range l.outH {
		for ow := range l.outW {
			o := pre[(oh*l.outW+ow)*l.outC : (oh*l.outW+ow+1)*l.outC]
			copy(o, b)
			for ky := range l.kh {
				ih := oh*l.strideH - l.padTop + ky*l.dilH
				if ih < 0 || ih >= l.inH {
					continue
				}
				for kx := range l.kw {
					iw := ow*l.strideW - l.padLeft + kx*l.dilW
					if iw < 0 || iw >= l.inW {
						continue
					}
					px := x[(ih*l.inW+iw)*l.inC : (ih*l.inW+iw+1)*l.inC]
					if l.depthwise {
						wk := w[(ky*l.kw+kx)*l.outC : (ky*l.kw+kx+1)*l.outC]
						for oc := range o {
							o[oc] += wk[oc] * px[oc/l.mult]
						}
						continue
					}
					for oc := range o {
						wk := w[((oc*l.kh+ky)*l.kw+kx)*l.inC:]
						var s float32
						for ic, v := range px {
							s += wk[ic] * v
						}
						o[oc] += s
					}
				}
			}
		}
	}
}

// backward accumulates the gradients of the weights and bias given the
// gradient g of the pre-activation output.
func (l *convLayer) backward(x, g, gw, gb []float32) {
	for oh := range l.outH {
		for ow := range l.outW {
			go_ := g[(oh*l.outW+ow)*l.outC : (oh*l.outW+ow+1)*l.outC]
			nonzero := false
			for oc, v := range go_ {
				if v != 0 {
					gb[oc] += v
					nonzero = true
				}
			}
			if !nonzero {
				continue
			}
			for ky := range l.kh {
				ih := oh*l.strideH - l.padTop + ky*l.dilH
				if ih < 0 || ih >= l.inH {
					continue
				}
				for kx := range l.kw {
					iw := ow*l.strideW - l.padLeft + kx*l.dilW
					if iw < 0 || iw >= l.inW {
						continue
					}
					px := x[(ih*l.inW+iw)*l.inC : (ih*l.inW+iw+1)*l.inC]
					if l.depthwise {
						wk := gw[(ky*l.kw+kx)*l.outC : (ky*l.kw+kx+1)*l.outC]
						for oc, v := range go_ {
							wk[oc] += v * px[oc/l.mult]
						}
						continue
					}
					for oc, v := range go_ {
						if v == 0 {
							continue
						}
						wk := gw[((oc*l.kh+ky)*l.kw+kx)*l.inC:]
						for ic, xv := range px {
							wk[ic] += v * xv
						}
					}
				}
			}
		}
	}
}

// activate applies the fused activation in place and returns, per value,
// whether the gradient passes.
func (l *convLayer) activate(v []float32, pass []bool) {
	for i, x := range v {
		switch l.act {
		case tflite.ActivationFunctionTypeRELU:
			pass[i] = x > 0
			v[i] = max(x, 0)
		case tflite.ActivationFunctionTypeRELU6:
			pass[i] = x > 0 && x < 6
			v[i] = min(max(x, 0), 6)
		default:
			pass[i] = true
		}
	}
}

// trainDeep trains the convolution before the head together with a new
// head, in float32, then quantizes the convolution (per-channel weights,
// bias at input_scale × weight_scale, its output calibrated on the training
// views), recomputes every view's embedding through the quantized layer
// with edged's int8 kernel, and trains the final head on those exact
// embeddings.
func (j *job) trainDeep(train, val []sample, cfg trainConfig) (*linearHead, error) {
	fb, err := unpack(j.base)
	if err != nil {
		return nil, err
	}
	l, err := readConvLayer(j.model.Subgraphs[0], fb.Subgraphs[0], j.head.Layer)
	if err != nil {
		return nil, err
	}
	// Layer inputs of the samples, in sample order.
	var trainIn, valIn [][]int8
	for _, v := range j.views {
		if v.example >= 0 && j.isVal[v.example] {
			valIn = append(valIn, v.layerIn)
		} else {
			trainIn = append(trainIn, v.layerIn)
		}
	}
	classes := len(j.labels)
	fm := j.fm
	fm.fit(xsOf(train)) // standardization from the original layer's embeddings
	cpu := cpuSeconds()
	_, st, err := trainConvAndHead(l, fm, classes, train, val, trainIn, valIn, cfg)
	if err != nil {
		return nil, err
	}
	if st.epochs > 0 {
		j.report.LayerCPUPerEpoch = (cpuSeconds() - cpu) / float64(st.epochs)
	}
	j.report.Epochs, j.report.BestEpoch, j.report.LayerEpochs = st.epochs, st.bestEpoch, st.epochs

	// Quantize the layer.
	sw, err := quantize.QuantizeSymmetricPerChannel(l.w, l.wShape, l.wAxis)
	if err != nil {
		return nil, err
	}
	bq, bs, err := quantize.QuantizeBias(l.b, l.inQ.Scale, sw.Scales)
	if err != nil {
		return nil, err
	}
	var obs quantize.RangeObserver
	x := make([]float32, l.inH*l.inW*l.inC)
	pre := make([]float32, l.outH*l.outW*l.outC)
	pass := make([]bool, len(pre))
	for _, in := range trainIn {
		dequant(in, l.inQ, x)
		l.forward(x, l.w, l.b, pre)
		l.activate(pre, pass)
		obs.Observe(pre...)
	}
	p, err := obs.ParamsInt8()
	if err != nil {
		return nil, err
	}
	j.layer = &QuantLayer{Op: l.op, Weights: sw.Values, WeightScales: sw.Scales, Bias: bq, BiasScales: bs, Output: Quant{p.Scale, p.ZeroPoint}}

	// Exact int8 embeddings through the new layer.
	it, err := l.int8Interpreter(j.layer)
	if err != nil {
		return nil, fmt.Errorf("quantized layer: %w", err)
	}
	inT, outT := it.Inputs()[0].Int8s(), it.Outputs()[0].Int8s()
	for i := range j.views {
		copy(inT, j.views[i].layerIn)
		if err := it.Invoke(); err != nil {
			return nil, err
		}
		copy(j.views[i].embed, outT)
	}
	// The final head, on the new embeddings.
	j.fm = newFeatureMap(j.head.EmbedShape, j.layer.Output, fm.segments())
	train2, val2 := j.samples()
	j.fm.fit(xsOf(train2))
	cfg2 := cfg
	cfg2.seed = cfg.seed + 1
	progress := cfg.progress
	cfg2.progress = func(epoch int, tl, vl, va float64) {
		if progress != nil {
			progress(st.epochs+epoch, tl, vl, va)
		}
	}
	lin, st2, err := trainHead(j.fm, classes, train2, val2, cfg2)
	if err != nil {
		return nil, err
	}
	j.report.Epochs += st2.epochs
	return lin, nil
}

func dequant(x []int8, q Quant, dst []float32) {
	for i, v := range x {
		dst[i] = q.Scale * float32(int32(v)-q.ZeroPoint)
	}
}

// int8Interpreter builds a one-operator model of the quantized layer, to
// compute embeddings exactly as the written model will.
func (l *convLayer) int8Interpreter(q *QuantLayer) (*runtime.Interpreter, error) {
	var m builder.Model
	in := m.AddTensor(builder.Tensor{Name: l.inName, Type: tflite.TensorTypeINT8, Shape: []int{1, l.inH, l.inW, l.inC},
		Scale: []float32{l.inQ.Scale}, ZeroPoint: []int64{int64(l.inQ.ZeroPoint)}})
	w := m.AddTensor(builder.Tensor{Name: l.wName, Type: tflite.TensorTypeINT8, Shape: l.wShape, Data: builder.Int8Data(q.Weights),
		Scale: q.WeightScales, ZeroPoint: make([]int64, len(q.WeightScales)), QuantizedDimension: l.wAxis})
	b := m.AddTensor(builder.Tensor{Name: l.bName, Type: tflite.TensorTypeINT32, Shape: []int{l.outC}, Data: builder.Int32Data(q.Bias),
		Scale: q.BiasScales, ZeroPoint: make([]int64, len(q.BiasScales))})
	out := m.AddTensor(builder.Tensor{Name: "embedding", Type: tflite.TensorTypeINT8, Shape: []int{1, l.outH, l.outW, l.outC},
		Scale: []float32{q.Output.Scale}, ZeroPoint: []int64{int64(q.Output.ZeroPoint)}})
	m.AddOp(builder.Op{Builtin: l.code, Version: l.version, Inputs: []int{in, w, b}, Outputs: []int{out}, Options: l.options})
	m.Inputs, m.Outputs = []int{in}, []int{out}
	raw, err := m.Bytes()
	if err != nil {
		return nil, err
	}
	model, err := runtime.LoadModel(raw)
	if err != nil {
		return nil, err
	}
	return runtime.NewInterpreter(model, nil)
}

// trainConvAndHead trains the layer's weights and bias and a head on the
// pooled, standardized features of its output (standardization fixed from
// the original layer), with Adam and early stopping on val; the best
// epoch's layer is kept in l.
func trainConvAndHead(l *convLayer, fm *featureMap, classes int, train, val []sample, trainIn, valIn [][]int8, cfg trainConfig) (*linearHead, trainStats, error) {
	h := &linearHead{classes: classes, dim: fm.out, w: make([]float32, classes*fm.out), b: make([]float32, classes)}
	rng := rand.New(rand.NewPCG(cfg.seed, 0x6465657000000000))
	sd := float32(math.Sqrt(1.0 / float64(fm.out)))
	for i := range h.w {
		h.w[i] = float32(rng.NormFloat64()) * sd * 0.1
	}
	params := [][]float32{h.w, h.b, l.w, l.b}
	lrScale := []float64{1, 1, 0.5, 0.5}
	grads := make([][]float32, len(params))
	m1 := make([][]float32, len(params))
	m2 := make([][]float32, len(params))
	for i, p := range params {
		grads[i] = make([]float32, len(p))
		m1[i] = make([]float32, len(p))
		m2[i] = make([]float32, len(p))
	}
	cw := classWeights(train, classes)
	nIn := l.inH * l.inW * l.inC
	nOut := l.outH * l.outW * l.outC
	x := make([]float32, nIn)
	pre := make([]float32, nOut)
	pass := make([]bool, nOut)
	gAct := make([]float32, nOut)
	z := make([]float32, fm.out)
	gz := make([]float32, fm.out)
	logits := make([]float32, classes)
	probs := make([]float32, classes)

	// features runs the layer and the feature map on one sample.
	features := func(in []int8) {
		dequant(in, l.inQ, x)
		l.forward(x, l.w, l.b, pre)
		l.activate(pre, pass)
		pooled := z
		rawFeatures(fm, pre, pooled)
		for i := range pooled {
			pooled[i] = (pooled[i] - fm.mean[i]) * fm.inv[i]
		}
	}
	evaluate := func() (float64, float64) {
		vw := classWeights(val, classes)
		var loss, ws float64
		correct := 0
		for i, s := range val {
			features(valIn[i])
			h.logits(z, nil, logits)
			softmax(logits, probs)
			loss -= float64(vw[s.label]) * math.Log(math.Max(float64(probs[s.label]), 1e-12))
			ws += float64(vw[s.label])
			if argmax(logits) == s.label {
				correct++
			}
		}
		return loss / math.Max(ws, 1e-12), float64(correct) / float64(max(len(val), 1))
	}

	const b1, b2, eps = 0.9, 0.999, 1e-8
	best := trainStats{valLoss: math.Inf(1)}
	bestParams := make([][]float32, len(params))
	for i, p := range params {
		bestParams[i] = slices.Clone(p)
	}
	stale, step := 0, 0
	var st trainStats
	for epoch := 1; epoch <= cfg.epochs; epoch++ {
		if cfg.stop != nil && cfg.stop() {
			return nil, st, errCanceled
		}
		order := epochOrder(rng, len(train), cfg.batch)
		var lossSum, weightSum float64
		for start := 0; start < len(order); start += cfg.batch {
			end := min(start+cfg.batch, len(order))
			for _, g := range grads {
				clear(g)
			}
			var bw float64
			for _, idx := range order[start:end] {
				s := &train[idx]
				features(trainIn[idx])
				h.logits(z, nil, logits)
				softmax(logits, probs)
				w := cw[s.label] * s.weight
				bw += float64(w)
				lossSum += float64(w) * crossEntropy(probs, s.label, cfg.smoothing, 0, classes)
				weightSum += float64(w)
				clear(gz)
				for c := range classes {
					g := (probs[c] - target(c, s.label, cfg.smoothing, 0, classes)) * w
					if g == 0 {
						continue
					}
					grads[1][c] += g
					row := h.w[c*fm.out : (c+1)*fm.out]
					grow := grads[0][c*fm.out : (c+1)*fm.out]
					for i, v := range z {
						grow[i] += g * v
						gz[i] += g * row[i]
					}
				}
				for i := range gz {
					gz[i] *= fm.inv[i]
				}
				expandGrad(fm, gz, gAct)
				for i, ok := range pass {
					if !ok {
						gAct[i] = 0
					}
				}
				l.backward(x, gAct, grads[2], grads[3])
			}
			if bw == 0 {
				continue
			}
			step++
			inv := float32(1 / bw)
			corr := math.Sqrt(1-math.Pow(b2, float64(step))) / (1 - math.Pow(b1, float64(step)))
			for pi, p := range params {
				lr := float32(cfg.lr * lrScale[pi] * corr)
				decay := float32(1)
				if pi == 0 {
					decay = float32(1 - cfg.lr*cfg.weightDecay)
				}
				for i, g := range grads[pi] {
					g *= inv
					m1[pi][i] = b1*m1[pi][i] + (1-b1)*g
					m2[pi][i] = b2*m2[pi][i] + (1-b2)*g*g
					p[i] = p[i]*decay - lr*m1[pi][i]/(float32(math.Sqrt(float64(m2[pi][i])))+eps)
				}
			}
		}
		st = trainStats{epochs: epoch, trainLoss: lossSum / math.Max(weightSum, 1e-12)}
		if len(val) > 0 {
			st.valLoss, st.valAcc = evaluate()
		}
		if cfg.progress != nil {
			cfg.progress(epoch, st.trainLoss, st.valLoss, st.valAcc)
		}
		if len(val) == 0 {
			best = st
			best.bestEpoch = epoch
			for i, p := range params {
				copy(bestParams[i], p)
			}
			continue
		}
		if st.valLoss < best.valLoss-1e-4 {
			best = st
			best.bestEpoch = epoch
			for i, p := range params {
				copy(bestParams[i], p)
			}
			stale = 0
		} else if stale++; cfg.patience > 0 && stale >= cfg.patience {
			break
		}
	}
	for i, p := range params {
		copy(p, bestParams[i])
	}
	best.epochs = st.epochs
	return h, best, nil
}

// rawFeatures pools float activations (the embedding's layout) as
// featureMap.raw pools dequantized int8 ones.
func rawFeatures(f *featureMap, act, dst []float32) {
	if f.segStart == nil {
		copy(dst, act)
		return
	}
	clear(dst[:f.out])
	for s := 0; s+1 < len(f.segStart); s++ {
		a, b := f.segStart[s], f.segStart[s+1]
		seg := dst[s*f.inner : (s+1)*f.inner]
		for t := a; t < b; t++ {
			for i, v := range act[t*f.inner : (t+1)*f.inner] {
				seg[i] += v
			}
		}
		k := 1 / float32(b-a)
		for i := range seg {
			seg[i] *= k
		}
	}
}

// expandGrad spreads a feature gradient back over the activations.
func expandGrad(f *featureMap, g, dst []float32) {
	if f.segStart == nil {
		copy(dst, g)
		return
	}
	for s := 0; s+1 < len(f.segStart); s++ {
		a, b := f.segStart[s], f.segStart[s+1]
		k := 1 / float32(b-a)
		for t := a; t < b; t++ {
			row := dst[t*f.inner : (t+1)*f.inner]
			for i := range row {
				row[i] = g[s*f.inner+i] * k
			}
		}
	}
}
