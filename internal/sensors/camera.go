package sensors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"
)

// frameDuration is the time of frame i at fps frames per second.
func frameDuration(i int64, fps float64) time.Duration {
	return time.Duration(float64(i) * float64(time.Second) / fps)
}

// ---- command ----

// commandCamera runs a command that writes raw frames of one format and
// size back to back to stdout (rpicam-vid --codec yuv420 -o -, ffmpeg -f
// rawvideo).
type commandCamera struct {
	name          string
	argv          []string
	format        PixelFormat
	width, height int
	stride        int // 0: tightly packed
	timeout       time.Duration
}

func (c *commandCamera) Name() string { return c.name }

func (c *commandCamera) Run(ctx context.Context, emit func(*Frame)) error {
	p, err := startProcess(ctx, c.argv)
	if err != nil {
		return err
	}
	defer p.stop()
	data := make([]byte, FrameSize(c.format, c.width, c.height, c.stride))
	frame := &Frame{}
	for {
		n, err := p.readFull(ctx, data, c.timeout)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case err == nil:
			// Reset the header each time: the consumer may not change it,
			// but a mistake there must not corrupt the next frame.
			*frame = Frame{Width: c.width, Height: c.height, Format: c.format, Data: data, Stride: c.stride}
			emit(frame)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return p.ended(err, fmt.Sprintf("%s %dx%d frame of %d bytes", c.format, c.width, c.height, len(data)), n)
		default:
			return err
		}
	}
}

// ---- image files ----

var imageExts = []string{".png", ".jpg", ".jpeg", ".bmp"}

// imageCamera shows an image file, or a folder of them in name order, at
// fps frames per second.
type imageCamera struct {
	name     string
	path     string
	fps      float64
	loop     bool
	realtime bool
}

func (c *imageCamera) Name() string { return c.name }

func (c *imageCamera) Run(ctx context.Context, emit func(*Frame)) error {
	pc := newPacer(c.realtime)
	defer pc.stop()
	var frame *Frame
	var i int64
	for {
		files, err := listFiles(c.path, imageExts, "image")
		if err != nil {
			return err
		}
		for _, path := range files {
			if frame, err = decodeImagePath(path, frame); err != nil {
				return err
			}
			if err := pc.wait(ctx, frameDuration(i, c.fps)); err != nil {
				return err
			}
			emit(frame)
			i++
		}
		if !c.loop {
			return nil
		}
	}
}

func decodeImagePath(path string, reuse *Frame) (*Frame, error) {
	f, err := os.Open(path)
	if err != nil {
		return reuse, err
	}
	defer f.Close()
	fr, err := DecodeImage(f, path, reuse)
	if err != nil {
		return reuse, err
	}
	return fr, nil
}

// ---- synthetic ----

// Synthetic scenes for the camera.
const (
	// SceneShapes: a bright rectangle sliding left and right and a dark
	// disc moving up and down on a gray background.
	SceneShapes = "shapes"
	// ScenePerson: a dark person-like silhouette walking left and right
	// across a light background.
	ScenePerson = "person"
	// SceneStatic: the shapes scene frozen; nothing ever moves.
	SceneStatic = "static"
	// SceneVisits: every 16 s a person-like silhouette walks across for
	// 8 s, then the scene is empty and still for 8 s (motion comes and
	// goes, for the simulator's motion events).
	SceneVisits = "visits"
)

var sceneNames = []string{SceneShapes, ScenePerson, SceneStatic, SceneVisits}

func parseScene(s string) (string, error) {
	for _, n := range sceneNames {
		if strings.EqualFold(s, n) {
			return n, nil
		}
	}
	return "", fmt.Errorf("unknown scene %q (%s)", s, strings.Join(sceneNames, ", "))
}

// synthCamera renders a synthetic scene at fps frames per second.
type synthCamera struct {
	name          string
	scene         string
	format        PixelFormat
	width, height int
	fps           float64
	realtime      bool
}

func (c *synthCamera) Name() string { return c.name }

func (c *synthCamera) Run(ctx context.Context, emit func(*Frame)) error {
	pc := newPacer(c.realtime)
	defer pc.stop()
	luma := make([]byte, c.width*c.height)
	frame := NewFrame(c.format, c.width, c.height)
	data, stride := frame.Data, frame.Stride
	for i := int64(0); ; i++ {
		renderScene(c.scene, float64(i)/c.fps, c.width, c.height, luma)
		*frame = Frame{Width: c.width, Height: c.height, Format: c.format, Data: data, Stride: stride}
		packGray(luma, frame)
		if err := pc.wait(ctx, frameDuration(i, c.fps)); err != nil {
			return err
		}
		emit(frame)
	}
}

// Scene geometry, shared with the tests.
const (
	sceneBackground  = 110 // shapes: gray background (at mid height)
	sceneRectLuma    = 230
	sceneDiscLuma    = 40
	scenePersonBG    = 170
	scenePersonLuma  = 35
	scenePeriod      = 8.0 // seconds for one sweep across and back (shapes)
	scenePersonPer   = 12.0
	sceneVisitPeriod = 16.0 // visits: 8 s walking, 8 s empty
)

// triangle maps t to 0..1..0 over period.
func triangle(t, period float64) float64 {
	x := math.Mod(t/period, 1)
	if x < 0 {
		x++
	}
	if x < 0.5 {
		return 2 * x
	}
	return 2 - 2*x
}

// sceneRect is the bright rectangle's box at time t (shapes, static).
func sceneRect(t float64, w, h int) (x0, y0, x1, y1 int) {
	rw, rh := max(w/5, 1), max(h/3, 1)
	x0 = int(math.Round(triangle(t, scenePeriod) * float64(w-rw)))
	y0 = (h - rh) / 2
	return x0, y0, x0 + rw, y0 + rh
}

// renderScene draws the scene at time t seconds into a w×h luma plane.
func renderScene(scene string, t float64, w, h int, y []byte) {
	switch scene {
	case ScenePerson:
		for i := range y {
			y[i] = scenePersonBG
		}
		renderPerson(t, w, h, y)
		return
	case SceneVisits:
		for i := range y {
			y[i] = scenePersonBG
		}
		if phase := math.Mod(t, sceneVisitPeriod); phase < sceneVisitPeriod/2 {
			// One walk from the left edge to the right: the first half of
			// the person scene's back-and-forth.
			renderPerson(phase/(sceneVisitPeriod/2)*scenePersonPer/2, w, h, y)
		}
		return
	case SceneStatic:
		t = 0
	}
	// A vertical gradient, so the background is not one flat value.
	for r := range h {
		v := byte(sceneBackground - 20 + 40*r/max(h, 1))
		row := y[r*w : (r+1)*w]
		for i := range row {
			row[i] = v
		}
	}
	x0, y0, x1, y1 := sceneRect(t, w, h)
	fillRect(y, w, h, x0, y0, x1, y1, sceneRectLuma)
	// The disc moves vertically at a different pace, on the right.
	rad := float64(max(min(w, h)/10, 1))
	cx := float64(w) * 0.8
	cy := rad + triangle(t, scenePeriod*0.75)*(float64(h)-2*rad)
	fillDisc(y, w, h, cx, cy, rad, sceneDiscLuma)
}

// renderPerson draws a walking silhouette: head, torso, arms, swinging
// legs; about 70 % of the frame high.
func renderPerson(t float64, w, h int, y []byte) {
	ph := 0.7 * float64(h)
	unit := ph / 8 // head height
	bodyW := 1.6 * unit
	cx := bodyW + triangle(t, scenePersonPer)*(float64(w)-2*bodyW)
	top := (float64(h) - ph) / 2
	fillDisc(y, w, h, cx, top+unit/2, unit/2, scenePersonLuma)
	// neck and torso
	fillRectF(y, w, h, cx-unit/6, top+unit*0.9, cx+unit/6, top+unit*1.3, scenePersonLuma)
	fillRectF(y, w, h, cx-bodyW/2, top+unit*1.25, cx+bodyW/2, top+unit*4.2, scenePersonLuma)
	// arms
	fillRectF(y, w, h, cx-bodyW/2-unit*0.35, top+unit*1.35, cx-bodyW/2, top+unit*3.9, scenePersonLuma)
	fillRectF(y, w, h, cx+bodyW/2, top+unit*1.35, cx+bodyW/2+unit*0.35, top+unit*3.9, scenePersonLuma)
	// legs: a stride that swings with the step
	swing := math.Sin(2*math.Pi*t*1.5) * unit * 0.6
	for _, s := range []float64{-1, 1} {
		lx := cx + s*bodyW/4
		foot := lx + s*swing
		for yy := top + unit*4.2; yy < top+ph; yy++ {
			f := (yy - (top + unit*4.2)) / (ph - unit*4.2)
			x := lx + (foot-lx)*f
			fillRectF(y, w, h, x-unit*0.3, yy, x+unit*0.3, yy+1, scenePersonLuma)
		}
	}
}

func fillRect(y []byte, w, h, x0, y0, x1, y1 int, v byte) {
	x0, y0 = max(x0, 0), max(y0, 0)
	x1, y1 = min(x1, w), min(y1, h)
	for r := y0; r < y1; r++ {
		row := y[r*w+x0 : r*w+max(x1, x0)]
		for i := range row {
			row[i] = v
		}
	}
}

func fillRectF(y []byte, w, h int, x0, y0, x1, y1 float64, v byte) {
	fillRect(y, w, h, int(math.Round(x0)), int(math.Round(y0)), int(math.Round(x1)), int(math.Round(y1)), v)
}

func fillDisc(y []byte, w, h int, cx, cy, r float64, v byte) {
	for yy := max(int(cy-r), 0); yy <= min(int(cy+r), h-1); yy++ {
		for xx := max(int(cx-r), 0); xx <= min(int(cx+r), w-1); xx++ {
			dx, dy := float64(xx)+0.5-cx, float64(yy)+0.5-cy
			if dx*dx+dy*dy <= r*r {
				y[yy*w+xx] = v
			}
		}
	}
}

// packGray stores a luma plane (Width×Height, tightly packed) into a
// frame of any format: gray in every RGB channel, neutral chroma (128).
func packGray(luma []byte, f *Frame) {
	w, h := f.Width, f.Height
	s := f.RowStride()
	switch f.Format {
	case GRAY8:
		for r := range h {
			copy(f.Data[r*s:r*s+w], luma[r*w:(r+1)*w])
		}
	case RGB24, BGR24, RGBA32:
		bpp := f.Format.BytesPerPixel()
		for r := range h {
			row := f.Data[r*s : r*s+w*bpp]
			for x, v := range luma[r*w : (r+1)*w] {
				p := row[x*bpp : x*bpp+bpp]
				p[0], p[1], p[2] = v, v, v
				if bpp == 4 {
					p[3] = 0xff
				}
			}
		}
	case YUYV:
		for r := range h {
			row := f.Data[r*s : r*s+2*w]
			for x, v := range luma[r*w : (r+1)*w] {
				row[2*x] = v
				row[2*x+1] = 128
			}
		}
	case NV12, I420:
		yp, u, v := f.Planes()
		for r := range h {
			copy(yp[r*s:r*s+w], luma[r*w:(r+1)*w])
		}
		for i := range u {
			u[i] = 128
		}
		for i := range v {
			v[i] = 128
		}
	}
}
