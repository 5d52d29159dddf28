package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/edged/edged/internal/pipeline"
	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/sensors"
)

// Model kinds edged detect tells apart by their outputs.
const (
	kindClassifier = "classifier"
	kindSSD        = "ssd"
	kindYOLO       = "yolo" // head (v8 / v5) settled by the decoder
	kindYOLOv8     = "yolov8"
	kindYOLOv5     = "yolov5"
)

const detectSynopsis = "--model M [--labels L] [--threshold T] [--top K] [--json] [--annotate DIR] [--resize bilinear|area] [--fit letterbox|stretch|crop] IMAGE..."

func runDetect(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("detect", detectSynopsis, stderr)
	modelPath := fs.String("model", "", "the .tflite model: a classifier, an SSD with TFLite_Detection_PostProcess, or a raw YOLO head (required)")
	labelsPath := fs.String("labels", "", "label file: one label per line, in output order (optionally \"index label\")")
	threshold := fs.Float64("threshold", -1, "lowest score reported; default 0 for classifiers, 0.25 for detectors")
	topK := fs.Int("top", 5, "classifiers: how many of the best classes to print")
	jsonOut := fs.Bool("json", false, "print one JSON object per image and line")
	annotate := fs.String("annotate", "", "write DIR/<image name>.png with the boxes (or top class) drawn")
	resizeName := fs.String("resize", "bilinear", "resampling: bilinear (OpenCV INTER_LINEAR) or area")
	fitName := fs.String("fit", "", "placement: letterbox, stretch or crop; default letterbox for YOLO, stretch otherwise")
	kindName := fs.String("kind", "auto", "model kind: auto, classifier, ssd, yolo, yolov8 or yolov5")
	iou := fs.Float64("iou", 0.45, "YOLO: IoU above which NMS drops a box of the same class")
	fill := fs.Int("fill", 114, "letterbox padding value, 0..255")
	normName := fs.String("norm", "auto", "pixel normalisation: auto (from the input's quantization), unit [0,1], signed [-1,1] or raw [0,255]")
	bgr := fs.Bool("bgr", false, "feed 3-channel models blue, green, red")

	images, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	switch {
	case *modelPath == "":
		return usagef("--model is required")
	case len(images) == 0:
		return usagef("no images given")
	case *topK < 1:
		return usagef("--top must be at least 1, got %d", *topK)
	case *fill < 0 || *fill > 255:
		return usagef("--fill must be 0..255, got %d", *fill)
	case *iou <= 0 || *iou > 1:
		return usagef("--iou must be in (0, 1], got %v", *iou)
	}
	resize, err := pipeline.ParseResize(*resizeName)
	if err != nil {
		return usagef("--resize: %v", err)
	}
	norm, err := pipeline.ParseNormalization(*normName)
	if err != nil {
		return usagef("--norm: %v", err)
	}
	switch *kindName {
	case "auto", kindClassifier, kindSSD, kindYOLO, kindYOLOv8, kindYOLOv5:
	default:
		return usagef("--kind: unknown kind %q (auto, classifier, ssd, yolo, yolov8, yolov5)", *kindName)
	}

	var labels pipeline.Labels
	if *labelsPath != "" {
		if labels, err = pipeline.LoadLabels(*labelsPath); err != nil {
			return fmt.Errorf("labels: %w", err)
		}
	}
	m, err := runtime.LoadModelFile(*modelPath)
	if err != nil {
		return err
	}
	it, err := runtime.NewInterpreter(m, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", *modelPath, err)
	}
	d, err := newDetector(m, it, *kindName, labels)
	if err != nil {
		return fmt.Errorf("%s: %w", *modelPath, err)
	}
	if d.warning != "" {
		fmt.Fprintf(stderr, "edged detect: %s\n", d.warning)
	}

	opts := pipeline.PreprocessOptions{Resize: resize, Fill: uint8(*fill), Normalization: norm, BGR: *bgr}
	if *fitName != "" {
		if opts.Fit, err = pipeline.ParseFit(*fitName); err != nil {
			return usagef("--fit: %v", err)
		}
	} else if d.kind != kindClassifier && d.kind != kindSSD {
		opts.Fit = pipeline.FitLetterbox
	}
	if d.pre, err = pipeline.NewPreprocessor(pipeline.SpecOf(d.input), opts); err != nil {
		return fmt.Errorf("%s: %w", *modelPath, err)
	}
	d.threshold = float32(*threshold)
	if *threshold < 0 {
		d.threshold = 0
		if d.kind != kindClassifier {
			d.threshold = 0.25
		}
	}
	d.topK = *topK
	if d.yolo != nil {
		conf := d.threshold
		if conf == 0 {
			conf = math.SmallestNonzeroFloat32 // the decoder's 0 means its default
		}
		if d.yolo, err = pipeline.NewYOLODecoder(d.yoloOut.Shape, pipeline.YOLOOptions{
			Head: d.yolo.Head(), NumClasses: d.yolo.NumClasses(), Conf: conf, IoU: float32(*iou),
		}); err != nil {
			return err
		}
	}
	if *annotate != "" {
		if err := os.MkdirAll(*annotate, 0o755); err != nil {
			return err
		}
	}

	enc := json.NewEncoder(stdout)
	var failed []string
	var frame *sensors.Frame
	for _, path := range images {
		res, f, err := d.run(path, frame)
		frame = f
		if err != nil {
			fmt.Fprintf(stderr, "edged detect: %v\n", err)
			failed = append(failed, path)
			continue
		}
		if *jsonOut {
			if err := enc.Encode(d.record(path, res)); err != nil {
				return err
			}
		} else {
			d.print(stdout, path, res)
		}
		if *annotate != "" {
			out := filepath.Join(*annotate, strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))+".png")
			if err := d.annotate(frame, res, out); err != nil {
				fmt.Fprintf(stderr, "edged detect: %s: annotating: %v\n", path, err)
				failed = append(failed, path)
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d images failed: %s", len(failed), len(images), strings.Join(failed, ", "))
	}
	return nil
}

// parseInterleaved parses flags that may come before, between or after
// the image names.
func parseInterleaved(fs interface {
	Parse([]string) error
	Args() []string
}, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return rest, nil
		}
		rest = append(rest, args[0])
		args = args[1:]
	}
}

// detector is one model set up for edged detect.
type detector struct {
	kind    string
	labels  pipeline.Labels
	it      *runtime.Interpreter
	input   *runtime.Tensor
	pre     *pipeline.Preprocessor
	warning string

	threshold float32
	topK      int

	classOut *runtime.Tensor
	ssd      [4]*runtime.Tensor
	yoloOut  *runtime.Tensor
	yolo     *pipeline.YOLODecoder

	top  []pipeline.Class
	dets []pipeline.Detection
}

// newDetector decides the model kind from its outputs (or the --kind
// flag): an SSD when TFLite_Detection_PostProcess produces outputs (or the
// first four outputs are float32 boxes [1,N,4], classes, scores, count),
// YOLO when an output is [1, A, B] with both A and B at least 5, a
// classifier otherwise.
func newDetector(m *runtime.Model, it *runtime.Interpreter, kind string, labels pipeline.Labels) (*detector, error) {
	d := &detector{labels: labels, it: it}
	if len(it.Inputs()) == 0 || len(it.Outputs()) == 0 {
		return nil, fmt.Errorf("the model has no inputs or no outputs")
	}
	d.input = it.Inputs()[0]
	// Further inputs (recurrent state such as traffic_model's LSTM) start
	// at real 0: their zero point.
	for _, t := range it.Inputs()[1:] {
		b := t.Bytes()
		if zp := t.ZeroPoint(); zp != 0 && (t.Type == runtime.Int8 || t.Type == runtime.Uint8) {
			for i := range b {
				b[i] = byte(zp)
			}
		} else {
			clear(b)
		}
	}

	ssd := findSSDOutputs(m, it)
	yolo := findYOLOOutput(it)
	auto := kind == "auto"
	switch {
	case (auto && ssd[0] != nil) || kind == kindSSD:
		if ssd[0] == nil {
			return nil, fmt.Errorf("--kind ssd: no TFLite_Detection_PostProcess outputs (boxes, classes, scores, count) among the outputs: %s", describeTensors(it.Outputs()))
		}
		d.kind, d.ssd = kindSSD, ssd
		if labels != nil {
			d.warning = checkSSDLabels(labels)
		}
		return d, nil
	case (auto && yolo != nil) || strings.HasPrefix(kind, kindYOLO):
		if yolo == nil {
			return nil, fmt.Errorf("--kind %s: no output of shape [1, 4+classes, anchors] or [1, anchors, 4/5+classes] among: %s", kind, describeTensors(it.Outputs()))
		}
		head := pipeline.YOLOAuto
		switch kind {
		case kindYOLOv8:
			head = pipeline.YOLOv8
		case kindYOLOv5:
			head = pipeline.YOLOv5
		}
		dec, err := pipeline.NewYOLODecoder(yolo.Shape, pipeline.YOLOOptions{Head: head, NumClasses: len(labels)})
		if err != nil && labels != nil {
			// The labels do not fit the head: decode by shape and say so.
			if dec, err = pipeline.NewYOLODecoder(yolo.Shape, pipeline.YOLOOptions{Head: head}); err == nil {
				d.warning = fmt.Sprintf("%d labels, but the %s output %s has %d classes", len(labels), dec.Head(), runtime.FormatShape(yolo.Shape), dec.NumClasses())
			}
		}
		if err != nil {
			return nil, err
		}
		d.kind, d.yoloOut, d.yolo = dec.Head().String(), yolo, dec
		return d, nil
	}
	d.kind, d.classOut = kindClassifier, it.Outputs()[0]
	if n := d.classOut.NumElements(); labels != nil && len(labels) != n {
		d.warning = fmt.Sprintf("%d labels for %d classes (output %s)", len(labels), n, runtime.FormatShape(d.classOut.Shape))
	}
	return d, nil
}

// findSSDOutputs returns the four outputs of TFLite_Detection_PostProcess
// (boxes, classes, scores, count) when the model has them.
func findSSDOutputs(m *runtime.Model, it *runtime.Interpreter) [4]*runtime.Tensor {
	var out [4]*runtime.Tensor
	for _, op := range m.Subgraphs[0].Operators {
		if op.Code.Name() == "TFLite_Detection_PostProcess" && len(op.Outputs) == 4 {
			for i, ti := range op.Outputs {
				out[i] = it.Tensor(ti)
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

// findYOLOOutput returns the first output shaped like a raw YOLO head.
func findYOLOOutput(it *runtime.Interpreter) *runtime.Tensor {
	for _, t := range it.Outputs() {
		if s := t.Shape; len(s) == 3 && s[0] == 1 && s[1] >= 5 && s[2] >= 5 {
			return t
		}
	}
	return nil
}

// checkSSDLabels notes label files that start with a background entry:
// TFLite_Detection_PostProcess numbers classes without it.
func checkSSDLabels(l pipeline.Labels) string {
	if first := strings.ToLower(l.Name(0)); first == "background" || first == "???" {
		return fmt.Sprintf("the labels start with %q; SSD class 0 is the first real class, so labels may be shifted by one", l.Name(0))
	}
	return ""
}

type detectResult struct {
	tr       pipeline.Transform
	top      []pipeline.Class
	dets     []pipeline.Detection
	invokeUS float64
}

func (d *detector) run(path string, reuse *sensors.Frame) (detectResult, *sensors.Frame, error) {
	f, err := os.Open(path)
	if err != nil {
		return detectResult{}, reuse, err
	}
	frame, err := sensors.DecodeImage(f, path, reuse)
	f.Close()
	if err != nil {
		return detectResult{}, reuse, err
	}
	var res detectResult
	if res.tr, err = d.pre.ProcessTensor(frame, d.input); err != nil {
		return res, frame, fmt.Errorf("%s: %w", path, err)
	}
	start := time.Now()
	if err := d.it.Invoke(); err != nil {
		return res, frame, fmt.Errorf("%s: %w", path, err)
	}
	res.invokeUS = float64(time.Since(start).Nanoseconds()) / 1e3
	switch {
	case d.classOut != nil:
		d.top, err = pipeline.TopK(pipeline.DataOf(d.classOut), d.topK, d.top)
		res.top = d.top
		for len(res.top) > 0 && res.top[len(res.top)-1].Score < d.threshold {
			res.top = res.top[:len(res.top)-1]
		}
	case d.yolo != nil:
		d.dets, err = d.yolo.Decode(pipeline.DataOf(d.yoloOut), res.tr, d.dets)
		res.dets = d.dets
	default:
		d.dets, err = pipeline.DecodeSSD(pipeline.SSDOutputs{
			Boxes: pipeline.DataOf(d.ssd[0]), Classes: pipeline.DataOf(d.ssd[1]),
			Scores: pipeline.DataOf(d.ssd[2]), Count: pipeline.DataOf(d.ssd[3]),
		}, d.threshold, res.tr, d.dets)
		res.dets = d.dets
	}
	if err != nil {
		return res, frame, fmt.Errorf("%s: %w", path, err)
	}
	return res, frame, nil
}

func (d *detector) label(i int) string {
	if s := d.labels.Name(i); s != "" {
		return s
	}
	return fmt.Sprintf("class %d", i)
}

func (d *detector) print(w io.Writer, path string, res detectResult) {
	if d.classOut != nil {
		if len(res.top) == 0 {
			fmt.Fprintf(w, "%s: nothing scores %v or more\n", path, d.threshold)
			return
		}
		fmt.Fprintf(w, "%s: %s (%.4f)\n", path, d.label(res.top[0].Index), res.top[0].Score)
		if d.personStyle() {
			return
		}
		for _, c := range res.top {
			fmt.Fprintf(w, "  %5d  %.4f  %s\n", c.Index, c.Score, d.label(c.Index))
		}
		return
	}
	fmt.Fprintf(w, "%s: %d detection(s) (%s, %dx%d)\n", path, len(res.dets), d.kind, res.tr.SrcW, res.tr.SrcH)
	for _, det := range res.dets {
		s := det.Source
		fmt.Fprintf(w, "  %-16s %.4f  x %.1f-%.1f  y %.1f-%.1f\n", d.label(det.Class), det.Score, s.X1, s.X2, s.Y1, s.Y2)
	}
}

// personStyle reports a two-class presence model (no_person / person):
// its text output is the top class alone.
func (d *detector) personStyle() bool {
	return d.classOut != nil && d.classOut.NumElements() == 2 && d.labels.Index("person") >= 0
}

type classJSON struct {
	Index int     `json:"index"`
	Label string  `json:"label,omitempty"`
	Score float64 `json:"score"`
}

type boxJSON struct {
	// Normalised to the image's width and height.
	YMin float64 `json:"ymin"`
	XMin float64 `json:"xmin"`
	YMax float64 `json:"ymax"`
	XMax float64 `json:"xmax"`
	// Image pixels.
	X1 float64 `json:"x1"`
	Y1 float64 `json:"y1"`
	X2 float64 `json:"x2"`
	Y2 float64 `json:"y2"`
}

type detectionJSON struct {
	Index int     `json:"index"`
	Label string  `json:"label,omitempty"`
	Score float64 `json:"score"`
	Box   boxJSON `json:"box"`
}

type classifyRecord struct {
	File     string      `json:"file"`
	Kind     string      `json:"kind"`
	Width    int         `json:"width"`
	Height   int         `json:"height"`
	Top      []classJSON `json:"top"`
	InvokeUS float64     `json:"invoke_us"`
}

type detectRecord struct {
	File       string          `json:"file"`
	Kind       string          `json:"kind"`
	Width      int             `json:"width"`
	Height     int             `json:"height"`
	Detections []detectionJSON `json:"detections"`
	InvokeUS   float64         `json:"invoke_us"`
}

func round(v float32, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(float64(v)*p) / p
}

func (d *detector) record(path string, res detectResult) any {
	if d.classOut != nil {
		r := classifyRecord{File: path, Kind: d.kind, Width: res.tr.SrcW, Height: res.tr.SrcH, Top: []classJSON{}, InvokeUS: math.Round(res.invokeUS)}
		for _, c := range res.top {
			r.Top = append(r.Top, classJSON{Index: c.Index, Label: d.labels.Name(c.Index), Score: round(c.Score, 6)})
		}
		return r
	}
	r := detectRecord{File: path, Kind: d.kind, Width: res.tr.SrcW, Height: res.tr.SrcH, Detections: []detectionJSON{}, InvokeUS: math.Round(res.invokeUS)}
	for _, det := range res.dets {
		n, s := det.Norm, det.Source
		r.Detections = append(r.Detections, detectionJSON{
			Index: det.Class, Label: d.labels.Name(det.Class), Score: round(det.Score, 6),
			Box: boxJSON{
				YMin: round(n.YMin, 6), XMin: round(n.XMin, 6), YMax: round(n.YMax, 6), XMax: round(n.XMax, 6),
				X1: round(s.X1, 2), Y1: round(s.Y1, 2), X2: round(s.X2, 2), Y2: round(s.Y2, 2),
			},
		})
	}
	return r
}

// ---- annotation ----

var palette = []color.RGBA{
	{230, 25, 75, 255}, {60, 180, 75, 255}, {255, 225, 25, 255}, {0, 130, 200, 255},
	{245, 130, 48, 255}, {145, 30, 180, 255}, {70, 240, 240, 255}, {240, 50, 230, 255},
	{210, 245, 60, 255}, {250, 190, 212, 255}, {0, 128, 128, 255}, {170, 110, 40, 255},
}

func (d *detector) annotate(frame *sensors.Frame, res detectResult, out string) error {
	rgb, err := pipeline.FrameToRGB(frame, pipeline.YUVFull, nil)
	if err != nil {
		return err
	}
	img := image.NewRGBA(image.Rect(0, 0, rgb.Width, rgb.Height))
	for i := 0; i < rgb.Width*rgb.Height; i++ {
		copy(img.Pix[4*i:4*i+3], rgb.Data[3*i:3*i+3])
		img.Pix[4*i+3] = 0xff
	}
	if d.classOut != nil {
		if len(res.top) > 0 {
			c := res.top[0]
			drawLabel(img, 0, 0, fmt.Sprintf("%s %.2f", d.label(c.Index), c.Score), palette[c.Index%len(palette)])
		}
	} else {
		thick := max(1, min(rgb.Width, rgb.Height)/300)
		for _, det := range res.dets {
			col := palette[det.Class%len(palette)]
			s := det.Source
			r := image.Rect(int(s.X1), int(s.Y1), int(math.Ceil(float64(s.X2))), int(math.Ceil(float64(s.Y2))))
			drawRect(img, r, thick, col)
			drawLabel(img, r.Min.X, r.Min.Y-15, fmt.Sprintf("%s %.2f", d.label(det.Class), det.Score), col)
		}
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// drawRect draws the outline of r, thick pixels wide, inside the image.
func drawRect(img *image.RGBA, r image.Rectangle, thick int, c color.RGBA) {
	b := img.Bounds()
	fill := func(x0, y0, x1, y1 int) {
		rr := image.Rect(x0, y0, x1, y1).Intersect(b)
		for y := rr.Min.Y; y < rr.Max.Y; y++ {
			for x := rr.Min.X; x < rr.Max.X; x++ {
				img.SetRGBA(x, y, c)
			}
		}
	}
	fill(r.Min.X, r.Min.Y, r.Max.X, r.Min.Y+thick)
	fill(r.Min.X, r.Max.Y-thick, r.Max.X, r.Max.Y)
	fill(r.Min.X, r.Min.Y, r.Min.X+thick, r.Max.Y)
	fill(r.Max.X-thick, r.Min.Y, r.Max.X, r.Max.Y)
}

// drawLabel writes text in black on a box of colour c whose top left is
// (x, y), moved inside the image.
func drawLabel(img *image.RGBA, x, y int, text string, c color.RGBA) {
	face := basicfont.Face7x13
	w := font.MeasureString(face, text).Ceil() + 4
	h := face.Height + 2
	b := img.Bounds()
	x = max(b.Min.X, min(x, b.Max.X-w))
	y = max(b.Min.Y, min(y, b.Max.Y-h))
	box := image.Rect(x, y, x+w, y+h).Intersect(b)
	for yy := box.Min.Y; yy < box.Max.Y; yy++ {
		for xx := box.Min.X; xx < box.Max.X; xx++ {
			img.SetRGBA(xx, yy, c)
		}
	}
	dr := font.Drawer{Dst: img, Src: image.Black, Face: face, Dot: fixed.P(x+2, y+1+face.Ascent)}
	dr.DrawString(text)
}
