package pipeline

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/sensors"
)

// Vision model kinds, told apart by a model's outputs.
const (
	KindClassifier = "classifier"
	KindSSD        = "ssd"
	KindYOLO       = "yolo" // head (v8 / v5) settled by the decoder
	KindYOLOv8     = "yolov8"
	KindYOLOv5     = "yolov5"
)

// VisionOptions configure a VisionModel.
type VisionOptions struct {
	// Kind is "auto" (or ""), classifier, ssd, yolo, yolov8 or yolov5.
	Kind   string
	Labels Labels
	// Threshold is the lowest score reported; negative takes the default:
	// 0 for classifiers, 0.25 for detectors.
	Threshold float32
	// TopK classes for a classifier (default 5).
	TopK int
	// IoU above which YOLO's NMS drops a box of the same class (0.45).
	IoU float32
	// Preprocess places the frame into the input; FitSet says Preprocess.Fit
	// was chosen (else letterbox for YOLO, stretch otherwise).
	Preprocess PreprocessOptions
	FitSet     bool
	// State maps output tensor names to input tensor names whose contents
	// carry over to the next frame (recurrent detectors such as LSTM-SSD).
	// Nil pairs outputs "raw_outputs/X" with inputs "raw_inputs/init_X"
	// automatically, TensorFlow's LSTM object-detection convention.
	State map[string]string
}

// VisionModel runs one vision model on frames: preprocessing into its input,
// Invoke, and the decoding its kind needs. Not safe for concurrent use.
type VisionModel struct {
	Kind    string
	Labels  Labels
	Warning string // a mismatch worth telling the user (labels vs classes)

	it        runtime.Backend
	input     *runtime.Tensor
	pre       *Preprocessor
	threshold float32
	topK      int

	classOut *runtime.Tensor
	ssd      [4]*runtime.Tensor
	yoloOut  *runtime.Tensor
	yolo     *YOLODecoder
	state    [][2]*runtime.Tensor // output, input

	top  []Class
	dets []Detection
}

// VisionResult is the outcome of one frame. Its slices are reused by the
// next Run.
type VisionResult struct {
	Transform  Transform
	Top        []Class
	Detections []Detection
	Invoke     time.Duration
}

// NewVisionModel prepares a model for frames, deciding its kind from its
// outputs unless opts say: an SSD when TFLite_Detection_PostProcess produces
// outputs (or the first four are float32 boxes [1,N,4], classes, scores,
// count), YOLO when an output is [1, A, B] with A and B at least 5, a
// classifier otherwise.
func NewVisionModel(m *runtime.Model, opts VisionOptions) (*VisionModel, error) {
	it, err := runtime.NewInterpreter(m, nil)
	if err != nil {
		return nil, err
	}
	return NewVisionModelOn(m, it, opts)
}

// NewVisionModelOn is NewVisionModel on a backend already opened for m (the
// pure-Go interpreter or a delegate, see runtime.OpenBackend). The
// VisionModel uses the backend from then on; Close closes it.
func NewVisionModelOn(m *runtime.Model, it runtime.Backend, opts VisionOptions) (*VisionModel, error) {
	var err error
	v := &VisionModel{Labels: opts.Labels, it: it, topK: opts.TopK}
	if v.topK <= 0 {
		v.topK = 5
	}
	if len(it.Inputs()) == 0 || len(it.Outputs()) == 0 {
		return nil, fmt.Errorf("the model has no inputs or no outputs")
	}
	v.input = it.Inputs()[0]
	if err := v.decideKind(m, opts.Kind); err != nil {
		return nil, err
	}
	if err := v.pairState(opts.State); err != nil {
		return nil, err
	}
	v.ResetState()

	pre := opts.Preprocess
	if !opts.FitSet && v.Kind != KindClassifier && v.Kind != KindSSD {
		pre.Fit = FitLetterbox
	}
	if v.pre, err = NewPreprocessor(SpecOf(v.input), pre); err != nil {
		return nil, err
	}
	v.threshold = opts.Threshold
	if opts.Threshold < 0 {
		v.threshold = 0
		if v.Kind != KindClassifier {
			v.threshold = 0.25
		}
	}
	if v.yolo != nil {
		conf := v.threshold
		if conf == 0 {
			conf = math.SmallestNonzeroFloat32 // the decoder's 0 means its default
		}
		iou := opts.IoU
		if iou == 0 {
			iou = 0.45
		}
		if v.yolo, err = NewYOLODecoder(v.yoloOut.Shape, YOLOOptions{
			Head: v.yolo.Head(), NumClasses: v.yolo.NumClasses(), Conf: conf, IoU: iou,
		}); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (v *VisionModel) decideKind(m *runtime.Model, kind string) error {
	it := v.it
	if kind == "" {
		kind = "auto"
	}
	switch kind {
	case "auto", KindClassifier, KindSSD, KindYOLO, KindYOLOv8, KindYOLOv5:
	default:
		return fmt.Errorf("unknown model kind %q (auto, classifier, ssd, yolo, yolov8, yolov5)", kind)
	}
	ssd := findSSDOutputs(m, it)
	yolo := findYOLOOutput(it)
	auto := kind == "auto"
	switch {
	case (auto && ssd[0] != nil) || kind == KindSSD:
		if ssd[0] == nil {
			return fmt.Errorf("kind ssd: no TFLite_Detection_PostProcess outputs (boxes, classes, scores, count) among the outputs")
		}
		v.Kind, v.ssd = KindSSD, ssd
		if v.Labels != nil {
			if first := strings.ToLower(v.Labels.Name(0)); first == "background" || first == "???" {
				v.Warning = fmt.Sprintf("the labels start with %q; SSD class 0 is the first real class, so labels may be shifted by one", v.Labels.Name(0))
			}
		}
		return nil
	case (auto && yolo != nil) || strings.HasPrefix(kind, KindYOLO):
		if yolo == nil {
			return fmt.Errorf("kind %s: no output of shape [1, 4+classes, anchors] or [1, anchors, 4/5+classes]", kind)
		}
		head := YOLOAuto
		switch kind {
		case KindYOLOv8:
			head = YOLOv8
		case KindYOLOv5:
			head = YOLOv5
		}
		dec, err := NewYOLODecoder(yolo.Shape, YOLOOptions{Head: head, NumClasses: len(v.Labels)})
		if err != nil && v.Labels != nil {
			// The labels do not fit the head: decode by shape and say so.
			if dec, err = NewYOLODecoder(yolo.Shape, YOLOOptions{Head: head}); err == nil {
				v.Warning = fmt.Sprintf("%d labels, but the %s output %s has %d classes", len(v.Labels), dec.Head(), runtime.FormatShape(yolo.Shape), dec.NumClasses())
			}
		}
		if err != nil {
			return err
		}
		v.Kind, v.yoloOut, v.yolo = dec.Head().String(), yolo, dec
		return nil
	}
	v.Kind, v.classOut = KindClassifier, it.Outputs()[0]
	if n := v.classOut.NumElements(); v.Labels != nil && len(v.Labels) != n {
		v.Warning = fmt.Sprintf("%d labels for %d classes (output %s)", len(v.Labels), n, runtime.FormatShape(v.classOut.Shape))
	}
	return nil
}

// pairState finds the state tensors that carry over between frames.
func (v *VisionModel) pairState(names map[string]string) error {
	byName := func(list []*runtime.Tensor, name string) *runtime.Tensor {
		for _, t := range list {
			if t.Name == name {
				return t
			}
		}
		return nil
	}
	if names == nil {
		names = map[string]string{}
		for _, o := range v.it.Outputs() {
			if rest, ok := strings.CutPrefix(o.Name, "raw_outputs/"); ok {
				if in := byName(v.it.Inputs(), "raw_inputs/init_"+rest); in != nil {
					names[o.Name] = in.Name
				}
			}
		}
	}
	for outName, inName := range names {
		out, in := byName(v.it.Outputs(), outName), byName(v.it.Inputs(), inName)
		switch {
		case out == nil:
			return fmt.Errorf("state: no output named %q", outName)
		case in == nil:
			return fmt.Errorf("state: no input named %q", inName)
		case in == v.input:
			return fmt.Errorf("state: %q is the image input", inName)
		case in.Type != out.Type || in.ByteSize() != out.ByteSize() || in.Scale() != out.Scale() || in.ZeroPoint() != out.ZeroPoint():
			return fmt.Errorf("state: output %s and input %s differ in type, size or quantization", out, in)
		}
		v.state = append(v.state, [2]*runtime.Tensor{out, in})
	}
	return nil
}

// ResetState sets every input but the image to real zero (its zero point),
// the start of a recurrent model's sequence.
func (v *VisionModel) ResetState() {
	for _, t := range v.it.Inputs()[1:] {
		b := t.Bytes()
		if zp := t.ZeroPoint(); zp != 0 && (t.Type == runtime.Int8 || t.Type == runtime.Uint8) {
			for i := range b {
				b[i] = byte(zp)
			}
		} else {
			clear(b)
		}
	}
	v.it.Reset()
}

// Run processes one frame.
func (v *VisionModel) Run(f *sensors.Frame) (VisionResult, error) {
	var res VisionResult
	var err error
	if res.Transform, err = v.pre.ProcessTensor(f, v.input); err != nil {
		return res, err
	}
	start := time.Now()
	if err := v.it.Invoke(); err != nil {
		return res, err
	}
	res.Invoke = time.Since(start)
	for _, s := range v.state {
		copy(s[1].Bytes(), s[0].Bytes())
	}
	switch {
	case v.classOut != nil:
		v.top, err = TopK(DataOf(v.classOut), v.topK, v.top)
		res.Top = v.top
		for len(res.Top) > 0 && res.Top[len(res.Top)-1].Score < v.threshold {
			res.Top = res.Top[:len(res.Top)-1]
		}
	case v.yolo != nil:
		v.dets, err = v.yolo.Decode(DataOf(v.yoloOut), res.Transform, v.dets)
		res.Detections = v.dets
	default:
		v.dets, err = DecodeSSD(SSDOutputs{
			Boxes: DataOf(v.ssd[0]), Classes: DataOf(v.ssd[1]),
			Scores: DataOf(v.ssd[2]), Count: DataOf(v.ssd[3]),
		}, v.threshold, res.Transform, v.dets)
		res.Detections = v.dets
	}
	return res, err
}

// Threshold is the lowest score reported.
func (v *VisionModel) Threshold() float32 { return v.threshold }

// Label names class i ("class 3" when the labels do not).
func (v *VisionModel) Label(i int) string {
	if s := v.Labels.Name(i); s != "" {
		return s
	}
	return fmt.Sprintf("class %d", i)
}

// PersonStyle reports a two-class presence model (no_person / person).
func (v *VisionModel) PersonStyle() bool {
	return v.classOut != nil && v.classOut.NumElements() == 2 && v.Labels.Index("person") >= 0
}

// ClassOutput is the classifier's score tensor (nil for detectors).
func (v *VisionModel) ClassOutput() *runtime.Tensor { return v.classOut }

// Backend is what runs the model.
func (v *VisionModel) Backend() runtime.Backend { return v.it }

// Close closes the backend.
func (v *VisionModel) Close() error { return v.it.Close() }

// findSSDOutputs returns the four outputs of TFLite_Detection_PostProcess
// (boxes, classes, scores, count) when the model has them.
func findSSDOutputs(m *runtime.Model, it runtime.Backend) [4]*runtime.Tensor {
	var out [4]*runtime.Tensor
	for _, op := range m.Subgraphs[0].Operators {
		if op.Code.Name() == "TFLite_Detection_PostProcess" && len(op.Outputs) == 4 {
			for i, ti := range op.Outputs {
				out[i] = tensorByIndex(it, ti)
			}
			if slices.Contains(out[:], nil) {
				return [4]*runtime.Tensor{}
			}
			return out
		}
	}
	outs := it.Outputs()
	if len(outs) >= 4 {
		for _, t := range outs[:4] {
			if t.Type != runtime.Float32 {
				return out
			}
		}
		if b := outs[0]; len(b.Shape) == 3 && b.Shape[2] == 4 && outs[3].NumElements() == 1 &&
			outs[1].NumElements() == b.Shape[1] && outs[2].NumElements() == b.Shape[1] {
			copy(out[:], outs[:4])
		}
	}
	return out
}

// tensorByIndex finds model tensor index among the backend's outputs (any
// tensor, on the pure-Go interpreter).
func tensorByIndex(b runtime.Backend, index int) *runtime.Tensor {
	for _, t := range b.Outputs() {
		if t.Index == index {
			return t
		}
	}
	if it, ok := b.(*runtime.Interpreter); ok && index >= 0 && index < it.NumTensors() {
		return it.Tensor(index)
	}
	return nil
}

// findYOLOOutput returns the first output shaped like a raw YOLO head.
func findYOLOOutput(it runtime.Backend) *runtime.Tensor {
	for _, t := range it.Outputs() {
		if s := t.Shape; len(s) == 3 && s[0] == 1 && s[1] >= 5 && s[2] >= 5 {
			return t
		}
	}
	return nil
}
