package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/edged/edged/internal/config"
	"github.com/edged/edged/internal/runtime"
)

// backendMetrics export each pipeline's backend decision.
type backendMetrics struct {
	info     *prometheus.GaugeVec
	fallback *prometheus.GaugeVec
	invoke   *prometheus.GaugeVec
	diff     *prometheus.GaugeVec
}

func newBackendMetrics(reg prometheus.Registerer) *backendMetrics {
	m := &backendMetrics{
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edged_backend_info", Help: "1 for the backend each pipeline's model runs on (requested: auto, int8 or armnn; backend: int8, armnn/CpuAcc, ...).",
		}, []string{"pipeline", "model", "requested", "backend"}),
		fallback: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edged_backend_fallback", Help: "1 when the delegate could not take the model and the pure-Go kernels run it instead.",
		}, []string{"pipeline", "model"}),
		invoke: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edged_backend_selection_invoke_seconds", Help: "Median invoke time each backend showed when auto measured the model at load.",
		}, []string{"pipeline", "model", "backend"}),
		diff: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edged_backend_selection_max_difference_steps", Help: "Largest difference, in quantization steps, between the delegate's and the pure-Go kernels' outputs when auto measured the model at load.",
		}, []string{"pipeline", "model"}),
	}
	reg.MustRegister(m.info, m.fallback, m.invoke, m.diff)
	return m
}

func (m *backendMetrics) reset() {
	m.info.Reset()
	m.fallback.Reset()
	m.invoke.Reset()
	m.diff.Reset()
}

// openModel opens a pipeline's model on the backend its configuration asks
// for, logging and exporting the decision.
func openModel(m *runtime.Model, pc *config.Pipeline, model string, log *zap.Logger, bm *backendMetrics) (runtime.Backend, error) {
	opts := runtime.SelectOptions{Backend: pc.Backend}
	if pc.Threads > 1 {
		opts.Interpreter = &runtime.Options{Threads: pc.Threads}
	}
	if pc.Tolerance != nil {
		opts.Tolerance = *pc.Tolerance
		if opts.Tolerance == 0 {
			opts.Tolerance = -1 // bit-exact
		}
	}
	sel, err := runtime.OpenBackend(m, opts)
	if err != nil {
		return nil, err
	}
	b := sel.Backend
	fields := []zap.Field{zap.String("model", model), zap.String("requested", sel.Requested), zap.String("backend", b.Name()), zap.String("reason", sel.Reason)}
	if it, ok := b.(*runtime.Interpreter); ok {
		fields = append(fields, zap.Int("threads", it.Threads()), zap.Bool("optimized_kernels", it.OptimizedKernels()))
	}
	if sel.Measured {
		fields = append(fields, zap.String("delegate", sel.Delegate), zap.Int("trials", sel.Trials),
			zap.Duration("int8_median", sel.Int8Time), zap.Duration("delegate_median", sel.DelegateTime),
			zap.Int64("max_diff_steps", sel.MaxSteps), zap.Float64("max_diff_float", sel.MaxFloatDiff),
			zap.Int("tolerance", sel.Tolerance), zap.Bool("agrees", sel.Agrees))
		bm.invoke.WithLabelValues(pc.Name, model, runtime.BackendInt8).Set(sel.Int8Time.Seconds())
		bm.invoke.WithLabelValues(pc.Name, model, sel.Delegate).Set(sel.DelegateTime.Seconds())
		bm.diff.WithLabelValues(pc.Name, model).Set(float64(sel.MaxSteps))
	}
	fallback := 0.0
	if sel.Fallback != "" {
		fields = append(fields, zap.String("fallback", sel.Fallback))
		fallback = 1
	}
	if sel.Requested != runtime.BackendInt8 {
		bm.fallback.WithLabelValues(pc.Name, model).Set(fallback)
	}
	bm.info.WithLabelValues(pc.Name, model, sel.Requested, b.Name()).Set(1)
	if sel.Fallback != "" && sel.Requested == runtime.BackendArmNN {
		log.Warn("model backend: the requested delegate cannot run it; using the pure-Go kernels", fields...)
	} else {
		log.Info("model backend", fields...)
	}
	return b, nil
}
