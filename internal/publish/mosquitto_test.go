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
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/edged/edged/internal/testenv"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

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

func publishRaw(t testing.TB, broker, topic string, payload string, retained bool) {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(testenv.ClientID("test-pub")))
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

// helperEnv runs this test binary as a helper process (see TestHelperProcess).
func helperCmd(t testing.TB, mode string, env ...string) *exec.Cmd {
	cmd := testenv.SelfCommand("-test.run=^TestHelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), append([]string{"EDGED_PUBLISH_HELPER=" + mode}, env...)...)
	cmd.Stderr = os.Stderr
	testenv.DieWithParent(cmd)
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
