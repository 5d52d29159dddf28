package sensors

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// samplesDuration is the duration of n samples at rate Hz.
func samplesDuration(n int64, rate int) time.Duration {
	return time.Duration(n * int64(time.Second) / int64(rate))
}

// ---- command ----

// commandAudio runs a command that writes raw signed 16-bit little-endian
// mono PCM at rate Hz to stdout (arecord -t raw -f S16_LE -c 1).
type commandAudio struct {
	name    string
	argv    []string
	rate    int
	chunk   int // samples
	timeout time.Duration
}

func (s *commandAudio) Name() string { return s.name }
func (s *commandAudio) Rate() int    { return s.rate }

func (s *commandAudio) Run(ctx context.Context, emit func([]int16)) error {
	p, err := startProcess(ctx, s.argv)
	if err != nil {
		return err
	}
	defer p.stop()
	buf := make([]byte, 2*s.chunk)
	pcm := make([]int16, s.chunk)
	for {
		n, err := p.readFull(ctx, buf, s.timeout)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if k := n / 2; k > 0 {
			for i := range k {
				pcm[i] = int16(binary.LittleEndian.Uint16(buf[2*i:]))
			}
			emit(pcm[:k])
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return p.ended(err, "sample", n%2)
		default:
			return err
		}
	}
}

// ---- WAV files ----

// wavSource plays a WAV file or a folder of them (name order), resampled
// to rate, as one continuous stream.
type wavSource struct {
	name     string
	path     string
	rate     int
	chunk    int
	loop     bool
	realtime bool
	gap      time.Duration // silence after each file
}

func (s *wavSource) Name() string { return s.name }
func (s *wavSource) Rate() int    { return s.rate }

var wavExts = []string{".wav", ".wave"}

func (s *wavSource) Run(ctx context.Context, emit func([]int16)) error {
	pc := newPacer(s.realtime)
	defer pc.stop()
	out := make([]int16, 0, s.chunk)
	var emitted int64
	send := func() error {
		emitted += int64(len(out))
		if err := pc.wait(ctx, samplesDuration(emitted, s.rate)); err != nil {
			return err
		}
		emit(out)
		out = out[:0]
		return nil
	}
	push := func(pcm []int16) error {
		for len(pcm) > 0 {
			k := min(s.chunk-len(out), len(pcm))
			out = append(out, pcm[:k]...)
			pcm = pcm[k:]
			if len(out) == s.chunk {
				if err := send(); err != nil {
					return err
				}
			}
		}
		return nil
	}
	gapSamples := int64(s.gap) * int64(s.rate) / int64(time.Second)
	gap := make([]int16, min(int64(s.chunk), gapSamples))
	dec := &wavStreamer{rate: s.rate}
	for {
		files, err := listFiles(s.path, wavExts, "WAV")
		if err != nil {
			return err
		}
		var pass int64
		for _, f := range files {
			n, err := dec.stream(f, push)
			if err != nil {
				return err
			}
			pass += n
			for left := gapSamples; left > 0; {
				k := min(left, int64(len(gap)))
				if err := push(gap[:k]); err != nil {
					return err
				}
				left -= k
			}
		}
		if pass == 0 {
			return fmt.Errorf("%s: no audio in %d WAV file(s)", s.path, len(files))
		}
		if !s.loop {
			break
		}
	}
	if len(out) > 0 {
		if err := send(); err != nil {
			return err
		}
	}
	return nil
}

// wavStreamer decodes WAV files to int16 at rate through WAVReader and
// Resampler, in bounded memory; the output equals ReadWAVFile's.
type wavStreamer struct {
	rate int
	fbuf []float32
	res  []float32
	ibuf []int16
}

// stream decodes path, passing its samples to push, and returns how many
// it produced. An error from push is returned as is.
func (d *wavStreamer) stream(path string, push func([]int16) error) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w, err := NewWAVReader(f, path)
	if err != nil {
		return 0, err
	}
	var rs *Resampler
	if w.Format.SampleRate != d.rate {
		if rs, err = NewResampler(w.Format.SampleRate, d.rate); err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
	}
	if d.fbuf == nil {
		d.fbuf = make([]float32, 4096)
	}
	var total int64
	put := func(x []float32) error {
		d.ibuf = FloatToInt16(x, d.ibuf[:0])
		total += int64(len(d.ibuf))
		return push(d.ibuf)
	}
	for {
		n, rerr := w.Read(d.fbuf)
		if n > 0 {
			x := d.fbuf[:n]
			if rs != nil {
				d.res = rs.Process(x, d.res[:0])
				x = d.res
			}
			if err := put(x); err != nil {
				return total, err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return total, rerr
		}
	}
	if rs != nil {
		d.res = rs.Flush(d.res[:0])
		if err := put(d.res); err != nil {
			return total, err
		}
	}
	return total, nil
}

// listFiles returns path itself when it is a file, or the files in the
// folder path whose extension is one of exts (any case), in name order.
func listFiles(path string, exts []string, kind string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries { // sorted by name
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		ext := strings.ToLower(filepath.Ext(e.Name()))
		for _, x := range exts {
			if ext == x {
				files = append(files, filepath.Join(path, e.Name()))
				break
			}
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no %s files (%s) in the folder", path, kind, strings.Join(exts, ", "))
	}
	return files, nil
}

// ---- synthetic ----

// AudioSynth describes a synthetic audio signal.
type AudioSynth struct {
	// Kind is "tone", "noise" or "silence".
	Kind string
	// Freq is the tone's frequency in Hz.
	Freq float64
	// Amplitude is the peak level as a fraction of full scale (0..1]:
	// tone default 0.5, noise default 0.1.
	Amplitude float64
}

// ParseAudioSynth reads a synthetic audio spec: "tone:<Hz>[:<amplitude>]",
// "noise[:<amplitude>]" or "silence"; amplitude is a fraction of full
// scale, 0 < a <= 1.
func ParseAudioSynth(spec string) (AudioSynth, error) {
	parts := strings.Split(strings.TrimSpace(spec), ":")
	bad := func(why string) (AudioSynth, error) {
		return AudioSynth{}, fmt.Errorf("%q: %s (want tone:<Hz>[:<amplitude>], noise[:<amplitude>] or silence)", spec, why)
	}
	amp := func(s string) (float64, bool) {
		a, err := strconv.ParseFloat(s, 64)
		return a, err == nil && a > 0 && a <= 1
	}
	switch strings.ToLower(parts[0]) {
	case "silence":
		if len(parts) != 1 {
			return bad("silence takes no parameters")
		}
		return AudioSynth{Kind: "silence"}, nil
	case "noise":
		s := AudioSynth{Kind: "noise", Amplitude: 0.1}
		switch len(parts) {
		case 1:
		case 2:
			a, ok := amp(parts[1])
			if !ok {
				return bad("amplitude must be a number in (0, 1]")
			}
			s.Amplitude = a
		default:
			return bad("too many parameters")
		}
		return s, nil
	case "tone":
		if len(parts) < 2 || len(parts) > 3 {
			return bad("a tone needs a frequency")
		}
		f, err := strconv.ParseFloat(parts[1], 64)
		if err != nil || !(f > 0) || math.IsInf(f, 0) {
			return bad("frequency must be a positive number of Hz")
		}
		s := AudioSynth{Kind: "tone", Freq: f, Amplitude: 0.5}
		if len(parts) == 3 {
			a, ok := amp(parts[2])
			if !ok {
				return bad("amplitude must be a number in (0, 1]")
			}
			s.Amplitude = a
		}
		return s, nil
	}
	return bad("unknown signal")
}

// synthAudio generates a tone, white noise or silence.
type synthAudio struct {
	name     string
	spec     AudioSynth
	rate     int
	chunk    int
	realtime bool
}

func (s *synthAudio) Name() string { return s.name }
func (s *synthAudio) Rate() int    { return s.rate }

func (s *synthAudio) Run(ctx context.Context, emit func([]int16)) error {
	pc := newPacer(s.realtime)
	defer pc.stop()
	buf := make([]int16, s.chunk)
	rng := rand.New(rand.NewPCG(0x5eed, 0xed9ed))
	step := 2 * math.Pi * s.spec.Freq / float64(s.rate)
	scale := s.spec.Amplitude * math.MaxInt16
	var phase float64
	var n int64
	for {
		switch s.spec.Kind {
		case "tone":
			for i := range buf {
				buf[i] = int16(math.Round(scale * math.Sin(phase)))
				phase += step
				if phase >= 2*math.Pi {
					phase -= 2 * math.Pi
				}
			}
		case "noise":
			for i := range buf {
				buf[i] = int16(math.Round(scale * (2*rng.Float64() - 1)))
			}
		default:
			clear(buf)
		}
		n += int64(len(buf))
		if err := pc.wait(ctx, samplesDuration(n, s.rate)); err != nil {
			return err
		}
		emit(buf)
	}
}
