package sensors

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"os"

	"golang.org/x/image/bmp"
)

// PixelFormat is the memory layout of a Frame's pixels.
type PixelFormat uint8

// The pixel formats a Frame can hold. Packed formats store one row of
// Width pixels in Stride bytes; the planar YUV formats store their planes
// one after another in Data (see Frame).
const (
	FormatInvalid PixelFormat = iota
	// GRAY8: one byte per pixel, luma.
	GRAY8
	// RGB24: three bytes per pixel, R, G, B.
	RGB24
	// BGR24: three bytes per pixel, B, G, R (OpenCV's order).
	BGR24
	// RGBA32: four bytes per pixel, R, G, B, A (non-premultiplied; alpha
	// is ignored by the vision pipeline).
	RGBA32
	// YUYV: 4:2:2 packed, Y0 U Y1 V for each pair of pixels (V4L2
	// V4L2_PIX_FMT_YUYV, the common USB webcam format). Width must be even.
	YUYV
	// NV12: 4:2:0, a Y plane then one plane of interleaved U V samples, one
	// pair per 2×2 block (V4L2_PIX_FMT_NV12, the Pi camera's ISP output).
	NV12
	// I420: 4:2:0, a Y plane then a U plane then a V plane, each chroma
	// plane a quarter of the luma plane (V4L2_PIX_FMT_YUV420).
	I420
)

var formatNames = [...]string{"invalid", "GRAY8", "RGB24", "BGR24", "RGBA32", "YUYV", "NV12", "I420"}

func (f PixelFormat) String() string {
	if int(f) < len(formatNames) {
		return formatNames[f]
	}
	return fmt.Sprintf("PixelFormat(%d)", uint8(f))
}

// ParsePixelFormat reads a format name as String prints it (any case).
func ParsePixelFormat(s string) (PixelFormat, error) {
	for i, n := range formatNames[1:] {
		if bytes.EqualFold([]byte(s), []byte(n)) {
			return PixelFormat(i + 1), nil
		}
	}
	return FormatInvalid, fmt.Errorf("unknown pixel format %q (GRAY8, RGB24, BGR24, RGBA32, YUYV, NV12, I420)", s)
}

// BytesPerPixel is the size of one pixel of a packed format (YUYV: 2, the
// size per pixel of a pixel pair); 0 for the planar formats.
func (f PixelFormat) BytesPerPixel() int {
	switch f {
	case GRAY8:
		return 1
	case RGB24, BGR24:
		return 3
	case RGBA32:
		return 4
	case YUYV:
		return 2
	}
	return 0
}

// Planar reports whether the format stores luma and chroma in planes.
func (f PixelFormat) Planar() bool { return f == NV12 || f == I420 }

// Frame is one picture in memory.
//
// Stride is the number of bytes from the start of one row to the next in
// the first (or only) plane; 0 means tightly packed (MinStride). For NV12
// the interleaved UV plane follows the Y plane (Height rows) and has
// (Height+1)/2 rows of Stride bytes. For I420 the U plane follows the Y
// plane and the V plane the U plane, each (Height+1)/2 rows of
// ChromaStride = (Stride+1)/2 bytes. Odd sizes round chroma up, as V4L2
// and libyuv do.
type Frame struct {
	Width, Height int
	Format        PixelFormat
	Data          []byte
	Stride        int
}

// MinStride is the smallest row stride of a format at a width.
func MinStride(f PixelFormat, width int) int {
	switch f {
	case NV12, I420:
		return width
	case YUYV:
		return 2 * ((width + 1) / 2) * 2
	}
	return width * f.BytesPerPixel()
}

// FrameSize is the number of bytes a frame of a format, size and stride
// (0: MinStride) occupies.
func FrameSize(f PixelFormat, width, height, stride int) int {
	if stride == 0 {
		stride = MinStride(f, width)
	}
	ch := (height + 1) / 2
	switch f {
	case NV12:
		return stride*height + stride*ch
	case I420:
		return stride*height + 2*((stride+1)/2)*ch
	}
	return stride * height
}

// NewFrame allocates a tightly packed frame.
func NewFrame(f PixelFormat, width, height int) *Frame {
	return &Frame{Width: width, Height: height, Format: f, Stride: MinStride(f, width),
		Data: make([]byte, FrameSize(f, width, height, 0))}
}

// RowStride is Stride, or MinStride when Stride is 0.
func (fr *Frame) RowStride() int {
	if fr.Stride == 0 {
		return MinStride(fr.Format, fr.Width)
	}
	return fr.Stride
}

// ChromaStride is the row stride of I420's U and V planes and of NV12's UV
// plane.
func (fr *Frame) ChromaStride() int {
	if fr.Format == I420 {
		return (fr.RowStride() + 1) / 2
	}
	return fr.RowStride()
}

// Planes returns the Y, U and V planes of a planar frame (for NV12, U is
// the interleaved UV plane and V is nil).
func (fr *Frame) Planes() (y, u, v []byte) {
	s := fr.RowStride()
	ch := (fr.Height + 1) / 2
	y = fr.Data[:s*fr.Height]
	switch fr.Format {
	case NV12:
		u = fr.Data[s*fr.Height : s*fr.Height+s*ch]
	case I420:
		cs := fr.ChromaStride()
		u = fr.Data[s*fr.Height : s*fr.Height+cs*ch]
		v = fr.Data[s*fr.Height+cs*ch : s*fr.Height+2*cs*ch]
	}
	return y, u, v
}

// Validate checks that the frame's size, format, stride and data agree.
func (fr *Frame) Validate() error {
	if fr == nil {
		return errors.New("nil frame")
	}
	if fr.Format == FormatInvalid || int(fr.Format) >= len(formatNames) {
		return fmt.Errorf("frame has no valid pixel format (%s)", fr.Format)
	}
	if fr.Width <= 0 || fr.Height <= 0 || fr.Width > 1<<15 || fr.Height > 1<<15 {
		return fmt.Errorf("%s frame of %dx%d pixels: width and height must be 1..32768", fr.Format, fr.Width, fr.Height)
	}
	if fr.Format == YUYV && fr.Width%2 != 0 {
		return fmt.Errorf("YUYV frame of odd width %d", fr.Width)
	}
	if min := MinStride(fr.Format, fr.Width); fr.Stride != 0 && fr.Stride < min {
		return fmt.Errorf("%s frame %dx%d: stride %d is below the row size %d", fr.Format, fr.Width, fr.Height, fr.Stride, min)
	}
	if need := FrameSize(fr.Format, fr.Width, fr.Height, fr.Stride); len(fr.Data) < need {
		return fmt.Errorf("%s frame %dx%d stride %d needs %d bytes, has %d", fr.Format, fr.Width, fr.Height, fr.RowStride(), need, len(fr.Data))
	}
	return nil
}

// MaxImagePixels bounds the images DecodeImage accepts (a 64-megapixel
// camera still is the largest edged expects), so a hostile header cannot
// make edged allocate without bound.
const MaxImagePixels = 64 << 20

// DecodeImageFile reads a BMP, PNG or JPEG file into a frame: GRAY8 for
// grayscale images (including paletted images whose palette is all
// gray), RGB24 otherwise. Alpha is dropped (colour channels kept as
// stored, as OpenCV's imread and PIL's convert("RGB") do). Errors name
// the file.
func DecodeImageFile(path string) (*Frame, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return DecodeImage(f, path, nil)
}

// DecodeImage decodes a BMP, PNG or JPEG stream (recognised by its
// signature) into dst, reusing dst's Data when it is large enough; dst nil
// allocates a new frame. name is used in errors.
func DecodeImage(r io.Reader, name string, dst *Frame) (*Frame, error) {
	br := bufio.NewReaderSize(r, headerPeek)
	head, _ := br.Peek(8)
	var (
		img    image.Image
		err    error
		format string
	)
	switch {
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		format = "PNG"
		if err = checkConfig(png.DecodeConfig, br); err == nil {
			img, err = png.Decode(br)
		}
	case bytes.HasPrefix(head, []byte("\xff\xd8")):
		format = "JPEG"
		if err = checkConfig(jpeg.DecodeConfig, br); err == nil {
			img, err = jpeg.Decode(br)
		}
	case bytes.HasPrefix(head, []byte("BM")):
		format = "BMP"
		if err = checkConfig(bmp.DecodeConfig, br); err == nil {
			img, err = bmp.Decode(br)
		}
	default:
		if len(head) == 0 {
			return nil, fmt.Errorf("%s: empty file, not an image", name)
		}
		return nil, fmt.Errorf("%s: not a BMP, PNG or JPEG image (starts with % x)", name, head)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: decoding %s: %w", name, format, err)
	}
	return FrameFromImage(img, dst), nil
}

// headerPeek is how much of a file checkConfig may look at: enough for
// the headers of any BMP or PNG and for JPEGs with ordinary EXIF blocks.
const headerPeek = 64 << 10

// checkConfig reads the header through a peeking copy so the decoder
// still sees the whole stream, and refuses images above MaxImagePixels.
func checkConfig(decode func(io.Reader) (image.Config, error), br *bufio.Reader) error {
	// DecodeConfig reads only the header; give it a reader over what is
	// buffered plus the rest, without consuming br.
	head, _ := br.Peek(headerPeek)
	c, err := decode(bytes.NewReader(head))
	if err != nil {
		// A header longer than what is buffered (large EXIF blocks): let
		// the full decoder judge.
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	if c.Width <= 0 || c.Height <= 0 || int64(c.Width)*int64(c.Height) > MaxImagePixels {
		return fmt.Errorf("image of %dx%d pixels (at most %d pixels)", c.Width, c.Height, MaxImagePixels)
	}
	return nil
}

// FrameFromImage converts a decoded image into a GRAY8 or RGB24 frame,
// reusing dst's buffer when it is large enough (dst nil allocates).
func FrameFromImage(img image.Image, dst *Frame) *Frame {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	format := RGB24
	if isGray(img) {
		format = GRAY8
	}
	if dst == nil {
		dst = &Frame{}
	}
	need := FrameSize(format, w, h, 0)
	if cap(dst.Data) < need {
		dst.Data = make([]byte, need)
	}
	*dst = Frame{Width: w, Height: h, Format: format, Data: dst.Data[:need], Stride: MinStride(format, w)}
	out := dst.Data
	switch src := img.(type) {
	case *image.Gray:
		for y := range h {
			copy(out[y*w:(y+1)*w], src.Pix[(y)*src.Stride:])
		}
		return dst
	case *image.Paletted:
		pal := make([][3]byte, len(src.Palette))
		for i, c := range src.Palette {
			n := color.NRGBAModel.Convert(c).(color.NRGBA)
			pal[i] = [3]byte{n.R, n.G, n.B}
		}
		for y := range h {
			row := src.Pix[y*src.Stride : y*src.Stride+w]
			for x, ci := range row {
				var p [3]byte
				if int(ci) < len(pal) {
					p = pal[ci]
				}
				if format == GRAY8 {
					out[y*w+x] = p[0]
				} else {
					copy(out[(y*w+x)*3:], p[:])
				}
			}
		}
		return dst
	case *image.RGBA:
		// Opaque images (the BMP decoder's 24-bit output) are stored as
		// is; premultiplied colours with alpha are un-premultiplied.
		for y := range h {
			row := src.Pix[y*src.Stride : y*src.Stride+4*w]
			o := out[y*w*3 : (y+1)*w*3]
			for x := range w {
				r, g, bb, a := row[4*x], row[4*x+1], row[4*x+2], row[4*x+3]
				if a != 0xff && a != 0 {
					r, g, bb = unpremul(r, a), unpremul(g, a), unpremul(bb, a)
				}
				o[3*x], o[3*x+1], o[3*x+2] = r, g, bb
			}
		}
		return dst
	case *image.NRGBA:
		for y := range h {
			row := src.Pix[y*src.Stride : y*src.Stride+4*w]
			o := out[y*w*3 : (y+1)*w*3]
			for x := range w {
				o[3*x], o[3*x+1], o[3*x+2] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
		return dst
	case *image.YCbCr:
		// JPEG: full-range BT.601 (JFIF), converted by the standard
		// library's integer formula; chroma is taken from the sample
		// covering each pixel (no "fancy" upsampling).
		for y := range h {
			o := out[y*w*3 : (y+1)*w*3]
			for x := range w {
				yi := src.YOffset(b.Min.X+x, b.Min.Y+y)
				ci := src.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bb := color.YCbCrToRGB(src.Y[yi], src.Cb[ci], src.Cr[ci])
				o[3*x], o[3*x+1], o[3*x+2] = r, g, bb
			}
		}
		return dst
	}
	// Anything else (16-bit PNGs, CMYK JPEGs, ...): through the colour
	// model, keeping the top 8 bits.
	for y := range h {
		for x := range w {
			c := color.NRGBA64Model.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA64)
			if format == GRAY8 {
				out[y*w+x] = uint8(c.R >> 8)
			} else {
				i := (y*w + x) * 3
				out[i], out[i+1], out[i+2] = uint8(c.R>>8), uint8(c.G>>8), uint8(c.B>>8)
			}
		}
	}
	return dst
}

func unpremul(c, a uint8) uint8 {
	v := (uint32(c)*255 + uint32(a)/2) / uint32(a)
	if v > 255 {
		v = 255
	}
	return uint8(v)
}

// isGray reports whether an image holds only gray pixels by its type:
// gray images, and paletted images whose palette is all gray.
func isGray(img image.Image) bool {
	switch src := img.(type) {
	case *image.Gray, *image.Gray16:
		return true
	case *image.Paletted:
		for _, c := range src.Palette {
			n := color.NRGBAModel.Convert(c).(color.NRGBA)
			if n.R != n.G || n.G != n.B {
				return false
			}
		}
		return len(src.Palette) > 0
	}
	return false
}
