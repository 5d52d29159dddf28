package sensors

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/bmp"

	"github.com/edged/edged/internal/testenv"
)

func testImage() *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, 5, 3))
	for y := range 3 {
		for x := range 5 {
			img.SetNRGBA(x, y, color.NRGBA{uint8(40 * x), uint8(80 * y), uint8(10*x + 7*y), 255})
		}
	}
	return img
}

func TestDecodeFormats(t *testing.T) {
	src := testImage()
	want := make([]byte, 0, 45)
	for y := range 3 {
		for x := range 5 {
			c := src.NRGBAAt(x, y)
			want = append(want, c.R, c.G, c.B)
		}
	}
	var pngBuf, bmpBuf bytes.Buffer
	if err := png.Encode(&pngBuf, src); err != nil {
		t.Fatal(err)
	}
	if err := bmp.Encode(&bmpBuf, src); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"png": pngBuf.Bytes(), "bmp": bmpBuf.Bytes()} {
		f, err := DecodeImage(bytes.NewReader(b), "x."+name, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if f.Format != RGB24 || f.Width != 5 || f.Height != 3 || f.Stride != 15 || !bytes.Equal(f.Data, want) {
			t.Errorf("%s: %s %dx%d stride %d %v, want %v", name, f.Format, f.Width, f.Height, f.Stride, f.Data, want)
		}
		if err := f.Validate(); err != nil {
			t.Error(err)
		}
	}
	// JPEG is lossy (and subsamples chroma): a flat colour comes back
	// close to itself.
	flat := image.NewNRGBA(image.Rect(0, 0, 16, 16))
	for i := 0; i < len(flat.Pix); i += 4 {
		copy(flat.Pix[i:], []byte{120, 60, 200, 255})
	}
	var jpgBuf bytes.Buffer
	if err := jpeg.Encode(&jpgBuf, flat, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	f, err := DecodeImage(bytes.NewReader(jpgBuf.Bytes()), "x.jpg", nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Format != RGB24 || len(f.Data) != 16*16*3 {
		t.Fatalf("jpeg: %s %d bytes", f.Format, len(f.Data))
	}
	for i, v := range f.Data {
		if d := int(v) - int(flat.Pix[i/3*4+i%3]); d < -3 || d > 3 {
			t.Fatalf("jpeg byte %d = %d, source %d", i, v, flat.Pix[i/3*4+i%3])
		}
	}

	// Gray PNG and gray-palette BMP decode to GRAY8; a reused frame keeps
	// its buffer.
	gray := image.NewGray(image.Rect(0, 0, 4, 2))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(30 * i)
	}
	pngBuf.Reset()
	png.Encode(&pngBuf, gray)
	reuse := &Frame{Data: make([]byte, 100)}
	g, err := DecodeImage(bytes.NewReader(pngBuf.Bytes()), "g.png", reuse)
	if err != nil {
		t.Fatal(err)
	}
	if g != reuse || g.Format != GRAY8 || !bytes.Equal(g.Data, gray.Pix) || cap(g.Data) != 100 {
		t.Errorf("gray png: %s %v", g.Format, g.Data)
	}
	pal := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.Gray{0}, color.Gray{200}})
	pal.Pix[0], pal.Pix[1] = 1, 0
	bmpBuf.Reset()
	bmp.Encode(&bmpBuf, pal)
	if g, err = DecodeImage(&bmpBuf, "p.bmp", nil); err != nil || g.Format != GRAY8 || !bytes.Equal(g.Data, []byte{200, 0}) {
		t.Errorf("gray palette bmp: %v %+v", err, g)
	}
	// A coloured palette is RGB.
	cp := image.NewPaletted(image.Rect(0, 0, 1, 1), color.Palette{color.RGBA{255, 0, 0, 255}})
	pngBuf.Reset()
	png.Encode(&pngBuf, cp)
	if g, err = DecodeImage(&pngBuf, "c.png", nil); err != nil || g.Format != RGB24 || !bytes.Equal(g.Data, []byte{255, 0, 0}) {
		t.Errorf("colour palette png: %v %+v", err, g)
	}
	// 16-bit PNG keeps the top byte.
	g16 := image.NewGray16(image.Rect(0, 0, 1, 1))
	g16.SetGray16(0, 0, color.Gray16{0xabcd})
	pngBuf.Reset()
	png.Encode(&pngBuf, g16)
	if g, err = DecodeImage(&pngBuf, "g16.png", nil); err != nil || g.Format != GRAY8 || g.Data[0] != 0xab {
		t.Errorf("16-bit png: %v %+v", err, g)
	}
}

func TestDecodeErrorsNameTheFile(t *testing.T) {
	var pngBuf bytes.Buffer
	png.Encode(&pngBuf, testImage())
	cases := map[string][]byte{
		"empty.png":     nil,
		"text.png":      []byte("hello, not an image"),
		"truncated.png": pngBuf.Bytes()[:pngBuf.Len()/2],
		"header.jpg":    {0xff, 0xd8, 0xff},
		"short.bmp":     []byte("BM\x00\x00"),
	}
	for name, b := range cases {
		_, err := DecodeImage(bytes.NewReader(b), name, nil)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v, want one naming the file", name, err)
		}
	}
	dir := t.TempDir()
	if _, err := DecodeImageFile(filepath.Join(dir, "missing.png")); err == nil || !strings.Contains(err.Error(), "missing.png") {
		t.Errorf("missing file: %v", err)
	}
	// A header announcing a huge image is refused before decoding.
	huge := append([]byte(nil), pngBuf.Bytes()...)
	copy(huge[16:24], []byte{0, 0, 0x40, 0, 0, 0, 0x40, 0}) // 16384 x 16384
	if _, err := DecodeImage(bytes.NewReader(huge), "huge.png", nil); err == nil || !strings.Contains(err.Error(), "huge.png") {
		t.Errorf("huge image: %v", err)
	}
}

func TestFrameGeometry(t *testing.T) {
	for _, c := range []struct {
		f          PixelFormat
		w, h, size int
	}{
		{GRAY8, 5, 3, 15}, {RGB24, 5, 3, 45}, {BGR24, 5, 3, 45}, {RGBA32, 5, 3, 60},
		{YUYV, 4, 3, 24}, {NV12, 5, 3, 15 + 5*2}, {I420, 5, 3, 15 + 2*3*2},
	} {
		fr := NewFrame(c.f, c.w, c.h)
		if len(fr.Data) != c.size {
			t.Errorf("%s %dx%d: %d bytes, want %d", c.f, c.w, c.h, len(fr.Data), c.size)
		}
		if err := fr.Validate(); err != nil {
			t.Errorf("%s: %v", c.f, err)
		}
		fr.Data = fr.Data[:len(fr.Data)-1]
		if err := fr.Validate(); err == nil {
			t.Errorf("%s: short data accepted", c.f)
		}
		if p, err := ParsePixelFormat(strings.ToLower(c.f.String())); err != nil || p != c.f {
			t.Errorf("ParsePixelFormat(%s) = %v, %v", c.f, p, err)
		}
	}
	fr := NewFrame(I420, 6, 4)
	y, u, v := fr.Planes()
	if len(y) != 24 || len(u) != 6 || len(v) != 6 {
		t.Errorf("I420 planes %d %d %d", len(y), len(u), len(v))
	}
	for _, bad := range []*Frame{
		nil, {Width: 2, Height: 2}, {Width: 0, Height: 2, Format: GRAY8},
		{Width: 3, Height: 2, Format: YUYV, Data: make([]byte, 100)},
		{Width: 4, Height: 2, Format: RGB24, Stride: 11, Data: make([]byte, 100)},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if _, err := ParsePixelFormat("MJPEG"); err == nil {
		t.Error("MJPEG parsed")
	}
}

// TestSharedImages decodes every shared test image.
func TestSharedImages(t *testing.T) {
	for name, want := range map[string][3]int{
		"inputs/person.png":              {96, 96, int(GRAY8)},
		"inputs/person.bmp":              {96, 96, int(GRAY8)},
		"inputs/cat.bmp":                 {512, 341, int(RGB24)},
		"inputs/kite_and_cold.jpg":       {1352, 900, int(RGB24)},
		"inputs/traffic_frames/0001.bmp": {256, 256, int(RGB24)},
	} {
		f, err := DecodeImageFile(testenv.SharedFile(t, name))
		if err != nil {
			t.Fatal(err)
		}
		if f.Width != want[0] || f.Height != want[1] || f.Format != PixelFormat(want[2]) {
			t.Errorf("%s: %s %dx%d", name, f.Format, f.Width, f.Height)
		}
	}
	// person.png holds person.bmp's bytes + 128 (see the test data README).
	png, _ := DecodeImageFile(testenv.SharedFile(t, "inputs/person.png"))
	raw, _ := os.ReadFile(testenv.SharedFile(t, "golden/person_detect_person/input_0.bin"))
	for i := range raw {
		if png.Data[i] != raw[i]+128 {
			t.Fatalf("person.png pixel %d = %d, golden byte %d", i, png.Data[i], raw[i])
		}
	}
}
