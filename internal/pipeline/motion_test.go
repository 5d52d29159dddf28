package pipeline

import (
	"image"
	"math/rand/v2"
	"testing"

	"github.com/edged/edged/internal/sensors"
)

// scene draws a gray background with sensor noise of ±noise levels and
// filled squares.
func scene(f *sensors.Frame, rng *rand.Rand, noise int, squares ...image.Rectangle) {
	for y := range f.Height {
		for x := range f.Width {
			v := 100
			for _, s := range squares {
				if (image.Point{x, y}).In(s) {
					v = 200
				}
			}
			if noise > 0 {
				v += rng.IntN(2*noise+1) - noise
			}
			f.Data[y*f.Width+x] = uint8(v)
		}
	}
}

func TestMotionMovingSquare(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	md, err := NewMotionDetector(MotionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	f := sensors.NewFrame(sensors.GRAY8, 320, 200)
	scene(f, rng, 3)
	ev, err := md.Detect(f)
	if err != nil {
		t.Fatal(err)
	}
	if !ev.Warmup || ev.Motion {
		t.Fatalf("first frame: %+v", ev)
	}
	if w, h := md.Size(); w != 160 || h != 100 {
		t.Errorf("downscaled to %dx%d, want 160x100", w, h)
	}
	// Noise alone: no motion.
	for range 5 {
		scene(f, rng, 3)
		if ev, _ = md.Detect(f); ev.Motion {
			t.Fatalf("noise reported as motion: %+v", ev)
		}
	}
	// A 40x40 square moving right.
	for i := range 5 {
		sq := image.Rect(60+20*i, 80, 100+20*i, 120)
		scene(f, rng, 3, sq)
		ev, _ = md.Detect(f)
		if !ev.Motion {
			t.Fatalf("frame %d: moving square not detected: %+v", i, ev)
		}
		// The box covers the square (within the 2x downscale, the blur
		// and the background still holding the earlier positions).
		if !sq.Inset(2).In(ev.Box) || ev.Box.Min.Y < 70 || ev.Box.Max.Y > 130 {
			t.Errorf("frame %d: box %v does not fit square %v", i, ev.Box, sq)
		}
		if len(ev.Regions) == 0 || ev.ChangedFraction <= 0 {
			t.Errorf("frame %d: no regions %+v", i, ev)
		}
	}
	if ev.Frame != 11 {
		t.Errorf("frame counter %d, want 11", ev.Frame)
	}
}

func TestMotionMinArea(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	f := sensors.NewFrame(sensors.GRAY8, 400, 200) // downscaled 2x to 200x100
	run := func(cfg MotionConfig, sq image.Rectangle) MotionEvent {
		md, err := NewMotionDetector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		scene(f, rng, 0)
		md.Detect(f)
		scene(f, rng, 0, sq)
		ev, err := md.Detect(f)
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	small := image.Rect(100, 100, 106, 106) // 3x3 downscaled pixels: under 10
	medium := image.Rect(100, 60, 140, 100) // 20x20 = 400 of 20000 (2 %)
	if ev := run(MotionConfig{NoBlur: true}, small); ev.Motion {
		t.Errorf("a speck under MinRegionPixels is motion: %+v", ev)
	}
	if ev := run(MotionConfig{MinRegionPixels: 4, NoBlur: true}, small); !ev.Motion {
		t.Errorf("with MinRegionPixels 4 the 9-pixel speck is not motion: %+v", ev)
	}
	if ev := run(MotionConfig{NoBlur: true}, medium); !ev.Motion || ev.Box != medium {
		t.Errorf("medium square: %+v, want box %v", ev, medium)
	}
	if ev := run(MotionConfig{MinArea: 0.05, NoBlur: true}, medium); ev.Motion {
		t.Errorf("2 %% change with MinArea 5 %% is motion: %+v", ev)
	}
	if ev := run(MotionConfig{MinArea: 0.01, NoBlur: true}, medium); !ev.Motion {
		t.Errorf("2 %% change with MinArea 1 %% is not motion: %+v", ev)
	}
	// Lights on: everything changes at once.
	if ev := run(MotionConfig{}, image.Rect(0, 0, 400, 200)); ev.Motion || !ev.Lighting {
		t.Errorf("global change: %+v", ev)
	}
}

func TestMotionThresholdAndFormats(t *testing.T) {
	// A change of 20 levels is under the default threshold of 30, over 10.
	for _, c := range []struct {
		thr  uint8
		want bool
	}{{0, false}, {10, true}} {
		md, _ := NewMotionDetector(MotionConfig{Threshold: c.thr})
		f := sensors.NewFrame(sensors.GRAY8, 100, 100)
		for i := range f.Data {
			f.Data[i] = 100
		}
		md.Detect(f)
		for y := 20; y < 60; y++ {
			for x := 20; x < 60; x++ {
				f.Data[y*100+x] = 120
			}
		}
		if ev, _ := md.Detect(f); ev.Motion != c.want {
			t.Errorf("threshold %d: motion %v, want %v", c.thr, ev.Motion, c.want)
		}
	}
	// NV12 frames: the Y plane is read; a new size restarts the background.
	md, _ := NewMotionDetector(MotionConfig{})
	nv := sensors.NewFrame(sensors.NV12, 64, 48)
	for i := range nv.Data {
		nv.Data[i] = 128
	}
	md.Detect(nv)
	for y := 10; y < 30; y++ {
		for x := 10; x < 30; x++ {
			nv.Data[y*64+x] = 250
		}
	}
	if ev, _ := md.Detect(nv); !ev.Motion {
		t.Errorf("NV12 square not detected: %+v", ev)
	}
	if ev, _ := md.Detect(sensors.NewFrame(sensors.RGB24, 80, 60)); !ev.Warmup {
		t.Errorf("a frame of another size did not restart: %+v", ev)
	}
	if n := testing.AllocsPerRun(10, func() { md.Detect(sensors.NewFrame(sensors.RGB24, 80, 60)) }); n > 2 {
		// Two allocations are the test's own NewFrame.
		t.Errorf("Detect allocates %v per frame", n-2)
	}
	if _, err := NewMotionDetector(MotionConfig{MinArea: 2}); err == nil {
		t.Error("MinArea 2 accepted")
	}
}
