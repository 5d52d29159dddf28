package runtime_test

import (
	"cmp"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/flexbuffers"
	"github.com/edged/edged/internal/runtime/tflite"
	"github.com/edged/edged/internal/testenv"
)

// detppOpts are TFLite_Detection_PostProcess options for tests.
type detppOpts struct {
	maxDetections, maxClassesPerDetection, detectionsPerClass, numClasses int
	regular                                                               bool
	scoreThreshold, iouThreshold                                          float32
	yScale, xScale, hScale, wScale                                        float32
}

func (o detppOpts) bytes() []byte {
	return flexbuffers.NewMap().
		Int("max_detections", int64(o.maxDetections)).
		Int("max_classes_per_detection", int64(o.maxClassesPerDetection)).
		Int("detections_per_class", int64(o.detectionsPerClass)).
		Int("num_classes", int64(o.numClasses)).
		Bool("use_regular_nms", o.regular).
		Float("nms_score_threshold", float64(o.scoreThreshold)).
		Float("nms_iou_threshold", float64(o.iouThreshold)).
		Float("y_scale", float64(o.yScale)).
		Float("x_scale", float64(o.xScale)).
		Float("h_scale", float64(o.hScale)).
		Float("w_scale", float64(o.wScale)).
		Bool("_output_quantized", true).
		Bytes()
}

// detppQ is an input's type and quantization.
type detppQ struct {
	typ   tflite.TensorType
	scale float32
	zp    int64
}

var detppF32 = detppQ{typ: tflite.TensorTypeFLOAT32}

// detppCase is one operator instance: shapes, types, constant anchors and
// the input values (real values for float inputs, quantized for others).
type detppCase struct {
	opts                 detppOpts
	numBoxes, boxStride  int
	background           bool
	boxQ, classQ, anchQ  detppQ
	boxes, classes, anch []float64 // float inputs: values; quantized: integers
	custom               []byte    // custom options overriding opts
	outShapes            [][]int   // declared output shapes; nil: [] (unknown)
}

func (c *detppCase) classStride() int {
	if c.background {
		return c.opts.numClasses + 1
	}
	return c.opts.numClasses
}

func detppData(q detppQ, v []float64) []byte {
	switch q.typ {
	case tflite.TensorTypeFLOAT32:
		f := make([]float32, len(v))
		for i, x := range v {
			f[i] = float32(x)
		}
		return builder.Float32Data(f)
	case tflite.TensorTypeINT8:
		b := make([]byte, len(v))
		for i, x := range v {
			b[i] = byte(int8(x))
		}
		return b
	}
	b := make([]byte, len(v))
	for i, x := range v {
		b[i] = byte(x)
	}
	return b
}

func detppTensor(name string, q detppQ, shape []int) builder.Tensor {
	t := builder.Tensor{Name: name, Type: q.typ, Shape: shape}
	if q.typ != tflite.TensorTypeFLOAT32 {
		t.Scale, t.ZeroPoint = []float32{q.scale}, []int64{q.zp}
	}
	return t
}

func (c *detppCase) model() *builder.Model {
	m := &builder.Model{}
	boxes := m.AddTensor(detppTensor("boxes", c.boxQ, []int{1, c.numBoxes, c.boxStride}))
	classes := m.AddTensor(detppTensor("classes", c.classQ, []int{1, c.numBoxes, c.classStride()}))
	at := detppTensor("anchors", c.anchQ, []int{c.numBoxes, 4})
	at.Data = detppData(c.anchQ, c.anch)
	anchors := m.AddTensor(at)
	var outs []int
	for i, name := range []string{"detection_boxes", "detection_classes", "detection_scores", "num_detections"} {
		var shape []int
		if c.outShapes != nil {
			shape = c.outShapes[i]
		}
		outs = append(outs, m.AddTensor(builder.Tensor{Name: name, Type: tflite.TensorTypeFLOAT32, Shape: shape}))
	}
	custom := c.custom
	if custom == nil {
		custom = c.opts.bytes()
	}
	m.AddOp(builder.Op{Builtin: tflite.BuiltinOperatorCUSTOM, Custom: "TFLite_Detection_PostProcess",
		Inputs: []int{boxes, classes, anchors}, Outputs: outs, CustomOptions: custom})
	m.Inputs = []int{boxes, classes}
	m.Outputs = outs
	return m
}

// detppResult is the four outputs.
type detppResult struct {
	boxes, classes, scores []float32
	num                    float32
}

func detppRun(t *testing.T, c *detppCase) (detppResult, error) {
	t.Helper()
	it, err := runtime.NewInterpreter(buildModel(t, c.model()), nil)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	return detppInvoke(t, it, c)
}

func detppInvoke(t *testing.T, it *runtime.Interpreter, c *detppCase) (detppResult, error) {
	t.Helper()
	if err := it.Inputs()[0].CopyFrom(detppData(c.boxQ, c.boxes)); err != nil {
		t.Fatal(err)
	}
	if err := it.Inputs()[1].CopyFrom(detppData(c.classQ, c.classes)); err != nil {
		t.Fatal(err)
	}
	if err := it.Invoke(); err != nil {
		return detppResult{}, err
	}
	o := it.Outputs()
	return detppResult{
		boxes:   float32s(o[0].Bytes()),
		classes: float32s(o[1].Bytes()),
		scores:  float32s(o[2].Bytes()),
		num:     float32s(o[3].Bytes())[0],
	}, nil
}

// detppDequantize gives an input's real values: float inputs as float32,
// quantized ones as float(double(scale) * (q - zero point)).
func detppDequantize(q detppQ, v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		if q.typ == tflite.TensorTypeFLOAT32 {
			out[i] = float32(x)
		} else {
			out[i] = float32(float64(q.scale) * (x - float64(q.zp)))
		}
	}
	return out
}

// detppOracle is an independent straightforward model of the operator:
// decode every box, then greedy NMS over score-sorted candidates (stable:
// equal scores by lower anchor index), brute force. ok is false where the
// operator must fail (a decoded box that is empty or inverted).
func detppOracle(c *detppCase) (res detppResult, ok bool) {
	o := c.opts
	enc := detppDequantize(c.boxQ, c.boxes)
	anch := detppDequantize(c.anchQ, c.anch)
	scores := detppDequantize(c.classQ, c.classes)
	n, stride, off := c.numBoxes, c.classStride(), c.classStride()-o.numClasses

	decoded := make([][4]float32, n)
	for i := range n {
		e := enc[i*c.boxStride : i*c.boxStride+4]
		a := anch[4*i : 4*i+4]
		yc := float32(float64(float64(e[0])/float64(o.yScale)*float64(a[2])) + float64(a[0]))
		xc := float32(float64(float64(e[1])/float64(o.xScale)*float64(a[3])) + float64(a[1]))
		hh := float32(0.5 * math.Exp(float64(e[2])/float64(o.hScale)) * float64(a[2]))
		hw := float32(0.5 * math.Exp(float64(e[3])/float64(o.wScale)) * float64(a[3]))
		decoded[i] = [4]float32{yc - hh, xc - hw, yc + hh, xc + hw}
		if !(decoded[i][0] < decoded[i][2]) || !(decoded[i][1] < decoded[i][3]) {
			return res, false
		}
	}
	iou := func(a, b [4]float32) float32 {
		areaA := float32((a[2] - a[0]) * (a[3] - a[1]))
		areaB := float32((b[2] - b[0]) * (b[3] - b[1]))
		if areaA <= 0 || areaB <= 0 {
			return 0
		}
		h := float32(math.Min(float64(a[2]), float64(b[2]))) - float32(math.Max(float64(a[0]), float64(b[0])))
		w := float32(math.Min(float64(a[3]), float64(b[3]))) - float32(math.Max(float64(a[1]), float64(b[1])))
		inter := float32(max(h, 0) * max(w, 0))
		return inter / (float32(areaA+areaB) - inter)
	}
	// nms returns the anchors selected among those with score >= the
	// threshold, best first, at most limit.
	nms := func(score func(a int) float32, limit int) []int {
		var cand []int
		for a := range n {
			if score(a) >= o.scoreThreshold {
				cand = append(cand, a)
			}
		}
		slices.SortStableFunc(cand, func(a, b int) int { return cmp.Compare(score(b), score(a)) })
		var sel []int
		for _, a := range cand {
			if len(sel) == limit {
				break
			}
			keep := true
			for _, s := range sel {
				if iou(decoded[s], decoded[a]) > o.iouThreshold {
					keep = false
					break
				}
			}
			if keep {
				sel = append(sel, a)
			}
		}
		return sel
	}

	entries := o.maxDetections * o.maxClassesPerDetection
	res = detppResult{boxes: make([]float32, 4*entries), classes: make([]float32, entries), scores: make([]float32, entries)}
	put := func(slot, anchor, class int, score float32) {
		copy(res.boxes[4*slot:], decoded[anchor][:])
		res.classes[slot] = float32(class)
		res.scores[slot] = score
	}
	classScore := func(a, class int) float32 { return scores[a*stride+off+class] }
	if !o.regular {
		perAnchor := min(o.maxClassesPerDetection, o.numClasses)
		order := make([][]int, n)
		best := make([]float32, n)
		for a := range n {
			if perAnchor == 1 {
				// The best class, the first of equal ones; a NaN never
				// replaces the current best (nor is it replaced).
				b := 0
				for cl := 1; cl < o.numClasses; cl++ {
					if classScore(a, cl) > classScore(a, b) {
						b = cl
					}
				}
				order[a] = []int{b}
			} else {
				order[a] = make([]int, o.numClasses)
				for cl := range order[a] {
					order[a][cl] = cl
				}
				slices.SortStableFunc(order[a], func(x, y int) int { return cmp.Compare(classScore(a, y), classScore(a, x)) })
			}
			best[a] = classScore(a, order[a][0])
		}
		sel := nms(func(a int) float32 { return best[a] }, o.maxDetections)
		for d, a := range sel {
			for col := range perAnchor {
				put(o.maxClassesPerDetection*d+col, a, order[a][col], classScore(a, order[a][col]))
			}
		}
		res.num = float32(len(sel))
		return res, true
	}
	type det struct {
		anchor, class int
		score         float32
	}
	var all []det
	for cl := range o.numClasses {
		for _, a := range nms(func(a int) float32 { return classScore(a, cl) }, o.detectionsPerClass) {
			all = append(all, det{a, cl, classScore(a, cl)})
		}
	}
	slices.SortStableFunc(all, func(x, y det) int { return cmp.Compare(y.score, x.score) })
	if len(all) > o.maxDetections {
		all = all[:o.maxDetections]
	}
	for i, d := range all {
		put(i, d.anchor, d.class, d.score)
	}
	res.num = float32(len(all))
	return res, true
}

// detppEqual compares results bit for bit (so -0 and NaN count).
func detppEqual(t *testing.T, got, want detppResult) {
	t.Helper()
	bits := func(name string, g, w []float32) {
		t.Helper()
		if len(g) != len(w) {
			t.Fatalf("%s: %d values, want %d", name, len(g), len(w))
		}
		for i := range g {
			if math.Float32bits(g[i]) != math.Float32bits(w[i]) {
				t.Fatalf("%s[%d] = %v, want %v\ngot  %v\nwant %v", name, i, g[i], w[i], g, w)
			}
		}
	}
	bits("num_detections", []float32{got.num}, []float32{want.num})
	bits("scores", got.scores, want.scores)
	bits("classes", got.classes, want.classes)
	bits("boxes", got.boxes, want.boxes)
}

// detppHand is a 4-anchor case whose detections follow by hand: anchors of
// size 0.25 centred at (0.5,0.5), (0.5,0.625), (0.25,0.25), (0.75,0.75) with
// zero encodings, so the boxes are the anchors; boxes 0 and 1 overlap with
// IoU 1/3, the others only touch box 0 at a corner (IoU 0).
func detppHand() *detppCase {
	return &detppCase{
		opts: detppOpts{maxDetections: 3, maxClassesPerDetection: 1, detectionsPerClass: 2, numClasses: 2,
			scoreThreshold: 0.25, iouThreshold: 0.3, yScale: 10, xScale: 10, hScale: 5, wScale: 5},
		numBoxes: 4, boxStride: 4, background: true,
		boxQ: detppF32, classQ: detppF32, anchQ: detppF32,
		boxes: make([]float64, 16),
		anch: []float64{
			0.5, 0.5, 0.25, 0.25,
			0.5, 0.625, 0.25, 0.25,
			0.25, 0.25, 0.25, 0.25,
			0.75, 0.75, 0.25, 0.25,
		},
		classes: []float64{
			0, 0.9, 0.1,
			0, 0.8, 0.7,
			0, 0.2, 0.6,
			0, 0.05, 0.3,
		},
	}
}

var detppHandBoxes = [][4]float32{
	{0.375, 0.375, 0.625, 0.625},
	{0.375, 0.5, 0.625, 0.75},
	{0.125, 0.125, 0.375, 0.375},
	{0.625, 0.625, 0.875, 0.875},
}

// detppExpect builds a result from (anchor, class, score) triples, padded
// with zeros to entries.
func detppExpect(entries int, dets ...[3]float64) detppResult {
	r := detppResult{boxes: make([]float32, 4*entries), classes: make([]float32, entries), scores: make([]float32, entries), num: float32(len(dets))}
	for i, d := range dets {
		copy(r.boxes[4*i:], detppHandBoxes[int(d[0])][:])
		r.classes[i] = float32(d[1])
		r.scores[i] = float32(d[2])
	}
	return r
}

func detppWithNum(num float32, r detppResult) detppResult {
	r.num = num
	return r
}

func TestDetectionPostprocessByHand(t *testing.T) {
	f := func(x float64) float64 { return float64(float32(x)) }
	for _, tc := range []struct {
		name string
		edit func(c *detppCase)
		want detppResult
	}{
		// Fast: best classes a0 c0 .9, a1 c0 .8, a2 c1 .6, a3 c1 .3; a1 is
		// suppressed by a0 (IoU 1/3 > 0.3).
		{"fast", nil, detppExpect(3, [3]float64{0, 0, f(0.9)}, [3]float64{2, 1, f(0.6)}, [3]float64{3, 1, f(0.3)})},
		// IoU 1/3 <= 0.5 keeps a1; max_detections 3 drops a3.
		{"fast iou 0.5", func(c *detppCase) { c.opts.iouThreshold = 0.5 },
			detppExpect(3, [3]float64{0, 0, f(0.9)}, [3]float64{1, 0, f(0.8)}, [3]float64{2, 1, f(0.6)})},
		// IoU equal to the threshold (float(1/3) both) does not suppress.
		{"fast iou equal to threshold", func(c *detppCase) { c.opts.iouThreshold = float32(1.0 / 3) },
			detppExpect(3, [3]float64{0, 0, f(0.9)}, [3]float64{1, 0, f(0.8)}, [3]float64{2, 1, f(0.6)})},
		// Score threshold 0.65 keeps a0 and a1 only, a1 suppressed;
		// entries past num_detections are zero.
		{"fast threshold and padding", func(c *detppCase) { c.opts.scoreThreshold = 0.65; c.opts.maxDetections = 5 },
			detppExpect(5, [3]float64{0, 0, f(0.9)})},
		// Without a background column the class indices are the columns.
		{"fast no background", func(c *detppCase) {
			c.background = false
			c.classes = []float64{0.9, 0.1, 0.8, 0.7, 0.2, 0.6, 0.05, 0.3}
		}, detppExpect(3, [3]float64{0, 0, f(0.9)}, [3]float64{2, 1, f(0.6)}, [3]float64{3, 1, f(0.3)})},
		// The background column never counts, however high.
		{"fast background ignored", func(c *detppCase) {
			for a := range 4 {
				c.classes[3*a] = 5
			}
		}, detppExpect(3, [3]float64{0, 0, f(0.9)}, [3]float64{2, 1, f(0.6)}, [3]float64{3, 1, f(0.3)})},
		// Two classes per detection: slots of 2 per anchor; a2's second
		// class (0.2) is below the threshold but is still reported.
		// num_detections counts anchors, as in TensorFlow Lite.
		{"fast two classes per detection", func(c *detppCase) { c.opts.maxClassesPerDetection = 2; c.opts.maxDetections = 2 },
			detppWithNum(2, detppExpect(4, [3]float64{0, 0, f(0.9)}, [3]float64{0, 1, f(0.1)}, [3]float64{2, 1, f(0.6)}, [3]float64{2, 0, f(0.2)}))},
		// Three slots per anchor but two classes: the third slot of each
		// anchor stays zero.
		{"fast more slots than classes", func(c *detppCase) { c.opts.maxClassesPerDetection = 3; c.opts.maxDetections = 1 },
			detppWithNum(1, detppExpect(3, [3]float64{0, 0, f(0.9)}, [3]float64{0, 1, f(0.1)}))},
		// Regular: class 0 keeps a0 (a1 suppressed), class 1 keeps a1, a2
		// (detections_per_class 2 drops a3); merged by score.
		{"regular", func(c *detppCase) { c.opts.regular = true },
			detppExpect(3, [3]float64{0, 0, f(0.9)}, [3]float64{1, 1, f(0.7)}, [3]float64{2, 1, f(0.6)})},
		{"regular padding", func(c *detppCase) { c.opts.regular = true; c.opts.maxDetections = 6; c.opts.detectionsPerClass = 4 },
			detppExpect(6, [3]float64{0, 0, f(0.9)}, [3]float64{1, 1, f(0.7)}, [3]float64{2, 1, f(0.6)}, [3]float64{3, 1, f(0.3)})},
		// Regular with max_detections 2: the merge keeps the best two.
		{"regular max detections", func(c *detppCase) { c.opts.regular = true; c.opts.maxDetections = 2 },
			detppExpect(2, [3]float64{0, 0, f(0.9)}, [3]float64{1, 1, f(0.7)})},
		// Equal scores: lower anchor first, in both paths; a2 and a3 tie
		// at 0.5 and neither overlaps the other.
		{"fast ties", func(c *detppCase) {
			c.classes = []float64{0, 0.1, 0, 0, 0.1, 0, 0, 0.5, 0, 0, 0, 0.5}
		}, detppExpect(3, [3]float64{2, 0, 0.5}, [3]float64{3, 1, 0.5})},
		{"regular ties across classes", func(c *detppCase) {
			c.opts.regular = true
			c.classes = []float64{0, 0.1, 0, 0, 0.1, 0, 0, 0, 0.5, 0, 0.5, 0}
		}, detppExpect(3, [3]float64{3, 0, 0.5}, [3]float64{2, 1, 0.5})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := detppHand()
			if tc.edit != nil {
				tc.edit(c)
			}
			got, err := detppRun(t, c)
			if err != nil {
				t.Fatal(err)
			}
			detppEqual(t, got, tc.want)
			want, _ := detppOracle(c)
			detppEqual(t, got, want)
		})
	}
}

// detppRandom makes a random case: types, sizes, options and values, with
// boxes that decode to valid boxes and scores with many ties.
func detppRandom(rng *rand.Rand) *detppCase {
	types := []tflite.TensorType{tflite.TensorTypeFLOAT32, tflite.TensorTypeUINT8, tflite.TensorTypeINT8}
	c := &detppCase{
		numBoxes:   1 + rng.IntN(60),
		boxStride:  4 + rng.IntN(3),
		background: rng.IntN(2) == 0,
	}
	c.opts = detppOpts{
		maxDetections:          1 + rng.IntN(12),
		maxClassesPerDetection: 1,
		detectionsPerClass:     1 + rng.IntN(12),
		numClasses:             1 + rng.IntN(5),
		regular:                rng.IntN(2) == 0,
		scoreThreshold:         []float32{-20, 0, 0.25, 0.5, 1e-8}[rng.IntN(5)],
		iouThreshold:           []float32{1, 0.6, 0.5, 0.3, 0.01}[rng.IntN(5)],
		yScale:                 10, xScale: 10, hScale: 5, wScale: 5,
	}
	if rng.IntN(4) == 0 {
		c.opts.yScale, c.opts.xScale, c.opts.hScale, c.opts.wScale = 1+9*rng.Float32(), -1-9*rng.Float32(), 1+9*rng.Float32(), 1+9*rng.Float32()
	}
	if !c.opts.regular && rng.IntN(3) == 0 {
		c.opts.maxClassesPerDetection = 1 + rng.IntN(4)
	}
	pick := func() detppQ {
		switch types[rng.IntN(3)] {
		case tflite.TensorTypeUINT8:
			return detppQ{typ: tflite.TensorTypeUINT8}
		case tflite.TensorTypeINT8:
			return detppQ{typ: tflite.TensorTypeINT8}
		}
		return detppF32
	}
	c.boxQ, c.classQ, c.anchQ = pick(), pick(), pick()
	n := c.numBoxes
	// Encodings: real values in [-2, 2] (h, w / 5 keeps exp well inside
	// float range and boxes non-degenerate).
	switch c.boxQ.typ {
	case tflite.TensorTypeUINT8:
		c.boxQ.scale, c.boxQ.zp = 4.0/255, int64(100+rng.IntN(56))
	case tflite.TensorTypeINT8:
		c.boxQ.scale, c.boxQ.zp = 4.0/255, int64(rng.IntN(40)-20)
	}
	c.boxes = make([]float64, n*c.boxStride)
	for i := range c.boxes {
		switch c.boxQ.typ {
		case tflite.TensorTypeFLOAT32:
			c.boxes[i] = float64(float32(rng.Float64()*4 - 2))
		case tflite.TensorTypeUINT8:
			c.boxes[i] = float64(rng.IntN(256))
		default:
			c.boxes[i] = float64(rng.IntN(256) - 128)
		}
	}
	// Anchors: centres in [0, 1], sizes in [0.05, 0.5]; a coarse grid so
	// that boxes often coincide.
	switch c.anchQ.typ {
	case tflite.TensorTypeUINT8:
		c.anchQ.scale, c.anchQ.zp = 1.0/200, 0
	case tflite.TensorTypeINT8:
		c.anchQ.scale, c.anchQ.zp = 1.0/200, -100
	}
	c.anch = make([]float64, 4*n)
	for i := range n {
		for j := range 4 {
			q := rng.IntN(8) * 25 // centre 0..175 of 200
			if j >= 2 {
				q = 10 + rng.IntN(4)*30 // size 10..100 of 200
			}
			if c.anchQ.typ == tflite.TensorTypeFLOAT32 {
				c.anch[4*i+j] = float64(float32(float64(q) / 200))
			} else {
				c.anch[4*i+j] = float64(q + int(c.anchQ.zp))
			}
		}
	}
	// Scores in [0, 1] from a few levels (ties); float scores sometimes
	// NaN where the operator's order is still defined.
	switch c.classQ.typ {
	case tflite.TensorTypeUINT8:
		c.classQ.scale, c.classQ.zp = 1.0/256, 0
	case tflite.TensorTypeINT8:
		c.classQ.scale, c.classQ.zp = 1.0/256, -128
	}
	levels := 2 + rng.IntN(10)
	nan := c.classQ.typ == tflite.TensorTypeFLOAT32 && c.opts.maxClassesPerDetection == 1 && rng.IntN(3) == 0
	c.classes = make([]float64, n*c.classStride())
	for i := range c.classes {
		l := rng.IntN(levels)
		switch {
		case nan && rng.IntN(10) == 0:
			c.classes[i] = math.NaN()
		case c.classQ.typ == tflite.TensorTypeFLOAT32:
			c.classes[i] = float64(float32(float64(l) / float64(levels)))
		default:
			c.classes[i] = float64(l*255/levels + int(c.classQ.zp))
		}
	}
	return c
}

func TestDetectionPostprocessRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 400 {
		c := detppRandom(rng)
		want, ok := detppOracle(c)
		got, err := detppRun(t, c)
		if !ok {
			if err == nil {
				t.Fatalf("case %d: invoke succeeded; a decoded box is invalid", i)
			}
			continue
		}
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		detppEqual(t, got, want)
	}
}

// TestDetectionPostprocessQuantizedTraffic runs the traffic model's own
// operator (its uint8 anchors, quantization and options: 26880 anchors,
// 3 classes plus background, fast NMS, 40 detections) on random uint8
// inputs and compares with the oracle.
func TestDetectionPostprocessQuantizedTraffic(t *testing.T) {
	m, err := runtime.LoadModelFile(testenv.SharedFile(t, "models/traffic_model.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	sg := m.Subgraphs[0]
	var op *runtime.Operator
	for i := range sg.Operators {
		if sg.Operators[i].Code.Custom == "TFLite_Detection_PostProcess" {
			op = &sg.Operators[i]
		}
	}
	if op == nil {
		t.Fatal("no TFLite_Detection_PostProcess in traffic_model.tflite")
	}
	info := func(i int) (*runtime.TensorInfo, detppQ) {
		ti := &sg.Tensors[op.Inputs[i]]
		return ti, detppQ{typ: tflite.TensorType(ti.Type), scale: ti.Quant.Scale[0], zp: ti.Quant.ZeroPoint[0]}
	}
	bt, bq := info(0)
	ct, cq := info(1)
	at, aq := info(2)
	c := &detppCase{
		opts:     detppOpts{maxDetections: 40, maxClassesPerDetection: 1, detectionsPerClass: 40, numClasses: 3, scoreThreshold: -20, iouThreshold: 0.6, yScale: 10, xScale: 10, hScale: 5, wScale: 5},
		numBoxes: bt.Shape[1], boxStride: bt.Shape[2], background: ct.Shape[2] == 4,
		boxQ: bq, classQ: cq, anchQ: aq,
		custom: op.CustomOptions,
	}
	c.anch = make([]float64, len(at.Data))
	for i, q := range at.Data {
		c.anch[i] = float64(q)
	}
	it, err := runtime.NewInterpreter(buildModel(t, c.model()), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]int{{1, 40, 4}, {1, 40}, {1, 40}, {1}} {
		if got := it.Outputs()[i].Shape; !slices.Equal(got, want) {
			t.Errorf("output %d shape %v, want %v", i, got, want)
		}
	}
	rng := rand.New(rand.NewPCG(3, 5))
	for _, regular := range []bool{false, true} {
		if regular {
			// The same tensors under regular NMS.
			c.custom = nil
			c.opts.regular = true
			if it, err = runtime.NewInterpreter(buildModel(t, c.model()), nil); err != nil {
				t.Fatal(err)
			}
		}
		for range 2 {
			c.boxes = make([]float64, c.numBoxes*c.boxStride)
			for i := range c.boxes {
				// Encodings near the zero point, as a detector gives.
				c.boxes[i] = float64(int(bq.zp) + rng.IntN(61) - 30)
			}
			c.classes = make([]float64, c.numBoxes*c.classStride())
			for i := range c.classes {
				c.classes[i] = float64(rng.IntN(40) * rng.IntN(7))
			}
			got, err := detppInvoke(t, it, c)
			if err != nil {
				t.Fatal(err)
			}
			want, ok := detppOracle(c)
			if !ok {
				t.Fatal("oracle: invalid box")
			}
			if got.num != 40 {
				t.Errorf("num_detections %v, want 40", got.num)
			}
			detppEqual(t, got, want)
		}
	}
}

func TestDetectionPostprocessOutputShapes(t *testing.T) {
	c := detppHand()
	c.opts.maxDetections = 5
	c.outShapes = [][]int{{1, 5, 4}, {1, 5}, {1, 5}, {1}}
	it, err := runtime.NewInterpreter(buildModel(t, c.model()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := it.Outputs()[0].Shape; !slices.Equal(got, []int{1, 5, 4}) {
		t.Errorf("boxes shape %v", got)
	}
	c.opts.maxClassesPerDetection = 2 // TensorFlow Lite sizes 10 entries
	if err := prepareError(t, c.model()); err == nil || !strings.Contains(err.Error(), "[1,10,4]") {
		t.Errorf("declared [1,5,4] with 10 entries: error %v", err)
	}
	c.outShapes = nil
	it, err = runtime.NewInterpreter(buildModel(t, c.model()), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]int{{1, 10, 4}, {1, 10}, {1, 10}, {1}} {
		if got := it.Outputs()[i].Shape; !slices.Equal(got, want) {
			t.Errorf("output %d shape %v, want %v", i, got, want)
		}
	}
}

// TestDetectionPostprocessPaddingStable checks that entries past
// num_detections are zero on every invocation, whatever the previous one
// left there.
func TestDetectionPostprocessPaddingStable(t *testing.T) {
	for _, regular := range []bool{false, true} {
		c := detppHand()
		c.opts.regular, c.opts.maxDetections = regular, 4
		it, err := runtime.NewInterpreter(buildModel(t, c.model()), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := detppInvoke(t, it, c); err != nil {
			t.Fatal(err)
		}
		c.opts.scoreThreshold = 0.85 // same model; only the inputs change below
		for i := range c.classes {
			if c.classes[i] < 0.85 {
				c.classes[i] = 0
			}
		}
		got, err := detppInvoke(t, it, c)
		if err != nil {
			t.Fatal(err)
		}
		detppEqual(t, got, detppExpect(4, [3]float64{0, 0, float64(float32(0.9))}))
	}
}

// TestDetectionPostprocessNoBoxes: zero anchors (fed as an input, a
// constant cannot be empty) give no detections.
func TestDetectionPostprocessNoBoxes(t *testing.T) {
	for _, regular := range []bool{false, true} {
		c := detppHand()
		c.opts.regular = regular
		c.numBoxes, c.boxes, c.classes, c.anch = 0, nil, nil, nil
		m := c.model()
		m.Inputs = append(m.Inputs, 2)
		it, err := runtime.NewInterpreter(buildModel(t, m), nil)
		if err != nil {
			t.Fatal(err)
		}
		out := invoke(t, it, nil, nil, nil)
		got := detppResult{boxes: float32s(out[0]), classes: float32s(out[1]), scores: float32s(out[2]), num: float32s(out[3])[0]}
		detppEqual(t, got, detppExpect(3))
	}
}

func TestDetectionPostprocessInvalidBox(t *testing.T) {
	c := detppHand()
	c.anch[2] = 0 // anchor 0 of height 0 decodes to ymin == ymax
	_, err := detppRun(t, c)
	if err == nil || !strings.Contains(err.Error(), "decoded box 0") {
		t.Fatalf("error %v, want one about decoded box 0", err)
	}
}

func TestDetectionPostprocessNoAllocs(t *testing.T) {
	for _, regular := range []bool{false, true} {
		rng := rand.New(rand.NewPCG(1, 2))
		var c *detppCase
		for c == nil || c.numBoxes < 20 {
			c = detppRandom(rng)
		}
		c.opts.regular = regular
		c.opts.maxClassesPerDetection = 1
		it, err := runtime.NewInterpreter(buildModel(t, c.model()), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := detppInvoke(t, it, c); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(20, func() { _ = it.Invoke() }); n != 0 {
			t.Errorf("regular %v: %v allocations per invoke", regular, n)
		}
	}
}

func TestDetectionPostprocessErrors(t *testing.T) {
	// full writes every option but skip.
	full := func(skip string) *flexbuffers.Builder {
		b := flexbuffers.NewMap()
		for _, kv := range []struct {
			k string
			v int64
		}{{"max_detections", 3}, {"max_classes_per_detection", 1}, {"num_classes", 2}} {
			if kv.k != skip {
				b.Int(kv.k, kv.v)
			}
		}
		for _, kv := range []struct {
			k string
			v float64
		}{{"nms_score_threshold", 0.25}, {"nms_iou_threshold", 0.5}, {"y_scale", 10}, {"x_scale", 10}, {"h_scale", 5}, {"w_scale", 5}} {
			if kv.k != skip {
				b.Float(kv.k, kv.v)
			}
		}
		return b
	}
	without := func(key string) []byte { return full(key).Bytes() }
	numClasses := func(n int) func(c *detppCase) {
		return func(c *detppCase) {
			o := c.opts
			o.numClasses = n
			c.custom = o.bytes()
		}
	}
	for _, tc := range []struct {
		name string
		edit func(c *detppCase)
		want string
	}{
		{"no options", func(c *detppCase) { c.custom = []byte{} }, "custom options are missing"},
		{"garbage options", func(c *detppCase) { c.custom = []byte{1, 2, 3, 4, 5} }, "custom options"},
		{"options not a map", func(c *detppCase) { c.custom = []byte{7, 4, 1} }, "not a map"},
		{"missing max_detections", func(c *detppCase) { c.custom = without("max_detections") }, `"max_detections" is missing`},
		{"missing max_classes_per_detection", func(c *detppCase) { c.custom = without("max_classes_per_detection") }, `"max_classes_per_detection" is missing`},
		{"missing num_classes", func(c *detppCase) { c.custom = without("num_classes") }, `"num_classes" is missing`},
		{"missing nms_iou_threshold", func(c *detppCase) { c.custom = without("nms_iou_threshold") }, `"nms_iou_threshold" is missing`},
		{"missing nms_score_threshold", func(c *detppCase) { c.custom = without("nms_score_threshold") }, `"nms_score_threshold" is missing`},
		{"missing h_scale", func(c *detppCase) { c.custom = without("h_scale") }, `"h_scale" is missing`},
		{"string option", func(c *detppCase) { c.custom = full("").String("max_detections", "3").Bytes() }, `"max_detections" has FlexBuffers type`},
		{"vector option", func(c *detppCase) { c.custom = full("").Floats("y_scale", []float64{1}).Bytes() }, `"y_scale" has FlexBuffers type`},
		{"huge option", func(c *detppCase) { c.custom = full("").Int("max_detections", 1<<40).Bytes() }, "out of the int32 range"},
		{"zero max_detections", func(c *detppCase) { c.opts.maxDetections = 0 }, `"max_detections" is 0, must be positive`},
		{"negative detections_per_class", func(c *detppCase) { c.opts.detectionsPerClass = -1 }, `"detections_per_class" is -1`},
		{"zero max_classes_per_detection", func(c *detppCase) { c.opts.maxClassesPerDetection = 0 }, `"max_classes_per_detection" is 0`},
		{"too many detections", func(c *detppCase) { c.opts.maxDetections = 1 << 27 }, "too large"},
		{"iou 0", func(c *detppCase) { c.opts.iouThreshold = 0 }, `"nms_iou_threshold" is 0`},
		{"iou above 1", func(c *detppCase) { c.opts.iouThreshold = 1.5 }, `"nms_iou_threshold" is 1.5`},
		{"score NaN", func(c *detppCase) { c.opts.scoreThreshold = float32(math.NaN()) }, `"nms_score_threshold" is NaN`},
		{"zero scale", func(c *detppCase) { c.opts.xScale = 0 }, `"x_scale" is 0`},
		{"num_classes mismatch", numClasses(5), "num_classes 5 needs 5, or 6"},
		{"num_classes too few", numClasses(1), "num_classes 1 needs 1, or 2"},
		{"box rank", func(c *detppCase) { c.boxStride = 3 }, "box encodings"},
		{"anchor count", func(c *detppCase) { c.anch = c.anch[:12] }, "anchors"},
		{"int32 boxes", func(c *detppCase) { c.boxQ = detppQ{typ: tflite.TensorTypeINT32} }, "unsupported tensor type: box encodings"},
		{"unquantized uint8 classes", func(c *detppCase) { c.classQ = detppQ{typ: tflite.TensorTypeUINT8} }, "no quantization parameters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := detppHand()
			tc.edit(c)
			m := c.model()
			if tc.name == "anchor count" {
				m.Tensors[2].Shape = []int{3, 4}
			}
			if tc.name == "int32 boxes" || tc.name == "unquantized uint8 classes" {
				m.Tensors[0].Scale, m.Tensors[0].ZeroPoint = nil, nil
				if tc.name == "unquantized uint8 classes" {
					m.Tensors[1].Scale, m.Tensors[1].ZeroPoint = nil, nil
				}
			}
			err := prepareError(t, m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	t.Run("float output types", func(t *testing.T) {
		m := detppHand().model()
		m.Tensors[m.Outputs[3]].Type = tflite.TensorTypeINT32
		if err := prepareError(t, m); err == nil || !strings.Contains(err.Error(), "must be float32") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		// detections_per_class and use_regular_nms may be left out.
		c := detppHand()
		c.custom = full("").Bytes()
		if _, err := detppRun(t, c); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDetectionPostprocessTrafficGolden reproduces the traffic_model
// goldens' postprocess outputs with the operator alone. The goldens do not
// dump the operator's inputs, so they are rebuilt: for every golden
// detection, the anchor and the uint8 encodings whose decoded box equals the
// golden box bit for bit are searched for, and given the golden class and
// score; every other anchor gets zero encodings and zero scores. The 40
// golden detections did not suppress one another, so the operator must
// output exactly the golden bytes, which checks decoding (dequantization,
// double arithmetic, exp) and the order of equal scores (lower anchor
// first).
func TestDetectionPostprocessTrafficGolden(t *testing.T) {
	m, err := runtime.LoadModelFile(testenv.SharedFile(t, "models/traffic_model.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	sg := m.Subgraphs[0]
	var op *runtime.Operator
	for i := range sg.Operators {
		if sg.Operators[i].Code.Custom == "TFLite_Detection_PostProcess" {
			op = &sg.Operators[i]
		}
	}
	if op == nil {
		t.Fatal("no TFLite_Detection_PostProcess in traffic_model.tflite")
	}
	q := func(i int) detppQ {
		ti := &sg.Tensors[op.Inputs[i]]
		return detppQ{typ: tflite.TensorType(ti.Type), scale: ti.Quant.Scale[0], zp: ti.Quant.ZeroPoint[0]}
	}
	anchorData := sg.Tensors[op.Inputs[2]].Data
	c := &detppCase{
		opts:     detppOpts{maxDetections: 40, maxClassesPerDetection: 1, detectionsPerClass: 40, numClasses: 3, scoreThreshold: -20, iouThreshold: 0.6, yScale: 10, xScale: 10, hScale: 5, wScale: 5},
		numBoxes: 26880, boxStride: 4, background: true,
		boxQ: q(0), classQ: q(1), anchQ: q(2),
		custom: op.CustomOptions,
	}
	if c.boxQ.typ != tflite.TensorTypeUINT8 || c.classQ.scale != 1.0/256 || c.classQ.zp != 0 || len(anchorData) != 4*c.numBoxes {
		t.Fatalf("unexpected operator inputs: boxes %+v, classes %+v, %d anchor bytes", c.boxQ, c.classQ, len(anchorData))
	}
	for _, b := range anchorData {
		c.anch = append(c.anch, float64(b))
	}
	anchors := detppDequantize(c.anchQ, c.anch)
	deq := func(q int) float64 { return float64((float32(q) - float32(c.boxQ.zp)) * c.boxQ.scale) }
	// find returns encodings (centre, size) of one axis reproducing lo, hi
	// for an anchor's centre and size, searching around the estimate.
	find := func(lo, hi, centre, size float32, scale, sizeScale float64) (qc, qs int, ok bool) {
		ratio := float64(hi-lo) / float64(size)
		if !(ratio > 0) {
			return 0, 0, false
		}
		s0 := int(math.Round(sizeScale*math.Log(ratio)/float64(c.boxQ.scale))) + int(c.boxQ.zp)
		c0 := int(math.Round((float64(hi+lo)/2-float64(centre))*scale/float64(size)/float64(c.boxQ.scale))) + int(c.boxQ.zp)
		for qs := max(s0-2, 0); qs <= min(s0+2, 255); qs++ {
			half := float32(0.5 * math.Exp(deq(qs)/sizeScale) * float64(size))
			for qc := max(c0-2, 0); qc <= min(c0+2, 255); qc++ {
				mid := float32(float64(deq(qc)/scale*float64(size)) + float64(centre))
				if mid-half == lo && mid+half == hi {
					return qc, qs, true
				}
			}
		}
		return 0, 0, false
	}
	for _, name := range []string{"traffic_model_frame1", "traffic_model_frame2"} {
		t.Run(name, func(t *testing.T) {
			var golden [4][]byte
			for i := range golden {
				b, err := os.ReadFile(testenv.SharedFile(t, "golden/"+name+"/output_"+strconv.Itoa(i)+".bin"))
				if err != nil {
					t.Fatal(err)
				}
				golden[i] = b
			}
			boxes, classes, scores := float32s(golden[0]), float32s(golden[1]), float32s(golden[2])
			if len(boxes) != 160 || len(classes) != 40 || len(scores) != 40 {
				t.Fatalf("golden outputs of %d, %d, %d values", len(boxes), len(classes), len(scores))
			}
			zp := float64(c.boxQ.zp)
			c.boxes = make([]float64, 4*c.numBoxes)
			for i := range c.boxes {
				c.boxes[i] = zp
			}
			c.classes = make([]float64, 4*c.numBoxes)
			for d := range 40 {
				gb := boxes[4*d : 4*d+4]
				found := false
				for k := 0; k < c.numBoxes && !found; k++ {
					a := anchors[4*k : 4*k+4]
					qy, qh, okY := find(gb[0], gb[2], a[0], a[2], 10, 5)
					if !okY {
						continue
					}
					qx, qw, okX := find(gb[1], gb[3], a[1], a[3], 10, 5)
					if !okX {
						continue
					}
					found = true
					copy(c.boxes[4*k:], []float64{float64(qy), float64(qx), float64(qh), float64(qw)})
					score := float64(scores[d]) * 256
					if score != math.Trunc(score) || score > 255 || classes[d] != float32(int(classes[d])) {
						t.Fatalf("detection %d: score %v, class %v", d, scores[d], classes[d])
					}
					c.classes[4*k+1+int(classes[d])] = score
				}
				if !found {
					t.Fatalf("detection %d: no anchor and encodings give the golden box %v", d, gb)
				}
			}
			got, err := detppRun(t, c)
			if err != nil {
				t.Fatal(err)
			}
			want := detppResult{boxes: boxes, classes: classes, scores: scores, num: float32s(golden[3])[0]}
			detppEqual(t, got, want)
		})
	}
}
