package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/edged/edged/internal/config"
	"github.com/edged/edged/internal/sensors"
)

// TestFrameQueueDropsOldest: a full queue drops its oldest frame, counts
// it, and never blocks the source.
func TestFrameQueueDropsOldest(t *testing.T) {
	m := newMetrics(prometheus.NewRegistry())
	p := &visionPipeline{cfg: config.Pipeline{Name: "cam"}, m: m, queue: make(chan queuedFrame, 2), free: make(chan *sensors.Frame, 4)}
	for i := range 5 {
		f := &sensors.Frame{Width: 1, Height: 1, Format: sensors.GRAY8, Data: []byte{byte(i)}}
		done := make(chan struct{})
		go func() { p.offer(f, time.Now()); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Second):
			t.Fatal("offer blocked")
		}
		f.Data[0] = 99 // the source reuses its frame: the queue holds copies
	}
	if got := testutil.ToFloat64(m.framesDropped.WithLabelValues("cam")); got != 3 {
		t.Errorf("%v frames dropped, want 3", got)
	}
	for _, want := range []byte{3, 4} {
		q := <-p.queue
		if q.f.Data[0] != want {
			t.Errorf("queued frame %d, want %d (the newest two)", q.f.Data[0], want)
		}
	}
}

func TestAudioQueueDropsOldest(t *testing.T) {
	m := newMetrics(prometheus.NewRegistry())
	p := &keywordPipeline{name: "kws", m: m, rate: 16000, queue: make(chan audioChunk, 3), free: make(chan []int16, 5)}
	chunk := make([]int16, 320)
	for i := range 10 {
		chunk[0] = int16(i)
		p.offer(chunk, time.Now())
	}
	if got := testutil.ToFloat64(m.audioDropped.WithLabelValues("kws")); got < 0.139 || got > 0.141 {
		t.Errorf("%v s of audio dropped, want 0.14 (7 chunks of 20 ms)", got)
	}
	if c := <-p.queue; c.pcm[0] != 7 {
		t.Errorf("oldest kept chunk %d, want 7", c.pcm[0])
	}
}

func TestEntities(t *testing.T) {
	cfg := &config.Config{Pipelines: []config.Pipeline{
		{Name: "door", Kind: config.KindPerson, Model: "/m/person_detect.tflite", Motion: config.Motion{Enabled: true}},
		{Name: "objects", Kind: config.KindDetect, Model: "yolo.tflite"},
	}}
	ents := entities(cfg)
	var ids []string
	for _, e := range ents {
		ids = append(ids, e.Component+"/"+e.ObjectID)
	}
	want := "binary_sensor/door_person binary_sensor/door_motion sensor/objects_last_object"
	if got := strings.Join(ids, " "); got != want {
		t.Errorf("entities %s, want %s", got, want)
	}
	tmpl := ents[0].Config["value_template"].(string)
	if !strings.Contains(tmpl, "value_json.pipeline == 'door'") || !strings.Contains(tmpl, "value_json['present']") {
		t.Errorf("presence template %s", tmpl)
	}
}
