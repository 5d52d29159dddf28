package sensors

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// The sources of configs/edged.yaml's commented example, as the daemon
// maps them.
func draftSources() []SourceConfig {
	return []SourceConfig{
		{Name: "mic", Type: "microphone", Command: []string{"arecord", "-q", "-t", "raw", "-f", "S16_LE", "-r", "16000", "-c", "1"},
			Rate: 16000, RestartMin: time.Second, RestartMax: 60 * time.Second},
		{Name: "cam", Type: "camera", Device: "/dev/video0", Width: 640, Height: 480, FPS: 5, Format: "yuyv"},
		{Name: "pir", Type: "gpio", Pin: "GPIO17", Pull: "down"},
		{Name: "led", Type: "led", Pin: "GPIO27"},
	}
}

func TestDraftConfigValidates(t *testing.T) {
	for _, c := range draftSources() {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", c.Name, err)
		}
	}
	cam, err := NewFrameSource(draftSources()[1])
	if err != nil || cam.Name() != "cam" {
		t.Fatalf("camera: %v", err)
	}
	fake := pins(&gpiotest.Pin{N: "GPIO17", EdgesChan: make(chan gpio.Level)}, &gpiotest.Pin{N: "GPIO27"})
	if _, err := NewGPIOInput(draftSources()[2], fake); err != nil {
		t.Error(err)
	}
	led, err := NewLED(draftSources()[3], fake)
	if err != nil {
		t.Fatal(err)
	}
	led.Close()
	o := draftSources()[0].SuperviseOptions()
	if o.RestartMin != time.Second || o.RestartMax != time.Minute {
		t.Errorf("supervision %+v", o)
	}
}

func TestConfigDefaults(t *testing.T) {
	mic := SourceConfig{Name: "m", Type: TypeMicrophone, Device: "plughw:1,0"}.WithDefaults()
	if got := strings.Join(mic.Command, " "); got != "arecord -q -t raw -f S16_LE -r 16000 -c 1 -D plughw:1,0" || mic.Rate != 16000 || mic.Chunk != 20*time.Millisecond || mic.Timeout != 10*time.Second {
		t.Errorf("microphone defaults: %q %+v", got, mic)
	}
	mic = SourceConfig{Name: "m", Type: TypeMicrophone, Rate: 8000}.WithDefaults()
	if !slices.Contains(mic.Command, "8000") {
		t.Errorf("default command at 8 kHz: %v", mic.Command)
	}
	cam := SourceConfig{Name: "c", Type: TypeCamera}.WithDefaults()
	if cam.Device != "/dev/video0" || cam.Format != "yuyv" || cam.Width != 640 || cam.Height != 480 || cam.FPS != 5 || cam.RestartMin != time.Second || cam.RestartMax != time.Minute {
		t.Errorf("camera defaults: %+v", cam)
	}
	syn := SourceConfig{Name: "c", Type: TypeCamera, Synthetic: "shapes"}.WithDefaults()
	if syn.Format != "gray8" || syn.Realtime == nil || !*syn.Realtime || syn.Timeout != 0 {
		t.Errorf("synthetic camera defaults: %+v", syn)
	}
	if p := (SourceConfig{Name: "p", Type: TypeGPIO, ActiveLow: true}).WithDefaults().Pull; p != "up" {
		t.Errorf("active-low input pull %q", p)
	}
	if c := (SourceConfig{Name: "m", Type: TypeMicrophone, RestartMin: 2 * time.Minute}).WithDefaults(); c.RestartMax != 2*time.Minute {
		t.Errorf("restart_max below a large restart_min: %s", c.RestartMax)
	}
}

// keys returns the keys of a ConfigErrors.
func keys(t *testing.T, err error) []string {
	t.Helper()
	var ce ConfigErrors
	if !errors.As(err, &ce) {
		t.Fatalf("%v (%T) is not ConfigErrors", err, err)
	}
	var out []string
	for _, e := range ce {
		out = append(out, e.Key)
	}
	return out
}

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		c    SourceConfig
		keys []string
		text []string
	}{
		{SourceConfig{Type: "microphone"}, []string{"name"}, []string{"name: required"}},
		{SourceConfig{Name: "x"}, []string{"type"}, []string{`source "x": type: required`}},
		{SourceConfig{Name: "x", Type: "speaker"}, []string{"type"}, []string{`"speaker" is not a source type`}},
		{SourceConfig{Name: "x", Type: "camera", Device: "/dev/video0", Images: "/tmp"}, []string{"images"}, []string{"only one of command, device, images, synthetic"}},
		{SourceConfig{Name: "x", Type: "microphone", Command: []string{"arecord"}, Device: "hw:1"}, []string{"device"}, []string{"name the device in the command"}},
		{SourceConfig{Name: "x", Type: "microphone", Images: "/tmp"}, []string{"images"}, []string{"not used by microphone sources (they read one of: command, device, wav, synthetic)"}},
		{SourceConfig{Name: "x", Type: "gpio", Pin: "GPIO1", Command: []string{"x"}}, []string{"command"}, []string{"not used by gpio sources"}},
		// Every problem at once, each naming its key.
		{SourceConfig{Name: "cam", Type: "camera", Command: []string{"rpicam-vid"}, FPS: 30, Rate: 16000, Width: 7, Loop: true, Pin: "GPIO1", Timeout: -time.Second},
			[]string{"rate", "loop", "fps", "pin", "timeout", "format"}, []string{"fps: not used by camera command sources; set the frame rate in the command", "timeout: must not be negative", "format: required for a command camera"}},
		{SourceConfig{Name: "m", Type: "microphone", Synthetic: "tone:9000", Rate: 16000}, []string{"synthetic"}, []string{"not below half the rate"}},
		{SourceConfig{Name: "m", Type: "microphone", Synthetic: "chirp"}, []string{"synthetic"}, []string{"unknown signal"}},
		{SourceConfig{Name: "m", Type: "microphone", WAV: "x", Rate: 100, Chunk: 2 * time.Second}, []string{"rate"}, []string{"100 Hz is outside"}},
		{SourceConfig{Name: "m", Type: "microphone", WAV: "x", Chunk: 2 * time.Second}, []string{"chunk"}, []string{"at most 1s"}},
		{SourceConfig{Name: "m", Type: "microphone", RestartMin: time.Minute, RestartMax: time.Second}, []string{"restart_max"}, []string{"less than restart_min"}},
		{SourceConfig{Name: "m", Type: "microphone", Timeout: time.Millisecond}, []string{"timeout"}, []string{"too short"}},
		{SourceConfig{Name: "m", Type: "microphone", Command: []string{""}}, []string{"command"}, []string{"program name"}},
		{SourceConfig{Name: "m", Type: "microphone", Synthetic: "noise", Gap: time.Second, Timeout: time.Second}, []string{"gap", "timeout"}, []string{"gap: not used by microphone synthetic sources"}},
		{SourceConfig{Name: "c", Type: "camera", Format: "rgb24", Width: 10}, []string{"format"}, []string{"a V4L2 device delivers yuyv or mjpeg"}},
		{SourceConfig{Name: "c", Type: "camera", Width: 641}, []string{"width"}, []string{"YUYV needs an even width"}},
		{SourceConfig{Name: "c", Type: "camera", Synthetic: "dancing"}, []string{"synthetic"}, []string{"unknown scene"}},
		{SourceConfig{Name: "c", Type: "camera", Synthetic: "shapes", FPS: -1, Height: 99999}, []string{"height", "fps"}, nil},
		{SourceConfig{Name: "c", Type: "camera", Command: []string{"x"}, Format: "bgr", Stride: 2}, []string{"format"}, []string{"unknown pixel format"}},
		{SourceConfig{Name: "c", Type: "camera", Command: []string{"x"}, Format: "rgb24", Width: 10, Stride: 20}, []string{"stride"}, []string{"less than a row of 10 RGB24 pixels (30 bytes)"}},
		{SourceConfig{Name: "c", Type: "camera", Images: "/tmp", Width: 10, Format: "gray8", Stride: 1}, []string{"width", "format", "stride"}, nil},
		{SourceConfig{Name: "p", Type: "gpio", Pull: "sideways"}, []string{"pin", "pull"}, nil},
		{SourceConfig{Name: "l", Type: "led", Pin: "GPIO1", Pull: "up", RestartMin: time.Second}, []string{"pull", "restart_min"}, nil},
	}
	for _, c := range cases {
		err := c.c.Validate()
		if err == nil {
			t.Errorf("%+v: no error, want problems with %v", c.c, c.keys)
			continue
		}
		got := keys(t, err)
		slices.Sort(got)
		want := slices.Clone(c.keys)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%+v:\n%v\nkeys %v, want %v", c.c, err, got, want)
		}
		for _, s := range c.text {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%q does not contain %q", err, s)
			}
		}
	}
	// One ConfigError can be picked out of the list.
	var one *ConfigError
	if err := (SourceConfig{Name: "x", Type: "camera", Width: -2}).Validate(); !errors.As(err, &one) || one.Key != "width" || one.Source != "x" {
		t.Errorf("errors.As: %v", err)
	}
}

func TestConstructorsCheckType(t *testing.T) {
	_, err := NewAudioSource(SourceConfig{Name: "cam", Type: TypeCamera})
	wantErr(t, err, `source "cam": type: "camera" where a microphone source is needed`)
	_, err = NewFrameSource(SourceConfig{Name: "mic", Type: TypeMicrophone})
	wantErr(t, err, "where a camera source is needed")
	_, err = NewGPIOInput(SourceConfig{Name: "led", Type: TypeLED, Pin: "X"}, pins())
	wantErr(t, err, "where a gpio source is needed")
	_, err = NewLED(SourceConfig{Name: "l", Type: TypeLED, Pin: "GPIO9"}, pins())
	wantErr(t, err, `source "l": pin: pin GPIO9 not found`)
	_, err = NewFrameSource(SourceConfig{Name: "c", Type: TypeCamera, Command: []string{"edged-no-such-camera"}, Format: "i420"})
	wantErr(t, err, "command:", "edged-no-such-camera")
}

// Cancelling the context stops every kind of source promptly, whatever
// it is doing, and leaves nothing running (goleak checks the package).
func TestCancelStopsEverySource(t *testing.T) {
	needSh(t)
	dir, _, _ := wavFolder(t)
	imgs := imageFolder(t)
	rt := boolp(true)
	audio := map[string]SourceConfig{
		"command":   {Name: "a", Type: TypeMicrophone, Command: []string{"sh", "-c", "exec cat /dev/zero"}},
		"wav":       {Name: "a", Type: TypeMicrophone, WAV: dir, Loop: true, Realtime: rt},
		"synthetic": {Name: "a", Type: TypeMicrophone, Synthetic: "noise", Realtime: rt},
	}
	for name, c := range audio {
		src := newAudio(t, c)
		testCancel(t, "microphone "+name, Source[[]int16](src))
	}
	video := map[string]SourceConfig{
		"command":   {Name: "v", Type: TypeCamera, Command: []string{"sh", "-c", "exec cat /dev/zero"}, Format: "i420", Width: 64, Height: 48},
		"images":    {Name: "v", Type: TypeCamera, Images: imgs, Loop: true, FPS: 2, Realtime: rt},
		"synthetic": {Name: "v", Type: TypeCamera, Synthetic: "person", FPS: 2, Realtime: rt},
	}
	for name, c := range video {
		testCancel(t, "camera "+name, Source[*Frame](newCamera(t, c)))
	}
	if _, err := os.Stat("/dev/null"); err == nil {
		// a device that fails is retried until cancelled
		testCancel(t, "supervised failing device", supervised[*Frame]{newCamera(t, SourceConfig{Name: "v", Type: TypeCamera, Device: "/dev/null"})})
	}
	pin := &gpiotest.Pin{N: "GPIO17", EdgesChan: make(chan gpio.Level)}
	testCancel(t, "gpio", Source[GPIOEvent](NewGPIOInputOnPin("g", pin, gpio.PullDown, false)))
}

// supervised runs a source under Supervise, as a Source.
type supervised[T any] struct{ src Source[T] }

func (s supervised[T]) Name() string { return s.src.Name() }
func (s supervised[T]) Run(ctx context.Context, emit func(T)) error {
	return Supervise(ctx, s.src, emit, SuperviseOptions{RestartMin: 10 * time.Millisecond, RestartMax: 20 * time.Millisecond})
}

func testCancel[T any](t *testing.T, what string, src Source[T]) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		once := false
		done <- src.Run(ctx, func(T) {
			if !once {
				once = true
				close(started)
			}
		})
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("%s: ended before delivering: %v", what, err)
	case <-time.After(150 * time.Millisecond):
		// Not delivering (the failing device): cancel anyway.
	}
	at := time.Now()
	cancel()
	select {
	case err := <-done:
		if !isCtxErr(err) {
			t.Errorf("%s: Run returned %v, want the context's error", what, err)
		}
		if d := time.Since(at); d > 500*time.Millisecond {
			t.Errorf("%s: stopped %s after cancellation", what, d)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: did not stop within 5s of cancellation", what)
	}
}
