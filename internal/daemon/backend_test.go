package daemon

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/edged/edged/internal/config"
	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

func identityModel(t *testing.T) *runtime.Model {
	t.Helper()
	m := &builder.Model{}
	q := func(tt builder.Tensor) builder.Tensor {
		tt.Scale, tt.ZeroPoint = []float32{1}, []int64{0}
		return tt
	}
	in := m.AddTensor(q(builder.Tensor{Name: "in", Type: tflite.TensorTypeINT8, Shape: []int{1, 2}}))
	w := m.AddTensor(q(builder.Tensor{Name: "w", Type: tflite.TensorTypeINT8, Shape: []int{2, 2}, Data: builder.Int8Data([]int8{1, 0, 0, 1})}))
	out := m.AddTensor(q(builder.Tensor{Name: "out", Type: tflite.TensorTypeINT8, Shape: []int{1, 2}}))
	m.AddOp(builder.Op{Builtin: tflite.BuiltinOperatorFULLY_CONNECTED, Inputs: []int{in, w}, Outputs: []int{out},
		Options: &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsFullyConnectedOptions, Value: &tflite.FullyConnectedOptionsT{}}})
	m.Inputs, m.Outputs = []int{in}, []int{out}
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	model, err := runtime.LoadModel(b)
	if err != nil {
		t.Fatal(err)
	}
	return model
}

// The backend decision is logged and exported per pipeline; a build
// without Arm NN refuses armnn with the message that says which build to
// use, and runs auto on int8.
func TestOpenModelLogsAndExports(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	log := zap.New(core)
	bm := newBackendMetrics(prometheus.NewRegistry())
	m := identityModel(t)
	for _, req := range []string{config.BackendInt8, config.BackendAuto} {
		pc := &config.Pipeline{Name: "p", Backend: req}
		b, err := openModel(m, pc, "id.tflite", log, bm)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if _, armnn := runtime.LookupDelegate(runtime.BackendArmNN); !armnn && b.Name() != runtime.BackendInt8 {
			t.Fatalf("%s ran on %s", req, b.Name())
		}
		if v := testutil.ToFloat64(bm.info.WithLabelValues("p", "id.tflite", req, b.Name())); v != 1 {
			t.Fatalf("edged_backend_info for %s = %v", req, v)
		}
	}
	entries := logs.FilterMessage("model backend").All()
	if len(entries) != 2 || entries[0].ContextMap()["backend"] != "int8" || entries[1].ContextMap()["requested"] != "auto" {
		t.Fatalf("logs: %+v", entries)
	}
	if _, armnn := runtime.LookupDelegate(runtime.BackendArmNN); !armnn {
		_, err := openModel(m, &config.Pipeline{Name: "p", Backend: config.BackendArmNN}, "id.tflite", log, bm)
		if !errors.Is(err, runtime.ErrArmNNNotBuilt) {
			t.Fatalf("armnn without Arm NN: %v", err)
		}
	}
	bm.reset()
	if n := testutil.CollectAndCount(bm.info); n != 0 {
		t.Fatalf("%d series after reset", n)
	}
}
