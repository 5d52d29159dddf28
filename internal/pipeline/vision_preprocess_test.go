package pipeline

import (
	"bytes"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/sensors"
	"github.com/edged/edged/internal/testenv"
)

// patternFrame is the image the OpenCV oracle values below were computed
// on: pixel (x, y) channel k = (37x + 91y + 53k + 7xy) mod 256.
func patternFrame(w, h, cn int) *sensors.Frame {
	f := sensors.NewFrame(sensors.RGB24, w, h)
	if cn == 1 {
		f = sensors.NewFrame(sensors.GRAY8, w, h)
	}
	for y := range h {
		for x := range w {
			for k := range cn {
				f.Data[(y*w+x)*cn+k] = uint8((x*37 + y*91 + k*53 + x*y*7) % 256)
			}
		}
	}
	return f
}

// rawSpec is a uint8 input whose levels are the pixel values, so the
// tensor holds the resized pixels themselves.
func rawSpec(w, h, c int) InputSpec {
	return InputSpec{Type: runtime.Uint8, Shape: []int{1, h, w, c}, Scale: 1.0 / 255}
}

func process(t *testing.T, f *sensors.Frame, spec InputSpec, opts PreprocessOptions) ([]byte, Transform) {
	t.Helper()
	p, err := NewPreprocessor(spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, p.InputBytes())
	tr, err := p.Process(f, dst)
	if err != nil {
		t.Fatal(err)
	}
	return dst, tr
}

// TestBilinearMatchesOpenCV compares with cv2.resize(INTER_LINEAR) output
// of OpenCV 4.6.0 (Debian python3-opencv) on patternFrame, downscaling and
// upscaling, gray and RGB.
func TestBilinearMatchesOpenCV(t *testing.T) {
	cases := []struct {
		sw, sh, cn, dw, dh int
		linear, area       string
	}{
		{13, 9, 3, 7, 5,
			"356a9f7f97836398b7ad487d5d926f5e76aa8abf5bab884940759b9aa3bbcf376d646d9b92c76a7e5b7388bd84b7366b79aebff2275c6ba0d5e3624d5c91c64e839b87bc507d869ee1497f79ae2c6f6a7aa85187984a7f828bc0815e7d376ca187ad5e8672a76f6398",
			"3b70a5858e866f929c876f8363877e67709a85ba618d81696b8a8f8f918d8f78787679847d9c85877a8170a579927b7990887f98817b7389859e8262748fa55f878e70a26a827a76a18384748a59866f7696578c974b80887db28a6b755d788c7e9078806da2706499"},
		{13, 9, 3, 20, 17,
			"00356a11467b2a5f934176ac5a8fc472a7dc8abff4a2d7acbae824d25a3c971f5408376c1a4f8432679c4a7fb46297cc7aafab92c71caadf14bcf1261b50852d6297477ca7609590798e988d7db17696cb7aafa094c449ad68628c477c2f609544797f5e7e7d776796657aaf5f94a078ad4492c647a4d9594b80b55f94c97bb0cb97cc5db38e4abf3065514c8133688c4f838c6b81a8788ec376aadf91c677ada844c93a606b467c2d628d497e8c659aa279aeb67bb08b919ba1a48aaa87a85d918056a33f74565d92467b8e659774837b92847cb1679acf83b885a1a966bf5b847e6d6e567766745a84636da24e83b8abe033c38d4bc73768555775436b8f617aaf6e9bd087bc9ca7d72fc864509f3c712d5c91487d9f6895b489a2d598c174acae34cd3c5577417623588d72a7458c795f9c4d825d70a55e939b81ae82a48da59f938f81b254a473779665785788577669777c659a5b88bd76ab8999ac6cbc6d8f907d7b6297621b50763664915981b675a7dc97cc9bbddf36e2685bad4c7b3c7197618cbc82ad949ed21cc3613ca62c612f51874277a36799c28db5e8aad88fbff4383c71a6598e8a81a772a8809a9d8d8880ab62a87a8a9c7d8570a261977b89987c8572a455977779996c80699459877678936ba06d93c886bba9a3d8856ca1d68bc07bb5ca1fdf4e499d3f7434699e5e93c888bd92b3e11ddd6547b43c7138669b5c91c686bba9b0e52dda7c44cb3a6f4f6499598ec378ade29cd17e7cb1666288538e66808878736f9a529c6f7e96767e6ea05f9a7e8ca0848d7eb06153888b4d82967aaf74a6964ab8713d96466a6d61964d82b7bdf2366da2591e53864d82ab75aa709cbf15cb5144a03e6d386d936792c291bca3b7eb354f845523547f537aae79a852a2a01bd1334a813c7131578c669b66588d8a5287a984b87975aa5c507d50816a828b7e7b7bac4eac7c80ad7c8f7cae7c689d4d727e46a44d777f746c708d71a27aa29c50858e2c612c62975379ae839db6a3d15770a55822558a5675aa7fa181a0cf28d3705cbe51865f71a67aa44ca39a2bd73b5f894d825674a976a8dca6659acc1f545d92c7856ba0a64a7471806f5b90915e86bb9451868c5a6d5b8d6b9189a1aa6ca1a6376c7269666a867aa182b0a352878e42775878ae7a7fb4a27cb18d95caa15a8fa82459575d926082b79691c6b141768e40644277805d92b98878adc0285d755b7452879c6ea3d4a35f94ac34695c4f846382b777ace1bd3d7293457a65598d7093c99a82b7c74f848d5a8f7a807182b73b477c76486499836ea38fa86c7cb16342779e6f79ae996ba0a4316676558a4c81b6d80d428a396e4075aa7db2e7b982b7e32b6079679c6fa479a5da153b705224598e6195ca9dd26793c843295e805287bc8f8abfcb2055813d7234699e",
			""},
		{11, 7, 1, 4, 3, "61697ba344e383223c9d9f81", "5d7977727b8d8987717a907e"},
		{10, 10, 1, 3, 7, "408a41b3706d5c96cf698e477786858e7e6e92767b", "4a8e5e8e7f7f6b9583858e706a8693877e75927791"},
	}
	for _, c := range cases {
		f := patternFrame(c.sw, c.sh, c.cn)
		got, _ := process(t, f, rawSpec(c.dw, c.dh, c.cn), PreprocessOptions{})
		want, _ := hex.DecodeString(c.linear)
		if !bytes.Equal(got, want) {
			t.Errorf("bilinear %dx%dx%d -> %dx%d:\n got %x\nwant %x", c.sw, c.sh, c.cn, c.dw, c.dh, got, want)
		}
		if c.area == "" {
			continue // OpenCV's INTER_AREA upscales with its own interpolation
		}
		// Area: the same coverage-weighted mean as OpenCV's INTER_AREA for
		// downscaling, up to float rounding (one level).
		got, _ = process(t, f, rawSpec(c.dw, c.dh, c.cn), PreprocessOptions{Resize: ResizeArea})
		want, _ = hex.DecodeString(c.area)
		for i := range want {
			if d := int(got[i]) - int(want[i]); d < -1 || d > 1 {
				t.Errorf("area %dx%dx%d -> %dx%d: element %d = %d, OpenCV %d", c.sw, c.sh, c.cn, c.dw, c.dh, i, got[i], want[i])
				break
			}
		}
	}
}

func TestResizeIdentityAndConstant(t *testing.T) {
	f := patternFrame(17, 11, 3)
	for _, m := range []ResizeMethod{ResizeBilinear, ResizeArea} {
		got, _ := process(t, f, rawSpec(17, 11, 3), PreprocessOptions{Resize: m})
		if !bytes.Equal(got, f.Data) {
			t.Errorf("%s at the same size changed the image", m)
		}
	}
	// A constant image stays constant at any scale.
	g := sensors.NewFrame(sensors.GRAY8, 37, 23)
	for i := range g.Data {
		g.Data[i] = 77
	}
	for _, m := range []ResizeMethod{ResizeBilinear, ResizeArea} {
		for _, size := range [][2]int{{5, 3}, {96, 96}, {37, 1}} {
			got, _ := process(t, g, rawSpec(size[0], size[1], 1), PreprocessOptions{Resize: m})
			for i, v := range got {
				if v != 77 {
					t.Fatalf("%s to %v: element %d = %d, want 77", m, size, i, v)
				}
			}
		}
	}
}

// bt601 converts one YUV sample to RGB from the definition: E'Y = Kr R +
// (1−Kr−Kb) G + Kb B, E'Cb = (B − E'Y)/(2(1−Kb)), E'Cr = (R − E'Y)/(2(1−Kr)),
// solved for R, G, B in float64, with the range's offsets and excursions,
// rounded to nearest and clamped.
func bt601(y, u, v uint8, limited bool) [3]uint8 {
	const kr, kb = 0.299, 0.114
	kg := 1 - kr - kb
	ey, cb, cr := float64(y)/255, (float64(u)-128)/255, (float64(v)-128)/255
	if limited {
		ey, cb, cr = (float64(y)-16)/219, (float64(u)-128)/224, (float64(v)-128)/224
	}
	r := ey + 2*(1-kr)*cr
	b := ey + 2*(1-kb)*cb
	g := (ey - kr*r - kb*b) / kg
	var out [3]uint8
	for i, c := range []float64{r, g, b} {
		out[i] = uint8(math.Min(255, math.Max(0, math.Round(c*255))))
	}
	return out
}

// yuvFrame makes a random frame of a YUV format, odd sizes and padded
// strides included, and the RGB each pixel should have per bt601.
func yuvFrame(rng *rand.Rand, format sensors.PixelFormat, w, h, pad int, limited bool) (*sensors.Frame, []byte) {
	stride := sensors.MinStride(format, w) + pad
	f := &sensors.Frame{Width: w, Height: h, Format: format, Stride: stride,
		Data: make([]byte, sensors.FrameSize(format, w, h, stride))}
	for i := range f.Data {
		f.Data[i] = uint8(rng.IntN(256))
	}
	want := make([]byte, w*h*3)
	for y := range h {
		for x := range w {
			var Y, U, V uint8
			switch format {
			case sensors.YUYV:
				base := y*stride + (x/2)*4
				Y, U, V = f.Data[y*stride+2*x], f.Data[base+1], f.Data[base+3]
			case sensors.NV12:
				uv := h*stride + (y/2)*stride + (x/2)*2
				Y, U, V = f.Data[y*stride+x], f.Data[uv], f.Data[uv+1]
			case sensors.I420:
				cs := (stride + 1) / 2
				ch := (h + 1) / 2
				Y = f.Data[y*stride+x]
				U = f.Data[h*stride+(y/2)*cs+x/2]
				V = f.Data[h*stride+cs*ch+(y/2)*cs+x/2]
			}
			rgb := bt601(Y, U, V, limited)
			copy(want[(y*w+x)*3:], rgb[:])
		}
	}
	return f, want
}

func TestYUVToRGB(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, format := range []sensors.PixelFormat{sensors.YUYV, sensors.NV12, sensors.I420} {
		for _, rg := range []YUVRange{YUVLimited, YUVFull} {
			for _, size := range [][3]int{{64, 48, 0}, {22, 15, 6}, {7, 5, 1}} {
				w, h, pad := size[0], size[1], size[2]
				if format == sensors.YUYV {
					w &^= 1
					pad *= 2
				}
				f, want := yuvFrame(rng, format, w, h, pad, rg == YUVLimited)
				// Through the preprocessor at the frame's own size...
				got, _ := process(t, f, rawSpec(w, h, 3), PreprocessOptions{YUVRange: rg})
				// ... and through FrameToRGB.
				rgb, err := FrameToRGB(f, rg, nil)
				if err != nil {
					t.Fatal(err)
				}
				for name, g := range map[string][]byte{"preprocess": got, "FrameToRGB": rgb.Data} {
					exact := 0
					for i := range want {
						d := int(g[i]) - int(want[i])
						if d < -1 || d > 1 {
							t.Fatalf("%s %s %s %dx%d: element %d (pixel %d) = %d, BT.601 gives %d", format, rg, name, w, h, i, i/3, g[i], want[i])
						}
						if d == 0 {
							exact++
						}
					}
					// The fixed-point conversion may differ only where the
					// exact value is within rounding of a half.
					if exact < len(want)*99/100 {
						t.Errorf("%s %s %s %dx%d: only %d of %d values exact", format, rg, name, w, h, exact, len(want))
					}
				}
			}
		}
	}
}

func TestYUVGrayUsesLuma(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, format := range []sensors.PixelFormat{sensors.YUYV, sensors.NV12, sensors.I420} {
		f, _ := yuvFrame(rng, format, 16, 9, 2, true)
		stride := f.RowStride()
		for _, rg := range []YUVRange{YUVLimited, YUVFull} {
			got, _ := process(t, f, rawSpec(16, 9, 1), PreprocessOptions{YUVRange: rg})
			for y := range 9 {
				for x := range 16 {
					Y := f.Data[y*stride+x]
					if format == sensors.YUYV {
						Y = f.Data[y*stride+2*x]
					}
					want := float64(Y)
					if rg == YUVLimited {
						want = math.Min(255, math.Max(0, math.Round((want-16)*255/219)))
					}
					if float64(got[y*16+x]) != want {
						t.Fatalf("%s %s: pixel %d,%d = %d, want %v from Y %d", format, rg, x, y, got[y*16+x], want, Y)
					}
				}
			}
		}
	}
}

func TestColorOrderAndGray(t *testing.T) {
	rgb := sensors.NewFrame(sensors.RGB24, 2, 1)
	copy(rgb.Data, []byte{10, 20, 30, 200, 100, 50})
	bgr := sensors.NewFrame(sensors.BGR24, 2, 1)
	copy(bgr.Data, []byte{30, 20, 10, 50, 100, 200})
	rgba := sensors.NewFrame(sensors.RGBA32, 2, 1)
	copy(rgba.Data, []byte{10, 20, 30, 0, 200, 100, 50, 255})
	for _, f := range []*sensors.Frame{rgb, bgr, rgba} {
		got, _ := process(t, f, rawSpec(2, 1, 3), PreprocessOptions{})
		if !bytes.Equal(got, []byte{10, 20, 30, 200, 100, 50}) {
			t.Errorf("%s as RGB: %v", f.Format, got)
		}
		got, _ = process(t, f, rawSpec(2, 1, 3), PreprocessOptions{BGR: true})
		if !bytes.Equal(got, []byte{30, 20, 10, 50, 100, 200}) {
			t.Errorf("%s as BGR: %v", f.Format, got)
		}
		got, _ = process(t, f, rawSpec(2, 1, 1), PreprocessOptions{})
		// Luma 0.299 R + 0.587 G + 0.114 B, rounded.
		want := []byte{uint8(math.Round(0.299*10 + 0.587*20 + 0.114*30)), uint8(math.Round(0.299*200 + 0.587*100 + 0.114*50))}
		if !bytes.Equal(got, want) {
			t.Errorf("%s as gray: %v, want %v", f.Format, got, want)
		}
	}
	// Gray into a 3-channel model repeats the value.
	g := sensors.NewFrame(sensors.GRAY8, 2, 1)
	copy(g.Data, []byte{7, 250})
	if got, _ := process(t, g, rawSpec(2, 1, 3), PreprocessOptions{}); !bytes.Equal(got, []byte{7, 7, 7, 250, 250, 250}) {
		t.Errorf("gray as RGB: %v", got)
	}
}

func TestLayoutsAndTypes(t *testing.T) {
	f := patternFrame(4, 3, 3)
	nhwc, _ := process(t, f, rawSpec(4, 3, 3), PreprocessOptions{})
	nchw, _ := process(t, f, InputSpec{Type: runtime.Uint8, Shape: []int{1, 3, 3, 4}, Scale: 1.0 / 255}, PreprocessOptions{})
	for y := range 3 {
		for x := range 4 {
			for c := range 3 {
				if nhwc[(y*4+x)*3+c] != nchw[(c*3+y)*4+x] {
					t.Fatalf("NCHW (%d,%d,%d) differs from NHWC", c, y, x)
				}
			}
		}
	}
	// Float input, [0,1] by default, [-1,1] on request.
	p, err := NewPreprocessor(InputSpec{Type: runtime.Float32, Shape: []int{1, 3, 4, 3}}, PreprocessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, p.InputBytes())
	if _, err := p.Process(f, buf); err != nil {
		t.Fatal(err)
	}
	for i, v := range float32s(buf) {
		if want := float32(float64(f.Data[i]) / 255); v != want {
			t.Fatalf("float element %d = %v, want %v", i, v, want)
		}
	}
	p, _ = NewPreprocessor(InputSpec{Type: runtime.Float32, Shape: []int{1, 3, 4, 3}}, PreprocessOptions{Normalization: NormSigned})
	p.Process(f, buf)
	if v, want := float32s(buf)[5], float32((float64(f.Data[5])-127.5)/127.5); v != want {
		t.Errorf("signed float = %v, want %v", v, want)
	}
	// Rank-3 gray input.
	if _, err := NewPreprocessor(InputSpec{Type: runtime.Int8, Shape: []int{1, 28, 28}, Scale: 1.0 / 255, ZeroPoint: -128}, PreprocessOptions{}); err != nil {
		t.Error(err)
	}
	for _, bad := range []InputSpec{
		{Type: runtime.Int8, Shape: []int{1, 8, 8, 2}, Scale: 0.1},
		{Type: runtime.Int8, Shape: []int{1, 8, 8, 3}},
		{Type: runtime.Int16, Shape: []int{1, 8, 8, 3}, Scale: 0.1},
		{Type: runtime.Int8, Shape: []int{8, 8}, Scale: 0.1},
	} {
		if _, err := NewPreprocessor(bad, PreprocessOptions{}); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestQuantizationLUT(t *testing.T) {
	cases := []struct {
		name string
		spec InputSpec
		raw  bool
		want func(v int) int
	}{
		// person_detect: scale 1/127.5, zp -1: q = v - 128 (TFLM's example).
		{"person_detect", InputSpec{Type: runtime.Int8, Shape: []int{1, 96, 96, 1}, Scale: 0.00784313772, ZeroPoint: -1}, true, func(v int) int { return v - 128 }},
		// uint8 MobileNet: scale 1/128, zp 128: raw pixels.
		{"mobilenet uint8", InputSpec{Type: runtime.Uint8, Shape: []int{1, 128, 128, 3}, Scale: 0.0078125, ZeroPoint: 128}, true, func(v int) int { return v }},
		// YOLOv8 int8: scale 1/255, zp -128.
		{"yolov8", InputSpec{Type: runtime.Int8, Shape: []int{1, 640, 640, 3}, Scale: 0.00392156886, ZeroPoint: -128}, true, func(v int) int { return v - 128 }},
		// Anything else: round(v/255/scale) + zp, clamped.
		{"calibrated", InputSpec{Type: runtime.Int8, Shape: []int{1, 8, 8, 3}, Scale: 0.0045, ZeroPoint: -100}, false,
			func(v int) int { return min(127, int(math.Round(float64(v)/255/float64(float32(0.0045))))-100) }},
	}
	for _, c := range cases {
		p, err := NewPreprocessor(c.spec, PreprocessOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.RawPixels() != c.raw {
			t.Errorf("%s: RawPixels %v, want %v", c.name, p.RawPixels(), c.raw)
		}
		for v := range 256 {
			got := int(p.Quantize(0, uint8(v)))
			if c.spec.Type == runtime.Int8 {
				got = int(int8(got))
			}
			if want := c.want(v); got != want {
				t.Fatalf("%s: pixel %d -> %d, want %d", c.name, v, got, want)
			}
		}
	}
}

// TestPersonPNGQuantization: person.png (the ordinary image) quantized the
// standard way gives exactly the golden input bytes.
func TestPersonPNGQuantization(t *testing.T) {
	for _, name := range []string{"person", "no_person"} {
		f, err := sensors.DecodeImageFile(testenv.SharedFile(t, "inputs/"+name+".png"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := runtime.LoadModelFile(testenv.SharedFile(t, "models/person_detect.tflite"))
		if err != nil {
			t.Fatal(err)
		}
		g := m.Subgraphs[0]
		got, _ := process(t, f, SpecOfInfo(&g.Tensors[g.Inputs[0]]), PreprocessOptions{})
		want, err := os.ReadFile(testenv.SharedFile(t, "golden/person_detect_"+name+"/input_0.bin"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			n := 0
			for i := range want {
				if got[i] != want[i] {
					n++
				}
			}
			t.Errorf("%s.png: %d of %d bytes differ from the golden input", name, n, len(want))
		}
	}
}

func TestTransforms(t *testing.T) {
	// The YOLOv8 golden's letterbox: 1352x900 into 640x640.
	tr := NewTransform(FitLetterbox, 1352, 900, 640, 640)
	if tr.ContentW != 640 || tr.ContentH != 426 || tr.PadX != 0 || tr.PadY != 107 || math.Abs(tr.ScaleX-0.47337278106508873) > 1e-12 {
		t.Errorf("letterbox %+v", tr)
	}
	for _, c := range []struct {
		fit              Fit
		sw, sh, iw, ih   int
		rx, ry, rw, rh   int
		px, py, cw, ch   int
		scaleX0, scaleY0 float64
	}{
		{FitLetterbox, 100, 50, 64, 64, 0, 0, 100, 50, 0, 16, 64, 32, 0.64, 0.64},
		{FitLetterbox, 50, 100, 64, 64, 0, 0, 50, 100, 16, 0, 32, 64, 0.64, 0.64},
		{FitStretch, 100, 50, 64, 64, 0, 0, 100, 50, 0, 0, 64, 64, 0.64, 1.28},
		{FitCrop, 100, 50, 64, 64, 25, 0, 50, 50, 0, 0, 64, 64, 1.28, 1.28},
		{FitCrop, 40, 100, 64, 32, 0, 40, 40, 20, 0, 0, 64, 32, 1.6, 1.6},
	} {
		tr := NewTransform(c.fit, c.sw, c.sh, c.iw, c.ih)
		if tr.RegionX != c.rx || tr.RegionY != c.ry || tr.RegionW != c.rw || tr.RegionH != c.rh ||
			tr.PadX != c.px || tr.PadY != c.py || tr.ContentW != c.cw || tr.ContentH != c.ch ||
			math.Abs(tr.ScaleX-c.scaleX0) > 1e-9 || math.Abs(tr.ScaleY-c.scaleY0) > 1e-9 {
			t.Errorf("%s %dx%d -> %dx%d: %+v", c.fit, c.sw, c.sh, c.iw, c.ih, tr)
		}
		// Round trip of points.
		for _, pt := range [][2]float64{{0, 0}, {3.5, 7.25}, {float64(c.sw), float64(c.sh)}} {
			ix, iy := tr.ToInput(pt[0], pt[1])
			sx, sy := tr.ToSource(ix, iy)
			if math.Abs(sx-pt[0]) > 1e-9 || math.Abs(sy-pt[1]) > 1e-9 {
				t.Errorf("%s: %v -> (%v,%v) -> (%v,%v)", c.fit, pt, ix, iy, sx, sy)
			}
		}
		// The content corners land on the frame's (or region's) corners.
		x, y := tr.ToSource(float64(tr.PadX), float64(tr.PadY))
		if x != float64(tr.RegionX) || y != float64(tr.RegionY) {
			t.Errorf("%s: content origin maps to (%v,%v)", c.fit, x, y)
		}
	}
	// A box mapped back is clipped to the frame.
	tr = NewTransform(FitLetterbox, 100, 50, 64, 64)
	r := tr.RectToSource(Rect{X1: -5, Y1: 0, X2: 70, Y2: 40})
	if r.X1 != 0 || r.Y1 != 0 || r.X2 != 100 || math.Abs(float64(r.Y2)-37.5) > 1e-5 {
		t.Errorf("clipped box %+v", r)
	}
}

// TestLetterboxFill: the padding holds the quantized fill value and the
// content sits where the transform says, with the layout preserved.
func TestLetterboxFill(t *testing.T) {
	f := sensors.NewFrame(sensors.GRAY8, 40, 20)
	for i := range f.Data {
		f.Data[i] = 200
	}
	spec := InputSpec{Type: runtime.Int8, Shape: []int{1, 32, 32, 3}, Scale: 1.0 / 255, ZeroPoint: -128}
	p, err := NewPreprocessor(spec, PreprocessOptions{Fit: FitLetterbox, Fill: 114})
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, p.InputBytes())
	for i := range dst {
		dst[i] = 0x55 // what another tensor left in the arena
	}
	tr, err := p.Process(f, dst)
	if err != nil {
		t.Fatal(err)
	}
	if tr.PadY != 8 || tr.ContentH != 16 {
		t.Fatalf("transform %+v", tr)
	}
	for y := range 32 {
		want := int8(114 - 128)
		if y >= 8 && y < 24 {
			want = 200 - 128
		}
		for i := range 32 * 3 {
			if got := int8(dst[y*32*3+i]); got != want {
				t.Fatalf("row %d element %d = %d, want %d", y, i, got, want)
			}
		}
	}
}

func TestCropTakesCentre(t *testing.T) {
	// A 30x10 frame: left third 0, middle third 100, right third 200.
	f := sensors.NewFrame(sensors.GRAY8, 30, 10)
	for y := range 10 {
		for x := range 30 {
			f.Data[y*30+x] = uint8(x / 10 * 100)
		}
	}
	got, tr := process(t, f, rawSpec(10, 10, 1), PreprocessOptions{Fit: FitCrop})
	if tr.RegionX != 10 || tr.RegionW != 10 {
		t.Fatalf("crop %+v", tr)
	}
	for i, v := range got {
		if v != 100 {
			t.Fatalf("element %d = %d, want 100 (centre)", i, v)
		}
	}
}

func TestProcessErrors(t *testing.T) {
	p, err := NewPreprocessor(rawSpec(4, 4, 3), PreprocessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := sensors.NewFrame(sensors.RGB24, 8, 8)
	if _, err := p.Process(f, make([]byte, 10)); err == nil {
		t.Error("short input buffer accepted")
	}
	short := &sensors.Frame{Width: 8, Height: 8, Format: sensors.NV12, Data: make([]byte, 64)}
	if _, err := p.Process(short, make([]byte, 48)); err == nil {
		t.Error("short NV12 frame accepted")
	}
	if _, err := p.Process(&sensors.Frame{Width: 3, Height: 2, Format: sensors.YUYV, Data: make([]byte, 16)}, make([]byte, 48)); err == nil {
		t.Error("odd-width YUYV accepted")
	}
}

// TestProcessAllocatesNothing: after the first frame of a size, Process
// allocates nothing, for every format and both resize methods.
func TestProcessAllocatesNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	frames := []*sensors.Frame{patternFrame(64, 48, 3), patternFrame(64, 48, 1)}
	for _, format := range []sensors.PixelFormat{sensors.YUYV, sensors.NV12, sensors.I420} {
		f, _ := yuvFrame(rng, format, 64, 48, 0, true)
		frames = append(frames, f)
	}
	for _, m := range []ResizeMethod{ResizeBilinear, ResizeArea} {
		for _, c := range []int{1, 3} {
			p, err := NewPreprocessor(InputSpec{Type: runtime.Int8, Shape: []int{1, 24, 24, c}, Scale: 1.0 / 255, ZeroPoint: -128}, PreprocessOptions{Resize: m, Fit: FitLetterbox})
			if err != nil {
				t.Fatal(err)
			}
			dst := make([]byte, p.InputBytes())
			for _, f := range frames {
				p.Process(f, dst)
				if n := testing.AllocsPerRun(10, func() { p.Process(f, dst) }); n != 0 {
					t.Errorf("%s, %d channels, %s frame: %v allocations per frame", m, c, f.Format, n)
				}
			}
		}
	}
}
