//go:build linux

package sensors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
	"unsafe"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// V4L2 capture through ioctls on /dev/videoN: memory-mapped streaming I/O
// of the single-planar video capture API, YUYV or Motion-JPEG.

const (
	v4l2BufTypeVideoCapture   = 1
	v4l2MemoryMmap            = 1
	v4l2FieldAny              = 0
	v4l2CapVideoCapture       = 0x00000001
	v4l2CapVideoCaptureMplane = 0x00001000
	v4l2CapStreaming          = 0x04000000
	v4l2CapDeviceCaps         = 0x80000000
	v4l2BufFlagError          = 0x00000040
)

func fourcc(s string) uint32 {
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

func fourccString(v uint32) string {
	b := []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("%#08x", v)
		}
	}
	return strings.TrimRight(string(b), " ")
}

var (
	pixYUYV  = fourcc("YUYV")
	pixMJPEG = fourcc("MJPG")
	pixJPEG  = fourcc("JPEG")
)

// The structures of linux/videodev2.h, laid out as the kernel has them on
// both 64-bit and 32-bit ARM (and amd64): the ioctl numbers carry their
// sizes, which the tests check.

type v4l2Capability struct {
	Driver       [16]byte
	Card         [32]byte
	BusInfo      [32]byte
	Version      uint32
	Capabilities uint32
	DeviceCaps   uint32
	Reserved     [3]uint32
}

type v4l2PixFormat struct {
	Width        uint32
	Height       uint32
	PixelFormat  uint32
	Field        uint32
	BytesPerLine uint32
	SizeImage    uint32
	Colorspace   uint32
	Priv         uint32
	Flags        uint32
	YcbcrEnc     uint32
	Quantization uint32
	XferFunc     uint32
}

// v4l2Format: the union holds a struct with pointers, so it is aligned to
// the pointer size (208 bytes on 64-bit, 204 on 32-bit).
type v4l2Format struct {
	Type uint32
	fmt  [200 / unsafe.Sizeof(uintptr(0))]uintptr
}

func (f *v4l2Format) pix() *v4l2PixFormat { return (*v4l2PixFormat)(unsafe.Pointer(&f.fmt[0])) }

type v4l2Fmtdesc struct {
	Index       uint32
	Type        uint32
	Flags       uint32
	Description [32]byte
	PixelFormat uint32
	MbusCode    uint32
	Reserved    [3]uint32
}

type v4l2RequestBuffers struct {
	Count        uint32
	Type         uint32
	Memory       uint32
	Capabilities uint32
	Flags        uint8
	Reserved     [3]uint8
}

type v4l2Timecode struct {
	Type     uint32
	Flags    uint32
	Frames   uint8
	Seconds  uint8
	Minutes  uint8
	Hours    uint8
	Userbits [4]uint8
}

// v4l2Buffer: timestamp is a struct timeval (16 bytes on 64-bit; on
// 32-bit the 8-byte time32 layout, which the kernel serves under the
// ioctl numbers of that size); m is a union of an offset, a pointer and
// an fd (unsigned long sized).
type v4l2Buffer struct {
	Index     uint32
	Type      uint32
	BytesUsed uint32
	Flags     uint32
	Field     uint32
	Timestamp unix.Timeval
	Timecode  v4l2Timecode
	Sequence  uint32
	Memory    uint32
	M         uintptr // .offset for MMAP buffers (the low 32 bits)
	Length    uint32
	Reserved2 uint32
	RequestFD int32
}

type v4l2Fract struct{ Numerator, Denominator uint32 }

type v4l2CaptureParm struct {
	Capability   uint32
	CaptureMode  uint32
	TimePerFrame v4l2Fract
	ExtendedMode uint32
	ReadBuffers  uint32
	Reserved     [4]uint32
}

type v4l2StreamParm struct {
	Type uint32
	Parm [200]byte
}

const (
	iocWrite = 1
	iocRead  = 2
)

func ioc(dir, nr, size uintptr) uint { return uint(dir<<30 | size<<16 | 'V'<<8 | nr) }

var (
	vidiocQuerycap  = ioc(iocRead, 0, unsafe.Sizeof(v4l2Capability{}))
	vidiocEnumFmt   = ioc(iocRead|iocWrite, 2, unsafe.Sizeof(v4l2Fmtdesc{}))
	vidiocSFmt      = ioc(iocRead|iocWrite, 5, unsafe.Sizeof(v4l2Format{}))
	vidiocReqbufs   = ioc(iocRead|iocWrite, 8, unsafe.Sizeof(v4l2RequestBuffers{}))
	vidiocQuerybuf  = ioc(iocRead|iocWrite, 9, unsafe.Sizeof(v4l2Buffer{}))
	vidiocQbuf      = ioc(iocRead|iocWrite, 15, unsafe.Sizeof(v4l2Buffer{}))
	vidiocDqbuf     = ioc(iocRead|iocWrite, 17, unsafe.Sizeof(v4l2Buffer{}))
	vidiocStreamon  = ioc(iocWrite, 18, unsafe.Sizeof(int32(0)))
	vidiocStreamoff = ioc(iocWrite, 19, unsafe.Sizeof(int32(0)))
	vidiocSParm     = ioc(iocRead|iocWrite, 22, unsafe.Sizeof(v4l2StreamParm{}))
)

// v4l2Device is the device layer the capture code drives: the real
// /dev/videoN, or a fake in the tests.
type v4l2Device interface {
	ioctl(req uint, arg unsafe.Pointer) error
	mmap(offset int64, length int) ([]byte, error)
	munmap(b []byte) error
	// poll waits up to timeout for a filled buffer; an error means the
	// device is gone or broken.
	poll(timeout time.Duration) (ready bool, err error)
	close() error
}

type v4l2File struct{ fd int }

// openV4L2 opens a device node, telling apart a path that does not
// exist, one that is not a device node, and permission problems.
func openV4L2(path string) (v4l2Device, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("camera %s: no such device (not plugged in? ls /dev/video* lists the cameras)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("camera %w", err)
	}
	if st.Mode()&fs.ModeCharDevice == 0 {
		kind := "a regular file"
		if st.IsDir() {
			kind = "a directory"
		} else if st.Mode()&fs.ModeDevice != 0 {
			kind = "a block device"
		} else if !st.Mode().IsRegular() {
			kind = "not a character device: " + st.Mode().String()
		}
		return nil, fmt.Errorf("camera %s is not a device node (%s)", path, kind)
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	switch {
	case err == nil:
		return &v4l2File{fd: fd}, nil
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return nil, fmt.Errorf("camera %s: permission denied (run edged as a member of the video group)", path)
	case errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO), errors.Is(err, unix.ENOENT):
		return nil, fmt.Errorf("camera %s: device gone (%v; unplugged?)", path, err)
	case errors.Is(err, unix.EBUSY):
		return nil, fmt.Errorf("camera %s: busy (%v; used by another program?)", path, err)
	}
	return nil, fmt.Errorf("camera %s: %w", path, err)
}

func (d *v4l2File) ioctl(req uint, arg unsafe.Pointer) error {
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(d.fd), uintptr(req), uintptr(arg))
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return e
	}
}

func (d *v4l2File) mmap(offset int64, length int) ([]byte, error) {
	return unix.Mmap(d.fd, offset, length, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
}

func (d *v4l2File) munmap(b []byte) error { return unix.Munmap(b) }

func (d *v4l2File) poll(timeout time.Duration) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(d.fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, int(timeout/time.Millisecond))
	if err == unix.EINTR || n == 0 {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if fds[0].Revents&unix.POLLIN != 0 {
		return true, nil
	}
	if fds[0].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
		return false, fmt.Errorf("device error (poll events %#x)", fds[0].Revents)
	}
	return false, nil
}

func (d *v4l2File) close() error { return unix.Close(d.fd) }

// v4l2Camera captures from a V4L2 device.
type v4l2Camera struct {
	name          string
	path          string
	pixfmt        uint32 // pixYUYV or pixMJPEG
	width, height int
	fps           float64
	timeout       time.Duration
	buffers       int
	log           *zap.Logger
	open          func(path string) (v4l2Device, error)
}

const (
	v4l2Buffers     = 4
	v4l2PollSlice   = 100 * time.Millisecond
	v4l2MaxBadInRow = 30
)

func newV4L2Camera(name, path, format string, width, height int, fps float64, timeout time.Duration, log *zap.Logger) (FrameSource, error) {
	c := &v4l2Camera{name: name, path: path, width: width, height: height, fps: fps,
		timeout: timeout, buffers: v4l2Buffers, log: log, open: openV4L2}
	switch strings.ToLower(format) {
	case "yuyv":
		c.pixfmt = pixYUYV
	case "mjpeg", "mjpg":
		c.pixfmt = pixMJPEG
	default:
		return nil, fmt.Errorf("V4L2 format %q: yuyv or mjpeg", format)
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	return c, nil
}

func (c *v4l2Camera) Name() string { return c.name }

func (c *v4l2Camera) Run(ctx context.Context, emit func(*Frame)) error {
	dev, err := c.open(c.path)
	if err != nil {
		return err
	}
	s := &v4l2Stream{cam: c, dev: dev}
	defer s.close()
	if err := s.setup(); err != nil {
		return err
	}
	return s.capture(ctx, emit)
}

// v4l2Stream is one open session with the device.
type v4l2Stream struct {
	cam       *v4l2Camera
	dev       v4l2Device
	card      string
	pixfmt    uint32
	w, h, bpl int
	bufs      [][]byte
	requested bool // REQBUFS done: release on close
	streaming bool
}

func (s *v4l2Stream) errorf(format string, args ...any) error {
	what := "camera " + s.cam.path
	if s.card != "" {
		what += " (" + s.card + ")"
	}
	return fmt.Errorf(what+": "+format, args...)
}

// gone words an error from a device that may have been unplugged.
func (s *v4l2Stream) gone(op string, err error) error {
	if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) || errors.Is(err, unix.EIO) {
		return s.errorf("%s: %v (unplugged?)", op, err)
	}
	return s.errorf("%s: %v", op, err)
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func (s *v4l2Stream) setup() error {
	c := s.cam
	var caps v4l2Capability
	if err := s.dev.ioctl(vidiocQuerycap, unsafe.Pointer(&caps)); err != nil {
		if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("camera %s is not a V4L2 device (VIDIOC_QUERYCAP: %v)", c.path, err)
		}
		return s.gone("VIDIOC_QUERYCAP", err)
	}
	s.card = cstring(caps.Card[:])
	cp := caps.Capabilities
	if cp&v4l2CapDeviceCaps != 0 {
		cp = caps.DeviceCaps
	}
	if cp&v4l2CapVideoCapture == 0 {
		if cp&v4l2CapVideoCaptureMplane != 0 {
			return s.errorf("only the multi-planar capture API is offered, which edged does not use; capture through a command source instead (e.g. rpicam-vid --codec yuv420 -o -)")
		}
		return s.errorf("not a video capture device (capabilities %#x; a metadata or output node?)", cp)
	}
	if cp&v4l2CapStreaming == 0 {
		return s.errorf("does not support streaming I/O")
	}

	var f v4l2Format
	f.Type = v4l2BufTypeVideoCapture
	pix := f.pix()
	pix.Width, pix.Height = uint32(c.width), uint32(c.height)
	pix.PixelFormat = c.pixfmt
	pix.Field = v4l2FieldAny
	if err := s.dev.ioctl(vidiocSFmt, unsafe.Pointer(&f)); err != nil {
		if errors.Is(err, unix.EBUSY) {
			return s.errorf("VIDIOC_S_FMT: device busy (used by another program?)")
		}
		return s.gone("VIDIOC_S_FMT "+fourccString(c.pixfmt), err)
	}
	got := pix.PixelFormat
	if got != c.pixfmt && !(c.pixfmt == pixMJPEG && got == pixJPEG) {
		return s.errorf("cannot deliver %s (it chose %s); it offers: %s", fourccString(c.pixfmt), fourccString(got), s.formats())
	}
	s.pixfmt = got
	s.w, s.h = int(pix.Width), int(pix.Height)
	if s.w <= 0 || s.h <= 0 || s.w > 1<<15 || s.h > 1<<15 {
		return s.errorf("driver chose an implausible size %dx%d", s.w, s.h)
	}
	if s.w != c.width || s.h != c.height {
		c.log.Info("camera adjusted the requested size", zap.String("source", c.name),
			zap.String("requested", fmt.Sprintf("%dx%d", c.width, c.height)), zap.String("got", fmt.Sprintf("%dx%d", s.w, s.h)))
	}
	s.bpl = int(pix.BytesPerLine)
	if s.pixfmt == pixYUYV {
		if s.w%2 != 0 {
			return s.errorf("driver chose an odd YUYV width %d", s.w)
		}
		if s.bpl < 2*s.w {
			s.bpl = 2 * s.w
		}
	}

	if c.fps > 0 {
		var p v4l2StreamParm
		p.Type = v4l2BufTypeVideoCapture
		cp := (*v4l2CaptureParm)(unsafe.Pointer(&p.Parm[0]))
		cp.TimePerFrame = v4l2Fract{Numerator: 1000, Denominator: uint32(c.fps*1000 + 0.5)}
		if err := s.dev.ioctl(vidiocSParm, unsafe.Pointer(&p)); err != nil {
			c.log.Info("camera does not take a frame rate", zap.String("source", c.name), zap.Error(err))
		}
	}

	n := c.buffers
	if n < 2 {
		n = v4l2Buffers
	}
	rb := v4l2RequestBuffers{Count: uint32(n), Type: v4l2BufTypeVideoCapture, Memory: v4l2MemoryMmap}
	if err := s.dev.ioctl(vidiocReqbufs, unsafe.Pointer(&rb)); err != nil {
		if errors.Is(err, unix.EINVAL) {
			return s.errorf("memory-mapped streaming is not supported (VIDIOC_REQBUFS: %v)", err)
		}
		return s.gone("VIDIOC_REQBUFS", err)
	}
	s.requested = true
	if rb.Count < 2 || rb.Count > 32 {
		return s.errorf("driver granted %d buffers (need 2 to 32)", rb.Count)
	}
	s.bufs = make([][]byte, 0, rb.Count)
	for i := range rb.Count {
		b := v4l2Buffer{Index: i, Type: v4l2BufTypeVideoCapture, Memory: v4l2MemoryMmap}
		if err := s.dev.ioctl(vidiocQuerybuf, unsafe.Pointer(&b)); err != nil {
			return s.gone(fmt.Sprintf("VIDIOC_QUERYBUF %d", i), err)
		}
		if b.Length == 0 || b.Length > 256<<20 {
			return s.errorf("buffer %d of %d bytes", i, b.Length)
		}
		m, err := s.dev.mmap(int64(uint32(b.M)), int(b.Length))
		if err != nil {
			return s.gone(fmt.Sprintf("mmap of buffer %d", i), err)
		}
		s.bufs = append(s.bufs, m)
		if err := s.dev.ioctl(vidiocQbuf, unsafe.Pointer(&b)); err != nil {
			return s.gone(fmt.Sprintf("VIDIOC_QBUF %d", i), err)
		}
	}
	typ := int32(v4l2BufTypeVideoCapture)
	if err := s.dev.ioctl(vidiocStreamon, unsafe.Pointer(&typ)); err != nil {
		return s.gone("VIDIOC_STREAMON", err)
	}
	s.streaming = true
	return nil
}

// formats lists the pixel formats the device offers, for errors.
func (s *v4l2Stream) formats() string {
	var out []string
	for i := uint32(0); i < 64; i++ {
		d := v4l2Fmtdesc{Index: i, Type: v4l2BufTypeVideoCapture}
		if s.dev.ioctl(vidiocEnumFmt, unsafe.Pointer(&d)) != nil {
			break
		}
		out = append(out, fmt.Sprintf("%s (%s)", fourccString(d.PixelFormat), cstring(d.Description[:])))
	}
	if len(out) == 0 {
		return "(it lists none)"
	}
	return strings.Join(out, ", ")
}

func (s *v4l2Stream) close() {
	if s.streaming {
		typ := int32(v4l2BufTypeVideoCapture)
		_ = s.dev.ioctl(vidiocStreamoff, unsafe.Pointer(&typ))
	}
	for _, b := range s.bufs {
		_ = s.dev.munmap(b)
	}
	s.bufs = nil
	if s.requested {
		rb := v4l2RequestBuffers{Count: 0, Type: v4l2BufTypeVideoCapture, Memory: v4l2MemoryMmap}
		_ = s.dev.ioctl(vidiocReqbufs, unsafe.Pointer(&rb))
	}
	_ = s.dev.close()
}

// dequeue waits for a filled buffer, at most the camera's timeout.
func (s *v4l2Stream) dequeue(ctx context.Context) (v4l2Buffer, error) {
	deadline := time.Now().Add(s.cam.timeout)
	for {
		if err := ctx.Err(); err != nil {
			return v4l2Buffer{}, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return v4l2Buffer{}, s.errorf("no frame for %s (stalled or unplugged)", s.cam.timeout)
		}
		ready, err := s.dev.poll(min(left, v4l2PollSlice))
		if err != nil {
			return v4l2Buffer{}, s.errorf("waiting for a frame: %v (unplugged?)", err)
		}
		if !ready {
			continue
		}
		b := v4l2Buffer{Type: v4l2BufTypeVideoCapture, Memory: v4l2MemoryMmap}
		if err := s.dev.ioctl(vidiocDqbuf, unsafe.Pointer(&b)); err != nil {
			if errors.Is(err, unix.EAGAIN) {
				continue
			}
			return v4l2Buffer{}, s.gone("VIDIOC_DQBUF", err)
		}
		return b, nil
	}
}

func (s *v4l2Stream) capture(ctx context.Context, emit func(*Frame)) error {
	frame := &Frame{}
	var decoded *Frame
	var scratch, pixels []byte
	bad := 0
	var lastBad string
	for {
		b, err := s.dequeue(ctx)
		if err != nil {
			return err
		}
		if int(b.Index) >= len(s.bufs) {
			return s.errorf("driver returned buffer %d of %d", b.Index, len(s.bufs))
		}
		buf := s.bufs[b.Index]
		payload := buf[:min(int(b.BytesUsed), len(buf))]
		var out *Frame
		switch {
		case b.Flags&v4l2BufFlagError != 0:
			lastBad = "frame flagged as corrupt by the driver"
		case s.pixfmt == pixYUYV:
			need := s.bpl * s.h
			if len(payload) < need {
				lastBad = fmt.Sprintf("truncated YUYV frame: %d of %d bytes", len(payload), need)
				break
			}
			// Copied out of the driver's buffer: the mapping goes away
			// when the device closes, and a consumer holding on to it
			// then would crash the process instead of reading old data.
			pixels = append(pixels[:0], payload[:need]...)
			*frame = Frame{Width: s.w, Height: s.h, Format: YUYV, Stride: s.bpl, Data: pixels}
			out = frame
		default:
			jpg, inserted := withDHT(payload, scratch)
			if inserted {
				scratch = jpg
			}
			d, err := DecodeImage(bytes.NewReader(jpg), s.cam.path, decoded)
			if err != nil {
				lastBad = err.Error()
				break
			}
			decoded, out = d, d
		}
		if out != nil {
			bad = 0
			emit(out)
		} else {
			if bad == 0 {
				s.cam.log.Warn("camera frame skipped", zap.String("source", s.cam.name), zap.String("why", lastBad))
			}
			bad++
			if bad >= v4l2MaxBadInRow {
				return s.errorf("%d unusable frames in a row; the last: %s", bad, lastBad)
			}
		}
		qb := v4l2Buffer{Index: b.Index, Type: v4l2BufTypeVideoCapture, Memory: v4l2MemoryMmap}
		if err := s.dev.ioctl(vidiocQbuf, unsafe.Pointer(&qb)); err != nil {
			return s.gone("VIDIOC_QBUF", err)
		}
	}
}
