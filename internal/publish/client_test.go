package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/edged/edged/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newTestClient(t testing.TB, cfg Config, opt Options) *Client {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = testLogger(t)
	}
	c, err := New(cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

func TestEventsArriveWithPayloadsAndSeq(t *testing.T) {
	m := testenv.StartMosquitto(t)
	sub := testenv.Subscribe(t, m.URL(), false, "edged/pi-test/#")
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, t.TempDir(), m.URL())
	cfg.MetricsInterval = 200 * time.Millisecond
	c := newTestClient(t, cfg, Options{Registerer: reg, Metrics: func() map[string]any { return map[string]any{"frames_in": 42} }})
	waitUntil(t, "connected", 10*time.Second, c.Connected)

	// The retained online status, as a late subscriber sees it.
	late := testenv.Subscribe(t, m.URL(), false, "edged/pi-test/status")
	if st := late.WaitFor("edged/pi-test/status", 5*time.Second); string(st.Payload()) != StatusOnline || !st.Retained() {
		t.Fatalf("status %q retained=%v, want retained online", st.Payload(), st.Retained())
	}

	base := time.Date(2025, 6, 1, 10, 20, 30, 123456789, time.FixedZone("CEST", 2*3600))
	kinds := []string{"keyword", "detection", "motion", "sound"}
	topics := map[string]string{"keyword": "edged/pi-test/keyword", "detection": "edged/pi-test/detection",
		"motion": "edged/pi-test/motion", "sound": "edged/pi-test/event/sound"}
	const n = 40
	for i := range n {
		kind := kinds[i%len(kinds)]
		seq, err := c.Publish(t.Context(), Event{Kind: kind, Model: "m-" + kind, Time: base.Add(time.Duration(i) * time.Second),
			Latency: 12345 * time.Microsecond, Fields: map[string]any{"label": "yes", "score": 0.75, "n": i}})
		if err != nil {
			t.Fatal(err)
		}
		if seq != uint64(i+1) {
			t.Fatalf("Publish returned seq %d, want %d", seq, i+1)
		}
	}
	var got []eventPayload
	sawMetrics := false
	deadline := time.Now().Add(15 * time.Second)
	for len(got) < n {
		msg, ok := sub.Next(time.Until(deadline))
		if !ok {
			t.Fatalf("got %d of %d events", len(got), n)
		}
		switch {
		case msg.Topic() == "edged/pi-test/status":
			continue
		case msg.Topic() == "edged/pi-test/metrics":
			var mm map[string]any
			json.Unmarshal(msg.Payload(), &mm)
			if mm["frames_in"] != 42.0 || mm["device"] != "pi-test" || mm["outbox_events"] == nil {
				t.Errorf("metrics payload %s", msg.Payload())
			}
			sawMetrics = true
			continue
		}
		p := decodeEvent(t, msg)
		i := len(got)
		kind := kinds[i%len(kinds)]
		if msg.Topic() != topics[kind] || msg.Qos() != 1 || msg.Retained() {
			t.Errorf("event %d on %s qos %d retained %v, want %s qos 1", i, msg.Topic(), msg.Qos(), msg.Retained(), topics[kind])
		}
		want := eventPayload{Schema: 1, Seq: uint64(i + 1), TS: base.Add(time.Duration(i) * time.Second).UTC().Format("2006-01-02T15:04:05.000Z"),
			Device: "pi-test", Kind: kind, Model: "m-" + kind, LatencyMS: 12.345, Label: "yes", Score: 0.75, N: i}
		if p != want {
			t.Errorf("event %d:\n got %+v\nwant %+v\n(%s)", i, p, want, msg.Payload())
		}
		got = append(got, p)
	}
	if !strings.HasPrefix(got[0].TS, "2025-06-01T08:20:30.123Z") {
		t.Errorf("ts %q", got[0].TS)
	}
	waitUntil(t, "outbox drained", 5*time.Second, func() bool { return c.Outbox().Events == 0 })
	waitUntil(t, "metrics topic", 5*time.Second, func() bool {
		for {
			select {
			case msg := <-sub.Messages:
				if msg.Topic() == "edged/pi-test/metrics" {
					sawMetrics = true
				}
			default:
				return sawMetrics
			}
		}
	})
	if v := testutil.ToFloat64(c.m.acked); v != n {
		t.Errorf("acked metric %v, want %d", v, n)
	}
	if v := testutil.ToFloat64(c.m.connected); v != 1 {
		t.Errorf("connected metric %v", v)
	}
	if v := testutil.ToFloat64(c.m.published.WithLabelValues("keyword")); v != n/4 {
		t.Errorf("published{keyword} %v", v)
	}
	if cnt := testutil.CollectAndCount(reg, "edged_mqtt_ack_latency_seconds"); cnt != 1 {
		t.Errorf("ack latency histogram not registered (%d)", cnt)
	}
	if c.State() != StateConnected || c.State().String() != "connected" {
		t.Errorf("state %v", c.State())
	}

	// Bad events are refused without touching the outbox.
	for _, ev := range []Event{
		{Kind: "bad/kind"},
		{Kind: "keyword", Fields: map[string]any{"seq": 3}},
		{Kind: "keyword", Data: json.RawMessage(`[1,2]`)},
		{Kind: "keyword", Fields: map[string]any{"x": func() {}}},
	} {
		if _, err := c.Publish(t.Context(), ev); err == nil {
			t.Errorf("Publish(%+v) accepted", ev)
		}
	}
	if s := c.Outbox(); s.LastSeq != n {
		t.Errorf("last seq %d after refused events, want %d", s.LastSeq, n)
	}

	// Close publishes offline (retained) and unregisters the metrics.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(t.Context(), Event{Kind: "keyword"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close: %v", err)
	}
	late2 := testenv.Subscribe(t, m.URL(), false, "edged/pi-test/status")
	if st := late2.WaitFor("edged/pi-test/status", 5*time.Second); string(st.Payload()) != StatusOffline {
		t.Errorf("status after Close %q", st.Payload())
	}
	if cnt := testutil.CollectAndCount(reg); cnt != 0 {
		t.Errorf("%d metrics still registered after Close", cnt)
	}
}

func TestLastWillOfflineWhenKilled(t *testing.T) {
	m := testenv.StartMosquitto(t)
	cmd := helperCmd(t, "online", "EDGED_HELPER_BROKER="+m.URL(), "EDGED_HELPER_DIR="+t.TempDir())
	startHelper(t, cmd)
	sub := testenv.Subscribe(t, m.URL(), false, "edged/pi-test/status")
	if st := sub.WaitFor("edged/pi-test/status", 5*time.Second); string(st.Payload()) != StatusOnline || !st.Retained() {
		t.Fatalf("status %q retained=%v, want retained online", st.Payload(), st.Retained())
	}
	cmd.Process.Kill() // SIGKILL: no DISCONNECT, the broker sends the will
	st := sub.WaitFor("edged/pi-test/status", 10*time.Second)
	if string(st.Payload()) != StatusOffline {
		t.Fatalf("status after kill -9: %q, want offline", st.Payload())
	}
	late := testenv.Subscribe(t, m.URL(), false, "edged/pi-test/status")
	if st := late.WaitFor("edged/pi-test/status", 5*time.Second); string(st.Payload()) != StatusOffline || !st.Retained() {
		t.Fatalf("retained status after kill -9: %q retained=%v", st.Payload(), st.Retained())
	}
}

func TestOutageEveryEventArrivesInOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("10 s broker outage")
	}
	m := testenv.StartMosquitto(t)
	g := newGate(t, fmt.Sprintf("127.0.0.1:%d", m.Port))
	c := newTestClient(t, testConfig(t, t.TempDir(), g.url()), Options{})
	waitUntil(t, "connected", 10*time.Second, c.Connected)

	var mu sync.Mutex
	var seqs []uint64
	collect := func(s *testenv.Subscriber, stop <-chan struct{}, done chan<- struct{}) {
		defer close(done)
		for {
			select {
			case msg := <-s.Messages:
				if msg.Topic() == "edged/pi-test/detection" {
					p := decodeEvent(t, msg)
					mu.Lock()
					seqs = append(seqs, p.Seq)
					mu.Unlock()
				}
			case <-stop:
				return
			}
		}
	}
	sub1 := testenv.Subscribe(t, m.URL(), false, "edged/pi-test/detection")
	stop1, done1 := make(chan struct{}), make(chan struct{})
	go collect(sub1, stop1, done1)

	// A producer publishing every 10 ms throughout.
	ctx, cancel := context.WithCancel(t.Context())
	var last uint64
	var perr error
	prodDone := make(chan struct{})
	go func() {
		defer close(prodDone)
		for i := 0; ctx.Err() == nil; i++ {
			seq, err := c.Publish(ctx, Event{Kind: "detection", Model: "person", Fields: map[string]any{"n": i}})
			if err != nil {
				if ctx.Err() == nil {
					perr = err
				}
				return
			}
			last = seq
			time.Sleep(10 * time.Millisecond)
		}
	}()

	time.Sleep(1500 * time.Millisecond)
	m.Stop()
	g.setOpen(false) // no reconnection until the new subscriber is in place
	waitUntil(t, "disconnected", 10*time.Second, func() bool { return !c.Connected() })
	close(stop1)
	<-done1
	time.Sleep(10 * time.Second)
	if ev := c.Outbox().Events; ev < 100 {
		t.Errorf("only %d events waiting after a 10 s outage", ev)
	}
	m.Start()
	sub2 := testenv.Subscribe(t, m.URL(), false, "edged/pi-test/detection")
	stop2, done2 := make(chan struct{}), make(chan struct{})
	go collect(sub2, stop2, done2)
	g.setOpen(true)
	waitUntil(t, "reconnected", 15*time.Second, c.Connected)
	time.Sleep(1500 * time.Millisecond)
	cancel()
	<-prodDone
	if perr != nil {
		t.Fatal(perr)
	}
	waitUntil(t, "outbox drained", 20*time.Second, func() bool { return c.Outbox().Events == 0 })
	waitUntil(t, "subscriber caught up", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seqs) > 0 && slicesMax(seqs) == last
	})
	time.Sleep(200 * time.Millisecond)
	close(stop2)
	<-done2
	testenv.CheckNoGaps(t, seqs, last)
	if v := testutil.ToFloat64(c.m.connects); v < 2 {
		t.Errorf("connects %v, want a reconnection", v)
	}
}

// TestConnectionCutsMidStream cuts the connection repeatedly while events
// stream at full speed, so that some are in flight at every cut.
func TestConnectionCutsMidStream(t *testing.T) {
	m := testenv.StartMosquitto(t)
	g := newGate(t, fmt.Sprintf("127.0.0.1:%d", m.Port))
	sub := testenv.Subscribe(t, m.URL(), false, "edged/pi-test/detection")
	c := newTestClient(t, testConfig(t, t.TempDir(), g.url()), Options{})
	waitUntil(t, "connected", 10*time.Second, c.Connected)
	const n = 3000
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if _, err := c.Publish(t.Context(), Event{Kind: "detection", Model: "person", Fields: map[string]any{"n": i}}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range 5 {
		time.Sleep(150 * time.Millisecond)
		g.setOpen(false)
		time.Sleep(50 * time.Millisecond)
		g.setOpen(true)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "outbox drained", 30*time.Second, func() bool { return c.Outbox().Events == 0 })
	var seqs []uint64
	for {
		msg, ok := sub.Next(500 * time.Millisecond)
		if !ok {
			break
		}
		seqs = append(seqs, decodeEvent(t, msg).Seq)
	}
	testenv.CheckNoGaps(t, seqs, n)
	if v := testutil.ToFloat64(c.m.connects); v < 2 {
		t.Errorf("connects %v: the cuts did not land", v)
	}
	t.Logf("%v connections, %v PUBLISH packets for %d events", testutil.ToFloat64(c.m.connects), testutil.ToFloat64(c.m.sent), n)
}

func slicesMax(s []uint64) uint64 {
	var m uint64
	for _, v := range s {
		m = max(m, v)
	}
	return m
}

func TestKill9OutboxDeliveredAfterRestart(t *testing.T) {
	dir := t.TempDir()
	// The helper publishes with no broker to talk to, then dies.
	nobody := fmt.Sprintf("tcp://127.0.0.1:%d", testenv.FreePort(t))
	cmd := helperCmd(t, "outbox", "EDGED_HELPER_BROKER="+nobody, "EDGED_HELPER_DIR="+dir, "EDGED_HELPER_EVENTS=300")
	f := startHelper(t, cmd)
	if f[1] != "300" || f[2] != "300" {
		t.Fatalf("helper: last seq %s, outbox %s events; want 300, 300", f[1], f[2])
	}
	cmd.Process.Kill()
	cmd.Wait()

	m := testenv.StartMosquitto(t)
	sub := testenv.Subscribe(t, m.URL(), false, "edged/pi-test/detection")
	c := newTestClient(t, testConfig(t, dir, m.URL()), Options{})
	if s := c.Outbox(); s.Events != 300 || s.LastSeq != 300 {
		t.Fatalf("outbox after kill -9: %+v", s)
	}
	var seqs []uint64
	for len(seqs) < 300 {
		msg, ok := sub.Next(15 * time.Second)
		if !ok {
			t.Fatalf("%d of 300 events delivered", len(seqs))
		}
		p := decodeEvent(t, msg)
		if p.N != int(p.Seq)-1 {
			t.Fatalf("seq %d carries n=%d", p.Seq, p.N)
		}
		seqs = append(seqs, p.Seq)
	}
	testenv.CheckNoGaps(t, seqs, 300)
	seq, err := c.Publish(t.Context(), Event{Kind: "detection", Model: "person"})
	if err != nil || seq != 301 {
		t.Fatalf("next Publish: seq %d, %v; want 301", seq, err)
	}
}

func TestCommandsAndResubscribeAfterReconnect(t *testing.T) {
	m := testenv.StartMosquitto(t)
	g := newGate(t, fmt.Sprintf("127.0.0.1:%d", m.Port))
	type cmd struct{ sub, payload string }
	cmds := make(chan cmd, 10)
	c := newTestClient(t, testConfig(t, t.TempDir(), g.url()), Options{OnCommand: func(sub string, p []byte) { cmds <- cmd{sub, string(p)} }})
	waitUntil(t, "connected", 10*time.Second, c.Connected)
	if err := c.SetSourceStatus("camera", "failed", errors.New("device unplugged")); err != nil {
		t.Fatal(err)
	}
	if err := c.SetSourceStatus("bad/name", "failed", nil); err == nil {
		t.Error("bad source name accepted")
	}
	expect := func(want cmd) {
		t.Helper()
		select {
		case got := <-cmds:
			if got != want {
				t.Fatalf("command %+v, want %+v", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("command %+v not received", want)
		}
	}
	publishRaw(t, m.URL(), "edged/pi-test/cmd/reload", "", false)
	expect(cmd{"reload", ""})
	publishRaw(t, m.URL(), "edged/pi-test/cmd/snapshot", `{"camera":"front"}`, false)
	expect(cmd{"snapshot", `{"camera":"front"}`})
	// A command published retained runs once; the retained copy that the
	// broker hands out on the next subscription is ignored.
	publishRaw(t, m.URL(), "edged/pi-test/cmd/reload", "retained", true)
	expect(cmd{"reload", "retained"})

	// The connection drops (not the broker): the client reconnects and
	// subscribes again.
	g.setOpen(false)
	waitUntil(t, "disconnected", 10*time.Second, func() bool { return !c.Connected() })
	g.setOpen(true)
	waitUntil(t, "reconnected", 15*time.Second, c.Connected)
	time.Sleep(300 * time.Millisecond) // the subscription follows the connection
	publishRaw(t, m.URL(), "edged/pi-test/cmd/reload", "again", false)
	expect(cmd{"reload", "again"})

	// Broker restart: everything retained is gone; the client restores it.
	m.Stop()
	waitUntil(t, "disconnected", 10*time.Second, func() bool { return !c.Connected() })
	if c.State() == StateConnected {
		t.Fatal("still connected")
	}
	m.Start()
	waitUntil(t, "reconnected", 15*time.Second, c.Connected)
	time.Sleep(300 * time.Millisecond)
	publishRaw(t, m.URL(), "edged/pi-test/cmd/snapshot", "after restart", false)
	expect(cmd{"snapshot", "after restart"})
	select {
	case got := <-cmds:
		t.Fatalf("unexpected command %+v", got)
	default:
	}
	late := testenv.Subscribe(t, m.URL(), false, "edged/pi-test/status", "edged/pi-test/source/+/status")
	got := map[string]string{}
	for len(got) < 2 {
		msg, ok := late.Next(5 * time.Second)
		if !ok {
			t.Fatalf("retained messages after broker restart: %v", got)
		}
		if !msg.Retained() {
			t.Fatalf("%s not retained", msg.Topic())
		}
		got[msg.Topic()] = string(msg.Payload())
	}
	if got["edged/pi-test/status"] != StatusOnline {
		t.Errorf("status %q", got["edged/pi-test/status"])
	}
	var src map[string]any
	json.Unmarshal([]byte(got["edged/pi-test/source/camera/status"]), &src)
	if src["state"] != "failed" || src["error"] != "device unplugged" || src["source"] != "camera" || src["device"] != "pi-test" {
		t.Errorf("source status %v", got["edged/pi-test/source/camera/status"])
	}
}

func TestHomeAssistantDiscovery(t *testing.T) {
	m := testenv.StartMosquitto(t)
	cfg := testConfig(t, t.TempDir(), m.URL())
	cfg.Discovery.Enabled = true
	ents := []Entity{
		BinarySensor("person", "Person", "detection", "person_detect", "label", "person", 30*time.Second, "occupancy"),
		Sensor("last_keyword", "Last keyword", "keyword", "micro_speech", "label"),
		EventEntity("keyword_event", "Keyword", "keyword", "micro_speech", "label", []string{"yes", "no"}),
	}
	c := newTestClient(t, cfg, Options{Entities: ents, Device: DeviceInfo{Name: "Kitchen Pi", Model: "Raspberry Pi 4", SWVersion: "1.2.3"}})
	waitUntil(t, "connected", 10*time.Second, c.Connected)
	topics := []string{
		"homeassistant/binary_sensor/pi-test/person/config",
		"homeassistant/sensor/pi-test/last_keyword/config",
		"homeassistant/event/pi-test/keyword_event/config",
	}
	read := func(s *testenv.Subscriber, retained bool) map[string]map[string]any {
		t.Helper()
		got := map[string]map[string]any{}
		for len(got) < len(topics) {
			msg, ok := s.Next(5 * time.Second)
			if !ok {
				t.Fatalf("discovery configs: got %d of %d", len(got), len(topics))
			}
			if msg.Topic() == "homeassistant/status" {
				continue
			}
			if msg.Retained() != retained {
				t.Errorf("%s retained=%v, want %v", msg.Topic(), msg.Retained(), retained)
			}
			var p map[string]any
			if err := json.Unmarshal(msg.Payload(), &p); err != nil {
				t.Fatalf("%s: %v", msg.Topic(), err)
			}
			got[msg.Topic()] = p
		}
		return got
	}
	// peek drains the messages waiting in s and puts them back.
	peek := func(s *testenv.Subscriber) []mqtt.Message {
		var msgs []mqtt.Message
		for len(s.Messages) > 0 {
			msgs = append(msgs, <-s.Messages)
		}
		for _, m := range msgs {
			s.Messages <- m
		}
		return msgs
	}
	var got map[string]map[string]any
	waitUntil(t, "configs retained", 5*time.Second, func() bool {
		s := testenv.Subscribe(t, m.URL(), false, "homeassistant/#")
		defer s.Client.Disconnect(0)
		time.Sleep(100 * time.Millisecond)
		if len(s.Messages) < len(topics) {
			return false
		}
		// On a slow machine the subscription can land while the configs
		// are still being published: they then arrive live, not retained.
		// Only a subscriber that came after them sees them all retained.
		for _, msg := range peek(s) {
			if !msg.Retained() && msg.Topic() != "homeassistant/status" {
				return false
			}
		}
		got = read(s, true)
		return true
	})
	for _, tp := range topics {
		p := got[tp]
		if p == nil {
			t.Fatalf("no config on %s (got %v)", tp, got)
		}
		if p["~"] != "edged/pi-test" || p["availability_topic"] != "~/status" || p["payload_available"] != "online" || p["payload_not_available"] != "offline" {
			t.Errorf("%s: availability %v", tp, p)
		}
		dev, _ := p["device"].(map[string]any)
		if fmt.Sprint(dev["identifiers"]) != "[edged_pi-test]" || dev["name"] != "Kitchen Pi" || dev["model"] != "Raspberry Pi 4" || dev["sw_version"] != "1.2.3" {
			t.Errorf("%s: device %v", tp, dev)
		}
	}
	bs := got[topics[0]]
	if bs["state_topic"] != "~/detection" || bs["unique_id"] != "pi-test_person" || bs["device_class"] != "occupancy" || bs["off_delay"] != 30.0 ||
		bs["value_template"] != "{{ 'ON' if value_json.model == 'person_detect' and value_json['label'] == 'person' else '' }}" {
		t.Errorf("binary sensor %v", bs)
	}
	if ev := got[topics[2]]; fmt.Sprint(ev["event_types"]) != "[yes no]" || ev["state_topic"] != "~/keyword" {
		t.Errorf("event entity %v", ev)
	}

	// Home Assistant restarts: its birth message makes us announce again.
	live := testenv.Subscribe(t, m.URL(), false, "homeassistant/+/pi-test/+/config")
	for len(live.Messages) > 0 {
		<-live.Messages // the retained copies
	}
	time.Sleep(100 * time.Millisecond)
	for len(live.Messages) > 0 {
		<-live.Messages
	}
	publishRaw(t, m.URL(), "homeassistant/status", "online", false)
	again := read(live, false)
	if len(again) != len(topics) {
		t.Fatalf("re-sent %d configs", len(again))
	}

	// Removing an entity deletes its config.
	if err := c.SetEntities(ents[:2]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		msg, ok := live.Next(time.Until(deadline))
		if !ok {
			t.Fatal("removed entity's config not cleared")
		}
		if msg.Topic() == topics[2] {
			if len(msg.Payload()) != 0 {
				t.Fatalf("removed entity: payload %q", msg.Payload())
			}
			break
		}
	}
	if err := c.SetEntities([]Entity{{Component: "Bad Component", ObjectID: "x"}}); err == nil {
		t.Error("bad entity accepted")
	}
}

func TestEmbeddedBroker(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stop, err := StartEmbeddedBroker(ctx, addr, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if _, err := StartEmbeddedBroker(ctx, addr, nil); err == nil {
		t.Error("a second broker on the same address started")
	}
	url := "tcp://" + addr
	sub := testenv.Subscribe(t, url, false, "edged/#")
	c := newTestClient(t, testConfig(t, t.TempDir(), url), Options{})
	waitUntil(t, "connected", 10*time.Second, c.Connected)
	for i := range 5 {
		if _, err := c.Publish(t.Context(), Event{Kind: "keyword", Model: "kws", Fields: map[string]any{"label": "yes", "n": i}}); err != nil {
			t.Fatal(err)
		}
	}
	var seqs []uint64
	for len(seqs) < 5 {
		msg, ok := sub.Next(5 * time.Second)
		if !ok {
			t.Fatalf("%d of 5 events through the embedded broker", len(seqs))
		}
		if msg.Topic() == "edged/pi-test/keyword" {
			seqs = append(seqs, decodeEvent(t, msg).Seq)
		}
	}
	testenv.CheckNoGaps(t, seqs, 5)
	publishRaw(t, url, "edged/pi-test/x", "hello", true)
	late := testenv.Subscribe(t, url, false, "edged/pi-test/x")
	if msg := late.WaitFor("edged/pi-test/x", 5*time.Second); string(msg.Payload()) != "hello" || !msg.Retained() {
		t.Errorf("retained message %q %v", msg.Payload(), msg.Retained())
	}
	stop()
	waitUntil(t, "client notices the broker stopped", 10*time.Second, func() bool { return !c.Connected() })
}

func TestNewStartsWithoutBroker(t *testing.T) {
	dir := t.TempDir()
	url := fmt.Sprintf("tcp://127.0.0.1:%d", testenv.FreePort(t))
	start := time.Now()
	c := newTestClient(t, testConfig(t, dir, url), Options{})
	if time.Since(start) > time.Second {
		t.Errorf("New took %v with no broker", time.Since(start))
	}
	for i := range 3 {
		if seq, err := c.Publish(t.Context(), Event{Kind: "motion", Model: "pir"}); err != nil || seq != uint64(i+1) {
			t.Fatalf("Publish: %d %v", seq, err)
		}
	}
	waitUntil(t, "a failed attempt", 5*time.Second, func() bool { return c.State() == StateDisconnected || c.State() == StateConnecting })
	if s := c.Outbox(); s.Events != 3 {
		t.Errorf("outbox %+v", s)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("Close took %v", time.Since(start))
	}
	if c.State() != StateClosed {
		t.Errorf("state %v after Close", c.State())
	}
	// The events wait on disk.
	o, err := openOutbox(outboxOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer o.close()
	if s := o.stats(); s.Events != 3 {
		t.Errorf("on disk after Close: %+v", s)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := New(Config{Brokers: []string{"http://x"}, DeviceID: "a b"}, Options{})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"mqtt.brokers[0]", "mqtt.device_id", "mqtt.outbox.dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	_, err = New(Config{DeviceID: "a", Outbox: OutboxConfig{Dir: t.TempDir()}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "mqtt.brokers") {
		t.Errorf("no brokers: %v", err)
	}
}
