package flexbuffers_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/flexbuffers"
	"github.com/edged/edged/internal/testenv"
)

func TestRoundTrip(t *testing.T) {
	b := flexbuffers.NewMap().Int("max_detections", 40).Uint("u", 1<<40).Float("nms_iou_threshold", 0.6).
		Bool("use_regular_nms", true).String("name", "TFLite").Ints("shape", []int64{1, -2, 3}).
		Floats("scales", []float64{0.5, 1.5}).Bytes()
	root, err := flexbuffers.Root(b)
	if err != nil {
		t.Fatal(err)
	}
	m, err := root.Map()
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != 7 {
		t.Fatalf("%d entries", m.Len())
	}
	get := func(k string) flexbuffers.Ref {
		r, ok, err := m.Get(k)
		if err != nil || !ok {
			t.Fatalf("%s: ok=%v err=%v", k, ok, err)
		}
		return r
	}
	if v, err := get("max_detections").Int(); err != nil || v != 40 {
		t.Errorf("max_detections = %d, %v", v, err)
	}
	if v, err := get("u").Int(); err != nil || v != 1<<40 {
		t.Errorf("u = %d, %v", v, err)
	}
	if v, err := get("nms_iou_threshold").Float(); err != nil || v != 0.6 {
		t.Errorf("nms_iou_threshold = %g, %v", v, err)
	}
	if v, err := get("use_regular_nms").Bool(); err != nil || !v {
		t.Errorf("use_regular_nms = %v, %v", v, err)
	}
	if v, err := get("name").String(); err != nil || v != "TFLite" {
		t.Errorf("name = %q, %v", v, err)
	}
	vec, err := get("shape").Vector()
	if err != nil || vec.Len() != 3 {
		t.Fatalf("shape: %v", err)
	}
	for i, want := range []int64{1, -2, 3} {
		r, _ := vec.At(i)
		if v, err := r.Int(); err != nil || v != want {
			t.Errorf("shape[%d] = %d, %v", i, v, err)
		}
	}
	fv, _ := get("scales").Vector()
	if r, _ := fv.At(1); func() float64 { f, _ := r.Float(); return f }() != 1.5 {
		t.Error("scales[1] != 1.5")
	}
	if _, ok, _ := m.Get("absent"); ok {
		t.Error("absent key found")
	}
	if n, err := get("shape").Int(); err != nil || n != 3 {
		t.Errorf("vector as int = %d, %v (want its size)", n, err)
	}
}

// TestModelOptions reads the custom options TensorFlow's converter wrote into
// the shared models (compact widths, unlike Builder's).
func TestModelOptions(t *testing.T) {
	m, err := runtime.LoadModelFile(testenv.SharedFile(t, filepath.Join("models", "traffic_model.tflite")))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, op := range m.Subgraphs[0].Operators {
		if op.Code.Name() != "TFLite_Detection_PostProcess" {
			continue
		}
		found = true
		root, err := flexbuffers.Root(op.CustomOptions)
		if err != nil {
			t.Fatal(err)
		}
		mp, err := root.Map()
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]float64{"num_classes": 3, "max_detections": 40, "detections_per_class": 40, "y_scale": 10, "h_scale": 5, "nms_score_threshold": -20}
		for k, w := range want {
			r, ok, err := mp.Get(k)
			if err != nil || !ok {
				t.Fatalf("%s: ok=%v err=%v", k, ok, err)
			}
			if v, err := r.Float(); err != nil || v != w {
				t.Errorf("%s = %g, want %g (%v)", k, v, w, err)
			}
		}
		r, _, _ := mp.Get("nms_iou_threshold")
		if v, _ := r.Float(); math.Abs(v-0.6) > 1e-6 {
			t.Errorf("nms_iou_threshold = %g", v)
		}
	}
	if !found {
		t.Fatal("no TFLite_Detection_PostProcess in traffic_model.tflite")
	}
}

func FuzzRead(f *testing.F) {
	f.Add(flexbuffers.NewMap().Int("a", 1).Floats("b", []float64{1, 2}).String("c", "x").Bytes())
	if dir := os.Getenv("EDGED_TESTDATA"); dir != "" {
		if m, err := runtime.LoadModelFile(filepath.Join(dir, "models", "audio_preprocessor_int8.tflite")); err == nil {
			for _, op := range m.Subgraphs[0].Operators {
				if len(op.CustomOptions) > 0 {
					f.Add(op.CustomOptions)
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		root, err := flexbuffers.Root(b)
		if err != nil {
			return
		}
		walk(root, 0)
	})
}

// walk reads everything reachable, as a kernel reading options would.
func walk(r flexbuffers.Ref, depth int) {
	if depth > 8 {
		return
	}
	r.Int()
	r.Float()
	r.Bool()
	r.String()
	if m, err := r.Map(); err == nil {
		for i := range m.Len() {
			m.Key(i)
		}
		m.Get("x")
	}
	if v, err := r.Vector(); err == nil {
		for i := range min(v.Len(), 64) {
			if e, err := v.At(i); err == nil {
				walk(e, depth+1)
			}
		}
	}
}
