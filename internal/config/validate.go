package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"

	"github.com/edged/edged/internal/publish"
	"github.com/edged/edged/internal/sensors"
)

// Validate checks the whole configuration and returns every problem, each
// starting with its key path.
func (c *Config) Validate() []string {
	var p problems
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.add("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "console", "json":
	default:
		p.add("log.format", "%q is not console or json", c.Log.Format)
	}
	if c.StateDir == "" {
		p.add("state_dir", "must be set (the outbox lives there)")
	}
	if c.ModelsDir != "" {
		if st, err := os.Stat(c.ModelsDir); err != nil || !st.IsDir() {
			p.add("models_dir", "%q is not a directory", c.ModelsDir)
		}
	}
	c.validateMQTT(&p)
	if c.HTTP.Listen != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
			p.add("http.listen", "%q is not host:port", c.HTTP.Listen)
		}
	}

	names := map[string]*sensors.SourceConfig{}
	for i := range c.Sources {
		src := &c.Sources[i]
		key := fmt.Sprintf("sources[%d]", i)
		if err := src.Validate(); err != nil {
			var errs sensors.ConfigErrors
			if errors.As(err, &errs) {
				for _, e := range errs {
					p.add(key+"."+e.Key, "%s", e.Problem)
				}
			} else {
				p.add(key, "%v", err)
			}
		}
		if src.Name != "" && !nameRe.MatchString(src.Name) {
			p.add(key+".name", "%q must be letters, digits, - or _", src.Name)
		} else if names[src.Name] != nil {
			p.add(key+".name", "%q is used twice", src.Name)
		} else {
			names[src.Name] = src
		}
	}
	pnames := map[string]bool{}
	for i := range c.Pipelines {
		pl := &c.Pipelines[i]
		key := fmt.Sprintf("pipelines[%d]", i)
		if !nameRe.MatchString(pl.Name) {
			p.add(key+".name", "%q must be letters, digits, - or _", pl.Name)
		} else if pnames[pl.Name] {
			p.add(key+".name", "%q is used twice", pl.Name)
		}
		pnames[pl.Name] = true
		c.validatePipeline(key, pl, names, &p)
	}
	return p
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

type problems []string

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, key+": "+fmt.Sprintf(format, args...))
}

// validateMQTT checks the mqtt section with the publisher's own rules
// (brokers, TLS files, topics, outbox bounds), plus the embedded broker's
// address when no broker is configured.
func (c *Config) validateMQTT(p *problems) {
	for _, err := range c.PublishConfig(c.StateDir).ValidateAt("mqtt") {
		var fe *publish.FieldError
		if errors.As(err, &fe) && fe.Path == "mqtt.device_id" {
			fe.Path = "device.id" // set under device:, not mqtt:
		}
		*p = append(*p, err.Error())
	}
	if len(c.MQTT.Brokers) == 0 {
		if _, _, err := net.SplitHostPort(c.MQTT.EmbeddedBroker); err != nil {
			p.add("mqtt.embedded_broker", "%q is not host:port (needed: no broker is configured)", c.MQTT.EmbeddedBroker)
		}
	}
}

func (c *Config) validatePipeline(key string, pl *Pipeline, sources map[string]*sensors.SourceConfig, p *problems) {
	src := sources[pl.Source]
	switch {
	case pl.Source == "":
		p.add(key+".source", "must name a source")
	case src == nil:
		p.add(key+".source", "no source named %q", pl.Source)
	}
	needFile := func(field, path string) {
		if path == "" {
			p.add(key+"."+field, "must be set")
			return
		}
		if _, err := os.Stat(c.Resolve(path)); err != nil && !pl.Optional {
			p.add(key+"."+field, "%v", err)
		}
	}
	switch pl.Backend {
	case BackendAuto, BackendInt8, BackendArmNN:
	default:
		p.add(key+".backend", "%q is not auto, int8 or armnn", pl.Backend)
	}
	if pl.Threads < 0 || pl.Threads > 64 {
		p.add(key+".threads", "%d is not between 0 (the default, 1) and 64", pl.Threads)
	}
	if pl.Tolerance != nil && (*pl.Tolerance < 0 || *pl.Tolerance > 255) {
		p.add(key+".tolerance", "%d is not between 0 and 255 quantization steps", *pl.Tolerance)
	}
	switch pl.Kind {
	case KindKeyword:
		if src != nil && src.Type != sensors.TypeMicrophone {
			p.add(key+".source", "%q is a %s; a keyword pipeline needs a microphone", pl.Source, src.Type)
		}
		needFile("model", pl.Model)
		needFile("frontend", pl.Frontend)
		needFile("labels", pl.Labels)
		if pl.Threshold < 0 || pl.Threshold > 1 {
			p.add(key+".threshold", "%g is not in [0, 1]", pl.Threshold)
		}
		for l, t := range pl.Thresholds {
			if t < 0 || t > 1 {
				p.add(key+".thresholds."+l, "%g is not in [0, 1]", t)
			}
		}
		if pl.InferEvery < 0 {
			p.add(key+".infer_every", "must not be negative")
		}
	case KindClassify, KindPerson, KindDetect, KindMotion:
		if src != nil && src.Type != sensors.TypeCamera {
			p.add(key+".source", "%q is a %s; a %s pipeline needs a camera", pl.Source, src.Type, pl.Kind)
		}
		if pl.Kind != KindMotion {
			needFile("model", pl.Model)
			if pl.Labels != "" {
				needFile("labels", pl.Labels)
			}
		}
		if pl.Threshold < 0 || pl.Threshold > 1 || pl.Release < 0 || pl.Release > pl.Threshold {
			p.add(key+".threshold", "threshold %g and release %g must satisfy 0 <= release <= threshold <= 1", pl.Threshold, pl.Release)
		}
		if pl.MaxRate < 0 {
			p.add(key+".max_rate", "must not be negative")
		}
		if pl.Queue < 1 || pl.Queue > 64 {
			p.add(key+".queue", "%d is not between 1 and 64", pl.Queue)
		}
		switch pl.Fit {
		case "", "letterbox", "stretch", "crop":
		default:
			p.add(key+".fit", "%q is not letterbox, stretch or crop", pl.Fit)
		}
		switch pl.Resize {
		case "", "bilinear", "area":
		default:
			p.add(key+".resize", "%q is not bilinear or area", pl.Resize)
		}
		if pl.Motion.Threshold < 1 || pl.Motion.Threshold > 255 || pl.Motion.MinArea < 0 || pl.Motion.MinArea > 1 {
			p.add(key+".motion", "threshold must be 1-255 and min_area a fraction in [0, 1]")
		}
		for _, ref := range []struct{ field, name, typ string }{{"gate", pl.Gate, sensors.TypeGPIO}, {"led", pl.LED, sensors.TypeLED}} {
			if ref.name == "" {
				continue
			}
			if s := sources[ref.name]; s == nil || s.Type != ref.typ {
				p.add(key+"."+ref.field, "no %s source named %q", ref.typ, ref.name)
			}
		}
	default:
		p.add(key+".kind", "%q is not keyword, classify, person, detect or motion", pl.Kind)
	}
}
