package daemon

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/edged/edged/internal/config"
	"github.com/edged/edged/internal/pipeline"
	"github.com/edged/edged/internal/publish"
	"github.com/edged/edged/internal/sensors"
)

// startGeneration builds every pipeline (loading its models, so a bad model
// fails here, before anything runs) and then starts the sources that feed
// them, each under supervision.
func (d *Daemon) startGeneration(parent context.Context, cfg *config.Config) (*generation, error) {
	ctx, cancel := context.WithCancel(parent)
	g := &generation{cancel: cancel, keywords: map[string]*keywordPipeline{}}
	fail := func(err error) (*generation, error) {
		cancel()
		g.wg.Wait()
		for _, l := range g.leds {
			l.Close()
		}
		for _, c := range g.closers {
			c()
		}
		return nil, err
	}
	d.m.backends.reset()

	byName := map[string]*sensors.SourceConfig{}
	for i := range cfg.Sources {
		sc := d.sourceConfig(cfg, &cfg.Sources[i])
		byName[sc.Name] = &sc
	}
	gates := map[string]*sensors.GPIOInput{}
	leds := map[string]*sensors.LED{}
	for name, sc := range byName {
		switch sc.Type {
		case sensors.TypeGPIO:
			in, err := sensors.NewGPIOInput(*sc, d.opts.PinLookup)
			if err != nil {
				return fail(fmt.Errorf("source %s: %w", name, err))
			}
			gates[name] = in
		case sensors.TypeLED:
			l, err := sensors.NewLED(*sc, d.opts.PinLookup)
			if err != nil {
				return fail(fmt.Errorf("source %s: %w", name, err))
			}
			leds[name] = l
			g.leds = append(g.leds, l)
		}
	}

	audioSubs := map[string][]*keywordPipeline{}
	frameSubs := map[string][]*visionPipeline{}
	for i := range cfg.Pipelines {
		pc := &cfg.Pipelines[i]
		log := d.log.With(zap.String("pipeline", pc.Name))
		sc := byName[pc.Source]
		switch pc.Kind {
		case config.KindKeyword:
			kp, err := newKeywordPipeline(cfg, pc, sc.WithDefaults().Rate, log, d.pub, d.m)
			if err != nil {
				if pc.Optional {
					log.Warn("optional pipeline not started", zap.Error(err))
					continue
				}
				return fail(fmt.Errorf("pipeline %s: %w", pc.Name, err))
			}
			audioSubs[pc.Source] = append(audioSubs[pc.Source], kp)
			g.closers = append(g.closers, kp.close)
			g.keywords[pc.Name] = kp
			g.wg.Go(func() { kp.run(ctx) })
		default:
			vp, err := newVisionPipeline(cfg, pc, log, d.pub, d.m, d.slots)
			if err != nil {
				if pc.Optional {
					log.Warn("optional pipeline not started", zap.Error(err))
					continue
				}
				return fail(fmt.Errorf("pipeline %s: %w", pc.Name, err))
			}
			if pc.Gate != "" {
				vp.gate = gates[pc.Gate]
			}
			if pc.LED != "" {
				vp.led = ledFlasher{leds[pc.LED], log}
			}
			frameSubs[pc.Source] = append(frameSubs[pc.Source], vp)
			g.closers = append(g.closers, vp.close)
			g.wg.Go(func() { vp.run(ctx) })
		}
		log.Info("pipeline ready", zap.String("kind", pc.Kind), zap.String("model", pc.Model), zap.String("source", pc.Source))
	}

	for name, sc := range byName {
		opts := sc.SuperviseOptions()
		opts.Logger = d.log.Named("source")
		opts.OnStatus = d.sourceStatus
		g.names = append(g.names, name)
		switch sc.Type {
		case sensors.TypeMicrophone:
			subs := audioSubs[name]
			if len(subs) == 0 {
				d.log.Warn("source feeds no pipeline; not started", zap.String("source", name))
				continue
			}
			src, err := sensors.NewAudioSource(*sc)
			if err != nil {
				return fail(fmt.Errorf("source %s: %w", name, err))
			}
			g.wg.Go(func() {
				sensors.Supervise(ctx, sensors.Source[[]int16](src), func(pcm []int16) {
					now := time.Now()
					for _, p := range subs {
						p.offer(pcm, now)
					}
				}, opts)
			})
		case sensors.TypeCamera:
			subs := frameSubs[name]
			if len(subs) == 0 {
				d.log.Warn("source feeds no pipeline; not started", zap.String("source", name))
				continue
			}
			src, err := sensors.NewFrameSource(*sc)
			if err != nil {
				return fail(fmt.Errorf("source %s: %w", name, err))
			}
			frames := d.m.framesIn.WithLabelValues(name)
			g.wg.Go(func() {
				sensors.Supervise(ctx, sensors.Source[*sensors.Frame](src), func(f *sensors.Frame) {
					frames.Inc()
					now := time.Now()
					for _, p := range subs {
						p.offer(f, now)
					}
				}, opts)
			})
		case sensors.TypeGPIO:
			in := gates[name]
			g.wg.Go(func() {
				sensors.Supervise(ctx, sensors.Source[sensors.GPIOEvent](in), func(ev sensors.GPIOEvent) {
					d.log.Info("gpio input changed", zap.String("source", name), zap.Bool("active", ev.Active))
				}, opts)
			})
		}
	}
	return g, nil
}

// sourceConfig completes a configured source: defaults, a logger, and in
// simulator mode files and synthetic signals standing in for hardware.
func (d *Daemon) sourceConfig(cfg *config.Config, s *sensors.SourceConfig) sensors.SourceConfig {
	sc := *s
	sc.Logger = d.log.Named("source").With(zap.String("source", s.Name))
	if cfg.Simulate {
		switch {
		case s.Type == sensors.TypeMicrophone && s.WAV == "" && s.Synthetic == "":
			sc.Command, sc.Device, sc.Synthetic = nil, "", "noise:0.01"
			d.log.Info("simulator: microphone replaced by quiet synthetic noise", zap.String("source", s.Name))
		case s.Type == sensors.TypeCamera && s.Images == "" && s.Synthetic == "":
			sc.Command, sc.Device, sc.Synthetic, sc.Format, sc.Stride, sc.Timeout = nil, "", sensors.SceneShapes, "", 0, 0
			d.log.Info("simulator: camera replaced by synthetic moving shapes", zap.String("source", s.Name))
		}
	}
	return sc.WithDefaults()
}

// sourceStatus reports a source's state changes on MQTT, in /healthz and in
// the metrics.
func (d *Daemon) sourceStatus(st sensors.Status) {
	state := st.State.String()
	d.health.setSource(st.Source, state, st.Err)
	up := 0.0
	if st.State == sensors.StateRunning {
		up = 1
	}
	d.m.sourceUp.WithLabelValues(st.Source).Set(up)
	if st.State == sensors.StateFailed && st.Attempt > 1 {
		d.m.sourceRestart.WithLabelValues(st.Source).Inc()
	}
	if err := d.pub.SetSourceStatus(st.Source, state, st.Err); err != nil {
		d.log.Debug("source status not published", zap.Error(err))
	}
}

// ledFlasher adapts a LED to the pipelines' flasher, logging failures.
type ledFlasher struct {
	l   *sensors.LED
	log *zap.Logger
}

func (f ledFlasher) Flash(d time.Duration) {
	if f.l == nil {
		return
	}
	if err := f.l.Flash(d); err != nil {
		f.log.Warn("LED flash failed", zap.Error(err))
	}
}

// entities are the Home Assistant entities of a configuration: per keyword
// pipeline an event entity and a last-keyword sensor, per person pipeline
// an occupancy binary sensor, per detector an event entity, per motion
// detection a motion binary sensor.
func entities(cfg *config.Config) []publish.Entity {
	var out []publish.Entity
	for _, p := range cfg.Pipelines {
		model := modelName(p)
		switch p.Kind {
		case config.KindKeyword:
			out = append(out,
				publish.Sensor(p.Name+"_last_keyword", p.Name+" last keyword", "keyword", model, "label"),
				publish.EventEntity(p.Name+"_keyword", p.Name+" keyword", "keyword", model, "label", keywordLabels(cfg, &p)))
		case config.KindPerson:
			out = append(out, stateBinarySensor(p.Name+"_person", p.Name+" person", "detection", p.Name, "present", "occupancy"))
		case config.KindDetect:
			out = append(out, publish.Sensor(p.Name+"_last_object", p.Name+" last object", "detection", model, "label"))
		case config.KindClassify:
			out = append(out, publish.Sensor(p.Name+"_class", p.Name+" class", "classification", model, "label"))
		}
		if p.Kind == config.KindMotion || p.Motion.Enabled {
			out = append(out, stateBinarySensor(p.Name+"_motion", p.Name+" motion", "motion", p.Name, "motion", "motion"))
		}
	}
	return out
}

func modelName(p config.Pipeline) string {
	if p.Kind == config.KindMotion {
		return "motion"
	}
	return baseName(p.Model)
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// stateBinarySensor is a binary sensor whose state is a boolean field of a
// pipeline's events on topic: the person pipelines' "present" and the
// motion events' "motion" say both on and off.
func stateBinarySensor(objectID, name, topic, pipelineName, field, deviceClass string) publish.Entity {
	q := func(s string) string { return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'" }
	return publish.Entity{Component: "binary_sensor", ObjectID: objectID, Name: name, Topic: topic, Config: map[string]any{
		// Home Assistant ignores an empty rendering, so other pipelines'
		// events on the same topic leave the state alone.
		"value_template": fmt.Sprintf("{%% if value_json.pipeline == %s %%}{{ 'ON' if value_json[%s] else 'OFF' }}{%% endif %%}", q(pipelineName), q(field)),
		"payload_on":     "ON",
		"payload_off":    "OFF",
		"device_class":   deviceClass,
	}}
}

// keywordLabels are a keyword model's labels minus silence and unknown, for
// Home Assistant's event types (none if the file cannot be read now).
func keywordLabels(cfg *config.Config, p *config.Pipeline) []string {
	labels, err := pipeline.LoadLabels(cfg.Resolve(p.Labels))
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range labels {
		if !pipeline.IsFillerLabel(l) {
			out = append(out, l)
		}
	}
	return out
}
