package sensors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// PinLookup finds a GPIO pin by name. LookupPin is the real one; tests
// pass a function returning gpiotest fakes.
type PinLookup func(name string) (gpio.PinIO, error)

var hostInit = sync.OnceValues(host.Init)

// LookupPin finds a pin by its periph.io name ("GPIO17", "17", "P1_11"),
// after loading periph.io's host drivers (once per process). On a host
// without GPIO the error says so and why the drivers did not load.
func LookupPin(name string) (gpio.PinIO, error) {
	state, err := hostInit()
	if err != nil {
		return nil, fmt.Errorf("pin %s: loading periph.io host drivers: %w", name, err)
	}
	if p := gpioreg.ByName(name); p != nil {
		return p, nil
	}
	all := gpioreg.All()
	if len(all) == 0 {
		var why []string
		if state != nil {
			for _, list := range [][]driverreg.DriverFailure{state.Failed, state.Skipped} {
				for _, f := range list {
					if s := f.String(); strings.Contains(strings.ToLower(s), "gpio") {
						why = append(why, s)
					}
				}
			}
		}
		msg := fmt.Sprintf("pin %s not found: no GPIO driver on this host", name)
		if len(why) > 0 {
			msg += " (" + strings.Join(why, "; ") + ")"
		}
		return nil, errors.New(msg)
	}
	var names []string
	for _, p := range all {
		if len(names) == 12 {
			names = append(names, "...")
			break
		}
		names = append(names, p.Name())
	}
	return nil, fmt.Errorf("pin %s not found; this host has %d GPIO pins: %s", name, len(all), strings.Join(names, ", "))
}

// ParsePull reads a pull setting: "up", "down" or "none" (floating).
func ParsePull(s string) (gpio.Pull, error) {
	switch strings.ToLower(s) {
	case "up":
		return gpio.PullUp, nil
	case "down":
		return gpio.PullDown, nil
	case "none", "float", "off":
		return gpio.Float, nil
	}
	return gpio.PullNoChange, fmt.Errorf("unknown pull %q (up, down or none)", s)
}

// GPIOEvent is the state of a GPIO input: delivered once when the input
// starts, then on every change.
type GPIOEvent struct {
	// Active is the logical state: the level is high (low with
	// active_low).
	Active bool
	Level  gpio.Level
	Time   time.Time
}

// GPIOInput watches an input pin (a PIR motion sensor, a button) with
// edge detection. It is a Source[GPIOEvent]; Active reports the latest
// state at any time, for consumers that gate on it rather than follow
// events.
type GPIOInput struct {
	name      string
	pin       gpio.PinIn
	pull      gpio.Pull
	activeLow bool
	// wait bounds each WaitForEdge, so cancellation is noticed and the
	// level is re-read (a missed edge cannot leave a stale state).
	wait   time.Duration
	active atomic.Bool
}

const gpioWait = 100 * time.Millisecond

// NewGPIOInputOnPin watches pin with the given pull; activeLow inverts the
// logical state.
func NewGPIOInputOnPin(name string, pin gpio.PinIn, pull gpio.Pull, activeLow bool) *GPIOInput {
	return &GPIOInput{name: name, pin: pin, pull: pull, activeLow: activeLow, wait: gpioWait}
}

func (g *GPIOInput) Name() string { return g.name }

// Active is the input's latest logical state (false before Run).
func (g *GPIOInput) Active() bool { return g.active.Load() }

func (g *GPIOInput) Run(ctx context.Context, emit func(GPIOEvent)) error {
	edges := true
	if err := g.pin.In(g.pull, gpio.BothEdges); err != nil {
		// No edge detection (some drivers, some fakes): poll the level.
		if err2 := g.pin.In(g.pull, gpio.NoEdge); err2 != nil {
			return fmt.Errorf("gpio %s (pin %s): configuring as input: %w", g.name, g.pin.Name(), err)
		}
		edges = false
	}
	defer func() {
		if edges {
			_ = g.pin.In(g.pull, gpio.NoEdge) // release edge detection
		}
	}()
	send := func(l gpio.Level) {
		active := bool(l) != g.activeLow
		g.active.Store(active)
		emit(GPIOEvent{Active: active, Level: l, Time: time.Now()})
	}
	last := g.pin.Read()
	send(last)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		edge := false
		if edges {
			edge = g.pin.WaitForEdge(g.wait)
		} else {
			if timer == nil {
				timer = time.NewTimer(g.wait)
			} else {
				timer.Reset(g.wait)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l := g.pin.Read()
		switch {
		case l != last:
			last = l
			send(l)
		case edge:
			// An edge, but the level is back where it was: a pulse
			// shorter than our reaction. Report it rather than lose it.
			send(!l)
			send(l)
		}
	}
}

// LED drives an indicator output. Flash does not block; a flash during a
// flash extends it. Methods are safe for concurrent use.
type LED struct {
	name    string
	pin     gpio.PinOut
	on, off gpio.Level

	mu     sync.Mutex
	gen    uint64 // bumped by every Flash/Set/Close; a timer of an older generation does nothing
	timer  *time.Timer
	until  time.Time
	err    error // from turning off asynchronously, reported by the next call
	closed bool
}

// NewLEDOnPin drives pin, turning it off first; activeLow makes low mean
// on.
func NewLEDOnPin(name string, pin gpio.PinOut, activeLow bool) (*LED, error) {
	l := &LED{name: name, pin: pin, on: gpio.High, off: gpio.Low}
	if activeLow {
		l.on, l.off = gpio.Low, gpio.High
	}
	if err := pin.Out(l.off); err != nil {
		return nil, fmt.Errorf("led %s (pin %s): %w", name, pin.Name(), err)
	}
	return l, nil
}

func (l *LED) Name() string { return l.name }

var errLEDClosed = errors.New("led closed")

// Flash turns the LED on now and off after d (or later, if an earlier
// flash lasts longer). It returns at once; an error turning the LED off
// is returned by the next call.
func (l *LED) Flash(d time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errLEDClosed
	}
	err := l.takeErr()
	if e := l.pin.Out(l.on); e != nil {
		return fmt.Errorf("led %s: %w", l.name, e)
	}
	now := time.Now()
	if u := now.Add(d); u.After(l.until) {
		l.until = u
	}
	l.gen++
	gen := l.gen
	if l.timer != nil {
		l.timer.Stop()
	}
	l.timer = time.AfterFunc(l.until.Sub(now), func() { l.expire(gen) })
	return err
}

func (l *LED) expire(gen uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if gen != l.gen || l.closed {
		return
	}
	if err := l.pin.Out(l.off); err != nil {
		l.err = fmt.Errorf("led %s: turning off: %w", l.name, err)
	}
	l.until = time.Time{}
}

func (l *LED) takeErr() error {
	err := l.err
	l.err = nil
	return err
}

// Set turns the LED on or off, ending a flash in progress.
func (l *LED) Set(on bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errLEDClosed
	}
	l.cancelFlash()
	err := l.takeErr()
	level := l.off
	if on {
		level = l.on
	}
	if e := l.pin.Out(level); e != nil {
		return fmt.Errorf("led %s: %w", l.name, e)
	}
	return err
}

func (l *LED) cancelFlash() {
	l.gen++
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	l.until = time.Time{}
}

// Close turns the LED off for good.
func (l *LED) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.cancelFlash()
	l.closed = true
	err := l.takeErr()
	if e := l.pin.Out(l.off); e != nil {
		return fmt.Errorf("led %s: %w", l.name, e)
	}
	return err
}
