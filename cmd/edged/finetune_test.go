package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/edged/edged/internal/finetune"
	"github.com/edged/edged/internal/pipeline"
	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/sensors"
	"github.com/edged/edged/internal/testenv"
)

func TestFinetuneEvalUsage(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.MkdirAll(filepath.Join(empty, "yes"), 0o755); err != nil {
		t.Fatal(err)
	}
	wavs := filepath.Join(dir, "wavs")
	if err := os.MkdirAll(filepath.Join(wavs, "yes"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(wavs, "yes", "a.wav"), []byte("RIFF"), 0o644); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "m.tflite")
	if err := os.WriteFile(model, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := [][]string{
		{"finetune"},
		{"finetune", "--model", model, "--data", dir},
		{"finetune", "--model", model, "--out", "x.tflite"},
		{"finetune", "--model", model, "--data", dir, "--out", "x.tflite", "--mode", "everything"},
		{"finetune", "--model", model, "--data", dir, "--out", "x.tflite", "--epochs", "-3"},
		{"finetune", "--model", model, "--data", dir, "--out", "x.tflite", "extra"},
		{"finetune", "--model", model, "--data", dir, "--out", "x.tflite", "--no-such-flag"},
		{"eval"},
		{"eval", "--model", model},
		{"eval", "--model", model, "--data", dir},
		{"eval", "--model", model, "--data", dir, "--labels", model, "stray"},
	}
	for _, args := range cases {
		if r := edged(t, args...); r.code != 2 {
			t.Errorf("edged %s: exit %d, want 2 (stderr %q)", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	// Data problems found after the flags parse are usage mistakes too.
	for _, args := range [][]string{
		{"finetune", "--model", testenv.SharedFile(t, "models/micro_speech_quantized.tflite"), "--data", empty, "--out", filepath.Join(dir, "o.tflite")},
		{"finetune", "--model", testenv.SharedFile(t, "models/micro_speech_quantized.tflite"), "--data", wavs, "--out", filepath.Join(dir, "o.tflite")},
	} {
		if r := edged(t, args...); r.code != 2 {
			t.Errorf("edged %s: exit %d, want 2 (stderr %q)", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	// A model that cannot be read is not a usage mistake.
	if r := edged(t, "finetune", "--model", model, "--data", wavs, "--out", filepath.Join(dir, "o.tflite")); r.code != 1 {
		t.Errorf("unreadable model: exit %d, want 1 (stderr %q)", r.code, r.stderr)
	}
}

// linkClips makes DIR/<label>/ with the first n clips of each label of a
// kws-synth split, as symbolic links.
func linkClips(t *testing.T, split string, labels []string, n int) string {
	t.Helper()
	src := testenv.SharedFile(t, filepath.Join("kws-synth", split))
	dir := t.TempDir()
	for _, l := range labels {
		files, err := filepath.Glob(filepath.Join(src, l, "*.wav"))
		if err != nil || len(files) < n {
			t.Fatalf("%s/%s: %d clips: %v", src, l, len(files), err)
		}
		slices.Sort(files)
		if err := os.MkdirAll(filepath.Join(dir, l), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range files[:n] {
			if err := os.Symlink(f, filepath.Join(dir, l, filepath.Base(f))); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

var accuracyLine = regexp.MustCompile(`(?m)\Aaccuracy: ([0-9.]+)\n\z`)

func TestEvalAccuracyLine(t *testing.T) {
	model := testenv.SharedFile(t, "models/micro_speech_quantized.tflite")
	frontend := testenv.SharedFile(t, "models/audio_preprocessor_int8.tflite")
	labels := testenv.SharedFile(t, "models/micro_speech_labels.txt")
	data := linkClips(t, "test", []string{"silence", "yes", "no", "stop"}, 3)
	r := edged(t, "eval", "--model", model, "--frontend", frontend, "--labels", labels, "--data", data)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	last := lines[len(lines)-1] + "\n"
	m := accuracyLine.FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("last line %q is not `accuracy: <fraction>`:\n%s", last, r.stdout)
	}
	j := edged(t, "eval", "--json", "--model", model, "--frontend", frontend, "--labels", labels, "--data", data)
	var rep evalReport
	if err := json.Unmarshal([]byte(j.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	got, _ := strconv.ParseFloat(m[1], 64)
	if rep.Examples != 12 || got != float64(int(rep.Accuracy*10000+0.5))/10000 {
		t.Fatalf("text accuracy %s, JSON %+v", m[1], rep)
	}
	// stop is not a class of the stock model: its 3 clips are errors, and
	// the confusion matrix has a row for it.
	if rep.Correct > 9 || !slices.Contains(rep.Rows, "stop") || len(rep.Confusion) != 5 || len(rep.Confusion[0]) != 4 {
		t.Fatalf("report %+v", rep)
	}
	for _, c := range rep.Classes {
		if c.Label == "silence" && (c.Recall != 1 || c.Support != 3) {
			t.Fatalf("silence %+v", c)
		}
	}
	if !strings.Contains(r.stdout, "confusion matrix") || !strings.Contains(r.stdout, "precision") {
		t.Fatalf("no per-class table or confusion matrix:\n%s", r.stdout)
	}
}

// TestFinetuneCLI fine-tunes on a few clips through the command line and
// evaluates the result.
func TestFinetuneCLI(t *testing.T) {
	model := testenv.SharedFile(t, "models/micro_speech_quantized.tflite")
	frontend := testenv.SharedFile(t, "models/audio_preprocessor_int8.tflite")
	data := linkClips(t, "train", []string{"silence", "yes", "up"}, 8)
	out := filepath.Join(t.TempDir(), "new.tflite")
	r := edged(t, "finetune", "--model", model, "--frontend", frontend, "--data", data, "--out", out, "--epochs", "3", "--augment", "1", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var rep finetune.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	// Audio with examples of every class: deep by default (3 epochs of the
	// layer with the head, 3 of the final head).
	if rep.Mode != finetune.ModeDeep || rep.Agreement < 0.9 || rep.Epochs != 6 || rep.LayerEpochs != 3 || rep.PeakHeapBytes == 0 {
		t.Fatalf("report %+v", rep)
	}
	// Not a terminal: plain progress lines, no bar redrawn in place.
	if !strings.Contains(r.stderr, "finetune: train epoch 6/6") || strings.Contains(r.stderr, "\r") {
		t.Fatalf("progress on a pipe:\n%q", r.stderr)
	}
	labels, err := os.ReadFile(strings.TrimSuffix(out, ".tflite") + "_labels.txt")
	if err != nil {
		t.Fatal(err)
	}
	if string(labels) != "silence\nup\nyes\n" {
		t.Fatalf("labels file %q", labels)
	}
	m, err := runtime.LoadModelFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subgraphs[0].Tensors[m.Subgraphs[0].Outputs[0]].Shape[1] != 3 {
		t.Fatal("the new model does not have 3 outputs")
	}
	e := edged(t, "eval", "--model", out, "--frontend", frontend, "--data", data)
	if e.code != 0 || !strings.Contains(e.stdout, "accuracy: ") {
		t.Fatalf("eval: exit %d\n%s%s", e.code, e.stdout, e.stderr)
	}
	// Same data, flags and seed: the same file.
	out2 := filepath.Join(t.TempDir(), "again.tflite")
	if r := edged(t, "finetune", "--model", model, "--frontend", frontend, "--data", data, "--out", out2, "--epochs", "3", "--augment", "1", "--workers", "1"); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(out2)
	if string(a) != string(b) {
		t.Fatal("two runs with the same seed wrote different models")
	}
}

// TestFinetuneFramingMatchesKeywordSpotter checks that fine-tuning frames a
// clip exactly as the keyword spotter's clip classification does (and so
// as `edged kws` and `edged eval` do): the same model scores both the same.
func TestFinetuneFramingMatchesKeywordSpotter(t *testing.T) {
	model, err := runtime.LoadModelFile(testenv.SharedFile(t, "models/micro_speech_quantized.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	frontend, err := runtime.LoadModelFile(testenv.SharedFile(t, "models/audio_preprocessor_int8.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	labels, err := pipeline.LoadLabels(testenv.SharedFile(t, "models/micro_speech_labels.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := pipeline.NewKeywordSpotter(frontend, model, pipeline.KeywordConfig{Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	it, err := runtime.NewInterpreter(model, nil)
	if err != nil {
		t.Fatal(err)
	}
	fe, err := finetune.NewAudioFrontend(frontend, it.Inputs()[0].NumElements(), finetune.DefaultStride)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(testenv.SharedFile(t, "kws-synth/test"), "*", "*_nohash_00[0-2].wav"))
	files = append(files, testenv.SharedFile(t, "inputs/yes_30ms.wav"))
	if len(files) < 10 {
		t.Fatalf("%d clips", len(files))
	}
	for _, f := range files {
		pcm, _, err := sensors.ReadWAVFile(f, 16000)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ks.Classify(pcm, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := fe.Features(pcm, it.Inputs()[0].Int8s()); err != nil {
			t.Fatal(err)
		}
		if err := it.Invoke(); err != nil {
			t.Fatal(err)
		}
		out := it.Outputs()[0]
		for i, v := range out.Int8s() {
			if got := out.Scale() * float32(int32(v)-out.ZeroPoint()); got != want[i] {
				t.Fatalf("%s: score %d is %g, the keyword spotter's %g", f, i, got, want[i])
			}
		}
	}
}
