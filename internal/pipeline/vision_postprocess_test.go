package pipeline

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/sensors"
	"github.com/edged/edged/internal/testenv"
)

func TestParseLabels(t *testing.T) {
	cases := []struct {
		name, text string
		want       Labels
	}{
		{"plain", "no_person\nperson\n", Labels{"no_person", "person"}},
		{"no final newline", "a\nb", Labels{"a", "b"}},
		{"CRLF and spaces", "  cat \r\ndog\r\n", Labels{"cat", "dog"}},
		{"blank line keeps its index", "a\n\nc\n", Labels{"a", "", "c"}},
		{"trailing blank lines dropped", "a\nb\n\n\n  \n", Labels{"a", "b"}},
		{"BOM", "\ufeffa\nb\n", Labels{"a", "b"}},
		{"index space", "0 person\n1 bicycle\n2 car\n", Labels{"person", "bicycle", "car"}},
		{"index colon", "0: person\n1:bicycle\n", Labels{"person", "bicycle"}},
		{"sparse index", "0  person\n2  car\n\n5  bus\n", Labels{"person", "", "car", "", "", "bus"}},
		{"unordered index", "1 b\n0 a\n", Labels{"a", "b"}},
		{"numbers only in some lines", "0 background\ntench\n", Labels{"0 background", "tench"}},
		{"labels with digits inside", "3D printer\n4x4 car\n", Labels{"3D printer", "4x4 car"}},
		{"label that is a number", "1\n2\n", Labels{"1", "2"}},
		{"imagenet style commas", "background\ntench, Tinca tinca\n", Labels{"background", "tench, Tinca tinca"}},
	}
	for _, c := range cases {
		got, err := ParseLabels(strings.NewReader(c.text), c.name)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	for _, bad := range []string{"", "\n\n", "0 a\n0 b\n", "99999 a\n"} {
		if _, err := ParseLabels(strings.NewReader(bad), "bad.txt"); err == nil || !strings.Contains(err.Error(), "bad.txt") {
			t.Errorf("%q: error %v, want one naming the file", bad, err)
		}
	}
	l := Labels{"no_person", "person"}
	if l.Index("person") != 1 || l.Index("cat") != -1 || l.Name(5) != "" || l.Name(-1) != "" {
		t.Error("Labels lookups")
	}
}

func TestSharedLabelFiles(t *testing.T) {
	for file, want := range map[string][2]string{
		"models/imagenet_labels.txt":      {"background", "toilet tissue, toilet paper, bathroom tissue"},
		"models/coco80_labels.txt":        {"person", "toothbrush"},
		"models/person_detect_labels.txt": {"no_person", "person"},
	} {
		l, err := LoadLabels(testenv.SharedFile(t, file))
		if err != nil {
			t.Fatal(err)
		}
		if l[0] != want[0] || l[len(l)-1] != want[1] {
			t.Errorf("%s: first %q last %q (%d labels)", file, l[0], l[len(l)-1], len(l))
		}
	}
}

func int8Data(shape []int, scale float32, zp int32, vals ...int8) TensorData {
	b := make([]byte, len(vals))
	for i, v := range vals {
		b[i] = byte(v)
	}
	return TensorData{Type: runtime.Int8, Shape: shape, Scale: scale, ZeroPoint: zp, Data: b}
}

func floatData(shape []int, vals ...float32) TensorData {
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return TensorData{Type: runtime.Float32, Shape: shape, Data: b}
}

func TestTopK(t *testing.T) {
	out := int8Data([]int{1, 6}, 1.0/256, -128, -128, 100, -50, 100, 127, -128)
	top, err := TopK(out, 3, make([]Class, 0, 3))
	if err != nil {
		t.Fatal(err)
	}
	want := []Class{{4, 255.0 / 256}, {1, 228.0 / 256}, {3, 228.0 / 256}}
	if !reflect.DeepEqual(top, want) {
		t.Errorf("top3 %v, want %v", top, want)
	}
	if top, _ = TopK(out, 10, nil); len(top) != 6 || top[5].Index != 5 || top[4].Index != 0 {
		t.Errorf("top10 of 6: %v", top)
	}
	f := floatData([]int{1, 3}, 0.1, float32(math.NaN()), 0.7)
	if top, _ = TopK(f, 3, nil); top[0].Index != 2 || top[1].Index != 0 || top[2].Index != 1 {
		t.Errorf("float top %v", top)
	}
	buf := make([]Class, 0, 3)
	if n := testing.AllocsPerRun(10, func() { TopK(out, 3, buf) }); n != 0 {
		t.Errorf("TopK allocates %v", n)
	}
	if _, err := TopK(TensorData{Type: runtime.Int16, Shape: []int{1, 2}, Data: make([]byte, 4)}, 1, nil); err == nil {
		t.Error("int16 accepted")
	}
	if _, err := TopK(TensorData{Type: runtime.Int8, Shape: []int{1, 2}, Data: make([]byte, 2)}, 1, nil); err == nil {
		t.Error("quantized output without scale accepted")
	}
}

func TestPresenceHysteresis(t *testing.T) {
	p := Presence{On: 0.7, Off: 0.4}
	steps := []struct {
		score            float32
		present, changed bool
	}{
		{0.5, false, false}, {0.69, false, false}, {0.7, true, true}, {0.6, true, false},
		{0.41, true, false}, {0.4, true, false}, {0.39, false, true}, {0.6, false, false}, {0.9, true, true},
	}
	for i, s := range steps {
		present, changed := p.Update(s.score)
		if present != s.present || changed != s.changed {
			t.Fatalf("step %d score %v: %v %v, want %v %v", i, s.score, present, changed, s.present, s.changed)
		}
	}
	// Consecutive frames: a single spike does not turn it on.
	q := Presence{On: 0.7, Off: 0.4, OnFrames: 2, OffFrames: 3}
	seq := []float32{0.9, 0.1, 0.9, 0.9, 0.1, 0.1, 0.8, 0.1, 0.1, 0.1}
	want := []bool{false, false, false, true, true, true, true, true, true, false}
	for i, s := range seq {
		if got, _ := q.Update(s); got != want[i] {
			t.Fatalf("frames step %d: %v, want %v", i, got, want[i])
		}
	}
	q.Reset()
	if q.Present() {
		t.Error("Reset left it present")
	}
}

func TestIoUAndNMS(t *testing.T) {
	a := Rect{0, 0, 10, 10}
	for _, c := range []struct {
		b    Rect
		want float32
	}{
		{Rect{0, 0, 10, 10}, 1}, {Rect{5, 0, 15, 10}, 50.0 / 150}, {Rect{10, 0, 20, 10}, 0},
		{Rect{2, 2, 4, 4}, 4.0 / 100}, {Rect{20, 20, 30, 30}, 0}, {Rect{5, 5, 5, 5}, 0},
	} {
		if got := a.IoU(c.b); math.Abs(float64(got-c.want)) > 1e-6 || got != c.b.IoU(a) {
			t.Errorf("IoU %v %v = %v, want %v", a, c.b, got, c.want)
		}
	}
	dets := []Detection{
		{Class: 0, Score: 0.9, Input: Rect{0, 0, 10, 10}, Anchor: 0},
		{Class: 0, Score: 0.8, Input: Rect{1, 0, 11, 10}, Anchor: 1},  // IoU 0.82 with 0: dropped
		{Class: 1, Score: 0.7, Input: Rect{0, 0, 10, 10}, Anchor: 2},  // other class: kept
		{Class: 0, Score: 0.6, Input: Rect{5, 0, 15, 10}, Anchor: 3},  // IoU 0.33: kept
		{Class: 0, Score: 0.5, Input: Rect{6, 0, 16, 10}, Anchor: 4},  // IoU 0.67 with 3: dropped
		{Class: 0, Score: 0.4, Input: Rect{30, 0, 40, 10}, Anchor: 5}, // apart: kept
	}
	var scratch []bool
	anchors := func(ds []Detection) []int {
		var a []int
		for _, d := range ds {
			a = append(a, d.Anchor)
		}
		return a
	}
	if got := anchors(NMS(slices.Clone(dets), 0.45, false, 0, &scratch)); !slices.Equal(got, []int{0, 2, 3, 5}) {
		t.Errorf("class-wise NMS kept %v", got)
	}
	if got := anchors(NMS(slices.Clone(dets), 0.45, true, 0, &scratch)); !slices.Equal(got, []int{0, 3, 5}) {
		t.Errorf("agnostic NMS kept %v", got)
	}
	if got := anchors(NMS(slices.Clone(dets), 0.45, false, 2, &scratch)); !slices.Equal(got, []int{0, 2}) {
		t.Errorf("max 2 kept %v", got)
	}
	// IoU exactly at the threshold is kept (drop only above it).
	two := []Detection{{Score: 0.9, Input: Rect{0, 0, 10, 10}}, {Score: 0.8, Input: Rect{5, 0, 15, 10}, Anchor: 1}}
	if got := NMS(two, float32(50.0/150), false, 0, &scratch); len(got) != 2 {
		t.Errorf("IoU equal to the threshold dropped: %v", got)
	}
}

func TestDecodeSSDSynthetic(t *testing.T) {
	// Three slots, count 2: the third is ignored; the second is under the
	// threshold.
	out := SSDOutputs{
		Boxes:   floatData([]int{1, 3, 4}, 0.1, 0.2, 0.5, 0.6, 0, 0, 1, 1, 0.2, 0.2, 0.3, 0.3),
		Classes: floatData([]int{1, 3}, 2, 0, 1),
		Scores:  floatData([]int{1, 3}, 0.8, 0.3, 0.9),
		Count:   floatData([]int{1}, 2),
	}
	// A 200x100 frame stretched to 300x300.
	tr := NewTransform(FitStretch, 200, 100, 300, 300)
	dets, err := DecodeSSD(out, 0.5, tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) != 1 {
		t.Fatalf("%d detections, want 1: %+v", len(dets), dets)
	}
	d := dets[0]
	near := func(a, b float32) bool { return math.Abs(float64(a-b)) < 1e-4 }
	if d.Class != 2 || d.Score != 0.8 || !near(d.Input.X1, 60) || !near(d.Input.Y1, 30) || !near(d.Input.X2, 180) || !near(d.Input.Y2, 150) {
		t.Errorf("input box %+v", d)
	}
	if !near(d.Source.X1, 40) || !near(d.Source.Y1, 10) || !near(d.Source.X2, 120) || !near(d.Source.Y2, 50) {
		t.Errorf("source box %+v", d.Source)
	}
	if !near(d.Norm.YMin, 0.1) || !near(d.Norm.XMin, 0.2) || !near(d.Norm.YMax, 0.5) || !near(d.Norm.XMax, 0.6) {
		t.Errorf("normalised box %+v", d.Norm)
	}
	// Letterboxed: a box over the whole content maps to the whole frame.
	tr = NewTransform(FitLetterbox, 200, 100, 300, 300)
	out.Boxes = floatData([]int{1, 3, 4}, 0.25, 0, 0.75, 1, 0, 0, 1, 1, 0, 0, 1, 1)
	dets, _ = DecodeSSD(out, 0.5, tr, dets)
	if s := dets[0].Source; !near(s.X1, 0) || !near(s.Y1, 0) || !near(s.X2, 200) || !near(s.Y2, 100) {
		t.Errorf("letterboxed source box %+v", s)
	}
	// Count above the slots, negative count, mismatched sizes.
	out.Count = floatData([]int{1}, 10)
	if dets, err = DecodeSSD(out, 0, tr, dets); err != nil || len(dets) != 3 {
		t.Errorf("count 10 of 3 slots: %d, %v", len(dets), err)
	}
	out.Count = floatData([]int{1}, -1)
	if _, err = DecodeSSD(out, 0, tr, dets); err == nil {
		t.Error("negative count accepted")
	}
	out.Count = floatData([]int{1}, 2)
	out.Boxes = floatData([]int{1, 2, 4}, make([]float32, 8)...)
	if _, err = DecodeSSD(out, 0, tr, dets); err == nil {
		t.Error("too few boxes accepted")
	}
	out.Boxes = floatData([]int{1, 3, 4}, make([]float32, 12)...)
	buf := make([]Detection, 0, 8)
	if n := testing.AllocsPerRun(10, func() { DecodeSSD(out, 0, tr, buf) }); n != 0 {
		t.Errorf("DecodeSSD allocates %v", n)
	}
}

// goldenDetections holds the fields of a golden case.json the vision tests use.
type goldenDetections struct {
	Outputs []struct {
		DType     string          `json:"dtype"`
		Shape     []int           `json:"shape"`
		Scale     json.RawMessage `json:"scale"`
		ZeroPoint json.RawMessage `json:"zero_point"`
		File      string          `json:"file"`
	} `json:"outputs"`
	Letterbox struct {
		Gain     float64 `json:"gain"`
		PadLeft  int     `json:"pad_left"`
		PadTop   int     `json:"pad_top"`
		ResizedW int     `json:"resized_w"`
		ResizedH int     `json:"resized_h"`
		OrigW    int     `json:"orig_w"`
		OrigH    int     `json:"orig_h"`
	} `json:"letterbox"`
	Expected []struct {
		ClassID int       `json:"class_id"`
		Label   string    `json:"label"`
		Score   float64   `json:"score"`
		Anchor  int       `json:"anchor_index"`
		InputPx []float64 `json:"box_xyxy_input_px"`
		OrigPx  []float64 `json:"box_xyxy_orig_px"`
		BoxNorm []float64 `json:"box_yxyx_norm"`
	} `json:"expected_detections"`
	DecodeParams struct {
		Conf float32 `json:"conf_threshold"`
		IoU  float32 `json:"iou_threshold"`
	} `json:"decode_params"`
}

func readGolden(t testing.TB, name string) (*goldenDetections, string) {
	t.Helper()
	dir := filepath.Join(testenv.SharedDir(t), "golden", name)
	b, err := os.ReadFile(filepath.Join(dir, "case.json"))
	if err != nil {
		if testenv.InCI() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	var c goldenDetections
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return &c, dir
}

func goldenOutput(t testing.TB, c *goldenDetections, dir string, i int) TensorData {
	t.Helper()
	o := c.Outputs[i]
	data, err := os.ReadFile(filepath.Join(dir, o.File))
	if err != nil {
		t.Fatal(err)
	}
	dt, err := runtime.ParseDType(o.DType)
	if err != nil {
		t.Fatal(err)
	}
	td := TensorData{Type: dt, Shape: o.Shape, Data: data}
	var scale float32
	var zp int32
	if json.Unmarshal(o.Scale, &scale) == nil && json.Unmarshal(o.ZeroPoint, &zp) == nil {
		td.Scale, td.ZeroPoint = scale, zp
	}
	return td
}

// TestDecodeYOLOGolden decodes the golden YOLOv8n output (TFLM on the
// golden's own OpenCV-letterboxed input) and must give exactly the case's
// expected detections: count, order, classes, scores within 1e-3, boxes
// within 0.1 px in the input and in the original image.
func TestDecodeYOLOGolden(t *testing.T) {
	c, dir := readGolden(t, "yolov8n_full_integer_quant_kite_and_cold")
	out := goldenOutput(t, c, dir, 0)
	dec, err := NewYOLODecoder(out.Shape, YOLOOptions{NumClasses: 80, Conf: c.DecodeParams.Conf, IoU: c.DecodeParams.IoU})
	if err != nil {
		t.Fatal(err)
	}
	if dec.Head() != YOLOv8 || dec.NumClasses() != 80 || dec.Anchors() != 8400 {
		t.Fatalf("decoder settled %s, %d classes, %d anchors", dec.Head(), dec.NumClasses(), dec.Anchors())
	}
	tr := NewTransform(FitLetterbox, c.Letterbox.OrigW, c.Letterbox.OrigH, 640, 640)
	if tr.PadY != c.Letterbox.PadTop || tr.ContentH != c.Letterbox.ResizedH || math.Abs(tr.ScaleX-c.Letterbox.Gain) > 1e-9 {
		t.Fatalf("transform %+v disagrees with the case's letterbox %+v", tr, c.Letterbox)
	}
	dets, err := dec.Decode(out, tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) != len(c.Expected) || len(dets) != 12 {
		t.Fatalf("%d detections, want %d", len(dets), len(c.Expected))
	}
	for i, e := range c.Expected {
		d := dets[i]
		if d.Class != e.ClassID || d.Anchor != e.Anchor || math.Abs(float64(d.Score)-e.Score) > 1e-3 {
			t.Errorf("detection %d: class %d anchor %d score %v, want class %d anchor %d score %v", i, d.Class, d.Anchor, d.Score, e.ClassID, e.Anchor, e.Score)
		}
		for j, v := range []float32{d.Input.X1, d.Input.Y1, d.Input.X2, d.Input.Y2} {
			if math.Abs(float64(v)-e.InputPx[j]) > 0.1 {
				t.Errorf("detection %d input box %v, want %v", i, d.Input, e.InputPx)
				break
			}
		}
		for j, v := range []float32{d.Source.X1, d.Source.Y1, d.Source.X2, d.Source.Y2} {
			if math.Abs(float64(v)-e.OrigPx[j]) > 0.1 {
				t.Errorf("detection %d original-image box %v, want %v", i, d.Source, e.OrigPx)
				break
			}
		}
	}
	// Steady state: decoding again allocates nothing.
	if n := testing.AllocsPerRun(3, func() { dets, _ = dec.Decode(out, tr, dets) }); n != 0 {
		t.Errorf("Decode allocates %v per frame", n)
	}
}

// TestDecodeSSDGolden decodes traffic_model's golden postprocess outputs
// (TFLite_Detection_PostProcess run by the reference) and compares with
// the case's expected detections.
func TestDecodeSSDGolden(t *testing.T) {
	for _, name := range []string{"traffic_model_frame1", "traffic_model_frame2"} {
		c, dir := readGolden(t, name)
		out := SSDOutputs{goldenOutput(t, c, dir, 0), goldenOutput(t, c, dir, 1), goldenOutput(t, c, dir, 2), goldenOutput(t, c, dir, 3)}
		tr := NewTransform(FitStretch, 256, 256, 256, 256)
		dets, err := DecodeSSD(out, -100, tr, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(dets) != len(c.Expected) {
			t.Fatalf("%s: %d detections, want %d", name, len(dets), len(c.Expected))
		}
		for i, e := range c.Expected {
			d := dets[i]
			if d.Class != e.ClassID || math.Abs(float64(d.Score)-e.Score) > 1e-5 {
				t.Errorf("%s detection %d: class %d score %v, want %d %v", name, i, d.Class, d.Score, e.ClassID, e.Score)
			}
			in := [4]float32{d.Input.Y1 / 256, d.Input.X1 / 256, d.Input.Y2 / 256, d.Input.X2 / 256}
			for j := range in {
				if math.Abs(float64(in[j])-e.BoxNorm[j]) > 1e-5 {
					t.Errorf("%s detection %d box %v, want %v", name, i, in, e.BoxNorm)
					break
				}
			}
		}
	}
}

// yoloOutput builds a synthetic YOLO output: anchors with (cx, cy, w, h,
// [obj], scores...), laid out channels first or anchors first.
func yoloOutput(channelsFirst bool, rows [][]float32) TensorData {
	n, k := len(rows), len(rows[0])
	vals := make([]float32, n*k)
	for a, r := range rows {
		for j, v := range r {
			if channelsFirst {
				vals[j*n+a] = v
			} else {
				vals[a*k+j] = v
			}
		}
	}
	shape := []int{1, n, k}
	if channelsFirst {
		shape = []int{1, k, n}
	}
	return floatData(shape, vals...)
}

func TestDecodeYOLOSynthetic(t *testing.T) {
	tr := NewTransform(FitLetterbox, 200, 100, 64, 64) // gain 0.32, pad y 16
	// v8, 2 classes, pixel boxes: anchor 1 overlaps anchor 0 (same class,
	// dropped), anchor 2 is the other class, anchor 3 is under threshold,
	// and there are more anchors than channels so the layout is clear.
	v8 := [][]float32{
		{32, 32, 10, 10, 0.9, 0.1},
		{33, 32, 10, 10, 0.8, 0.1},
		{33, 32, 10, 10, 0.1, 0.7},
		{10, 20, 4, 4, 0.2, 0.25},
		{50, 40, 8, 8, 0.3, 0.1},
		{5, 5, 2, 2, 0, 0},
		{5, 5, 2, 2, 0, 0},
	}
	for _, cf := range []bool{true, false} {
		out := yoloOutput(cf, v8)
		head := YOLOAuto
		if !cf {
			head = YOLOv8 // [1, N, 6] would otherwise be read as v5
		}
		dec, err := NewYOLODecoder(out.Shape, YOLOOptions{Head: head})
		if err != nil {
			t.Fatal(err)
		}
		dets, err := dec.Decode(out, tr, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for _, d := range dets {
			got = append(got, d.Anchor)
		}
		if !slices.Equal(got, []int{0, 2, 4}) {
			t.Fatalf("channels first %v: anchors %v, want [0 2 4]", cf, got)
		}
		if d := dets[0]; d.Input != (Rect{27, 27, 37, 37}) || d.Class != 0 || d.Score != 0.9 {
			t.Errorf("detection %+v", d)
		}
		// Back through the letterbox: (27-0)/0.32, (27-16)/0.32.
		if s := dets[0].Source; math.Abs(float64(s.X1)-84.375) > 1e-3 || math.Abs(float64(s.Y1)-34.375) > 1e-3 {
			t.Errorf("source box %+v", s)
		}
	}
	// Normalised boxes scale by the input size.
	norm := [][]float32{{0.5, 0.5, 0.25, 0.25, 0.9}, {0.1, 0.1, 0.1, 0.1, 0}, {0.1, 0.1, 0.1, 0.1, 0}, {0.1, 0.1, 0.1, 0.1, 0}, {0.1, 0.1, 0.1, 0.1, 0}, {0.1, 0.1, 0.1, 0.1, 0}}
	out := yoloOutput(true, norm)
	dec, _ := NewYOLODecoder(out.Shape, YOLOOptions{})
	dets, _ := dec.Decode(out, tr, nil)
	if len(dets) != 1 || dets[0].Input != (Rect{24, 24, 40, 40}) {
		t.Errorf("normalised: %+v", dets)
	}

	// v5: score = objectness × class; anchors first.
	v5 := [][]float32{
		{32, 32, 10, 10, 0.9, 0.2, 0.9}, // 0.81, class 1
		{20, 20, 10, 10, 0.2, 1.0, 0},   // objectness under threshold
		{40, 40, 10, 10, 0.5, 0.6, 0.1}, // 0.3, class 0
		{50, 50, 10, 10, 0.5, 0.4, 0.4}, // 0.2: under
		{1, 1, 1, 1, 0, 0, 0},
		{1, 1, 1, 1, 0, 0, 0},
		{1, 1, 1, 1, 0, 0, 0},
		{1, 1, 1, 1, 0, 0, 0},
	}
	out = yoloOutput(false, v5)
	dec, err := NewYOLODecoder(out.Shape, YOLOOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if dec.Head() != YOLOv5 || dec.NumClasses() != 2 {
		t.Fatalf("[1,8,7] settled as %s with %d classes", dec.Head(), dec.NumClasses())
	}
	dets, _ = dec.Decode(out, tr, nil)
	if len(dets) != 2 || dets[0].Anchor != 0 || dets[0].Class != 1 || math.Abs(float64(dets[0].Score)-0.81) > 1e-6 || dets[1].Anchor != 2 || dets[1].Class != 0 {
		t.Errorf("v5 detections %+v", dets)
	}
	// The label count settles the head: 3 classes + 4 = 7 is v8.
	if dec, _ := NewYOLODecoder([]int{1, 8, 7}, YOLOOptions{NumClasses: 3}); dec.Head() != YOLOv8 {
		t.Errorf("with 3 classes [1,8,7] is %s", dec.Head())
	}
	for _, bad := range [][]int{{1, 84}, {2, 84, 8400}, {1, 4, 100}} {
		if _, err := NewYOLODecoder(bad, YOLOOptions{}); err == nil {
			t.Errorf("shape %v accepted", bad)
		}
	}
	if _, err := NewYOLODecoder([]int{1, 84, 8400}, YOLOOptions{NumClasses: 90}); err == nil {
		t.Error("90 labels for 80 classes accepted")
	}
}

// TestMobileNetCat: the uint8 MobileNet's top 5 on cat.bmp, preprocessed
// by edged (bilinear stretch to 128x128, raw pixels), contains a cat.
func TestMobileNetCat(t *testing.T) {
	it := interpreter(t, "models/mobilenet_v1_0.25_128_quant.tflite")
	labels, err := LoadLabels(testenv.SharedFile(t, "models/imagenet_labels.txt"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := sensors.DecodeImageFile(testenv.SharedFile(t, "inputs/cat.bmp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []ResizeMethod{ResizeBilinear, ResizeArea} {
		p, err := NewPreprocessor(SpecOf(it.Inputs()[0]), PreprocessOptions{Resize: m})
		if err != nil {
			t.Fatal(err)
		}
		if !p.RawPixels() {
			t.Error("uint8 scale 1/128 zero point 128 should take raw pixels")
		}
		if _, err := p.ProcessTensor(f, it.Inputs()[0]); err != nil {
			t.Fatal(err)
		}
		if err := it.Invoke(); err != nil {
			t.Fatal(err)
		}
		top, err := TopK(DataOf(it.Outputs()[0]), 5, nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		cat := false
		for _, c := range top {
			names = append(names, labels.Name(c.Index))
			cat = cat || strings.Contains(labels.Name(c.Index), "cat")
		}
		if !cat {
			t.Errorf("%s: top 5 %q has no cat", m, names)
		}
		t.Logf("%s: top 5 %q", m, names)
	}
}

func interpreter(t testing.TB, model string) *runtime.Interpreter {
	t.Helper()
	m, err := runtime.LoadModelFile(testenv.SharedFile(t, model))
	if err != nil {
		t.Fatal(err)
	}
	it, err := runtime.NewInterpreter(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

// TestYOLOKiteEndToEnd runs the whole path in Go — JPEG decode,
// letterbox with bilinear resize, YOLOv8n, decode — and matches the
// golden's expected detections by class and IoU >= 0.7 in original-image
// pixels. Our decoded JPEG differs from libjpeg's, so the detections are
// compared, not the input bytes.
func TestYOLOKiteEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("YOLOv8n takes seconds per invoke with the reference kernels")
	}
	c, _ := readGolden(t, "yolov8n_full_integer_quant_kite_and_cold")
	it := interpreter(t, "models/yolov8n_full_integer_quant.tflite")
	f, err := sensors.DecodeImageFile(testenv.SharedFile(t, "inputs/kite_and_cold.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPreprocessor(SpecOf(it.Inputs()[0]), PreprocessOptions{Fit: FitLetterbox, Fill: 114})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := p.ProcessTensor(f, it.Inputs()[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := it.Invoke(); err != nil {
		t.Fatal(err)
	}
	dec, err := NewYOLODecoder(it.Outputs()[0].Shape, YOLOOptions{NumClasses: 80, Conf: c.DecodeParams.Conf, IoU: c.DecodeParams.IoU})
	if err != nil {
		t.Fatal(err)
	}
	dets, err := dec.Decode(DataOf(it.Outputs()[0]), tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	found, extra := matchDetections(c, dets)
	t.Logf("found %d of %d expected detections; %d extra", found, len(c.Expected), len(extra))
	for _, d := range extra {
		t.Logf("extra: class %d score %.3f box %v", d.Class, d.Score, d.Source)
	}
	// Every kite and the three clearly visible people (score > 0.5) must
	// be found, and at least 9 of the 12 overall.
	if found < 9 {
		t.Errorf("found only %d of %d expected detections", found, len(c.Expected))
	}
}

// matchDetections pairs expected and found detections greedily by class
// and IoU >= 0.7 in original-image pixels; it returns the number matched
// and the unmatched found ones.
func matchDetections(c *goldenDetections, dets []Detection) (int, []Detection) {
	used := make([]bool, len(dets))
	found := 0
	for _, e := range c.Expected {
		want := Rect{float32(e.OrigPx[0]), float32(e.OrigPx[1]), float32(e.OrigPx[2]), float32(e.OrigPx[3])}
		best, bestIoU := -1, float32(0.7)
		for i, d := range dets {
			if !used[i] && d.Class == e.ClassID {
				if iou := d.Source.IoU(want); iou >= bestIoU {
					best, bestIoU = i, iou
				}
			}
		}
		if best >= 0 {
			used[best] = true
			found++
		}
	}
	var extra []Detection
	for i, d := range dets {
		if !used[i] {
			extra = append(extra, d)
		}
	}
	return found, extra
}
