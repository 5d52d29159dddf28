package publish

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edged/edged/internal/testenv"
	"go.uber.org/zap"
)

// BenchmarkPublishToAck measures the publish path against mosquitto on
// localhost: throughput (events/s from the first Publish to the last
// broker acknowledgement), the latency from Publish to the broker's PUBACK
// (p50/p99, outbox fsync included), and the time a Publish call takes
// (the durable append: encoding, write, group fsync).
func BenchmarkPublishToAck(b *testing.B) {
	m := testenv.StartMosquitto(b)
	for _, producers := range []int{1, 4} {
		for _, window := range []time.Duration{0, 2 * time.Millisecond} {
			b.Run(fmt.Sprintf("producers=%d/sync_window=%v", producers, window), func(b *testing.B) {
				benchPublish(b, m, producers, window)
			})
		}
	}
}

func benchPublish(b *testing.B, m *testenv.Mosquitto, producers int, window time.Duration) {
	var mu sync.Mutex
	lats := make([]time.Duration, 0, b.N)
	var acked atomic.Int64
	cfg := testConfig(b, b.TempDir(), m.URL())
	cfg.Outbox.SyncInterval = window
	c, err := newClient(cfg, Options{Logger: zap.NewNop()}, func(c *Client) {
		c.onAck = func(_ uint64, lat time.Duration) {
			mu.Lock()
			lats = append(lats, lat)
			mu.Unlock()
			acked.Add(1)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(b.Context())
	waitUntil(b, "connected", 10*time.Second, c.Connected)
	ev := Event{Kind: "detection", Model: "person_detect", Latency: 87 * time.Millisecond,
		Fields: map[string]any{"label": "person", "score": 0.91, "box": []float64{0.12, 0.20, 0.55, 0.97}}}
	calls := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				e := ev
				e.Time = time.Now()
				t0 := time.Now()
				if _, err := c.Publish(b.Context(), e); err != nil {
					b.Error(err)
					return
				}
				calls[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	waitUntil(b, "every event acknowledged", 60*time.Second, func() bool { return acked.Load() >= int64(b.N) })
	elapsed := time.Since(start)
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lats)
	slices.Sort(calls)
	pct := func(s []time.Duration, p float64) time.Duration { return s[min(len(s)-1, int(float64(len(s))*p))] }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(pct(lats, 0.50).Microseconds())/1000, "ack-p50-ms")
	b.ReportMetric(float64(pct(lats, 0.99).Microseconds())/1000, "ack-p99-ms")
	b.ReportMetric(float64(pct(calls, 0.50).Microseconds()), "publish-p50-µs")
	b.ReportMetric(float64(pct(calls, 0.99).Microseconds()), "publish-p99-µs")
}
