package pipeline

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/edged/edged/internal/runtime"
)

// Defaults of keyword spotting (see KeywordConfig).
const (
	DefaultSmoothWindow     = 800 * time.Millisecond
	DefaultKeywordThreshold = 0.78
)

// KeywordConfig configures keyword spotting on a PCM stream. Zero values
// take defaults.
type KeywordConfig struct {
	// Labels name the classifier's outputs in order.
	Labels []string
	// SampleRate of the PCM stream (16000 for the reference models).
	SampleRate int
	// FrameStride is the hop between feature frames (20 ms). The frame
	// length (30 ms) is the frontend's input size.
	FrameStride time.Duration
	// InferEvery runs the classifier once per this many new feature frames
	// (1: every stride).
	InferEvery int
	// SmoothWindow averages the classifier's scores over this span
	// (800 ms).
	SmoothWindow time.Duration
	// Threshold is the smoothed score a keyword must reach (0.78);
	// Thresholds overrides it per label. The defaults were chosen on the
	// reference micro_speech models in a streamed minute of recorded
	// keywords, noise and silence (TestKeywordStream): every keyword found,
	// no false alarm, with margin on both sides.
	Threshold  float64
	Thresholds map[string]float64
	// MinCount is how many scores the smoothing window must hold before a
	// detection (3).
	MinCount int
	// Refractory suppresses further events for Refractory after one (1.5 s).
	Refractory time.Duration
	// Ignore lists labels that never produce events (default: silence,
	// unknown, _silence_, _unknown_).
	Ignore []string
	// PeakWait bounds how long a detection waits for the classifier's
	// confidence to fall, to locate the keyword (1 s).
	PeakWait time.Duration
}

// KeywordEvent is one detected keyword. Times are offsets in the stream.
type KeywordEvent struct {
	Keyword string
	Index   int
	// Score is the smoothed score when the detection fired, in [0, 1].
	Score float64
	// Start and End locate the spoken keyword. The classifier is confident
	// while the whole word is inside its window: Start is the start of the
	// last confident window (the word cannot begin earlier and still be in
	// it), End the end of the first confident window (an upper bound on
	// where the word ends).
	Start, End time.Duration
	// Emitted is the stream offset at which the event was reported;
	// Emitted - End is how late it came after the keyword's audio.
	Emitted time.Duration
}

// KeywordSpotter turns a continuous PCM stream into keyword events: one
// frontend invocation per stride (never recomputing old frames), a sliding
// window of feature frames, the classifier every InferEvery frames, score
// smoothing, thresholds and a refractory period. After construction it
// allocates nothing per frame.
type KeywordSpotter struct {
	cfg      KeywordConfig
	frontend runtime.Backend
	model    runtime.Backend

	frameLen, stride int // samples
	featureSize      int // values per feature frame
	windowFrames     int // feature frames per classifier input

	pcm      []int16 // frameLen samples: the current analysis frame
	pcmFill  int     // valid samples in pcm
	samples  int64   // samples consumed in total
	features []int8  // windowFrames*featureSize ring, oldest first after rotate
	frames   int64   // feature frames produced
	sinceInf int

	scoreScale  float32 // output dequantization
	scoreZP     int32
	outType     runtime.DType
	history     []float32 // ring of recent score vectors: smoothN × classes
	historyTime []int64   // frame index of each history row
	histN       int       // rows filled
	histPos     int
	smoothN     int
	smoothed    []float32

	thresholds []float64
	ignored    []bool
	lastEvent  int64 // frame of the last event, or a long time ago
	refractory int64 // in frames

	pending pendingDetection
	peakMax int64 // in frames
}

type pendingDetection struct {
	active              bool
	index               int
	score               float64
	best                float32
	firstNear, lastNear int64 // first and last frames scoring near the best
	firedAt             int64
}

// peakTolerance is how far below its best a raw score may be and still
// count as confident when locating a keyword.
const peakTolerance = 0.05

var errNotKeywordModel = errors.New("not a keyword model pair")

// fillerLabels are the non-keyword classes of keyword models.
var fillerLabels = []string{"silence", "unknown", "_silence_", "_unknown_", "background", "_background_noise_"}

// IsFillerLabel reports whether a label names no keyword (silence,
// unknown, background noise).
func IsFillerLabel(label string) bool {
	for _, f := range fillerLabels {
		if strings.EqualFold(label, f) {
			return true
		}
	}
	return false
}

// NewKeywordSpotter builds a spotter from a feature frontend (int16 PCM
// frame in, one feature frame out) and a classifier (a window of feature
// frames in, one score per label out).
func NewKeywordSpotter(frontend, model *runtime.Model, cfg KeywordConfig) (*KeywordSpotter, error) {
	fe, err := runtime.NewInterpreter(frontend, nil)
	if err != nil {
		return nil, fmt.Errorf("frontend: %w", err)
	}
	cl, err := runtime.NewInterpreter(model, nil)
	if err != nil {
		return nil, fmt.Errorf("classifier: %w", err)
	}
	return NewKeywordSpotterOn(fe, cl, cfg)
}

// NewKeywordSpotterOn is NewKeywordSpotter on backends already opened for
// the frontend and the classifier (the pure-Go interpreter or a delegate,
// see runtime.OpenBackend). The spotter uses them from then on; Close
// closes them.
func NewKeywordSpotterOn(frontend, classifier runtime.Backend, cfg KeywordConfig) (*KeywordSpotter, error) {
	k := &KeywordSpotter{frontend: frontend, model: classifier}
	if err := k.configure(cfg); err != nil {
		return nil, err
	}
	return k, nil
}

// Close closes the frontend's and the classifier's backends.
func (k *KeywordSpotter) Close() error {
	return errors.Join(k.frontend.Close(), k.model.Close())
}

func (k *KeywordSpotter) configure(cfg KeywordConfig) error {
	if cfg.SampleRate == 0 {
		cfg.SampleRate = 16000
	}
	if cfg.FrameStride == 0 {
		cfg.FrameStride = 20 * time.Millisecond
	}
	if cfg.InferEvery == 0 {
		cfg.InferEvery = 1
	}
	if cfg.SmoothWindow == 0 {
		cfg.SmoothWindow = DefaultSmoothWindow
	}
	if cfg.Threshold == 0 {
		cfg.Threshold = DefaultKeywordThreshold
	}
	if cfg.MinCount == 0 {
		cfg.MinCount = 3
	}
	if cfg.Refractory == 0 {
		cfg.Refractory = 1500 * time.Millisecond
	}
	if cfg.Ignore == nil {
		cfg.Ignore = fillerLabels
	}
	if cfg.PeakWait == 0 {
		cfg.PeakWait = time.Second
	}
	k.cfg = cfg

	fin, fout := k.frontend.Inputs(), k.frontend.Outputs()
	if len(fin) != 1 || fin[0].Type != runtime.Int16 || len(fout) != 1 {
		return fmt.Errorf("%w: the frontend must take one int16 PCM frame and give one feature frame (has %d inputs, %d outputs)", errNotKeywordModel, len(fin), len(fout))
	}
	k.frameLen = fin[0].NumElements()
	k.stride = int(int64(cfg.SampleRate) * int64(cfg.FrameStride) / int64(time.Second))
	if k.stride <= 0 || k.stride > k.frameLen {
		return fmt.Errorf("frame stride %v (%d samples) must be positive and at most the frame length (%d samples)", cfg.FrameStride, k.stride, k.frameLen)
	}
	k.featureSize = fout[0].NumElements()
	if fout[0].Type != runtime.Int8 {
		return fmt.Errorf("%w: the frontend's output is %s; the classifier needs int8 features", errNotKeywordModel, fout[0].Type)
	}
	cin, cout := k.model.Inputs(), k.model.Outputs()
	if len(cin) != 1 || cin[0].Type != runtime.Int8 || len(cout) != 1 {
		return fmt.Errorf("%w: the classifier must take one int8 feature window and give one score vector", errNotKeywordModel)
	}
	n := cin[0].NumElements()
	if n%k.featureSize != 0 {
		return fmt.Errorf("%w: the classifier's input (%d values) is not a whole number of %d-value feature frames", errNotKeywordModel, n, k.featureSize)
	}
	k.windowFrames = n / k.featureSize
	classes := cout[0].NumElements()
	if len(cfg.Labels) != classes {
		return fmt.Errorf("%d labels for a classifier with %d outputs", len(cfg.Labels), classes)
	}
	switch cout[0].Type {
	case runtime.Int8, runtime.Uint8:
		k.scoreScale, k.scoreZP = cout[0].Scale(), cout[0].ZeroPoint()
	case runtime.Float32:
	default:
		return fmt.Errorf("classifier output type %s is not supported", cout[0].Type)
	}
	k.outType = cout[0].Type

	k.pcm = make([]int16, k.frameLen)
	k.features = make([]int8, n)
	frameDur := float64(cfg.FrameStride) * float64(cfg.InferEvery)
	k.smoothN = max(1, int(math.Round(float64(cfg.SmoothWindow)/frameDur)))
	k.history = make([]float32, k.smoothN*classes)
	k.historyTime = make([]int64, k.smoothN)
	k.smoothed = make([]float32, classes)
	k.thresholds = make([]float64, classes)
	k.ignored = make([]bool, classes)
	for i, l := range cfg.Labels {
		k.thresholds[i] = cfg.Threshold
		if t, ok := cfg.Thresholds[l]; ok {
			k.thresholds[i] = t
		}
		for _, ig := range cfg.Ignore {
			k.ignored[i] = k.ignored[i] || strings.EqualFold(l, ig)
		}
	}
	for l := range cfg.Thresholds {
		if !contains(cfg.Labels, l) {
			return fmt.Errorf("threshold for %q, which is not one of the labels %v", l, cfg.Labels)
		}
	}
	k.refractory = int64(cfg.Refractory / cfg.FrameStride)
	k.peakMax = int64(cfg.PeakWait / cfg.FrameStride)
	k.Reset()
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Reset forgets the stream: buffered audio, features, scores and the
// frontend's noise and gain state.
func (k *KeywordSpotter) Reset() {
	k.frontend.Reset()
	k.model.Reset()
	k.pcmFill, k.samples, k.frames, k.sinceInf = 0, 0, 0, 0
	clear(k.features)
	k.histN, k.histPos = 0, 0
	k.lastEvent = math.MinInt64 / 2
	k.pending = pendingDetection{}
}

// WindowDuration is the span of audio one classifier input covers.
func (k *KeywordSpotter) WindowDuration() time.Duration {
	samples := (k.windowFrames-1)*k.stride + k.frameLen
	return k.samplesToDuration(int64(samples))
}

func (k *KeywordSpotter) samplesToDuration(n int64) time.Duration {
	return time.Duration(n * int64(time.Second) / int64(k.cfg.SampleRate))
}

// frameStart is the stream offset, in samples, of feature frame f's first
// sample.
func (k *KeywordSpotter) frameStart(f int64) int64 { return f * int64(k.stride) }

// Process feeds PCM samples; emit is called for each keyword found. The
// stream is continuous across calls.
func (k *KeywordSpotter) Process(pcm []int16, emit func(KeywordEvent)) error {
	for len(pcm) > 0 {
		n := copy(k.pcm[k.pcmFill:], pcm)
		k.pcmFill += n
		pcm = pcm[n:]
		k.samples += int64(n)
		if k.pcmFill < k.frameLen {
			continue
		}
		if err := k.processFrame(emit); err != nil {
			return err
		}
		// Keep the overlap for the next frame.
		copy(k.pcm, k.pcm[k.stride:])
		k.pcmFill = k.frameLen - k.stride
	}
	return nil
}

func (k *KeywordSpotter) processFrame(emit func(KeywordEvent)) error {
	in := k.frontend.Inputs()[0].Int16s()
	copy(in, k.pcm)
	if err := k.frontend.Invoke(); err != nil {
		return fmt.Errorf("frontend: %w", err)
	}
	// Slide the window one frame and append the new features.
	copy(k.features, k.features[k.featureSize:])
	copy(k.features[len(k.features)-k.featureSize:], k.frontend.Outputs()[0].Int8s())
	k.frames++
	k.sinceInf++
	if k.frames < int64(k.windowFrames) || k.sinceInf < k.cfg.InferEvery {
		return nil
	}
	k.sinceInf = 0
	copy(k.model.Inputs()[0].Int8s(), k.features)
	if err := k.model.Invoke(); err != nil {
		return fmt.Errorf("classifier: %w", err)
	}
	k.score(emit)
	return nil
}

func (k *KeywordSpotter) score(emit func(KeywordEvent)) {
	classes := len(k.smoothed)
	row := k.history[k.histPos*classes : (k.histPos+1)*classes]
	out := k.model.Outputs()[0]
	switch k.outType {
	case runtime.Int8:
		for i, v := range out.Int8s() {
			row[i] = k.scoreScale * float32(int32(v)-k.scoreZP)
		}
	case runtime.Uint8:
		for i, v := range out.Uint8s() {
			row[i] = k.scoreScale * float32(int32(v)-k.scoreZP)
		}
	default:
		copy(row, out.Float32s())
	}
	k.historyTime[k.histPos] = k.frames
	k.histPos = (k.histPos + 1) % k.smoothN
	k.histN = min(k.histN+1, k.smoothN)

	clear(k.smoothed)
	for r := range k.histN {
		for i, v := range k.history[r*classes : (r+1)*classes] {
			k.smoothed[i] += v
		}
	}
	best := -1
	for i := range k.smoothed {
		k.smoothed[i] /= float32(k.histN)
		if !k.ignored[i] && (best < 0 || k.smoothed[i] > k.smoothed[best]) {
			best = i
		}
	}

	if k.pending.active {
		k.trackPeak(row, emit)
		return
	}
	if best < 0 || k.histN < k.cfg.MinCount || float64(k.smoothed[best]) < k.thresholds[best] {
		return
	}
	if k.frames-k.lastEvent < k.refractory {
		return
	}
	k.pending = pendingDetection{active: true, index: best, score: float64(k.smoothed[best]), firedAt: k.frames}
	k.pending.best = -1
	// The window peak may already have passed within the smoothing window.
	for r := range k.histN {
		idx := (k.histPos - k.histN + r + k.smoothN) % k.smoothN
		k.notePeak(k.history[idx*classes+best], k.historyTime[idx])
	}
	k.trackPeak(row, emit)
}

func (k *KeywordSpotter) notePeak(v float32, frame int64) {
	p := &k.pending
	switch {
	case v > p.best:
		if v-p.best > peakTolerance || p.best < 0 {
			p.firstNear = frame
		}
		p.best, p.lastNear = v, frame
	case v >= p.best-peakTolerance:
		p.lastNear = frame
	}
}

// trackPeak follows the raw score of a pending detection until it falls
// clearly below its best or PeakWait passes, then emits the event located
// by the span of confident windows.
func (k *KeywordSpotter) trackPeak(row []float32, emit func(KeywordEvent)) {
	p := &k.pending
	v := row[p.index]
	if k.frames != p.firedAt {
		k.notePeak(v, k.frames)
	}
	if v >= p.best-peakTolerance && k.frames-p.firedAt < k.peakMax {
		return
	}
	windowSamples := int64((k.windowFrames-1)*k.stride + k.frameLen)
	start := k.frameStart(p.lastNear - int64(k.windowFrames))
	end := k.frameStart(p.firstNear-int64(k.windowFrames)) + windowSamples
	ev := KeywordEvent{
		Keyword: k.cfg.Labels[p.index],
		Index:   p.index,
		Score:   p.score,
		Start:   k.samplesToDuration(max(start, 0)),
		End:     k.samplesToDuration(max(end, start)),
		Emitted: k.samplesToDuration(k.samples),
	}
	k.lastEvent = k.frames
	*p = pendingDetection{}
	emit(ev)
}

// Smoothed returns the current smoothed scores (valid until the next
// Process call).
func (k *KeywordSpotter) Smoothed() []float32 { return k.smoothed }

// Scores returns the classifier's latest raw scores, dequantized, into dst.
func (k *KeywordSpotter) Scores(dst []float32) []float32 {
	classes := len(k.smoothed)
	if k.histN == 0 {
		return dst[:0]
	}
	last := (k.histPos - 1 + k.smoothN) % k.smoothN
	return append(dst[:0], k.history[last*classes:(last+1)*classes]...)
}

// Frames is the number of feature frames computed so far.
func (k *KeywordSpotter) Frames() int64 { return k.frames }

// FeatureWindow returns the current feature window (the classifier's last
// input once the first window is full).
func (k *KeywordSpotter) FeatureWindow() []int8 { return k.features }

// Classify runs frontend and classifier on one clip from a fresh state, as
// TFLM's micro_speech test does (frames at every stride while a whole frame
// fits, at most one window), and returns the dequantized scores.
func (k *KeywordSpotter) Classify(pcm []int16, dst []float32) ([]float32, error) {
	k.Reset()
	clear(k.features)
	for f := 0; f < k.windowFrames && f*k.stride+k.frameLen <= len(pcm); f++ {
		copy(k.frontend.Inputs()[0].Int16s(), pcm[f*k.stride:f*k.stride+k.frameLen])
		if err := k.frontend.Invoke(); err != nil {
			return nil, fmt.Errorf("frontend: %w", err)
		}
		copy(k.features[f*k.featureSize:], k.frontend.Outputs()[0].Int8s())
	}
	copy(k.model.Inputs()[0].Int8s(), k.features)
	if err := k.model.Invoke(); err != nil {
		return nil, fmt.Errorf("classifier: %w", err)
	}
	out := k.model.Outputs()[0]
	dst = dst[:0]
	for i := range out.NumElements() {
		switch k.outType {
		case runtime.Int8:
			dst = append(dst, k.scoreScale*float32(int32(out.Int8s()[i])-k.scoreZP))
		case runtime.Uint8:
			dst = append(dst, k.scoreScale*float32(int32(out.Uint8s()[i])-k.scoreZP))
		default:
			dst = append(dst, out.Float32s()[i])
		}
	}
	k.Reset()
	return dst, nil
}
