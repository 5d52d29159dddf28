package publish

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// StartEmbeddedBroker runs an MQTT broker (mochi-mqtt) inside the daemon
// for machines with none: every client may connect, publish and subscribe
// (no authentication: keep addr on the loopback interface). It listens on
// addr (default 127.0.0.1:1883) before returning, so a port in use is an
// error here; stop (or ctx's end) closes it. Retained messages and
// sessions live in memory only.
func StartEmbeddedBroker(ctx context.Context, addr string, log *zap.Logger) (stop func(), err error) {
	if addr == "" {
		addr = DefaultEmbeddedAddr
	}
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("component", "broker"))
	s := mochi.New(&mochi.Options{
		Logger:                 slog.New(&zapSlog{core: log.Core(), min: slog.LevelWarn}),
		SysTopicResendInterval: 60,
	})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	if err := s.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})); err != nil {
		return nil, fmt.Errorf("embedded broker: listening on %s: %w", addr, err)
	}
	if err := s.Serve(); err != nil {
		s.Close()
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	log.Info("embedded MQTT broker listening", zap.String("addr", addr))
	var once sync.Once
	done := make(chan struct{})
	stop = func() {
		once.Do(func() {
			close(done)
			s.Close()
			log.Info("embedded MQTT broker stopped", zap.String("addr", addr))
		})
	}
	go func() {
		select {
		case <-ctx.Done():
			stop()
		case <-done:
		}
	}()
	return stop, nil
}

// zapSlog is a log/slog handler writing to a zap core (mochi logs through
// slog); records below min are dropped.
type zapSlog struct {
	core   zapcore.Core
	min    slog.Level
	fields []zap.Field
	group  string
}

func (h *zapSlog) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.min && h.core.Enabled(zapLevel(l))
}

func (h *zapSlog) Handle(_ context.Context, r slog.Record) error {
	fields := append([]zap.Field(nil), h.fields...)
	r.Attrs(func(a slog.Attr) bool {
		fields = append(fields, h.field(a))
		return true
	})
	ent := zapcore.Entry{Level: zapLevel(r.Level), Time: r.Time, Message: "broker: " + r.Message}
	if ce := h.core.Check(ent, nil); ce != nil {
		ce.Write(fields...)
	}
	return nil
}

func (h *zapSlog) field(a slog.Attr) zap.Field {
	key := a.Key
	if h.group != "" {
		key = h.group + "." + key
	}
	return zap.Any(key, a.Value.Resolve().Any())
}

func (h *zapSlog) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := *h
	n.fields = append([]zap.Field(nil), h.fields...)
	for _, a := range attrs {
		n.fields = append(n.fields, h.field(a))
	}
	return &n
}

func (h *zapSlog) WithGroup(name string) slog.Handler {
	n := *h
	if n.group != "" {
		name = n.group + "." + name
	}
	n.group = name
	return &n
}

func zapLevel(l slog.Level) zapcore.Level {
	switch {
	case l >= slog.LevelError:
		return zapcore.ErrorLevel
	case l >= slog.LevelWarn:
		return zapcore.WarnLevel
	case l >= slog.LevelInfo:
		return zapcore.InfoLevel
	}
	return zapcore.DebugLevel
}
