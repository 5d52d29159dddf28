package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edged/edged/internal/testenv"
)

// learnAnswer is an event of kind "learn".
type learnAnswer struct {
	Seq            uint64         `json:"seq"`
	Kind           string         `json:"kind"`
	ID             string         `json:"id"`
	Action         string         `json:"action"`
	Status         string         `json:"status"`
	Pipeline       string         `json:"pipeline"`
	Error          string         `json:"error"`
	Example        string         `json:"example"`
	From           string         `json:"from"`
	Examples       map[string]int `json:"examples"`
	Removed        int            `json:"removed"`
	Version        *int           `json:"version"`
	Labels         []string       `json:"labels"`
	RunningVersion *int           `json:"running_version"`
	Stage          string         `json:"stage"`
	Report         *struct {
		Mode            string  `json:"mode"`
		Frozen          int     `json:"frozen_classes"`
		Int8ValAccuracy float64 `json:"int8_val_accuracy"`
		Agreement       float64 `json:"agreement"`
	} `json:"report"`
}

// keywordHeard is a keyword event as the learning test sees it.
type keywordHeard struct {
	Label   string `json:"label"`
	Version int    `json:"model_version"`
	at      time.Time
}

// learnSession drives the learn commands of one daemon over MQTT.
type learnSession struct {
	t        *testing.T
	broker   string
	prefix   string
	pub      mqtt.Client
	answers  chan learnAnswer
	backlog  []learnAnswer
	keywords chan keywordHeard
}

func newLearnSession(t *testing.T, broker, device string) *learnSession {
	s := &learnSession{t: t, broker: broker, prefix: "edged/" + device,
		answers: make(chan learnAnswer, 1000), keywords: make(chan keywordHeard, 1000)}
	sub := testenv.Subscribe(t, broker, true, s.prefix+"/event/learn", s.prefix+"/keyword")
	go func() {
		for msg := range sub.Messages {
			switch msg.Topic() {
			case s.prefix + "/event/learn":
				var a learnAnswer
				if err := json.Unmarshal(msg.Payload(), &a); err != nil {
					t.Errorf("learn answer %s: %v", msg.Payload(), err)
					continue
				}
				s.answers <- a
			case s.prefix + "/keyword":
				var k keywordHeard
				if err := json.Unmarshal(msg.Payload(), &k); err != nil {
					t.Errorf("keyword event %s: %v", msg.Payload(), err)
					continue
				}
				k.at = time.Now()
				s.keywords <- k
			}
		}
	}()
	o := mqtt.NewClientOptions().AddBroker(broker).SetClientID(testenv.ClientID("test-learn"))
	s.pub = mqtt.NewClient(o)
	if tok := s.pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("command client: %v", tok.Error())
	}
	t.Cleanup(func() { s.pub.Disconnect(0) })
	return s
}

// send publishes a learn command; payload is marshalled to JSON.
func (s *learnSession) send(action string, payload any) {
	s.t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		s.t.Fatal(err)
	}
	if tok := s.pub.Publish(s.prefix+"/cmd/learn/"+action, 1, false, b); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		s.t.Fatalf("publishing learn/%s: %v", action, tok.Error())
	}
}

// next returns the next answer to command id, keeping the answers to
// other commands for later.
func (s *learnSession) next(id string, deadline time.Time) (learnAnswer, bool) {
	for i, a := range s.backlog {
		if a.ID == id {
			s.backlog = slices.Delete(s.backlog, i, i+1)
			return a, true
		}
	}
	for {
		select {
		case a := <-s.answers:
			if a.ID == id {
				return a, true
			}
			s.backlog = append(s.backlog, a)
		case <-time.After(time.Until(deadline)):
			return learnAnswer{}, false
		}
	}
}

// await returns the answer to command id with one of the final statuses,
// failing on an error answer unless that is what is wanted.
func (s *learnSession) await(id string, timeout time.Duration, final ...string) learnAnswer {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		a, ok := s.next(id, deadline)
		if !ok {
			s.t.Fatalf("no %v answer to learn command %s within %v", final, id, timeout)
		}
		if slices.Contains(final, a.Status) {
			return a
		}
		if a.Status == "error" || a.Status == "failed" || a.Status == "busy" {
			s.t.Fatalf("learn command %s: %s: %s", id, a.Status, a.Error)
		}
	}
}

// listen collects keyword events for d and returns how often each label
// was heard from each model version.
func (s *learnSession) listen(d time.Duration) map[string]int {
	heard := map[string]int{}
	deadline := time.After(d)
	for {
		select {
		case k := <-s.keywords:
			heard[fmt.Sprintf("%s@v%d", k.Label, k.Version)]++
		case <-deadline:
			return heard
		}
	}
}

// drainKeywords forgets the keyword events received so far.
func (s *learnSession) drainKeywords() {
	for {
		select {
		case <-s.keywords:
		default:
			return
		}
	}
}

// TestRunLearnsKeyword teaches the running daemon a new keyword over MQTT,
// as a user would: the stream it listens to says "yes" and "stop" (test
// voices); ten "stop" clips of other voices are uploaded, a recording is
// taken from the microphone and cleared again, the model is trained and
// swapped in, and "stop" is heard from the new version while "yes" still
// is. The version survives a restart; rollback brings back the configured
// model, which knows no "stop".
func TestRunLearnsKeyword(t *testing.T) {
	t.Parallel()
	kws := testenv.SharedFile(t, "kws-synth")
	models := filepath.Join(testenv.SharedDir(t), "models")
	m := testenv.StartMosquitto(t)
	dir := t.TempDir()

	// The stream: yes, stop, yes, stop, stop, a second apart. "yes" is the
	// recorded one the configured model hears for sure (of the synthetic
	// test voices' yes, it hears few in a stream); "stop" comes from test
	// voices, never trained on.
	stream := filepath.Join(dir, "stream")
	os.MkdirAll(stream, 0o755)
	yes, stop := testenv.SharedFile(t, "inputs/yes_1000ms.wav"), listWAVs(t, filepath.Join(kws, "test", "stop"))
	for i, f := range []string{yes, stop[0], yes, stop[1], stop[2]} {
		if err := os.Symlink(f, filepath.Join(stream, fmt.Sprintf("%02d_%s", i, filepath.Base(f)))); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "edged.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
device: {id: learner}
state_dir: %s
models_dir: %s
http: {listen: ""}
mqtt: {brokers: [%s], metrics_interval: 0s}
sources:
  - {name: mic, type: microphone, wav: %s, loop: true, gap: 1s}
pipelines:
  - {name: wakeword, kind: keyword, source: mic, model: micro_speech_quantized.tflite, frontend: audio_preprocessor_int8.tflite, labels: micro_speech_labels.txt}
  - {name: motion, kind: motion, source: cam}
`, filepath.Join(dir, "state"), models, m.URL(), stream)), 0o644)
	// A camera too, so that a learn command naming a vision pipeline is
	// refused for the right reason.
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(b), "sources:\n", "sources:\n  - {name: cam, type: camera, synthetic: shapes, width: 64, height: 48, fps: 2}\n", 1)), 0o644)

	s := newLearnSession(t, m.URL(), "learner")
	d := startDaemon(t, "--config", cfg)
	d.waitLog("edged running", 30*time.Second)

	// Commands that must be refused, each with a reason.
	s.send("train", map[string]any{"id": "e1", "pipeline": "nope"})
	if a := s.await("e1", 10*time.Second, "error"); !strings.Contains(a.Error, `no pipeline "nope"`) {
		t.Errorf("unknown pipeline: %q", a.Error)
	}
	s.send("add", map[string]any{"id": "e2", "pipeline": "motion", "label": "x"})
	if a := s.await("e2", 10*time.Second, "error"); !strings.Contains(a.Error, "motion pipeline") {
		t.Errorf("vision pipeline: %q", a.Error)
	}
	s.send("train", map[string]any{"id": "e3", "pipeline": "wakeword"})
	if a := s.await("e3", 10*time.Second, "failed"); !strings.Contains(a.Error, "no examples") {
		t.Errorf("training without examples: %q", a.Error)
	}
	s.send("add", map[string]any{"id": "e4", "pipeline": "wakeword", "label": "../etc", "seconds": 1})
	if a := s.await("e4", 10*time.Second, "error"); !strings.Contains(a.Error, "label") {
		t.Errorf("bad label: %q", a.Error)
	}
	s.send("add", map[string]any{"id": "e5", "pipeline": "wakeword", "label": "stop", "wav": []byte("RIFF....WAVEjunk")})
	if a := s.await("e5", 10*time.Second, "error"); a.Error == "" {
		t.Error("a corrupt wav was accepted")
	}
	if tok := s.pub.Publish(s.prefix+"/cmd/learn/add", 1, false, []byte("{not json")); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	// The configured model hears yes, and cannot hear stop.
	before := s.listen(14 * time.Second)
	if before["yes@v0"] == 0 {
		t.Fatalf("the configured model heard %v in a loop of the stream, want yes", before)
	}

	// Ten examples of "stop" from train voices, uploaded.
	trainStop := listWAVs(t, filepath.Join(kws, "train", "stop"))[:10]
	for i, f := range trainStop {
		wav, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("up%d", i)
		s.send("add", map[string]any{"id": id, "pipeline": "wakeword", "label": "stop", "wav": wav})
		if a := s.await(id, 20*time.Second, "ok"); a.Examples["stop"] != i+1 || a.From != "upload" {
			t.Fatalf("after upload %d: %+v", i, a)
		}
	}
	// A recording from the microphone; it would be test audio, so it is
	// stored under a label of its own and cleared again.
	s.send("add", map[string]any{"id": "rec", "label": "scratch", "seconds": 1.5})
	rec := s.await("rec", 20*time.Second, "ok")
	if rec.From != "microphone" || rec.Examples["scratch"] != 1 {
		t.Fatalf("recording: %+v", rec)
	}
	recorded := filepath.Join(dir, "state", "learn", "wakeword", "examples", rec.Example)
	if st, err := os.Stat(recorded); err != nil || st.Size() != 44+2*24000 {
		t.Fatalf("the recorded example %s: %v (size %v, want %d)", recorded, err, st, 44+2*24000)
	}
	s.send("clear", map[string]any{"id": "clr", "label": "scratch"})
	if a := s.await("clr", 10*time.Second, "ok"); a.Removed != 1 || a.Examples["scratch"] != 0 || a.Examples["stop"] != 10 {
		t.Fatalf("clear: %+v", a)
	}

	// Train: progress, then the new version.
	s.send("train", map[string]any{"id": "tr", "pipeline": "wakeword"})
	// Commands are taken in order, so this one finds the training under
	// way (which takes a second at least).
	s.send("train", map[string]any{"id": "tr2", "pipeline": "wakeword"})
	if a := s.await("tr2", 10*time.Second, "busy"); !strings.Contains(a.Error, "busy (train)") {
		t.Errorf("a second training: %+v", a)
	}
	progress := 0
	var done learnAnswer
	for deadline := time.Now().Add(10 * time.Minute); done.Status != "done"; {
		a, ok := s.next("tr", deadline)
		switch {
		case !ok:
			t.Fatal("training did not finish within 10 minutes")
		case a.Status == "progress":
			progress++
		case a.Status == "failed" || a.Status == "error":
			t.Fatalf("training: %+v", a)
		case a.Status == "done":
			done = a
		}
	}
	if progress == 0 || done.Version == nil || *done.Version != 1 || !slices.Contains(done.Labels, "stop") || !slices.Contains(done.Labels, "yes") ||
		done.Report == nil || done.Report.Frozen != 4 || done.Report.Mode != "head" {
		t.Fatalf("training answer: %+v (progress answers: %d)", done, progress)
	}
	t.Logf("trained in extend mode: int8 validation accuracy %.3f, int8/float agreement %.3f", done.Report.Int8ValAccuracy, done.Report.Agreement)

	// The new version hears stop, and still yes. Two loops of the stream
	// (three stops in each).
	s.drainKeywords()
	after := s.listen(26 * time.Second)
	if after["stop@v1"] == 0 || after["yes@v1"] == 0 {
		t.Fatalf("version 1 heard %v in two loops of the stream, want stop and yes", after)
	}

	s.send("status", map[string]any{"id": "st", "pipeline": "wakeword"})
	if a := s.await("st", 10*time.Second, "ok"); a.RunningVersion == nil || *a.RunningVersion != 1 || a.Examples["stop"] != 10 {
		t.Fatalf("status: %+v", a)
	}

	// The version survives a restart.
	if code := d.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	d = startDaemon(t, "--config", cfg)
	d.waitLog("running a learned model version", 30*time.Second)
	d.waitLog("edged running", 30*time.Second)

	// Rollback: the configured model again.
	s.send("rollback", map[string]any{"id": "rb", "pipeline": "wakeword"})
	if a := s.await("rb", 20*time.Second, "ok"); a.Version == nil || *a.Version != 0 {
		t.Fatalf("rollback: %+v", a)
	}
	time.Sleep(time.Second) // events of audio heard before the switch
	s.drainKeywords()
	rolled := s.listen(14 * time.Second)
	for k := range rolled {
		if !strings.HasSuffix(k, "@v0") || strings.HasPrefix(k, "stop") {
			t.Errorf("after rollback heard %v, want only the configured model's keywords", rolled)
			break
		}
	}
	if rolled["yes@v0"] == 0 {
		t.Errorf("after rollback heard %v, want yes", rolled)
	}
	d.stop()
}

func listWAVs(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.wav"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no WAV files in %s (%v)", dir, err)
	}
	slices.Sort(files)
	return files
}
