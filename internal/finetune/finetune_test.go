package finetune

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

func TestFindHead(t *testing.T) {
	m, h := loadTiny(t, tinyModel(t, 3, true, 1))
	g := m.Subgraphs[0]
	if h.Op != 1 || h.Classes != 3 || h.Dim != tinyDim || h.Layer != 0 || h.Bias < 0 {
		t.Fatalf("head %+v", h)
	}
	if !slices.Equal(h.Tail, []int{2, 3}) || g.Tensors[h.TailTensors[1]].Name != "probabilities" {
		t.Fatalf("tail %v %v", h.Tail, h.TailTensors)
	}
	if h.Embed != tinyEmbed || h.Logits != tinyLogit || h.SoftmaxBeta != 1 {
		t.Fatalf("quantization %+v %+v beta %g", h.Embed, h.Logits, h.SoftmaxBeta)
	}
	if !slices.Equal(h.EmbedShape, []int{1, tinyT, tinyF, tinyC}) {
		t.Fatalf("embedding shape %v", h.EmbedShape)
	}
}

func TestFindHeadRejects(t *testing.T) {
	// No FULLY_CONNECTED at all.
	var m builder.Model
	in := m.AddTensor(builder.Tensor{Name: "in", Type: tflite.TensorTypeINT8, Shape: []int{1, 4}, Scale: []float32{1}, ZeroPoint: []int64{0}})
	out := m.AddTensor(builder.Tensor{Name: "out", Type: tflite.TensorTypeINT8, Shape: []int{1, 4}, Scale: []float32{1.0 / 256}, ZeroPoint: []int64{-128}})
	m.AddOp(builder.Op{Builtin: tflite.BuiltinOperatorSOFTMAX, Inputs: []int{in}, Outputs: []int{out},
		Options: &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsSoftmaxOptions, Value: &tflite.SoftmaxOptionsT{Beta: 1}}})
	m.Inputs, m.Outputs = []int{in}, []int{out}
	raw, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	model, err := runtime.LoadModel(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := FindHead(model, raw); !errors.Is(err, ErrNoHead) {
		t.Fatalf("model without FULLY_CONNECTED: %v", err)
	}

	// A head whose scores feed an ADD is not a classification head.
	var m2 builder.Model
	in = m2.AddTensor(builder.Tensor{Name: "in", Type: tflite.TensorTypeINT8, Shape: []int{1, 4}, Scale: []float32{0.1}, ZeroPoint: []int64{0}})
	w := m2.AddTensor(builder.Tensor{Name: "w", Type: tflite.TensorTypeINT8, Shape: []int{2, 4}, Data: make([]byte, 8), Scale: []float32{0.1}, ZeroPoint: []int64{0}})
	l := m2.AddTensor(builder.Tensor{Name: "logits", Type: tflite.TensorTypeINT8, Shape: []int{1, 2}, Scale: []float32{0.1}, ZeroPoint: []int64{0}})
	sum := m2.AddTensor(builder.Tensor{Name: "sum", Type: tflite.TensorTypeINT8, Shape: []int{1, 2}, Scale: []float32{0.1}, ZeroPoint: []int64{0}})
	m2.AddOp(builder.Op{Builtin: tflite.BuiltinOperatorFULLY_CONNECTED, Inputs: []int{in, w}, Outputs: []int{l},
		Options: &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsFullyConnectedOptions, Value: &tflite.FullyConnectedOptionsT{}}})
	m2.AddOp(builder.Op{Builtin: tflite.BuiltinOperatorADD, Inputs: []int{l, l}, Outputs: []int{sum},
		Options: &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsAddOptions, Value: &tflite.AddOptionsT{}}})
	m2.Inputs, m2.Outputs = []int{in}, []int{sum}
	raw, err = m2.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if model, err = runtime.LoadModel(raw); err != nil {
		t.Fatal(err)
	}
	if _, err := FindHead(model, raw); !errors.Is(err, ErrNoHead) {
		t.Fatalf("head followed by ADD: %v", err)
	}
}

// TestWriteModel replaces the head of the tiny model with one of a
// different class count and checks everything the writer promises.
func TestWriteModel(t *testing.T) {
	for _, withBias := range []bool{true, false} {
		raw := tinyModel(t, 3, withBias, 2)
		base, h := loadTiny(t, raw)
		const classes = 5
		rng := rand.New(rand.NewPCG(3, 3))
		q := &QuantHead{Classes: classes, Dim: tinyDim, Logits: Quant{0.07, -3}}
		for range classes * tinyDim {
			q.Weights = append(q.Weights, int8(rng.IntN(255)-127))
		}
		for c := range classes {
			ws := float32(0.001 * float64(c+1))
			q.WeightScales = append(q.WeightScales, ws)
			q.Bias = append(q.Bias, int32(rng.IntN(5000)-2500))
			q.BiasScales = append(q.BiasScales, tinyEmbed.Scale*ws)
		}
		out, err := WriteModel(raw, h, q, nil)
		if err != nil {
			t.Fatal(err)
		}
		if string(out[4:8]) != "TFL3" {
			t.Fatalf("file identifier %q", out[4:8])
		}
		m, err := runtime.LoadModel(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := CompareModels(base, m, h, false); err != nil {
			t.Fatal(err)
		}
		g := m.Subgraphs[0]
		fc := g.Operators[h.Op]
		wt, bt := &g.Tensors[fc.Inputs[1]], &g.Tensors[fc.Inputs[2]]
		if !slices.Equal(wt.Shape, []int{classes, tinyDim}) || !bytes.Equal(wt.Data, builder.Int8Data(q.Weights)) ||
			!slices.Equal(wt.Quant.Scale, q.WeightScales) || wt.Quant.QuantizedDimension != 0 || slices.Max(wt.Quant.ZeroPoint) != 0 {
			t.Fatalf("weights %s %v", runtime.FormatShape(wt.Shape), wt.Quant)
		}
		if !bytes.Equal(bt.Data, builder.Int32Data(q.Bias)) || !slices.Equal(bt.Quant.Scale, q.BiasScales) {
			t.Fatalf("bias %v", bt.Quant)
		}
		// Constant data aligned to 16 bytes in the file, as converters write it.
		fbm := tflite.GetRootAsModel(out, 0)
		var fbuf tflite.Buffer
		for i := range fbm.BuffersLength() {
			fbm.Buffers(&fbuf, i)
			if d := fbuf.DataBytes(); len(d) > 0 {
				if off := uintptr(unsafe.Pointer(&d[0])) - uintptr(unsafe.Pointer(&out[0])); off%16 != 0 {
					t.Errorf("buffer %d at file offset %d, not 16-byte aligned", i, off)
				}
			}
		}
		lt := &g.Tensors[h.Output]
		if !slices.Equal(lt.Shape, []int{1, classes}) || lt.Quant.Scale[0] != 0.07 || lt.Quant.ZeroPoint[0] != -3 {
			t.Fatalf("logits %s %v", runtime.FormatShape(lt.Shape), lt.Quant)
		}
		shapeT := &g.Tensors[g.Operators[2].Inputs[1]]
		if !bytes.Equal(shapeT.Data, builder.Int32Data([]int32{1, classes})) {
			t.Fatalf("RESHAPE shape %v", shapeT.Data)
		}
		for _, ti := range h.TailTensors {
			if !slices.Equal(g.Tensors[ti].Shape, []int{1, classes}) {
				t.Fatalf("tail tensor %q %v", g.Tensors[ti].Name, g.Tensors[ti].Shape)
			}
		}
		if len(m.Metadata) != 1 || string(m.Metadata[0].Data) != "1.5.0" || m.Description != "finetune test model" {
			t.Fatalf("metadata %v description %q", m.Metadata, m.Description)
		}
		it, err := runtime.NewInterpreter(m, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := it.Invoke(); err != nil {
			t.Fatal(err)
		}
		if n := it.Outputs()[0].NumElements(); n != classes {
			t.Fatalf("%d outputs", n)
		}
	}
}

func TestWriteModelRejects(t *testing.T) {
	raw := tinyModel(t, 3, true, 2)
	_, h := loadTiny(t, raw)
	q := &QuantHead{Classes: 2, Dim: tinyDim, Weights: make([]int8, 2*tinyDim), WeightScales: []float32{1, 0}, Bias: []int32{0, 0}, BiasScales: []float32{1, 1}, Logits: Quant{1, 0}}
	if _, err := WriteModel(raw, h, q, nil); err == nil {
		t.Fatal("a zero weight scale was written")
	}
	q.WeightScales[1] = 1
	q.Weights = q.Weights[:10]
	if _, err := WriteModel(raw, h, q, nil); err == nil {
		t.Fatal("a head with too few weights was written")
	}
}

func TestFeatureMapExpand(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	shape := []int{1, tinyT, tinyF, tinyC}
	xs := make([][]int8, 20)
	for i := range xs {
		xs[i] = make([]int8, tinyDim)
		for j := range xs[i] {
			xs[i][j] = int8(rng.IntN(256) - 128)
		}
	}
	for _, segments := range []int{0, 1, 2, 4} {
		for _, proj := range []bool{false, true} {
			fm := newFeatureMap(shape, tinyEmbed, segments)
			if proj {
				w := make([]float32, 2*tinyDim)
				for i := range w {
					w[i] = float32(rng.NormFloat64())
				}
				fm.addProjections(w, []float32{0.5, -1})
			}
			fm.fit(xs)
			const classes = 3
			w := make([]float32, classes*fm.out)
			b := []float32{0.1, -0.2, 0.3}
			for i := range w {
				w[i] = float32(rng.NormFloat64())
			}
			W, B := fm.expand(w, b, classes)
			z := make([]float32, fm.out)
			for _, x := range xs {
				fm.apply(x, z)
				for c := range classes {
					var want, got float64
					want = float64(b[c])
					for i, v := range z {
						want += float64(w[c*fm.out+i]) * float64(v)
					}
					got = float64(B[c])
					for i, v := range x {
						got += float64(W[c*tinyDim+i]) * float64(tinyEmbed.Dequantize(v))
					}
					if math.Abs(got-want) > 1e-3*(1+math.Abs(want)) {
						t.Fatalf("segments %d proj %v class %d: expanded head gives %g, the feature head %g", segments, proj, c, got, want)
					}
				}
			}
		}
	}
}

// TestImprint checks weight imprinting on a tiny dataset whose class means
// are known: each class's row is the normalized mean of its normalized,
// centred examples, and every example goes to its class.
func TestImprint(t *testing.T) {
	// Embedding [1, 3] (no time axis): three classes along three axes.
	q := Quant{Scale: 0.5, ZeroPoint: 0}
	fm := newFeatureMap([]int{1, 3}, q, 0)
	var train []sample
	for c := range 3 {
		for k := range 4 {
			x := []int8{0, 0, 0}
			x[c] = int8(10 + k)
			x[(c+1)%3] = int8(k % 2)
			train = append(train, sample{x: x, label: c, weight: 1})
		}
	}
	fm.fit(xsOf(train))
	h := imprintHead(fm, 3, train, 0, nil)
	// Expected direction of class c: mean of normalized centred features.
	z := make([]float32, 3)
	for c := range 3 {
		mean := make([]float64, 3)
		for _, s := range train {
			if s.label != c {
				continue
			}
			fm.apply(s.x, z)
			n := norm(z)
			for i, v := range z {
				mean[i] += float64(v) / n
			}
		}
		mn := 0.0
		for _, v := range mean {
			mn += v * v
		}
		mn = math.Sqrt(mn)
		row := h.w[c*3 : (c+1)*3]
		rn := norm(row)
		for i := range 3 {
			if math.Abs(float64(row[i])/rn-mean[i]/mn) > 1e-5 {
				t.Fatalf("class %d row %v, want direction %v", c, row, mean)
			}
		}
		if h.b[c] != 0 {
			t.Fatalf("bias %v", h.b)
		}
	}
	logits := make([]float32, 3)
	for _, s := range train {
		fm.apply(s.x, z)
		h.logits(z, nil, logits)
		if argmax(logits) != s.label {
			t.Fatalf("example %v of class %d scores %v", s.x, s.label, logits)
		}
	}
}

func TestTrainDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	var train, val []sample
	for i := range 300 {
		c := i % 3
		x := make([]int8, tinyDim)
		for j := range x {
			x[j] = int8(rng.IntN(60) - 128)
		}
		for j := c * 10; j < c*10+10; j++ {
			x[j] += 50
		}
		s := sample{x: x, label: c, weight: 1}
		if i%5 == 0 {
			val = append(val, s)
		} else {
			train = append(train, s)
		}
	}
	run := func(seed uint64) *linearHead {
		fm := newFeatureMap([]int{1, tinyT, tinyF, tinyC}, tinyEmbed, 0)
		fm.fit(xsOf(train))
		h, st, err := trainHead(fm, 3, train, val, trainConfig{epochs: 8, batch: 16, patience: 3, lr: 0.01, weightDecay: 0.01, smoothing: 0.1, seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		if st.valAcc < 0.9 {
			t.Fatalf("validation accuracy %.3f on separable data", st.valAcc)
		}
		return h
	}
	a, b, c := run(7), run(7), run(8)
	if !slices.Equal(a.w, b.w) || !slices.Equal(a.b, b.b) {
		t.Fatal("two runs with the same seed differ")
	}
	if slices.Equal(a.w, c.w) {
		t.Fatal("different seeds gave the same weights")
	}
}

// TestRunTiny fine-tunes the tiny model in every mode and checks the
// written model: it loads, has the new classes and labels, keeps the rest,
// and its int8 logits match the float head's within the quantization error
// on held-out examples.
func TestRunTiny(t *testing.T) {
	raw := tinyModel(t, 3, true, 6)
	data := Data{Examples: tinyExamples(4, 40, 7)}
	held := tinyExamples(4, 10, 99)
	for _, mode := range []Mode{ModeImprint, ModeHead, ModeDeep} {
		t.Run(string(mode), func(t *testing.T) {
			opts := Options{Mode: mode, Seed: 1, Epochs: 15}
			res, err := Run(context.Background(), raw, data, opts)
			if err != nil {
				t.Fatal(err)
			}
			r := res.Report
			if !slices.Equal(res.Labels, []string{"a_class", "b_class", "c_class", "d_class"}) {
				t.Fatalf("labels %v", res.Labels)
			}
			if r.Agreement < 0.97 || r.Int8ValAccuracy < 0.9 || r.ValExamples == 0 {
				t.Fatalf("report %+v", r)
			}
			base, _ := loadTiny(t, raw)
			m, h := loadTiny(t, res.Model)
			if h.Classes != 4 {
				t.Fatalf("%d classes", h.Classes)
			}
			if err := CompareModels(base, m, h, mode == ModeDeep); err != nil {
				t.Fatal(err)
			}
			if mode != ModeDeep {
				if err := CompareModels(base, m, h, false); err != nil {
					t.Fatal(err)
				}
			}
			// Rebuild the float head the job trained, and compare logits.
			j := rerunJob(t, raw, data, opts)
			bb, err := NewBackbone(m, h)
			if err != nil {
				t.Fatal(err)
			}
			g := m.Subgraphs[0]
			ws := g.Tensors[h.Weights].Quant.Scale
			mean := j.meanEmbedding()
			float := make([]float32, 4)
			correct := 0
			for _, ex := range held {
				emb, _, logits, err := bb.Run(ex.Input)
				if err != nil {
					t.Fatal(err)
				}
				j.floatLogits(emb, h.Embed, float)
				if modelPrediction(bb.it.Outputs()[0], logits) == slices.Index(res.Labels, ex.Label) {
					correct++
				}
				for c := range 4 {
					// |int8 − float| ≤ Σ|x − mean|·w_scale/2 + bias and
					// output rounding, plus one output step.
					var bound float64
					for i, v := range emb {
						bound += math.Abs(float64(h.Embed.Dequantize(v))-mean[i]) * float64(ws[c]) / 2
					}
					bound += float64(h.Embed.Scale*ws[c])/2 + 1.5*float64(h.Logits.Scale)
					got := float64(h.Logits.Dequantize(logits[c]))
					lo, hi := h.Logits.Dequantize(-128), h.Logits.Dequantize(127)
					want := math.Min(math.Max(float64(float[c]), float64(lo)), float64(hi))
					if math.Abs(got-want) > bound {
						t.Fatalf("%s class %d: int8 logit %g, float %g, bound %g", ex.Name, c, got, want, bound)
					}
				}
			}
			if acc := float64(correct) / float64(len(held)); acc < 0.85 {
				t.Fatalf("held-out accuracy %.3f", acc)
			}
		})
	}
}

// rerunJob repeats a run's deterministic steps up to training, to get the
// float head back.
func rerunJob(t *testing.T, raw []byte, data Data, opts Options) *job {
	t.Helper()
	j, err := prepare(context.Background(), raw, data, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.train(); err != nil {
		t.Fatal(err)
	}
	// In deep mode the float head is on the quantized layer's int8
	// embeddings, as the written model's backbone gives them.
	return j
}

func TestRunDeterministicBytes(t *testing.T) {
	raw := tinyModel(t, 3, true, 6)
	data := Data{Examples: tinyExamples(3, 30, 8)}
	for _, mode := range []Mode{ModeHead, ModeDeep} {
		a, err := Run(context.Background(), raw, data, Options{Mode: mode, Seed: 3, Epochs: 5, Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		b, err := Run(context.Background(), raw, data, Options{Mode: mode, Seed: 3, Epochs: 5, Workers: 3})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Model, b.Model) {
			t.Fatalf("%s: same data and seed gave different models", mode)
		}
	}
}

// TestRunExtend adds a class to a model whose current classes have no
// examples: their rows, bias and the logits' quantization stay exactly
// as they were, so their logits are bit-identical to the original model's.
func TestRunExtend(t *testing.T) {
	raw := tinyModel(t, 3, true, 9)
	all := tinyExamples(4, 20, 10)
	var data Data
	for _, e := range all {
		if e.Label == "d_class" {
			data.Examples = append(data.Examples, e)
		}
	}
	base := []string{"a_class", "b_class", "c_class"}
	res, err := Run(context.Background(), raw, data, Options{Seed: 1, BaseLabels: base, Epochs: 10})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Labels, append(slices.Clone(base), "d_class")) || res.Report.Frozen != 3 || res.Report.Mode != ModeHead {
		t.Fatalf("labels %v frozen %d mode %s", res.Labels, res.Report.Frozen, res.Report.Mode)
	}
	m0, h0 := loadTiny(t, raw)
	m1, h1 := loadTiny(t, res.Model)
	if h1.Logits != h0.Logits {
		t.Fatalf("logits quantization %v, was %v", h1.Logits, h0.Logits)
	}
	b0, _ := NewBackbone(m0, h0)
	b1, _ := NewBackbone(m1, h1)
	for _, e := range all {
		_, _, l0, _ := b0.Run(e.Input)
		l0 = slices.Clone(l0)
		_, _, l1, _ := b1.Run(e.Input)
		if !slices.Equal(l0, l1[:3]) {
			t.Fatalf("%s: kept classes' logits %v, originally %v", e.Name, l1[:3], l0)
		}
	}
	// Without examples of the new class, there is nothing to learn.
	var only Data
	for _, e := range all {
		if e.Label == "a_class" {
			only.Examples = append(only.Examples, e)
		}
	}
	if _, err := Run(context.Background(), raw, only, Options{BaseLabels: base}); err == nil {
		t.Fatal("extend mode without new labels did not fail")
	}
	if _, err := Run(context.Background(), raw, data, Options{BaseLabels: base, Mode: ModeDeep}); err == nil {
		t.Fatal("deep mode in extend mode did not fail")
	}
}

func TestRunErrors(t *testing.T) {
	raw := tinyModel(t, 3, true, 6)
	ex := tinyExamples(2, 5, 1)
	cases := map[string]struct {
		data Data
		opts Options
	}{
		"no examples":           {Data{}, Options{}},
		"one class":             {Data{Examples: ex[:5]}, Options{}},
		"bad mode":              {Data{Examples: ex}, Options{Mode: "full"}},
		"base labels":           {Data{Examples: ex}, Options{BaseLabels: []string{"x"}}},
		"clips and no frontend": {Data{Clips: []Clip{{Label: "a", PCM: make([]int16, 100)}}}, Options{}},
		"wrong input":           {Data{Examples: []Example{{Label: "a", Input: make([]int8, 3)}, {Label: "b", Input: make([]int8, 3)}}}, Options{}},
	}
	for name, c := range cases {
		if _, err := Run(context.Background(), raw, c.data, c.opts); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, raw, Data{Examples: tinyExamples(3, 20, 1)}, Options{}); err == nil {
		t.Error("canceled run: no error")
	}
}

func TestSplitByGroup(t *testing.T) {
	var labels []int
	var groups []string
	for i := range 200 {
		labels = append(labels, i%4)
		groups = append(groups, string(rune('A'+i%25)))
	}
	labels = append(labels, 3, 3) // class 3: 52 examples
	groups = append(groups, "Z", "Z")
	val := splitByGroup(labels, groups, 5, 0.2, 1)
	inVal := map[string]bool{}
	inTrain := map[string]bool{}
	counts := make([]int, 4)
	for i, v := range val {
		if v {
			inVal[groups[i]] = true
			counts[labels[i]]++
		} else {
			inTrain[groups[i]] = true
		}
	}
	for g := range inVal {
		if inTrain[g] {
			t.Fatalf("group %s on both sides", g)
		}
	}
	for c, n := range counts {
		if n == 0 || n > 11 {
			t.Errorf("class %d: %d validation examples", c, n)
		}
	}
	if !slices.Equal(val, splitByGroup(labels, groups, 5, 0.2, 1)) {
		t.Fatal("split not deterministic")
	}
}

func TestAugmentKeepsInput(t *testing.T) {
	pcm := make([]int16, 16000)
	for i := range pcm {
		pcm[i] = int16(1000 * math.Sin(float64(i)/10))
	}
	orig := slices.Clone(pcm)
	a := DefaultAugment
	dst := make([]float64, 16000)
	a.augmentPCM(viewRNG(1, 0, 1), pcm, [][]int16{orig}, false, dst)
	if !slices.Equal(pcm, orig) {
		t.Fatal("augmentation changed its input")
	}
	again := make([]float64, 16000)
	a.augmentPCM(viewRNG(1, 0, 1), pcm, [][]int16{orig}, false, again)
	if !slices.Equal(dst, again) {
		t.Fatal("augmentation not reproducible")
	}
}

// quantization must use the scale the model stores: dequantizing the
// written weights reproduces the float weights within half a step.
func TestQuantizeHeadRoundTrip(t *testing.T) {
	raw := tinyModel(t, 3, true, 6)
	data := Data{Examples: tinyExamples(3, 30, 8)}
	j := rerunJob(t, raw, data, Options{Seed: 2, Epochs: 5})
	q, err := j.quantizeHead()
	if err != nil {
		t.Fatal(err)
	}
	for c := range q.Classes {
		maxAbs := 0.0
		for i := range q.Dim {
			w := float64(j.headW[c*q.Dim+i])
			maxAbs = math.Max(maxAbs, math.Abs(w))
			if d := math.Abs(w - float64(q.Weights[c*q.Dim+i])*float64(q.WeightScales[c])); d > float64(q.WeightScales[c])/2*1.0001 {
				t.Fatalf("class %d weight %d off by %g (scale %g)", c, i, d, q.WeightScales[c])
			}
		}
		if s := float32(maxAbs / 127); s != q.WeightScales[c] {
			t.Fatalf("class %d scale %g, want max/127 = %g", c, q.WeightScales[c], s)
		}
		if q.BiasScales[c] != j.head.Embed.Scale*q.WeightScales[c] {
			t.Fatalf("bias scale %g, want input × weight scale", q.BiasScales[c])
		}
	}
	if q.Logits.Scale <= 0 {
		t.Fatalf("logits %+v", q.Logits)
	}
	// Bias correction: on the training views, the quantized weights and
	// bias give the float head's logits on average (up to the bias's own
	// rounding), however far the embedding is from zero.
	var n int
	shift := make([]float64, q.Classes)
	for _, v := range j.views {
		if v.example >= 0 && j.isVal[v.example] {
			continue
		}
		n++
		for c := range q.Classes {
			var d float64
			for i, x := range v.embed {
				w := float64(j.headW[c*q.Dim+i])
				wq := float64(q.Weights[c*q.Dim+i]) * float64(q.WeightScales[c])
				d += (wq - w) * float64(tinyEmbed.Dequantize(x))
			}
			d += float64(q.Bias[c])*float64(q.BiasScales[c]) - float64(j.headB[c])
			shift[c] += d
		}
	}
	for c := range shift {
		if m := shift[c] / float64(n); math.Abs(m) > float64(q.BiasScales[c]) {
			t.Errorf("class %d: the int8 head's logits are %g off the float head's on average", c, m)
		}
	}
	// The logits' quantization covers the training views' float logits.
	lo, hi := q.Logits.Dequantize(-128), q.Logits.Dequantize(127)
	logits := make([]float32, q.Classes)
	for _, v := range j.views {
		j.floatLogits(v.embed, tinyEmbed, logits)
		for _, l := range logits {
			if l < lo-q.Logits.Scale || l > hi+q.Logits.Scale {
				t.Fatalf("logit %g outside the calibrated range [%g, %g]", l, lo, hi)
			}
		}
	}
}
