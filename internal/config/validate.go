package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"

	"github.com/edged/edged/internal/publish"
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

	names := map[string]*Source{}
	for i := range c.Sources {
		s := &c.Sources[i]
		key := fmt.Sprintf("sources[%d]", i)
		if !nameRe.MatchString(s.Name) {
			p.add(key+".name", "%q must be letters, digits, - or _", s.Name)
		} else if names[s.Name] != nil {
			p.add(key+".name", "%q is used twice", s.Name)
		} else {
			names[s.Name] = s
		}
		s.validate(key, &p)
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

func (s *Source) inputs() []string {
	var set []string
	if len(s.Command) > 0 {
		set = append(set, "command")
	}
	if s.Device != "" {
		set = append(set, "device")
	}
	if s.WAV != "" {
		set = append(set, "wav")
	}
	if s.Images != "" {
		set = append(set, "images")
	}
	if s.Synthetic != "" {
		set = append(set, "synthetic")
	}
	return set
}

func (s *Source) validate(key string, p *problems) {
	in := s.inputs()
	switch s.Type {
	case SourceMicrophone:
		if s.Device != "" || s.Images != "" {
			p.add(key, "a microphone takes command, wav or synthetic")
		} else if len(in) != 1 {
			p.add(key, "a microphone needs exactly one of command, wav or synthetic (has %v)", in)
		}
		if s.Rate < 8000 || s.Rate > 192000 {
			p.add(key+".rate", "%d Hz is not a sample rate", s.Rate)
		}
		if s.Synthetic != "" && !synthAudioRe.MatchString(s.Synthetic) {
			p.add(key+".synthetic", "%q is not tone:<Hz>, noise or silence", s.Synthetic)
		}
	case SourceCamera:
		if s.WAV != "" {
			p.add(key, "a camera takes device, command, images or synthetic")
		} else if len(in) != 1 {
			p.add(key, "a camera needs exactly one of device, command, images or synthetic (has %v)", in)
		}
		if s.Width <= 0 || s.Height <= 0 || s.Width > 8192 || s.Height > 8192 {
			p.add(key, "size %dx%d is not valid", s.Width, s.Height)
		}
		if s.FPS <= 0 || s.FPS > 240 {
			p.add(key+".fps", "%g is not a frame rate", s.FPS)
		}
		if s.Format != "" {
			switch strings.ToLower(s.Format) {
			case "yuyv", "mjpeg", "i420", "yuv420", "nv12", "rgb24", "bgr24", "gray8", "gray":
			default:
				p.add(key+".format", "%q is not yuyv, mjpeg, i420, nv12, rgb24, bgr24 or gray8", s.Format)
			}
		}
		if len(s.Command) > 0 && s.Format == "" {
			p.add(key+".format", "a camera command needs the pixel format it writes")
		}
		if s.Synthetic != "" && s.Synthetic != "shapes" {
			p.add(key+".synthetic", "%q is not shapes", s.Synthetic)
		}
	case SourceGPIO, SourceLED:
		if s.Pin == "" {
			p.add(key+".pin", "a %s needs a pin (e.g. GPIO17)", s.Type)
		}
		if len(in) > 0 {
			p.add(key, "a %s takes only pin (and pull)", s.Type)
		}
		if s.Type == SourceGPIO {
			switch s.Pull {
			case "up", "down", "none":
			default:
				p.add(key+".pull", "%q is not up, down or none", s.Pull)
			}
		}
	default:
		p.add(key+".type", "%q is not microphone, camera, gpio or led", s.Type)
	}
	for _, f := range []struct{ key, path string }{{"wav", s.WAV}, {"images", s.Images}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			p.add(key+"."+f.key, "%v", err)
		}
	}
	if s.RestartMin.D() <= 0 || s.RestartMax.D() < s.RestartMin.D() {
		p.add(key, "restart_min must be positive and restart_max at least restart_min")
	}
}

var synthAudioRe = regexp.MustCompile(`^(tone:\d+(\.\d+)?|noise|silence)$`)

func (c *Config) validatePipeline(key string, pl *Pipeline, sources map[string]*Source, p *problems) {
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
	switch pl.Kind {
	case KindKeyword:
		if src != nil && src.Type != SourceMicrophone {
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
		if src != nil && src.Type != SourceCamera {
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
		for _, ref := range []struct{ field, name, typ string }{{"gate", pl.Gate, SourceGPIO}, {"led", pl.LED, SourceLED}} {
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
