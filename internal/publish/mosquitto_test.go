package publish

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/edged/edged/internal/testenv"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// mosquitto is a broker the test runs on a free loopback port, with its
// own config file and persistence off.
type mosquitto struct {
	t    testing.TB
	bin  string
	port int
	conf string
	logs *syncBuffer

	mu  sync.Mutex
	cmd *exec.Cmd
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startMosquitto(t testing.TB) *mosquitto {
	t.Helper()
	bin := "/usr/sbin/mosquitto" // Debian's place, not on a normal user's PATH
	if _, err := os.Stat(bin); err != nil {
		bin = testenv.Program(t, "mosquitto")
	}
	m := &mosquitto{t: t, bin: bin, port: freePort(t), logs: &syncBuffer{}}
	m.conf = filepath.Join(t.TempDir(), "mosquitto.conf")
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\nmax_queued_messages 100000\n", m.port)
	if os.Geteuid() == 0 {
		conf += "user root\n" // stay root: no privilege drop needed for a test broker
	}
	if err := os.WriteFile(m.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	m.start()
	t.Cleanup(func() {
		m.stop()
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", m.logs.String())
		}
	})
	return m
}

func (m *mosquitto) url() string { return fmt.Sprintf("tcp://127.0.0.1:%d", m.port) }

func (m *mosquitto) start() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		m.t.Fatal("mosquitto already running")
	}
	cmd := exec.Command(m.bin, "-c", m.conf)
	cmd.Stdout, cmd.Stderr = m.logs, m.logs
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	m.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", m.port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto did not listen on %d: %v\n%s", m.port, err, m.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (m *mosquitto) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { m.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		m.cmd.Process.Kill()
		<-done
	}
	m.cmd = nil
}

// gate is a TCP proxy in front of a broker that the test can close: while
// closed it accepts connections and drops them at once; closing it also
// cuts the connections through it.
type gate struct {
	l      net.Listener
	target string
	open   atomic.Bool
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

func newGate(t testing.TB, target string) *gate {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{l: l, target: target, conns: map[net.Conn]bool{}}
	g.open.Store(true)
	go g.serve()
	t.Cleanup(func() { l.Close(); g.setOpen(false) })
	return g
}

func (g *gate) url() string { return "tcp://" + g.l.Addr().String() }

func (g *gate) setOpen(open bool) {
	g.open.Store(open)
	if !open {
		g.mu.Lock()
		for c := range g.conns {
			c.Close()
		}
		g.mu.Unlock()
	}
}

func (g *gate) serve() {
	for {
		c, err := g.l.Accept()
		if err != nil {
			return
		}
		if !g.open.Load() {
			c.Close()
			continue
		}
		u, err := net.Dial("tcp", g.target)
		if err != nil {
			c.Close()
			continue
		}
		g.mu.Lock()
		g.conns[c], g.conns[u] = true, true
		g.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src)
			dst.Close()
			src.Close()
			g.mu.Lock()
			delete(g.conns, dst)
			delete(g.conns, src)
			g.mu.Unlock()
		}
		go pipe(u, c)
		go pipe(c, u)
	}
}

// subscriber is a plain paho client collecting messages.
type subscriber struct {
	t  testing.TB
	c  mqtt.Client
	ch chan mqtt.Message
}

var subCount atomic.Int64

func subscribe(t testing.TB, broker string, topics ...string) *subscriber {
	t.Helper()
	s := &subscriber{t: t, ch: make(chan mqtt.Message, 100000)}
	o := mqtt.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("test-sub-%d-%d", os.Getpid(), subCount.Add(1))).
		SetAutoReconnect(false).SetCleanSession(true).SetConnectTimeout(5 * time.Second)
	s.c = mqtt.NewClient(o)
	if tok := s.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	filters := map[string]byte{}
	for _, tp := range topics {
		filters[tp] = 1
	}
	if tok := s.c.SubscribeMultiple(filters, func(_ mqtt.Client, m mqtt.Message) { s.ch <- m }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { s.c.Disconnect(0) })
	return s
}

func (s *subscriber) next(timeout time.Duration) (mqtt.Message, bool) {
	select {
	case m := <-s.ch:
		return m, true
	case <-time.After(timeout):
		return nil, false
	}
}

// waitFor returns the first message on topic (others are discarded).
func (s *subscriber) waitFor(topic string, timeout time.Duration) mqtt.Message {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m, ok := s.next(time.Until(deadline))
		if !ok {
			s.t.Fatalf("no message on %s within %v", topic, timeout)
		}
		if m.Topic() == topic {
			return m
		}
	}
}

func publishRaw(t testing.TB, broker, topic string, payload string, retained bool) {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("test-pub-%d-%d", os.Getpid(), subCount.Add(1))))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Publish(topic, 1, retained, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
}

type eventPayload struct {
	Schema    int     `json:"schema"`
	Seq       uint64  `json:"seq"`
	TS        string  `json:"ts"`
	Device    string  `json:"device"`
	Kind      string  `json:"kind"`
	Model     string  `json:"model"`
	LatencyMS float64 `json:"latency_ms"`
	Label     string  `json:"label"`
	Score     float64 `json:"score"`
	N         int     `json:"n"`
}

func decodeEvent(t testing.TB, m mqtt.Message) eventPayload {
	t.Helper()
	var p eventPayload
	if err := json.Unmarshal(m.Payload(), &p); err != nil {
		t.Fatalf("%s: %v: %s", m.Topic(), err, m.Payload())
	}
	return p
}

func testConfig(t testing.TB, dir string, brokers ...string) Config {
	return Config{
		Brokers:              brokers,
		DeviceID:             "pi-test",
		KeepAlive:            5 * time.Second,
		ConnectTimeout:       2 * time.Second,
		MaxReconnectInterval: 300 * time.Millisecond,
		MetricsInterval:      -1,
		Outbox:               OutboxConfig{Dir: dir},
	}
}

func testLogger(t testing.TB) *zap.Logger {
	if os.Getenv("EDGED_TEST_LOG") != "" {
		return zaptest.NewLogger(t)
	}
	return zap.NewNop()
}

func waitUntil(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkNoGaps checks that seqs arrive in order: each is at most one above
// the highest seen so far (duplicates allowed, gaps not), and that every
// seq from 1 to last was seen.
func checkNoGaps(t testing.TB, seqs []uint64, last uint64) {
	t.Helper()
	var high uint64
	seen := map[uint64]bool{}
	dups := 0
	for i, s := range seqs {
		if s > high+1 {
			t.Fatalf("gap: seq %d arrived (message %d) after at most %d", s, i, high)
		}
		if seen[s] {
			dups++
		}
		seen[s] = true
		high = max(high, s)
	}
	if high != last || len(seen) != int(last) {
		t.Fatalf("saw %d distinct seqs up to %d, want 1..%d", len(seen), high, last)
	}
	t.Logf("%d messages, seqs 1..%d, %d duplicates", len(seqs), last, dups)
}

// helperEnv runs this test binary as a helper process (see TestHelperProcess).
func helperCmd(t testing.TB, mode string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), append([]string{"EDGED_PUBLISH_HELPER=" + mode}, env...)...)
	cmd.Stderr = os.Stderr
	dieWithParent(cmd)
	return cmd
}

// TestHelperProcess is the publisher run in a child process by the kill -9
// tests; it does nothing in a normal test run.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("EDGED_PUBLISH_HELPER")
	if mode == "" {
		t.Skip("helper process for the kill -9 tests")
	}
	cfg := testConfig(t, os.Getenv("EDGED_HELPER_DIR"), os.Getenv("EDGED_HELPER_BROKER"))
	c, err := New(cfg, Options{Logger: zap.NewNop()})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	switch mode {
	case "online":
		for !c.Connected() {
			time.Sleep(5 * time.Millisecond)
		}
		fmt.Println("ready")
	case "outbox":
		n, _ := strconv.Atoi(os.Getenv("EDGED_HELPER_EVENTS"))
		var last uint64
		for i := range n {
			last, err = c.Publish(t.Context(), Event{Kind: "detection", Model: "person", Fields: map[string]any{"n": i}})
			if err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
		}
		fmt.Printf("ready %d %d\n", last, c.Outbox().Events)
	}
	time.Sleep(2 * time.Minute) // the test kills it long before
	os.Exit(3)
}

func startHelper(t *testing.T, cmd *exec.Cmd) []string {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var f []string
			for _, w := range bytes.Fields(sc.Bytes()) {
				f = append(f, string(w))
			}
			if len(f) > 0 && (f[0] == "ready" || f[0] == "error") {
				lines <- f
				io.Copy(io.Discard, out)
				return
			}
		}
		lines <- []string{"error", "helper exited"}
	}()
	select {
	case f := <-lines:
		if f[0] != "ready" {
			t.Fatalf("helper: %v", f)
		}
		return f
	case <-time.After(30 * time.Second):
		t.Fatal("helper did not get ready")
	}
	return nil
}
