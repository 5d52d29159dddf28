package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edged/edged/internal/testenv"
)

// daemonProc is `edged run` started by a test.
type daemonProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	logs *testenv.SyncBuffer
	done chan error
}

func startDaemon(t *testing.T, args ...string) *daemonProc {
	t.Helper()
	d := &daemonProc{t: t, logs: &testenv.SyncBuffer{}, done: make(chan error, 1)}
	d.cmd = exec.Command(edgedBin, append([]string{"run"}, args...)...)
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	testenv.DieWithParent(d.cmd)
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("edged log:\n%s", d.logs.String())
		}
	})
	return d
}

// stop sends SIGTERM and returns the exit code.
func (d *daemonProc) stop() int {
	d.t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		d.t.Fatal("edged did not stop within 30 s of SIGTERM")
	}
	return d.cmd.ProcessState.ExitCode()
}

func (d *daemonProc) waitLog(what string, timeout time.Duration) {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(d.logs.String(), what) {
		if time.Now().After(deadline) {
			d.t.Fatalf("edged did not log %q within %v", what, timeout)
		}
		select {
		case err := <-d.done:
			d.t.Fatalf("edged exited (%v) before logging %q", err, what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// simConfig writes an edged configuration using the shared recordings and
// pictures (linked into dir) and returns its path. pictureFPS sets how fast
// person and no_person alternate (each change is a presence event).
func simConfig(t *testing.T, dir, broker, device string, pictureFPS float64, extraPipelines string) string {
	t.Helper()
	clips, pics := filepath.Join(dir, "clips"), filepath.Join(dir, "pics")
	for _, l := range []struct{ dir, file string }{
		{clips, "inputs/yes_1000ms.wav"}, {clips, "inputs/no_1000ms.wav"},
		{pics, "inputs/person.png"}, {pics, "inputs/no_person.png"},
	} {
		os.MkdirAll(l.dir, 0o755)
		if err := os.Symlink(testenv.SharedFile(t, l.file), filepath.Join(l.dir, filepath.Base(l.file))); err != nil {
			t.Fatal(err)
		}
	}
	// File names sort no < yes: the clips play no, then yes, a second apart.
	y := fmt.Sprintf(`
device: {id: %s}
state_dir: %s
models_dir: %s
http: {listen: ""}
mqtt:
  brokers: [%s]
  metrics_interval: 0s
sources:
  - {name: mic, type: microphone, wav: %s, loop: true, gap: 1s}
  - {name: pictures, type: camera, images: %s, loop: true, fps: %g}
pipelines:
  - {name: wakeword, kind: keyword, source: mic, model: micro_speech_quantized.tflite, frontend: audio_preprocessor_int8.tflite, labels: micro_speech_labels.txt}
  - {name: person, kind: person, source: pictures, model: person_detect.tflite, labels: person_detect_labels.txt}
%s`, device, filepath.Join(dir, "state"), filepath.Join(testenv.SharedDir(t), "models"), broker, clips, pics, pictureFPS, extraPipelines)
	p := filepath.Join(dir, "edged.yaml")
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type runEvent struct {
	Schema    int     `json:"schema"`
	Seq       uint64  `json:"seq"`
	TS        string  `json:"ts"`
	Device    string  `json:"device"`
	Kind      string  `json:"kind"`
	Model     string  `json:"model"`
	LatencyMS float64 `json:"latency_ms"`
	Label     string  `json:"label"`
	Score     float64 `json:"score"`
	Pipeline  string  `json:"pipeline"`
	Present   *bool   `json:"present"`
}

func isEventTopic(topic, device string) bool {
	for _, k := range []string{"keyword", "detection", "motion"} {
		if topic == "edged/"+device+"/"+k {
			return true
		}
	}
	return strings.HasPrefix(topic, "edged/"+device+"/event/")
}

// TestRunPublishesKeywordsAndPeople runs the daemon in simulator mode
// against a real mosquitto: the shared recordings give yes and no keyword
// events, the pictures person / no person presence events, every payload
// well formed and seq increasing.
func TestRunPublishesKeywordsAndPeople(t *testing.T) {
	t.Parallel()
	m := testenv.StartMosquitto(t)
	sub := testenv.Subscribe(t, m.URL(), false, "edged/e2e/#")
	cfg := simConfig(t, t.TempDir(), m.URL(), "e2e", 1, "")
	d := startDaemon(t, "--config", cfg, "--simulate")

	seen := map[string]bool{}
	var lastSeq uint64
	status := ""
	deadline := time.Now().Add(40 * time.Second)
	for !(seen["keyword yes"] && seen["keyword no"] && seen["person true"] && seen["person false"]) {
		msg, ok := sub.Next(time.Until(deadline))
		if !ok {
			t.Fatalf("after 40 s seen only %v", seen)
		}
		switch {
		case msg.Topic() == "edged/e2e/status":
			status = string(msg.Payload())
		case isEventTopic(msg.Topic(), "e2e"):
			var e runEvent
			if err := json.Unmarshal(msg.Payload(), &e); err != nil {
				t.Fatalf("%s: %v", msg.Topic(), err)
			}
			if e.Schema != 1 || e.Device != "e2e" || e.Seq <= lastSeq || e.LatencyMS < 0 || e.TS == "" || e.Model == "" {
				t.Errorf("bad event (after seq %d): %s", lastSeq, msg.Payload())
			}
			if _, err := time.Parse(time.RFC3339, e.TS); err != nil {
				t.Errorf("ts %q: %v", e.TS, err)
			}
			lastSeq = e.Seq
			switch {
			case e.Kind == "keyword" && e.Model == "micro_speech_quantized.tflite" && e.Score >= 0.7:
				seen["keyword "+e.Label] = true
			case e.Kind == "detection" && e.Pipeline == "person" && e.Present != nil:
				seen[fmt.Sprintf("person %v", *e.Present)] = true
			}
		}
	}
	if status != "online" {
		t.Errorf("status %q, want online", status)
	}
	if code := d.stop(); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
	// The retained status is offline once the daemon has gone.
	late := testenv.Subscribe(t, m.URL(), false, "edged/e2e/status")
	if msg := late.WaitFor("edged/e2e/status", 5*time.Second); string(msg.Payload()) != "offline" {
		t.Errorf("status after shutdown %q, want offline", msg.Payload())
	}
}

// collectSeqs gathers event seqs from sub until stop is closed.
func collectSeqs(sub *testenv.Subscriber, device string, stop <-chan struct{}) <-chan []uint64 {
	out := make(chan []uint64, 1)
	go func() {
		var seqs []uint64
		for {
			select {
			case <-stop:
				out <- seqs
				return
			case msg := <-sub.Messages:
				if !isEventTopic(msg.Topic(), device) {
					continue
				}
				var e runEvent
				if json.Unmarshal(msg.Payload(), &e) == nil {
					seqs = append(seqs, e.Seq)
				}
			}
		}
	}()
	return out
}

// TestRunBrokerOutage stops mosquitto for 10 s while the daemon produces
// events: every seq must arrive afterwards, in order (duplicates allowed).
func TestRunBrokerOutage(t *testing.T) {
	t.Parallel()
	m := testenv.StartMosquitto(t)
	sub := testenv.Subscribe(t, m.URL(), true, "edged/outage/#")
	stop := make(chan struct{})
	got := collectSeqs(sub, "outage", stop)
	d := startDaemon(t, "--config", simConfig(t, t.TempDir(), m.URL(), "outage", 5, ""))
	d.waitLog("mqtt: connected", 20*time.Second)
	time.Sleep(3 * time.Second)
	m.Stop()
	d.waitLog("connection lost", 10*time.Second)
	time.Sleep(10 * time.Second)
	m.Start()
	// Let the daemon reconnect and drain, then stop it: Close delivers what
	// is left.
	d.waitLog("outbox_events", 5*time.Second)
	time.Sleep(15 * time.Second)
	if code := d.stop(); code != 0 {
		t.Errorf("exit code %d", code)
	}
	time.Sleep(time.Second)
	close(stop)
	seqs := <-got
	if len(seqs) == 0 {
		t.Fatal("no events arrived")
	}
	var last uint64
	for _, s := range seqs {
		last = max(last, s)
	}
	if last < 20 {
		t.Errorf("only %d events in the test; the outage test wants a steady stream", last)
	}
	testenv.CheckNoGaps(t, seqs, last)
}

// TestRunKillWithFullOutbox kills the daemon with -9 while its broker is
// down and events wait in the outbox; started again with the broker up, it
// delivers them all.
func TestRunKillWithFullOutbox(t *testing.T) {
	t.Parallel()
	port := testenv.FreePort(t)
	broker := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	dir := t.TempDir()
	cfg := simConfig(t, dir, broker, "killed", 5, "")
	d := startDaemon(t, "--config", cfg)
	d.waitLog("edged running", 20*time.Second)
	time.Sleep(4 * time.Second) // about 20 presence changes, no broker
	first := strings.Count(d.logs.String(), "\tdetection\t") + strings.Count(d.logs.String(), "\tkeyword\t")
	if first < 5 {
		t.Fatalf("only %d events before the kill", first)
	}
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done

	m := testenv.StartMosquitto(t)
	os.WriteFile(cfg, []byte(strings.ReplaceAll(mustRead(t, cfg), broker, m.URL())), 0o644)
	sub := testenv.Subscribe(t, m.URL(), false, "edged/killed/#")
	stop := make(chan struct{})
	got := collectSeqs(sub, "killed", stop)
	d2 := startDaemon(t, "--config", cfg)
	d2.waitLog("mqtt: connected", 20*time.Second)
	time.Sleep(3 * time.Second)
	if code := d2.stop(); code != 0 {
		t.Errorf("exit code %d", code)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	seqs := <-got
	var last uint64
	for _, s := range seqs {
		last = max(last, s)
	}
	if last < uint64(first) {
		t.Fatalf("the killed run logged %d events; only seqs up to %d arrived", first, last)
	}
	testenv.CheckNoGaps(t, seqs, last)
	t.Logf("the killed run left %d events; %d arrived in all", first, last)
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRunBadConfig lists every problem and exits with status 2.
func TestRunBadConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(p, []byte(`
log: {level: chatty}
mqtt: {qos: 7}
sources:
  - {name: cam, type: camera, synthetic: shapes, fps: -1}
pipelines:
  - {name: p, kind: person, source: mic, model: missing.tflite}
`), 0o644)
	r := edged(t, "run", "--config", p)
	if r.code != 2 {
		t.Fatalf("exit %d, want 2:\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"log.level", "mqtt.qos", "sources[0].fps", "pipelines[0].source", "pipelines[0].model"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the error does not mention %s:\n%s", want, r.stderr)
		}
	}
	if r := edged(t, "run", "--config", filepath.Join(t.TempDir(), "none.yaml")); r.code != 2 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("missing config: exit %d\n%s", r.code, r.stderr)
	}
	if r := edged(t, "run", "--config", p, "--check"); r.code != 2 {
		t.Errorf("--check of a bad config: exit %d", r.code)
	}
}

// TestRunReload: SIGHUP with a broken file keeps the running configuration;
// with a valid one it is applied without dropping the MQTT session.
func TestRunReload(t *testing.T) {
	t.Parallel()
	m := testenv.StartMosquitto(t)
	sub := testenv.Subscribe(t, m.URL(), false, "edged/reload/status", "edged/reload/motion")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "edged.yaml")
	good := fmt.Sprintf(`
device: {id: reload}
state_dir: %s
http: {listen: ""}
mqtt: {brokers: [%s]}
sources: [{name: shapes, type: camera, synthetic: shapes, width: 160, height: 120, fps: 10}]
pipelines: [{name: motion, kind: motion, source: shapes}]
`, filepath.Join(dir, "state"), m.URL())
	os.WriteFile(cfg, []byte(good), 0o644)
	d := startDaemon(t, "--config", cfg)
	d.waitLog("mqtt: connected", 20*time.Second)
	sub.WaitFor("edged/reload/motion", 10*time.Second)

	os.WriteFile(cfg, []byte(good+"pipelines: [{name: x, kind: nonsense}]\n"), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog("keeping the running one", 10*time.Second)

	os.WriteFile(cfg, []byte(strings.Replace(good, "name: motion,", "name: motion2,", 1)), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog("configuration reloaded", 10*time.Second)
	// The new pipeline publishes; the session was never dropped (no
	// offline status in between).
	deadline := time.Now().Add(15 * time.Second)
	for {
		msg, ok := sub.Next(time.Until(deadline))
		if !ok {
			t.Fatal("no motion event from the reloaded pipeline")
		}
		if msg.Topic() == "edged/reload/status" && string(msg.Payload()) == "offline" {
			t.Fatal("the status went offline during the reload")
		}
		if msg.Topic() == "edged/reload/motion" && strings.Contains(string(msg.Payload()), `"pipeline":"motion2"`) {
			break
		}
	}
	if code := d.stop(); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

// TestRunSourceRestart: a capture command that exits is reported failed on
// MQTT and restarted with growing back-off; the daemon stays up.
func TestRunSourceRestart(t *testing.T) {
	t.Parallel()
	m := testenv.StartMosquitto(t)
	sub := testenv.Subscribe(t, m.URL(), false, "edged/flaky/source/mic/status")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "edged.yaml")
	models := filepath.Join(testenv.SharedDir(t), "models")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
device: {id: flaky}
state_dir: %s
models_dir: %s
http: {listen: ""}
mqtt: {brokers: [%s]}
sources:
  - {name: mic, type: microphone, command: [sh, -c, "head -c 16000 /dev/zero; echo mic unplugged >&2; exit 3"], restart_min: 200ms, restart_max: 2s}
pipelines:
  - {name: wakeword, kind: keyword, source: mic, model: micro_speech_quantized.tflite, frontend: audio_preprocessor_int8.tflite, labels: micro_speech_labels.txt}
`, filepath.Join(dir, "state"), models, m.URL())), 0o644)
	d := startDaemon(t, "--config", cfg)
	type status struct {
		State string `json:"state"`
		Error string `json:"error"`
	}
	var states []status
	var failedAt []time.Time
	deadline := time.Now().Add(30 * time.Second)
	for len(failedAt) < 3 {
		msg, ok := sub.Next(time.Until(deadline))
		if !ok {
			t.Fatalf("status messages so far: %+v", states)
		}
		var s status
		json.Unmarshal(msg.Payload(), &s)
		states = append(states, s)
		if s.State == "failed" {
			failedAt = append(failedAt, time.Now())
			if !strings.Contains(s.Error, "exit status 3") || !strings.Contains(s.Error, "mic unplugged") {
				t.Errorf("failure not explained: %q", s.Error)
			}
		}
	}
	// Back-off grows: the second gap is longer than the first.
	if g1, g2 := failedAt[1].Sub(failedAt[0]), failedAt[2].Sub(failedAt[1]); g2 <= g1 {
		t.Errorf("failures at gaps %v then %v: the back-off does not grow", g1, g2)
	}
	if code := d.stop(); code != 0 {
		t.Errorf("exit code %d: the daemon must stay up while a source fails", code)
	}
}

// TestSystemdUnit checks configs/edged.service with systemd-analyze verify.
func TestSystemdUnit(t *testing.T) {
	tool := testenv.Program(t, "systemd-analyze")
	unit := mustRead(t, filepath.Join(testenv.ProjectRoot(t), "configs", "edged.service"))
	p := filepath.Join(t.TempDir(), "edged.service")
	os.WriteFile(p, []byte(strings.ReplaceAll(unit, "/usr/bin/edged", edgedBin)), 0o644)
	out, err := exec.Command(tool, "verify", p).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, want := range []string{"Type=notify", "WatchdogSec=", "Restart=on-failure", "SupplementaryGroups=audio video gpio", "StateDirectory=edged", "ProtectSystem=strict"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %s", want)
		}
	}
}

// TestRunMetricsAndHealth checks /metrics and /healthz while the daemon runs.
func TestRunMetricsAndHealth(t *testing.T) {
	t.Parallel()
	m := testenv.StartMosquitto(t)
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := filepath.Join(dir, "edged.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
device: {id: observed}
state_dir: %s
http: {listen: "%s"}
mqtt: {brokers: [%s]}
sources: [{name: scene, type: camera, synthetic: shapes, width: 160, height: 120, fps: 10}]
pipelines: [{name: motion, kind: motion, source: scene}]
`, filepath.Join(dir, "state"), addr, m.URL())), 0o644)
	d := startDaemon(t, "--config", cfg)
	d.waitLog("serving /metrics", 20*time.Second)
	get := func(path string) string {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %s", path, resp.Status)
		}
		return string(b)
	}
	// The synthetic shapes move from the first frame, so a motion event
	// follows within a few frames; poll until it shows in the counters.
	wants := []string{`edged_frames_total{source="scene"}`, `edged_events_total{kind="motion",pipeline="motion"}`,
		`edged_source_up{source="scene"} 1`, "edged_mqtt_outbox_events", "edged_mqtt_connected 1"}
	var missing []string
	for deadline := time.Now().Add(20 * time.Second); ; {
		metrics := get("/metrics")
		missing = missing[:0]
		for _, want := range wants {
			if !strings.Contains(metrics, want) {
				missing = append(missing, want)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(missing) > 0 {
		t.Errorf("/metrics lacks %s", strings.Join(missing, ", "))
	}
	var h struct {
		Status  string                            `json:"status"`
		Broker  string                            `json:"broker"`
		Sources map[string]struct{ State string } `json:"sources"`
	}
	if err := json.Unmarshal([]byte(get("/healthz")), &h); err != nil {
		t.Fatal(err)
	}
	if h.Status != "ok" || h.Broker != "connected" || h.Sources["scene"].State != "running" {
		t.Errorf("/healthz: %+v", h)
	}
	d.stop()
}
