package sensors

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func micConfig(argv []string, chunkSamples int) SourceConfig {
	return SourceConfig{Name: "mic", Type: TypeMicrophone, Command: argv, Rate: 16000,
		Chunk: time.Duration(chunkSamples) * time.Second / 16000, Timeout: 5 * time.Second}
}

func newAudio(t *testing.T, c SourceConfig) AudioSource {
	t.Helper()
	src, err := NewAudioSource(c)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestCommandAudioSamples(t *testing.T) {
	needSh(t)
	// 1, 2, 32767, -32768, -2 little-endian: chunks of 2 samples, the last short.
	src := newAudio(t, micConfig(shPrintf([]byte{1, 0, 2, 0, 0xff, 0x7f, 0, 0x80, 0xfe, 0xff}, ""), 2))
	if src.Rate() != 16000 || src.Name() != "mic" {
		t.Fatalf("rate %d name %q", src.Rate(), src.Name())
	}
	chunks, err := collect(t, src, 5*time.Second, copyPCM, nil)
	want := [][]int16{{1, 2}, {32767, -32768}, {-2}}
	if !slices.EqualFunc(chunks, want, slices.Equal) {
		t.Errorf("chunks %v, want %v", chunks, want)
	}
	// A live source ending is a failure, even with status 0.
	wantErr(t, err, `command sh -c "printf`, "exited with status 0", "after 10 bytes")
}

func TestCommandAudioOddBytes(t *testing.T) {
	needSh(t)
	src := newAudio(t, micConfig(shPrintf([]byte{1, 0, 2}, ""), 4))
	chunks, err := collect(t, src, 5*time.Second, copyPCM, nil)
	if got := concat(chunks); !slices.Equal(got, []int16{1}) {
		t.Errorf("samples %v, want [1]", got)
	}
	wantErr(t, err, "the last 1 bytes, an incomplete sample, were dropped")

	// Random bytes of an odd length: every whole sample arrives, no panic.
	b := make([]byte, 1001)
	for i := range b {
		b[i] = byte(rand.IntN(256))
	}
	src = newAudio(t, micConfig(shPrintf(b, ""), 160))
	chunks, err = collect(t, src, 5*time.Second, copyPCM, nil)
	got := concat(chunks)
	if len(got) != 500 {
		t.Fatalf("%d samples, want 500", len(got))
	}
	for i, v := range got {
		if w := int16(uint16(b[2*i]) | uint16(b[2*i+1])<<8); v != w {
			t.Fatalf("sample %d = %d, want %d", i, v, w)
		}
	}
	wantErr(t, err, "after 1001 bytes")
}

func TestCommandAudioExitStatusAndStderr(t *testing.T) {
	needSh(t)
	src := newAudio(t, micConfig([]string{"sh", "-c", "echo 'arecord: main:850: audio open error: No such device' >&2; exit 3"}, 160))
	_, err := collect(t, src, 5*time.Second, copyPCM, nil)
	wantErr(t, err, "exit status 3", "audio open error: No such device", "after 0 bytes")

	src = newAudio(t, micConfig([]string{"sh", "-c", "kill -9 $$"}, 160))
	_, err = collect(t, src, 5*time.Second, copyPCM, nil)
	wantErr(t, err, "signal: killed")
}

func TestCommandAudioStall(t *testing.T) {
	needSh(t)
	c := micConfig([]string{"sh", "-c", "printf '\\001\\000'; echo waiting >&2; exec sleep 30"}, 1)
	c.Timeout = 300 * time.Millisecond
	start := time.Now()
	chunks, err := collect(t, newAudio(t, c), 5*time.Second, copyPCM, nil)
	if len(chunks) != 1 {
		t.Errorf("%d chunks before the stall, want 1", len(chunks))
	}
	wantErr(t, err, "produced no output for 300ms", "stderr: waiting")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stall noticed after %s", d)
	}
}

func TestCommandAudioCancel(t *testing.T) {
	needSh(t)
	for _, tc := range []struct {
		name  string
		argv  []string
		limit time.Duration
	}{
		{"streaming", []string{"sh", "-c", "exec cat /dev/zero"}, time.Second},
		{"silent", []string{"sh", "-c", "sleep 30"}, time.Second},
		// A command ignoring SIGTERM is killed after stopGrace.
		{"ignores SIGTERM", []string{"sh", "-c", "trap '' TERM; printf '\\000\\000'; sleep 30; sleep 30"}, stopGrace + time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newAudio(t, micConfig(tc.argv, 1))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			started := make(chan struct{})
			go func() {
				first := true
				done <- src.Run(ctx, func([]int16) {
					if first {
						first = false
						close(started)
					}
				})
			}()
			if tc.name == "silent" {
				time.Sleep(100 * time.Millisecond)
			} else {
				<-started
			}
			at := time.Now()
			cancel()
			select {
			case err := <-done:
				if !isCtxErr(err) {
					t.Errorf("Run returned %v, want the context's error", err)
				}
				if d := time.Since(at); d > tc.limit {
					t.Errorf("stopped %s after cancellation", d)
				}
			case <-time.After(tc.limit + 2*time.Second):
				t.Fatal("Run did not return after cancellation")
			}
		})
	}
}

func TestCommandAudioNotFound(t *testing.T) {
	_, err := NewAudioSource(micConfig([]string{"edged-no-such-recorder", "-x"}, 160))
	wantErr(t, err, `source "mic": command:`, "edged-no-such-recorder", "not found")
	c := SourceConfig{Name: "mic", Type: TypeMicrophone}.WithDefaults()
	if got := strings.Join(c.Command, " "); got != "arecord -q -t raw -f S16_LE -r 16000 -c 1" {
		t.Errorf("default command %q", got)
	}
}

// sineFrames returns seconds of a sine at freq Hz sampled at rate, as frames
// of channels (the same value in each).
func sineFrames(freq float64, rate int, seconds float64, channels int, amp float64) []float64 {
	n := int(seconds * float64(rate))
	out := make([]float64, 0, n*channels)
	for i := range n {
		v := amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))
		for range channels {
			out = append(out, v)
		}
	}
	return out
}

// wavFolder writes a.wav (16 kHz mono 16-bit, 0.25 s), b.wav (44.1 kHz
// stereo 16-bit, 0.2 s) and a file to ignore.
func wavFolder(t *testing.T) (dir string, a, b string) {
	dir = t.TempDir()
	a = writeFile(t, dir, "a.wav", wavBytes(16000, 1, 16, false, false, sineFrames(440, 16000, 0.25, 1, 0.5)))
	b = writeFile(t, dir, "b.WAV", wavBytes(44100, 2, 16, false, false, sineFrames(1000, 44100, 0.2, 2, 0.3)))
	writeFile(t, dir, "notes.txt", []byte("not audio"))
	writeFile(t, dir, ".hidden.wav", []byte("junk"))
	return dir, a, b
}

func wavConfig(path string, chunk int, loop, realtime bool) SourceConfig {
	return SourceConfig{Name: "sim", Type: TypeMicrophone, WAV: path, Rate: 16000,
		Chunk: time.Duration(chunk) * time.Second / 16000, Loop: loop, Realtime: boolp(realtime)}
}

func TestWAVFolder(t *testing.T) {
	dir, a, b := wavFolder(t)
	pa, _, err := ReadWAVFile(a, 16000)
	if err != nil {
		t.Fatal(err)
	}
	pb, fb, err := ReadWAVFile(b, 16000)
	if err != nil {
		t.Fatal(err)
	}
	if fb.SampleRate != 44100 || len(pb) != 3200 {
		t.Fatalf("b.wav: %v, %d samples at 16 kHz", fb, len(pb))
	}
	want := append(append([]int16(nil), pa...), pb...)

	chunks, err := collect(t, newAudio(t, wavConfig(dir, 320, false, false)), 5*time.Second, copyPCM, nil)
	if err != nil {
		t.Fatalf("a finite folder finishes with nil, got %v", err)
	}
	// Streaming decoding and resampling equals ReadWAVFile's, sample for
	// sample, files in name order as one stream.
	if got := concat(chunks); !slices.Equal(got, want) {
		t.Fatalf("got %d samples, want %d (a.wav then b.wav resampled); first difference at %d", len(got), len(want), firstDiff(got, want))
	}
	for i, c := range chunks[:len(chunks)-1] {
		if len(c) != 320 {
			t.Fatalf("chunk %d has %d samples, want 320", i, len(c))
		}
	}
	// The resampled 1 kHz tone is still a 1 kHz tone at 16 kHz.
	if zc := zeroCrossings(pb[400:2800]); zc < 295 || zc > 305 {
		t.Errorf("b.wav at 16 kHz: %d zero crossings in 0.15 s, want about 300", zc)
	}

	// A single file, with a gap of silence after it.
	c := wavConfig(a, 320, false, false)
	c.Gap = 50 * time.Millisecond
	chunks, err = collect(t, newAudio(t, c), 5*time.Second, copyPCM, nil)
	got := concat(chunks)
	if err != nil || len(got) != len(pa)+800 || !slices.Equal(got[:len(pa)], pa) || slices.ContainsFunc(got[len(pa):], func(v int16) bool { return v != 0 }) {
		t.Errorf("file + gap: %d samples (want %d), err %v", len(got), len(pa)+800, err)
	}
}

func firstDiff(a, b []int16) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestWAVLoop(t *testing.T) {
	dir, a, b := wavFolder(t)
	pa, _, _ := ReadWAVFile(a, 16000)
	pb, _, _ := ReadWAVFile(b, 16000)
	once := append(append([]int16(nil), pa...), pb...)
	chunks, err := collect(t, newAudio(t, wavConfig(dir, 256, true, false)), 5*time.Second, copyPCM, totalSamples(3*len(once)))
	if !isCtxErr(err) {
		t.Fatalf("a looping source runs until cancelled; got %v", err)
	}
	got := concat(chunks)
	for k := range 3 {
		if !slices.Equal(got[k*len(once):(k+1)*len(once)], once) {
			t.Fatalf("pass %d differs from the files", k)
		}
	}
}

func TestWAVPacing(t *testing.T) {
	dir, a, b := wavFolder(t)
	pa, _, _ := ReadWAVFile(a, 16000)
	pb, _, _ := ReadWAVFile(b, 16000)
	dur := samplesDuration(int64(len(pa)+len(pb)), 16000) // 450ms

	start := time.Now()
	if _, err := collect(t, newAudio(t, wavConfig(dir, 320, false, true)), 5*time.Second, copyPCM, nil); err != nil {
		t.Fatal(err)
	}
	if rt := time.Since(start); rt < dur-20*time.Millisecond || rt > dur+300*time.Millisecond {
		t.Errorf("real time: %s of audio took %s", dur, rt)
	}

	start = time.Now()
	var arrivals []time.Duration
	src := newAudio(t, wavConfig(dir, 1600, false, true))
	_, err := collect(t, src, 5*time.Second, func(p []int16) []int16 {
		arrivals = append(arrivals, time.Since(start))
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A chunk arrives when its last sample would have been recorded.
	if len(arrivals) < 3 || arrivals[0] < 90*time.Millisecond || arrivals[1] < 190*time.Millisecond {
		t.Errorf("100 ms chunks arrived at %v", arrivals)
	}

	start = time.Now()
	if _, err := collect(t, newAudio(t, wavConfig(dir, 320, false, false)), 5*time.Second, copyPCM, nil); err != nil {
		t.Fatal(err)
	}
	if fast := time.Since(start); fast > dur/3 {
		t.Errorf("as fast as possible: %s of audio took %s", dur, fast)
	}
}

func TestWAVSourceErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "readme.txt", []byte("x"))
	_, err := collect(t, newAudio(t, wavConfig(dir, 320, true, false)), 5*time.Second, copyPCM, nil)
	wantErr(t, err, dir, "no WAV files")

	_, err = NewAudioSource(wavConfig(dir+"/missing", 320, true, false))
	wantErr(t, err, `source "sim": wav:`, "no such file or folder")

	// Garbage and a truncated file among good ones: the bad file is named,
	// nothing panics.
	dir = t.TempDir()
	good := wavBytes(16000, 1, 16, false, false, sineFrames(300, 16000, 0.1, 1, 0.5))
	writeFile(t, dir, "1.wav", good)
	writeFile(t, dir, "2.wav", good[:len(good)-301]) // data cut short, odd length
	bad := writeFile(t, dir, "3.wav", []byte("RIFF\x00\x00\x00\x00WAVEjunkjunk"))
	chunks, err := collect(t, newAudio(t, wavConfig(dir, 320, true, false)), 5*time.Second, copyPCM, nil)
	wantErr(t, err, bad)
	if n := len(concat(chunks)); n < 2880 { // 1600 + 1450 samples, in whole chunks of 320
		t.Errorf("only %d samples before the bad file", n)
	}

	// Files that hold no audio at all cannot loop forever.
	dir = t.TempDir()
	writeFile(t, dir, "empty.wav", wavBytes(16000, 1, 16, false, false, nil))
	_, err = collect(t, newAudio(t, wavConfig(dir, 320, true, false)), 5*time.Second, copyPCM, nil)
	wantErr(t, err, "no audio in 1 WAV file")
}

func zeroCrossings(p []int16) int {
	n := 0
	for i := 1; i < len(p); i++ {
		if (p[i-1] < 0) != (p[i] < 0) {
			n++
		}
	}
	return n
}

// goertzel is the power of p at freq Hz.
func goertzel(p []int16, freq float64, rate int) float64 {
	w := 2 * math.Pi * freq / float64(rate)
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range p {
		s := float64(v) + c*s1 - s2
		s2, s1 = s1, s
	}
	return s1*s1 + s2*s2 - c*s1*s2
}

func TestSyntheticAudio(t *testing.T) {
	synth := func(spec string, realtime bool) AudioSource {
		return newAudio(t, SourceConfig{Name: "syn", Type: TypeMicrophone, Synthetic: spec, Realtime: boolp(realtime)})
	}
	chunks, err := collect(t, synth("tone:440", false), 5*time.Second, copyPCM, totalSamples(16000))
	if !isCtxErr(err) {
		t.Fatal(err)
	}
	p := concat(chunks)[:16000]
	if zc := zeroCrossings(p); zc < 878 || zc > 882 {
		t.Errorf("tone:440: %d zero crossings in 1 s, want 880", zc)
	}
	if pk := slices.Max(p); pk < 16380 || pk > 16385 {
		t.Errorf("tone:440 peak %d, want 0.5 of full scale (16383)", pk)
	}
	if g, o := goertzel(p, 440, 16000), goertzel(p, 470, 16000); g < 1000*o {
		t.Errorf("440 Hz power %g is not far above 470 Hz's %g", g, o)
	}
	// Phase continues across chunks: no step larger than the sine's slope.
	maxStep := 0.0
	for i := 1; i < len(p); i++ {
		maxStep = max(maxStep, math.Abs(float64(p[i])-float64(p[i-1])))
	}
	if limit := 0.5 * 32767 * 2 * math.Pi * 440 / 16000; maxStep > limit+2 {
		t.Errorf("largest step %g above the sine's %g: a discontinuity", maxStep, limit)
	}

	chunks, _ = collect(t, synth("tone:1000:0.25", false), 5*time.Second, copyPCM, totalSamples(16000))
	p = concat(chunks)[:16000]
	if zc, pk := zeroCrossings(p), slices.Max(p); zc < 1998 || zc > 2002 || pk < 8190 || pk > 8193 {
		t.Errorf("tone:1000:0.25: %d crossings, peak %d", zc, pk)
	}

	chunks, _ = collect(t, synth("noise", false), 5*time.Second, copyPCM, totalSamples(32000))
	p = concat(chunks)
	var sum, sq float64
	for _, v := range p {
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	mean, rms := sum/float64(len(p)), math.Sqrt(sq/float64(len(p)))
	if want := 0.1 * 32767 / math.Sqrt(3); math.Abs(mean) > 30 || math.Abs(rms-want) > 0.03*want {
		t.Errorf("noise: mean %g, rms %g (want about 0 and %g)", mean, rms, want)
	}

	chunks, _ = collect(t, synth("silence", false), 5*time.Second, copyPCM, count[[]int16](5))
	if slices.ContainsFunc(concat(chunks), func(v int16) bool { return v != 0 }) {
		t.Error("silence is not silent")
	}

	// Real time: 0.3 s of tone takes 0.3 s.
	start := time.Now()
	collect(t, synth("tone:440", true), 5*time.Second, copyPCM, totalSamples(4800))
	if d := time.Since(start); d < 280*time.Millisecond || d > 600*time.Millisecond {
		t.Errorf("0.3 s of synthetic audio took %s", d)
	}
}

func TestParseAudioSynth(t *testing.T) {
	for spec, want := range map[string]AudioSynth{
		"tone:440":       {Kind: "tone", Freq: 440, Amplitude: 0.5},
		"TONE:1e3:0.2":   {Kind: "tone", Freq: 1000, Amplitude: 0.2},
		"noise":          {Kind: "noise", Amplitude: 0.1},
		"noise:1":        {Kind: "noise", Amplitude: 1},
		" silence ":      {Kind: "silence"},
		"tone:12.5:0.01": {Kind: "tone", Freq: 12.5, Amplitude: 0.01},
	} {
		got, err := ParseAudioSynth(spec)
		if err != nil || got != want {
			t.Errorf("%q: %+v, %v; want %+v", spec, got, err, want)
		}
	}
	for _, spec := range []string{"", "tone", "tone:", "tone:-5", "tone:abc", "tone:440:0", "tone:440:1.5", "tone:440:0.5:1", "noise:2", "noise:x", "silence:1", "chirp", "tone:NaN", "tone:Inf"} {
		if _, err := ParseAudioSynth(spec); err == nil {
			t.Errorf("%q accepted", spec)
		}
	}
}

// A command that exits leaving a child holding its output (a shell's
// background job) is noticed at once, and the child is killed with it.
func TestCommandAudioLeftoverChild(t *testing.T) {
	needSh(t)
	if runtime.GOOS != "linux" {
		t.Skip("leftover children are killed at exit on Linux only")
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	c := micConfig([]string{"sh", "-c", "sleep 30 & echo $! > " + pidFile + "; printf '\\001\\000'; exit 3"}, 1)
	start := time.Now()
	chunks, err := collect(t, newAudio(t, c), 10*time.Second, copyPCM, nil)
	wantErr(t, err, "exited (exit status 3) after 2 bytes")
	if len(chunks) != 1 {
		t.Errorf("%d chunks", len(chunks))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("exit noticed after %s", d)
	}
	b, rerr := os.ReadFile(pidFile)
	pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
	if rerr != nil || perr != nil {
		t.Fatal(rerr, perr)
	}
	// The child is gone (or a zombie waiting for init to reap it).
	deadline := time.Now().Add(2 * time.Second)
	for {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("background child %d still running: %s", pid, st)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A command that closes its output but keeps running is stopped.
	c = micConfig([]string{"sh", "-c", "exec >&-; sleep 30"}, 1)
	start = time.Now()
	_, err = collect(t, newAudio(t, c), 10*time.Second, copyPCM, nil)
	wantErr(t, err, "closed its output but kept running (stopped now) after 0 bytes")
	if d := time.Since(start); d > drainGrace+time.Second {
		t.Errorf("took %s", d)
	}
}
