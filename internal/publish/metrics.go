package publish

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the package's Prometheus collectors. Names:
//
//	edged_mqtt_events_published_total{kind}  events accepted by Publish (durable in the outbox)
//	edged_mqtt_events_sent_total             PUBLISH packets sent for events (resends included)
//	edged_mqtt_events_acked_total            events acknowledged by the broker
//	edged_mqtt_events_dropped_total{reason}  events dropped from the outbox: full, age, corrupt
//	edged_mqtt_outbox_events                 events waiting in the outbox
//	edged_mqtt_outbox_bytes                  their size on disk
//	edged_mqtt_connected                     1 while connected to a broker
//	edged_mqtt_connects_total                successful connections
//	edged_mqtt_ack_latency_seconds           Publish → broker acknowledgement
type metrics struct {
	published  *prometheus.CounterVec
	sent       prometheus.Counter
	acked      prometheus.Counter
	dropped    *prometheus.CounterVec
	depth      prometheus.GaugeFunc
	depthBytes prometheus.GaugeFunc
	connected  prometheus.Gauge
	connects   prometheus.Counter
	ackLatency prometheus.Histogram

	reg prometheus.Registerer
}

func newMetrics(stats func() outboxStats) *metrics {
	const ns, sub = "edged", "mqtt"
	m := &metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_published_total",
			Help: "Events accepted by Publish (durable in the outbox), by kind."}, []string{"kind"}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_sent_total",
			Help: "PUBLISH packets sent for events, resends after a reconnection included."}),
		acked: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_acked_total",
			Help: "Events acknowledged by the broker and removed from the outbox."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_dropped_total",
			Help: "Events dropped from the outbox without delivery: full (MaxBytes, oldest first), age (MaxAge), corrupt (unreadable on disk)."}, []string{"reason"}),
		depth: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "outbox_events",
			Help: "Events waiting in the outbox for a broker acknowledgement."}, func() float64 { return float64(stats().Events) }),
		depthBytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "outbox_bytes",
			Help: "On-disk size of the events waiting in the outbox."}, func() float64 { return float64(stats().Bytes) }),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "connected",
			Help: "1 while connected to an MQTT broker, else 0."}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "connects_total",
			Help: "Successful connections to a broker."}),
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "ack_latency_seconds",
			Help:    "Time from Publish to the broker's acknowledgement (includes time spent waiting out an outage).",
			Buckets: prometheus.ExponentialBucketsRange(0.0005, 3600, 24)}),
	}
	for _, r := range []string{DropFull, DropAge, DropCorrupt} {
		m.dropped.WithLabelValues(r)
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.published, m.sent, m.acked, m.dropped, m.depth, m.depthBytes, m.connected, m.connects, m.ackLatency}
}

func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for i, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			for _, d := range m.collectors()[:i] {
				reg.Unregister(d)
			}
			return err
		}
	}
	m.reg = reg
	return nil
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors() {
		m.reg.Unregister(c)
	}
	m.reg = nil
}
