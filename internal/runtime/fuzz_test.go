package runtime_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/edged/edged/internal/testenv"
)

// FuzzLoadModel feeds arbitrary bytes to the model reader and, for what
// loads, to Prepare and Invoke: any input must give an error or a result,
// never a panic, a hang or an allocation beyond the arena limit.
//
//	go test ./internal/runtime -run '^$' -fuzz FuzzLoadModel -fuzztime 10m
//
// The seeds are models the builder makes and the shared models under 64 KB
// (large seeds make every mutation and minimization run a whole network);
// `go test` runs the seeds (and testdata/fuzz/FuzzLoadModel) as ordinary
// tests.
func FuzzLoadModel(f *testing.F) {
	for _, m := range seedModels() {
		b, err := m.Bytes()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	if paths, _ := filepath.Glob(filepath.Join(testenv.SharedDir(f), "models", "*.tflite")); len(paths) > 0 {
		for _, p := range paths {
			if st, err := os.Stat(p); err == nil && st.Size() < 64<<10 {
				b, err := os.ReadFile(p)
				if err != nil {
					f.Fatal(err)
				}
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		exerciseModel(t, b, 2_000_000)
	})
}
