// Package config reads edged's YAML configuration: defaults for every key,
// environment overrides for secrets, and validation that reports every
// problem with its key path ("pipelines[1].source: no source named cam").
// configs/edged.yaml documents each key with its default. The mqtt section
// is checked by the publisher's own rules (PublishConfig).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/edged/edged/internal/publish"
	"github.com/edged/edged/internal/sensors"
)

// Config is the whole configuration.
type Config struct {
	Device    Device                 `yaml:"device"`
	Log       Log                    `yaml:"log"`
	StateDir  string                 `yaml:"state_dir"`
	ModelsDir string                 `yaml:"models_dir"`
	Simulate  bool                   `yaml:"simulate"`
	MQTT      MQTT                   `yaml:"mqtt"`
	HTTP      HTTP                   `yaml:"http"`
	Sources   []sensors.SourceConfig `yaml:"sources"`
	Pipelines []Pipeline             `yaml:"pipelines"`

	// Path is the file the configuration was read from ("" for the
	// embedded default); relative paths resolve against its directory.
	Path string `yaml:"-"`
}

// Device identifies the board.
type Device struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// MQTT configures publishing.
type MQTT struct {
	Brokers         []string  `yaml:"brokers"`
	EmbeddedBroker  string    `yaml:"embedded_broker"`
	ClientID        string    `yaml:"client_id"`
	Username        string    `yaml:"username"`
	Password        string    `yaml:"password"`
	TLS             TLS       `yaml:"tls"`
	TopicPrefix     string    `yaml:"topic_prefix"`
	QoS             int       `yaml:"qos"`
	KeepAlive       Duration  `yaml:"keepalive"`
	ConnectTimeout  Duration  `yaml:"connect_timeout"`
	Outbox          Outbox    `yaml:"outbox"`
	Discovery       Discovery `yaml:"discovery"`
	MetricsInterval Duration  `yaml:"metrics_interval"`
}

// TLS configures the broker connection's TLS.
type TLS struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Outbox bounds the durable outbox.
type Outbox struct {
	MaxBytes ByteSize `yaml:"max_bytes"`
	MaxAge   Duration `yaml:"max_age"`
}

// Discovery configures Home Assistant MQTT discovery.
type Discovery struct {
	Enabled bool   `yaml:"enabled"`
	Prefix  string `yaml:"prefix"`
}

// HTTP configures the metrics and health endpoint.
type HTTP struct {
	Listen string `yaml:"listen"`
}

// Pipeline kinds.
const (
	KindKeyword  = "keyword"
	KindClassify = "classify"
	KindPerson   = "person"
	KindDetect   = "detect"
	KindMotion   = "motion"
)

// Pipeline runs a model on a source.
type Pipeline struct {
	Name       string             `yaml:"name"`
	Kind       string             `yaml:"kind"`
	Source     string             `yaml:"source"`
	Model      string             `yaml:"model"`
	Frontend   string             `yaml:"frontend"`
	Labels     string             `yaml:"labels"`
	Threshold  float64            `yaml:"threshold"`
	Thresholds map[string]float64 `yaml:"thresholds"`
	// Keyword spotting.
	SmoothWindow Duration `yaml:"smooth_window"`
	Refractory   Duration `yaml:"refractory"`
	InferEvery   int      `yaml:"infer_every"`
	// Vision.
	Release  float64 `yaml:"release"`
	TopK     int     `yaml:"top_k"`
	Fit      string  `yaml:"fit"`
	Resize   string  `yaml:"resize"`
	MaxRate  float64 `yaml:"max_rate"`
	Queue    int     `yaml:"queue"`
	Motion   Motion  `yaml:"motion"`
	Gate     string  `yaml:"gate"`
	LED      string  `yaml:"led"`
	Optional bool    `yaml:"optional"`
	// Backend runs the model: auto (measure at load, keep the faster of
	// the pure-Go kernels and Arm NN that agrees), int8 or armnn.
	Backend string `yaml:"backend"`
	// Tolerance is how many quantization steps a delegate's outputs may
	// differ from the pure-Go kernels' for auto to keep it (default 3; 0:
	// bit-exact).
	Tolerance *int `yaml:"tolerance"`
	// Threads share the work of the model's large layers (default 1: the
	// daemon already runs pipelines in parallel, one core each).
	Threads int `yaml:"threads"`
}

// Backends a pipeline may ask for.
const (
	BackendAuto  = "auto"
	BackendInt8  = "int8"
	BackendArmNN = "armnn"
	// DefaultTolerance matches the runtime's DefaultTolerance.
	DefaultTolerance = 3
)

// Motion configures motion gating.
type Motion struct {
	Enabled    bool     `yaml:"enabled"`
	Threshold  int      `yaml:"threshold"`
	MinArea    float64  `yaml:"min_area"`
	ForceEvery Duration `yaml:"force_every"`
}

// Default returns the configuration every key falls back to.
func Default() *Config {
	return &Config{
		Log:      Log{Level: "info", Format: "console"},
		StateDir: "/var/lib/edged",
		MQTT: MQTT{
			EmbeddedBroker:  "127.0.0.1:1883",
			QoS:             1,
			KeepAlive:       Duration(30 * time.Second),
			ConnectTimeout:  Duration(10 * time.Second),
			Outbox:          Outbox{MaxBytes: 64 << 20, MaxAge: Duration(168 * time.Hour)},
			Discovery:       Discovery{Enabled: true, Prefix: "homeassistant"},
			MetricsInterval: Duration(60 * time.Second),
		},
		HTTP: HTTP{Listen: "127.0.0.1:9101"},
	}
}

func (p *Pipeline) applyDefaults() {
	if p.Backend == "" {
		p.Backend = BackendAuto
	}
	if p.Tolerance == nil {
		tol := DefaultTolerance
		p.Tolerance = &tol
	}
	switch p.Kind {
	case KindPerson:
		if p.Threshold == 0 {
			p.Threshold = 0.6
		}
		if p.Release == 0 {
			p.Release = p.Threshold - 0.2
		}
	case KindDetect:
		if p.Threshold == 0 {
			p.Threshold = 0.5
		}
	case KindClassify:
		if p.TopK == 0 {
			p.TopK = 3
		}
	}
	if p.Queue == 0 {
		p.Queue = 2
	}
	if p.Motion.Threshold == 0 {
		p.Motion.Threshold = 25
	}
	if p.Motion.MinArea == 0 {
		p.Motion.MinArea = 0.002
	}
	if p.Motion.ForceEvery == 0 {
		p.Motion.ForceEvery = Duration(30 * time.Second)
	}
}

// Environment variables that override the file (for secrets kept out of
// it, and containers).
var envOverrides = []struct {
	name string
	set  func(*Config, string)
}{
	{"EDGED_MQTT_USERNAME", func(c *Config, v string) { c.MQTT.Username = v }},
	{"EDGED_MQTT_PASSWORD", func(c *Config, v string) { c.MQTT.Password = v }},
	{"EDGED_MQTT_BROKERS", func(c *Config, v string) { c.MQTT.Brokers = strings.Split(v, ",") }},
	{"EDGED_DEVICE_ID", func(c *Config, v string) { c.Device.ID = v }},
	{"EDGED_LOG_LEVEL", func(c *Config, v string) { c.Log.Level = v }},
	{"EDGED_STATE_DIR", func(c *Config, v string) { c.StateDir = v }},
}

// Error lists every problem found in a configuration.
type Error struct {
	Source   string // file name, or "embedded default"
	Problems []string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %d problem(s):\n  %s", e.Source, len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// Load reads a configuration file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(b, path)
}

// Parse reads a configuration from YAML; name says where it came from (a
// file path, for resolving relative paths and for messages). The result has
// defaults filled, environment overrides applied, and is validated.
func Parse(b []byte, name string) (*Config, error) {
	c := Default()
	c.Path = name
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && err != io.EOF { // io.EOF: an empty file
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, &Error{Source: name, Problems: friendlyYAMLErrors(te.Errors)}
		}
		return nil, &Error{Source: name, Problems: []string{err.Error()}}
	}
	for i := range c.Sources {
		src := &c.Sources[i]
		src.WAV, src.Images = c.resolveFile(src.WAV), c.resolveFile(src.Images)
	}
	if err := c.Finish(); err != nil {
		return nil, err
	}
	return c, nil
}

// Finish completes a configuration built in code or decoded from YAML:
// pipeline defaults, environment overrides and derived names, then
// validation. Path must be set.
func (c *Config) Finish() error {
	for i := range c.Pipelines {
		c.Pipelines[i].applyDefaults()
	}
	for _, o := range envOverrides {
		if v, ok := os.LookupEnv(o.name); ok && v != "" {
			o.set(c, v)
		}
	}
	if c.Device.ID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "edged"
		}
		c.Device.ID = sanitizeID(host)
	}
	if c.Device.Name == "" {
		c.Device.Name = "edged " + c.Device.ID
	}
	if c.MQTT.ClientID == "" {
		c.MQTT.ClientID = "edged-" + c.Device.ID
	}
	if c.MQTT.TopicPrefix == "" {
		c.MQTT.TopicPrefix = "edged/" + c.Device.ID
	}
	if problems := c.Validate(); len(problems) > 0 {
		return &Error{Source: c.Path, Problems: problems}
	}
	return nil
}

var yamlFieldRe = regexp.MustCompile(`^line (\d+): field (\S+) not found in type config\.(\w+)$`)

func friendlyYAMLErrors(errs []string) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		if m := yamlFieldRe.FindStringSubmatch(e); m != nil {
			out[i] = fmt.Sprintf("line %s: unknown key %q (in a %s)", m[1], m[2], strings.ToLower(m[3]))
			continue
		}
		out[i] = e
	}
	return out
}

var idRe = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

func sanitizeID(s string) string {
	return strings.Trim(idRe.ReplaceAllString(s, "_"), "_")
}

// Resolve makes a path from the configuration absolute: relative model and
// label paths resolve against ModelsDir, else the configuration file's
// directory.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	base := c.ModelsDir
	if base == "" && c.Path != "" && c.Path != EmbeddedName {
		base = filepath.Dir(c.Path)
	}
	return filepath.Join(base, p)
}

// PublishConfig maps the mqtt section onto the publisher's configuration,
// with the outbox in stateDir.
func (c *Config) PublishConfig(stateDir string) publish.Config {
	m := &c.MQTT
	qos := m.QoS
	return publish.Config{
		Brokers:  m.Brokers,
		ClientID: m.ClientID,
		Username: m.Username,
		Password: m.Password,
		TLS: publish.TLSConfig{
			CAFile: m.TLS.CAFile, CertFile: m.TLS.CertFile, KeyFile: m.TLS.KeyFile,
			InsecureSkipVerify: m.TLS.InsecureSkipVerify,
		},
		DeviceID:        c.Device.ID,
		TopicPrefix:     m.TopicPrefix,
		QoS:             &qos,
		KeepAlive:       m.KeepAlive.D(),
		ConnectTimeout:  m.ConnectTimeout.D(),
		MetricsInterval: m.MetricsInterval.D(),
		Outbox: publish.OutboxConfig{
			Dir:      filepath.Join(stateDir, "outbox"),
			MaxBytes: int64(m.Outbox.MaxBytes),
			MaxAge:   m.Outbox.MaxAge.D(),
		},
		Discovery: publish.DiscoveryConfig{Enabled: m.Discovery.Enabled, Prefix: m.Discovery.Prefix},
	}.WithDefaults()
}

// resolveFile makes a source's file path absolute against the configuration
// file's directory.
func (c *Config) resolveFile(p string) string {
	if p == "" || filepath.IsAbs(p) || c.Path == "" || c.Path == EmbeddedName {
		return p
	}
	return filepath.Join(filepath.Dir(c.Path), p)
}

// EmbeddedName is the Path of the embedded default configuration.
const EmbeddedName = "embedded default"

// Duration is a time.Duration written as "500ms", "1h30m".
type Duration time.Duration

// D is the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses a Go duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 500ms, 30s, 168h)", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) String() string { return time.Duration(d).String() }

// ByteSize is a size written as "64MiB", "512KB" or a plain number of bytes.
type ByteSize int64

var sizeRe = regexp.MustCompile(`^\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?B?)\s*$`)

// UnmarshalYAML parses a size with an optional unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	// Units are binary whether written KB or KiB, as sizes of disks and
	// memory on a board usually are.
	m := sizeRe.FindStringSubmatch(strings.ToUpper(s))
	if m == nil {
		return fmt.Errorf("line %d: %q is not a size (e.g. 64MiB, 512KB, 1000000)", n.Line, s)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	unit := strings.TrimSuffix(strings.TrimSuffix(m[2], "B"), "I")
	mult := map[string]float64{"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[unit]
	*b = ByteSize(v * mult)
	return nil
}
