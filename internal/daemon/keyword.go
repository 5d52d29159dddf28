package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/edged/edged/internal/config"
	"github.com/edged/edged/internal/pipeline"
	"github.com/edged/edged/internal/publish"
	"github.com/edged/edged/internal/runtime"
)

// eventSink is where pipelines send events (the MQTT client).
type eventSink interface {
	Publish(ctx context.Context, ev publish.Event) (uint64, error)
}

// audioChunk is PCM with its arrival time.
type audioChunk struct {
	pcm []int16
	at  time.Time
}

// keywordPipeline spots keywords in a microphone's stream. The source's
// goroutine hands chunks over through a bounded queue; when the pipeline
// falls behind, the oldest audio is dropped and counted, never the source
// blocked. A model learned on the device replaces the running one between
// two chunks (swap); a recording for learning taps the chunks as they pass.
type keywordPipeline struct {
	name, model string
	ks          *pipeline.KeywordSpotter
	version     int          // learned version in use; 0: the configured model
	running     atomic.Int64 // version, for readers outside run
	closed      atomic.Bool  // run has returned and the models are released
	log         *zap.Logger
	sink        eventSink
	m           *metrics
	rate        int

	pc       config.Pipeline
	frontend *runtime.Model
	kcfg     pipeline.KeywordConfig

	queue  chan audioChunk
	free   chan []int16
	swap   chan swapModel
	record chan *recording
	rec    *recording // owned by run
}

// swapModel is a ready spotter for a learned version.
type swapModel struct {
	ks      *pipeline.KeywordSpotter
	version int
}

const keywordQueue = 50 // chunks; about a second of audio from arecord

func newKeywordPipeline(cfg *config.Config, pc *config.Pipeline, rate int, log *zap.Logger, sink eventSink, m *metrics) (*keywordPipeline, error) {
	labels, err := pipeline.LoadLabels(cfg.Resolve(pc.Labels))
	if err != nil {
		return nil, err
	}
	modelPath := cfg.Resolve(pc.Model)
	raw, err := os.ReadFile(modelPath)
	if err != nil {
		return nil, err
	}
	model, err := runtime.LoadModel(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", modelPath, err)
	}
	frontend, err := runtime.LoadModelFile(cfg.Resolve(pc.Frontend))
	if err != nil {
		return nil, err
	}
	if rate != 16000 {
		return nil, fmt.Errorf("source rate %d Hz: the keyword models take 16000 Hz audio (set the source's rate to 16000)", rate)
	}
	p := &keywordPipeline{
		name: pc.Name, model: filepath.Base(pc.Model), log: log, sink: sink, m: m, rate: rate,
		pc: *pc, frontend: frontend,
		kcfg: pipeline.KeywordConfig{
			Labels: labels, SampleRate: rate, InferEvery: pc.InferEvery, SmoothWindow: pc.SmoothWindow.D(),
			Threshold: pc.Threshold, Thresholds: pc.Thresholds, Refractory: pc.Refractory.D(),
		},
		queue: make(chan audioChunk, keywordQueue), free: make(chan []int16, keywordQueue+2),
		swap: make(chan swapModel, 1), record: make(chan *recording),
	}
	if p.ks, err = p.newSpotter(model, labels); err != nil {
		return nil, err
	}
	p.useLearned(newLearnStore(cfg.StateDir, pc.Name), sha256Hex(raw))
	return p, nil
}

// newSpotter opens the frontend and a classifier on the backends the
// pipeline's configuration asks for.
func (p *keywordPipeline) newSpotter(model *runtime.Model, labels []string) (*pipeline.KeywordSpotter, error) {
	fb, err := openModel(p.frontend, &p.pc, filepath.Base(p.pc.Frontend), p.log, p.m.backends)
	if err != nil {
		return nil, fmt.Errorf("frontend: %w", err)
	}
	cb, err := openModel(model, &p.pc, p.model, p.log, p.m.backends)
	if err != nil {
		fb.Close()
		return nil, fmt.Errorf("classifier: %w", err)
	}
	kcfg := p.kcfg
	kcfg.Labels = labels
	ks, err := pipeline.NewKeywordSpotterOn(fb, cb, kcfg)
	if err != nil {
		fb.Close()
		cb.Close()
		return nil, err
	}
	return ks, nil
}

// useLearned starts the pipeline on the learned version that active.json
// names, if it was trained from the configured model. A learned version
// that cannot be used leaves the configured model running: learning never
// stops a pipeline.
func (p *keywordPipeline) useLearned(store learnStore, baseSHA string) {
	a, err := store.active()
	if err != nil {
		p.log.Error("learned model state unreadable; running the configured model", zap.Error(err))
		return
	}
	if a.Version == 0 {
		return
	}
	if a.BaseSHA256 != baseSHA {
		p.log.Warn("the configured model changed since the learned versions were trained from it; running the configured model (train again to learn on it)",
			zap.Int("learned_version", a.Version))
		return
	}
	raw, labels, err := store.loadVersion(a.Version)
	if err == nil {
		var sw swapModel
		if sw, err = p.prepare(raw, labels, a.Version); err == nil {
			p.ks.Close()
			p.ks, p.version = sw.ks, sw.version
			p.running.Store(int64(sw.version))
			p.log.Info("running a learned model version", zap.Int("version", a.Version), zap.Strings("labels", labels))
			return
		}
	}
	p.log.Error("the active learned model cannot be used; running the configured model", zap.Int("version", a.Version), zap.Error(err))
}

// prepare builds a spotter for a learned model (or, version 0, the
// configured one) with the pipeline's settings.
func (p *keywordPipeline) prepare(raw []byte, labels []string, version int) (swapModel, error) {
	model, err := runtime.LoadModel(raw)
	if err != nil {
		return swapModel{}, fmt.Errorf("model version %d: %w", version, err)
	}
	ks, err := p.newSpotter(model, labels)
	if err != nil {
		return swapModel{}, fmt.Errorf("model version %d: %w", version, err)
	}
	return swapModel{ks: ks, version: version}, nil
}

// check tells whether the pipeline can run a model, without using it.
func (p *keywordPipeline) check(raw []byte, labels []string, version int) error {
	sw, err := p.prepare(raw, labels, version)
	if err == nil {
		sw.ks.Close()
	}
	return err
}

// use hands a prepared model to the running pipeline; it takes over
// before the next chunk.
func (p *keywordPipeline) use(sw swapModel) {
	for {
		select {
		case p.swap <- sw:
			if p.closed.Load() {
				// The pipeline stopped meanwhile; nobody takes it.
				p.drainSwap()
			}
			return
		default:
		}
		select {
		case old := <-p.swap: // an older swap not yet taken: the newer one wins
			old.ks.Close()
		default:
		}
	}
}

// recording collects the next samples of the stream for an example.
type recording struct {
	pcm       []int16 // capacity: the samples wanted
	done      chan struct{}
	abandoned atomic.Bool
	got       atomic.Int64
}

// recordNext returns the next n samples the pipeline receives. It fails
// when the microphone does not deliver them in time (a stalled or failed
// source) or when another recording is under way.
func (p *keywordPipeline) recordNext(ctx context.Context, n int) ([]int16, error) {
	r := &recording{pcm: make([]int16, 0, n), done: make(chan struct{})}
	select {
	case p.record <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(2 * time.Second):
		return nil, errors.New("the pipeline is not taking audio (is its source running?)")
	}
	want := time.Duration(n) * time.Second / time.Duration(p.rate)
	timer := time.NewTimer(want + 5*time.Second)
	defer timer.Stop()
	select {
	case <-r.done:
		return r.pcm, nil
	case <-ctx.Done():
		r.abandoned.Store(true)
		return nil, ctx.Err()
	case <-timer.C:
		r.abandoned.Store(true)
		return nil, fmt.Errorf("the microphone delivered %.2f s of the %.2f s asked for in %.0f s",
			float64(r.got.Load())/float64(p.rate), want.Seconds(), (want + 5*time.Second).Seconds())
	}
}

// tap adds a chunk to the recording under way.
func (p *keywordPipeline) tap(pcm []int16) {
	r := p.rec
	if r == nil {
		return
	}
	if r.abandoned.Load() {
		p.rec = nil
		return
	}
	n := min(len(pcm), cap(r.pcm)-len(r.pcm))
	r.pcm = append(r.pcm, pcm[:n]...)
	r.got.Store(int64(len(r.pcm)))
	if len(r.pcm) == cap(r.pcm) {
		close(r.done)
		p.rec = nil
	}
}

// offer queues a copy of pcm; it never blocks.
func (p *keywordPipeline) offer(pcm []int16, at time.Time) {
	var buf []int16
	select {
	case buf = <-p.free:
	default:
	}
	buf = append(buf[:0], pcm...)
	for {
		select {
		case p.queue <- audioChunk{buf, at}:
			return
		default:
		}
		select {
		case old := <-p.queue:
			p.m.audioDropped.WithLabelValues(p.name).Add(float64(len(old.pcm)) / float64(p.rate))
			p.recycle(old.pcm)
		default:
		}
	}
}

func (p *keywordPipeline) recycle(b []int16) {
	select {
	case p.free <- b:
	default:
	}
}

// close releases the models' backends, once run has returned.
func (p *keywordPipeline) close() {
	p.closed.Store(true)
	p.ks.Close()
	p.drainSwap()
}

// drainSwap releases a model handed over but not taken.
func (p *keywordPipeline) drainSwap() {
	select {
	case sw := <-p.swap:
		sw.ks.Close()
	default:
	}
}

func (p *keywordPipeline) run(ctx context.Context) {
	var chunkAt time.Time
	emit := func(e pipeline.KeywordEvent) {
		// The event's audio ended (Emitted - End) before the end of the
		// chunk that completed it, which arrived at chunkAt.
		delay := e.Emitted - e.End
		spoken := chunkAt.Add(-(e.Emitted - e.Start))
		ev := publish.Event{
			Kind: "keyword", Model: p.model, Time: spoken, Latency: delay + time.Since(chunkAt),
			Fields: map[string]any{
				"label": e.Keyword, "score": round3(e.Score), "pipeline": p.name,
				"start": spoken.UTC().Format(time.RFC3339Nano), "end": chunkAt.Add(-delay).UTC().Format(time.RFC3339Nano),
				"duration_ms": (e.End - e.Start).Milliseconds(), "model_version": p.version,
			},
		}
		p.m.events.WithLabelValues(p.name, "keyword").Inc()
		p.log.Info("keyword", zap.String("keyword", e.Keyword), zap.Float64("score", round3(e.Score)))
		if _, err := p.sink.Publish(ctx, ev); err != nil && ctx.Err() == nil {
			p.log.Error("publishing a keyword event failed", zap.Error(err))
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case sw := <-p.swap:
			p.ks.Close()
			p.ks, p.version = sw.ks, sw.version
			p.running.Store(int64(sw.version))
			p.log.Info("switched model", zap.Int("version", sw.version))
		case r := <-p.record:
			if p.rec != nil {
				// The learner runs one recording per pipeline at a time;
				// a newer one wins.
				p.rec.abandoned.Store(true)
			}
			p.rec = r
		case c := <-p.queue:
			chunkAt = c.at
			p.tap(c.pcm)
			start := time.Now()
			if err := p.ks.Process(c.pcm, emit); err != nil {
				p.log.Error("keyword pipeline failed on a chunk; resetting its stream state", zap.Error(err))
				p.ks.Reset()
			}
			p.m.inference.WithLabelValues(p.name, p.model).Observe(time.Since(start).Seconds())
			p.recycle(c.pcm)
		}
	}
}

func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }
