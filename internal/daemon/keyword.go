package daemon

import (
	"context"
	"fmt"
	"path/filepath"
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
// blocked.
type keywordPipeline struct {
	name, model string
	ks          *pipeline.KeywordSpotter
	log         *zap.Logger
	sink        eventSink
	m           *metrics
	rate        int

	queue chan audioChunk
	free  chan []int16
}

const keywordQueue = 50 // chunks; about a second of audio from arecord

func newKeywordPipeline(cfg *config.Config, pc *config.Pipeline, rate int, log *zap.Logger, sink eventSink, m *metrics) (*keywordPipeline, error) {
	labels, err := pipeline.LoadLabels(cfg.Resolve(pc.Labels))
	if err != nil {
		return nil, err
	}
	model, err := runtime.LoadModelFile(cfg.Resolve(pc.Model))
	if err != nil {
		return nil, err
	}
	frontend, err := runtime.LoadModelFile(cfg.Resolve(pc.Frontend))
	if err != nil {
		return nil, err
	}
	if rate != 16000 {
		return nil, fmt.Errorf("source rate %d Hz: the keyword models take 16000 Hz audio (set the source's rate to 16000)", rate)
	}
	name := filepath.Base(pc.Model)
	fb, err := openModel(frontend, pc, filepath.Base(pc.Frontend), log, m.backends)
	if err != nil {
		return nil, fmt.Errorf("frontend: %w", err)
	}
	cb, err := openModel(model, pc, name, log, m.backends)
	if err != nil {
		fb.Close()
		return nil, fmt.Errorf("classifier: %w", err)
	}
	ks, err := pipeline.NewKeywordSpotterOn(fb, cb, pipeline.KeywordConfig{
		Labels: labels, SampleRate: rate, InferEvery: pc.InferEvery, SmoothWindow: pc.SmoothWindow.D(),
		Threshold: pc.Threshold, Thresholds: pc.Thresholds, Refractory: pc.Refractory.D(),
	})
	if err != nil {
		fb.Close()
		cb.Close()
		return nil, err
	}
	p := &keywordPipeline{
		name: pc.Name, model: name, ks: ks, log: log, sink: sink, m: m, rate: rate,
		queue: make(chan audioChunk, keywordQueue), free: make(chan []int16, keywordQueue+2),
	}
	return p, nil
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
func (p *keywordPipeline) close() { p.ks.Close() }

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
				"duration_ms": (e.End - e.Start).Milliseconds(),
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
		case c := <-p.queue:
			chunkAt = c.at
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
