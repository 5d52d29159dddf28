package main

import (
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
	Model           string          `json:"model"`
	Backend         string          `json:"backend"`
	Requested       string          `json:"requested,omitempty"`
	Fallback        string          `json:"fallback,omitempty"`
	Selection       *benchSelection `json:"selection,omitempty"`
	Threads         int             `json:"threads"`
	Runs            int             `json:"runs"`
	MedianMicros    float64         `json:"median_us"`
	P90Micros       float64         `json:"p90_us"`
	MinMicros       float64         `json:"min_us"`
	MeanMicros      float64         `json:"mean_us"`
	ArenaBytes      int             `json:"arena_bytes"`
	WorkspaceBytes  int             `json:"workspace_bytes"`
	AllocsPerInvoke float64         `json:"allocs_per_invoke"`
	BytesPerInvoke  float64         `json:"bytes_per_invoke"`
	MACs            int64           `json:"macs"`
	MACsPerSecond   float64         `json:"macs_per_second"`
}

// benchSelection is what --backend auto measured at load.
type benchSelection struct {
	Reason         string  `json:"reason"`
	Delegate       string  `json:"delegate"`
	Trials         int     `json:"trials"`
	Int8Micros     float64 `json:"int8_median_us"`
	DelegateMicros float64 `json:"delegate_median_us"`
	MaxSteps       int64   `json:"max_diff_steps"`
	MaxFloatDiff   float64 `json:"max_diff_float"`
	Agrees         bool    `json:"agrees"`
}

func runBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", "--model M [--backend int8|armnn|auto] [--runs N] [--warmup W] [--threads T] [--reference] [--json]", stderr)
	modelPath := fs.String("model", "", "the .tflite model to measure (required)")
	backend := fs.String("backend", runtime.BackendInt8, backendFlagHelp)
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
	sel, err := openBackend(m, *backend, &runtime.Options{Threads: *threads, ReferenceKernels: *reference}, nil, "edged bench")
	if err != nil {
		if _, ok := err.(*usageError); ok {
			return err
		}
		return fmt.Errorf("%s: %w", *modelPath, err)
	}
	it := sel.Backend
	defer it.Close()
	rng := rand.New(rand.NewPCG(*seed, 0x5eed))
	for _, t := range it.Inputs() {
		runtime.FillRandom(rng, t)
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
		Backend:         "int8",
		Fallback:        sel.Fallback,
		Threads:         *threads,
		Runs:            *runs,
		MedianMicros:    us(median),
		P90Micros:       us(times[min(len(times)-1, int(math.Ceil(0.9*float64(len(times))))-1)]),
		MinMicros:       us(times[0]),
		MeanMicros:      us(sum / time.Duration(len(times))),
		AllocsPerInvoke: float64(after.Mallocs-before.Mallocs) / float64(*runs),
		BytesPerInvoke:  float64(after.TotalAlloc-before.TotalAlloc) / float64(*runs),
	}
	if sel.Requested != runtime.BackendInt8 {
		r.Requested = sel.Requested
	}
	if gi, ok := it.(*runtime.Interpreter); ok {
		r.ArenaBytes, r.WorkspaceBytes, r.MACs, r.Threads = gi.ArenaBytes(), gi.WorkspaceBytes(), gi.MACs(), gi.Threads()
		r.Backend = "int8 (pure Go reference kernels)"
		if gi.OptimizedKernels() {
			r.Backend = "int8 (optimized kernels, " + runtime.KernelBackend() + " micro-kernels)"
		}
	} else {
		r.Backend = it.Name() + " (" + delegateDescription(sel.Requested) + ")"
		// The MACs are the model's; a Go interpreter counts them.
		if gi, err := runtime.NewInterpreter(m, nil); err == nil {
			r.MACs = gi.MACs()
		}
	}
	if sel.Measured {
		r.Selection = &benchSelection{
			Reason: sel.Reason, Delegate: sel.Delegate, Trials: sel.Trials,
			Int8Micros: us(sel.Int8Time), DelegateMicros: us(sel.DelegateTime),
			MaxSteps: sel.MaxSteps, MaxFloatDiff: sel.MaxFloatDiff, Agrees: sel.Agrees,
		}
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
	if r.Fallback != "" {
		fmt.Fprintf(stdout, "fallback     %s\n", r.Fallback)
	}
	if s := r.Selection; s != nil {
		fmt.Fprintf(stdout, "auto         int8 %.1f us, %s %.1f us (medians of %d on random inputs), max difference %d steps (float %.3g)\n",
			s.Int8Micros, s.Delegate, s.DelegateMicros, s.Trials, s.MaxSteps, s.MaxFloatDiff)
		fmt.Fprintf(stdout, "decision     %s\n", s.Reason)
	}
	fmt.Fprintf(stdout, "invoke       median %.1f us, p90 %.1f us, min %.1f us (%d runs after %d warm-up)\n", r.MedianMicros, r.P90Micros, r.MinMicros, r.Runs, *warmup)
	if _, ok := it.(*runtime.Interpreter); ok {
		fmt.Fprintf(stdout, "arena        %d bytes (+ %d bytes kernel workspace)\n", r.ArenaBytes, r.WorkspaceBytes)
	} else {
		fmt.Fprintf(stdout, "arena        n/a (the delegate manages its own memory)\n")
	}
	fmt.Fprintf(stdout, "allocations  %.2f per invoke (%.0f bytes)\n", r.AllocsPerInvoke, r.BytesPerInvoke)
	fmt.Fprintf(stdout, "MACs         %d per invoke, %.3g MAC/s\n", r.MACs, r.MACsPerSecond)
	return nil
}

// delegateDescription is what edged version says about a delegate.
func delegateDescription(name string) string {
	if name == runtime.BackendAuto {
		name = runtime.BackendArmNN
	}
	if d, ok := runtime.LookupDelegate(name); ok && d.Describe != nil {
		return d.Describe()
	}
	return name
}
