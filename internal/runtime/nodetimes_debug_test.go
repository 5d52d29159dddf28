package runtime_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/testenv"
)

// TestOperatorTimes prints the time each operator of a shared model takes
// (a profile by layer, for work on the kernels):
//
//	EDGED_OPTIMES=mobilenet_v1_0.25_128_quant [EDGED_OPRUNS=200] [EDGED_OPTHREADS=2] [EDGED_KERNELS=reference] \
//	    go test -run TestOperatorTimes -v ./internal/runtime
func TestOperatorTimes(t *testing.T) {
	name := os.Getenv("EDGED_OPTIMES")
	if name == "" {
		t.Skip("set EDGED_OPTIMES to a model name to print its operators' times")
	}
	runs := 200
	if r, err := strconv.Atoi(os.Getenv("EDGED_OPRUNS")); err == nil && r > 0 {
		runs = r
	}
	m, err := runtime.LoadModelFile(filepath.Join(testenv.SharedDir(t), "models", name+".tflite"))
	if err != nil {
		t.Fatal(err)
	}
	threads, _ := strconv.Atoi(os.Getenv("EDGED_OPTHREADS"))
	it, err := runtime.NewInterpreter(m, &runtime.Options{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	d := runtime.NodeTimes(it, runs)
	for i, n := range it.Nodes() {
		in, out := it.Tensor(n.Op.Inputs[0]), it.Tensor(n.Op.Outputs[0])
		us := float64(d[i].Nanoseconds()) / 1e3 / float64(runs)
		fmt.Printf("%3d %-24s %-18s %-18s %11d MACs %9.1f us %6.2f GMAC/s\n", i, n.Op.Code.Name(),
			runtime.FormatShape(in.Shape), runtime.FormatShape(out.Shape), n.MACs, us, float64(n.MACs)/us/1e3)
	}
}

// TestThreadsSpeedup times a shared model on one and on two threads,
// interleaved (so both see the same machine load), and prints medians:
//
//	EDGED_SPEEDUP=mobilenet_v1_0.25_128_quant go test -run TestThreadsSpeedup -v ./internal/runtime
func TestThreadsSpeedup(t *testing.T) {
	name := os.Getenv("EDGED_SPEEDUP")
	if name == "" {
		t.Skip("set EDGED_SPEEDUP to a model name to compare one and two threads")
	}
	m, err := runtime.LoadModelFile(filepath.Join(testenv.SharedDir(t), "models", name+".tflite"))
	if err != nil {
		t.Fatal(err)
	}
	var its [2]*runtime.Interpreter
	for i := range its {
		if its[i], err = runtime.NewInterpreter(m, &runtime.Options{Threads: i + 1}); err != nil {
			t.Fatal(err)
		}
		defer its[i].Close()
	}
	rounds, per := 40, 10
	if its[0].MACs() > 100_000_000 {
		rounds, per = 5, 2
	}
	var times [2][]time.Duration
	for range rounds {
		for i, it := range its {
			if err := it.Invoke(); err != nil { // warm
				t.Fatal(err)
			}
			for range per {
				start := time.Now()
				if err := it.Invoke(); err != nil {
					t.Fatal(err)
				}
				times[i] = append(times[i], time.Since(start))
			}
		}
	}
	med := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	m1, m2 := med(times[0]), med(times[1])
	fmt.Printf("%s: 1 thread %v, 2 threads %v (median), %.2fx\n", name, m1, m2, float64(m1)/float64(m2))
}
