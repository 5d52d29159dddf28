// Package daemon is `edged run`: it starts the MQTT publisher (or an
// embedded broker when none is configured), the sensor sources, and one
// pipeline per configured model, and keeps them running: sources that fail
// are restarted with back-off and reported on MQTT, events wait in the
// durable outbox while the broker is away, a new configuration is applied
// on reload without dropping the MQTT session, and shutdown finishes the
// inference in flight and persists the outbox.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/edged/edged/internal/config"
	"github.com/edged/edged/internal/publish"
	"github.com/edged/edged/internal/sensors"
)

// Options are what the command line adds to the configuration.
type Options struct {
	// Version is edged's version, for Home Assistant's device registry.
	Version string
	// PinLookup finds GPIO pins (sensors.LookupPin; tests pass fakes).
	PinLookup sensors.PinLookup
	// Ready is called once everything has started (systemd READY=1).
	Ready func()
}

// Daemon is a running edged.
type Daemon struct {
	opts   Options
	log    *zap.Logger
	reg    *prometheus.Registry
	m      *metrics
	health *health
	pub    *publish.Client
	slots  chan struct{}

	stopBroker func() // the embedded broker's, when one runs

	learn       *learner
	learnCtx    context.Context // ends at shutdown
	learnCancel context.CancelFunc

	mu     sync.Mutex
	cfg    *config.Config
	gen    *generation
	reload chan *config.Config
}

// generation is the sources and pipelines of one configuration; a reload
// replaces it whole.
type generation struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	names  []string // sources, for clearing their status
	leds   []*sensors.LED
	// closers release the pipelines' model backends once they stopped.
	closers []func()
	// keywords are the keyword pipelines by name, for the learner.
	keywords map[string]*keywordPipeline
}

// Start starts edged with cfg: publisher, sources and pipelines. Wait then
// runs it until ctx ends; Reload applies a new configuration meanwhile.
func Start(ctx context.Context, cfg *config.Config, log *zap.Logger, opts Options) (*Daemon, error) {
	if opts.PinLookup == nil {
		opts.PinLookup = sensors.LookupPin
	}
	d := &Daemon{
		opts: opts, log: log, reg: newRegistry(), cfg: cfg,
		health: &health{started: time.Now(), sources: map[string]sourceHealth{}},
		slots:  make(chan struct{}, goruntime.GOMAXPROCS(0)),
		reload: make(chan *config.Config, 1),
	}
	d.m = newMetrics(d.reg)
	d.learn = newLearner(d)
	d.learnCtx, d.learnCancel = context.WithCancel(context.WithoutCancel(ctx))
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}

	pc := cfg.PublishConfig(cfg.StateDir)
	if len(pc.Brokers) == 0 {
		// The broker outlives ctx: at shutdown the client still publishes
		// its offline status to it (see shutdown).
		stop, err := publish.StartEmbeddedBroker(context.WithoutCancel(ctx), cfg.MQTT.EmbeddedBroker, log.Named("broker"))
		if err != nil {
			return nil, fmt.Errorf("mqtt.embedded_broker: %w (is another broker running there? then set mqtt.brokers, or EDGED_MQTT_BROKERS=tcp://%s)", err, cfg.MQTT.EmbeddedBroker)
		}
		d.stopBroker = stop
		pc.Brokers = []string{"tcp://" + cfg.MQTT.EmbeddedBroker}
		log.Info("no broker configured: started the embedded broker", zap.String("addr", cfg.MQTT.EmbeddedBroker))
	}
	pub, err := publish.New(pc, publish.Options{
		Logger:     log.Named("mqtt"),
		Registerer: d.reg,
		OnCommand:  d.onCommand,
		Device:     publish.DeviceInfo{Name: cfg.Device.Name, Model: boardModel(), SWVersion: opts.Version},
		Entities:   entities(cfg),
		Metrics:    d.metricsFields,
	})
	if err != nil {
		d.closeBroker()
		return nil, err
	}
	d.pub = pub
	d.health.broker = func() string { return pub.State().String() }
	d.health.outbox = func() any { return pub.Outbox() }
	if cfg.HTTP.Listen != "" {
		if _, err := serveHTTP(ctx, cfg.HTTP.Listen, d.reg, d.health, log.Named("http")); err != nil {
			pub.Close(context.Background())
			d.closeBroker()
			return nil, fmt.Errorf("http.listen: %w", err)
		}
	}
	gen, err := d.startGeneration(ctx, cfg)
	if err != nil {
		pub.Close(context.Background())
		d.closeBroker()
		return nil, err
	}
	d.mu.Lock()
	d.gen = gen // commands (learn) may already be arriving
	d.mu.Unlock()
	log.Info("edged running", zap.String("device", cfg.Device.ID), zap.String("topics", pub.TopicPrefix()+"/#"),
		zap.Int("sources", len(cfg.Sources)), zap.Int("pipelines", len(cfg.Pipelines)), zap.Bool("simulate", cfg.Simulate))
	if opts.Ready != nil {
		opts.Ready()
	}
	return d, nil
}

// Reload applies a new, already validated configuration: the sources and
// pipelines are replaced; the MQTT session and the outbox stay. Changes to
// the mqtt or http sections need a restart and are logged as such.
func (d *Daemon) Reload(cfg *config.Config) {
	select {
	case d.reload <- cfg:
	default:
		// A reload is pending; the newest configuration wins.
		select {
		case <-d.reload:
		default:
		}
		d.reload <- cfg
	}
}

// Wait runs the daemon until ctx ends, then shuts it down: sources stop,
// inference in flight finishes, the outbox is flushed or persisted and the
// status goes offline.
func (d *Daemon) Wait(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return d.shutdown()
		case cfg := <-d.reload:
			d.apply(ctx, cfg)
		}
	}
}

// takeGeneration detaches the running generation, so that nothing (the
// learner) hands work to its pipelines while they stop.
func (d *Daemon) takeGeneration() *generation {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.gen
	d.gen = nil
	return g
}

func (d *Daemon) apply(ctx context.Context, cfg *config.Config) {
	d.mu.Lock()
	old := d.cfg
	d.mu.Unlock()
	if fmt.Sprint(old.PublishConfig(old.StateDir)) != fmt.Sprint(cfg.PublishConfig(cfg.StateDir)) || old.HTTP != cfg.HTTP || old.StateDir != cfg.StateDir {
		d.log.Warn("the mqtt, http or state_dir settings changed: they take effect when edged restarts; the rest is applied now")
	}
	d.stopGeneration(d.takeGeneration())
	gen, err := d.startGeneration(ctx, cfg)
	if err != nil {
		d.log.Error("the new configuration could not start; going back to the previous one", zap.Error(err))
		if gen, err = d.startGeneration(ctx, old); err != nil {
			d.log.Error("the previous configuration could not start again either", zap.Error(err))
			return
		}
		cfg = old
	}
	d.mu.Lock()
	d.gen, d.cfg = gen, cfg
	d.mu.Unlock()
	if err := d.pub.SetEntities(entities(cfg)); err != nil {
		d.log.Error("updating Home Assistant discovery", zap.Error(err))
	}
	d.log.Info("configuration reloaded", zap.Int("sources", len(cfg.Sources)), zap.Int("pipelines", len(cfg.Pipelines)))
}

func (d *Daemon) shutdown() error {
	d.log.Info("shutting down: stopping sources, finishing inference in flight")
	d.learnCancel()
	d.stopGeneration(d.takeGeneration())
	d.learn.wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := d.pub.Close(ctx)
	d.closeBroker()
	st := d.pub.Outbox()
	d.log.Info("stopped", zap.Int("events_waiting_in_outbox", st.Events))
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

func (d *Daemon) closeBroker() {
	if d.stopBroker != nil {
		d.stopBroker()
	}
}

func (d *Daemon) stopGeneration(g *generation) {
	if g == nil {
		return
	}
	g.cancel()
	g.wg.Wait()
	for _, l := range g.leds {
		l.Close()
	}
	for _, c := range g.closers {
		c()
	}
	for _, n := range g.names {
		d.health.removeSource(n)
		d.pub.RemoveSource(n)
	}
}

// onCommand handles <prefix>/cmd/<sub> messages.
func (d *Daemon) onCommand(sub string, payload []byte) {
	switch sub {
	case "reload":
		d.mu.Lock()
		path := d.cfg.Path
		d.mu.Unlock()
		if path == "" || path == config.EmbeddedName {
			d.log.Warn("reload requested over MQTT, but the configuration is the embedded default: nothing to reload")
			return
		}
		cfg, err := config.Load(path)
		if err != nil {
			d.log.Error("reload requested over MQTT: the configuration has problems; keeping the running one", zap.Error(err))
			return
		}
		d.log.Info("reload requested over MQTT")
		d.Reload(cfg)
	default:
		if action, ok := strings.CutPrefix(sub, "learn/"); ok {
			d.learn.handle(d.learnCtx, action, payload)
			return
		}
		d.log.Warn("unknown command", zap.String("command", sub), zap.Int("payload_bytes", len(payload)))
	}
}

// metricsFields are added to the periodic metrics message.
func (d *Daemon) metricsFields() map[string]any {
	d.health.mu.Lock()
	defer d.health.mu.Unlock()
	up := map[string]string{}
	for n, s := range d.health.sources {
		up[n] = s.State
	}
	return map[string]any{"uptime_s": int64(time.Since(d.health.started).Seconds()), "sources": up}
}

// boardModel reads the board's model (a Raspberry Pi's device tree), for
// Home Assistant's device registry.
func boardModel() string {
	b, err := os.ReadFile("/proc/device-tree/model")
	if err != nil {
		return ""
	}
	for len(b) > 0 && (b[len(b)-1] == 0 || b[len(b)-1] == '\n') {
		b = b[:len(b)-1]
	}
	return string(b)
}
