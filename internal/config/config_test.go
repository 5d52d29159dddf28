package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edged/edged/internal/testenv"
)

func TestEmptyFileGivesDefaults(t *testing.T) {
	c, err := Parse(nil, "empty.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.MQTT.QoS != 1 || c.MQTT.Outbox.MaxBytes != 64<<20 || c.MQTT.KeepAlive.D() != 30*time.Second || c.HTTP.Listen != "127.0.0.1:9101" || c.Log.Level != "info" {
		t.Errorf("defaults: %+v", c)
	}
	if c.Device.ID == "" || c.MQTT.TopicPrefix != "edged/"+c.Device.ID || c.MQTT.ClientID != "edged-"+c.Device.ID {
		t.Errorf("derived names: id %q prefix %q client %q", c.Device.ID, c.MQTT.TopicPrefix, c.MQTT.ClientID)
	}
}

func TestFullConfig(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"kws.tflite", "fe.tflite", "labels.txt", "person.tflite"} {
		os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644)
	}
	yaml := `
device: {id: porch}
log: {level: debug, format: json}
state_dir: /tmp/edged-state
mqtt:
  brokers: [tcp://broker.lan:1883]
  outbox: {max_bytes: 1MiB, max_age: 2h}
sources:
  - {name: mic, type: microphone, command: [sh, -c, "cat /dev/zero"]}
  - {name: cam, type: camera, device: /dev/video0, width: 320, height: 240, fps: 2}
  - {name: pir, type: gpio, pin: GPIO17}
  - {name: led, type: led, pin: GPIO27}
pipelines:
  - {name: wake, kind: keyword, source: mic, model: kws.tflite, frontend: fe.tflite, labels: labels.txt, thresholds: {yes: 0.7}}
  - {name: person, kind: person, source: cam, model: person.tflite, gate: pir, led: led, motion: {enabled: true}, backend: armnn, tolerance: 0, threads: 2}
`
	path := filepath.Join(dir, "edged.yaml")
	os.WriteFile(path, []byte(yaml), 0o644)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Device.ID != "porch" || c.MQTT.TopicPrefix != "edged/porch" || c.MQTT.Outbox.MaxBytes != 1<<20 || c.MQTT.Outbox.MaxAge.D() != 2*time.Hour {
		t.Errorf("parsed: %+v", c)
	}
	if s := c.Sources[0].WithDefaults(); s.Rate != 16000 || s.RestartMin != time.Second {
		t.Errorf("source defaults: %+v", s)
	}
	if p := c.Pipelines[1]; p.Threshold != 0.6 || p.Release < 0.39 || p.Release > 0.41 || p.Queue != 2 || p.Motion.ForceEvery.D() != 30*time.Second {
		t.Errorf("pipeline defaults: %+v", p)
	}
	if p := c.Pipelines[0]; p.Backend != BackendAuto || p.Tolerance == nil || *p.Tolerance != 3 {
		t.Errorf("backend defaults: %q %v", p.Backend, p.Tolerance)
	}
	if p := c.Pipelines[1]; p.Backend != BackendArmNN || p.Tolerance == nil || *p.Tolerance != 0 || p.Threads != 2 {
		t.Errorf("backend: %q %v", p.Backend, p.Tolerance)
	}
	if got := c.Resolve("kws.tflite"); got != filepath.Join(dir, "kws.tflite") {
		t.Errorf("Resolve: %s", got)
	}
}

func TestEveryProblemIsListedWithItsKey(t *testing.T) {
	yaml := `
log: {level: loud}
mqtt: {qos: 3, brokers: ["ftp://x", "not a url"]}
http: {listen: nowhere}
sources:
  - {name: mic, type: microphone, synthetic: whistle}
  - {name: mic, type: camera, device: /dev/video0, wav: x.wav}
  - {name: bad name, type: radar}
pipelines:
  - {name: p1, kind: keyword, source: cam}
  - {name: p2, kind: detect, source: mic, model: nope.tflite, queue: 100, gate: ghost}
  - {name: p3, kind: dance, source: mic, backend: tpu, tolerance: -1, threads: -2}
`
	_, err := Parse([]byte(yaml), "bad.yaml")
	ce, ok := err.(*Error)
	if !ok {
		t.Fatalf("got %v", err)
	}
	want := []string{
		"log.level:", "mqtt.qos:", "mqtt.brokers[0]:", "mqtt.brokers[1]:", "http.listen:",
		"sources[0].synthetic:", "sources[1].wav: not used by camera sources",
		"sources[1].name: \"mic\" is used twice",
		"sources[2].name:", "sources[2].type:",
		"pipelines[0].source: no source named \"cam\"", "pipelines[0].model: must be set",
		"pipelines[1].source: \"mic\" is a microphone", "pipelines[1].model:", "pipelines[1].queue:", "pipelines[1].gate:",
		"pipelines[2].kind:", `pipelines[2].backend: "tpu" is not auto, int8 or armnn`, "pipelines[2].tolerance:", "pipelines[2].threads:",
	}
	text := ce.Error()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("missing %q in:\n%s", w, text)
		}
	}
	if len(ce.Problems) < len(want) {
		t.Errorf("%d problems, want at least %d", len(ce.Problems), len(want))
	}
}

func TestUnknownKeysAndBadValues(t *testing.T) {
	for yaml, want := range map[string]string{
		"mqtt: {brokr: [tcp://x:1]}":        `line 1: unknown key "brokr"`,
		"mqtt: {keepalive: forever}":        `"forever" is not a duration`,
		"mqtt: {outbox: {max_bytes: lots}}": `"lots" is not a size`,
		"sources: {name: x}":                "cannot unmarshal",
		"device: [":                         "yaml",
	} {
		_, err := Parse([]byte(yaml), "x.yaml")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", yaml, err, want)
		}
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	t.Setenv("EDGED_MQTT_PASSWORD", "s3cret")
	t.Setenv("EDGED_MQTT_USERNAME", "edge")
	t.Setenv("EDGED_DEVICE_ID", "garage")
	c, err := Parse([]byte("mqtt: {password: in-file}"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.MQTT.Password != "s3cret" || c.MQTT.Username != "edge" || c.Device.ID != "garage" || c.MQTT.TopicPrefix != "edged/garage" {
		t.Errorf("overrides: %+v", c.MQTT)
	}
}

func TestByteSizes(t *testing.T) {
	for text, want := range map[string]ByteSize{"1000": 1000, "64MiB": 64 << 20, "64MB": 64 << 20, "512KiB": 512 << 10, "1.5GiB": 3 << 29} {
		c, err := Parse([]byte("mqtt: {outbox: {max_bytes: "+text+"}}"), "x.yaml")
		if want < 64<<10 {
			continue // below the minimum: validated elsewhere
		}
		if err != nil || c.MQTT.Outbox.MaxBytes != want {
			t.Errorf("%s: %v %v, want %d", text, c, err, want)
		}
	}
}

// TestDocumentedConfig checks configs/edged.yaml parses and mentions every
// key the configuration has, so the documentation cannot fall behind.
func TestDocumentedConfig(t *testing.T) {
	path := filepath.Join(testenv.ProjectRoot(t), "configs", "edged.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(b, path); err != nil {
		t.Fatal(err)
	}
	text := string(b)
	var walk func(reflect.Type, string)
	walk = func(typ reflect.Type, prefix string) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			if !strings.Contains(text, tag+":") {
				t.Errorf("configs/edged.yaml does not document %s%s", prefix, tag)
			}
			ft := f.Type
			for ft.Kind() == reflect.Slice || ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				walk(ft, prefix+tag+".")
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
}
