package main

import (
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edged/edged/internal/testenv"
)

// detectLine is one line of `edged detect --json`.
type detectLine struct {
	File       string          `json:"file"`
	Kind       string          `json:"kind"`
	Width      int             `json:"width"`
	Height     int             `json:"height"`
	Top        []classJSON     `json:"top"`
	Detections []detectionJSON `json:"detections"`
}

func detectJSON(t *testing.T, args ...string) []detectLine {
	t.Helper()
	r := edged(t, append([]string{"detect", "--json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("edged detect %v: exit %d\n%s", args, r.code, r.stderr)
	}
	var lines []detectLine
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var d detectLine
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatalf("not a JSON line: %v\n%s", err, l)
		}
		lines = append(lines, d)
	}
	return lines
}

func TestDetectPerson(t *testing.T) {
	model := testenv.SharedFile(t, "models/person_detect.tflite")
	labels := testenv.SharedFile(t, "models/person_detect_labels.txt")
	person := testenv.SharedFile(t, "inputs/person.png")
	noPerson := testenv.SharedFile(t, "inputs/no_person.png")

	lines := detectJSON(t, "--model", model, "--labels", labels, person, noPerson)
	if len(lines) != 2 {
		t.Fatalf("%d lines for 2 images", len(lines))
	}
	for i, want := range []string{"person", "no_person"} {
		l := lines[i]
		if l.Kind != "classifier" || len(l.Top) != 2 || l.Top[0].Label != want || l.Width != 96 || l.Height != 96 {
			t.Errorf("%s: %+v, want top class %s", l.File, l, want)
		}
		if l.Top[0].Score < 0.5 || l.Top[0].Score < l.Top[1].Score || l.Detections != nil {
			t.Errorf("%s: scores %+v", l.File, l.Top)
		}
	}
	// Text: the top class alone.
	r := edged(t, "detect", "--model", model, "--labels", labels, person, noPerson)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	out := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(out) != 2 || !strings.HasPrefix(out[0], person+": person (") || !strings.HasPrefix(out[1], noPerson+": no_person (") {
		t.Errorf("text output:\n%s", r.stdout)
	}
	// Flags after the images work too, and area resizing agrees.
	lines = detectJSON(t, person, "--model", model, "--labels", labels, "--resize", "area", "--top", "1")
	if len(lines) != 1 || len(lines[0].Top) != 1 || lines[0].Top[0].Label != "person" {
		t.Errorf("flags after the image: %+v", lines)
	}
}

func TestDetectMobileNetCat(t *testing.T) {
	lines := detectJSON(t, "--model", testenv.SharedFile(t, "models/mobilenet_v1_0.25_128_quant.tflite"),
		"--labels", testenv.SharedFile(t, "models/imagenet_labels.txt"), testenv.SharedFile(t, "inputs/cat.bmp"))
	cat := false
	for _, c := range lines[0].Top {
		cat = cat || strings.Contains(c.Label, "cat")
	}
	if len(lines[0].Top) != 5 || !cat {
		t.Errorf("top 5 without a cat: %+v", lines[0].Top)
	}
}

func TestDetectAnnotate(t *testing.T) {
	dir := t.TempDir()
	img := testenv.SharedFile(t, "inputs/cat.bmp")
	r := edged(t, "detect", "--model", testenv.SharedFile(t, "models/mobilenet_v1_0.25_128_quant.tflite"),
		"--labels", testenv.SharedFile(t, "models/imagenet_labels.txt"), "--annotate", dir, img)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	f, err := os.Open(filepath.Join(dir, "cat.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pic, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := pic.Bounds(); b.Dx() != 512 || b.Dy() != 341 {
		t.Errorf("annotated image is %v, want 512x341", b)
	}
}

func TestDetectErrors(t *testing.T) {
	model := testenv.SharedFile(t, "models/person_detect.tflite")
	for _, args := range [][]string{
		{"detect"},
		{"detect", "--model", model},
		{"detect", "--model", model, "--fit", "squash", "x.png"},
		{"detect", "--model", model, "--resize", "cubic", "x.png"},
		{"detect", "--model", model, "--kind", "rcnn", "x.png"},
		{"detect", "--model", model, "--top", "0", "x.png"},
		{"detect", "--model", model, "--fill", "300", "x.png"},
		{"detect", "--model", model, "--nosuchflag", "x.png"},
	} {
		if r := edged(t, args...); r.code != 2 {
			t.Errorf("edged %v: exit %d, want 2 (%s)", args, r.code, r.stderr)
		}
	}
	// A missing or broken image fails that image, names it, and the others
	// still run.
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.png")
	os.WriteFile(broken, []byte("\x89PNG\r\n\x1a\nnot really"), 0o644)
	person := testenv.SharedFile(t, "inputs/person.png")
	r := edged(t, "detect", "--model", model, filepath.Join(dir, "missing.jpg"), broken, person)
	if r.code != 1 || !strings.Contains(r.stderr, "missing.jpg") || !strings.Contains(r.stderr, "broken.png") || !strings.Contains(r.stderr, "2 of 3 images failed") {
		t.Errorf("bad images: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, person) {
		t.Errorf("the good image was not reported:\n%s", r.stdout)
	}
	// A classifier is not a detector.
	if r := edged(t, "detect", "--model", model, "--kind", "yolo", person); r.code != 1 || !strings.Contains(r.stderr, "no output of shape") {
		t.Errorf("--kind yolo on a classifier: exit %d, %s", r.code, r.stderr)
	}
}

// TestDetectSSD runs traffic_model (an LSTM-SSD with
// TFLite_Detection_PostProcess) through edged detect.
func TestDetectSSD(t *testing.T) {
	model := testenv.SharedFile(t, "models/traffic_model.tflite")
	frame := testenv.SharedFile(t, "inputs/traffic_frames/0001.bmp")
	lines := detectJSON(t, "--model", model, "--threshold", "0.2", frame)
	checkSSDGolden(t, lines[0], "traffic_model_frame1", 0.2)
}

// TestDetectSSDSequence runs two consecutive frames: with --sequence the
// LSTM state of the first (raw_outputs/lstm_c|h) feeds the second
// (raw_inputs/init_lstm_c|h), as in the traffic_model_frame2 golden case.
func TestDetectSSDSequence(t *testing.T) {
	model := testenv.SharedFile(t, "models/traffic_model.tflite")
	f1 := testenv.SharedFile(t, "inputs/traffic_frames/0001.bmp")
	f2 := testenv.SharedFile(t, "inputs/traffic_frames/0002.bmp")
	lines := detectJSON(t, "--model", model, "--threshold", "0.2", "--sequence", f1, f2)
	checkSSDGolden(t, lines[1], "traffic_model_frame2", 0.2)
}

// checkSSDGolden compares edged detect's detections on a traffic frame with
// the golden case's expected detections above threshold. The golden input
// was the same frame stretched to 256×256 bilinearly, as edged detect does.
func checkSSDGolden(t *testing.T, l detectLine, golden string, threshold float64) {
	t.Helper()
	var g struct {
		Expected []struct {
			Class int       `json:"class_id"`
			Score float64   `json:"score"`
			Box   []float64 `json:"box_xyxy_input_px"`
		} `json:"expected_detections"`
	}
	b, err := os.ReadFile(testenv.SharedFile(t, "golden/"+golden+"/case.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if l.Kind != "ssd" {
		t.Fatalf("%+v", l)
	}
	want := 0
	for _, e := range g.Expected {
		if e.Score < threshold {
			continue
		}
		want++
		found := false
		for _, d := range l.Detections {
			got := []float64{d.Box.X1, d.Box.Y1, d.Box.X2, d.Box.Y2}
			if d.Index == e.Class && math.Abs(d.Score-e.Score) < 0.005 && iou(got, e.Box) > 0.95 {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: expected class %d score %.3f at %v not found in %+v", golden, e.Class, e.Score, e.Box, l.Detections)
		}
	}
	if len(l.Detections) != want {
		t.Errorf("%s: %d detections above %.1f, the golden case has %d", golden, len(l.Detections), threshold, want)
	}
}

func iou(a, b []float64) float64 {
	ix := math.Max(0, math.Min(a[2], b[2])-math.Max(a[0], b[0]))
	iy := math.Max(0, math.Min(a[3], b[3])-math.Max(a[1], b[1]))
	inter := ix * iy
	union := (a[2]-a[0])*(a[3]-a[1]) + (b[2]-b[0])*(b[3]-b[1]) - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}

// TestDetectYOLO runs YOLOv8n on kite_and_cold.jpg through edged detect
// (model kind, letterbox and labels all from the defaults) and matches the
// golden's expected people and kites by class and IoU >= 0.7.
func TestDetectYOLO(t *testing.T) {
	if testing.Short() {
		t.Skip("YOLOv8n takes seconds per invoke with the reference kernels")
	}
	var c struct {
		Expected []struct {
			ClassID int       `json:"class_id"`
			OrigPx  []float64 `json:"box_xyxy_orig_px"`
		} `json:"expected_detections"`
	}
	b, err := os.ReadFile(testenv.SharedFile(t, "golden/yolov8n_full_integer_quant_kite_and_cold/case.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	lines := detectJSON(t, "--model", testenv.SharedFile(t, "models/yolov8n_full_integer_quant.tflite"),
		"--labels", testenv.SharedFile(t, "models/coco80_labels.txt"), testenv.SharedFile(t, "inputs/kite_and_cold.jpg"))
	l := lines[0]
	if l.Kind != "yolov8" || l.Width != 1352 || l.Height != 900 {
		t.Fatalf("%s %dx%d", l.Kind, l.Width, l.Height)
	}
	iou := func(a, b [4]float64) float64 {
		iw := min(a[2], b[2]) - max(a[0], b[0])
		ih := min(a[3], b[3]) - max(a[1], b[1])
		if iw <= 0 || ih <= 0 {
			return 0
		}
		in := iw * ih
		return in / ((a[2]-a[0])*(a[3]-a[1]) + (b[2]-b[0])*(b[3]-b[1]) - in)
	}
	used := make([]bool, len(l.Detections))
	found := 0
	for _, e := range c.Expected {
		want := [4]float64{e.OrigPx[0], e.OrigPx[1], e.OrigPx[2], e.OrigPx[3]}
		for i, d := range l.Detections {
			got := [4]float64{d.Box.X1, d.Box.Y1, d.Box.X2, d.Box.Y2}
			if !used[i] && d.Index == e.ClassID && iou(got, want) >= 0.7 {
				used[i] = true
				found++
				break
			}
		}
	}
	t.Logf("found %d of %d expected detections, %d detections in all", found, len(c.Expected), len(l.Detections))
	if found < 9 {
		t.Errorf("found %d of %d expected detections: %+v", found, len(c.Expected), l.Detections)
	}
	for _, d := range l.Detections {
		if d.Label != "person" && d.Label != "kite" {
			t.Errorf("unexpected %s detection %+v", d.Label, d)
		}
	}
}
