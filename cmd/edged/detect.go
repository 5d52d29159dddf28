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

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/edged/edged/internal/pipeline"
	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/sensors"
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
	sequence := fs.Bool("sequence", false, "the images are consecutive video frames: carry a recurrent model's state (e.g. LSTM-SSD) from one to the next")

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
	case "auto", pipeline.KindClassifier, pipeline.KindSSD, pipeline.KindYOLO, pipeline.KindYOLOv8, pipeline.KindYOLOv5:
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
	opts := pipeline.VisionOptions{
		Kind: *kindName, Labels: labels, Threshold: float32(*threshold), TopK: *topK, IoU: float32(*iou),
		Preprocess: pipeline.PreprocessOptions{Resize: resize, Fill: uint8(*fill), Normalization: norm, BGR: *bgr},
	}
	if *fitName != "" {
		if opts.Preprocess.Fit, err = pipeline.ParseFit(*fitName); err != nil {
			return usagef("--fit: %v", err)
		}
		opts.FitSet = true
	}
	vm, err := pipeline.NewVisionModel(m, opts)
	if err != nil {
		return fmt.Errorf("%s: %w", *modelPath, err)
	}
	if vm.Warning != "" {
		fmt.Fprintf(stderr, "edged detect: %s\n", vm.Warning)
	}
	d := &detector{VisionModel: vm}
	if *annotate != "" {
		if err := os.MkdirAll(*annotate, 0o755); err != nil {
			return err
		}
	}

	enc := json.NewEncoder(stdout)
	var failed []string
	var frame *sensors.Frame
	for _, path := range images {
		if !*sequence {
			d.ResetState()
		}
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

// detector prints and draws a VisionModel's results for edged detect.
type detector struct {
	*pipeline.VisionModel
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
	r, err := d.Run(frame)
	if err != nil {
		return detectResult{}, frame, fmt.Errorf("%s: %w", path, err)
	}
	return detectResult{tr: r.Transform, top: r.Top, dets: r.Detections, invokeUS: float64(r.Invoke.Nanoseconds()) / 1e3}, frame, nil
}

func (d *detector) print(w io.Writer, path string, res detectResult) {
	if d.Kind == pipeline.KindClassifier {
		if len(res.top) == 0 {
			fmt.Fprintf(w, "%s: nothing scores %v or more\n", path, d.Threshold())
			return
		}
		fmt.Fprintf(w, "%s: %s (%.4f)\n", path, d.Label(res.top[0].Index), res.top[0].Score)
		if d.PersonStyle() {
			return // a two-class presence model: the top class says it all
		}
		for _, c := range res.top {
			fmt.Fprintf(w, "  %5d  %.4f  %s\n", c.Index, c.Score, d.Label(c.Index))
		}
		return
	}
	fmt.Fprintf(w, "%s: %d detection(s) (%s, %dx%d)\n", path, len(res.dets), d.Kind, res.tr.SrcW, res.tr.SrcH)
	for _, det := range res.dets {
		s := det.Source
		fmt.Fprintf(w, "  %-16s %.4f  x %.1f-%.1f  y %.1f-%.1f\n", d.Label(det.Class), det.Score, s.X1, s.X2, s.Y1, s.Y2)
	}
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
	if d.Kind == pipeline.KindClassifier {
		r := classifyRecord{File: path, Kind: d.Kind, Width: res.tr.SrcW, Height: res.tr.SrcH, Top: []classJSON{}, InvokeUS: math.Round(res.invokeUS)}
		for _, c := range res.top {
			r.Top = append(r.Top, classJSON{Index: c.Index, Label: d.Labels.Name(c.Index), Score: round(c.Score, 6)})
		}
		return r
	}
	r := detectRecord{File: path, Kind: d.Kind, Width: res.tr.SrcW, Height: res.tr.SrcH, Detections: []detectionJSON{}, InvokeUS: math.Round(res.invokeUS)}
	for _, det := range res.dets {
		n, s := det.Norm, det.Source
		r.Detections = append(r.Detections, detectionJSON{
			Index: det.Class, Label: d.Labels.Name(det.Class), Score: round(det.Score, 6),
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
	if d.Kind == pipeline.KindClassifier {
		if len(res.top) > 0 {
			c := res.top[0]
			drawLabel(img, 0, 0, fmt.Sprintf("%s %.2f", d.Label(c.Index), c.Score), palette[c.Index%len(palette)])
		}
	} else {
		thick := max(1, min(rgb.Width, rgb.Height)/300)
		for _, det := range res.dets {
			col := palette[det.Class%len(palette)]
			s := det.Source
			r := image.Rect(int(s.X1), int(s.Y1), int(math.Ceil(float64(s.X2))), int(math.Ceil(float64(s.Y2))))
			drawRect(img, r, thick, col)
			drawLabel(img, r.Min.X, r.Min.Y-15, fmt.Sprintf("%s %.2f", d.Label(det.Class), det.Score), col)
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
