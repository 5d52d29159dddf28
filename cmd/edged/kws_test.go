package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edged/edged/internal/testenv"
)

func kwsArgs(t *testing.T) []string {
	return []string{"kws",
		"--model", testenv.SharedFile(t, "models/micro_speech_quantized.tflite"),
		"--frontend", testenv.SharedFile(t, "models/audio_preprocessor_int8.tflite"),
		"--labels", testenv.SharedFile(t, "models/micro_speech_labels.txt")}
}

func TestKWSClips(t *testing.T) {
	want := map[string]string{"yes_1000ms.wav": "yes", "no_1000ms.wav": "no", "silence_1000ms.wav": "silence"}
	args := append(kwsArgs(t), "--json")
	for name := range want {
		args = append(args, testenv.SharedFile(t, filepath.Join("inputs", name)))
	}
	r := edged(t, args...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	n := 0
	for dec.More() {
		var res kwsFileResult
		if err := dec.Decode(&res); err != nil {
			t.Fatal(err)
		}
		n++
		w := want[filepath.Base(res.File)]
		if res.Label != w || (w != "silence" && res.Score < 0.9) || len(res.Scores) != 4 {
			t.Errorf("%s: %s %.3f (%v), want %s", res.File, res.Label, res.Score, res.Scores, w)
		}
	}
	if n != len(want) {
		t.Errorf("%d results for %d files", n, len(want))
	}
}

func TestKWSStream(t *testing.T) {
	// yes, silence, no, silence: two keywords in one stream.
	var files []string
	for _, f := range []string{"yes_1000ms.wav", "silence_1000ms.wav", "silence_1000ms.wav", "no_1000ms.wav", "silence_1000ms.wav", "silence_1000ms.wav"} {
		files = append(files, testenv.SharedFile(t, filepath.Join("inputs", f)))
	}
	r := edged(t, append(append(kwsArgs(t), "--stream"), files...)...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "yes") || !strings.Contains(lines[1], "no") || !strings.HasPrefix(lines[2], "real-time factor: ") {
		t.Fatalf("stream output:\n%s", r.stdout)
	}
	r = edged(t, append(append(kwsArgs(t), "--stream", "--json"), files...)...)
	var events []kwsEvent
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	for dec.More() {
		var raw map[string]any
		if err := dec.Decode(&raw); err != nil {
			t.Fatal(err)
		}
		if _, ok := raw["real_time_factor"]; ok {
			continue
		}
		b, _ := json.Marshal(raw)
		var e kwsEvent
		json.Unmarshal(b, &e)
		events = append(events, e)
	}
	// The yes recording's speech starts 490 ms in, the no's 470 ms into the
	// fourth second.
	if len(events) != 2 || events[0].Keyword != "yes" || abs(events[0].StartMS-490) > 120 || events[1].Keyword != "no" || abs(events[1].StartMS-3470) > 120 {
		t.Errorf("events %+v", events)
	}
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestKWSErrors(t *testing.T) {
	if r := edged(t, "kws", "x.wav"); r.code != 2 {
		t.Errorf("missing flags: exit %d", r.code)
	}
	if r := edged(t, kwsArgs(t)...); r.code != 2 || !strings.Contains(r.stderr, "no WAV files") {
		t.Errorf("no files: exit %d %s", r.code, r.stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.wav")
	os.WriteFile(bad, []byte("not a wav file at all"), 0o644)
	if r := edged(t, append(kwsArgs(t), bad)...); r.code != 1 || !strings.Contains(r.stderr, "bad.wav") || !strings.Contains(r.stderr, "RIFF") {
		t.Errorf("bad wav: exit %d %s", r.code, r.stderr)
	}
}
