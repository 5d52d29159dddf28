package daemon

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/internal/finetune"
)

func TestLearnStore(t *testing.T) {
	s := newLearnStore(t.TempDir(), "wakeword")

	// Nothing yet: version 0, no examples, no versions.
	if a, err := s.active(); err != nil || a.Version != 0 {
		t.Fatalf("empty store: active %+v, %v", a, err)
	}
	if c, err := s.counts(); err != nil || len(c) != 0 {
		t.Fatalf("empty store: counts %v, %v", c, err)
	}

	pcm := []int16{1, -2, 3, -4}
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for i, label := range []string{"stop", "stop", "go"} {
		name, err := s.addExample(label, pcm, 16000, at.Add(time.Duration(i)*time.Millisecond))
		if err != nil || !strings.HasPrefix(name, label+"/") {
			t.Fatalf("addExample %s: %q, %v", label, name, err)
		}
	}
	for _, bad := range []string{"", "../x", "a/b", ".hidden", strings.Repeat("x", 65)} {
		if _, err := s.addExample(bad, pcm, 16000, at); err == nil {
			t.Errorf("label %q accepted", bad)
		}
	}
	c, err := s.counts()
	if err != nil || c["stop"] != 2 || c["go"] != 1 || len(c) != 2 {
		t.Fatalf("counts %v, %v", c, err)
	}
	clips, err := s.clips(16000)
	if err != nil || len(clips) != 3 || clips[0].Label != "go" || !slices.Equal(clips[0].PCM, pcm) {
		t.Fatalf("clips %+v, %v", clips, err)
	}
	// A temporary file from an interrupted write is not an example.
	os.WriteFile(filepath.Join(s.examplesDir(), "stop", ".x.wav.tmp123"), []byte("partial"), 0o644)
	if c, _ := s.counts(); c["stop"] != 2 {
		t.Errorf("a temporary file counted: %v", c)
	}

	// Versions: 1, 2; a version directory without its model (a crash
	// before the model was written) is not one.
	for want := 1; want <= 2; want++ {
		n, err := s.saveVersion(&finetune.Result{Model: []byte{byte(want)}, Labels: []string{"a", "b"}})
		if err != nil || n != want {
			t.Fatalf("saveVersion: %d, %v (want %d)", n, err, want)
		}
	}
	os.MkdirAll(s.versionDir(3), 0o750)
	if vs, err := s.versions(); err != nil || !slices.Equal(vs, []int{1, 2}) {
		t.Fatalf("versions %v, %v", vs, err)
	}
	model, labels, err := s.loadVersion(2)
	if err != nil || !slices.Equal(model, []byte{2}) || !slices.Equal([]string(labels), []string{"a", "b"}) {
		t.Fatalf("loadVersion: %v %v %v", model, labels, err)
	}
	if _, _, err := s.loadVersion(3); err == nil {
		t.Error("loadVersion of an incomplete version succeeded")
	}

	if err := s.setActive(activeRecord{Version: 2, Previous: []int{0, 1}, BaseSHA256: "abc"}); err != nil {
		t.Fatal(err)
	}
	if a, err := s.active(); err != nil || a.Version != 2 || !slices.Equal(a.Previous, []int{0, 1}) || a.BaseSHA256 != "abc" || a.Changed == "" {
		t.Fatalf("active %+v, %v", a, err)
	}
	os.WriteFile(s.activePath(), []byte("{broken"), 0o640)
	if _, err := s.active(); err == nil || !strings.Contains(err.Error(), "active.json") {
		t.Errorf("a corrupt active.json: %v", err)
	}

	if n, err := s.clear("stop"); err != nil || n != 2 {
		t.Fatalf("clear stop: %d, %v", n, err)
	}
	if n, err := s.clear(""); err != nil || n != 1 {
		t.Fatalf("clear all: %d, %v", n, err)
	}
	if c, _ := s.counts(); len(c) != 0 {
		t.Errorf("after clear: %v", c)
	}
}
