package publish

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Options are what the daemon gives the client besides the YAML section.
type Options struct {
	Logger *zap.Logger // default: no logs
	// Registerer receives the package's metrics (see Metrics); nil: not
	// registered. Close unregisters them, so a new Client can register on
	// the same registry after a reload.
	Registerer prometheus.Registerer
	// OnCommand receives the messages published to <prefix>/cmd/#: the
	// subtopic after "cmd/" (e.g. "reload", "snapshot") and the payload.
	// It runs on one goroutine, in arrival order, and may block; up to 64
	// commands queue behind it, more are dropped with a log line. Retained
	// command messages are ignored (they would replay on every connect).
	OnCommand func(subtopic string, payload []byte)
	// Device describes the board in Home Assistant's device registry.
	Device DeviceInfo
	// Entities are announced through Home Assistant discovery when
	// Config.Discovery.Enabled; SetEntities replaces them.
	Entities []Entity
	// Metrics, if set, adds fields to every message on the metrics topic.
	Metrics func() map[string]any
}

// ConnState is the client's connection state.
type ConnState int32

// Connection states.
const (
	StateDisconnected ConnState = iota // no connection; the next attempt is scheduled
	StateConnecting                    // a connection attempt is under way
	StateConnected                     // connected to a broker
	StateClosed                        // Close was called
)

func (s ConnState) String() string {
	switch s {
	case StateDisconnected:
		return "disconnected"
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("ConnState(%d)", int32(s))
}

// Status payloads on the status topic.
const (
	StatusOnline  = "online"
	StatusOffline = "offline"
)

const (
	maxInflight        = 64              // unacknowledged events on the wire
	cmdQueue           = 64              // commands waiting for OnCommand
	ackPersistInterval = time.Second     // how often the acknowledged position is written
	controlTimeout     = 5 * time.Second // status, subscriptions, discovery
	writeTimeout       = 5 * time.Second // a PUBLISH that cannot be handed to the writer in this time fails
)

// Client publishes events through a durable outbox to an MQTT broker,
// announces availability and Home Assistant entities, and receives
// commands. Its methods are safe for concurrent use.
type Client struct {
	cfg    Config
	opt    Options
	log    *zap.Logger
	prefix string
	qos    byte
	m      *metrics
	ob     *outbox
	mc     mqtt.Client
	drops  *dropLog

	state      atomic.Int32
	epoch      atomic.Uint64 // bumped on every connect and loss
	lastBroker atomic.Value  // string: the broker of the latest attempt
	closing    atomic.Bool

	connCh chan struct{} // cap 1: wakes the sender on connection changes
	lostCh chan error    // cap 1: paho's connection-lost callback
	cmdCh  chan command
	haCh   chan struct{} // cap 1: Home Assistant came online

	// pubMu is held by the sender while paho's Publish runs. paho hands a
	// PUBLISH to its writer through a channel that outlives a connection,
	// so a Publish that started on a connection that then died would be
	// written on the next one, ahead of the resends of earlier events. The
	// supervisor takes pubMu before connecting again, which lets such a
	// call time out first (at most writeTimeout).
	pubMu sync.Mutex

	mu       sync.Mutex
	sources  map[string]sourceState
	entities []Entity
	ents     map[string]bool // discovery topics announced (to clear removed ones)

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	onAck func(seq uint64, latency time.Duration) // test hook
}

type command struct {
	sub     string
	payload []byte
}

type sourceState struct {
	payload []byte
}

// New opens the outbox in cfg.Outbox.Dir (re-sending what a previous run
// left unacknowledged) and starts connecting in the background: it returns
// at once even when no broker is reachable, and keeps trying with back-off.
func New(cfg Config, opt Options) (*Client, error) { return newClient(cfg, opt, nil) }

// newClient is New with a hook run before the client starts (tests).
func newClient(cfg Config, opt Options, hook func(*Client)) (*Client, error) {
	var errs []error
	if len(cfg.Brokers) == 0 {
		errs = append(errs, &FieldError{Path: "mqtt.brokers", Msg: "no broker (the daemon starts the embedded broker when none is configured)"})
	}
	errs = append(errs, cfg.Validate()...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	cfg = cfg.WithDefaults()
	tlsCfg, err := cfg.TLS.tlsConfig()
	if err != nil {
		return nil, err
	}
	if err := checkEntities(opt.Entities); err != nil {
		return nil, err
	}
	opt.Entities = slices.Clone(opt.Entities)
	if opt.Logger == nil {
		opt.Logger = zap.NewNop()
	}
	c := &Client{
		cfg:      cfg,
		opt:      opt,
		log:      opt.Logger.With(zap.String("component", "mqtt")),
		prefix:   cfg.TopicPrefix,
		qos:      byte(*cfg.QoS),
		connCh:   make(chan struct{}, 1),
		lostCh:   make(chan error, 1),
		cmdCh:    make(chan command, cmdQueue),
		haCh:     make(chan struct{}, 1),
		sources:  map[string]sourceState{},
		entities: opt.Entities,
		ents:     map[string]bool{},
	}
	c.lastBroker.Store("")
	c.m = newMetrics(func() outboxStats { return c.ob.stats() })
	c.drops = &dropLog{log: c.log}
	c.ob, err = openOutbox(outboxOptions{
		Dir:          cfg.Outbox.Dir,
		MaxBytes:     cfg.Outbox.MaxBytes,
		MaxAge:       cfg.Outbox.MaxAge,
		SyncInterval: cfg.Outbox.SyncInterval,
		Log:          c.log,
		OnDrop: func(reason string, n int, first, last uint64) {
			c.m.dropped.WithLabelValues(reason).Add(float64(n))
			c.drops.add(reason, n, first, last)
		},
	})
	if err != nil {
		return nil, err
	}
	if err := c.m.register(opt.Registerer); err != nil {
		c.ob.close()
		return nil, fmt.Errorf("publish: registering metrics: %w", err)
	}

	o := mqtt.NewClientOptions()
	for _, b := range cfg.Brokers {
		o.AddBroker(b)
	}
	o.SetClientID(cfg.ClientID)
	o.SetUsername(cfg.Username)
	o.SetPassword(cfg.Password)
	if tlsCfg != nil {
		o.SetTLSConfig(tlsCfg)
	}
	o.SetProtocolVersion(4)
	o.SetKeepAlive(cfg.KeepAlive)
	o.SetPingTimeout(min(cfg.KeepAlive, 10*time.Second))
	o.SetConnectTimeout(cfg.ConnectTimeout)
	o.SetWriteTimeout(writeTimeout)
	// Reconnection is ours (see supervise): paho's automatic reconnect
	// resends from its own in-memory store and completes the original
	// publish tokens before the broker has acknowledged the resend, which
	// would let the outbox forget an event that is not yet delivered.
	o.SetAutoReconnect(false)
	o.SetConnectRetry(false)
	o.SetCleanSession(true)
	o.SetOrderMatters(true)
	o.SetWill(c.topic("status"), StatusOffline, 1, true)
	o.SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		select {
		case c.lostCh <- err:
		default:
		}
	})
	o.SetConnectionAttemptHandler(func(broker *url.URL, t *tls.Config) *tls.Config {
		c.lastBroker.Store(broker.Redacted())
		return t
	})
	c.mc = mqtt.NewClient(o)

	if hook != nil {
		hook(c)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(4)
	go c.supervise()
	go c.send()
	go c.commands()
	go c.housekeeping()
	return c, nil
}

func (c *Client) topic(sub string) string { return c.prefix + "/" + sub }

// TopicPrefix returns the prefix every topic of this device is under.
func (c *Client) TopicPrefix() string { return c.prefix }

// Publish makes ev durable in the outbox and returns its sequence number;
// the event goes to the broker as soon as it is connected. Publish returns
// only after the event is on disk (fsync), and never waits for the broker:
// when the outbox is full the oldest waiting events are dropped instead
// (see the package documentation). ctx is checked on entry only: the wait
// for the disk is short and is not abandoned half way.
func (c *Client) Publish(ctx context.Context, ev Event) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if c.closing.Load() {
		return 0, ErrClosed
	}
	topic, err := eventTopic(ev.Kind)
	if err != nil {
		return 0, err
	}
	seq, err := c.ob.append(topic, func(seq uint64, now time.Time) ([]byte, error) {
		return encodeEvent(&ev, seq, c.cfg.DeviceID, now)
	})
	if err != nil {
		return 0, err
	}
	c.m.published.WithLabelValues(ev.Kind).Inc()
	return seq, nil
}

// State returns the connection state.
func (c *Client) State() ConnState { return ConnState(c.state.Load()) }

// Connected reports whether the client is connected to a broker.
func (c *Client) Connected() bool { return c.State() == StateConnected }

// OutboxStats describes the outbox.
type OutboxStats struct {
	Events   int    // waiting for an acknowledgement
	Bytes    int64  // their size on disk
	LastSeq  uint64 // the last sequence number given to an event
	AckedSeq uint64 // every event up to this one is acknowledged or dropped
}

// Outbox returns the outbox's depth and positions.
func (c *Client) Outbox() OutboxStats {
	s := c.ob.stats()
	return OutboxStats{Events: s.Events, Bytes: s.Bytes, LastSeq: s.NextSeq - 1, AckedSeq: s.AckedSeq}
}

func (c *Client) setState(s ConnState) {
	for {
		old := c.state.Load()
		if ConnState(old) == StateClosed {
			return
		}
		if c.state.CompareAndSwap(old, int32(s)) {
			break
		}
	}
	if s == StateConnected {
		c.m.connected.Set(1)
	} else {
		c.m.connected.Set(0)
	}
}

func (c *Client) wakeSender() {
	select {
	case c.connCh <- struct{}{}:
	default:
	}
}

// supervise connects, waits for the connection to drop and connects again,
// backing off from 1 s to MaxReconnectInterval while attempts fail.
func (c *Client) supervise() {
	defer c.wg.Done()
	minBackoff := min(time.Second, c.cfg.MaxReconnectInterval)
	backoff := minBackoff
	attempts := 0
	for c.ctx.Err() == nil {
		select { // a loss reported for an earlier connection is stale
		case <-c.lostCh:
		default:
		}
		c.setState(StateConnecting)
		c.pubMu.Lock()
		//lint:ignore SA2001 a barrier: wait for a Publish started on the old connection (see pubMu)
		c.pubMu.Unlock()
		if attempts == 0 {
			c.log.Info("mqtt: connecting", zap.Strings("brokers", redact(c.cfg.Brokers)), zap.String("client_id", c.cfg.ClientID))
		}
		tok := c.mc.Connect()
		select {
		case <-tok.Done():
		case <-c.ctx.Done():
			return
		}
		if err := tok.Error(); err != nil {
			attempts++
			c.setState(StateDisconnected)
			c.log.Warn("mqtt: cannot connect; retrying", zap.Error(err), zap.Int("attempt", attempts),
				zap.Duration("retry_in", backoff), zap.Int("outbox_events", c.ob.stats().Events))
			select {
			case <-time.After(backoff):
			case <-c.ctx.Done():
				return
			}
			backoff = min(backoff*2, c.cfg.MaxReconnectInterval)
			continue
		}
		attempts, backoff = 0, minBackoff
		c.m.connects.Inc()
		st := c.ob.stats()
		c.log.Info("mqtt: connected", zap.String("broker", c.lastBroker.Load().(string)),
			zap.Int("outbox_events", st.Events), zap.Int64("outbox_bytes", st.Bytes))
		c.onConnect()
		select {
		case err := <-c.lostCh:
			c.epoch.Add(1)
			c.setState(StateDisconnected)
			c.wakeSender()
			c.log.Warn("mqtt: connection lost; reconnecting", zap.Error(err), zap.Int("outbox_events", c.ob.stats().Events))
		case <-c.ctx.Done():
			return
		}
	}
}

// onConnect announces the device, lets the sender go and sets up the
// subscriptions. The session is clean, so this runs on every connect.
func (c *Client) onConnect() {
	if tok := c.mc.Publish(c.topic("status"), 1, true, StatusOnline); !tok.WaitTimeout(controlTimeout) || tok.Error() != nil {
		c.log.Warn("mqtt: publishing online status", zap.Error(tokenErr(tok)))
	}
	c.epoch.Add(1)
	c.setState(StateConnected)
	c.wakeSender()
	subs := map[string]byte{c.topic("cmd/#"): 1}
	if c.cfg.Discovery.Enabled {
		subs[c.cfg.Discovery.Prefix+"/status"] = 1
	}
	if tok := c.mc.SubscribeMultiple(subs, c.onMessage); !tok.WaitTimeout(controlTimeout) || tok.Error() != nil {
		c.log.Warn("mqtt: subscribing", zap.Any("topics", subs), zap.Error(tokenErr(tok)))
	}
	c.mu.Lock() // held while publishing, so a concurrent SetSourceStatus goes after
	for name, s := range c.sources {
		c.mc.Publish(c.topic("source/"+name+"/status"), 1, true, s.payload)
	}
	c.mu.Unlock()
	if c.cfg.Discovery.Enabled {
		c.publishDiscovery()
	}
}

func tokenErr(tok mqtt.Token) error {
	if err := tok.Error(); err != nil {
		return err
	}
	return errors.New("timed out")
}

func (c *Client) onMessage(_ mqtt.Client, m mqtt.Message) {
	t := m.Topic()
	if c.cfg.Discovery.Enabled && t == c.cfg.Discovery.Prefix+"/status" {
		if string(m.Payload()) == StatusOnline {
			select {
			case c.haCh <- struct{}{}:
			default:
			}
		}
		return
	}
	sub, ok := strings.CutPrefix(t, c.prefix+"/cmd/")
	if !ok {
		return
	}
	if m.Retained() {
		c.log.Warn("mqtt: ignoring a retained command (clear it with an empty retained message)", zap.String("topic", t))
		return
	}
	select {
	case c.cmdCh <- command{sub: sub, payload: m.Payload()}:
	default:
		c.log.Warn("mqtt: command queue full; command dropped", zap.String("topic", t))
	}
}

func (c *Client) commands() {
	defer c.wg.Done()
	for {
		select {
		case cmd := <-c.cmdCh:
			c.log.Info("mqtt: command", zap.String("command", cmd.sub), zap.Int("payload_bytes", len(cmd.payload)))
			if c.opt.OnCommand != nil {
				c.opt.OnCommand(cmd.sub, cmd.payload)
			}
		case <-c.ctx.Done():
			return
		}
	}
}

// housekeeping persists the acknowledged position, expires old events,
// re-announces discovery and publishes the metrics topic.
func (c *Client) housekeeping() {
	defer c.wg.Done()
	tick := time.NewTicker(ackPersistInterval)
	defer tick.Stop()
	var metricsC <-chan time.Time
	if c.cfg.MetricsInterval > 0 {
		mt := time.NewTicker(c.cfg.MetricsInterval)
		defer mt.Stop()
		metricsC = mt.C
	}
	for {
		select {
		case <-tick.C:
			if err := c.ob.persistAck(); err != nil {
				c.log.Error("mqtt: writing the outbox's acknowledged position", zap.Error(err))
			}
			c.ob.expire()
			c.drops.flush(false)
		case <-c.haCh:
			if c.Connected() {
				c.log.Info("mqtt: Home Assistant came online; re-sending discovery")
				c.publishDiscovery()
			}
		case <-metricsC:
			if c.Connected() {
				c.publishMetrics()
			}
		case <-c.ctx.Done():
			return
		}
	}
}

func (c *Client) publishMetrics() {
	st := c.ob.stats()
	m := map[string]any{}
	if c.opt.Metrics != nil {
		for k, v := range c.opt.Metrics() {
			m[k] = v
		}
	}
	m["schema"] = SchemaVersion
	m["ts"] = time.Now().UTC().Format(tsLayout)
	m["device"] = c.cfg.DeviceID
	m["outbox_events"] = st.Events
	m["outbox_bytes"] = st.Bytes
	m["last_seq"] = st.NextSeq - 1
	b, err := json.Marshal(m)
	if err != nil {
		c.log.Warn("mqtt: metrics payload", zap.Error(err))
		return
	}
	c.mc.Publish(c.topic("metrics"), 0, false, b)
}

// send moves durable events from the outbox to the broker, in seq order,
// with up to maxInflight awaiting acknowledgement. An event leaves the
// outbox only when its PUBACK (QoS 1; PUBCOMP for 2; the write for 0) has
// come and every earlier one has too. After a connection change it starts
// again from the acknowledged position, so anything in flight on the old
// connection is sent again (duplicates, never gaps).
func (c *Client) send() {
	defer c.wg.Done()
	type flight struct {
		seq uint64
		at  time.Time
		tok mqtt.Token
	}
	var inflight []flight
	var cursor, epoch uint64
	paused := false // after a failed publish on a live connection
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		if e := c.epoch.Load(); e != epoch {
			epoch, inflight, cursor, paused = e, nil, c.ob.ackedSeq(), false
		}
		for !paused && c.Connected() && len(inflight) < maxInflight {
			rec, ok := c.ob.next(cursor)
			if !ok {
				break
			}
			c.pubMu.Lock()
			tok := c.mc.Publish(c.topic(rec.Topic), c.qos, false, rec.Payload)
			c.pubMu.Unlock()
			if isDone(tok) && tok.Error() != nil {
				// Not handed to the connection (gone, or too slow): send
				// nothing after it; start over from the acknowledged
				// position on the next connection, or in a second.
				c.log.Debug("mqtt: event not sent; will resend", zap.Uint64("seq", rec.Seq), zap.Error(tok.Error()))
				inflight, cursor, paused = nil, c.ob.ackedSeq(), true
				retry.Reset(time.Second)
				break
			}
			c.m.sent.Inc()
			inflight = append(inflight, flight{seq: rec.Seq, at: rec.At, tok: tok})
			cursor = rec.Seq
		}
		var head <-chan struct{}
		if len(inflight) > 0 {
			head = inflight[0].tok.Done()
		}
		select {
		case <-c.ctx.Done():
			return
		case <-c.connCh:
		case <-c.ob.notify:
		case <-retry.C:
			paused = false
		case <-head:
			n, acked, failed := 0, uint64(0), error(nil)
			now := time.Now()
			for ; n < len(inflight) && isDone(inflight[n].tok); n++ {
				f := inflight[n]
				if failed = f.tok.Error(); failed != nil {
					break
				}
				acked = f.seq
				lat := now.Sub(f.at)
				c.m.ackLatency.Observe(lat.Seconds())
				if c.onAck != nil {
					c.onAck(f.seq, lat)
				}
			}
			if n > 0 {
				c.ob.ack(acked)
				c.m.acked.Add(float64(n))
				inflight = inflight[n:]
			}
			if failed != nil {
				// The connection is going or gone: start over from the
				// acknowledged position when it is back, or in a second
				// if it stays up.
				c.log.Debug("mqtt: event not acknowledged; will resend", zap.Uint64("seq", inflight[0].seq), zap.Error(failed))
				inflight, cursor, paused = nil, c.ob.ackedSeq(), true
				retry.Reset(time.Second)
			}
		}
	}
}

func isDone(t mqtt.Token) bool {
	select {
	case <-t.Done():
		return true
	default:
		return false
	}
}

// Close stops the client: no more events are accepted; for as long as ctx
// allows and a broker is connected, waiting events are delivered; then the
// retained "offline" status is published, the connection closed and the
// outbox's acknowledged position written. Events still waiting stay on disk
// for the next start. Close returns the outbox's error, if any.
func (c *Client) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		for c.Connected() && c.ob.stats().Events > 0 && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
		if c.mc.IsConnectionOpen() {
			c.mc.Publish(c.topic("status"), 1, true, StatusOffline).WaitTimeout(time.Second)
		}
		c.cancel()
		c.mc.Disconnect(250)
		c.wg.Wait()
		c.state.Store(int32(StateClosed))
		c.m.connected.Set(0)
		c.drops.flush(true)
		st := c.ob.stats()
		c.closeErr = c.ob.close()
		c.m.unregister()
		c.log.Info("mqtt: closed", zap.Int("outbox_events", st.Events), zap.Uint64("last_seq", st.NextSeq-1))
	})
	return c.closeErr
}

// SetSourceStatus publishes a source's state (e.g. "running", "failed",
// "retrying") and error text, retained, to <prefix>/source/<name>/status,
// and again after every reconnection. name: letters, digits, '_', '-'.
func (c *Client) SetSourceStatus(name, state string, err error) error {
	if !kindRE.MatchString(name) {
		return fmt.Errorf("publish: source name %q: want 1-64 letters, digits, '_' or '-'", name)
	}
	p := map[string]any{
		"schema": SchemaVersion,
		"ts":     time.Now().UTC().Format(tsLayout),
		"device": c.cfg.DeviceID,
		"source": name,
		"state":  state,
	}
	if err != nil {
		p["error"] = err.Error()
	}
	b, _ := json.Marshal(p) // strings only
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sources[name] = sourceState{payload: b}
	if c.Connected() {
		c.mc.Publish(c.topic("source/"+name+"/status"), 1, true, b)
	}
	return nil
}

// RemoveSource clears a source's retained status (after a reload removed it).
func (c *Client) RemoveSource(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.sources, name)
	if c.Connected() && kindRE.MatchString(name) {
		c.mc.Publish(c.topic("source/"+name+"/status"), 1, true, []byte{})
	}
}

func redact(brokers []string) []string {
	out := make([]string, len(brokers))
	for i, b := range brokers {
		if u, err := url.Parse(b); err == nil {
			out[i] = u.Redacted()
		} else {
			out[i] = b
		}
	}
	return out
}

// dropLog logs dropped events: the first drop at once, then at most one
// summary every 10 s, so a full outbox does not flood the log.
type dropLog struct {
	log *zap.Logger

	mu          sync.Mutex
	last        time.Time
	n           map[string]int
	first, high uint64
}

const dropLogEvery = 10 * time.Second

func (d *dropLog) add(reason string, n int, first, last uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == nil {
		d.n = map[string]int{}
	}
	if len(d.n) == 0 {
		d.first = first
	}
	d.n[reason] += n
	d.high = last
	if time.Since(d.last) >= dropLogEvery {
		d.emitLocked()
	}
}

func (d *dropLog) flush(force bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.n) > 0 && (force || time.Since(d.last) >= dropLogEvery) {
		d.emitLocked()
	}
}

func (d *dropLog) emitLocked() {
	for reason, n := range d.n {
		d.log.Warn("mqtt: outbox dropped events without delivery", zap.String("reason", reason), zap.Int("events", n),
			zap.Uint64("first_seq", d.first), zap.Uint64("last_seq", d.high))
	}
	clear(d.n)
	d.last = time.Now()
}
