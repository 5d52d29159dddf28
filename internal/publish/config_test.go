package publish

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidateListsEveryProblemWithItsPath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("not a cert"), 0o644)
	q := 3
	cfg := Config{
		Brokers:     []string{"tcp://broker:1883", "http://x", "ssl://:8883", "tcp://h:99999", "localhost:1883", ""},
		DeviceID:    "kitchen pi",
		Password:    "secret",
		TopicPrefix: "edged/+/x",
		QoS:         &q,
		KeepAlive:   -time.Second,
		TLS:         TLSConfig{CAFile: file, KeyFile: "/nonexistent"},
		Outbox:      OutboxConfig{Dir: file, MaxBytes: 1000, MaxAge: -1, SyncInterval: 2 * time.Second},
		Discovery:   DiscoveryConfig{Prefix: "ha/#"},
	}
	errs := cfg.Validate()
	want := []string{
		"mqtt.brokers[1]: ", "mqtt.brokers[2]: ", "mqtt.brokers[3]: ", "mqtt.brokers[4]: ", "mqtt.brokers[5]: ",
		"mqtt.device_id: ", "mqtt.password: ", "mqtt.topic_prefix: ", "mqtt.qos: ", "mqtt.keep_alive: ",
		"mqtt.tls.ca_file: ", "mqtt.tls.cert_file: ", "mqtt.outbox.dir: ", "mqtt.outbox.max_bytes: ",
		"mqtt.outbox.max_age: ", "mqtt.outbox.sync_interval: ", "mqtt.discovery.prefix: ",
	}
	var got []string
	for _, e := range errs {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Errorf("%v is not a *FieldError", e)
		}
		got = append(got, e.Error())
	}
	joined := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("no error for %s in:\n%s", strings.TrimSuffix(w, ": "), joined)
		}
	}
	if strings.Contains(joined, "mqtt.brokers[0]") {
		t.Errorf("good broker reported:\n%s", joined)
	}
	if len(errs) != len(want) {
		t.Errorf("%d errors, want %d:\n%s", len(errs), len(want), joined)
	}
	if errs := cfg.ValidateAt("publish"); !strings.HasPrefix(errs[0].Error(), "publish.") {
		t.Errorf("ValidateAt: %v", errs[0])
	}
}

func TestValidateAcceptsMinimalAndDefaults(t *testing.T) {
	cfg := Config{DeviceID: "kitchen-pi_2", Outbox: OutboxConfig{Dir: t.TempDir()}}
	if errs := cfg.Validate(); len(errs) != 0 {
		t.Fatalf("minimal config: %v", errs)
	}
	cfg.Brokers = []string{"tcp://10.0.0.2:1883", "ssl://broker.example:8883", "ws://broker/mqtt", "mqtts://b", "wss://b:443/mqtt"}
	cfg.TLS.InsecureSkipVerify = true
	zero := 0
	cfg.QoS = &zero
	if errs := cfg.Validate(); len(errs) != 0 {
		t.Fatalf("config with brokers: %v", errs)
	}
	d := cfg.WithDefaults()
	if d.ClientID != "edged-kitchen-pi_2" || d.TopicPrefix != "edged/kitchen-pi_2" || *d.QoS != 0 || d.KeepAlive != DefaultKeepAlive ||
		d.Outbox.MaxBytes != DefaultOutboxMaxBytes || d.Outbox.MaxAge != DefaultOutboxMaxAge || d.Discovery.Prefix != "homeassistant" {
		t.Errorf("defaults: %+v", d)
	}
	if q := (Config{DeviceID: "x"}).WithDefaults().QoS; *q != 1 {
		t.Errorf("default QoS %d", *q)
	}
	if p := (Config{DeviceID: "x", TopicPrefix: "home/cam/"}).WithDefaults().TopicPrefix; p != "home/cam" {
		t.Errorf("prefix %q", p)
	}
}

func TestValidateTLSWithoutTLSBroker(t *testing.T) {
	cfg := Config{DeviceID: "x", Brokers: []string{"tcp://b:1883"}, Outbox: OutboxConfig{Dir: t.TempDir()}, TLS: TLSConfig{InsecureSkipVerify: true}}
	errs := cfg.Validate()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "no broker uses ssl") {
		t.Errorf("%v", errs)
	}
}
