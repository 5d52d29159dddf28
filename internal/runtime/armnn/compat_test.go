package armnn

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/testenv"
)

func loadShared(t *testing.T, name string) *runtime.Model {
	t.Helper()
	dir := testenv.SharedDir(t)
	m, err := runtime.LoadModelFile(filepath.Join(dir, "models", name))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCheckSharedModels(t *testing.T) {
	for _, tc := range []struct {
		model, unsupported string
	}{
		{"hello_world_int8.tflite", ""},
		{"micro_speech_quantized.tflite", ""},
		{"person_detect.tflite", ""},
		{"mobilenet_v1_0.25_128_quant.tflite", ""},
		{"trained_lstm_int8.tflite", "UNIDIRECTIONAL_SEQUENCE_LSTM"},
		{"audio_preprocessor_int8.tflite", "Signal"},
	} {
		t.Run(tc.model, func(t *testing.T) {
			err := Check(loadShared(t, tc.model))
			if tc.unsupported == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			var ue *UnsupportedError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.unsupported) {
				t.Fatalf("Check = %v, want an UnsupportedError naming %s", err, tc.unsupported)
			}
			t.Logf("falls back: %v", err)
		})
	}
}

func TestPreparePatchesPersonDetectBiases(t *testing.T) {
	m := loadShared(t, "person_detect.tflite")
	orig := append([]byte(nil), m.Bytes()...)
	buf, notes := Prepare(m)
	if len(notes) != 14 {
		t.Fatalf("%d patches, want 14 (person_detect's biases): %v", len(notes), notes)
	}
	if string(m.Bytes()) != string(orig) {
		t.Fatal("Prepare changed the model's own bytes")
	}
	// The patched copy is still a valid model, with every per-axis vector
	// quantized along axis 0, and nothing else changed.
	pm, err := runtime.LoadModel(buf)
	if err != nil {
		t.Fatalf("patched model: %v", err)
	}
	diff := 0
	for i := range buf {
		if buf[i] != orig[i] {
			diff++
		}
	}
	if diff == 0 || diff > 14 {
		t.Fatalf("%d bytes changed, want 1 to 14", diff)
	}
	for _, ti := range pm.Subgraphs[0].Tensors {
		if q := ti.Quant; q.PerChannel() && len(ti.Shape) == 1 && q.QuantizedDimension != 0 {
			t.Fatalf("tensor %q still has quantized_dimension %d", ti.Name, q.QuantizedDimension)
		}
	}
	if _, notes := Prepare(loadShared(t, "mobilenet_v1_0.25_128_quant.tflite")); len(notes) != 0 {
		t.Fatalf("mobilenet (per-tensor) patched: %v", notes)
	}
}
