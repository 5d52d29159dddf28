package pipeline

import (
	"fmt"
	"image"
	"math"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/sensors"
)

// Motion gating, after Frigate's motion detector: inference is expensive,
// so the camera loop runs it only on frames where something moved. Each
// frame is shrunk to a small gray image (area averaging, ~100 rows),
// lightly blurred, and compared with a running-average background; pixels
// differing by more than Threshold are "changed", changed pixels are
// grouped into 8-connected regions, regions smaller than MinRegionPixels
// are noise, and the frame has motion when the remaining regions cover at
// least MinArea of the image. The background then absorbs the frame at
// rate Alpha. A change over most of the image at once (LightingArea:
// lights switched on, the camera's exposure jumping) is not motion: the
// background is reset to the frame.
//
// Periodic forced inference is the caller's: motion gating alone never
// re-checks a scene that stopped moving (a person standing still), so a
// camera loop keeps the time of its last inference and runs the model
// when the detector reports motion or when that time is older than its
// refresh interval, e.g.
//
//	ev := md.Detect(frame)
//	if ev.Motion || time.Since(lastInference) > refresh {
//		run the model; lastInference = time.Now()
//	}
//
// and, while detections are present, keeps running it every frame (as
// Frigate tracks objects until they leave).

// MotionConfig configures a MotionDetector. Zero values take the
// defaults noted.
type MotionConfig struct {
	// Height of the downscaled gray image (default 100; Frigate's
	// frame_height); the width keeps the frame's aspect ratio.
	Height int
	// Threshold is the gray-level difference from the background that
	// counts as change (default 30, Frigate's threshold).
	Threshold uint8
	// MinRegionPixels is the smallest connected region, in downscaled
	// pixels, that counts (default 10, Frigate's contour_area); smaller
	// specks are sensor noise.
	MinRegionPixels int
	// MinArea is the smallest fraction of the downscaled image the
	// counted regions must cover together for motion (default 0: any
	// counted region).
	MinArea float64
	// Alpha is the background's update rate per frame (default 0.02).
	Alpha float32
	// LightingArea is the changed fraction above which a frame is a
	// lighting change rather than motion (default 0.8; 1 disables).
	LightingArea float64
	// NoBlur skips the 3×3 blur before differencing.
	NoBlur bool
}

// MotionEvent is the verdict on one frame.
type MotionEvent struct {
	// Frame counts the frames seen, from 1.
	Frame int64
	// Motion says counted regions cover at least MinArea.
	Motion bool
	// Box bounds the counted regions, in frame pixels (empty without
	// motion).
	Box image.Rectangle
	// Regions are the counted regions' bounds, in frame pixels; the slice
	// is reused by the next Detect.
	Regions []image.Rectangle
	// ChangedFraction is the fraction of the downscaled image in counted
	// regions.
	ChangedFraction float64
	// Lighting says the frame was taken as a lighting change (background
	// reset, no motion reported).
	Lighting bool
	// Warmup says this was the first frame (it only sets the background).
	Warmup bool
}

// MotionDetector holds the background of one camera. Not safe for
// concurrent use.
type MotionDetector struct {
	cfg MotionConfig

	frames         int64
	srcW, srcH     int
	srcFormat      sensors.PixelFormat
	w, h           int
	pre            *Preprocessor
	small, blurred []byte
	bg             []float32
	mask           []byte  // 1 changed, 2 visited
	stack          []int32 // flood fill
	regions        []image.Rectangle
}

// NewMotionDetector returns a detector with cfg's zero fields defaulted.
func NewMotionDetector(cfg MotionConfig) (*MotionDetector, error) {
	if cfg.Height == 0 {
		cfg.Height = 100
	}
	if cfg.Threshold == 0 {
		cfg.Threshold = 30
	}
	if cfg.MinRegionPixels == 0 {
		cfg.MinRegionPixels = 10
	}
	if cfg.Alpha == 0 {
		cfg.Alpha = 0.02
	}
	if cfg.LightingArea == 0 {
		cfg.LightingArea = 0.8
	}
	switch {
	case cfg.Height < 8 || cfg.Height > 2048:
		return nil, fmt.Errorf("motion: height %d out of range 8..2048", cfg.Height)
	case cfg.Alpha < 0 || cfg.Alpha > 1:
		return nil, fmt.Errorf("motion: alpha %v out of range 0..1", cfg.Alpha)
	case cfg.MinArea < 0 || cfg.MinArea > 1 || cfg.LightingArea < 0 || cfg.LightingArea > 1:
		return nil, fmt.Errorf("motion: areas are fractions 0..1 (min %v, lighting %v)", cfg.MinArea, cfg.LightingArea)
	case cfg.MinRegionPixels < 0:
		return nil, fmt.Errorf("motion: negative minimum region %d", cfg.MinRegionPixels)
	}
	return &MotionDetector{cfg: cfg}, nil
}

// Reset forgets the background; the next frame starts it again.
func (m *MotionDetector) Reset() { m.frames, m.srcW = 0, 0 }

// Size is the downscaled image's size (0 before the first frame).
func (m *MotionDetector) Size() (w, h int) { return m.w, m.h }

// Detect compares a frame with the background and updates it. A frame of
// another size or format than the previous restarts the background.
func (m *MotionDetector) Detect(f *sensors.Frame) (MotionEvent, error) {
	if err := f.Validate(); err != nil {
		return MotionEvent{}, err
	}
	if f.Width != m.srcW || f.Height != m.srcH || f.Format != m.srcFormat || m.pre == nil {
		if err := m.setup(f); err != nil {
			return MotionEvent{}, err
		}
	}
	m.frames++
	ev := MotionEvent{Frame: m.frames, Regions: m.regions[:0]}
	if _, err := m.pre.Process(f, m.small); err != nil {
		return ev, err
	}
	img := m.small
	if !m.cfg.NoBlur {
		blur3(m.small, m.blurred, m.w, m.h)
		img = m.blurred
	}
	if m.frames == 1 {
		for i, v := range img {
			m.bg[i] = float32(v)
		}
		ev.Warmup = true
		return ev, nil
	}

	thr := float32(m.cfg.Threshold)
	changed := 0
	for i, v := range img {
		if d := float32(v) - m.bg[i]; d > thr || -d > thr {
			m.mask[i] = 1
			changed++
		} else {
			m.mask[i] = 0
		}
	}
	total := float64(m.w * m.h)
	if float64(changed) > m.cfg.LightingArea*total && m.cfg.LightingArea < 1 {
		for i, v := range img {
			m.bg[i] = float32(v)
		}
		ev.Lighting = true
		return ev, nil
	}

	counted := 0
	if changed > 0 {
		counted = m.regionsOf(&ev)
	}
	ev.ChangedFraction = float64(counted) / total
	ev.Motion = counted > 0 && ev.ChangedFraction >= m.cfg.MinArea
	if ev.Motion {
		for _, r := range ev.Regions {
			ev.Box = ev.Box.Union(r)
		}
	} else {
		ev.Regions = ev.Regions[:0]
	}
	m.regions = ev.Regions

	a := m.cfg.Alpha
	for i, v := range img {
		m.bg[i] += a * (float32(v) - m.bg[i])
	}
	return ev, nil
}

func (m *MotionDetector) setup(f *sensors.Frame) error {
	h := min(m.cfg.Height, f.Height)
	w := max(1, int(math.Round(float64(f.Width)*float64(h)/float64(f.Height))))
	pre, err := NewPreprocessor(InputSpec{Type: runtime.Uint8, Shape: []int{1, h, w}, Scale: 1}, PreprocessOptions{Resize: ResizeArea, Normalization: NormRaw, YUVRange: YUVFull})
	if err != nil {
		return fmt.Errorf("motion: %w", err)
	}
	m.pre, m.w, m.h = pre, w, h
	m.srcW, m.srcH, m.srcFormat = f.Width, f.Height, f.Format
	m.small = make([]byte, w*h)
	m.blurred = make([]byte, w*h)
	m.bg = make([]float32, w*h)
	m.mask = make([]byte, w*h)
	m.stack = make([]int32, 0, w*h)
	m.frames = 0
	return nil
}

// regionsOf groups the changed pixels of the mask into 8-connected
// regions, appends those of at least MinRegionPixels (in frame pixels) to
// ev.Regions and returns their pixel count.
func (m *MotionDetector) regionsOf(ev *MotionEvent) int {
	w, h := m.w, m.h
	sx, sy := float64(m.srcW)/float64(w), float64(m.srcH)/float64(h)
	counted := 0
	for start, v := range m.mask {
		if v != 1 {
			continue
		}
		x0, y0, x1, y1 := w, h, -1, -1
		n := 0
		stack := append(m.stack[:0], int32(start))
		m.mask[start] = 2
		for len(stack) > 0 {
			i := int(stack[len(stack)-1])
			stack = stack[:len(stack)-1]
			n++
			x, y := i%w, i/w
			x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					nx, ny := x+dx, y+dy
					if nx < 0 || ny < 0 || nx >= w || ny >= h {
						continue
					}
					if j := ny*w + nx; m.mask[j] == 1 {
						m.mask[j] = 2
						stack = append(stack, int32(j))
					}
				}
			}
		}
		m.stack = stack
		if n < m.cfg.MinRegionPixels {
			continue
		}
		counted += n
		ev.Regions = append(ev.Regions, image.Rect(
			int(math.Floor(float64(x0)*sx)), int(math.Floor(float64(y0)*sy)),
			min(m.srcW, int(math.Ceil(float64(x1+1)*sx))), min(m.srcH, int(math.Ceil(float64(y1+1)*sy)))))
	}
	return counted
}

// blur3 is a 3×3 binomial blur ([1 2 1]ᵀ[1 2 1]/16) with replicated
// edges, rounding to nearest.
func blur3(src, dst []byte, w, h int) {
	at := func(x, y int) uint32 {
		x = min(max(x, 0), w-1)
		y = min(max(y, 0), h-1)
		return uint32(src[y*w+x])
	}
	for y := range h {
		for x := range w {
			s := at(x-1, y-1) + 2*at(x, y-1) + at(x+1, y-1) +
				2*at(x-1, y) + 4*at(x, y) + 2*at(x+1, y) +
				at(x-1, y+1) + 2*at(x, y+1) + at(x+1, y+1)
			dst[y*w+x] = uint8((s + 8) >> 4)
		}
	}
}
