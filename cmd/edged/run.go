package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/edged/edged/internal/config"
	"github.com/edged/edged/internal/daemon"
	"github.com/edged/edged/internal/sensors"
)

const defaultConfigPath = "/etc/edged/edged.yaml"

func runRun(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", "[--config FILE] [--simulate] [--check]", stderr)
	configPath := fs.String("config", defaultConfigPath, "configuration file")
	simulate := fs.Bool("simulate", false, "simulator mode: files and synthetic signals stand in for microphone, camera and GPIO.\nWithout --config, a built-in configuration spots keywords in the reference recordings, detects\npeople in the reference images and reports motion in a synthetic scene")
	check := fs.Bool("check", false, "check the configuration, print it with defaults filled in, and exit")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	configGiven := false
	fs.Visit(func(f *flag.Flag) { configGiven = configGiven || f.Name == "config" })

	var cfg *config.Config
	var err error
	if *simulate && !configGiven {
		cfg, err = simulatorConfig(stderr)
	} else {
		cfg, err = config.Load(*configPath)
		if errors.Is(err, os.ErrNotExist) {
			return usagef("configuration %s does not exist: write one (see configs/edged.yaml) or try `edged run --simulate`", *configPath)
		}
	}
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			return &usageError{msg: ce.Error()}
		}
		return err
	}
	if *simulate {
		cfg.Simulate = true
	}
	if *check {
		fmt.Fprintf(stdout, "%s: configuration is valid (%d sources, %d pipelines)\n", cfg.Path, len(cfg.Sources), len(cfg.Pipelines))
		return nil
	}

	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	defer log.Sync()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	vers, _, _ := buildInfo()
	d, err := daemon.Start(ctx, cfg, log, daemon.Options{Version: vers, Ready: func() {
		sddaemon.SdNotify(false, sddaemon.SdNotifyReady)
	}})
	if err != nil {
		log.Error("edged could not start", zap.Error(err))
		return err
	}

	// SIGHUP: load the file again; apply it only if it is valid.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if cfg.Path == config.EmbeddedName {
					log.Warn("SIGHUP: the configuration is the built-in simulator one; nothing to reload")
					continue
				}
				sddaemon.SdNotify(false, sddaemon.SdNotifyReloading)
				next, err := config.Load(cfg.Path)
				if err != nil {
					log.Error("SIGHUP: the configuration has problems; keeping the running one", zap.Error(err))
				} else {
					if *simulate {
						next.Simulate = true
					}
					log.Info("SIGHUP: reloading", zap.String("config", cfg.Path))
					d.Reload(next)
				}
				sddaemon.SdNotify(false, sddaemon.SdNotifyReady)
			}
		}
	}()
	go watchdog(ctx)

	err = d.Wait(ctx)
	sddaemon.SdNotify(false, sddaemon.SdNotifyStopping)
	return err
}

// watchdog tells systemd the daemon is alive at half the WatchdogSec
// interval, when the unit has one.
func watchdog(ctx context.Context) {
	interval, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sddaemon.SdNotify(false, sddaemon.SdNotifyWatchdog)
		}
	}
}

func newLogger(c config.Log, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, err
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if c.Format == "json" {
		enc = zapcore.NewJSONEncoder(ec)
	} else {
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)), nil
}

// simulatorConfig is the built-in configuration of `edged run --simulate`:
// on any machine it reports motion in a synthetic scene (a figure walks
// across for 8 s every 16 s); with the reference
// models and recordings (EDGED_TESTDATA, or ../shared/testdata from the
// working directory) it also spots keywords in the recordings, played a
// second apart in a loop, and detects people in two pictures shown in turn.
func simulatorConfig(stderr io.Writer) (*config.Config, error) {
	data := os.Getenv("EDGED_TESTDATA")
	if data == "" {
		data = filepath.Join("..", "shared", "testdata")
	}
	data, _ = filepath.Abs(data)
	state, err := os.UserCacheDir()
	if err != nil {
		state = os.TempDir()
	}
	state = filepath.Join(state, "edged-simulate")
	file := func(rel string) string { return filepath.Join(data, filepath.FromSlash(rel)) }
	have := func(rels ...string) bool {
		for _, r := range rels {
			if _, err := os.Stat(file(r)); err != nil {
				return false
			}
		}
		return true
	}
	c := config.Default()
	c.Path = config.EmbeddedName
	c.Device = config.Device{ID: "edged-sim", Name: "edged simulator"}
	c.StateDir = state
	c.Simulate = true
	c.Sources = []sensors.SourceConfig{{Name: "scene", Type: sensors.TypeCamera, Synthetic: sensors.SceneVisits, Width: 320, Height: 240, FPS: 5}}
	c.Pipelines = []config.Pipeline{{Name: "motion", Kind: config.KindMotion, Source: "scene"}}

	if have("models/micro_speech_quantized.tflite", "models/audio_preprocessor_int8.tflite", "models/micro_speech_labels.txt", "inputs/yes_1000ms.wav", "inputs/no_1000ms.wav") {
		clips := filepath.Join(state, "clips")
		if err := linkFiles(clips, file("inputs/yes_1000ms.wav"), file("inputs/no_1000ms.wav")); err != nil {
			return nil, err
		}
		c.Sources = append(c.Sources, sensors.SourceConfig{Name: "mic", Type: sensors.TypeMicrophone, WAV: clips, Loop: true, Gap: time.Second})
		c.Pipelines = append(c.Pipelines, config.Pipeline{Name: "wakeword", Kind: config.KindKeyword, Source: "mic",
			Model: file("models/micro_speech_quantized.tflite"), Frontend: file("models/audio_preprocessor_int8.tflite"), Labels: file("models/micro_speech_labels.txt")})
	}
	if have("models/person_detect.tflite", "models/person_detect_labels.txt", "inputs/person.png", "inputs/no_person.png") {
		pics := filepath.Join(state, "pictures")
		if err := linkFiles(pics, file("inputs/person.png"), file("inputs/no_person.png")); err != nil {
			return nil, err
		}
		c.Sources = append(c.Sources, sensors.SourceConfig{Name: "pictures", Type: sensors.TypeCamera, Images: pics, Loop: true, FPS: 0.5})
		c.Pipelines = append(c.Pipelines, config.Pipeline{Name: "person", Kind: config.KindPerson, Source: "pictures",
			Model: file("models/person_detect.tflite"), Labels: file("models/person_detect_labels.txt")})
	}
	if len(c.Pipelines) == 1 {
		fmt.Fprintf(stderr, "edged run --simulate: the reference models are not in %s (set EDGED_TESTDATA; see the README); reporting motion only\n", data)
	}
	if err := c.Finish(); err != nil {
		return nil, err
	}
	return c, nil
}

// linkFiles makes dir hold symbolic links to files (numbered, so a folder
// source shows them in this order), replacing what it held.
func linkFiles(dir string, files ...string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, f := range files {
		if err := os.Symlink(f, filepath.Join(dir, fmt.Sprintf("%02d-%s", i, filepath.Base(f)))); err != nil {
			return err
		}
	}
	return nil
}
