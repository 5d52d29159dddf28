package pipeline

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/edged/edged/internal/runtime"
)

// Vision postprocessing: model outputs become classes, presence or
// detections. Decoders work on the outputs in place (dequantizing element
// by element) and fill caller-owned or decoder-owned slices, so a steady
// stream of frames allocates nothing.

// ---- tensors ----

// TensorData is an output's bytes with its type, shape and quantization.
// It lets decoders run on an interpreter's tensors and on raw files (golden
// outputs) alike.
type TensorData struct {
	Type      runtime.DType
	Shape     []int
	Scale     float32 // 0 when not quantized
	ZeroPoint int32
	Data      []byte
}

// DataOf describes an interpreter's tensor (sharing its bytes).
func DataOf(t *runtime.Tensor) TensorData {
	return TensorData{Type: t.Type, Shape: t.Shape, Scale: t.Scale(), ZeroPoint: t.ZeroPoint(), Data: t.Bytes()}
}

// Len is the number of elements the data holds.
func (d TensorData) Len() int {
	if s := d.Type.Size(); s > 0 {
		return len(d.Data) / s
	}
	return 0
}

// check verifies that the type is one decoders read and that the bytes
// cover the shape.
func (d TensorData) check(what string) error {
	switch d.Type {
	case runtime.Int8, runtime.Uint8:
		if !(d.Scale > 0) {
			return fmt.Errorf("%s: %s%s output without a positive scale", what, d.Type, runtime.FormatShape(d.Shape))
		}
	case runtime.Float32:
	default:
		return fmt.Errorf("%s: outputs of type %s are not supported (int8, uint8, float32)", what, d.Type)
	}
	if n := runtime.NumElements(d.Shape); d.Len() < n {
		return fmt.Errorf("%s: %s%s output holds %d bytes, its shape needs %d", what, d.Type, runtime.FormatShape(d.Shape), len(d.Data), n*d.Type.Size())
	}
	return nil
}

// At returns element i dequantized (real = scale·(q − zero point)).
func (d TensorData) At(i int) float32 {
	switch d.Type {
	case runtime.Int8:
		return d.Scale * float32(int32(int8(d.Data[i]))-d.ZeroPoint)
	case runtime.Uint8:
		return d.Scale * float32(int32(d.Data[i])-d.ZeroPoint)
	case runtime.Float32:
		return math.Float32frombits(uint32(d.Data[4*i]) | uint32(d.Data[4*i+1])<<8 | uint32(d.Data[4*i+2])<<16 | uint32(d.Data[4*i+3])<<24)
	}
	return float32(math.NaN())
}

// dequantLUT fills a table of the 256 dequantized values of an 8-bit
// output, indexed by the stored byte.
func (d TensorData) dequantLUT(lut *[256]float32) {
	for b := range 256 {
		q := int32(b)
		if d.Type == runtime.Int8 {
			q = int32(int8(b))
		}
		lut[b] = d.Scale * float32(q-d.ZeroPoint)
	}
}

// ---- classification ----

// Class is one class of a classifier's output with its dequantized score.
type Class struct {
	Index int
	Score float32
}

// TopK returns the k best classes of a classifier output, best first,
// ties to the lower index, appending to dst[:0] (no allocation when
// cap(dst) >= k). NaN scores rank last.
func TopK(out TensorData, k int, dst []Class) ([]Class, error) {
	dst = dst[:0]
	if err := out.check("classifier"); err != nil {
		return dst, err
	}
	n := runtime.NumElements(out.Shape)
	k = min(k, n)
	for i := range n {
		s := out.At(i)
		if s != s { // NaN
			s = float32(math.Inf(-1))
		}
		if len(dst) == k && (k == 0 || s <= dst[k-1].Score) {
			continue
		}
		// Insert after every entry with a score >= s (earlier indices win
		// ties).
		j := len(dst)
		if j < k {
			dst = append(dst, Class{})
		} else {
			j = k - 1
		}
		for j > 0 && dst[j-1].Score < s {
			dst[j] = dst[j-1]
			j--
		}
		dst[j] = Class{Index: i, Score: s}
	}
	return dst, nil
}

// Presence turns a stream of scores for one class (person) into a stable
// present / absent state: it turns on when the score reaches On for
// OnFrames frames in a row and off when it stays below Off for OffFrames
// frames in a row. Off below On is the hysteresis band in which the
// state holds. The zero counts mean one frame.
type Presence struct {
	On, Off             float32
	OnFrames, OffFrames int

	present bool
	run     int
}

// Update feeds one frame's score and returns the state and whether this
// frame changed it.
func (p *Presence) Update(score float32) (present, changed bool) {
	var crossing bool
	var need int
	if p.present {
		crossing, need = !(score >= p.Off), p.OffFrames
	} else {
		crossing, need = score >= p.On, p.OnFrames
	}
	if !crossing {
		p.run = 0
		return p.present, false
	}
	p.run++
	if p.run >= max(need, 1) {
		p.present, p.run = !p.present, 0
		return p.present, true
	}
	return p.present, false
}

// Present is the current state.
func (p *Presence) Present() bool { return p.present }

// Reset forgets the state (absent).
func (p *Presence) Reset() { p.present, p.run = false, 0 }

// ---- detections ----

// Rect is a box in pixels: (X1, Y1) top left, (X2, Y2) bottom right.
type Rect struct{ X1, Y1, X2, Y2 float32 }

// Area is the box's area (0 for an empty or inverted box).
func (r Rect) Area() float32 { return max(r.X2-r.X1, 0) * max(r.Y2-r.Y1, 0) }

// IoU is the intersection over union of two boxes (0 when both are
// empty), as torchvision's box_iou computes it.
func (r Rect) IoU(o Rect) float32 {
	iw := min(r.X2, o.X2) - max(r.X1, o.X1)
	ih := min(r.Y2, o.Y2) - max(r.Y1, o.Y1)
	if iw <= 0 || ih <= 0 {
		return 0
	}
	inter := iw * ih
	union := r.Area() + o.Area() - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}

// Box is a box normalised to an image's size, in TensorFlow's order.
type Box struct{ YMin, XMin, YMax, XMax float32 }

// Detection is one detected object.
type Detection struct {
	Class int
	Score float32
	// Input is the box in model-input pixels (before undoing the
	// preprocessing).
	Input Rect
	// Source is the box in frame pixels, clipped to the frame.
	Source Rect
	// Norm is Source normalised by the frame's width and height.
	Norm Box
	// Anchor is the output row the detection came from (YOLO anchor, SSD
	// detection slot).
	Anchor int
}

func (d *Detection) mapTo(tr Transform) {
	d.Source = tr.RectToSource(d.Input)
	w, h := float32(tr.SrcW), float32(tr.SrcH)
	d.Norm = Box{YMin: d.Source.Y1 / h, XMin: d.Source.X1 / w, YMax: d.Source.Y2 / h, XMax: d.Source.X2 / w}
}

// SSDOutputs are the four outputs of TFLite_Detection_PostProcess: boxes
// [1,N,4] (ymin, xmin, ymax, xmax normalised to the model input), classes
// [1,N] (0-based, background excluded), scores [1,N], count [1].
type SSDOutputs struct {
	Boxes, Classes, Scores, Count TensorData
}

// DecodeSSD returns the first count detections scoring at least threshold,
// boxes mapped to the frame through tr, appended to dst[:0] in the op's
// order (best first).
func DecodeSSD(o SSDOutputs, threshold float32, tr Transform, dst []Detection) ([]Detection, error) {
	dst = dst[:0]
	if err := o.Boxes.check("SSD boxes"); err != nil {
		return dst, err
	}
	if err := o.Classes.check("SSD classes"); err != nil {
		return dst, err
	}
	if err := o.Scores.check("SSD scores"); err != nil {
		return dst, err
	}
	if err := o.Count.check("SSD count"); err != nil {
		return dst, err
	}
	n := o.Scores.Len()
	if o.Classes.Len() < n || o.Boxes.Len() < 4*n || o.Count.Len() < 1 {
		return dst, fmt.Errorf("SSD outputs disagree: %d scores, %d classes, %d box values (want 4 per score), %d counts",
			n, o.Classes.Len(), o.Boxes.Len(), o.Count.Len())
	}
	count := o.Count.At(0)
	if !(count >= 0) {
		return dst, fmt.Errorf("SSD count output is %v", count)
	}
	m := min(int(count), n)
	inW, inH := float32(tr.InW), float32(tr.InH)
	for i := range m {
		s := o.Scores.At(i)
		if !(s >= threshold) {
			continue
		}
		d := Detection{Class: int(o.Classes.At(i)), Score: s, Anchor: i}
		ymin, xmin, ymax, xmax := o.Boxes.At(4*i), o.Boxes.At(4*i+1), o.Boxes.At(4*i+2), o.Boxes.At(4*i+3)
		d.Input = Rect{X1: xmin * inW, Y1: ymin * inH, X2: xmax * inW, Y2: ymax * inH}
		d.mapTo(tr)
		dst = append(dst, d)
	}
	return dst, nil
}

// YOLOHead is the kind of YOLO output.
type YOLOHead uint8

const (
	// YOLOAuto decides from the shape and the number of classes.
	YOLOAuto YOLOHead = iota
	// YOLOv8: per anchor cx, cy, w, h and nc class scores (sigmoid
	// applied), Ultralytics v8/v11 exports, [1, 4+nc, N] or [1, N, 4+nc].
	YOLOv8
	// YOLOv5: per anchor cx, cy, w, h, objectness and nc class
	// probabilities, score = objectness · class, [1, N, 5+nc].
	YOLOv5
)

var yoloNames = []string{"auto", "yolov8", "yolov5"}

func (h YOLOHead) String() string { return enumName(yoloNames, int(h)) }

// ParseYOLOHead reads "auto", "yolov8" or "yolov5".
func ParseYOLOHead(s string) (YOLOHead, error) {
	i, err := parseEnum(yoloNames, s, "YOLO head")
	return YOLOHead(i), err
}

// YOLOOptions configure a YOLODecoder. Zero values take the defaults
// (Ultralytics' predict defaults: confidence 0.25, IoU 0.45, at most 300
// detections, class-wise NMS).
type YOLOOptions struct {
	Head YOLOHead
	// NumClasses, when known (the label count), settles v5 versus v8 for
	// [1, N, K] outputs.
	NumClasses int
	// Conf keeps candidates scoring strictly above it.
	Conf float32
	// IoU drops a box overlapping a kept box (of the same class unless
	// ClassAgnostic) by more than it.
	IoU           float32
	ClassAgnostic bool
	MaxDet        int
	// Normalized says the boxes are fractions of the input size (most
	// TFLite exports) rather than input pixels; nil decides per output
	// from the values (all centres and sizes at most 2 means fractions).
	Normalized *bool
}

// YOLODecoder decodes raw YOLO heads: candidates over the confidence
// threshold, greedy NMS, boxes mapped back through the preprocessing
// transform. Its buffers are reused from frame to frame.
type YOLODecoder struct {
	opts          YOLOOptions
	head          YOLOHead
	n, k, nc      int
	channelsFirst bool

	lut   [256]float32
	cands []Detection
	drop  []bool
}

// NewYOLODecoder checks an output shape and settles the head and layout:
// [1, K, N] with K < N is channels first, [1, N, K] anchors first.
func NewYOLODecoder(shape []int, opts YOLOOptions) (*YOLODecoder, error) {
	if len(shape) != 3 || shape[0] != 1 || shape[1] < 5 || shape[2] < 5 {
		return nil, fmt.Errorf("YOLO output %s: want [1, 4+classes, anchors], [1, anchors, 4+classes] or [1, anchors, 5+classes]", runtime.FormatShape(shape))
	}
	d := &YOLODecoder{opts: opts, head: opts.Head}
	if d.opts.Conf == 0 {
		d.opts.Conf = 0.25
	}
	if d.opts.IoU == 0 {
		d.opts.IoU = 0.45
	}
	if d.opts.MaxDet == 0 {
		d.opts.MaxDet = 300
	}
	d.channelsFirst = shape[1] < shape[2]
	if d.channelsFirst {
		d.k, d.n = shape[1], shape[2]
	} else {
		d.n, d.k = shape[1], shape[2]
	}
	if d.head == YOLOAuto {
		switch nc := opts.NumClasses; {
		case nc > 0 && d.k == 4+nc:
			d.head = YOLOv8
		case nc > 0 && d.k == 5+nc:
			d.head = YOLOv5
		case d.channelsFirst:
			d.head = YOLOv8 // Ultralytics' v8/v11 exports are channels first
		default:
			d.head = YOLOv5 // v5's exports are anchors first
		}
	}
	d.nc = d.k - 4
	if d.head == YOLOv5 {
		d.nc = d.k - 5
	}
	if d.nc < 1 {
		return nil, fmt.Errorf("YOLO output %s has no class scores for a %s head", runtime.FormatShape(shape), d.head)
	}
	if opts.NumClasses > 0 && opts.NumClasses != d.nc {
		return nil, fmt.Errorf("YOLO output %s as %s has %d classes, the labels %d", runtime.FormatShape(shape), d.head, d.nc, opts.NumClasses)
	}
	return d, nil
}

// Head is the settled head kind.
func (d *YOLODecoder) Head() YOLOHead { return d.head }

// NumClasses is the number of classes per anchor.
func (d *YOLODecoder) NumClasses() int { return d.nc }

// Anchors is the number of anchors.
func (d *YOLODecoder) Anchors() int { return d.n }

// Decode returns the detections of one output, best first (ties in anchor
// order), appended to dst[:0]. tr is the transform of the frame the
// output came from (its InW, InH scale normalised boxes).
func (d *YOLODecoder) Decode(out TensorData, tr Transform, dst []Detection) ([]Detection, error) {
	dst = dst[:0]
	if err := out.check("YOLO"); err != nil {
		return dst, err
	}
	if out.Len() < d.n*d.k {
		return dst, fmt.Errorf("YOLO output holds %d values, want %d anchors × %d", out.Len(), d.n, d.k)
	}
	quant := out.Type != runtime.Float32
	if quant {
		out.dequantLUT(&d.lut)
	}
	val := func(a, r int) float32 {
		i := a*d.k + r
		if d.channelsFirst {
			i = r*d.n + a
		}
		if quant {
			return d.lut[out.Data[i]]
		}
		return out.At(i)
	}

	normalized := false
	if d.opts.Normalized != nil {
		normalized = *d.opts.Normalized
	} else {
		var peak float32
		for a := range d.n {
			for r := range 4 {
				peak = max(peak, val(a, r))
			}
		}
		normalized = peak <= 2
	}
	sx, sy := float32(1), float32(1)
	if normalized {
		sx, sy = float32(tr.InW), float32(tr.InH)
	}

	conf := d.opts.Conf
	cands := d.cands[:0]
	cls0 := 4
	if d.head == YOLOv5 {
		cls0 = 5
	}
	for a := range d.n {
		obj := float32(1)
		if d.head == YOLOv5 {
			if obj = val(a, 4); !(obj > conf) {
				continue
			}
		}
		best, bestC := val(a, cls0), 0
		for c := 1; c < d.nc; c++ {
			if v := val(a, cls0+c); v > best {
				best, bestC = v, c
			}
		}
		score := best * obj
		if !(score > conf) {
			continue
		}
		cx, cy, w, h := val(a, 0)*sx, val(a, 1)*sy, val(a, 2)*sx, val(a, 3)*sy
		cands = append(cands, Detection{
			Class: bestC, Score: score, Anchor: a,
			Input: Rect{X1: cx - w/2, Y1: cy - h/2, X2: cx + w/2, Y2: cy + h/2},
		})
	}
	d.cands = cands
	slices.SortStableFunc(cands, func(a, b Detection) int { return cmp.Compare(b.Score, a.Score) })
	// Ultralytics caps the boxes going into NMS at 30000.
	if len(cands) > 30000 {
		cands = cands[:30000]
	}
	keep := NMS(cands, d.opts.IoU, d.opts.ClassAgnostic, d.opts.MaxDet, &d.drop)
	for _, c := range keep {
		c.mapTo(tr)
		dst = append(dst, c)
	}
	return dst, nil
}

// NMS is greedy non-maximum suppression over detections sorted best
// first: a detection is dropped when its IoU (in Input coordinates) with
// an already kept detection of the same class (any class when agnostic)
// is above iou. It compacts the kept detections to the front of dets and
// returns them, at most maxDet (0: no limit). scratch is reused between
// calls.
func NMS(dets []Detection, iou float32, agnostic bool, maxDet int, scratch *[]bool) []Detection {
	drop := *scratch
	if cap(drop) < len(dets) {
		drop = make([]bool, len(dets))
	}
	drop = drop[:len(dets)]
	clear(drop)
	*scratch = drop
	kept := 0
	for i := range dets {
		if drop[i] {
			continue
		}
		if maxDet > 0 && kept == maxDet {
			break
		}
		d := dets[i]
		for j := i + 1; j < len(dets); j++ {
			if !drop[j] && (agnostic || dets[j].Class == d.Class) && d.Input.IoU(dets[j].Input) > iou {
				drop[j] = true
			}
		}
		dets[kept] = d
		kept++
	}
	return dets[:kept]
}
