package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	goruntime "runtime"
	"slices"
	"time"

	"github.com/edged/edged/internal/runtime"
)

type benchResult struct {
	Model           string  `json:"model"`
	Backend         string  `json:"backend"`
	Threads         int     `json:"threads"`
	Runs            int     `json:"runs"`
	MedianMicros    float64 `json:"median_us"`
	P90Micros       float64 `json:"p90_us"`
	MinMicros       float64 `json:"min_us"`
	MeanMicros      float64 `json:"mean_us"`
	ArenaBytes      int     `json:"arena_bytes"`
	WorkspaceBytes  int     `json:"workspace_bytes"`
	AllocsPerInvoke float64 `json:"allocs_per_invoke"`
	BytesPerInvoke  float64 `json:"bytes_per_invoke"`
	MACs            int64   `json:"macs"`
	MACsPerSecond   float64 `json:"macs_per_second"`
}

func runBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", "--model M [--runs N] [--warmup W] [--threads T] [--reference] [--json]", stderr)
	modelPath := fs.String("model", "", "the .tflite model to measure (required)")
	runs := fs.Int("runs", 20, "timed invokes")
	warmup := fs.Int("warmup", 2, "untimed invokes before measuring")
	threads := fs.Int("threads", 1, "threads that share the work of large layers")
	reference := fs.Bool("reference", false, "run the plain reference kernels instead of the optimized ones")
	seed := fs.Uint64("seed", 1, "seed of the random input values")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *modelPath == "" {
		return usagef("%v", errNoModel)
	}
	if *runs < 1 || *warmup < 0 || *threads < 1 {
		return usagef("--runs and --threads must be at least 1, --warmup at least 0")
	}
	m, err := runtime.LoadModelFile(*modelPath)
	if err != nil {
		return err
	}
	it, err := runtime.NewInterpreter(m, &runtime.Options{Threads: *threads, ReferenceKernels: *reference})
	if err != nil {
		return fmt.Errorf("%s: %w", *modelPath, err)
	}
	defer it.Close()
	backend := "int8 (pure Go reference kernels)"
	if it.OptimizedKernels() {
		backend = "int8 (optimized kernels, " + runtime.KernelBackend() + " micro-kernels)"
	}
	rng := rand.New(rand.NewPCG(*seed, 0x5eed))
	for _, t := range it.Inputs() {
		fillRandom(rng, t)
	}
	for range *warmup {
		if err := it.Invoke(); err != nil {
			return err
		}
	}
	times := make([]time.Duration, *runs)
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	for i := range times {
		start := time.Now()
		if err := it.Invoke(); err != nil {
			return err
		}
		times[i] = time.Since(start)
	}
	goruntime.ReadMemStats(&after)

	slices.Sort(times)
	var sum time.Duration
	for _, d := range times {
		sum += d
	}
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	median := times[len(times)/2]
	if len(times)%2 == 0 {
		median = (times[len(times)/2-1] + times[len(times)/2]) / 2
	}
	r := benchResult{
		Model:           *modelPath,
		Backend:         backend,
		Threads:         it.Threads(),
		Runs:            *runs,
		MedianMicros:    us(median),
		P90Micros:       us(times[min(len(times)-1, int(math.Ceil(0.9*float64(len(times))))-1)]),
		MinMicros:       us(times[0]),
		MeanMicros:      us(sum / time.Duration(len(times))),
		ArenaBytes:      it.ArenaBytes(),
		WorkspaceBytes:  it.WorkspaceBytes(),
		AllocsPerInvoke: float64(after.Mallocs-before.Mallocs) / float64(*runs),
		BytesPerInvoke:  float64(after.TotalAlloc-before.TotalAlloc) / float64(*runs),
		MACs:            it.MACs(),
	}
	if median > 0 {
		r.MACsPerSecond = float64(r.MACs) / median.Seconds()
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(stdout, "model        %s\n", r.Model)
	fmt.Fprintf(stdout, "backend      %s, %d thread(s)\n", r.Backend, r.Threads)
	fmt.Fprintf(stdout, "invoke       median %.1f us, p90 %.1f us, min %.1f us (%d runs after %d warm-up)\n", r.MedianMicros, r.P90Micros, r.MinMicros, r.Runs, *warmup)
	fmt.Fprintf(stdout, "arena        %d bytes (+ %d bytes kernel workspace)\n", r.ArenaBytes, r.WorkspaceBytes)
	fmt.Fprintf(stdout, "allocations  %.2f per invoke (%.0f bytes)\n", r.AllocsPerInvoke, r.BytesPerInvoke)
	fmt.Fprintf(stdout, "MACs         %d per invoke, %.3g MAC/s\n", r.MACs, r.MACsPerSecond)
	return nil
}

// fillRandom fills an input with uniformly random values over its type's
// range (floats in [-1, 1)).
func fillRandom(rng *rand.Rand, t *runtime.Tensor) {
	b := t.Bytes()
	switch t.Type {
	case runtime.Float32:
		for i := 0; i+4 <= len(b); i += 4 {
			binary.LittleEndian.PutUint32(b[i:], math.Float32bits(float32(2*rng.Float64()-1)))
		}
	case runtime.Bool:
		for i := range b {
			b[i] = byte(rng.IntN(2))
		}
	default:
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
	}
}
