package pipeline

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestReadLabels(t *testing.T) {
	cases := map[string][]string{
		"silence\nunknown\nyes\nno\n":          {"silence", "unknown", "yes", "no"},
		"\ufeffa\r\n\r\nb\r\n":                 {"a", "b"},
		"0 person\n1 bicycle\n2 traffic light": {"person", "bicycle", "traffic light"},
		"1: cat\n2: dog\n":                     {"cat", "dog"},
		"3 way switch\nlamp\n":                 {"3 way switch", "lamp"},
		"0 a\n2 b\n":                           {"0 a", "2 b"},
	}
	dir := t.TempDir()
	for text, want := range cases {
		p := filepath.Join(dir, "labels.txt")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ReadLabels(p)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%q: got %q, %v; want %q", text, got, err, want)
		}
	}
	if _, err := ReadLabels(filepath.Join(dir, "missing.txt")); err == nil {
		t.Error("missing file: no error")
	}
	empty := filepath.Join(dir, "empty.txt")
	os.WriteFile(empty, []byte("\n\n"), 0o644)
	if _, err := ReadLabels(empty); err == nil {
		t.Error("empty file: no error")
	}
}
