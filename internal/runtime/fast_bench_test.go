package runtime_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/tflite"
	"github.com/edged/edged/internal/testenv"
)

// Benchmarks of the optimized kernels on typical layer shapes, against the
// reference kernels, reporting multiply-accumulates per second (MAC/s), and
// of the CPU's int8 multiply-accumulate peak. `go test -run '^$' -bench .
// ./internal/runtime`.

// BenchmarkInt8Peak is the exact int8 multiply-accumulate peak of one core:
// independent chains of VPMADDWD + VPADDD on amd64.
func BenchmarkInt8Peak(b *testing.B) {
	const iters = 1 << 16
	if runtime.Int8PeakLoop(1) == 0 {
		b.Skip("no peak loop for this CPU")
	}
	var macs int
	for b.Loop() {
		macs += runtime.Int8PeakLoop(iters) * iters
	}
	b.ReportMetric(float64(macs)/b.Elapsed().Seconds(), "MAC/s")
}

type benchLayer struct {
	name                  string
	op                    tflite.BuiltinOperator
	typ                   runtime.DType
	h, w, inD, outD, f, s int
}

var benchLayers = []benchLayer{
	{"conv1x1_int8_16x16x128to128", tflite.BuiltinOperatorCONV_2D, runtime.Int8, 16, 16, 128, 128, 1, 1},
	{"conv1x1_uint8_32x32x32to64", tflite.BuiltinOperatorCONV_2D, runtime.Uint8, 32, 32, 32, 64, 1, 1},
	{"conv3x3_int8_40x40x64to64", tflite.BuiltinOperatorCONV_2D, runtime.Int8, 40, 40, 64, 64, 3, 1},
	{"conv3x3s2_int8_128x128x3to16", tflite.BuiltinOperatorCONV_2D, runtime.Int8, 128, 128, 3, 16, 3, 2},
	{"depthwise3x3_int8_32x32x64", tflite.BuiltinOperatorDEPTHWISE_CONV_2D, runtime.Int8, 32, 32, 64, 64, 3, 1},
	{"depthwise3x3s2_uint8_64x64x32", tflite.BuiltinOperatorDEPTHWISE_CONV_2D, runtime.Uint8, 64, 64, 32, 32, 3, 2},
	{"fc_int8_4x1024to256", tflite.BuiltinOperatorFULLY_CONNECTED, runtime.Int8, 1, 4, 1024, 256, 1, 1},
}

func (l benchLayer) property() *convProperty {
	rng := rand.New(rand.NewPCG(1, 2))
	c := randomConv(rng, l.op, 1)
	c.typ, c.batches, c.inH, c.inW, c.inD, c.outD, c.dm = l.typ, 1, l.h, l.w, l.inD, l.outD, 1
	c.fH, c.fW, c.sh, c.sw, c.dh, c.dw, c.padding = l.f, l.f, l.s, l.s, 1, 1, tflite.PaddingSAME
	c.act, c.bias, c.perTensor = tflite.ActivationFunctionTypeRELU6, true, l.typ == runtime.Uint8
	if l.op == tflite.BuiltinOperatorFULLY_CONNECTED {
		c.batches = l.w
	}
	nW := c.outD * c.fH * c.fW * c.inD
	if l.op == tflite.BuiltinOperatorDEPTHWISE_CONV_2D {
		nW = c.fH * c.fW * c.outD
	}
	if l.op == tflite.BuiltinOperatorFULLY_CONNECTED {
		nW = c.outD * c.inD
	}
	c.filterData = randBytes(rng, nW)
	c.wScales = make([]float32, c.outD)
	for i := range c.wScales {
		c.wScales[i] = 0.01
	}
	c.biasData = make([]byte, 4*c.outD)
	c.inZP, c.wZP, c.outZP = 0, 0, 0
	if l.typ == runtime.Uint8 {
		c.inZP, c.wZP, c.outZP = 128, 128, 128
	}
	c.outScale = c.inScale * 0.01 * 40
	return c
}

func BenchmarkKernels(b *testing.B) {
	variants := []struct {
		name string
		opts *runtime.Options
	}{
		{"reference", &runtime.Options{ReferenceKernels: true}},
		{"optimized", &runtime.Options{}},
		{"optimized-purego", runtime.PureGo(runtime.Options{})},
		{"optimized-threads2", &runtime.Options{Threads: 2}},
	}
	for _, l := range benchLayers {
		c := l.property()
		model := buildModel(b, c.model())
		input := c.inputBytes(rand.New(rand.NewPCG(3, 4)))
		for _, v := range variants {
			b.Run(l.name+"/"+v.name, func(b *testing.B) {
				it, err := runtime.NewInterpreter(model, v.opts)
				if err != nil {
					b.Fatal(err)
				}
				defer it.Close()
				copy(it.Inputs()[0].Bytes(), input)
				best := time.Duration(math.MaxInt64)
				for b.Loop() {
					start := time.Now()
					if err := it.Invoke(); err != nil {
						b.Fatal(err)
					}
					best = min(best, time.Since(start))
				}
				b.ReportMetric(float64(it.MACs())*float64(b.N)/b.Elapsed().Seconds(), "MAC/s")
				// The fastest invoke: on a busy machine the least disturbed.
				b.ReportMetric(float64(best.Nanoseconds())/1e3, "best-us")
			})
		}
	}
}

// BenchmarkModels times whole shared models (skipped without the test
// data) with the optimized kernels on one and two threads.
func BenchmarkModels(b *testing.B) {
	for _, name := range []string{"person_detect", "mobilenet_v1_0.25_128_quant", "micro_speech_quantized", "traffic_model", "yolov8n_full_integer_quant"} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads%d", name, threads), func(b *testing.B) {
				path := filepath.Join(testenv.SharedDir(b), "models", name+".tflite")
				if _, err := os.Stat(path); err != nil {
					b.Skipf("no %s: %v", path, err)
				}
				m, err := runtime.LoadModelFile(path)
				if err != nil {
					b.Fatal(err)
				}
				it, err := runtime.NewInterpreter(m, &runtime.Options{Threads: threads})
				if err != nil {
					b.Fatal(err)
				}
				defer it.Close()
				for b.Loop() {
					if err := it.Invoke(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(it.MACs())*float64(b.N)/b.Elapsed().Seconds(), "MAC/s")
			})
		}
	}
}
