package sensors

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func newCamera(t *testing.T, c SourceConfig) FrameSource {
	t.Helper()
	src, err := NewFrameSource(c)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func cmdCamera(argv []string, format string, w, h int) SourceConfig {
	return SourceConfig{Name: "cam", Type: TypeCamera, Command: argv, Format: format, Width: w, Height: h, Timeout: 5 * time.Second}
}

func TestCommandCameraFrames(t *testing.T) {
	needSh(t)
	// Three GRAY8 4x2 frames: frame k holds k*16 + pixel index.
	var raw []byte
	for k := range 3 {
		for i := range 8 {
			raw = append(raw, byte(k*16+i))
		}
	}
	frames, err := collect(t, newCamera(t, cmdCamera(shPrintf(raw, ""), "gray8", 4, 2)), 5*time.Second, copyFrame, nil)
	wantErr(t, err, "exited with status 0", "after 24 bytes")
	if len(frames) != 3 {
		t.Fatalf("%d frames, want 3", len(frames))
	}
	for k, f := range frames {
		if f.Width != 4 || f.Height != 2 || f.Format != GRAY8 || !bytes.Equal(f.Data, raw[8*k:8*k+8]) {
			t.Errorf("frame %d: %dx%d %s %v", k, f.Width, f.Height, f.Format, f.Data)
		}
		if err := f.Validate(); err != nil {
			t.Error(err)
		}
	}

	// I420 6x4: 24 bytes of luma, 6 of U, 6 of V, as rpicam-vid --codec
	// yuv420 writes them; then 1.5 frames: the half is dropped and named.
	raw = raw[:0]
	for i := range 36 + 18 {
		raw = append(raw, byte(i))
	}
	frames, err = collect(t, newCamera(t, cmdCamera(shPrintf(raw, "exit 1"), "i420", 6, 4)), 5*time.Second, copyFrame, nil)
	wantErr(t, err, "exit status 1", "the last 18 bytes, an incomplete I420 6x4 frame of 36 bytes, were dropped")
	if len(frames) != 1 {
		t.Fatalf("%d frames, want 1", len(frames))
	}
	y, u, v := frames[0].Planes()
	if !bytes.Equal(y, raw[:24]) || !bytes.Equal(u, raw[24:30]) || !bytes.Equal(v, raw[30:36]) {
		t.Errorf("planes %v %v %v", y, u, v)
	}

	// Padded rows (stride).
	c := cmdCamera(shPrintf(make([]byte, 2*FrameSize(NV12, 6, 3, 8)), ""), "nv12", 6, 3)
	c.Stride = 8
	frames, _ = collect(t, newCamera(t, c), 5*time.Second, copyFrame, nil)
	if len(frames) != 2 || frames[0].Stride != 8 || len(frames[0].Data) != 8*3+8*2 || frames[0].Validate() != nil {
		t.Errorf("NV12 with stride 8: %d frames, %+v", len(frames), frames)
	}
}

func TestCommandCameraGarbage(t *testing.T) {
	needSh(t)
	// Random bytes that are not a whole number of frames: whole frames
	// arrive, the rest is reported, nothing panics.
	b := make([]byte, 3*FrameSize(YUYV, 8, 6, 0)+37)
	for i := range b {
		b[i] = byte(rand.IntN(256))
	}
	frames, err := collect(t, newCamera(t, cmdCamera(shPrintf(b, ""), "yuyv", 8, 6)), 5*time.Second, copyFrame, nil)
	wantErr(t, err, "the last 37 bytes")
	if len(frames) != 3 {
		t.Fatalf("%d frames", len(frames))
	}
	for _, f := range frames {
		if err := f.Validate(); err != nil {
			t.Error(err)
		}
	}
}

func TestCommandCameraStall(t *testing.T) {
	needSh(t)
	c := cmdCamera([]string{"sh", "-c", "sleep 30"}, "gray8", 4, 2)
	c.Timeout = 200 * time.Millisecond
	_, err := collect(t, newCamera(t, c), 5*time.Second, copyFrame, nil)
	wantErr(t, err, "produced no output for 200ms")
}

// pngFile encodes img as PNG into dir/name.
func pngFile(t *testing.T, dir, name string, img image.Image) string {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, name, b.Bytes())
}

func imageFolder(t *testing.T) string {
	dir := t.TempDir()
	g := image.NewGray(image.Rect(0, 0, 8, 6))
	for i := range g.Pix {
		g.Pix[i] = byte(i * 5)
	}
	pngFile(t, dir, "01.png", g)
	c := image.NewNRGBA(image.Rect(0, 0, 5, 3))
	for y := range 3 {
		for x := range 5 {
			c.SetNRGBA(x, y, color.NRGBA{R: byte(x * 50), G: byte(y * 100), B: 7, A: 255})
		}
	}
	pngFile(t, dir, "02.PNG", c)
	var j bytes.Buffer
	if err := jpeg.Encode(&j, image.NewGray(image.Rect(0, 0, 16, 16)), nil); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "03.jpg", j.Bytes())
	writeFile(t, dir, "labels.txt", []byte("not an image"))
	if err := os.Mkdir(filepath.Join(dir, "sub.png"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func imagesConfig(path string, fps float64, loop, realtime bool) SourceConfig {
	return SourceConfig{Name: "sim", Type: TypeCamera, Images: path, FPS: fps, Loop: loop, Realtime: boolp(realtime)}
}

func TestImageFolder(t *testing.T) {
	dir := imageFolder(t)
	frames, err := collect(t, newCamera(t, imagesConfig(dir, 5, false, false)), 5*time.Second, copyFrame, nil)
	if err != nil {
		t.Fatalf("a finite folder finishes with nil, got %v", err)
	}
	if len(frames) != 3 {
		t.Fatalf("%d frames, want 3", len(frames))
	}
	f := frames[0]
	if f.Format != GRAY8 || f.Width != 8 || f.Height != 6 || f.Data[7] != 35 || f.Data[47] != 235 {
		t.Errorf("01.png: %s %dx%d %v", f.Format, f.Width, f.Height, f.Data)
	}
	f = frames[1]
	if f.Format != RGB24 || f.Width != 5 || f.Height != 3 || !bytes.Equal(f.Data[3*(5+2):3*(5+2)+3], []byte{100, 100, 7}) {
		t.Errorf("02.PNG: %s %dx%d %v", f.Format, f.Width, f.Height, f.Data)
	}
	if f = frames[2]; f.Width != 16 || f.Height != 16 {
		t.Errorf("03.jpg: %dx%d", f.Width, f.Height)
	}

	// Looping, in order; then real-time pacing at 20 fps.
	frames, err = collect(t, newCamera(t, imagesConfig(dir, 5, true, false)), 5*time.Second, copyFrame, count[*Frame](7))
	if !isCtxErr(err) || len(frames) != 7 {
		t.Fatalf("loop: %d frames, %v", len(frames), err)
	}
	for i, f := range frames {
		if w := []int{8, 5, 16}[i%3]; f.Width != w {
			t.Errorf("loop frame %d is %d wide, want %d", i, f.Width, w)
		}
	}
	start := time.Now()
	collect(t, newCamera(t, imagesConfig(dir, 20, true, true)), 5*time.Second, copyFrame, count[*Frame](5))
	if d := time.Since(start); d < 190*time.Millisecond || d > 500*time.Millisecond {
		t.Errorf("5 frames at 20 fps took %s, want 200ms", d)
	}

	// A single file; an unreadable one; a folder without images.
	frames, err = collect(t, newCamera(t, imagesConfig(filepath.Join(dir, "02.PNG"), 5, false, false)), 5*time.Second, copyFrame, nil)
	if err != nil || len(frames) != 1 || frames[0].Width != 5 {
		t.Errorf("single file: %d frames, %v", len(frames), err)
	}
	bad := writeFile(t, dir, "04.png", []byte("\x89PNG\r\n\x1a\ngarbage"))
	_, err = collect(t, newCamera(t, imagesConfig(dir, 5, true, false)), 5*time.Second, copyFrame, nil)
	wantErr(t, err, bad)
	empty := t.TempDir()
	_, err = collect(t, newCamera(t, imagesConfig(empty, 5, true, false)), 5*time.Second, copyFrame, nil)
	wantErr(t, err, "no image files")
	_, err = NewFrameSource(imagesConfig(filepath.Join(empty, "nope"), 5, true, false))
	wantErr(t, err, "images:", "no such file or folder")
}

// luma extracts the Y plane / gray value of any frame the synthetic
// camera makes (it stores gray everywhere).
func luma(f *Frame) []byte {
	out := make([]byte, 0, f.Width*f.Height)
	s := f.RowStride()
	for y := range f.Height {
		for x := range f.Width {
			switch f.Format {
			case GRAY8, NV12, I420:
				out = append(out, f.Data[y*s+x])
			case YUYV:
				out = append(out, f.Data[y*s+2*x])
			default:
				out = append(out, f.Data[y*s+x*f.Format.BytesPerPixel()])
			}
		}
	}
	return out
}

// changed counts pixels whose value differs by more than 25 (the motion
// gate's default threshold).
func changed(a, b []byte) int {
	n := 0
	for i := range a {
		if d := int(a[i]) - int(b[i]); d > 25 || d < -25 {
			n++
		}
	}
	return n
}

// centroidX is the mean x of pixels for which sel is true.
func centroidX(y []byte, w int, sel func(byte) bool) (float64, int) {
	var sum, n int
	for i, v := range y {
		if sel(v) {
			sum += i % w
			n++
		}
	}
	if n == 0 {
		return -1, 0
	}
	return float64(sum) / float64(n), n
}

func synthCam(scene, format string, w, h int, fps float64, realtime bool) SourceConfig {
	return SourceConfig{Name: "syn", Type: TypeCamera, Synthetic: scene, Format: format, Width: w, Height: h, FPS: fps, Realtime: boolp(realtime)}
}

func TestSyntheticCamera(t *testing.T) {
	const w, h, fps = 160, 120, 5
	frames, err := collect(t, newCamera(t, synthCam("shapes", "", w, h, fps, false)), 5*time.Second, copyFrame, count[*Frame](12))
	if !isCtxErr(err) {
		t.Fatal(err)
	}
	for i := 1; i < len(frames); i++ {
		a, b := luma(frames[i-1]), luma(frames[i])
		// Motion is detectable between consecutive frames...
		if n := changed(a, b); n < w*h/100 {
			t.Errorf("frames %d-%d: %d pixels changed; motion should be visible", i-1, i, n)
		}
		// ... and the bright rectangle is where the scene puts it, moving
		// right for the first half period.
		cx, n := centroidX(b, w, func(v byte) bool { return v == sceneRectLuma })
		x0, y0, x1, y1 := sceneRect(float64(i)/fps, w, h)
		if want := float64(x0+x1-1) / 2; n != (x1-x0)*(y1-y0) || cx < want-0.01 || cx > want+0.01 {
			t.Errorf("frame %d: rectangle at x %.2f (%d px), want %.2f (%d px)", i, cx, n, want, (x1-x0)*(y1-y0))
		}
		if i < 20 {
			pa, _ := centroidX(a, w, func(v byte) bool { return v == sceneRectLuma })
			if cx <= pa {
				t.Errorf("frame %d: rectangle did not move right (%.1f -> %.1f)", i, pa, cx)
			}
		}
	}

	// The static scene never changes; the person walks.
	frames, _ = collect(t, newCamera(t, synthCam("static", "", w, h, fps, false)), 5*time.Second, copyFrame, count[*Frame](4))
	for i := 1; i < len(frames); i++ {
		if !bytes.Equal(frames[0].Data, frames[i].Data) {
			t.Errorf("static frame %d differs from frame 0", i)
		}
	}
	frames, _ = collect(t, newCamera(t, synthCam("person", "", w, h, fps, false)), 5*time.Second, copyFrame, count[*Frame](6))
	prev := -1.0
	for i, f := range frames {
		cx, n := centroidX(luma(f), w, func(v byte) bool { return v == scenePersonLuma })
		if frac := float64(n) / (w * h); frac < 0.03 || frac > 0.3 {
			t.Errorf("person frame %d: silhouette covers %.3f of the frame", i, frac)
		}
		if i > 0 && cx <= prev {
			t.Errorf("person frame %d: did not walk right (%.1f -> %.1f)", i, prev, cx)
		}
		prev = cx
		if i > 0 && changed(luma(frames[i-1]), luma(f)) < 50 {
			t.Errorf("person frames %d-%d: no visible motion", i-1, i)
		}
	}

	// Every pixel format holds the same picture, and valid frames.
	ref, _ := collect(t, newCamera(t, synthCam("person", "gray8", 64, 48, fps, false)), 5*time.Second, copyFrame, count[*Frame](2))
	for _, name := range []string{"rgb24", "bgr24", "rgba32", "yuyv", "nv12", "i420"} {
		fs, _ := collect(t, newCamera(t, synthCam("person", name, 64, 48, fps, false)), 5*time.Second, copyFrame, count[*Frame](2))
		f := fs[1]
		if err := f.Validate(); err != nil || f.Format.String() != map[string]string{"rgb24": "RGB24", "bgr24": "BGR24", "rgba32": "RGBA32", "yuyv": "YUYV", "nv12": "NV12", "i420": "I420"}[name] {
			t.Errorf("%s: %v (%s)", name, err, f.Format)
			continue
		}
		if !bytes.Equal(luma(f), ref[1].Data) {
			t.Errorf("%s: picture differs from GRAY8", name)
		}
		if f.Format.Planar() {
			_, u, _ := f.Planes()
			if slices.ContainsFunc(u, func(v byte) bool { return v != 128 }) {
				t.Errorf("%s: chroma is not neutral", name)
			}
		}
	}

	// Real time: 4 frames at 20 fps take 150 ms (the first is immediate).
	start := time.Now()
	collect(t, newCamera(t, synthCam("shapes", "", 32, 24, 20, true)), 5*time.Second, copyFrame, count[*Frame](4))
	if d := time.Since(start); d < 140*time.Millisecond || d > 400*time.Millisecond {
		t.Errorf("4 frames at 20 fps took %s", d)
	}
}

// stripDHT removes the DHT segments of a JPEG (as an MJPEG camera sends
// it).
func stripDHT(t *testing.T, j []byte) []byte {
	t.Helper()
	out := []byte{0xff, 0xd8}
	i := 2
	for i < len(j) {
		m := j[i+1]
		n := int(j[i+2])<<8 | int(j[i+3])
		if m == 0xda {
			return append(out, j[i:]...)
		}
		if m != 0xc4 {
			out = append(out, j[i:i+2+n]...)
		}
		i += 2 + n
	}
	t.Fatal("no SOS")
	return nil
}

func TestMJPEGWithoutHuffmanTables(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 32, 24))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	full := b.Bytes()
	bare := stripDHT(t, full)
	if bytes.Contains(bare, []byte{0xff, 0xc4}) || len(bare) >= len(full) {
		t.Fatal("DHT not stripped")
	}
	if _, err := jpeg.Decode(bytes.NewReader(bare)); err == nil {
		t.Fatal("image/jpeg decoded a JPEG without Huffman tables; the test means nothing")
	}
	fixed, inserted := withDHT(bare, nil)
	if !inserted {
		t.Fatal("tables not inserted")
	}
	want, _ := DecodeImage(bytes.NewReader(full), "full", nil)
	got, err := DecodeImage(bytes.NewReader(fixed), "fixed", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Data, want.Data) {
		t.Error("JPEG with the standard tables inserted decodes differently from the original")
	}
	if out, ins := withDHT(full, nil); ins || !bytes.Equal(out, full) {
		t.Error("a JPEG with tables was changed")
	}
	// Garbage and truncations of every length: no panic.
	for n := range len(bare) {
		withDHT(bare[:n], nil)
	}
	for range 2000 {
		g := make([]byte, rand.IntN(64))
		for i := range g {
			g[i] = byte(rand.IntN(256))
		}
		if len(g) > 2 && rand.IntN(2) == 0 {
			g[0], g[1] = 0xff, 0xd8
		}
		withDHT(g, nil)
	}
}

func FuzzWithDHT(f *testing.F) {
	f.Add([]byte{0xff, 0xd8, 0xff, 0xda, 0, 2})
	f.Add([]byte{0xff, 0xd8, 0xff, 0xe0, 0, 1, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, ins := withDHT(b, nil)
		if !ins && !bytes.Equal(out, b) {
			t.Fatal("changed without inserting")
		}
		if ins && len(out) != len(b)+len(standardDHT) {
			t.Fatal("wrong length")
		}
	})
}

// TestVisitsSceneComesAndGoes: the visits scene moves while the silhouette
// walks (first half of each period) and is empty and still otherwise.
func TestVisitsSceneComesAndGoes(t *testing.T) {
	const w, h = 64, 48
	at := func(tm float64) []byte {
		y := make([]byte, w*h)
		renderScene(SceneVisits, tm, w, h, y)
		return y
	}
	diff := func(a, b []byte) int {
		n := 0
		for i := range a {
			if a[i] != b[i] {
				n++
			}
		}
		return n
	}
	if d := diff(at(2), at(2.5)); d < 20 {
		t.Errorf("only %d pixels change while the person walks", d)
	}
	empty := at(9)
	if d := diff(empty, at(15.9)); d != 0 {
		t.Errorf("%d pixels change while the scene is empty", d)
	}
	for _, v := range empty {
		if v != scenePersonBG {
			t.Fatal("the empty scene is not plain background")
		}
	}
	if d := diff(at(1), at(17)); d != 0 {
		t.Errorf("the scene does not repeat every %v s (%d pixels differ)", sceneVisitPeriod, d)
	}
}
