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
	"github.com/edged/edged/internal/sensors"
)

// gate says whether a pipeline may infer now (a PIR input).
type gate interface{ Active() bool }

// flasher is an indicator LED.
type flasher interface{ Flash(d time.Duration) }

// queuedFrame is a copy of a source's frame with its arrival time.
type queuedFrame struct {
	f  *sensors.Frame
	at time.Time
}

// visionPipeline runs an image model (or motion detection alone) on a
// camera's frames: a bounded queue that drops the oldest frame when full,
// motion gating, an optional GPIO gate, a rate limit, one model instance,
// and the events the pipeline's kind publishes.
type visionPipeline struct {
	cfg   config.Pipeline
	model string
	vm    *pipeline.VisionModel // nil for kind motion
	md    *pipeline.MotionDetector
	pres  *pipeline.Presence
	gate  gate
	led   flasher
	log   *zap.Logger
	sink  eventSink
	m     *metrics
	slots chan struct{} // the shared inference worker pool

	queue chan queuedFrame
	free  chan *sensors.Frame

	lastInfer  time.Time
	lastForced time.Time
	moving     bool
	lastTop    int
}

func newVisionPipeline(cfg *config.Config, pc *config.Pipeline, log *zap.Logger, sink eventSink, m *metrics, slots chan struct{}) (*visionPipeline, error) {
	p := &visionPipeline{
		cfg: *pc, log: log, sink: sink, m: m, slots: slots, lastTop: -1,
		queue: make(chan queuedFrame, pc.Queue), free: make(chan *sensors.Frame, pc.Queue+2),
	}
	if pc.Kind == config.KindMotion || pc.Motion.Enabled {
		md, err := pipeline.NewMotionDetector(pipeline.MotionConfig{Threshold: uint8(pc.Motion.Threshold), MinArea: pc.Motion.MinArea})
		if err != nil {
			return nil, err
		}
		p.md = md
	}
	if pc.Kind == config.KindMotion {
		p.model = "motion"
		return p, nil
	}
	var labels pipeline.Labels
	if pc.Labels != "" {
		var err error
		if labels, err = pipeline.LoadLabels(cfg.Resolve(pc.Labels)); err != nil {
			return nil, err
		}
	}
	m2, err := runtime.LoadModelFile(cfg.Resolve(pc.Model))
	if err != nil {
		return nil, err
	}
	opts := pipeline.VisionOptions{Labels: labels, Threshold: float32(pc.Threshold), TopK: pc.TopK}
	switch pc.Kind {
	case config.KindClassify, config.KindPerson:
		opts.Kind = pipeline.KindClassifier
	}
	if pc.Fit != "" {
		if opts.Preprocess.Fit, err = pipeline.ParseFit(pc.Fit); err != nil {
			return nil, err
		}
		opts.FitSet = true
	}
	if pc.Resize != "" {
		if opts.Preprocess.Resize, err = pipeline.ParseResize(pc.Resize); err != nil {
			return nil, err
		}
	}
	if pc.Kind == config.KindPerson {
		opts.Threshold = 0 // every class's score is needed for presence
	}
	b, err := openModel(m2, pc, filepath.Base(pc.Model), log, m.backends)
	if err != nil {
		return nil, err
	}
	vm, err := pipeline.NewVisionModelOn(m2, b, opts)
	if err != nil {
		b.Close()
		return nil, err
	}
	if vm.Warning != "" {
		log.Warn("model and labels disagree", zap.String("warning", vm.Warning))
	}
	if pc.Kind == config.KindDetect && vm.Kind == pipeline.KindClassifier {
		vm.Close()
		return nil, fmt.Errorf("kind detect: the model's outputs are a classifier's (no SSD postprocess or YOLO head)")
	}
	if pc.Kind == config.KindPerson {
		if vm.Kind != pipeline.KindClassifier || vm.Labels.Index("person") < 0 {
			vm.Close()
			return nil, fmt.Errorf("kind person needs a classifier whose labels include \"person\"")
		}
		p.pres = &pipeline.Presence{On: float32(pc.Threshold), Off: float32(pc.Release)}
	}
	p.vm = vm
	p.model = filepath.Base(pc.Model)
	return p, nil
}

// offer queues a copy of the frame; when the queue is full the oldest
// waiting frame is dropped. It never blocks the source.
func (p *visionPipeline) offer(f *sensors.Frame, at time.Time) {
	var dst *sensors.Frame
	select {
	case dst = <-p.free:
	default:
		dst = &sensors.Frame{}
	}
	copyFrame(dst, f)
	for {
		select {
		case p.queue <- queuedFrame{dst, at}:
			return
		default:
		}
		select {
		case old := <-p.queue:
			p.m.framesDropped.WithLabelValues(p.cfg.Name).Inc()
			p.recycle(old.f)
		default:
		}
	}
}

func (p *visionPipeline) recycle(f *sensors.Frame) {
	select {
	case p.free <- f:
	default:
	}
}

// copyFrame makes dst an independent copy of src, reusing dst's buffer.
func copyFrame(dst, src *sensors.Frame) {
	data := append(dst.Data[:0], src.Data...)
	*dst = *src
	dst.Data = data
}

// close releases the model's backend, once run has returned.
func (p *visionPipeline) close() {
	if p.vm != nil {
		p.vm.Close()
	}
}

func (p *visionPipeline) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case q := <-p.queue:
			p.process(ctx, q)
			p.recycle(q.f)
		}
	}
}

func (p *visionPipeline) process(ctx context.Context, q queuedFrame) {
	name := p.cfg.Name
	if p.md != nil {
		ev, err := p.md.Detect(q.f)
		if err != nil {
			p.log.Error("motion detection failed", zap.Error(err))
			return
		}
		if !ev.Warmup && ev.Motion != p.moving {
			p.moving = ev.Motion
			p.publish(ctx, "motion", q.at, 0, map[string]any{
				"pipeline": name, "motion": ev.Motion, "changed": round3(ev.ChangedFraction),
				"box": map[string]int{"x1": ev.Box.Min.X, "y1": ev.Box.Min.Y, "x2": ev.Box.Max.X, "y2": ev.Box.Max.Y},
			})
		}
	}
	if p.vm == nil {
		return
	}
	forced := p.md != nil && q.at.Sub(p.lastForced) >= p.cfg.Motion.ForceEvery.D()
	switch {
	case p.gate != nil && !p.gate.Active():
		p.m.framesSkipped.WithLabelValues(name, "gate").Inc()
		return
	case p.md != nil && !p.moving && !forced:
		p.m.framesSkipped.WithLabelValues(name, "no_motion").Inc()
		return
	case p.cfg.MaxRate > 0 && q.at.Sub(p.lastInfer) < time.Duration(float64(time.Second)/p.cfg.MaxRate):
		p.m.framesSkipped.WithLabelValues(name, "rate").Inc()
		return
	}
	p.lastInfer = q.at
	if forced {
		p.lastForced = q.at
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	start := time.Now()
	res, err := p.vm.Run(q.f)
	<-p.slots
	p.m.inference.WithLabelValues(name, p.model).Observe(time.Since(start).Seconds())
	if err != nil {
		p.log.Error("inference failed", zap.Error(err))
		return
	}
	latency := time.Since(q.at)
	switch p.cfg.Kind {
	case config.KindPerson:
		score := float32(0)
		idx := p.vm.Labels.Index("person")
		for _, c := range res.Top {
			if c.Index == idx {
				score = c.Score
			}
		}
		present, changed := p.pres.Update(score)
		if changed {
			p.publish(ctx, "detection", q.at, latency, map[string]any{
				"pipeline": name, "label": "person", "present": present, "score": round3(float64(score)),
			})
		}
	case config.KindClassify:
		if len(res.Top) == 0 || res.Top[0].Index == p.lastTop {
			return
		}
		p.lastTop = res.Top[0].Index
		top := make([]map[string]any, len(res.Top))
		for i, c := range res.Top {
			top[i] = map[string]any{"index": c.Index, "label": p.vm.Label(c.Index), "score": round3(float64(c.Score))}
		}
		p.publish(ctx, "classification", q.at, latency, map[string]any{
			"pipeline": name, "label": p.vm.Label(res.Top[0].Index), "score": round3(float64(res.Top[0].Score)), "top": top,
		})
	default:
		if len(res.Detections) == 0 {
			return
		}
		dets := make([]map[string]any, len(res.Detections))
		for i, d := range res.Detections {
			n, s := d.Norm, d.Source
			dets[i] = map[string]any{
				"index": d.Class, "label": p.vm.Label(d.Class), "score": round3(float64(d.Score)),
				"box":    map[string]float64{"ymin": round3(float64(n.YMin)), "xmin": round3(float64(n.XMin)), "ymax": round3(float64(n.YMax)), "xmax": round3(float64(n.XMax))},
				"pixels": map[string]int{"x1": int(s.X1), "y1": int(s.Y1), "x2": int(s.X2), "y2": int(s.Y2)},
			}
		}
		p.publish(ctx, "detection", q.at, latency, map[string]any{
			"pipeline": name, "label": p.vm.Label(res.Detections[0].Class), "score": round3(float64(res.Detections[0].Score)),
			"detections": dets, "width": res.Transform.SrcW, "height": res.Transform.SrcH,
		})
	}
}

func (p *visionPipeline) publish(ctx context.Context, kind string, at time.Time, latency time.Duration, fields map[string]any) {
	p.m.events.WithLabelValues(p.cfg.Name, kind).Inc()
	if kind != "motion" && p.led != nil {
		p.led.Flash(200 * time.Millisecond)
	}
	if kind == "motion" {
		p.log.Info("motion", zap.Any("motion", fields["motion"]))
	} else {
		p.log.Info(kind, zap.Any("label", fields["label"]), zap.Any("score", fields["score"]), zap.Any("present", fields["present"]))
	}
	ev := publish.Event{Kind: kind, Model: p.model, Time: at, Latency: latency, Fields: fields}
	if _, err := p.sink.Publish(ctx, ev); err != nil && ctx.Err() == nil {
		p.log.Error("publishing an event failed", zap.Error(err))
	}
}
