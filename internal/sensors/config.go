package sensors

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"periph.io/x/conn/v3/gpio"
)

// SourceConfig is one entry of the configuration's sources list; its
// fields and yaml tags are the keys the configuration file uses. A key
// left out (zero) takes its default (see WithDefaults).
//
// What a source reads is chosen by setting one of command, device, wav,
// images or synthetic:
//
//   - microphone: command (raw S16_LE mono PCM at rate on stdout; default
//     arecord, recording from the ALSA device named by device if set),
//     wav (a file or a folder of them) or synthetic (tone:<Hz>[:<amp>],
//     noise[:<amp>], silence);
//   - camera: device (V4L2, default /dev/video0), command (raw frames of
//     format, width and height on stdout), images (a file or a folder of
//     BMP, PNG, JPEG) or synthetic (shapes, person, static);
//   - gpio: an input pin (a PIR motion sensor); led: an output pin.
type SourceConfig struct {
	Name string `yaml:"name"`
	// Type is microphone, camera, gpio or led.
	Type string `yaml:"type"`

	Command   []string `yaml:"command"`
	Device    string   `yaml:"device"`
	WAV       string   `yaml:"wav"`
	Images    string   `yaml:"images"`
	Synthetic string   `yaml:"synthetic"`

	// Loop starts wav or images over at the end (otherwise the source
	// finishes).
	Loop bool `yaml:"loop"`
	// Realtime paces wav, images and synthetic sources in real time
	// (default); false delivers as fast as the consumer takes it.
	Realtime *bool `yaml:"realtime"`
	// Gap is silence played after each WAV file.
	Gap time.Duration `yaml:"gap"`

	// Rate is the microphone's sample rate in Hz (default 16000); WAV
	// files are resampled to it.
	Rate int `yaml:"rate"`
	// Chunk is the duration of the audio chunks delivered (default 20ms).
	Chunk time.Duration `yaml:"chunk"`

	// Width and Height of camera frames (default 640x480; a V4L2 driver
	// may adjust them).
	Width  int `yaml:"width"`
	Height int `yaml:"height"`
	// FPS is the frame rate of device, images and synthetic cameras
	// (default 5); a command sets its own.
	FPS float64 `yaml:"fps"`
	// Format: device yuyv (default) or mjpeg; command (required) and
	// synthetic (default gray8) one of gray8, rgb24, bgr24, rgba32, yuyv,
	// nv12, i420.
	Format string `yaml:"format"`
	// Stride is the bytes per row of a command's frames when it pads rows
	// (0: tightly packed).
	Stride int `yaml:"stride"`

	// Pin is the periph.io pin name of gpio and led (GPIO17).
	Pin string `yaml:"pin"`
	// Pull is gpio's pull resistor: up, down (default; up with
	// active_low) or none.
	Pull string `yaml:"pull"`
	// ActiveLow: the input is active, or the LED lit, at low level.
	ActiveLow bool `yaml:"active_low"`

	// Timeout: a command or device that delivers nothing for this long
	// has failed (default 10s).
	Timeout time.Duration `yaml:"timeout"`
	// RestartMin and RestartMax bound the backoff between restarts of a
	// failed source (defaults 1s and 60s).
	RestartMin time.Duration `yaml:"restart_min"`
	RestartMax time.Duration `yaml:"restart_max"`

	// Logger receives the source's non-fatal notes (a V4L2 driver
	// adjusting the size, corrupt frames skipped); nil discards them.
	Logger *zap.Logger `yaml:"-"`
}

// Source types.
const (
	TypeMicrophone = "microphone"
	TypeCamera     = "camera"
	TypeGPIO       = "gpio"
	TypeLED        = "led"
)

// Defaults of SourceConfig.
const (
	DefaultRate         = 16000
	DefaultChunk        = 20 * time.Millisecond
	DefaultWidth        = 640
	DefaultHeight       = 480
	DefaultFPS          = 5
	DefaultTimeout      = 10 * time.Second
	DefaultCameraDevice = "/dev/video0"
)

// DefaultMicrophoneCommand is the capture command of a microphone without
// command, wav or synthetic: arecord writing raw S16_LE mono PCM at rate,
// from the ALSA device if one is given.
func DefaultMicrophoneCommand(rate int, device string) []string {
	argv := []string{"arecord", "-q", "-t", "raw", "-f", "S16_LE", "-r", strconv.Itoa(rate), "-c", "1"}
	if device != "" {
		argv = append(argv, "-D", device)
	}
	return argv
}

// ConfigError is one problem with a source's configuration. Key is the
// key within the source's entry ("rate", "command").
type ConfigError struct {
	Source  string
	Key     string
	Problem string
}

func (e *ConfigError) Error() string {
	if e.Source == "" {
		return e.Key + ": " + e.Problem
	}
	return fmt.Sprintf("source %q: %s: %s", e.Source, e.Key, e.Problem)
}

// ConfigErrors lists every problem found in a source's configuration.
type ConfigErrors []*ConfigError

func (es ConfigErrors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

func (es ConfigErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

type problems struct {
	source string
	list   ConfigErrors
}

func (p *problems) add(key, format string, args ...any) {
	p.list = append(p.list, &ConfigError{Source: p.source, Key: key, Problem: fmt.Sprintf(format, args...)})
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return p.list
}

// input is the key naming what the source reads ("command", "device",
// "wav", "images", "synthetic"), after defaults; "" for gpio and led.
func (c SourceConfig) input() string {
	switch {
	case len(c.Command) > 0:
		return "command"
	case c.WAV != "":
		return "wav"
	case c.Images != "":
		return "images"
	case c.Synthetic != "":
		return "synthetic"
	case c.Device != "":
		return "device"
	}
	return ""
}

func (c SourceConfig) realtime() bool { return c.Realtime == nil || *c.Realtime }

// WithDefaults fills in the defaults of every key left zero that applies
// to the source's type and input.
func (c SourceConfig) WithDefaults() SourceConfig {
	switch c.Type {
	case TypeMicrophone:
		if c.Rate == 0 {
			c.Rate = DefaultRate
		}
		if c.Chunk == 0 {
			c.Chunk = DefaultChunk
		}
		if len(c.Command) == 0 && c.WAV == "" && c.Synthetic == "" && c.Images == "" {
			c.Command = DefaultMicrophoneCommand(c.Rate, c.Device)
			c.Device = ""
		}
	case TypeCamera:
		if c.input() == "" {
			c.Device = DefaultCameraDevice
		}
		in := c.input()
		if in != "images" {
			if c.Width == 0 {
				c.Width = DefaultWidth
			}
			if c.Height == 0 {
				c.Height = DefaultHeight
			}
		}
		if in != "command" && c.FPS == 0 {
			c.FPS = DefaultFPS
		}
		if c.Format == "" {
			switch in {
			case "device":
				c.Format = "yuyv"
			case "synthetic":
				c.Format = "gray8"
			}
		}
	case TypeGPIO:
		if c.Pull == "" {
			c.Pull = "down"
			if c.ActiveLow {
				c.Pull = "up"
			}
		}
	}
	switch c.input() {
	case "command", "device":
		if c.Timeout == 0 {
			c.Timeout = DefaultTimeout
		}
	case "wav", "images", "synthetic":
		if c.Realtime == nil {
			t := true
			c.Realtime = &t
		}
	}
	if c.Type != TypeLED && c.Type != "" {
		if c.RestartMin == 0 {
			c.RestartMin = DefaultRestartMin
		}
		if c.RestartMax == 0 {
			c.RestartMax = max(DefaultRestartMax, c.RestartMin)
		}
	}
	return c
}

// SuperviseOptions returns the supervision settings of the source's
// restart_min and restart_max.
func (c SourceConfig) SuperviseOptions() SuperviseOptions {
	c = c.WithDefaults()
	return SuperviseOptions{RestartMin: c.RestartMin, RestartMax: c.RestartMax}
}

// Validate checks the configuration without touching files, devices or
// pins, and returns every problem (as ConfigErrors), or nil.
func (c SourceConfig) Validate() error {
	p := &problems{source: c.Name}
	c.validate(p)
	return p.err()
}

// keyApplies says whether an optional key applies to a type and input.
func keyApplies(key, typ, in string) bool {
	switch key {
	case "rate", "chunk":
		return typ == TypeMicrophone
	case "gap":
		return typ == TypeMicrophone && in == "wav"
	case "loop":
		return in == "wav" || in == "images"
	case "realtime":
		return in == "wav" || in == "images" || in == "synthetic"
	case "width", "height":
		return typ == TypeCamera && in != "images"
	case "fps":
		return typ == TypeCamera && in != "command"
	case "format":
		return typ == TypeCamera && in != "images"
	case "stride":
		return typ == TypeCamera && in == "command"
	case "pin", "active_low":
		return typ == TypeGPIO || typ == TypeLED
	case "pull":
		return typ == TypeGPIO
	case "timeout":
		return in == "command" || in == "device"
	case "restart_min", "restart_max":
		return typ != TypeLED
	}
	return true
}

func (c SourceConfig) validate(p *problems) {
	raw := c
	if strings.TrimSpace(raw.Name) == "" {
		p.add("name", "required")
	}
	switch raw.Type {
	case TypeMicrophone, TypeCamera, TypeGPIO, TypeLED:
	case "":
		p.add("type", "required (microphone, camera, gpio or led)")
		return
	default:
		p.add("type", "%q is not a source type (microphone, camera, gpio or led)", raw.Type)
		return
	}

	// What the source reads: at most one input key, of those its type has.
	allowed := map[string][]string{
		TypeMicrophone: {"command", "device", "wav", "synthetic"},
		TypeCamera:     {"command", "device", "images", "synthetic"},
	}[raw.Type]
	var set []string
	for _, k := range []struct {
		key string
		on  bool
	}{{"command", len(raw.Command) > 0}, {"device", raw.Device != ""}, {"wav", raw.WAV != ""}, {"images", raw.Images != ""}, {"synthetic", raw.Synthetic != ""}} {
		if !k.on {
			continue
		}
		ok := false
		for _, a := range allowed {
			ok = ok || a == k.key
		}
		if !ok {
			if len(allowed) == 0 {
				p.add(k.key, "not used by %s sources", raw.Type)
			} else {
				p.add(k.key, "not used by %s sources (they read one of: %s)", raw.Type, strings.Join(allowed, ", "))
			}
			continue
		}
		set = append(set, k.key)
	}
	if len(set) > 1 {
		if raw.Type == TypeMicrophone && len(set) == 2 && set[0] == "command" && set[1] == "device" {
			p.add("device", "a microphone's device is the ALSA device of the default arecord command; with command set, name the device in the command")
		} else {
			p.add(set[1], "only one of %s may be set (%s)", strings.Join(allowed, ", "), strings.Join(set, " and ")+" are")
		}
		return
	}

	c = raw.WithDefaults()
	in := c.input()
	// Keys that do nothing for this source are mistakes worth saying.
	for _, k := range []struct {
		key string
		on  bool
	}{
		{"rate", raw.Rate != 0}, {"chunk", raw.Chunk != 0}, {"gap", raw.Gap != 0}, {"loop", raw.Loop},
		{"realtime", raw.Realtime != nil}, {"width", raw.Width != 0}, {"height", raw.Height != 0},
		{"fps", raw.FPS != 0}, {"format", raw.Format != ""}, {"stride", raw.Stride != 0},
		{"pin", raw.Pin != ""}, {"pull", raw.Pull != ""}, {"active_low", raw.ActiveLow},
		{"timeout", raw.Timeout != 0}, {"restart_min", raw.RestartMin != 0}, {"restart_max", raw.RestartMax != 0},
	} {
		if k.on && !keyApplies(k.key, c.Type, in) {
			what := c.Type
			if in != "" {
				what += " " + in
			}
			hint := ""
			if k.key == "fps" && in == "command" {
				hint = "; set the frame rate in the command (e.g. --framerate)"
			}
			p.add(k.key, "not used by %s sources%s", what, hint)
		}
	}

	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"gap", c.Gap}, {"chunk", c.Chunk}, {"timeout", c.Timeout}, {"restart_min", c.RestartMin}, {"restart_max", c.RestartMax}} {
		if d.v < 0 {
			p.add(d.key, "must not be negative (%s)", d.v)
		}
	}
	if c.RestartMin > 0 && c.RestartMax > 0 && c.RestartMax < c.RestartMin {
		p.add("restart_max", "%s is less than restart_min %s", c.RestartMax, c.RestartMin)
	}
	if c.Timeout > 0 && c.Timeout < 100*time.Millisecond {
		p.add("timeout", "%s is too short (at least 100ms)", c.Timeout)
	}
	if in == "command" && c.Command[0] == "" {
		p.add("command", "the program name (first element) is empty")
	}

	switch c.Type {
	case TypeMicrophone:
		if c.Rate < 4000 || c.Rate > 192000 {
			p.add("rate", "%d Hz is outside 4000..192000", c.Rate)
		} else if c.Chunk > 0 && (c.Chunk > time.Second || int64(c.Chunk)*int64(c.Rate) < int64(time.Second)) {
			p.add("chunk", "%s must be at least one sample and at most 1s", c.Chunk)
		}
		if in == "synthetic" {
			s, err := ParseAudioSynth(c.Synthetic)
			if err != nil {
				p.add("synthetic", "%v", err)
			} else if s.Kind == "tone" && s.Freq >= float64(c.Rate)/2 {
				p.add("synthetic", "tone of %g Hz is not below half the rate (%d Hz)", s.Freq, c.Rate)
			}
		}
	case TypeCamera:
		if in != "images" {
			if c.Width < 1 || c.Width > 16384 {
				p.add("width", "%d is outside 1..16384", c.Width)
			}
			if c.Height < 1 || c.Height > 16384 {
				p.add("height", "%d is outside 1..16384", c.Height)
			}
		}
		if in != "command" && (!(c.FPS > 0) || c.FPS > 1000) {
			p.add("fps", "%g is outside (0, 1000]", c.FPS)
		}
		switch in {
		case "device":
			if f := strings.ToLower(c.Format); f != "yuyv" && f != "mjpeg" && f != "mjpg" {
				p.add("format", "%q: a V4L2 device delivers yuyv or mjpeg", c.Format)
			} else if f == "yuyv" && c.Width%2 != 0 {
				p.add("width", "%d: YUYV needs an even width", c.Width)
			}
		case "command", "synthetic":
			if c.Format == "" {
				p.add("format", "required for a command camera (i420, nv12, yuyv, rgb24, bgr24, rgba32, gray8)")
				break
			}
			f, err := ParsePixelFormat(c.Format)
			if err != nil {
				p.add("format", "%v", err)
				break
			}
			if f == YUYV && c.Width%2 != 0 {
				p.add("width", "%d: YUYV needs an even width", c.Width)
			}
			if c.Stride != 0 && c.Width > 0 && c.Stride < MinStride(f, c.Width) {
				p.add("stride", "%d is less than a row of %d %s pixels (%d bytes)", c.Stride, c.Width, f, MinStride(f, c.Width))
			}
			if in == "synthetic" {
				if _, err := parseScene(c.Synthetic); err != nil {
					p.add("synthetic", "%v", err)
				}
			}
		}
	case TypeGPIO, TypeLED:
		if c.Pin == "" {
			p.add("pin", "required (a periph.io pin name such as GPIO17)")
		}
		if c.Type == TypeGPIO {
			if _, err := ParsePull(c.Pull); err != nil {
				p.add("pull", "%v", err)
			}
		}
	}
}

// checkType starts a constructor: validates, applies defaults, and
// checks the type.
func (c SourceConfig) checkType(want string) (SourceConfig, *problems, error) {
	p := &problems{source: c.Name}
	if c.Type != want {
		p.add("type", "%q where a %s source is needed", c.Type, want)
		return c, p, p.err()
	}
	c.validate(p)
	if err := p.err(); err != nil {
		return c, p, err
	}
	return c.WithDefaults(), p, nil
}

// checkPath reports a wav or images path that does not exist.
func checkPath(p *problems, key, path string) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			p.add(key, "%s: no such file or folder", path)
		} else {
			p.add(key, "%v", err)
		}
	}
}

// checkCommand reports a command whose program cannot be found.
func checkCommand(p *problems, argv []string) {
	if _, err := exec.LookPath(argv[0]); err != nil {
		hint := ""
		switch argv[0] {
		case "arecord":
			hint = " (Debian: apt install alsa-utils)"
		case "rpicam-vid", "libcamera-vid":
			hint = " (Raspberry Pi OS: apt install rpicam-apps)"
		case "ffmpeg":
			hint = " (apt install ffmpeg)"
		}
		p.add("command", "%v%s", err, hint)
	}
}

// NewAudioSource makes a microphone source from its configuration. Errors
// are ConfigErrors naming the keys: invalid values, a wav path that does
// not exist, a command that cannot be found. Whether a device works is
// found out when the source runs (and a failure there is retried by
// Supervise).
func NewAudioSource(c SourceConfig) (AudioSource, error) {
	c, p, err := c.checkType(TypeMicrophone)
	if err != nil {
		return nil, err
	}
	chunk := max(int(int64(c.Chunk)*int64(c.Rate)/int64(time.Second)), 1)
	var src AudioSource
	switch c.input() {
	case "command":
		checkCommand(p, c.Command)
		src = &commandAudio{name: c.Name, argv: c.Command, rate: c.Rate, chunk: chunk, timeout: c.Timeout}
	case "wav":
		checkPath(p, "wav", c.WAV)
		src = &wavSource{name: c.Name, path: c.WAV, rate: c.Rate, chunk: chunk, loop: c.Loop, realtime: c.realtime(), gap: c.Gap}
	case "synthetic":
		s, _ := ParseAudioSynth(c.Synthetic)
		src = &synthAudio{name: c.Name, spec: s, rate: c.Rate, chunk: chunk, realtime: c.realtime()}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return src, nil
}

// NewFrameSource makes a camera source from its configuration; errors as
// NewAudioSource's.
func NewFrameSource(c SourceConfig) (FrameSource, error) {
	c, p, err := c.checkType(TypeCamera)
	if err != nil {
		return nil, err
	}
	var src FrameSource
	switch c.input() {
	case "device":
		src, err = newV4L2Camera(c.Name, c.Device, c.Format, c.Width, c.Height, c.FPS, c.Timeout, c.Logger)
		if err != nil {
			p.add("device", "%v", err)
		}
	case "command":
		checkCommand(p, c.Command)
		f, _ := ParsePixelFormat(c.Format)
		src = &commandCamera{name: c.Name, argv: c.Command, format: f, width: c.Width, height: c.Height, stride: c.Stride, timeout: c.Timeout}
	case "images":
		checkPath(p, "images", c.Images)
		src = &imageCamera{name: c.Name, path: c.Images, fps: c.FPS, loop: c.Loop, realtime: c.realtime()}
	case "synthetic":
		f, _ := ParsePixelFormat(c.Format)
		scene, _ := parseScene(c.Synthetic)
		src = &synthCamera{name: c.Name, scene: scene, format: f, width: c.Width, height: c.Height, fps: c.FPS, realtime: c.realtime()}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return src, nil
}

// pin checks a GPIO or LED configuration and finds its pin through lookup
// (nil: LookupPin, the host's GPIO).
func (c SourceConfig) pin(want string, lookup PinLookup) (SourceConfig, gpio.PinIO, error) {
	c, p, err := c.checkType(want)
	if err != nil {
		return c, nil, err
	}
	if lookup == nil {
		lookup = LookupPin
	}
	pin, err := lookup(c.Pin)
	if err != nil {
		p.add("pin", "%v", err)
		return c, nil, p.err()
	}
	return c, pin, nil
}

// NewGPIOInput makes a GPIO input source from its configuration, finding
// its pin through lookup (nil: LookupPin, the host's GPIO).
func NewGPIOInput(c SourceConfig, lookup PinLookup) (*GPIOInput, error) {
	c, pin, err := c.pin(TypeGPIO, lookup)
	if err != nil {
		return nil, err
	}
	pull, _ := ParsePull(c.Pull)
	return NewGPIOInputOnPin(c.Name, pin, pull, c.ActiveLow), nil
}

// NewLED makes an LED from its configuration, finding its pin through
// lookup (nil: LookupPin), and turns it off.
func NewLED(c SourceConfig, lookup PinLookup) (*LED, error) {
	c, pin, err := c.pin(TypeLED, lookup)
	if err != nil {
		return nil, err
	}
	l, err := NewLEDOnPin(c.Name, pin, c.ActiveLow)
	if err != nil {
		p := &problems{source: c.Name}
		p.add("pin", "%v", err)
		return nil, p.err()
	}
	return l, nil
}
