package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Mosquitto is a real MQTT broker a test runs on a free loopback port, with
// its own config file and persistence off. Tests that need it skip when
// mosquitto is not installed (Debian: apt-get install mosquitto), and fail
// under CI.
type Mosquitto struct {
	Port int

	t    testing.TB
	bin  string
	conf string
	logs *SyncBuffer

	mu  sync.Mutex
	cmd *exec.Cmd
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers (process
// output) and readers.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreePort returns a loopback TCP port nothing listens on.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartMosquitto starts a broker; it is stopped when the test ends.
func StartMosquitto(t testing.TB) *Mosquitto {
	t.Helper()
	bin := "/usr/sbin/mosquitto" // Debian's place, not on a normal user's PATH
	if _, err := os.Stat(bin); err != nil {
		bin = Program(t, "mosquitto")
	}
	m := &Mosquitto{t: t, bin: bin, Port: FreePort(t), logs: &SyncBuffer{}}
	m.conf = filepath.Join(t.TempDir(), "mosquitto.conf")
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\nmax_queued_messages 100000\n", m.Port)
	if os.Geteuid() == 0 {
		conf += "user root\n" // stay root: no privilege drop needed for a test broker
	}
	if err := os.WriteFile(m.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(func() {
		m.Stop()
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", m.logs.String())
		}
	})
	return m
}

// URL is the broker's tcp:// URL.
func (m *Mosquitto) URL() string { return fmt.Sprintf("tcp://127.0.0.1:%d", m.Port) }

// Start (re)starts the broker and waits until it listens.
func (m *Mosquitto) Start() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		m.t.Fatal("mosquitto already running")
	}
	cmd := exec.Command(m.bin, "-c", m.conf)
	cmd.Stdout, cmd.Stderr = m.logs, m.logs
	DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	m.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", m.Port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto did not listen on %d: %v\n%s", m.Port, err, m.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the broker (SIGTERM, then SIGKILL after 5 s).
func (m *Mosquitto) Stop() {
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

// Subscriber is a plain paho client collecting messages.
type Subscriber struct {
	Client   mqtt.Client
	Messages chan mqtt.Message

	t testing.TB
}

var clientCount atomic.Int64

// ClientID returns a client id unique in this process.
func ClientID(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), clientCount.Add(1))
}

// Subscribe connects to broker and subscribes (QoS 1) to topics. With
// reconnect, the client reconnects and resubscribes after a broker restart,
// retrying every 100 ms.
func Subscribe(t testing.TB, broker string, reconnect bool, topics ...string) *Subscriber {
	t.Helper()
	s := &Subscriber{t: t, Messages: make(chan mqtt.Message, 100000)}
	filters := map[string]byte{}
	for _, tp := range topics {
		filters[tp] = 1
	}
	handler := func(_ mqtt.Client, m mqtt.Message) { s.Messages <- m }
	o := mqtt.NewClientOptions().AddBroker(broker).SetClientID(ClientID("test-sub")).
		SetAutoReconnect(reconnect).SetCleanSession(true).SetConnectTimeout(5 * time.Second).
		SetMaxReconnectInterval(100 * time.Millisecond).SetConnectRetryInterval(100 * time.Millisecond)
	if reconnect {
		o.SetOnConnectHandler(func(c mqtt.Client) { c.SubscribeMultiple(filters, handler) })
	}
	s.Client = mqtt.NewClient(o)
	if tok := s.Client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	if !reconnect {
		if tok := s.Client.SubscribeMultiple(filters, handler); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe: %v", tok.Error())
		}
	}
	t.Cleanup(func() { s.Client.Disconnect(0) })
	return s
}

// Next returns the next message, or false after timeout.
func (s *Subscriber) Next(timeout time.Duration) (mqtt.Message, bool) {
	select {
	case m := <-s.Messages:
		return m, true
	case <-time.After(timeout):
		return nil, false
	}
}

// WaitFor returns the first message on topic (others are discarded).
func (s *Subscriber) WaitFor(topic string, timeout time.Duration) mqtt.Message {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m, ok := s.Next(time.Until(deadline))
		if !ok {
			s.t.Fatalf("no message on %s within %v", topic, timeout)
		}
		if m.Topic() == topic {
			return m
		}
	}
}

// CheckNoGaps checks that seqs arrive in order: each is at most one above
// the highest seen so far (duplicates allowed, gaps not), and that every
// seq from 1 to last was seen.
func CheckNoGaps(t testing.TB, seqs []uint64, last uint64) {
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
