// Package pipeline holds edged's pipelines between sensors and the
// runtime: so far the vision half — preprocessing frames into input
// tensors, postprocessing classifier, SSD and YOLO outputs, and motion
// gating.
package pipeline

import (
	"fmt"
	"math"
	"strings"
	"unsafe"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/sensors"
)

// Vision preprocessing: one camera frame (or decoded image) becomes one
// model input tensor, written straight into the interpreter's input
// buffer. A Preprocessor is built once per model input; after the first
// frame of a given size and format it allocates nothing.
//
// The steps, in order:
//
//  1. Region and placement (Fit): stretch the whole frame over the input,
//     letterbox it (scale by the smaller ratio, centre, pad with Fill), or
//     crop the centre of the frame to the input's aspect ratio. The
//     resulting Transform maps boxes back to frame pixels.
//  2. Colour: the frame's pixels are read in place when the model takes
//     them as they are (RGB24/BGR24/RGBA32 into a 3-channel model, GRAY8
//     into any model, the Y plane of a YUV frame into a 1-channel model).
//     Otherwise the region is converted once into scratch: YUV to RGB
//     (BT.601, limited or full range, see YUVRange), RGB to gray (BT.601
//     luma weights 0.299, 0.587, 0.114 in 16-bit fixed point, as PIL's
//     convert("L")).
//  3. Resize (ResizeBilinear or ResizeArea) to the placed size.
//  4. Normalisation and quantization through a 256-entry table per
//     channel, written in the input's layout (NHWC or NCHW) and type
//     (int8, uint8, float32).

// Fit says how a frame is placed in the model input.
type Fit uint8

const (
	// FitStretch scales each axis to fill the input (aspect ratio lost).
	FitStretch Fit = iota
	// FitLetterbox scales by the smaller of the two ratios, centres the
	// image and pads the rest with Fill (Ultralytics' LetterBox).
	FitLetterbox
	// FitCrop takes the largest centred region of the input's aspect ratio
	// and scales it to fill the input.
	FitCrop
)

var fitNames = []string{"stretch", "letterbox", "crop"}

func (f Fit) String() string { return enumName(fitNames, int(f)) }

// ParseFit reads "stretch", "letterbox" or "crop".
func ParseFit(s string) (Fit, error) {
	i, err := parseEnum(fitNames, s, "fit")
	return Fit(i), err
}

// ResizeMethod is the resampling filter.
type ResizeMethod uint8

const (
	// ResizeBilinear is OpenCV's INTER_LINEAR for 8-bit images: half-pixel
	// centres (source x = (dx + 0.5) · srcW/dstW − 0.5, clamped to the
	// image), weights quantized to 1/2048 (OpenCV's
	// INTER_RESIZE_COEF_SCALE), a horizontal then a vertical pass, the
	// vertical pass rounding exactly as OpenCV's fixed-point VResizeLinear.
	// On the same decoded pixels it reproduces cv2.resize byte for byte
	// (tested against values from OpenCV 4.6).
	ResizeBilinear ResizeMethod = iota
	// ResizeArea averages the source pixels each output pixel covers,
	// weighted by the covered fraction (a box filter; for upscaling it
	// blends the at most two source pixels a destination pixel overlaps).
	// Best for large downscales (e.g. 1080p to 96×96).
	ResizeArea
)

var resizeNames = []string{"bilinear", "area"}

func (r ResizeMethod) String() string { return enumName(resizeNames, int(r)) }

// ParseResize reads "bilinear" or "area".
func ParseResize(s string) (ResizeMethod, error) {
	i, err := parseEnum(resizeNames, s, "resize method")
	return ResizeMethod(i), err
}

// YUVRange is the range of a YUV frame's samples. Both use BT.601
// coefficients (Kr = 0.299, Kb = 0.114), which V4L2 webcams and the Pi's
// camera stack use for SD and (by default, "sYCC"/JPEG-like) for most
// capture formats.
type YUVRange uint8

const (
	// YUVLimited: Y in 16..235, U and V in 16..240 ("studio swing", V4L2's
	// default quantization for YUV formats):
	// R = 1.164384(Y−16) + 1.596027(V−128),
	// G = 1.164384(Y−16) − 0.391762(U−128) − 0.812968(V−128),
	// B = 1.164384(Y−16) + 2.017232(U−128).
	YUVLimited YUVRange = iota
	// YUVFull: Y, U, V in 0..255 (JFIF): R = Y + 1.402(V−128),
	// G = Y − 0.344136(U−128) − 0.714136(V−128), B = Y + 1.772(U−128).
	YUVFull
)

var yuvRangeNames = []string{"limited", "full"}

func (r YUVRange) String() string { return enumName(yuvRangeNames, int(r)) }

// Normalization is the real value a model expects for a pixel value v in
// 0..255, before quantization.
type Normalization uint8

const (
	// NormAuto infers the range from the input's quantization: the real
	// range its levels cover is about [0, 1], [−1, 1] or [0, 255]; float
	// inputs take [0, 1].
	NormAuto Normalization = iota
	// NormUnit: v/255, in [0, 1].
	NormUnit
	// NormSigned: (v − 127.5)/127.5, in [−1, 1].
	NormSigned
	// NormRaw: v itself, in [0, 255].
	NormRaw
)

var normNames = []string{"auto", "unit", "signed", "raw"}

func (n Normalization) String() string { return enumName(normNames, int(n)) }

// ParseNormalization reads "auto", "unit", "signed" or "raw".
func ParseNormalization(s string) (Normalization, error) {
	i, err := parseEnum(normNames, s, "normalization")
	return Normalization(i), err
}

// Layout is the order of an image input's dimensions.
type Layout uint8

const (
	// LayoutAuto: [1,H,W,C] unless the shape is [1,C,H,W] with C 1 or 3
	// and a last dimension that is not; rank 3 [1,H,W] is one gray channel.
	LayoutAuto Layout = iota
	LayoutNHWC
	LayoutNCHW
)

// PreprocessOptions configure a Preprocessor. The zero value stretches
// with bilinear resampling, fills with black, feeds RGB, reads YUV as
// limited range and infers normalisation and layout.
type PreprocessOptions struct {
	Fit    Fit
	Resize ResizeMethod
	// Fill is the letterbox padding in pixel units, for every channel
	// (Ultralytics uses 114); it is normalised and quantized like a pixel.
	Fill uint8
	// BGR feeds a 3-channel model blue, green, red instead of red, green,
	// blue.
	BGR           bool
	YUVRange      YUVRange
	Normalization Normalization
	// Mean and Std, when Std[c] is non-zero, replace Normalization for
	// channel c: real = (v − Mean[c]) / Std[c] (e.g. ImageNet statistics
	// for float models).
	Mean, Std [3]float32
	Layout    Layout
}

// InputSpec is what preprocessing needs to know of an input tensor.
type InputSpec struct {
	Type      runtime.DType
	Shape     []int
	Scale     float32 // 0: not quantized
	ZeroPoint int32
}

// SpecOf describes an interpreter's tensor.
func SpecOf(t *runtime.Tensor) InputSpec {
	return InputSpec{Type: t.Type, Shape: t.Shape, Scale: t.Scale(), ZeroPoint: t.ZeroPoint()}
}

// SpecOfInfo describes a model's tensor (no interpreter needed).
func SpecOfInfo(t *runtime.TensorInfo) InputSpec {
	s := InputSpec{Type: t.Type, Shape: t.Shape}
	if t.Quant.Quantized() {
		s.Scale, s.ZeroPoint = t.Quant.Scale[0], int32(t.Quant.ZeroPoint[0])
	}
	return s
}

// Transform records how a frame was placed in the model input, to map
// coordinates between the two. A model-input pixel coordinate (x, y) is
// frame coordinate ((x − PadX)/ScaleX + RegionX, (y − PadY)/ScaleY +
// RegionY).
type Transform struct {
	SrcW, SrcH int // the frame
	InW, InH   int // the model input
	// The part of the frame used (all of it unless cropped).
	RegionX, RegionY, RegionW, RegionH int
	// Where the resized image sits in the input (letterbox padding) and
	// its size.
	PadX, PadY, ContentW, ContentH int
	// Model-input pixels per frame pixel.
	ScaleX, ScaleY float64
}

// ToSource maps a model-input pixel coordinate to frame pixels.
func (t Transform) ToSource(x, y float64) (float64, float64) {
	return (x-float64(t.PadX))/t.ScaleX + float64(t.RegionX), (y-float64(t.PadY))/t.ScaleY + float64(t.RegionY)
}

// ToInput maps a frame pixel coordinate to model-input pixels.
func (t Transform) ToInput(x, y float64) (float64, float64) {
	return (x-float64(t.RegionX))*t.ScaleX + float64(t.PadX), (y-float64(t.RegionY))*t.ScaleY + float64(t.PadY)
}

// RectToSource maps a box in model-input pixels to frame pixels, clipped
// to the frame.
func (t Transform) RectToSource(r Rect) Rect {
	x1, y1 := t.ToSource(float64(r.X1), float64(r.Y1))
	x2, y2 := t.ToSource(float64(r.X2), float64(r.Y2))
	return Rect{
		X1: float32(clampF(x1, 0, float64(t.SrcW))), Y1: float32(clampF(y1, 0, float64(t.SrcH))),
		X2: float32(clampF(x2, 0, float64(t.SrcW))), Y2: float32(clampF(y2, 0, float64(t.SrcH))),
	}
}

func clampF(v, lo, hi float64) float64 { return math.Min(math.Max(v, lo), hi) }

// NewTransform computes the placement of a srcW×srcH frame in an inW×inH
// input.
func NewTransform(fit Fit, srcW, srcH, inW, inH int) Transform {
	t := Transform{SrcW: srcW, SrcH: srcH, InW: inW, InH: inH, RegionW: srcW, RegionH: srcH, ContentW: inW, ContentH: inH}
	switch fit {
	case FitLetterbox:
		// As Ultralytics: gain = min ratio, new size rounded (Python's
		// round, half to even), padding split with the odd pixel at the
		// bottom / right.
		g := math.Min(float64(inW)/float64(srcW), float64(inH)/float64(srcH))
		t.ContentW = min(inW, max(1, int(math.RoundToEven(float64(srcW)*g))))
		t.ContentH = min(inH, max(1, int(math.RoundToEven(float64(srcH)*g))))
		t.PadX, t.PadY = (inW-t.ContentW)/2, (inH-t.ContentH)/2
		t.ScaleX, t.ScaleY = g, g
		return t
	case FitCrop:
		// The largest centred region with the input's aspect ratio.
		if srcW*inH > srcH*inW { // frame wider than the input
			t.RegionW = min(srcW, max(1, int(math.RoundToEven(float64(srcH)*float64(inW)/float64(inH)))))
		} else {
			t.RegionH = min(srcH, max(1, int(math.RoundToEven(float64(srcW)*float64(inH)/float64(inW)))))
		}
		t.RegionX, t.RegionY = (srcW-t.RegionW)/2, (srcH-t.RegionH)/2
	}
	t.ScaleX, t.ScaleY = float64(inW)/float64(t.RegionW), float64(inH)/float64(t.RegionH)
	return t
}

// view is a window of 8-bit pixels read in place: pixel (x, y) channel c
// is pix[y*stride + x*step + off[c]].
type view struct {
	pix          []byte
	stride, step int
	w, h, cn     int
	off          [3]int
}

// Preprocessor turns frames into one model input. Build it once per
// model input with NewPreprocessor; it is not safe for concurrent use.
type Preprocessor struct {
	spec        InputSpec
	opts        PreprocessOptions
	inW, inH    int
	inC         int // 1 or 3
	nchw        bool
	float       bool
	shiftLevels bool // quantized levels are the pixel values (see buildLUT)

	lut  [3][256]uint8   // int8 / uint8 inputs: the stored byte
	flut [3][256]float32 // float32 inputs
	// expandY maps limited-range luma to full range (gray models fed the Y
	// plane of a limited-range YUV frame), composed into the lookup.
	expandY [256]uint8
	yuv     yuvTables

	// Per frame geometry; rebuilt when the frame's size or format changes.
	geomW, geomH int
	geomFormat   sensors.PixelFormat
	tr           Transform
	bl           bilinearTables
	ar           areaTables

	conv   []byte // converted source region (gray or RGB), when needed
	outRow []byte // one resized row, ContentW*inC bytes
	hrow   [2][]int32
	hrowY  [2]int
	facc   []float32 // area: vertical accumulator
	frow   []float32 // area: one horizontally resampled row
}

// NewPreprocessor prepares preprocessing for an input tensor: an image
// input of type int8, uint8 or float32 with shape [1,H,W,C], [1,C,H,W]
// (C = 1 or 3) or [1,H,W].
func NewPreprocessor(spec InputSpec, opts PreprocessOptions) (*Preprocessor, error) {
	p := &Preprocessor{spec: spec, opts: opts}
	desc := fmt.Sprintf("input %s%s", spec.Type, runtime.FormatShape(spec.Shape))
	switch spec.Type {
	case runtime.Int8, runtime.Uint8:
		if spec.Scale <= 0 || math.IsInf(float64(spec.Scale), 0) || math.IsNaN(float64(spec.Scale)) {
			return nil, fmt.Errorf("%s: a quantized image input needs a positive scale, has %v", desc, spec.Scale)
		}
	case runtime.Float32:
		p.float = true
	default:
		return nil, fmt.Errorf("%s: image inputs of type %s are not supported (int8, uint8, float32)", desc, spec.Type)
	}
	s := spec.Shape
	switch {
	case len(s) == 3 && s[0] == 1:
		p.inH, p.inW, p.inC = s[1], s[2], 1
	case len(s) == 4 && s[0] == 1:
		nchw := opts.Layout == LayoutNCHW ||
			(opts.Layout == LayoutAuto && (s[1] == 1 || s[1] == 3) && s[3] != 1 && s[3] != 3)
		if nchw {
			p.inC, p.inH, p.inW, p.nchw = s[1], s[2], s[3], true
		} else {
			p.inH, p.inW, p.inC = s[1], s[2], s[3]
		}
	default:
		return nil, fmt.Errorf("%s: not an image input (want [1,H,W,C], [1,C,H,W] or [1,H,W])", desc)
	}
	if p.inC != 1 && p.inC != 3 {
		return nil, fmt.Errorf("%s: %d channels; image inputs have 1 (gray) or 3 (RGB)", desc, p.inC)
	}
	if p.inW <= 0 || p.inH <= 0 || p.inW > 1<<14 || p.inH > 1<<14 {
		return nil, fmt.Errorf("%s: image size %dx%d out of range", desc, p.inW, p.inH)
	}
	if opts.Fit > FitCrop || opts.Resize > ResizeArea || opts.YUVRange > YUVFull || opts.Normalization > NormRaw {
		return nil, fmt.Errorf("invalid preprocessing options %+v", opts)
	}
	p.buildLUT()
	p.yuv.build(opts.YUVRange)
	for v := range 256 {
		p.expandY[v] = clampU8(int(math.Round(float64(v-16) * 255 / 219)))
	}
	return p, nil
}

// InputSize is the model input's width, height and channels.
func (p *Preprocessor) InputSize() (w, h, c int) { return p.inW, p.inH, p.inC }

// InputBytes is the size of the tensor Process writes.
func (p *Preprocessor) InputBytes() int { return p.inW * p.inH * p.inC * p.spec.Type.Size() }

// NCHW reports whether the input is channels-first.
func (p *Preprocessor) NCHW() bool { return p.nchw }

// RawPixels reports whether quantization maps pixel value v to level
// qmin + v exactly (see buildLUT).
func (p *Preprocessor) RawPixels() bool { return p.shiftLevels }

// Quantize returns the stored value (int8/uint8 as its byte) of pixel v in
// channel c, as Process writes it.
func (p *Preprocessor) Quantize(c int, v uint8) uint8 { return p.lut[c][v] }

// buildLUT fills the per-channel tables from the normalisation and the
// input's quantization: q = round(real/scale) + zero point (rounding half
// away from zero, as TFLite's Quantize), clamped to the type's range.
//
// One case is exact instead: when the input's 256 levels span the
// normalisation's range (scale·255 within 2 % of 1 for [0,1], 2 for
// [−1,1], 255 for [0,255]) and level qmin is the range's low end to
// within one level, pixel v goes to level qmin + v. That is the mapping
// TFLite's examples and the models' own goldens use (TFLM's person
// detection feeds pixel − 128 to its scale 1/127.5, zero point −1 input;
// uint8 MobileNets with scale 1/128, zero point 128 take raw pixels),
// where the formula would land on ties of half a level and round some of
// them the other way.
func (p *Preprocessor) buildLUT() {
	norm := p.opts.Normalization
	qmin, qmax := 0, 255
	if p.spec.Type == runtime.Int8 {
		qmin, qmax = -128, 127
	}
	scale, zp := float64(p.spec.Scale), float64(p.spec.ZeroPoint)
	if norm == NormAuto {
		norm = NormUnit
		if !p.float {
			lo, hi := (float64(qmin)-zp)*scale, (float64(qmax)-zp)*scale
			switch span := hi - lo; {
			case near(span, 2) || lo < -0.25:
				norm = NormSigned
			case near(span, 255) || hi > 10:
				norm = NormRaw
			}
		}
	}
	normLo, normSpan := 0.0, 1.0
	switch norm {
	case NormSigned:
		normLo, normSpan = -1, 2
	case NormRaw:
		normSpan = 255
	}
	custom := p.opts.Std != [3]float32{}
	if !p.float && !custom && near(scale*255, normSpan) && math.Abs((float64(qmin)-zp)*scale-normLo) <= scale*1.01 {
		p.shiftLevels = true
	}
	for c := range 3 {
		for v := range 256 {
			var x float64
			switch {
			case p.opts.Std[c] != 0:
				x = (float64(v) - float64(p.opts.Mean[c])) / float64(p.opts.Std[c])
			case norm == NormSigned:
				x = (float64(v) - 127.5) / 127.5
			case norm == NormRaw:
				x = float64(v)
			default:
				x = float64(v) / 255
			}
			p.flut[c][v] = float32(x)
			var q int
			if p.shiftLevels {
				q = qmin + v
			} else if !p.float {
				q = int(math.Round(x/scale)) + int(zp) // math.Round: half away from zero
				q = min(max(q, qmin), qmax)
			}
			p.lut[c][v] = uint8(q) // int8 stored as its two's complement byte
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 0.02*b }

// Process converts a frame into the input tensor's bytes dst (the
// interpreter's input buffer: t.Bytes()) and returns the placement. It
// allocates only when the frame's size or format differs from the
// previous frame's.
func (p *Preprocessor) Process(f *sensors.Frame, dst []byte) (Transform, error) {
	if err := f.Validate(); err != nil {
		return Transform{}, err
	}
	if len(dst) != p.InputBytes() {
		return Transform{}, fmt.Errorf("input buffer of %d bytes, the %s%s input takes %d", len(dst), p.spec.Type, runtime.FormatShape(p.spec.Shape), p.InputBytes())
	}
	if f.Width != p.geomW || f.Height != p.geomH || f.Format != p.geomFormat {
		p.setup(f)
	}
	src, lutSel := p.source(f)
	p.fillPadding(dst)
	t := &p.tr
	if p.opts.Resize == ResizeArea {
		p.resizeArea(&src, dst, lutSel)
	} else {
		p.resizeBilinear(&src, dst, lutSel)
	}
	return *t, nil
}

// ProcessTensor is Process into an interpreter's input tensor.
func (p *Preprocessor) ProcessTensor(f *sensors.Frame, t *runtime.Tensor) (Transform, error) {
	return p.Process(f, t.Bytes())
}

// setup computes the geometry, the resampling tables and the scratch for
// frames of f's size and format.
func (p *Preprocessor) setup(f *sensors.Frame) {
	p.geomW, p.geomH, p.geomFormat = f.Width, f.Height, f.Format
	p.tr = NewTransform(p.opts.Fit, f.Width, f.Height, p.inW, p.inH)
	t := &p.tr
	if p.opts.Resize == ResizeArea {
		p.ar.build(t.RegionW, t.RegionH, t.ContentW, t.ContentH)
		p.facc = make([]float32, t.ContentW*p.inC)
		p.frow = make([]float32, t.ContentW*p.inC)
	} else {
		p.bl.build(t.RegionW, t.RegionH, t.ContentW, t.ContentH)
		for i := range p.hrow {
			p.hrow[i] = make([]int32, t.ContentW*p.inC)
		}
	}
	p.outRow = make([]byte, t.ContentW*p.inC)
	p.conv = nil
	if p.needsConversion(f.Format) {
		p.conv = make([]byte, t.RegionW*t.RegionH*p.inC)
	}
}

func (p *Preprocessor) needsConversion(f sensors.PixelFormat) bool {
	switch f {
	case sensors.GRAY8:
		return false
	case sensors.RGB24, sensors.BGR24, sensors.RGBA32:
		return p.inC == 1
	}
	return p.inC == 3 // YUV: gray models read the Y plane in place
}

// lutSelect says which table maps a resized byte to the tensor: the plain
// one, or the one composed with limited-range luma expansion.
type lutSelect bool

// source returns a view of the frame's region with p.inC channels in the
// model's order, converting into scratch when the frame cannot be read in
// place.
func (p *Preprocessor) source(f *sensors.Frame) (view, lutSelect) {
	t := &p.tr
	rx, ry, rw, rh := t.RegionX, t.RegionY, t.RegionW, t.RegionH
	stride := f.RowStride()
	v := view{w: rw, h: rh, cn: p.inC}
	rgbOff := [3]int{0, 1, 2}
	if p.opts.BGR {
		rgbOff = [3]int{2, 1, 0}
	}
	switch f.Format {
	case sensors.GRAY8:
		v.pix, v.stride, v.step = f.Data[ry*stride+rx:], stride, 1
		return v, false
	case sensors.RGB24, sensors.BGR24, sensors.RGBA32:
		bpp := f.Format.BytesPerPixel()
		off := rgbOff
		if f.Format == sensors.BGR24 {
			off = [3]int{2 - off[0], 2 - off[1], 2 - off[2]}
		}
		if p.inC == 1 {
			rgbToGray(f.Data[ry*stride+rx*bpp:], stride, bpp, off, rw, rh, p.conv)
			v.pix, v.stride, v.step = p.conv, rw, 1
			return v, false
		}
		v.pix, v.stride, v.step, v.off = f.Data[ry*stride+rx*bpp:], stride, bpp, off
		return v, false
	}
	// YUV.
	if p.inC == 1 {
		switch f.Format {
		case sensors.YUYV:
			v.pix, v.stride, v.step = f.Data[ry*stride+rx*2:], stride, 2
		default:
			v.pix, v.stride, v.step = f.Data[ry*stride+rx:], stride, 1
		}
		return v, lutSelect(p.opts.YUVRange == YUVLimited)
	}
	p.yuv.toRGB(f, rx, ry, rw, rh, p.conv, rw*3)
	v.pix, v.stride, v.step, v.off = p.conv, rw*3, 3, rgbOff
	return v, false
}

// rgbToGray writes BT.601 luma, (19595 R + 38470 G + 7471 B + 2^15) >> 16,
// the fixed-point formula of PIL's convert("L").
func rgbToGray(src []byte, stride, bpp int, off [3]int, w, h int, dst []byte) {
	for y := range h {
		row := src[y*stride:]
		o := dst[y*w : (y+1)*w]
		for x := range w {
			px := row[x*bpp:]
			o[x] = uint8((19595*uint32(px[off[0]]) + 38470*uint32(px[off[1]]) + 7471*uint32(px[off[2]]) + 1<<15) >> 16)
		}
	}
}

// fillPadding writes the letterbox fill outside the content rectangle.
// The input buffer lives in the interpreter's arena, where other tensors
// may have used it since the last frame, so this runs every frame.
func (p *Preprocessor) fillPadding(dst []byte) {
	t := &p.tr
	if t.PadX == 0 && t.PadY == 0 && t.ContentW == p.inW && t.ContentH == p.inH {
		return
	}
	for y := range p.inH {
		inside := y >= t.PadY && y < t.PadY+t.ContentH
		for x := 0; x < p.inW; x++ {
			if inside && x == t.PadX {
				x += t.ContentW - 1
				continue
			}
			for c := range p.inC {
				p.store(dst, y, x, c, p.opts.Fill, false)
			}
		}
	}
}

// store writes pixel value v of channel c at (y, x).
func (p *Preprocessor) store(dst []byte, y, x, c int, v uint8, sel lutSelect) {
	if sel {
		v = p.expandY[v]
	}
	var i int
	if p.nchw {
		i = (c*p.inH+y)*p.inW + x
	} else {
		i = (y*p.inW+x)*p.inC + c
	}
	if p.float {
		float32s(dst)[i] = p.flut[c][v]
		return
	}
	dst[i] = p.lut[c][v]
}

// writeRow stores one resized row (ContentW pixels, inC channels
// interleaved) at content row dy.
func (p *Preprocessor) writeRow(dst []byte, dy int, row []byte, sel lutSelect) {
	t := &p.tr
	y := t.PadY + dy
	if sel {
		for i, v := range row {
			row[i] = p.expandY[v]
		}
	}
	c := p.inC
	switch {
	case p.float:
		fd := float32s(dst)
		for x := range t.ContentW {
			for k := range c {
				fd[p.index(y, t.PadX+x, k)] = p.flut[k][row[x*c+k]]
			}
		}
	case !p.nchw && c == 3:
		o := dst[(y*p.inW+t.PadX)*3 : (y*p.inW+t.PadX+t.ContentW)*3]
		l0, l1, l2 := &p.lut[0], &p.lut[1], &p.lut[2]
		for i := 0; i+2 < len(o); i += 3 {
			o[i], o[i+1], o[i+2] = l0[row[i]], l1[row[i+1]], l2[row[i+2]]
		}
	case !p.nchw && c == 1, p.nchw:
		for k := range c {
			l := &p.lut[k]
			if p.nchw {
				o := dst[(k*p.inH+y)*p.inW+t.PadX:]
				for x := range t.ContentW {
					o[x] = l[row[x*c+k]]
				}
			} else {
				o := dst[y*p.inW+t.PadX : y*p.inW+t.PadX+t.ContentW]
				for x := range o {
					o[x] = l[row[x]]
				}
			}
		}
	}
}

func (p *Preprocessor) index(y, x, c int) int {
	if p.nchw {
		return (c*p.inH+y)*p.inW + x
	}
	return (y*p.inW+x)*p.inC + c
}

func float32s(b []byte) []float32 {
	if len(b) < 4 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4)
}

// ---- bilinear (OpenCV INTER_LINEAR, 8-bit fixed point) ----

const (
	resizeCoefBits  = 11
	resizeCoefScale = 1 << resizeCoefBits
)

type bilinearTables struct {
	xofs  []int32    // source column of each destination column
	alpha [][2]int16 // its two weights, summing to about 2048
	yofs  []int32
	beta  [][2]int16
}

// build computes OpenCV's coefficients: for destination index d,
// f = float32((d + 0.5)·scale − 0.5) with scale = 1/(dst/src) in double
// precision, s = floor(f), f −= s, weights round(2048·(1−f)),
// round(2048·f). Columns clamp: s < 0 becomes 0 and s ≥ n−1 becomes n−1,
// both with f = 0. Rows do not: their weights stay and the two source
// rows s and s+1 are clamped to the image each (so near the top and bottom
// edges of an upscale both weights apply to the same row, and the two
// products are truncated separately, as OpenCV does).
func (b *bilinearTables) build(srcW, srcH, dstW, dstH int) {
	b.xofs, b.alpha = linearCoeffs(srcW, dstW, true)
	b.yofs, b.beta = linearCoeffs(srcH, dstH, false)
}

func linearCoeffs(n, m int, clampEdges bool) ([]int32, [][2]int16) {
	ofs := make([]int32, m)
	w := make([][2]int16, m)
	invScale := float64(m) / float64(n)
	scale := 1 / invScale
	for d := range m {
		f := float32((float64(d)+0.5)*scale - 0.5)
		s := int(math.Floor(float64(f)))
		f -= float32(s)
		if clampEdges {
			if s < 0 {
				s, f = 0, 0
			}
			if s >= n-1 {
				s, f = n-1, 0
			}
		}
		ofs[d] = int32(s)
		w[d] = [2]int16{int16(math.RoundToEven(float64((1 - f) * resizeCoefScale))), int16(math.RoundToEven(float64(f * resizeCoefScale)))}
	}
	return ofs, w
}

// hresize resamples source row sy horizontally into dst (ContentW·cn
// values scaled by 2048).
func (p *Preprocessor) hresize(src *view, sy int, dst []int32) {
	row := src.pix[sy*src.stride:]
	cn, step := src.cn, src.step
	b := &p.bl
	for dx, sx := range b.xofs {
		a := b.alpha[dx]
		o := dst[dx*cn : dx*cn+cn]
		i0 := int(sx) * step
		if a[1] == 0 {
			for k := range o {
				o[k] = int32(row[i0+src.off[k]]) * int32(a[0])
			}
			continue
		}
		i1 := i0 + step
		for k := range o {
			o[k] = int32(row[i0+src.off[k]])*int32(a[0]) + int32(row[i1+src.off[k]])*int32(a[1])
		}
	}
}

// hrowFor returns the horizontally resampled source row sy, computing it
// into one of two cached rows.
func (p *Preprocessor) hrowFor(src *view, sy int) []int32 {
	for i := range 2 {
		if p.hrowY[i] == sy {
			return p.hrow[i]
		}
	}
	// Replace the row not needed by the current pair (the older one).
	i := 0
	if p.hrowY[0] > p.hrowY[1] {
		i = 1
	}
	p.hresize(src, sy, p.hrow[i])
	p.hrowY[i] = sy
	return p.hrow[i]
}

func (p *Preprocessor) resizeBilinear(src *view, dst []byte, sel lutSelect) {
	p.hrowY = [2]int{-1, -2}
	b := &p.bl
	row := p.outRow
	last := src.h - 1
	for dy, sy := range b.yofs {
		y0, y1 := min(max(int(sy), 0), last), min(max(int(sy)+1, 0), last)
		b0, b1 := int32(b.beta[dy][0]), int32(b.beta[dy][1])
		s1 := p.hrowFor(src, y1)
		s0 := p.hrowFor(src, y0) // y0 <= y1: fetched second, it never evicts s1
		// OpenCV's VResizeLinear<uchar, int, short>: each 22-bit product
		// scaled down by 2^16 on its own, then the sum rounded by 2^2.
		for i := range row {
			v := ((b0*(s0[i]>>4))>>16 + (b1*(s1[i]>>4))>>16 + 2) >> 2
			row[i] = clampU8(int(v))
		}
		p.writeRow(dst, dy, row, sel)
	}
}

// ---- area ----

type areaTables struct {
	xstart []int32   // per destination column, its first entry in xidx/xw
	xidx   []int32   // source columns
	xw     []float32 // their weights (summing to 1 per destination)
	ystart []int32
	yidx   []int32
	yw     []float32
}

func (a *areaTables) build(srcW, srcH, dstW, dstH int) {
	a.xstart, a.xidx, a.xw = areaCoeffs(srcW, dstW)
	a.ystart, a.yidx, a.yw = areaCoeffs(srcH, dstH)
}

// areaCoeffs lists, per destination pixel d, the source pixels its
// footprint [d·n/m, (d+1)·n/m) covers and the fraction of the footprint
// each covers.
func areaCoeffs(n, m int) (start, idx []int32, w []float32) {
	scale := float64(n) / float64(m)
	start = make([]int32, m+1)
	for d := range m {
		start[d] = int32(len(idx))
		lo, hi := float64(d)*scale, float64(d+1)*scale
		for s := int(math.Floor(lo)); s < n && float64(s) < hi; s++ {
			cover := math.Min(hi, float64(s+1)) - math.Max(lo, float64(s))
			if cover <= 1e-9 {
				continue
			}
			idx = append(idx, int32(s))
			w = append(w, float32(cover/scale))
		}
	}
	start[m] = int32(len(idx))
	return start, idx, w
}

func (p *Preprocessor) resizeArea(src *view, dst []byte, sel lutSelect) {
	a := &p.ar
	cn, step := src.cn, src.step
	for dy := range p.tr.ContentH {
		acc := p.facc
		clear(acc)
		for j := a.ystart[dy]; j < a.ystart[dy+1]; j++ {
			row := src.pix[int(a.yidx[j])*src.stride:]
			wy := a.yw[j]
			for dx := range p.tr.ContentW {
				for k := range cn {
					var s float32
					for i := a.xstart[dx]; i < a.xstart[dx+1]; i++ {
						s += a.xw[i] * float32(row[int(a.xidx[i])*step+src.off[k]])
					}
					acc[dx*cn+k] += wy * s
				}
			}
		}
		row := p.outRow
		for i, v := range acc {
			row[i] = clampU8(int(v + 0.5))
		}
		p.writeRow(dst, dy, row, sel)
	}
}

func clampU8(v int) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// ---- YUV ----

// yuvTables hold the BT.601 conversion in 16.16 fixed point: each term of
// R, G, B as a function of one sample.
type yuvTables struct {
	y, rv, gu, gv, bu [256]int32
}

func (t *yuvTables) build(r YUVRange) {
	ky, kc, yoff := 1.0, 1.0, 0
	if r == YUVLimited {
		ky, kc, yoff = 255.0/219, 255.0/224, 16
	}
	const one = 1 << 16
	for i := range 256 {
		c := float64(i - 128)
		t.y[i] = int32(math.Round(float64(i-yoff) * ky * one))
		t.rv[i] = int32(math.Round(1.402 * kc * c * one))
		t.gu[i] = int32(math.Round(-0.344136 * kc * c * one))
		t.gv[i] = int32(math.Round(-0.714136 * kc * c * one))
		t.bu[i] = int32(math.Round(1.772 * kc * c * one))
	}
}

func (t *yuvTables) pixel(y, u, v uint8, o []byte) {
	l := t.y[y] + 1<<15
	o[0] = clampU8(int((l + t.rv[v]) >> 16))
	o[1] = clampU8(int((l + t.gu[u] + t.gv[v]) >> 16))
	o[2] = clampU8(int((l + t.bu[u]) >> 16))
}

// toRGB converts the region (rx, ry, w, h) of a YUV frame into packed RGB
// rows of dstStride bytes. 4:2:0 and 4:2:2 chroma is taken from the
// sample whose block covers the pixel (no interpolation).
func (t *yuvTables) toRGB(f *sensors.Frame, rx, ry, w, h int, dst []byte, dstStride int) {
	stride := f.RowStride()
	switch f.Format {
	case sensors.YUYV:
		for y := range h {
			row := f.Data[(ry+y)*stride:]
			o := dst[y*dstStride:]
			for x := range w {
				sx := rx + x
				pair := row[(sx/2)*4:]
				t.pixel(row[sx*2], pair[1], pair[3], o[x*3:])
			}
		}
	case sensors.NV12, sensors.I420:
		yp, up, vp := f.Planes()
		cs := f.ChromaStride()
		for y := range h {
			sy := ry + y
			yrow := yp[sy*stride:]
			crow := (sy / 2) * cs
			o := dst[y*dstStride:]
			for x := range w {
				sx := rx + x
				var u, v uint8
				if f.Format == sensors.NV12 {
					u, v = up[crow+(sx/2)*2], up[crow+(sx/2)*2+1]
				} else {
					u, v = up[crow+sx/2], vp[crow+sx/2]
				}
				t.pixel(yrow[sx], u, v, o[x*3:])
			}
		}
	}
}

// FrameToRGB converts any frame into a tightly packed RGB24 frame (for
// annotating and saving), reusing dst's buffer when large enough. YUV
// frames use BT.601 with the given range.
func FrameToRGB(f *sensors.Frame, r YUVRange, dst *sensors.Frame) (*sensors.Frame, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if dst == nil {
		dst = &sensors.Frame{}
	}
	need := f.Width * f.Height * 3
	if cap(dst.Data) < need {
		dst.Data = make([]byte, need)
	}
	*dst = sensors.Frame{Width: f.Width, Height: f.Height, Format: sensors.RGB24, Data: dst.Data[:need], Stride: f.Width * 3}
	stride := f.RowStride()
	switch f.Format {
	case sensors.GRAY8, sensors.RGB24, sensors.BGR24, sensors.RGBA32:
		bpp := f.Format.BytesPerPixel()
		off := [3]int{0, 1, 2}
		switch f.Format {
		case sensors.GRAY8:
			off = [3]int{0, 0, 0}
		case sensors.BGR24:
			off = [3]int{2, 1, 0}
		}
		for y := range f.Height {
			row := f.Data[y*stride:]
			o := dst.Data[y*dst.Stride:]
			for x := range f.Width {
				o[3*x], o[3*x+1], o[3*x+2] = row[x*bpp+off[0]], row[x*bpp+off[1]], row[x*bpp+off[2]]
			}
		}
	default:
		var t yuvTables
		t.build(r)
		t.toRGB(f, 0, 0, f.Width, f.Height, dst.Data, dst.Stride)
	}
	return dst, nil
}

// ---- small helpers ----

func enumName(names []string, i int) string {
	if i >= 0 && i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("invalid(%d)", i)
}

func parseEnum(names []string, s, what string) (int, error) {
	for i, n := range names {
		if strings.EqualFold(s, n) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("unknown %s %q (%s)", what, s, strings.Join(names, ", "))
}
