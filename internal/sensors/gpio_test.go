package sensors

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// pins is a PinLookup over gpiotest fakes.
func pins(ps ...*gpiotest.Pin) PinLookup {
	return func(name string) (gpio.PinIO, error) {
		for _, p := range ps {
			if p.N == name {
				return p, nil
			}
		}
		return nil, errors.New("pin " + name + " not found")
	}
}

// runInput runs a GPIO input in the background, its events on a channel.
func runInput(t *testing.T, g *GPIOInput) (events chan GPIOEvent, stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	events = make(chan GPIOEvent, 16)
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, func(e GPIOEvent) { events <- e }) }()
	return events, func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(2 * time.Second):
			t.Fatal("GPIO input did not stop within 2s of cancellation")
			return nil
		}
	}
}

func nextEvent(t *testing.T, events chan GPIOEvent) GPIOEvent {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-time.After(2 * time.Second):
		t.Fatal("no GPIO event within 2s")
		return GPIOEvent{}
	}
}

func TestGPIOInputEdges(t *testing.T) {
	pin := &gpiotest.Pin{N: "GPIO17", Num: 17, EdgesChan: make(chan gpio.Level)}
	g, err := NewGPIOInput(SourceConfig{Name: "pir", Type: TypeGPIO, Pin: "GPIO17"}, pins(pin))
	if err != nil {
		t.Fatal(err)
	}
	events, stop := runInput(t, g)
	// The state at start, with the default pull-down applied.
	if e := nextEvent(t, events); e.Active || e.Level != gpio.Low || e.Time.IsZero() {
		t.Errorf("initial event %+v, want inactive", e)
	}
	if pin.Pull() != gpio.PullDown {
		t.Errorf("pull %s, want down", pin.Pull())
	}
	for _, l := range []gpio.Level{gpio.High, gpio.Low, gpio.High} {
		pin.EdgesChan <- l
		if e := nextEvent(t, events); e.Active != bool(l) || e.Level != l {
			t.Errorf("after edge to %s: %+v", l, e)
		}
		if g.Active() != bool(l) {
			t.Errorf("Active() = %v after edge to %s", g.Active(), l)
		}
	}
	// An edge that leaves the level where it was is a short pulse: both
	// of its changes are reported.
	pin.EdgesChan <- gpio.High
	if a, b := nextEvent(t, events), nextEvent(t, events); a.Active || !b.Active {
		t.Errorf("pulse reported as %+v, %+v", a, b)
	}
	start := time.Now()
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("stopped %s after cancellation", d)
	}
	select {
	case e := <-events:
		t.Errorf("event after the changes: %+v", e)
	default:
	}
}

func TestGPIOInputActiveLow(t *testing.T) {
	pin := &gpiotest.Pin{N: "GPIO4", EdgesChan: make(chan gpio.Level)}
	g, err := NewGPIOInput(SourceConfig{Name: "button", Type: TypeGPIO, Pin: "GPIO4", ActiveLow: true}, pins(pin))
	if err != nil {
		t.Fatal(err)
	}
	events, stop := runInput(t, g)
	defer stop()
	if e := nextEvent(t, events); e.Active || e.Level != gpio.High || pin.Pull() != gpio.PullUp {
		t.Errorf("initial %+v, pull %s; want inactive at high with pull-up", e, pin.Pull())
	}
	pin.EdgesChan <- gpio.Low
	if e := nextEvent(t, events); !e.Active {
		t.Errorf("low is active: got %+v", e)
	}
}

// Without edge detection the input is polled.
func TestGPIOInputPolling(t *testing.T) {
	pin := &gpiotest.Pin{N: "GPIO22"} // no EdgesChan: edge detection fails
	g, err := NewGPIOInput(SourceConfig{Name: "pir", Type: TypeGPIO, Pin: "GPIO22", Pull: "none"}, pins(pin))
	if err != nil {
		t.Fatal(err)
	}
	events, stop := runInput(t, g)
	if e := nextEvent(t, events); e.Active {
		t.Errorf("initial %+v", e)
	}
	if pin.Pull() != gpio.Float {
		t.Errorf("pull %s, want none (float)", pin.Pull())
	}
	pin.Out(gpio.High)
	if e := nextEvent(t, events); !e.Active {
		t.Errorf("after going high: %+v", e)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Error(err)
	}
}

func TestGPIOInputSupervised(t *testing.T) {
	pin := &gpiotest.Pin{N: "GPIO17", EdgesChan: make(chan gpio.Level)}
	g := NewGPIOInputOnPin("pir", pin, gpio.PullDown, false)
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan GPIOEvent, 4)
	done := make(chan error, 1)
	go func() {
		done <- Supervise(ctx, Source[GPIOEvent](g), func(e GPIOEvent) { events <- e }, SuperviseOptions{})
	}()
	nextEvent(t, events)
	pin.EdgesChan <- gpio.High
	if e := nextEvent(t, events); !e.Active {
		t.Error(e)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Error(err)
	}
}

func TestLED(t *testing.T) {
	pin := &gpiotest.Pin{N: "GPIO27", L: gpio.High}
	led, err := NewLED(SourceConfig{Name: "led", Type: TypeLED, Pin: "GPIO27"}, pins(pin))
	if err != nil {
		t.Fatal(err)
	}
	if pin.Read() != gpio.Low {
		t.Error("the LED is not off after NewLED")
	}
	start := time.Now()
	if err := led.Flash(150 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 20*time.Millisecond {
		t.Errorf("Flash blocked for %s", d)
	}
	if pin.Read() != gpio.High {
		t.Error("Flash did not turn the LED on")
	}
	time.Sleep(75 * time.Millisecond)
	led.Flash(150 * time.Millisecond) // extends to 225ms from start
	time.Sleep(110 * time.Millisecond)
	if pin.Read() != gpio.High {
		t.Error("a second flash did not extend the first")
	}
	waitLevel(t, pin, gpio.Low, time.Second)
	if d := time.Since(start); d < 220*time.Millisecond {
		t.Errorf("off after %s, want 225ms", d)
	}

	// A shorter flash during a longer one does not cut it short.
	led.Flash(200 * time.Millisecond)
	led.Flash(10 * time.Millisecond)
	time.Sleep(60 * time.Millisecond)
	if pin.Read() != gpio.High {
		t.Error("a short flash cut a long one short")
	}
	// Set ends a flash in progress.
	if err := led.Set(true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if pin.Read() != gpio.High {
		t.Error("a flash's end turned off an LED that Set turned on")
	}
	led.Flash(20 * time.Millisecond)
	if err := led.Close(); err != nil {
		t.Fatal(err)
	}
	if pin.Read() != gpio.Low {
		t.Error("Close left the LED on")
	}
	if err := led.Flash(time.Millisecond); err == nil {
		t.Error("Flash after Close succeeded")
	}

	// Active-low: off is high.
	pin = &gpiotest.Pin{N: "GPIO5"}
	led, err = NewLED(SourceConfig{Name: "led", Type: TypeLED, Pin: "GPIO5", ActiveLow: true}, pins(pin))
	if err != nil {
		t.Fatal(err)
	}
	if pin.Read() != gpio.High {
		t.Error("active-low LED not off (high)")
	}
	led.Flash(20 * time.Millisecond)
	if pin.Read() != gpio.Low {
		t.Error("active-low LED not lit (low)")
	}
	waitLevel(t, pin, gpio.High, time.Second)
	led.Close()
}

func waitLevel(t *testing.T, pin *gpiotest.Pin, l gpio.Level, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for pin.Read() != l {
		if time.Now().After(deadline) {
			t.Fatalf("pin %s not %s within %s", pin.N, l, limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// On a host without GPIO (this one, unless it is a board), looking up a
// pin is a clear error, not a panic or a nil pin.
func TestLookupPinWithoutGPIO(t *testing.T) {
	_, err := LookupPin("GPIO17_NO_SUCH_PIN")
	wantErr(t, err, "pin GPIO17_NO_SUCH_PIN not found")
	if len(gpioreg.All()) == 0 {
		wantErr(t, err, "no GPIO driver on this host")
		_, err = NewGPIOInput(SourceConfig{Name: "pir", Type: TypeGPIO, Pin: "GPIO17"}, nil)
		wantErr(t, err, `source "pir": pin: pin GPIO17 not found: no GPIO driver on this host`)
		_, err = NewLED(SourceConfig{Name: "led", Type: TypeLED, Pin: "GPIO27"}, nil)
		wantErr(t, err, `source "led": pin: pin GPIO27 not found`)
	} else {
		t.Logf("this host has GPIO pins: %v", err)
	}
}

func TestParsePull(t *testing.T) {
	for s, want := range map[string]gpio.Pull{"up": gpio.PullUp, "DOWN": gpio.PullDown, "none": gpio.Float} {
		if got, err := ParsePull(s); err != nil || got != want {
			t.Errorf("%q: %s %v", s, got, err)
		}
	}
	if _, err := ParsePull("sideways"); err == nil || !strings.Contains(err.Error(), "up, down or none") {
		t.Error(err)
	}
}
