package runtime

import (
	"fmt"
	"math"

	"github.com/edged/edged/internal/runtime/flexbuffers"
	"github.com/edged/edged/internal/runtime/tflite"
)

// TFLite_Detection_PostProcess (custom operator): SSD box decoding against
// anchors, then non-maximum suppression, as TFLM's detection_postprocess.cc
// computes it in float; quantized (uint8, and as an extension int8) inputs
// are dequantized first the way full TensorFlow Lite's kernel does. Each
// input's type is independent: TFLM takes float32 only, TensorFlow Lite
// uint8 or float32 box encodings (with anchors of the same kind) and class
// predictions; int8, and float anchors with quantized encodings or the
// reverse, are extensions with the same arithmetic.
//
// Inputs: box encodings [1, boxes, >=4] (y, x, h, w relative to the
// anchor), class predictions [1, boxes, classes (+1 background)], anchors
// [boxes, 4] (y, x, h, w). Outputs, all float32: boxes [1, D, 4] (ymin,
// xmin, ymax, xmax), classes [1, D], scores [1, D], num_detections [1], with
// D = max_detections × max_classes_per_detection as TensorFlow Lite sizes
// them.
//
// Where TFLM leaves output entries unwritten (past num_detections in the fast
// path) they are zeroed here, as TFLM's regular path zeroes its padding, so
// the outputs never depend on what was in the arena before. For
// max_classes_per_detection > 1 the fast path uses full TensorFlow Lite's
// layout (max_classes_per_detection slots per detected anchor,
// num_detections = anchors): TFLM's own indexing for that case writes past
// its outputs. With max_classes_per_detection = 1, the models in use, the
// two agree.

func init() {
	Register(Registration{
		Builtin:    tflite.BuiltinOperatorCUSTOM,
		Custom:     "TFLite_Detection_PostProcess",
		MaxVersion: 1,
		New:        func() Kernel { return &detectionPostprocess{} },
	})
}

// detppOptions are the operator's custom options (TFLM's OpData).
type detppOptions struct {
	maxDetections          int
	maxClassesPerDetection int // fast NMS
	detectionsPerClass     int // regular NMS
	scoreThreshold         float32
	iouThreshold           float32
	numClasses             int
	useRegularNMS          bool
	yScale, xScale         float32
	hScale, wScale         float32
}

// detppDefaultDetectionsPerClass is TFLM's kNumDetectionsPerClass, used when
// the options leave detections_per_class out.
const detppDefaultDetectionsPerClass = 100

// detppDequant is a per-tensor affine dequantization.
type detppDequant struct {
	scale     float32
	zeroPoint int32
}

type detectionPostprocess struct {
	boxes, classes, anchors                 *Tensor
	outBoxes, outClasses, outScores, outNum *Tensor

	opts detppOptions

	numBoxes     int
	boxStride    int // elements per box encoding (>= 4)
	classStride  int // classes with background
	labelOffset  int // 1 when the class predictions carry a background column
	catPerAnchor int // fast NMS: min(max_classes_per_detection, num_classes)
	outEntries   int // D

	boxQ, classQ, anchorQ detppDequant

	// Scratch, as TFLM's scratch buffers (sized for what is used).
	decoded       *Scratch // float32 [boxes][4] ymin, xmin, ymax, xmax
	scores        *Scratch // float32 [boxes][classStride], quantized class predictions only
	scoreBuffer   *Scratch // float32 [boxes]: max scores (fast) / one class's scores (regular)
	keepScores    *Scratch // float32 [boxes]
	keepIndices   *Scratch // int32 [boxes], also the merge sort's scratch
	sortedIndices *Scratch // int32 [max(boxes, merged)]
	active        *Scratch // uint8 [boxes]
	selected      *Scratch // int32 [min(boxes, limit)]
	classIndices  *Scratch // fast: int32 [boxes][num_classes]
	mergedIndices *Scratch // regular: int32 [merged]
	mergedScores  *Scratch // regular: float32 [merged]
	sortedValues  *Scratch // regular: float32 [max_detections]
}

// detppMaxElements bounds every count the kernel computes (options, boxes ×
// classes), so that the scratch sizes in bytes fit an int on 32-bit targets
// and indices fit int32.
const detppMaxElements = 1 << 26

func (k *detectionPostprocess) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(3, 3, 4); err != nil {
		return err
	}
	opts, err := parseDetppOptions(c.CustomOptions())
	if err != nil {
		return err
	}
	k.opts = opts
	k.boxes, k.classes, k.anchors = c.Input(0), c.Input(1), c.Input(2)
	k.outBoxes, k.outClasses, k.outScores, k.outNum = c.Output(0), c.Output(1), c.Output(2), c.Output(3)
	boxes, classes, anchors := k.boxes, k.classes, k.anchors

	if len(boxes.Shape) != 3 || boxes.Shape[0] != 1 || boxes.Shape[2] < 4 {
		return fmt.Errorf("box encodings %s must have shape [1, boxes, 4 or more]", boxes)
	}
	k.numBoxes, k.boxStride = boxes.Shape[1], boxes.Shape[2]
	if len(classes.Shape) != 3 || classes.Shape[0] != 1 || classes.Shape[1] != k.numBoxes {
		return fmt.Errorf("class predictions %s must have shape [1, %d, classes] to match box encodings %s", classes, k.numBoxes, boxes)
	}
	k.classStride = classes.Shape[2]
	k.labelOffset = k.classStride - opts.numClasses
	if k.labelOffset != 0 && k.labelOffset != 1 {
		return fmt.Errorf("class predictions %s have %d classes per box; num_classes %d needs %d, or %d with a background class", classes, k.classStride, opts.numClasses, opts.numClasses, opts.numClasses+1)
	}
	if len(anchors.Shape) != 2 || anchors.Shape[0] != k.numBoxes || anchors.Shape[1] != 4 {
		return fmt.Errorf("anchors %s must have shape [%d, 4]", anchors, k.numBoxes)
	}
	if k.numBoxes > detppMaxElements/k.boxStride || k.numBoxes > detppMaxElements/k.classStride {
		return fmt.Errorf("box encodings %s and class predictions %s are too large", boxes, classes)
	}

	if k.boxQ, err = detppInputQuant("box encodings", boxes); err != nil {
		return err
	}
	if k.classQ, err = detppInputQuant("class predictions", classes); err != nil {
		return err
	}
	if k.anchorQ, err = detppInputQuant("anchors", anchors); err != nil {
		return err
	}

	for i, o := range []*Tensor{k.outBoxes, k.outClasses, k.outScores, k.outNum} {
		if o.Type != Float32 {
			return fmt.Errorf("output %d %s must be float32", i, o)
		}
	}
	if opts.maxDetections > detppMaxElements/16/opts.maxClassesPerDetection {
		return fmt.Errorf("max_detections %d × max_classes_per_detection %d is too large", opts.maxDetections, opts.maxClassesPerDetection)
	}
	k.outEntries = opts.maxDetections * opts.maxClassesPerDetection
	for i, shape := range [][]int{{1, k.outEntries, 4}, {1, k.outEntries}, {1, k.outEntries}, {1}} {
		if err := c.SetOutputShape(i, shape); err != nil {
			return err
		}
	}
	k.catPerAnchor = min(opts.maxClassesPerDetection, opts.numClasses)

	n := k.numBoxes
	k.decoded = c.RequestScratch(4 * 4 * n)
	if classes.Type != Float32 {
		k.scores = c.RequestScratch(4 * n * k.classStride)
	}
	k.scoreBuffer = c.RequestScratch(4 * n)
	k.keepScores = c.RequestScratch(4 * n)
	k.keepIndices = c.RequestScratch(4 * n)
	k.active = c.RequestScratch(n)
	if opts.useRegularNMS {
		// Per class, the selections of the class are merged with the best
		// max_detections so far.
		merged := opts.maxDetections + min(n, opts.detectionsPerClass)
		k.sortedIndices = c.RequestScratch(4 * max(n, merged))
		k.selected = c.RequestScratch(4 * min(n, opts.detectionsPerClass))
		k.mergedIndices = c.RequestScratch(4 * merged)
		k.mergedScores = c.RequestScratch(4 * merged)
		k.sortedValues = c.RequestScratch(4 * opts.maxDetections)
	} else {
		if n > detppMaxElements/opts.numClasses {
			return fmt.Errorf("%d boxes × %d classes is too large", n, opts.numClasses)
		}
		k.sortedIndices = c.RequestScratch(4 * n)
		k.selected = c.RequestScratch(4 * min(n, opts.maxDetections))
		k.classIndices = c.RequestScratch(4 * n * opts.numClasses)
	}
	return nil
}

// detppInputQuant checks an input's type and returns its dequantization
// (unused for float32).
func detppInputQuant(what string, t *Tensor) (detppDequant, error) {
	switch t.Type {
	case Float32:
		return detppDequant{}, nil
	case Uint8, Int8:
		if err := requireQuantized(what, t); err != nil {
			return detppDequant{}, err
		}
		if s := t.Scale(); !(s > 0) || math.IsInf(float64(s), 0) {
			return detppDequant{}, fmt.Errorf("%s %s has scale %g, must be positive and finite", what, t, s)
		}
		if t.Quant.PerChannel() {
			return detppDequant{}, fmt.Errorf("%s %s must be quantized per tensor, has %d scales", what, t, len(t.Quant.Scale))
		}
		return detppDequant{scale: t.Scale(), zeroPoint: t.ZeroPoint()}, nil
	}
	return detppDequant{}, UnsupportedTypes(what, t.Type)
}

// parseDetppOptions reads the custom options FlexBuffers map as TFLM's Init
// does, and rejects what its Prepare and Eval would fail on (or what would
// make the outputs meaningless) with an error naming the option.
func parseDetppOptions(buf []byte) (detppOptions, error) {
	var o detppOptions
	if len(buf) == 0 {
		return o, fmt.Errorf("custom options are missing (a FlexBuffers map of the NMS parameters)")
	}
	root, err := flexbuffers.Root(buf)
	if err != nil {
		return o, fmt.Errorf("custom options: %w", err)
	}
	m, err := root.Map()
	if err != nil {
		return o, fmt.Errorf("custom options: %w", err)
	}
	intOpt := func(key string, def int, required bool) int {
		if err != nil {
			return 0
		}
		var v int
		var ok bool
		v, ok, err = detppInt(m, key)
		if err == nil && !ok {
			if required {
				err = fmt.Errorf("custom option %q is missing", key)
			}
			v = def
		}
		return v
	}
	floatOpt := func(key string) float32 {
		if err != nil {
			return 0
		}
		var v float32
		var ok bool
		v, ok, err = detppFloat(m, key)
		if err == nil && !ok {
			err = fmt.Errorf("custom option %q is missing", key)
		}
		return v
	}
	o.maxDetections = intOpt("max_detections", 0, true)
	o.maxClassesPerDetection = intOpt("max_classes_per_detection", 0, true)
	o.detectionsPerClass = intOpt("detections_per_class", detppDefaultDetectionsPerClass, false)
	o.numClasses = intOpt("num_classes", 0, true)
	o.scoreThreshold = floatOpt("nms_score_threshold")
	o.iouThreshold = floatOpt("nms_iou_threshold")
	o.yScale = floatOpt("y_scale")
	o.xScale = floatOpt("x_scale")
	o.hScale = floatOpt("h_scale")
	o.wScale = floatOpt("w_scale")
	if err != nil {
		return o, err
	}
	if r, ok, gerr := m.Get("use_regular_nms"); gerr != nil {
		return o, fmt.Errorf("custom option \"use_regular_nms\": %w", gerr)
	} else if ok && r.Type() != flexbuffers.TypeNull {
		if !detppNumeric(r.Type()) {
			return o, fmt.Errorf("custom option \"use_regular_nms\" has FlexBuffers type %d, want a boolean", r.Type())
		}
		if o.useRegularNMS, err = r.Bool(); err != nil {
			return o, fmt.Errorf("custom option \"use_regular_nms\": %w", err)
		}
	}
	for _, p := range []struct {
		name string
		v    int
	}{
		{"max_detections", o.maxDetections},
		{"max_classes_per_detection", o.maxClassesPerDetection},
		{"detections_per_class", o.detectionsPerClass},
		{"num_classes", o.numClasses},
	} {
		if p.v <= 0 {
			return o, fmt.Errorf("custom option %q is %d, must be positive", p.name, p.v)
		}
		if p.v > detppMaxElements {
			return o, fmt.Errorf("custom option %q is %d, too large", p.name, p.v)
		}
	}
	if !(o.iouThreshold > 0 && o.iouThreshold <= 1) {
		return o, fmt.Errorf("custom option \"nms_iou_threshold\" is %g, must be in (0, 1]", o.iouThreshold)
	}
	if math.IsNaN(float64(o.scoreThreshold)) {
		return o, fmt.Errorf("custom option \"nms_score_threshold\" is NaN")
	}
	for _, p := range []struct {
		name string
		v    float32
	}{{"y_scale", o.yScale}, {"x_scale", o.xScale}, {"h_scale", o.hScale}, {"w_scale", o.wScale}} {
		if p.v == 0 || math.IsNaN(float64(p.v)) || math.IsInf(float64(p.v), 0) {
			return o, fmt.Errorf("custom option %q is %g, must be finite and non-zero", p.name, p.v)
		}
	}
	return o, nil
}

// detppNumeric reports whether a FlexBuffers value is a scalar number or
// boolean (TFLM would also parse strings; options never hold those).
func detppNumeric(t flexbuffers.Type) bool {
	switch t {
	case flexbuffers.TypeInt, flexbuffers.TypeUint, flexbuffers.TypeFloat, flexbuffers.TypeBool,
		flexbuffers.TypeIndirectInt, flexbuffers.TypeIndirectUint, flexbuffers.TypeIndirectFloat:
		return true
	}
	return false
}

// detppInt reads an integer option as flexbuffers' AsInt32 (floats
// truncate), reporting whether it is present; values outside int32 are
// errors rather than wrapped.
func detppInt(m flexbuffers.Map, key string) (int, bool, error) {
	r, ok, err := m.Get(key)
	if err != nil {
		return 0, false, fmt.Errorf("custom option %q: %w", key, err)
	}
	if !ok || r.Type() == flexbuffers.TypeNull {
		return 0, false, nil
	}
	if !detppNumeric(r.Type()) {
		return 0, false, fmt.Errorf("custom option %q has FlexBuffers type %d, want an integer", key, r.Type())
	}
	switch r.Type() {
	case flexbuffers.TypeFloat, flexbuffers.TypeIndirectFloat:
		f, err := r.Float()
		if err != nil {
			return 0, false, fmt.Errorf("custom option %q: %w", key, err)
		}
		if !(f > math.MinInt32-1 && f < math.MaxInt32+1) {
			return 0, false, fmt.Errorf("custom option %q is %g, out of the int32 range", key, f)
		}
		return int(int32(f)), true, nil
	}
	i, err := r.Int()
	if err != nil {
		return 0, false, fmt.Errorf("custom option %q: %w", key, err)
	}
	if (r.Type() == flexbuffers.TypeUint || r.Type() == flexbuffers.TypeIndirectUint) && i < 0 {
		return 0, false, fmt.Errorf("custom option %q is %d, out of the int32 range", key, uint64(i))
	}
	if i < math.MinInt32 || i > math.MaxInt32 {
		return 0, false, fmt.Errorf("custom option %q is %d, out of the int32 range", key, i)
	}
	return int(i), true, nil
}

// detppFloat reads a float option as flexbuffers' AsFloat (the double value
// rounded to float).
func detppFloat(m flexbuffers.Map, key string) (float32, bool, error) {
	r, ok, err := m.Get(key)
	if err != nil {
		return 0, false, fmt.Errorf("custom option %q: %w", key, err)
	}
	if !ok || r.Type() == flexbuffers.TypeNull {
		return 0, false, nil
	}
	if !detppNumeric(r.Type()) {
		return 0, false, fmt.Errorf("custom option %q has FlexBuffers type %d, want a number", key, r.Type())
	}
	f, err := r.Float()
	if err != nil {
		return 0, false, fmt.Errorf("custom option %q: %w", key, err)
	}
	return float32(f), true, nil
}

func (k *detectionPostprocess) Eval() error {
	decoded := view[float32](k.decoded.Bytes)
	detppDecodeBoxes(k, decoded)

	var scores []float32
	switch k.classes.Type {
	case Float32:
		scores = k.classes.Float32s()
	case Uint8:
		scores = view[float32](k.scores.Bytes)
		detppDequantizeScores(k.classes.Uint8s(), k.classQ, scores)
	case Int8:
		scores = view[float32](k.scores.Bytes)
		detppDequantizeScores(k.classes.Int8s(), k.classQ, scores)
	}

	// TFLM validates the decoded boxes at the start of every single-class
	// NMS; an invalid box fails the invocation before any output is written.
	if i := detppInvalidBox(decoded); i >= 0 {
		b := decoded[4*i : 4*i+4]
		return fmt.Errorf("decoded box %d is empty or inverted: ymin %g, xmin %g, ymax %g, xmax %g", i, b[0], b[1], b[2], b[3])
	}
	if k.opts.useRegularNMS {
		detppRegularNMS(k, decoded, scores)
	} else {
		detppFastNMS(k, decoded, scores)
	}
	return nil
}

// detppDecodeBoxes is TFLM's DecodeCenterSizeBoxes: center-size encodings
// relative to the anchors, in double precision, to corner boxes in float.
// Quantized encodings and anchors are dequantized as TensorFlow Lite's
// Dequantizer does: (float(q) - zero_point) * scale in float.
//
// math.Exp and glibc's exp differ in the last bit of the double for some
// arguments; rounded to float after the product with the anchor size, no
// difference showed (amd64, arm64, arm) in 2M random arguments, nor in any
// of the traffic model's 256 × 256 (encoding, anchor size) pairs.
func detppDecodeBoxes(k *detectionPostprocess, decoded []float32) {
	sy, sx := float64(k.opts.yScale), float64(k.opts.xScale)
	sh, sw := float64(k.opts.hScale), float64(k.opts.wScale)
	var fb, fa []float32
	var ub, ua []uint8
	var ib, ia []int8
	switch k.boxes.Type {
	case Float32:
		fb = k.boxes.Float32s()
	case Uint8:
		ub = k.boxes.Uint8s()
	case Int8:
		ib = k.boxes.Int8s()
	}
	switch k.anchors.Type {
	case Float32:
		fa = k.anchors.Float32s()
	case Uint8:
		ua = k.anchors.Uint8s()
	case Int8:
		ia = k.anchors.Int8s()
	}
	bzp, bs := float32(k.boxQ.zeroPoint), k.boxQ.scale
	azp, as := float32(k.anchorQ.zeroPoint), k.anchorQ.scale
	var box, anchor [4]float32 // y, x, h, w
	for idx := range k.numBoxes {
		b := idx * k.boxStride
		switch {
		case fb != nil:
			copy(box[:], fb[b:b+4])
		case ub != nil:
			for i, q := range ub[b : b+4] {
				box[i] = (float32(q) - bzp) * bs
			}
		default:
			for i, q := range ib[b : b+4] {
				box[i] = (float32(q) - bzp) * bs
			}
		}
		a := idx * 4
		switch {
		case fa != nil:
			copy(anchor[:], fa[a:a+4])
		case ua != nil:
			for i, q := range ua[a : a+4] {
				anchor[i] = (float32(q) - azp) * as
			}
		default:
			for i, q := range ia[a : a+4] {
				anchor[i] = (float32(q) - azp) * as
			}
		}
		// The float64 conversions of the products keep Go from fusing
		// them with the additions (TFLM's x86 build does not).
		ycenter := float32(float64(float64(box[0])/sy*float64(anchor[2])) + float64(anchor[0]))
		xcenter := float32(float64(float64(box[1])/sx*float64(anchor[3])) + float64(anchor[1]))
		halfH := float32(0.5 * math.Exp(float64(box[2])/sh) * float64(anchor[2]))
		halfW := float32(0.5 * math.Exp(float64(box[3])/sw) * float64(anchor[3]))
		d := decoded[4*idx : 4*idx+4]
		d[0] = ycenter - halfH
		d[1] = xcenter - halfW
		d[2] = ycenter + halfH
		d[3] = xcenter + halfW
	}
}

// detppDequantizeScores is TensorFlow Lite's DequantizeClassPredictions:
// reference Dequantize, float(double(scale) * (q - zero_point)).
func detppDequantizeScores[T uint8 | int8](q []T, p detppDequant, out []float32) {
	scale := float64(p.scale)
	for i, v := range q[:len(out)] {
		out[i] = float32(scale * float64(int32(v)-p.zeroPoint))
	}
}

// detppInvalidBox is TFLM's ValidateBoxes: the first box with ymin >= ymax
// or xmin >= xmax, or -1.
func detppInvalidBox(decoded []float32) int {
	for i := 0; i+4 <= len(decoded); i += 4 {
		if decoded[i] >= decoded[i+2] || decoded[i+1] >= decoded[i+3] {
			return i / 4
		}
	}
	return -1
}

// detppIoU is TFLM's ComputeIntersectionOverUnion in float, with std::min /
// std::max as C++ evaluates them; conversions keep products unfused.
func detppIoU(decoded []float32, i, j int32) float32 {
	bi := decoded[4*i : 4*i+4 : 4*i+4]
	bj := decoded[4*j : 4*j+4 : 4*j+4]
	areaI := float32((bi[2] - bi[0]) * (bi[3] - bi[1]))
	areaJ := float32((bj[2] - bj[0]) * (bj[3] - bj[1]))
	if areaI <= 0 || areaJ <= 0 {
		return 0
	}
	ymin := detppMax(bi[0], bj[0])
	xmin := detppMax(bi[1], bj[1])
	ymax := detppMin(bi[2], bj[2])
	xmax := detppMin(bi[3], bj[3])
	inter := float32(detppMax(ymax-ymin, 0) * detppMax(xmax-xmin, 0))
	return inter / (float32(areaI+areaJ) - inter)
}

// detppMax is std::max(a, b): (a < b) ? b : a.
func detppMax(a, b float32) float32 {
	if a < b {
		return b
	}
	return a
}

// detppMin is std::min(a, b): (b < a) ? b : a.
func detppMin(a, b float32) float32 {
	if b < a {
		return b
	}
	return a
}

// detppNMSSingleClass is TFLM's NonMaxSuppressionSingleClassHelper: keep
// the scores >= the score threshold, sort them decreasing (stable), then
// greedily select boxes, dropping later ones whose IoU with a selected box
// exceeds the threshold, up to limit selections. It writes the selected box
// indices to selected and returns how many.
func detppNMSSingleClass(k *detectionPostprocess, decoded, scores []float32, limit int, selected []int32) int {
	keepScores := view[float32](k.keepScores.Bytes)
	keepIndices := view[int32](k.keepIndices.Bytes)
	sorted := view[int32](k.sortedIndices.Bytes)
	active := k.active.Bytes
	thr := k.opts.scoreThreshold

	kept := 0
	for i, s := range scores[:k.numBoxes] {
		if s >= thr {
			keepScores[kept] = s
			keepIndices[kept] = int32(i)
			kept++
		}
	}
	// keepIndices doubles as the sort's scratch, then is filled again.
	detppDecreasingArgSort(keepScores[:kept], sorted[:kept], keepIndices[:kept])
	kept = 0
	for i, s := range scores[:k.numBoxes] {
		if s >= thr {
			keepIndices[kept] = int32(i)
			kept++
		}
	}

	outputSize := min(kept, limit)
	n := 0
	numActive := kept
	for i := range kept {
		active[i] = 1
	}
	for i := 0; i < kept; i++ {
		if numActive == 0 || n >= outputSize {
			break
		}
		if active[i] != 1 {
			continue
		}
		bi := keepIndices[sorted[i]]
		selected[n] = bi
		n++
		active[i] = 0
		numActive--
		box := decoded[4*bi : 4*bi+4 : 4*bi+4]
		for j := i + 1; j < kept; j++ {
			if active[j] != 1 {
				continue
			}
			bj := keepIndices[sorted[j]]
			// Boxes that do not overlap (or have NaN coordinates) have an
			// IoU of 0 or NaN, never above the threshold (> 0): skipping
			// them changes nothing and saves most of the work.
			other := decoded[4*bj : 4*bj+4 : 4*bj+4]
			if !(detppMin(box[2], other[2]) > detppMax(box[0], other[0]) && detppMin(box[3], other[3]) > detppMax(box[1], other[1])) {
				continue
			}
			if detppIoU(decoded, bi, bj) > k.opts.iouThreshold {
				active[j] = 0
				numActive--
			}
		}
	}
	return n
}

// detppFastNMS is TFLM's NonMaxSuppressionMultiClassFastHelper: each
// anchor's best classes (partial sort), NMS on each anchor's best score
// across classes, and for every selected anchor its top classes.
func detppFastNMS(k *detectionPostprocess, decoded, scores []float32) {
	nc, stride, off := k.opts.numClasses, k.classStride, k.labelOffset
	perAnchor, slots := k.catPerAnchor, k.opts.maxClassesPerDetection
	maxScores := view[float32](k.scoreBuffer.Bytes)
	classIndices := view[int32](k.classIndices.Bytes)
	selected := view[int32](k.selected.Bytes)
	for row := range k.numBoxes {
		boxScores := scores[row*stride+off : row*stride+off+nc]
		ci := classIndices[row*nc : (row+1)*nc]
		detppDecreasingPartialArgSort(boxScores, perAnchor, ci)
		maxScores[row] = boxScores[ci[0]]
	}
	n := detppNMSSingleClass(k, decoded, maxScores, k.opts.maxDetections, selected)

	outBoxes, outClasses, outScores := k.outBoxes.Float32s(), k.outClasses.Float32s(), k.outScores.Float32s()
	clear(outBoxes)
	clear(outClasses)
	clear(outScores)
	for d, a := range selected[:n] {
		boxScores := scores[int(a)*stride+off : int(a)*stride+off+nc]
		ci := classIndices[int(a)*nc : (int(a)+1)*nc]
		for col := range perAnchor {
			o := slots*d + col
			copy(outBoxes[4*o:4*o+4], decoded[4*a:4*a+4])
			outClasses[o] = float32(ci[col])
			outScores[o] = boxScores[ci[col]]
		}
	}
	k.outNum.Float32s()[0] = float32(n)
}

// detppRegularNMS is TFLM's NonMaxSuppressionMultiClassRegularHelper: NMS
// per class (up to detections_per_class each), merging each class's
// selections into the best max_detections so far by a partial sort.
func detppRegularNMS(k *detectionPostprocess, decoded, scores []float32) {
	nc, stride, off := k.opts.numClasses, k.classStride, k.labelOffset
	maxDet := k.opts.maxDetections
	classScores := view[float32](k.scoreBuffer.Bytes)
	selected := view[int32](k.selected.Bytes)
	mergedIdx := view[int32](k.mergedIndices.Bytes)
	mergedScores := view[float32](k.mergedScores.Bytes)
	sorted := view[int32](k.sortedIndices.Bytes)
	sortedValues := view[float32](k.sortedValues.Bytes)

	size := 0
	for col := range nc {
		for row := range k.numBoxes {
			classScores[row] = scores[row*stride+col+off]
		}
		n := detppNMSSingleClass(k, decoded, classScores, k.opts.detectionsPerClass, selected)
		out := size
		for _, s := range selected[:n] {
			mergedIdx[out] = s*int32(stride) + int32(col+off)
			mergedScores[out] = classScores[s]
			out++
		}
		toSort := min(out, maxDet)
		detppDecreasingPartialArgSort(mergedScores[:out], toSort, sorted[:out])
		for row := range toSort {
			t := sorted[row]
			sorted[row] = mergedIdx[t]
			sortedValues[row] = mergedScores[t]
		}
		copy(mergedIdx[:toSort], sorted[:toSort])
		copy(mergedScores[:toSort], sortedValues[:toSort])
		size = toSort
	}

	outBoxes, outClasses, outScores := k.outBoxes.Float32s(), k.outClasses.Float32s(), k.outScores.Float32s()
	clear(outBoxes)
	clear(outClasses)
	clear(outScores)
	for o := range size {
		anchor := int(mergedIdx[o]) / stride
		class := int(mergedIdx[o]) - anchor*stride - off
		copy(outBoxes[4*o:4*o+4], decoded[4*anchor:4*anchor+4])
		outClasses[o] = float32(class)
		outScores[o] = mergedScores[o]
	}
	k.outNum.Float32s()[0] = float32(size)
}

// detppDecreasingArgSort is TFLM's DecreasingArgSort: indices of values by
// decreasing value, equal values in index order, by its merge sort
// (insertion sort below 20 elements, top-down merge), step for step.
// scratch holds len(values) elements.
func detppDecreasingArgSort(values []float32, indices, scratch []int32) {
	for i := range indices {
		indices[i] = int32(i)
	}
	detppMergeSort(values, indices, scratch)
}

func detppMergeSort(values []float32, idx, scratch []int32) {
	n := len(idx)
	if n < 20 {
		detppInsertionSort(values, idx)
		return
	}
	half := n / 2
	detppMergeSort(values, idx[:half], scratch)
	detppMergeSort(values, idx[half:], scratch)
	left, right := 0, half
	for i := range n {
		if left >= half || (right < n && values[idx[right]] > values[idx[left]]) {
			scratch[i] = idx[right]
			right++
		} else {
			scratch[i] = idx[left]
			left++
		}
	}
	copy(idx, scratch[:n])
}

// detppInsertionSort is TFLM's InsertionSort: each element moves to
// std::upper_bound of the sorted prefix (libstdc++'s binary search) under
// "values[a] > values[b]".
func detppInsertionSort(values []float32, idx []int32) {
	for i := range idx {
		v := idx[i]
		first, length := 0, i
		for length > 0 {
			half := length >> 1
			mid := first + half
			if values[v] > values[idx[mid]] {
				length = half
			} else {
				first = mid + 1
				length -= half + 1
			}
		}
		copy(idx[first+1:i+1], idx[first:i])
		idx[first] = v
	}
}

// detppDecreasingPartialArgSort is TFLM's DecreasingPartialArgSort: the
// first numToSort of indices get the indices of the largest values in
// decreasing order, equal values by lower index (std::tie(value, index)).
// It is std::partial_sort as libstdc++ implements it (heap select, then
// heap sort), step for step, so that even NaN scores, which break the
// ordering, come out as TFLM's x86 build orders them.
func detppDecreasingPartialArgSort(values []float32, numToSort int, indices []int32) {
	for i := range indices {
		indices[i] = int32(i)
	}
	heap := indices[:numToSort]
	detppMakeHeap(values, heap)
	for i := numToSort; i < len(indices); i++ {
		if detppBefore(values, indices[i], indices[0]) {
			detppPopHeap(values, heap, indices, i)
		}
	}
	for last := numToSort - 1; last > 0; last-- {
		detppPopHeap(values, indices[:last], indices, last)
	}
}

// detppBefore is TFLM's comparator std::tie(values[a], b) >
// std::tie(values[b], a), spelled out as libstdc++ evaluates it.
func detppBefore(values []float32, a, b int32) bool {
	va, vb := values[a], values[b]
	return vb < va || (!(va < vb) && a < b)
}

// detppPopHeap is libstdc++'s __pop_heap: the top of heap moves to
// all[result], and all[result]'s old element is sifted into the heap.
func detppPopHeap(values []float32, heap, all []int32, result int) {
	v := all[result]
	all[result] = heap[0]
	detppAdjustHeap(values, heap, 0, v)
}

// detppMakeHeap is libstdc++'s __make_heap.
func detppMakeHeap(values []float32, heap []int32) {
	n := len(heap)
	if n < 2 {
		return
	}
	for parent := (n - 2) / 2; ; parent-- {
		detppAdjustHeap(values, heap, parent, heap[parent])
		if parent == 0 {
			return
		}
	}
}

// detppAdjustHeap is libstdc++'s __adjust_heap followed by __push_heap.
func detppAdjustHeap(values []float32, heap []int32, hole int, v int32) {
	n := len(heap)
	top := hole
	child := hole
	for child < (n-1)/2 {
		child = 2 * (child + 1)
		if detppBefore(values, heap[child], heap[child-1]) {
			child--
		}
		heap[hole] = heap[child]
		hole = child
	}
	if n&1 == 0 && child == (n-2)/2 {
		child = 2 * (child + 1)
		heap[hole] = heap[child-1]
		hole = child - 1
	}
	parent := (hole - 1) / 2
	for hole > top && detppBefore(values, heap[parent], v) {
		heap[hole] = heap[parent]
		hole = parent
		parent = (hole - 1) / 2
	}
	heap[hole] = v
}
