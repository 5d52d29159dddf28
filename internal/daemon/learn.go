package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/edged/edged/internal/config"
	"github.com/edged/edged/internal/finetune"
	"github.com/edged/edged/internal/pipeline"
	"github.com/edged/edged/internal/publish"
	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/sensors"
)

// On-device learning over MQTT. Commands go to <prefix>/cmd/learn/<action>
// with a JSON payload naming the pipeline; every answer, the progress of
// training and its result are events of kind "learn" (topic
// <prefix>/event/learn), carrying the command's id when it had one. See
// the README's "Teaching edged new keywords" for the protocol.

const (
	// maxRecordSeconds bounds a recorded example.
	maxRecordSeconds = 10
	// defaultRecordSeconds is the length of a recorded example when the
	// command gives none: the models' one-second window and some margin.
	defaultRecordSeconds = 1.5
	// maxUploadSeconds bounds an uploaded WAV.
	maxUploadSeconds = 30
	// progressInterval spaces training progress events.
	progressInterval = time.Second
)

// learnCommand is the payload of a learn command.
type learnCommand struct {
	// ID is echoed in the answers, so a client can match them.
	ID       string `json:"id"`
	Pipeline string `json:"pipeline"`
	// add: the example's label, and either Seconds of microphone audio to
	// record from now or an uploaded WAV file (base64 in JSON).
	Label   string  `json:"label"`
	Seconds float64 `json:"seconds"`
	WAV     []byte  `json:"wav"`
	// train: finetune's mode (imprint, head or deep), seed and most epochs.
	Mode   string `json:"mode"`
	Seed   uint64 `json:"seed"`
	Epochs int    `json:"epochs"`
	// rollback: the version to return to (0: the configured model);
	// without it, the one before the current.
	Version *int `json:"version"`

	model string // the pipeline's configured model, for the answers
}

// learner carries out learn commands. One command per pipeline runs at a
// time (a recording or a training takes a while); the others are refused
// with a busy answer rather than queued behind it.
type learner struct {
	d   *Daemon
	log *zap.Logger

	mu   sync.Mutex
	busy map[string]string // pipeline -> what it is doing
	stop map[string]context.CancelFunc
	wg   sync.WaitGroup
}

func newLearner(d *Daemon) *learner {
	return &learner{d: d, log: d.log.Named("learn"), busy: map[string]string{}, stop: map[string]context.CancelFunc{}}
}

// handle runs a learn command in the background; it returns at once.
func (l *learner) handle(ctx context.Context, action string, payload []byte) {
	var c learnCommand
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if len(bytes.TrimSpace(payload)) > 0 {
		if err := dec.Decode(&c); err != nil {
			l.answer(ctx, learnCommand{}, action, "error", map[string]any{"error": fmt.Sprintf("payload: %v", err)})
			return
		}
	}
	pc, cfg, err := l.pipelineConfig(c.Pipeline)
	if err != nil {
		l.answer(ctx, c, action, "error", map[string]any{"error": err.Error()})
		return
	}
	c.Pipeline, c.model = pc.Name, filepath.Base(pc.Model)
	store := newLearnStore(cfg.StateDir, pc.Name)
	switch action {
	case "status":
		l.answer(ctx, c, action, "ok", l.status(store, pc.Name))
	case "cancel":
		l.mu.Lock()
		cancel := l.stop[pc.Name]
		l.mu.Unlock()
		if cancel == nil {
			l.answer(ctx, c, action, "error", map[string]any{"error": "nothing to cancel: no training under way"})
			return
		}
		cancel()
		l.answer(ctx, c, action, "ok", nil)
	case "add", "train", "rollback", "clear":
		if !l.claim(pc.Name, action) {
			l.mu.Lock()
			doing := l.busy[pc.Name]
			l.mu.Unlock()
			l.answer(ctx, c, action, "busy", map[string]any{"error": fmt.Sprintf("pipeline %s is busy (%s); try again when it is done", pc.Name, doing)})
			return
		}
		jobCtx, cancel := context.WithCancel(ctx)
		l.mu.Lock()
		if action == "train" {
			l.stop[pc.Name] = cancel
		}
		l.mu.Unlock()
		l.wg.Go(func() {
			defer l.release(pc.Name, cancel)
			var err error
			switch action {
			case "add":
				err = l.add(jobCtx, c, pc, store)
			case "train":
				err = l.train(jobCtx, c, pc, cfg, store)
			case "rollback":
				err = l.rollback(jobCtx, c, pc, cfg, store)
			case "clear":
				var n int
				if n, err = store.clear(c.Label); err == nil {
					counts, _ := store.counts()
					l.answer(ctx, c, action, "ok", map[string]any{"removed": n, "examples": counts})
				}
			}
			if err != nil {
				l.log.Error("learn command failed", zap.String("action", action), zap.String("pipeline", pc.Name), zap.Error(err))
				status := "error"
				if action == "train" {
					status = "failed"
				}
				l.answer(ctx, c, action, status, map[string]any{"error": err.Error()})
			}
		})
	default:
		l.answer(ctx, c, action, "error", map[string]any{"error": fmt.Sprintf("unknown learn command %q (add, train, status, rollback, cancel, clear)", action)})
	}
}

func (l *learner) claim(name, doing string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.busy[name]; ok {
		return false
	}
	l.busy[name] = doing
	return true
}

func (l *learner) release(name string, cancel context.CancelFunc) {
	cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.busy, name)
	delete(l.stop, name)
}

// wait blocks until the commands under way have ended (their context is
// the daemon's, which shutdown has cancelled).
func (l *learner) wait() { l.wg.Wait() }

// pipelineConfig finds a keyword pipeline in the running configuration.
func (l *learner) pipelineConfig(name string) (config.Pipeline, *config.Config, error) {
	l.d.mu.Lock()
	cfg := l.d.cfg
	l.d.mu.Unlock()
	var kinds []string
	for _, pc := range cfg.Pipelines {
		if pc.Kind == config.KindKeyword {
			kinds = append(kinds, pc.Name)
		}
		if pc.Name == name && name != "" {
			if pc.Kind != config.KindKeyword {
				return pc, nil, fmt.Errorf("pipeline %q is a %s pipeline; edged learns on the device for keyword pipelines", name, pc.Kind)
			}
			return pc, cfg, nil
		}
	}
	if name == "" {
		if len(kinds) == 1 {
			return l.pipelineConfig(kinds[0])
		}
		return config.Pipeline{}, nil, fmt.Errorf(`name the pipeline ("pipeline": one of %q)`, kinds)
	}
	return config.Pipeline{}, nil, fmt.Errorf("no pipeline %q in the configuration (keyword pipelines: %q)", name, kinds)
}

// running returns the pipeline of that name in the running generation.
func (l *learner) running(name string) *keywordPipeline {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	if l.d.gen == nil {
		return nil
	}
	return l.d.gen.keywords[name]
}

func (l *learner) add(ctx context.Context, c learnCommand, pc config.Pipeline, store learnStore) error {
	if err := checkLabel(c.Label); err != nil {
		return err
	}
	const rate = 16000
	var pcm []int16
	source := "upload"
	if len(c.WAV) > 0 {
		var err error
		if pcm, _, err = sensors.DecodeWAV(bytes.NewReader(c.WAV), "the uploaded wav", rate); err != nil {
			return err
		}
		if len(pcm) == 0 {
			return errors.New("the uploaded wav holds no audio")
		}
		if len(pcm) > maxUploadSeconds*rate {
			return fmt.Errorf("the uploaded wav is %.1f s long; examples are at most %d s (a keyword and some margin)", float64(len(pcm))/rate, maxUploadSeconds)
		}
	} else {
		secs := c.Seconds
		if secs == 0 {
			secs = defaultRecordSeconds
		}
		if secs < 0.5 || secs > maxRecordSeconds || math.IsNaN(secs) {
			return fmt.Errorf("seconds %.3g: record between 0.5 and %d seconds", secs, maxRecordSeconds)
		}
		kp := l.running(pc.Name)
		if kp == nil {
			return fmt.Errorf("pipeline %s is not running, so there is no microphone audio to record (upload a wav instead)", pc.Name)
		}
		l.answer(ctx, c, "add", "recording", map[string]any{"label": c.Label, "seconds": secs})
		l.log.Info("recording an example", zap.String("pipeline", pc.Name), zap.String("label", c.Label), zap.Float64("seconds", secs))
		var err error
		if pcm, err = kp.recordNext(ctx, int(secs*rate)); err != nil {
			return fmt.Errorf("recording: %w", err)
		}
		source = "microphone"
	}
	name, err := store.addExample(c.Label, pcm, rate, time.Now())
	if err != nil {
		return err
	}
	counts, err := store.counts()
	if err != nil {
		return err
	}
	l.log.Info("example added", zap.String("pipeline", pc.Name), zap.String("label", c.Label), zap.String("example", name), zap.String("from", source))
	l.answer(ctx, c, "add", "ok", map[string]any{"label": c.Label, "example": name, "from": source,
		"seconds": float64(len(pcm)) / rate, "examples": counts})
	return nil
}

func (l *learner) train(ctx context.Context, c learnCommand, pc config.Pipeline, cfg *config.Config, store learnStore) error {
	// No mode: finetune chooses (head when only some classes have
	// examples, the usual case; deep when all are retrained).
	var mode finetune.Mode
	if c.Mode != "" {
		var err error
		if mode, err = finetune.ParseMode(c.Mode); err != nil {
			return err
		}
	}
	if c.Epochs < 0 || c.Epochs > 1000 {
		return fmt.Errorf("epochs %d: want 0 (the default) to 1000", c.Epochs)
	}
	base, err := os.ReadFile(cfg.Resolve(pc.Model))
	if err != nil {
		return err
	}
	frontend, err := runtime.LoadModelFile(cfg.Resolve(pc.Frontend))
	if err != nil {
		return err
	}
	baseLabels, err := pipeline.LoadLabels(cfg.Resolve(pc.Labels))
	if err != nil {
		return err
	}
	clips, err := store.clips(16000)
	if err != nil {
		return err
	}
	if len(clips) == 0 {
		return errors.New("no examples yet: add some first (learn/add)")
	}
	seed := c.Seed
	if seed == 0 {
		seed = 1
	}
	// Leave a core to the pipelines: they keep running while the model
	// trains.
	workers := max(1, goruntime.GOMAXPROCS(0)-1)
	var (
		progressMu sync.Mutex
		last       time.Time
	)
	opts := finetune.Options{Mode: mode, Seed: seed, Epochs: c.Epochs, BaseLabels: baseLabels, Workers: workers,
		Progress: func(p finetune.Progress) {
			progressMu.Lock()
			defer progressMu.Unlock()
			if time.Since(last) < progressInterval && p.Done != p.Total {
				return
			}
			last = time.Now()
			f := map[string]any{"stage": p.Stage, "done": p.Done, "total": p.Total}
			if p.Stage == "train" {
				f["train_loss"], f["val_loss"], f["val_accuracy"] = round3(p.TrainLoss), round3(p.ValLoss), round3(p.ValAccuracy)
			}
			l.answer(ctx, c, "train", "progress", f)
		}}
	modeName := string(mode)
	if modeName == "" {
		modeName = "auto" // the report in the "done" answer names the one that ran
	}
	l.log.Info("training", zap.String("pipeline", pc.Name), zap.String("mode", modeName), zap.Int("examples", len(clips)))
	l.answer(ctx, c, "train", "started", map[string]any{"mode": modeName, "clips": len(clips), "seed": seed})
	start := time.Now()
	res, err := finetune.Run(ctx, base, finetune.Data{Frontend: frontend, Clips: clips}, opts)
	if err != nil && ctx.Err() != nil {
		return errors.New("training cancelled; the running model stays")
	}
	if err != nil {
		if res != nil && errors.Is(err, finetune.ErrCheck) {
			l.answer(ctx, c, "train", "failed", map[string]any{"error": err.Error(), "report": res.Report})
			return nil
		}
		return err
	}
	// A model the pipeline cannot run is not kept.
	if kp := l.running(pc.Name); kp != nil {
		if err := kp.check(res.Model, res.Labels, 0); err != nil {
			return err
		}
	}
	n, err := store.saveVersion(res)
	if err != nil {
		return err
	}
	a, err := store.active()
	if err != nil {
		return err
	}
	if a.BaseSHA256 != sha256Hex(base) {
		a = activeRecord{} // versions trained from another model are not returned to
	}
	a.Previous = append(a.Previous, a.Version)
	a.Version, a.BaseSHA256 = n, sha256Hex(base)
	if err := store.setActive(a); err != nil {
		return err
	}
	if err := l.switchTo(pc.Name, func(kp *keywordPipeline) (swapModel, error) { return kp.prepare(res.Model, res.Labels, n) }); err != nil {
		return err
	}
	l.log.Info("trained and switched to a new model version", zap.String("pipeline", pc.Name), zap.Int("version", n),
		zap.Strings("labels", res.Labels), zap.Float64("int8_val_accuracy", res.Report.Int8ValAccuracy), zap.Duration("took", time.Since(start)))
	l.answer(ctx, c, "train", "done", map[string]any{"version": n, "labels": res.Labels, "report": res.Report,
		"seconds": round3(time.Since(start).Seconds()), "model_path": filepath.Join(store.versionDir(n), "model.tflite")})
	return nil
}

func (l *learner) rollback(ctx context.Context, c learnCommand, pc config.Pipeline, cfg *config.Config, store learnStore) error {
	a, err := store.active()
	if err != nil {
		return err
	}
	base, err := os.ReadFile(cfg.Resolve(pc.Model))
	if err != nil {
		return err
	}
	if a.Version != 0 && a.BaseSHA256 != sha256Hex(base) {
		a = activeRecord{}
	}
	from, to := a.Version, 0
	switch {
	case c.Version != nil:
		to = *c.Version
		if to < 0 {
			return fmt.Errorf("version %d: versions are 0 (the configured model) and up", to)
		}
		a.Previous = append(a.Previous, a.Version)
	case len(a.Previous) > 0:
		to = a.Previous[len(a.Previous)-1]
		a.Previous = a.Previous[:len(a.Previous)-1]
	case a.Version == 0:
		return errors.New("nothing to roll back: the configured model is running")
	}
	var build func(kp *keywordPipeline) (swapModel, error)
	if to == 0 {
		labels, err := pipeline.LoadLabels(cfg.Resolve(pc.Labels))
		if err != nil {
			return err
		}
		build = func(kp *keywordPipeline) (swapModel, error) { return kp.prepare(base, labels, 0) }
	} else {
		vs, err := store.versions()
		if err != nil {
			return err
		}
		if !slices.Contains(vs, to) {
			return fmt.Errorf("no version %d (stored: %v; 0 is the configured model)", to, vs)
		}
		raw, labels, err := store.loadVersion(to)
		if err != nil {
			return err
		}
		build = func(kp *keywordPipeline) (swapModel, error) { return kp.prepare(raw, labels, to) }
	}
	if kp := l.running(pc.Name); kp != nil {
		sw, err := build(kp)
		if err != nil {
			return err
		}
		sw.ks.Close()
	}
	a.Version, a.BaseSHA256 = to, sha256Hex(base)
	if err := store.setActive(a); err != nil {
		return err
	}
	if err := l.switchTo(pc.Name, build); err != nil {
		return err
	}
	l.log.Info("rolled back", zap.String("pipeline", pc.Name), zap.Int("from", from), zap.Int("to", to))
	l.answer(ctx, c, "rollback", "ok", map[string]any{"from_version": from, "version": to})
	return nil
}

// switchTo hands the version active.json now names to the running
// pipeline. A reload that replaced the pipeline meanwhile started the new
// one from active.json already, or gets the version here.
func (l *learner) switchTo(name string, build func(*keywordPipeline) (swapModel, error)) error {
	var done *keywordPipeline
	for {
		kp := l.running(name)
		if kp == nil || kp == done {
			return nil
		}
		sw, err := build(kp)
		if err != nil {
			return err
		}
		kp.use(sw)
		done = kp
	}
}

// status describes a pipeline's learning state.
func (l *learner) status(store learnStore, name string) map[string]any {
	f := map[string]any{}
	if counts, err := store.counts(); err == nil {
		f["examples"] = counts
	} else {
		f["error"] = err.Error()
	}
	if vs, err := store.versions(); err == nil {
		f["versions"] = vs
	}
	if a, err := store.active(); err == nil {
		f["active"] = a.Version
	}
	if kp := l.running(name); kp != nil {
		// The version the pipeline runs; a swap just made shows here
		// after the next audio chunk.
		f["running_version"] = kp.running.Load()
	}
	l.mu.Lock()
	if doing, ok := l.busy[name]; ok {
		f["busy"] = doing
	}
	l.mu.Unlock()
	return f
}

// answer publishes a learn event.
func (l *learner) answer(ctx context.Context, c learnCommand, action, status string, fields map[string]any) {
	f := map[string]any{"action": action, "status": status}
	if c.Pipeline != "" {
		f["pipeline"] = c.Pipeline
	}
	if c.ID != "" {
		f["id"] = c.ID
	}
	for k, v := range fields {
		f[k] = v
	}
	// Answers go out even when the command's own context has ended (a
	// cancelled training still reports that it stopped).
	if _, err := l.d.pub.Publish(context.WithoutCancel(ctx), publish.Event{Kind: "learn", Model: c.model, Fields: f}); err != nil {
		l.log.Error("publishing a learn answer failed", zap.Error(err))
	}
}
