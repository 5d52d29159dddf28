package publish

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Config is the MQTT section of edged's configuration. The daemon fills it
// from YAML (the yaml tags give the key names under `mqtt:`); WithDefaults
// fills what was left out and Validate reports every problem.
type Config struct {
	// Brokers are tried in order on every (re)connection: tcp:// or mqtt://
	// (plain), ssl://, tls:// or mqtts:// (TLS), ws:// or wss://
	// (WebSocket). Empty is valid in the YAML (the daemon then starts the
	// embedded broker and fills in its address) but not for New.
	Brokers  []string  `yaml:"brokers"`
	ClientID string    `yaml:"client_id"` // default "edged-<device_id>"
	Username string    `yaml:"username"`
	Password string    `yaml:"password"`
	TLS      TLSConfig `yaml:"tls"`
	// DeviceID names this board in topics, payloads and Home Assistant
	// identifiers: letters, digits, '_' and '-'.
	DeviceID string `yaml:"device_id"`
	// TopicPrefix is the root of every topic this device uses; default
	// "edged/<device_id>".
	TopicPrefix string `yaml:"topic_prefix"`
	// QoS of events (0, 1 or 2); default 1. Status, source status and
	// discovery messages are always QoS 1, metrics QoS 0.
	QoS            *int          `yaml:"qos"`
	KeepAlive      time.Duration `yaml:"keep_alive"`      // default 30s
	ConnectTimeout time.Duration `yaml:"connect_timeout"` // default 10s
	// MaxReconnectInterval caps the back-off between connection attempts
	// (1 s doubling); default 30s.
	MaxReconnectInterval time.Duration `yaml:"max_reconnect_interval"`
	// MetricsInterval is the period of the `metrics` topic; default 60s,
	// negative disables it.
	MetricsInterval time.Duration   `yaml:"metrics_interval"`
	Outbox          OutboxConfig    `yaml:"outbox"`
	Discovery       DiscoveryConfig `yaml:"discovery"`
}

// TLSConfig holds the TLS files for ssl://, mqtts:// and wss:// brokers.
type TLSConfig struct {
	CAFile             string `yaml:"ca_file"`   // PEM CA bundle; default: the system roots
	CertFile           string `yaml:"cert_file"` // client certificate (PEM), with KeyFile
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// OutboxConfig bounds the durable outbox (see the package documentation).
type OutboxConfig struct {
	// Dir holds the outbox's segment files and acknowledged position
	// (systemd: the StateDirectory). Required.
	Dir string `yaml:"dir"`
	// MaxBytes bounds the events waiting for an acknowledgement (their
	// framed size on disk); default 64 MiB, at least 64 KiB. When an event
	// would exceed it, the oldest waiting events are dropped.
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxAge drops waiting events older than this (measured from Publish);
	// default 7 days.
	MaxAge time.Duration `yaml:"max_age"`
	// SyncInterval is an extra group-commit window: the fsync that makes an
	// event durable waits this long to cover more events. Default 0: one
	// fsync at a time, covering every event appended while the previous one
	// ran. At most 1s.
	SyncInterval time.Duration `yaml:"sync_interval"`
}

// DiscoveryConfig controls Home Assistant MQTT discovery.
type DiscoveryConfig struct {
	Enabled bool   `yaml:"enabled"`
	Prefix  string `yaml:"prefix"` // default "homeassistant"
}

// Defaults.
const (
	DefaultQoS                  = 1
	DefaultKeepAlive            = 30 * time.Second
	DefaultConnectTimeout       = 10 * time.Second
	DefaultMaxReconnectInterval = 30 * time.Second
	DefaultMetricsInterval      = 60 * time.Second
	DefaultOutboxMaxBytes       = 64 << 20
	DefaultOutboxMaxAge         = 7 * 24 * time.Hour
	DefaultDiscoveryPrefix      = "homeassistant"
	DefaultEmbeddedAddr         = "127.0.0.1:1883"
	minOutboxBytes              = 64 << 10
)

// WithDefaults returns a copy of c with every unset field given its default.
func (c Config) WithDefaults() Config {
	if c.ClientID == "" && c.DeviceID != "" {
		c.ClientID = "edged-" + c.DeviceID
	}
	if c.TopicPrefix == "" && c.DeviceID != "" {
		c.TopicPrefix = "edged/" + c.DeviceID
	}
	c.TopicPrefix = strings.TrimSuffix(c.TopicPrefix, "/")
	if c.QoS == nil {
		q := DefaultQoS
		c.QoS = &q
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.MaxReconnectInterval == 0 {
		c.MaxReconnectInterval = DefaultMaxReconnectInterval
	}
	if c.MetricsInterval == 0 {
		c.MetricsInterval = DefaultMetricsInterval
	}
	if c.Outbox.MaxBytes == 0 {
		c.Outbox.MaxBytes = DefaultOutboxMaxBytes
	}
	if c.Outbox.MaxAge == 0 {
		c.Outbox.MaxAge = DefaultOutboxMaxAge
	}
	if c.Discovery.Prefix == "" {
		c.Discovery.Prefix = DefaultDiscoveryPrefix
	}
	return c
}

// FieldError is one configuration problem: the key path (e.g.
// "mqtt.brokers[0]") and what is wrong with it.
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

var idRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Validate checks c as written in the configuration (unset fields are
// fine where they have a default) and returns every problem found, each a
// *FieldError whose path starts with "mqtt.". It reads the TLS files.
func (c Config) Validate() []error { return c.ValidateAt("mqtt") }

// ValidateAt is Validate with another key path for the section.
func (c Config) ValidateAt(section string) []error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Path: section + "." + key, Msg: fmt.Sprintf(format, args...)})
	}
	tlsBroker := false
	for i, b := range c.Brokers {
		key := fmt.Sprintf("brokers[%d]", i)
		secure, err := checkBrokerURL(b)
		if err != nil {
			add(key, "%v", err)
		}
		tlsBroker = tlsBroker || secure
	}
	switch {
	case c.DeviceID == "":
		add("device_id", "required (letters, digits, '_' and '-'; names this board in topics and Home Assistant)")
	case !idRE.MatchString(c.DeviceID):
		add("device_id", "%q: only letters, digits, '_' and '-' are allowed", c.DeviceID)
	}
	if c.ClientID != "" && (!utf8.ValidString(c.ClientID) || len(c.ClientID) > 65535) {
		add("client_id", "must be valid UTF-8 of at most 65535 bytes")
	}
	if c.Password != "" && c.Username == "" {
		add("password", "set without username")
	}
	if c.TopicPrefix != "" {
		if err := checkTopicName(strings.TrimSuffix(c.TopicPrefix, "/")); err != nil {
			add("topic_prefix", "%q: %v", c.TopicPrefix, err)
		}
	}
	if c.QoS != nil && (*c.QoS < 0 || *c.QoS > 2) {
		add("qos", "%d: must be 0, 1 or 2", *c.QoS)
	}
	if c.KeepAlive < 0 || (c.KeepAlive > 0 && c.KeepAlive < time.Second) || c.KeepAlive > 18*time.Hour {
		add("keep_alive", "%v: must be between 1s and 18h (0 for the default %v)", c.KeepAlive, DefaultKeepAlive)
	}
	if c.ConnectTimeout < 0 {
		add("connect_timeout", "%v: must not be negative", c.ConnectTimeout)
	}
	if c.MaxReconnectInterval < 0 {
		add("max_reconnect_interval", "%v: must not be negative", c.MaxReconnectInterval)
	}
	errs = append(errs, c.TLS.validate(section+".tls", tlsBroker)...)
	o := c.Outbox
	if o.Dir == "" {
		add("outbox.dir", "required: the directory that keeps unacknowledged events across restarts")
	} else if fi, err := os.Stat(o.Dir); err == nil && !fi.IsDir() {
		add("outbox.dir", "%s is not a directory", o.Dir)
	}
	if o.MaxBytes < 0 || (o.MaxBytes > 0 && o.MaxBytes < minOutboxBytes) {
		add("outbox.max_bytes", "%d: must be at least %d (0 for the default %d)", o.MaxBytes, minOutboxBytes, DefaultOutboxMaxBytes)
	}
	if o.MaxAge < 0 || (o.MaxAge > 0 && o.MaxAge < time.Second) {
		add("outbox.max_age", "%v: must be at least 1s (0 for the default %v)", o.MaxAge, DefaultOutboxMaxAge)
	}
	if o.SyncInterval < 0 || o.SyncInterval > time.Second {
		add("outbox.sync_interval", "%v: must be between 0 and 1s", o.SyncInterval)
	}
	if c.Discovery.Prefix != "" {
		if err := checkTopicName(c.Discovery.Prefix); err != nil {
			add("discovery.prefix", "%q: %v", c.Discovery.Prefix, err)
		}
	}
	return errs
}

// checkBrokerURL reports whether u is a TLS broker, or what is wrong with it.
func checkBrokerURL(s string) (secure bool, err error) {
	if s == "" {
		return false, errors.New("empty broker URL")
	}
	u, err := url.Parse(s)
	if err != nil {
		return false, fmt.Errorf("%q: %v", s, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "tcp", "mqtt":
	case "ssl", "tls", "mqtts", "wss":
		secure = true
	case "ws":
	case "":
		return false, fmt.Errorf("%q: no scheme (use tcp://host:1883, ssl://host:8883 or ws://host/path)", s)
	default:
		return false, fmt.Errorf("%q: scheme %q is not one of tcp, mqtt, ssl, tls, mqtts, ws, wss", s, u.Scheme)
	}
	if u.Hostname() == "" {
		return secure, fmt.Errorf("%q: no host", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return secure, fmt.Errorf("%q: port %q is not 1-65535", s, p)
		}
	}
	return secure, nil
}

// checkTopicName checks a topic name (or prefix) to publish under.
func checkTopicName(t string) error {
	switch {
	case t == "":
		return errors.New("empty topic")
	case strings.ContainsAny(t, "+#"):
		return errors.New("must not contain the wildcards '+' or '#'")
	case strings.ContainsRune(t, 0):
		return errors.New("must not contain NUL")
	case !utf8.ValidString(t):
		return errors.New("must be valid UTF-8")
	case strings.HasPrefix(t, "/") || strings.Contains(t, "//"):
		return errors.New("must not have empty levels")
	}
	return nil
}

func (t TLSConfig) validate(path string, tlsBroker bool) []error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Path: path + "." + key, Msg: fmt.Sprintf(format, args...)})
	}
	if t.CAFile != "" {
		if b, err := os.ReadFile(t.CAFile); err != nil {
			add("ca_file", "%v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
			add("ca_file", "%s holds no PEM certificate", t.CAFile)
		}
	}
	switch {
	case (t.CertFile == "") != (t.KeyFile == ""):
		if t.CertFile == "" {
			add("cert_file", "key_file is set without cert_file")
		} else {
			add("key_file", "cert_file is set without key_file")
		}
	case t.CertFile != "":
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			add("cert_file", "loading %s with %s: %v", t.CertFile, t.KeyFile, err)
		}
	}
	if !tlsBroker && (t.CAFile != "" || t.CertFile != "" || t.InsecureSkipVerify) {
		add("ca_file", "TLS settings given but no broker uses ssl://, tls://, mqtts:// or wss://")
	}
	return errs
}

// tlsConfig builds the crypto/tls configuration, or nil when none is set.
func (t TLSConfig) tlsConfig() (*tls.Config, error) {
	if t.CAFile == "" && t.CertFile == "" && !t.InsecureSkipVerify {
		return nil, nil
	}
	cfg := &tls.Config{InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // the user's choice
	if t.CAFile != "" {
		b, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("mqtt.tls.ca_file: %s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt.tls.cert_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
