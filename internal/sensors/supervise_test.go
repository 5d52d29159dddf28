package sensors

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// funcSource is a Source whose Run is a function of its attempt number.
type funcSource struct {
	mu      sync.Mutex
	attempt int
	run     func(ctx context.Context, attempt int, emit func(int)) error
}

func (f *funcSource) Name() string { return "fake" }

func (f *funcSource) Run(ctx context.Context, emit func(int)) error {
	f.mu.Lock()
	f.attempt++
	a := f.attempt
	f.mu.Unlock()
	return f.run(ctx, a, emit)
}

// statusLog collects statuses and signals when a condition holds.
type statusLog struct {
	mu   sync.Mutex
	list []Status
}

func (l *statusLog) add(s Status) {
	l.mu.Lock()
	l.list = append(l.list, s)
	l.mu.Unlock()
}

func (l *statusLog) get() []Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Status(nil), l.list...)
}

func (l *statusLog) failures() []Status {
	var out []Status
	for _, s := range l.get() {
		if s.State == StateFailed {
			out = append(out, s)
		}
	}
	return out
}

func (l *statusLog) waitFailures(t *testing.T, n int) []Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if f := l.failures(); len(f) >= n {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d failures within 10s: %v", n, l.get())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func superviseInBackground[T any](src Source[T], emit func(T), opts SuperviseOptions) (cancel func() error) {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Supervise(ctx, src, emit, opts) }()
	return func() error {
		stop()
		return <-done
	}
}

func TestSuperviseBackoff(t *testing.T) {
	src := &funcSource{run: func(ctx context.Context, a int, emit func(int)) error {
		if a%2 == 0 {
			emit(a) // even attempts deliver before failing
		}
		return errors.New("broken")
	}}
	var log statusLog
	var got []int
	cancel := superviseInBackground(Source[int](src), func(v int) { got = append(got, v) },
		SuperviseOptions{RestartMin: 10 * time.Millisecond, RestartMax: 45 * time.Millisecond, Jitter: -1, ResetAfter: time.Hour, OnStatus: log.add})
	fails := log.waitFailures(t, 6)
	if err := cancel(); !errors.Is(err, context.Canceled) {
		t.Errorf("Supervise returned %v, want context.Canceled", err)
	}
	want := []time.Duration{10, 20, 40, 45, 45, 45}
	for i, f := range fails[:6] {
		if f.RetryIn != want[i]*time.Millisecond || f.Failures != i+1 || f.Attempt != i+1 || f.Err == nil || f.Source != "fake" {
			t.Errorf("failure %d: %+v, want retry in %dms", i+1, f, want[i])
		}
	}
	// The sequence of states: starting, (running,) failed, ... stopped.
	all := log.get()
	if all[0].State != StateStarting || all[len(all)-1].State != StateStopped {
		t.Errorf("first %s, last %s", all[0].State, all[len(all)-1].State)
	}
	// Each restart waited at least its backoff.
	var failedAt time.Time
	var retry time.Duration
	for _, s := range all {
		switch s.State {
		case StateFailed:
			failedAt, retry = s.Time, s.RetryIn
		case StateStarting:
			if !failedAt.IsZero() && s.Time.Sub(failedAt) < retry-time.Millisecond {
				t.Errorf("attempt %d started %s after the failure, before its backoff %s", s.Attempt, s.Time.Sub(failedAt), retry)
			}
		case StateRunning:
			if s.Attempt%2 != 0 {
				t.Errorf("attempt %d reported running without delivering", s.Attempt)
			}
		}
	}
	if len(got) < 3 || got[0] != 2 || got[1] != 4 {
		t.Errorf("delivered %v", got)
	}
	if s := fails[0].String(); !strings.Contains(s, "source fake failed (1 in a row): broken; retrying in 10ms") {
		t.Errorf("status text %q", s)
	}
}

func TestSuperviseJitterAndDefaults(t *testing.T) {
	o := SuperviseOptions{}
	if o.Backoff(1) != time.Second || o.Backoff(3) != 4*time.Second || o.Backoff(7) != time.Minute || o.Backoff(100) != time.Minute {
		t.Errorf("default backoff %s %s %s", o.Backoff(1), o.Backoff(3), o.Backoff(7))
	}
	src := &funcSource{run: func(context.Context, int, func(int)) error { return errors.New("x") }}
	var log statusLog
	cancel := superviseInBackground(Source[int](src), func(int) {},
		SuperviseOptions{RestartMin: 20 * time.Millisecond, RestartMax: 20 * time.Millisecond, Jitter: 0.5, OnStatus: log.add})
	fails := log.waitFailures(t, 8)
	cancel()
	distinct := map[time.Duration]bool{}
	for _, f := range fails {
		if f.RetryIn > 20*time.Millisecond || f.RetryIn < 10*time.Millisecond {
			t.Errorf("jittered delay %s outside [10ms, 20ms]", f.RetryIn)
		}
		distinct[f.RetryIn] = true
	}
	if len(distinct) < 2 {
		t.Error("jitter did not vary the delays")
	}
}

// A source that ran healthily for ResetAfter starts the backoff again.
func TestSuperviseResetAfterHealthyRun(t *testing.T) {
	src := &funcSource{run: func(ctx context.Context, a int, emit func(int)) error {
		emit(a)
		if a >= 3 {
			time.Sleep(60 * time.Millisecond) // healthy for longer than ResetAfter
		}
		return errors.New("exit")
	}}
	var log statusLog
	cancel := superviseInBackground(Source[int](src), func(int) {},
		SuperviseOptions{RestartMin: 5 * time.Millisecond, RestartMax: time.Second, Jitter: -1, ResetAfter: 40 * time.Millisecond, OnStatus: log.add})
	fails := log.waitFailures(t, 5)
	cancel()
	want := []time.Duration{5, 10, 5, 5, 5}
	for i, f := range fails[:5] {
		if f.RetryIn != want[i]*time.Millisecond {
			t.Errorf("failure %d: retry in %s, want %dms (failures %d)", i+1, f.RetryIn, want[i], f.Failures)
		}
	}
}

func TestSupervisePanicFinishCancel(t *testing.T) {
	// A panicking source is a failed source.
	src := &funcSource{run: func(ctx context.Context, a int, emit func(int)) error {
		if a == 1 {
			panic("sensor exploded")
		}
		emit(a)
		return nil // then finishes
	}}
	var log statusLog
	var got []int
	err := Supervise(context.Background(), Source[int](src), func(v int) { got = append(got, v) },
		SuperviseOptions{RestartMin: time.Millisecond, OnStatus: log.add})
	if err != nil {
		t.Errorf("a finished source: Supervise returned %v, want nil", err)
	}
	states := []State{}
	for _, s := range log.get() {
		states = append(states, s.State)
	}
	want := []State{StateStarting, StateFailed, StateStarting, StateRunning, StateFinished}
	if len(states) != len(want) {
		t.Fatalf("states %v, want %v", states, want)
	}
	for i := range want {
		if states[i] != want[i] {
			t.Fatalf("states %v, want %v", states, want)
		}
	}
	if f := log.failures()[0]; !strings.Contains(f.Err.Error(), "source fake panicked: sensor exploded") {
		t.Errorf("panic reported as %v", f.Err)
	}
	if len(got) != 1 || got[0] != 2 {
		t.Errorf("delivered %v", got)
	}

	// Cancelled during a long backoff: returns at once.
	src = &funcSource{run: func(context.Context, int, func(int)) error { return errors.New("down") }}
	log = statusLog{}
	cancel := superviseInBackground(Source[int](src), func(int) {}, SuperviseOptions{RestartMin: time.Hour, OnStatus: log.add})
	log.waitFailures(t, 1)
	start := time.Now()
	if err := cancel(); !errors.Is(err, context.Canceled) {
		t.Error(err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("returned %s after cancellation", d)
	}
	if s := log.get(); s[len(s)-1].State != StateStopped || s[len(s)-1].String() != "source fake stopped" {
		t.Errorf("last status %v", s[len(s)-1])
	}

	// Already cancelled: no attempt.
	ctx, c := context.WithCancel(context.Background())
	c()
	if err := Supervise(ctx, Source[int](src), func(int) {}, SuperviseOptions{}); !errors.Is(err, context.Canceled) {
		t.Error(err)
	}
}

// A real command that exits after some output is restarted with backoff;
// the status carries the exit status and stderr.
func TestSuperviseCommandRestarts(t *testing.T) {
	needSh(t)
	src := newAudio(t, micConfig([]string{"sh", "-c", "printf '\\001\\000\\002\\000'; echo 'device vanished' >&2; exit 3"}, 2))
	var log statusLog
	var mu sync.Mutex
	var got [][]int16
	cancel := superviseInBackground(Source[[]int16](src), func(p []int16) {
		mu.Lock()
		got = append(got, copyPCM(p))
		mu.Unlock()
	}, SuperviseOptions{RestartMin: 30 * time.Millisecond, RestartMax: 120 * time.Millisecond, Jitter: -1, OnStatus: log.add})
	fails := log.waitFailures(t, 4)
	if err := cancel(); !errors.Is(err, context.Canceled) {
		t.Error(err)
	}
	for i, f := range fails[:4] {
		if want := []time.Duration{30, 60, 120, 120}[i] * time.Millisecond; f.RetryIn != want {
			t.Errorf("failure %d: retry in %s, want %s", i+1, f.RetryIn, want)
		}
		wantErr(t, f.Err, `command sh -c "printf`, "exited (exit status 3) after 4 bytes of output", "stderr: device vanished")
	}
	// Attempt n+1 started no sooner than its backoff after failure n.
	var last time.Time
	var retry time.Duration
	for _, s := range log.get() {
		if s.State == StateFailed {
			last, retry = s.Time, s.RetryIn
		}
		if s.State == StateStarting && !last.IsZero() && s.Time.Sub(last) < retry-time.Millisecond {
			t.Errorf("restarted after %s, backoff was %s", s.Time.Sub(last), retry)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) < 4 {
		t.Fatalf("%d chunks", len(got))
	}
	for _, c := range got {
		if len(c) != 2 || c[0] != 1 || c[1] != 2 {
			t.Errorf("chunk %v, want [1 2] from every attempt", c)
		}
	}
}
