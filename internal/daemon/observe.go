package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// metrics are the daemon's own Prometheus metrics; the publisher registers
// its outbox and connection metrics beside them.
type metrics struct {
	inference     *prometheus.HistogramVec
	framesIn      *prometheus.CounterVec
	framesDropped *prometheus.CounterVec
	framesSkipped *prometheus.CounterVec
	audioDropped  *prometheus.CounterVec
	events        *prometheus.CounterVec
	sourceUp      *prometheus.GaugeVec
	sourceRestart *prometheus.CounterVec
	backends      *backendMetrics
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := func(c prometheus.Collector) prometheus.Collector { reg.MustRegister(c); return c }
	return &metrics{
		inference: f(prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "edged_inference_seconds", Help: "Time of one model invocation, preprocessing and postprocessing included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"pipeline", "model"})).(*prometheus.HistogramVec),
		framesIn: f(prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edged_frames_total", Help: "Camera frames a source delivered.",
		}, []string{"source"})).(*prometheus.CounterVec),
		framesDropped: f(prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edged_frames_dropped_total", Help: "Frames dropped because a pipeline's queue was full (the oldest goes).",
		}, []string{"pipeline"})).(*prometheus.CounterVec),
		framesSkipped: f(prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edged_frames_skipped_total", Help: "Frames not inferred on, by reason (rate limit, no motion, gate closed).",
		}, []string{"pipeline", "reason"})).(*prometheus.CounterVec),
		audioDropped: f(prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edged_audio_dropped_seconds_total", Help: "Audio dropped because a keyword pipeline fell behind.",
		}, []string{"pipeline"})).(*prometheus.CounterVec),
		events: f(prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edged_events_total", Help: "Events produced, by pipeline and kind.",
		}, []string{"pipeline", "kind"})).(*prometheus.CounterVec),
		sourceUp: f(prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edged_source_up", Help: "1 while a source delivers data, 0 while it is failing.",
		}, []string{"source"})).(*prometheus.GaugeVec),
		sourceRestart: f(prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edged_source_restarts_total", Help: "Times a failed source was restarted.",
		}, []string{"source"})).(*prometheus.CounterVec),
		backends: newBackendMetrics(reg),
	}
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// health is what /healthz reports.
type health struct {
	mu      sync.Mutex
	started time.Time
	sources map[string]sourceHealth
	broker  func() string
	outbox  func() any
}

type sourceHealth struct {
	State string    `json:"state"`
	Error string    `json:"error,omitempty"`
	Since time.Time `json:"since"`
}

func (h *health) setSource(name, state string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := sourceHealth{State: state, Since: time.Now()}
	if err != nil {
		s.Error = err.Error()
	}
	h.sources[name] = s
}

func (h *health) removeSource(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.sources, name)
}

func (h *health) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h.mu.Lock()
	body := map[string]any{
		"status":         "ok",
		"uptime_seconds": time.Since(h.started).Seconds(),
		"sources":        h.sources,
	}
	if h.broker != nil {
		body["broker"] = h.broker()
	}
	if h.outbox != nil {
		body["outbox"] = h.outbox()
	}
	b, err := json.MarshalIndent(body, "", "  ")
	h.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}

// serveHTTP starts /metrics and /healthz on addr; it returns once listening
// (so a bad address is an error at start) and stops when ctx ends.
func serveHTTP(ctx context.Context, addr string, reg *prometheus.Registry, h *health, log *zap.Logger) (stopped <-chan struct{}, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.Handle("/healthz", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", zap.Error(err))
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Info("serving /metrics and /healthz", zap.String("addr", ln.Addr().String()))
	return done, nil
}
