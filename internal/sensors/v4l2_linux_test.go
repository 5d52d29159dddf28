//go:build linux

package sensors

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The ioctl numbers carry the structures' sizes; these are the values of
// linux/videodev2.h on 64-bit (arm64, amd64) and 32-bit (armv6/v7) Linux.
func TestV4L2ABI(t *testing.T) {
	type want struct {
		name     string
		got, w64 uint
		w32      uint
	}
	for _, c := range []want{
		{"VIDIOC_QUERYCAP", vidiocQuerycap, 0x80685600, 0x80685600},
		{"VIDIOC_ENUM_FMT", vidiocEnumFmt, 0xc0405602, 0xc0405602},
		{"VIDIOC_S_FMT", vidiocSFmt, 0xc0d05605, 0xc0cc5605},
		{"VIDIOC_REQBUFS", vidiocReqbufs, 0xc0145608, 0xc0145608},
		{"VIDIOC_QUERYBUF", vidiocQuerybuf, 0xc0585609, 0xc0445609},
		{"VIDIOC_QBUF", vidiocQbuf, 0xc058560f, 0xc044560f},
		{"VIDIOC_DQBUF", vidiocDqbuf, 0xc0585611, 0xc0445611},
		{"VIDIOC_STREAMON", vidiocStreamon, 0x40045612, 0x40045612},
		{"VIDIOC_STREAMOFF", vidiocStreamoff, 0x40045613, 0x40045613},
		{"VIDIOC_S_PARM", vidiocSParm, 0xc0cc5616, 0xc0cc5616},
	} {
		w := c.w64
		if unsafe.Sizeof(uintptr(0)) == 4 {
			w = c.w32
		}
		if c.got != w {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, w)
		}
	}
	var b v4l2Buffer
	var f v4l2Format
	offsets := []uintptr{unsafe.Offsetof(b.Timestamp), unsafe.Offsetof(b.Timecode), unsafe.Offsetof(b.Sequence),
		unsafe.Offsetof(b.M), unsafe.Offsetof(b.Length), unsafe.Offsetof(b.RequestFD), uintptr(unsafe.Pointer(f.pix())) - uintptr(unsafe.Pointer(&f))}
	want64 := []uintptr{24, 40, 56, 64, 72, 80, 8}
	want32 := []uintptr{20, 28, 44, 52, 56, 64, 4}
	w := want64
	if unsafe.Sizeof(uintptr(0)) == 4 {
		w = want32
	}
	if !slices.Equal(offsets, w) {
		t.Errorf("v4l2_buffer / v4l2_format offsets %v, want %v", offsets, w)
	}
	if s := unsafe.Sizeof(v4l2PixFormat{}); s != 48 {
		t.Errorf("v4l2_pix_format is %d bytes, want 48", s)
	}
	if s := unsafe.Sizeof(v4l2CaptureParm{}); s != 40 {
		t.Errorf("v4l2_captureparm is %d bytes, want 40", s)
	}
	if fourccString(pixYUYV) != "YUYV" || fourccString(pixMJPEG) != "MJPG" || fourccString(1) != "0x00000001" {
		t.Error("fourcc strings")
	}
}

func deviceConfig(path, format string) SourceConfig {
	return SourceConfig{Name: "cam", Type: TypeCamera, Device: path, Format: format, Width: 640, Height: 480, FPS: 5, Timeout: 300 * time.Millisecond}
}

// A path that is not a camera gives a clear error at once, through the
// real open and ioctl path.
func TestV4L2NotADevice(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "video0", []byte("not a device"))
	cases := []struct {
		path string
		want []string
	}{
		{filepath.Join(dir, "video9"), []string{"camera " + filepath.Join(dir, "video9") + ": no such device"}},
		{file, []string{"is not a device node (a regular file)"}},
		{dir, []string{"is not a device node (a directory)"}},
	}
	if _, err := os.Stat("/dev/null"); err == nil {
		cases = append(cases, struct {
			path string
			want []string
		}{"/dev/null", []string{"camera /dev/null is not a V4L2 device", "VIDIOC_QUERYCAP"}})
	}
	for _, c := range cases {
		start := time.Now()
		_, err := collect(t, newCamera(t, deviceConfig(c.path, "yuyv")), 5*time.Second, copyFrame, nil)
		wantErr(t, err, c.want...)
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: error after %s", c.path, d)
		}
	}
}

// fakeDev is a V4L2 driver in memory: capabilities, formats (adjusting
// sizes as drivers do), mmap buffers and the queue, frames delivered in
// order, then a stall or an unplug.
type fakeDev struct {
	t       *testing.T
	caps    uint32
	formats []uint32
	maxW    uint32
	maxH    uint32
	pad     uint32 // bytes per line beyond 2*width (YUYV)
	grant   uint32 // buffers granted (0: as requested)
	sfmtErr error
	frames  []fakeFrame
	after   string // when frames run out: "stall" (default), "unplug" (poll fails), "enodev" (DQBUF fails)

	pix       v4l2PixFormat
	parm      v4l2CaptureParm
	bufs      [][]byte
	mapped    map[int]bool
	queued    []uint32
	ready     []v4l2Buffer
	streaming bool
	released  bool
	closed    bool
	delivered int
	calls     []string
}

type fakeFrame struct {
	data  []byte
	flags uint32
	used  int // bytesused (0: len(data))
	index int // report this buffer index instead (0: the real one)
}

func newFakeDev(t *testing.T, formats ...uint32) *fakeDev {
	return &fakeDev{t: t, caps: v4l2CapVideoCapture | v4l2CapStreaming, formats: formats, maxW: 1920, maxH: 1080, mapped: map[int]bool{}}
}

func (d *fakeDev) ioctl(req uint, arg unsafe.Pointer) error {
	switch req {
	case vidiocQuerycap:
		c := (*v4l2Capability)(arg)
		copy(c.Card[:], "Fake Cam\x00")
		c.Capabilities = d.caps
		d.calls = append(d.calls, "QUERYCAP")
	case vidiocEnumFmt:
		fd := (*v4l2Fmtdesc)(arg)
		if int(fd.Index) >= len(d.formats) {
			return unix.EINVAL
		}
		fd.PixelFormat = d.formats[fd.Index]
		copy(fd.Description[:], map[uint32]string{pixYUYV: "YUYV 4:2:2", pixMJPEG: "Motion-JPEG", pixJPEG: "JFIF JPEG"}[fd.PixelFormat])
	case vidiocSFmt:
		d.calls = append(d.calls, "S_FMT")
		if d.sfmtErr != nil {
			return d.sfmtErr
		}
		if d.streaming || len(d.bufs) > 0 {
			return unix.EBUSY
		}
		p := (*v4l2Format)(arg).pix()
		if !slices.Contains(d.formats, p.PixelFormat) {
			p.PixelFormat = d.formats[0]
		}
		p.Width, p.Height = min(p.Width, d.maxW), min(p.Height, d.maxH)
		p.Field = 1
		if p.PixelFormat == pixYUYV {
			p.BytesPerLine = 2*p.Width + d.pad
			p.SizeImage = p.BytesPerLine * p.Height
		} else {
			p.BytesPerLine = 0
			p.SizeImage = p.Width * p.Height
		}
		d.pix = *p
	case vidiocSParm:
		p := (*v4l2StreamParm)(arg)
		d.parm = *(*v4l2CaptureParm)(unsafe.Pointer(&p.Parm[0]))
	case vidiocReqbufs:
		rb := (*v4l2RequestBuffers)(arg)
		d.calls = append(d.calls, fmt.Sprintf("REQBUFS %d", rb.Count))
		if rb.Memory != v4l2MemoryMmap || rb.Type != v4l2BufTypeVideoCapture {
			return unix.EINVAL
		}
		if rb.Count == 0 {
			for i := range d.mapped {
				if d.mapped[i] {
					d.t.Errorf("buffers released while buffer %d is still mapped", i)
				}
			}
			d.bufs, d.released = nil, true
			return nil
		}
		if d.grant != 0 {
			rb.Count = d.grant
		}
		d.bufs = make([][]byte, rb.Count)
		for i := range d.bufs {
			d.bufs[i] = make([]byte, d.pix.SizeImage)
		}
	case vidiocQuerybuf:
		b := (*v4l2Buffer)(arg)
		if int(b.Index) >= len(d.bufs) {
			return unix.EINVAL
		}
		b.M = uintptr(b.Index) * 4096
		b.Length = uint32(len(d.bufs[b.Index]))
	case vidiocQbuf:
		b := (*v4l2Buffer)(arg)
		if int(b.Index) >= len(d.bufs) || !d.mapped[int(b.Index)] {
			d.t.Errorf("QBUF of buffer %d (not mapped)", b.Index)
			return unix.EINVAL
		}
		if slices.Contains(d.queued, b.Index) {
			d.t.Errorf("buffer %d queued twice", b.Index)
			return unix.EINVAL
		}
		d.queued = append(d.queued, b.Index)
	case vidiocDqbuf:
		if d.after == "enodev" && d.delivered >= len(d.frames) {
			return unix.ENODEV
		}
		if len(d.ready) == 0 {
			return unix.EAGAIN
		}
		*(*v4l2Buffer)(arg) = d.ready[0]
		d.ready = d.ready[1:]
	case vidiocStreamon:
		if len(d.queued) == 0 {
			return unix.EINVAL
		}
		d.streaming = true
		d.calls = append(d.calls, "STREAMON")
	case vidiocStreamoff:
		d.streaming = false
		d.queued, d.ready = nil, nil
		d.calls = append(d.calls, "STREAMOFF")
	default:
		d.t.Errorf("unexpected ioctl %#x", req)
		return unix.ENOTTY
	}
	return nil
}

func (d *fakeDev) mmap(offset int64, length int) ([]byte, error) {
	i := int(offset / 4096)
	if offset%4096 != 0 || i >= len(d.bufs) || length != len(d.bufs[i]) {
		return nil, unix.EINVAL
	}
	d.mapped[i] = true
	return d.bufs[i], nil
}

func (d *fakeDev) munmap(b []byte) error {
	for i, x := range d.bufs {
		if len(x) > 0 && len(b) > 0 && &x[0] == &b[0] {
			d.mapped[i] = false
			return nil
		}
	}
	return unix.EINVAL
}

func (d *fakeDev) poll(timeout time.Duration) (bool, error) {
	if !d.streaming {
		return false, fmt.Errorf("poll while not streaming")
	}
	if len(d.ready) > 0 {
		return true, nil
	}
	if d.delivered < len(d.frames) {
		if len(d.queued) == 0 {
			d.t.Error("no buffer queued: the capture loop lost buffers")
			return false, fmt.Errorf("no buffers queued")
		}
		f := d.frames[d.delivered]
		d.delivered++
		idx := d.queued[0]
		d.queued = d.queued[1:]
		n := copy(d.bufs[idx], f.data)
		used := uint32(n)
		if f.used > 0 {
			used = uint32(f.used)
		}
		b := v4l2Buffer{Index: idx, Type: v4l2BufTypeVideoCapture, Memory: v4l2MemoryMmap, BytesUsed: used, Flags: f.flags, Sequence: uint32(d.delivered)}
		if f.index > 0 {
			b.Index = uint32(f.index)
		}
		d.ready = append(d.ready, b)
		return true, nil
	}
	switch d.after {
	case "unplug":
		return false, fmt.Errorf("device error (poll events 0x18)")
	case "enodev":
		return true, nil
	}
	time.Sleep(timeout)
	return false, nil
}

func (d *fakeDev) close() error {
	d.closed = true
	return nil
}

func (d *fakeDev) checkReleased() {
	d.t.Helper()
	if d.streaming || !d.released || !d.closed {
		d.t.Errorf("not released: streaming %v, buffers released %v, closed %v (calls %v)", d.streaming, d.released, d.closed, d.calls)
	}
	for i, m := range d.mapped {
		if m {
			d.t.Errorf("buffer %d still mapped", i)
		}
	}
}

func fakeCamera(t *testing.T, d *fakeDev, format string, w, h int) *v4l2Camera {
	t.Helper()
	src, err := newV4L2Camera("cam", "/dev/video7", format, w, h, 5, 300*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := src.(*v4l2Camera)
	c.open = func(string) (v4l2Device, error) { return d, nil }
	return c
}

func yuyvFrame(w, h, bpl int, seed byte) []byte {
	b := make([]byte, bpl*h)
	for y := range h {
		for x := range 2 * w {
			b[y*bpl+x] = seed + byte(x+y)
		}
	}
	return b
}

func TestV4L2YUYV(t *testing.T) {
	d := newFakeDev(t, pixYUYV)
	d.maxW, d.maxH, d.pad = 320, 240, 32 // the driver shrinks 640x480 and pads rows
	const w, h, bpl = 320, 240, 2*320 + 32
	for k := range 10 {
		d.frames = append(d.frames, fakeFrame{data: yuyvFrame(w, h, bpl, byte(k))})
	}
	// Unusable frames in between are skipped: flagged by the driver,
	// truncated.
	d.frames = slices.Insert(d.frames, 3, fakeFrame{data: yuyvFrame(w, h, bpl, 99), flags: v4l2BufFlagError},
		fakeFrame{data: yuyvFrame(w, h, bpl, 98)[:bpl*h-1]})
	c := fakeCamera(t, d, "yuyv", 640, 480)
	var seeds []byte
	start := time.Now()
	_, err := collect(t, c, 5*time.Second, func(f *Frame) *Frame {
		if f.Format != YUYV || f.Width != w || f.Height != h || f.Stride != bpl || f.Validate() != nil {
			t.Errorf("frame %s %dx%d stride %d: %v", f.Format, f.Width, f.Height, f.Stride, f.Validate())
		}
		for _, b := range d.bufs {
			if &b[0] == &f.Data[0] {
				t.Error("the frame is the driver's mapped buffer, not a copy")
			}
		}
		seeds = append(seeds, f.Data[0])
		if !bytes.Equal(f.Data, yuyvFrame(w, h, bpl, f.Data[0])) {
			t.Errorf("frame %d: pixels differ", len(seeds))
		}
		return nil
	}, nil)
	wantErr(t, err, "camera /dev/video7 (Fake Cam): no frame for 300ms (stalled or unplugged)")
	if !slices.Equal(seeds, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Errorf("frames %v", seeds)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stall noticed after %s", d)
	}
	if d.parm.TimePerFrame != (v4l2Fract{1000, 5000}) {
		t.Errorf("frame interval %v, want 1/5 s", d.parm.TimePerFrame)
	}
	d.checkReleased()

	// The camera can be run again (a supervised restart).
	d.frames, d.delivered, d.released, d.closed = d.frames[:2], 0, false, false
	frames, err := collect(t, c, 5*time.Second, copyFrame, nil)
	if len(frames) != 2 || err == nil {
		t.Errorf("second run: %d frames, %v", len(frames), err)
	}
	d.checkReleased()
}

func jpegBytes(t *testing.T, w, h int, v byte) []byte {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = v
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestV4L2MJPEG(t *testing.T) {
	for _, fc := range []uint32{pixMJPEG, pixJPEG} {
		d := newFakeDev(t, fc, pixYUYV)
		good := jpegBytes(t, 64, 48, 200)
		d.frames = []fakeFrame{
			{data: good},
			{data: []byte("garbage, not a JPEG")},
			{data: good[:len(good)/2]},                    // cut short
			{data: stripDHT(t, jpegBytes(t, 64, 48, 60))}, // no Huffman tables, as many webcams send
			{data: append(append([]byte(nil), good...), make([]byte, 500)...), used: len(good) + 500}, // padding after EOI
		}
		c := fakeCamera(t, d, "mjpeg", 64, 48)
		var vals []byte
		_, err := collect(t, c, 5*time.Second, func(f *Frame) *Frame {
			if f.Width != 64 || f.Height != 48 || f.Validate() != nil {
				t.Errorf("frame %s %dx%d", f.Format, f.Width, f.Height)
			}
			vals = append(vals, f.Data[0])
			return nil
		}, nil)
		wantErr(t, err, "no frame for")
		if len(vals) != 3 || vals[0] < 198 || vals[1] > 62 || vals[1] < 58 {
			t.Errorf("%s: decoded frames start with %v; want 200, 60, 200", fourccString(fc), vals)
		}
		d.checkReleased()
	}

	// A stream of nothing but garbage fails after a while.
	d := newFakeDev(t, pixMJPEG)
	for range v4l2MaxBadInRow {
		d.frames = append(d.frames, fakeFrame{data: []byte{0xff, 0xd8, 0xff, 0xdb, 0, 3, 1}})
	}
	_, err := collect(t, fakeCamera(t, d, "mjpeg", 64, 48), 5*time.Second, copyFrame, nil)
	wantErr(t, err, "30 unusable frames in a row", "JPEG")
	d.checkReleased()
}

func TestV4L2Negotiation(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(d *fakeDev)
		format string
		want   []string
	}{
		{"format not offered", func(d *fakeDev) {}, "mjpeg", []string{"cannot deliver MJPG (it chose YUYV); it offers: YUYV (YUYV 4:2:2)"}},
		{"output device", func(d *fakeDev) { d.caps = 0x2 | v4l2CapStreaming }, "yuyv", []string{"not a video capture device"}},
		{"device caps", func(d *fakeDev) { d.caps = v4l2CapDeviceCaps | v4l2CapVideoCapture | v4l2CapStreaming }, "yuyv", []string{"not a video capture device"}},
		{"multi-planar", func(d *fakeDev) { d.caps = v4l2CapVideoCaptureMplane | v4l2CapStreaming }, "yuyv", []string{"multi-planar", "rpicam-vid"}},
		{"no streaming", func(d *fakeDev) { d.caps = v4l2CapVideoCapture }, "yuyv", []string{"does not support streaming I/O"}},
		{"busy", func(d *fakeDev) { d.sfmtErr = unix.EBUSY }, "yuyv", []string{"busy"}},
		{"one buffer", func(d *fakeDev) { d.grant = 1 }, "yuyv", []string{"granted 1 buffers"}},
		{"unplugged", func(d *fakeDev) {
			d.frames = []fakeFrame{{data: yuyvFrame(64, 48, 128, 1)}}
			d.after = "unplug"
		}, "yuyv", []string{"waiting for a frame: device error", "unplugged?"}},
		{"ENODEV on DQBUF", func(d *fakeDev) { d.after = "enodev" }, "yuyv", []string{"VIDIOC_DQBUF: no such device (unplugged?)"}},
		{"bad buffer index", func(d *fakeDev) {
			d.frames = []fakeFrame{{data: yuyvFrame(64, 48, 128, 1), index: 17}}
		}, "yuyv", []string{"driver returned buffer 17 of 4"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newFakeDev(t, pixYUYV)
			c.setup(d)
			_, err := collect(t, fakeCamera(t, d, c.format, 64, 48), 5*time.Second, copyFrame, nil)
			wantErr(t, err, c.want...)
			if !d.closed || d.streaming {
				t.Errorf("device not released: closed %v streaming %v", d.closed, d.streaming)
			}
			for i, m := range d.mapped {
				if m {
					t.Errorf("buffer %d left mapped", i)
				}
			}
		})
	}
}

func TestV4L2Cancel(t *testing.T) {
	d := newFakeDev(t, pixYUYV)
	d.frames = []fakeFrame{{data: yuyvFrame(64, 48, 128, 1)}}
	c := fakeCamera(t, d, "yuyv", 64, 48)
	c.timeout = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, func(*Frame) { time.AfterFunc(50*time.Millisecond, cancel) }) }()
	select {
	case err := <-done:
		if !isCtxErr(err) {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
	cancel()
	d.checkReleased()
}
