package pipeline

import (
	"bytes"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/sensors"
	"github.com/edged/edged/internal/testenv"
)

// personPath is the classifier path of the camera loop: a frame in, a
// presence verdict out.
type personPath struct {
	it       *runtime.Interpreter
	pre      *Preprocessor
	top      []Class
	presence Presence
	person   int
}

func newPersonPath(t testing.TB) *personPath {
	it := interpreter(t, "models/person_detect.tflite")
	pre, err := NewPreprocessor(SpecOf(it.Inputs()[0]), PreprocessOptions{Resize: ResizeArea})
	if err != nil {
		t.Fatal(err)
	}
	return &personPath{it: it, pre: pre, top: make([]Class, 0, 2), presence: Presence{On: 0.7, Off: 0.4}, person: 1}
}

func (p *personPath) frame(f *sensors.Frame) (bool, error) {
	if _, err := p.pre.ProcessTensor(f, p.it.Inputs()[0]); err != nil {
		return false, err
	}
	if err := p.it.Invoke(); err != nil {
		return false, err
	}
	var err error
	if p.top, err = TopK(DataOf(p.it.Outputs()[0]), 2, p.top); err != nil {
		return false, err
	}
	score := p.top[0].Score
	if p.top[0].Index != p.person {
		score = p.top[1].Score
	}
	present, _ := p.presence.Update(score)
	return present, nil
}

// TestPersonPathAllocatesNothing: preprocessing, invoke and
// postprocessing of the classifier path allocate nothing per frame, for a
// decoded image and for a camera-sized YUV frame.
func TestPersonPathAllocatesNothing(t *testing.T) {
	p := newPersonPath(t)
	img, err := sensors.DecodeImageFile(testenv.SharedFile(t, "inputs/person.png"))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	cam, _ := yuvFrame(rng, sensors.NV12, 640, 480, 0, true)
	for _, f := range []*sensors.Frame{img, cam} {
		if _, err := p.frame(f); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(5, func() { p.frame(f) }); n != 0 {
			t.Errorf("%s %dx%d frame: %v allocations per frame", f.Format, f.Width, f.Height, n)
		}
	}
	p.presence.Reset()
	if present, _ := p.frame(img); !present {
		t.Error("person.png: no person present")
	}
}

// BenchmarkPersonDetect: decoded 96x96 gray frame → tensor → invoke →
// top class → presence.
func BenchmarkPersonDetect(b *testing.B) {
	p := newPersonPath(b)
	f, err := sensors.DecodeImageFile(testenv.SharedFile(b, "inputs/person.png"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.frame(f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPersonDetectDecode adds decoding the PNG (from memory) to
// every frame.
func BenchmarkPersonDetectDecode(b *testing.B) {
	p := newPersonPath(b)
	data, err := os.ReadFile(testenv.SharedFile(b, "inputs/person.png"))
	if err != nil {
		b.Fatal(err)
	}
	var f *sensors.Frame
	b.ReportAllocs()
	for b.Loop() {
		if f, err = sensors.DecodeImage(bytes.NewReader(data), "person.png", f); err != nil {
			b.Fatal(err)
		}
		if _, err := p.frame(f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPersonDetectCamera: a 640x480 NV12 camera frame, area-resized
// to the model's 96x96 gray input.
func BenchmarkPersonDetectCamera(b *testing.B) {
	p := newPersonPath(b)
	cam, _ := yuvFrame(rand.New(rand.NewPCG(13, 14)), sensors.NV12, 640, 480, 0, true)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.frame(cam); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTrafficPrePost: traffic_model's preprocessing (256x256 BMP
// frame to its uint8 input) and SSD decoding of its golden postprocess
// outputs, without the invoke (its TFLite_Detection_PostProcess arrives
// on another branch).
func BenchmarkTrafficPrePost(b *testing.B) {
	m, err := runtime.LoadModelFile(testenv.SharedFile(b, "models/traffic_model.tflite"))
	if err != nil {
		b.Fatal(err)
	}
	g := m.Subgraphs[0]
	pre, err := NewPreprocessor(SpecOfInfo(&g.Tensors[g.Inputs[0]]), PreprocessOptions{})
	if err != nil {
		b.Fatal(err)
	}
	c, dir := readGolden(b, "traffic_model_frame1")
	out := SSDOutputs{goldenOutput(b, c, dir, 0), goldenOutput(b, c, dir, 1), goldenOutput(b, c, dir, 2), goldenOutput(b, c, dir, 3)}
	f, err := sensors.DecodeImageFile(testenv.SharedFile(b, "inputs/traffic_frames/0001.bmp"))
	if err != nil {
		b.Fatal(err)
	}
	in := make([]byte, pre.InputBytes())
	dets := make([]Detection, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		tr, err := pre.Process(f, in)
		if err != nil {
			b.Fatal(err)
		}
		if dets, err = DecodeSSD(out, 0.1, tr, dets); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkYOLOPrePost: YOLOv8n's letterbox preprocessing of the
// 1352x900 JPEG frame and decoding of its golden [1,84,8400] output, the
// invoke left out (seconds with the reference kernels).
func BenchmarkYOLOPrePost(b *testing.B) {
	c, dir := readGolden(b, "yolov8n_full_integer_quant_kite_and_cold")
	out := goldenOutput(b, c, dir, 0)
	f, err := sensors.DecodeImageFile(testenv.SharedFile(b, "inputs/kite_and_cold.jpg"))
	if err != nil {
		b.Fatal(err)
	}
	pre, err := NewPreprocessor(InputSpec{Type: runtime.Int8, Shape: []int{1, 640, 640, 3}, Scale: 0.00392156886, ZeroPoint: -128}, PreprocessOptions{Fit: FitLetterbox, Fill: 114})
	if err != nil {
		b.Fatal(err)
	}
	dec, err := NewYOLODecoder(out.Shape, YOLOOptions{NumClasses: 80})
	if err != nil {
		b.Fatal(err)
	}
	in := make([]byte, pre.InputBytes())
	var dets []Detection
	b.ReportAllocs()
	for b.Loop() {
		tr, err := pre.Process(f, in)
		if err != nil {
			b.Fatal(err)
		}
		if dets, err = dec.Decode(out, tr, dets); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMotion: motion gating of a 1280x720 NV12 frame.
func BenchmarkMotion(b *testing.B) {
	md, err := NewMotionDetector(MotionConfig{})
	if err != nil {
		b.Fatal(err)
	}
	f, _ := yuvFrame(rand.New(rand.NewPCG(15, 16)), sensors.NV12, 1280, 720, 0, true)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := md.Detect(f); err != nil {
			b.Fatal(err)
		}
	}
}
