package sensors

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"time"

	"go.uber.org/zap"
)

// State is where a supervised source is in its life.
type State uint8

const (
	// StateStarting: an attempt to run the source has begun; nothing has
	// been delivered yet.
	StateStarting State = iota
	// StateRunning: the current attempt has delivered its first value.
	StateRunning
	// StateFailed: the source failed (Status.Err); the next attempt
	// starts in Status.RetryIn.
	StateFailed
	// StateFinished: a finite source reached the end of its input.
	StateFinished
	// StateStopped: the context was cancelled; the source is stopped.
	StateStopped
)

var stateNames = [...]string{"starting", "running", "failed", "finished", "stopped"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Status is a change in a supervised source's state.
type Status struct {
	Source string
	State  State
	// Err is why the source failed (StateFailed).
	Err error
	// RetryIn is the delay before the next attempt (StateFailed).
	RetryIn time.Duration
	// Failures counts consecutive failed attempts; a period of healthy
	// running (SuperviseOptions.ResetAfter) sets it back to 0.
	Failures int
	// Attempt numbers the attempts to run the source, from 1.
	Attempt int
	Time    time.Time
}

func (s Status) String() string {
	switch s.State {
	case StateFailed:
		return fmt.Sprintf("source %s failed (%d in a row): %v; retrying in %s", s.Source, s.Failures, s.Err, s.RetryIn.Round(time.Millisecond))
	default:
		return fmt.Sprintf("source %s %s", s.Source, s.State)
	}
}

// SuperviseOptions configures Supervise. The zero value is usable.
type SuperviseOptions struct {
	// RestartMin is the delay before the first restart after a failure;
	// it doubles with every further consecutive failure up to RestartMax.
	// Defaults: 1s and 60s.
	RestartMin, RestartMax time.Duration
	// Jitter shortens each delay by a random fraction of up to Jitter
	// (0..1), so sources that failed together do not retry in lockstep.
	// 0 means the default, 0.2; a negative value disables jitter.
	Jitter float64
	// ResetAfter: an attempt that has been delivering for this long is
	// healthy, and its failure starts the backoff again from RestartMin.
	// Default: 30s.
	ResetAfter time.Duration
	// OnStatus, when set, is called on every state change, from the
	// goroutine running the source (StateRunning from inside the first
	// emit), so it must not block for long.
	OnStatus func(Status)
	// Logger, when set, gets a line for every failure (warn), every
	// recovery after a failure and every finish (info).
	Logger *zap.Logger
}

// Default supervision settings.
const (
	DefaultRestartMin = time.Second
	DefaultRestartMax = time.Minute
	DefaultJitter     = 0.2
	DefaultResetAfter = 30 * time.Second
)

func (o SuperviseOptions) withDefaults() SuperviseOptions {
	if o.RestartMin <= 0 {
		o.RestartMin = DefaultRestartMin
	}
	if o.RestartMax <= 0 {
		o.RestartMax = DefaultRestartMax
	}
	if o.RestartMax < o.RestartMin {
		o.RestartMax = o.RestartMin
	}
	switch {
	case o.Jitter == 0:
		o.Jitter = DefaultJitter
	case o.Jitter < 0:
		o.Jitter = 0
	case o.Jitter > 1:
		o.Jitter = 1
	}
	if o.ResetAfter <= 0 {
		o.ResetAfter = DefaultResetAfter
	}
	return o
}

// Backoff is the delay before restarting after the given number of
// consecutive failures (1 for the first), before jitter: RestartMin
// doubled for every failure after the first, at most RestartMax.
func (o SuperviseOptions) Backoff(failures int) time.Duration {
	o = o.withDefaults()
	d := o.RestartMin
	for i := 1; i < failures && d < o.RestartMax; i++ {
		d *= 2
	}
	return min(d, o.RestartMax)
}

// Supervise runs src, delivering its values to emit, and restarts it with
// exponential backoff whenever it fails, for as long as ctx lasts: a
// source that fails (a command exits, a device is unplugged or stalls, a
// file is unreadable), or even panics, never takes the caller down. Every
// state change is reported through opts.OnStatus (and logged when
// opts.Logger is set).
//
// Supervise returns ctx.Err() when ctx is done (after src's Run has
// returned), or nil when src finished its input (a WAV or image folder
// without loop); it never returns because src failed.
func Supervise[T any](ctx context.Context, src Source[T], emit func(T), opts SuperviseOptions) error {
	opts = opts.withDefaults()
	name := src.Name()
	report := func(s Status) {
		s.Source = name
		s.Time = time.Now()
		if opts.Logger != nil {
			logStatus(opts.Logger, s)
		}
		if opts.OnStatus != nil {
			opts.OnStatus(s)
		}
	}
	var (
		failures int
		timer    *time.Timer
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			report(Status{State: StateStopped, Failures: failures, Attempt: attempt - 1})
			return ctx.Err()
		}
		report(Status{State: StateStarting, Failures: failures, Attempt: attempt})
		var runningSince time.Time
		wrapped := func(v T) {
			if runningSince.IsZero() {
				runningSince = time.Now()
				report(Status{State: StateRunning, Failures: failures, Attempt: attempt})
			}
			emit(v)
		}
		err := runProtected(ctx, src, wrapped)
		if ctx.Err() != nil {
			report(Status{State: StateStopped, Failures: failures, Attempt: attempt})
			return ctx.Err()
		}
		if err == nil {
			report(Status{State: StateFinished, Failures: failures, Attempt: attempt})
			return nil
		}
		if !runningSince.IsZero() && time.Since(runningSince) >= opts.ResetAfter {
			failures = 0
		}
		failures++
		delay := opts.Backoff(failures)
		if opts.Jitter > 0 {
			delay -= time.Duration(rand.Float64() * opts.Jitter * float64(delay))
		}
		report(Status{State: StateFailed, Err: err, RetryIn: delay, Failures: failures, Attempt: attempt})
		if timer == nil {
			timer = time.NewTimer(delay)
		} else {
			timer.Reset(delay)
		}
		select {
		case <-ctx.Done():
			report(Status{State: StateStopped, Failures: failures, Attempt: attempt})
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// runProtected runs src, turning a panic in it (or in emit, which runs on
// the same goroutine) into an error.
func runProtected[T any](ctx context.Context, src Source[T], emit func(T)) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("source %s panicked: %v\n%s", src.Name(), p, debug.Stack())
		}
	}()
	return src.Run(ctx, emit)
}

func logStatus(log *zap.Logger, s Status) {
	switch s.State {
	case StateFailed:
		log.Warn("source failed", zap.String("source", s.Source), zap.Error(s.Err),
			zap.Int("failures", s.Failures), zap.Duration("retry_in", s.RetryIn))
	case StateRunning:
		if s.Attempt > 1 {
			log.Info("source running again", zap.String("source", s.Source), zap.Int("attempt", s.Attempt))
		}
	case StateFinished:
		log.Info("source finished its input", zap.String("source", s.Source))
	}
}
