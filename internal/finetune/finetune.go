// Package finetune teaches a deployed classification model new classes on
// the device: it runs the model's frozen backbone to collect embeddings (the
// input of its last FULLY_CONNECTED), trains a new head in float32 (weight
// imprinting, or minibatch Adam on a pooling-aware head with augmentation;
// optionally the convolution before the head too), quantizes it back
// (per-channel int8 weights, int32 bias, calibrated output) and writes a
// standard .tflite: the original graph with the head replaced. The new
// model is checked before it is handed out: it loads, its int8 predictions
// agree with the float head's, and its accuracy on held-out examples is not
// below a threshold.
package finetune

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	goruntime "runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/edged/edged/internal/quantize"
	"github.com/edged/edged/internal/runtime"
)

// Mode is how much of the model is trained.
type Mode string

const (
	// ModeImprint builds the head by weight imprinting: no epochs.
	ModeImprint Mode = "imprint"
	// ModeHead trains a new head on the frozen backbone.
	ModeHead Mode = "head"
	// ModeDeep trains the convolution before the head together with it.
	ModeDeep Mode = "deep"
)

// ParseMode checks a mode name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeImprint, ModeHead, ModeDeep:
		return m, nil
	}
	return "", fmt.Errorf("unknown mode %q (imprint, head or deep)", s)
}

// Clip is one labelled audio example: 16-bit mono PCM at the frontend's
// sample rate.
type Clip struct {
	Name  string
	Label string
	// Group names the speaker or session; examples of one group stay on
	// one side of the validation split. Empty: the example is its own
	// group.
	Group string
	PCM   []int16
}

// Example is one labelled model input (e.g. an image preprocessed into the
// model's input tensor).
type Example struct {
	Name  string
	Label string
	Group string
	Input []int8
}

// Data is what a model is fine-tuned on: audio clips (with the frontend
// that turns them into the model's input) or ready model inputs.
type Data struct {
	Frontend *runtime.Model
	Clips    []Clip
	Examples []Example
}

// Options configure fine-tuning. Zero values take the defaults in
// brackets.
type Options struct {
	// Mode [deep for audio when every class has examples and the layer
	// before the head can be trained; otherwise head]
	Mode Mode
	// Epochs bounds training [40 for head, 30 for deep]; early stopping
	// usually ends it sooner.
	Epochs int
	// Seed makes the run reproducible: the same data, options and seed
	// give the same model, byte for byte.
	Seed         uint64
	BatchSize    int     // [32]
	LearningRate float64 // [0.001]
	WeightDecay  float64 // decoupled, per step relative to the rate [0.01]
	// LabelSmoothing [0.1]
	LabelSmoothing float64
	// ValFraction of the examples (whole groups, per class) is held out
	// for early stopping and the check [0.2]; negative: none.
	ValFraction float64
	// Patience is how many epochs without a better validation loss end
	// training [6].
	Patience int
	// Segments is the head's pooling: the embedding is averaged over this
	// many time segments before the head (the head stays one
	// FULLY_CONNECTED on the embedding: pooling is folded into its
	// weights). 0 takes the default [1 for audio, 0 (no pooling) for
	// other inputs]; -1 means no pooling.
	Segments int
	// Augment makes extra training views of audio clips [DefaultAugment];
	// set Copies to -1 for none.
	Augment Augment
	// BaseLabels name the model's current classes in order. When every
	// one of them has examples, all classes are trained anew; when some
	// have none, the current classes are kept exactly (their int8 rows,
	// bias and the logits' quantization) and only the new ones are
	// trained (extend mode). Without BaseLabels the head is replaced by
	// one for the labels of the data.
	BaseLabels []string
	// NoKeepBase turns off, when all classes are trained anew, keeping
	// the current classes' recall: by default each current class (other
	// than an "unknown" one, whose meaning changes with the new labels)
	// gets a bias raise, where needed, so that on the validation examples
	// the new model recognizes it at least as often as the current model
	// does, unless the raise costs more validation examples of other
	// classes than it recovers.
	NoKeepBase bool
	// BaseWeight multiplies the loss weight of the current classes (other
	// than an "unknown" one) when all classes are trained anew, so that
	// the new classes take less from them [2].
	BaseWeight float64
	// BaseMargin is added, in logits, to the bias of every current
	// keyword class (not "unknown", not silence/noise) when all classes
	// are trained anew: the new words are most often confused with the
	// current ones (go with no), and a user who adds words expects the
	// ones the model already knew to stay as they were [0.5; negative:
	// none].
	BaseMargin float64
	// NoBaseFeatures leaves out the current head's logits as extra
	// features of the new head (used by default in head and imprint
	// modes: they carry what the model learned from its original training
	// data, at the embedding's full resolution).
	NoBaseFeatures bool
	// Negatives synthesizes examples of "none of the new classes" in
	// extend mode (background noise, silence, clips reversed or shifted
	// out of the window), labelled with the current model's own
	// predictions: Negatives of them per training view of the new classes
	// [3]; negative: none.
	Negatives float64
	// TargetRecall sets, in extend mode, each new class's bias so that
	// this share of its examples is recognized when held out
	// (cross-validated over the examples' groups): with only a few
	// examples of the new class and none of the words it must not take,
	// training alone leaves it too eager [0.7]; negative: off.
	TargetRecall float64
	// Stride is the audio hop between feature frames in samples [320].
	Stride int
	// MinAccuracy is the lowest int8 accuracy on the validation examples
	// the check accepts [1.5 / classes]; MaxAccuracyDrop the most it may
	// fall below the float head's [0.05].
	MinAccuracy     float64
	MaxAccuracyDrop float64
	// Workers compute embeddings in parallel [GOMAXPROCS].
	Workers int
	// Progress, when set, is called as work proceeds, from one goroutine
	// at a time; it should return quickly.
	Progress func(Progress)
}

// Progress reports what fine-tuning is doing.
type Progress struct {
	Stage string // "embed", "train", "check"
	Done  int    // views embedded, epochs trained, examples checked
	Total int
	// Training: the latest epoch's losses and validation accuracy.
	TrainLoss, ValLoss, ValAccuracy float64
}

// Report describes a fine-tuning run.
type Report struct {
	Mode   Mode     `json:"mode"`
	Labels []string `json:"labels"`
	Frozen int      `json:"frozen_classes"`
	// FrozenExact: the kept classes' int8 weights, bias and the logits'
	// quantization are the original ones, so their logits are
	// bit-identical (false when the new classes needed a wider range).
	FrozenExact bool `json:"frozen_exact"`
	Segments    int  `json:"segments"`
	// Examples by split, and views (with augmentation and negatives).
	TrainExamples int `json:"train_examples"`
	ValExamples   int `json:"val_examples"`
	TrainViews    int `json:"train_views"`
	Negatives     int `json:"negatives"`
	Epochs        int `json:"epochs"`
	BestEpoch     int `json:"best_epoch"`
	// LayerEpochs are the epochs (of Epochs) that trained the layer before
	// the head together with it (deep mode); the rest trained the final
	// head on the quantized layer's embeddings.
	LayerEpochs int `json:"layer_epochs,omitempty"`
	// LayerCPUPerEpoch is the CPU time of one such epoch.
	LayerCPUPerEpoch float64 `json:"layer_cpu_seconds_per_epoch,omitempty"`
	// Seconds spent (wall clock), and per epoch.
	EmbedSeconds    float64 `json:"embed_seconds"`
	TrainSeconds    float64 `json:"train_seconds"`
	SecondsPerEpoch float64 `json:"seconds_per_epoch"`
	CheckSeconds    float64 `json:"check_seconds"`
	// CPU seconds of the process (user + system) in each stage: with
	// GOMAXPROCS=1, the time one core spends, whatever else the machine
	// runs.
	EmbedCPU    float64 `json:"embed_cpu_seconds"`
	TrainCPU    float64 `json:"train_cpu_seconds"`
	CPUPerEpoch float64 `json:"cpu_seconds_per_epoch"`
	CheckCPU    float64 `json:"check_cpu_seconds"`
	// Accuracy of the float head and of the written int8 model on the
	// validation examples (and training examples), and the share of all
	// examples on which the int8 model predicts the float head's class.
	FloatValAccuracy float64 `json:"float_val_accuracy"`
	Int8ValAccuracy  float64 `json:"int8_val_accuracy"`
	Int8TrainAcc     float64 `json:"int8_train_accuracy"`
	Agreement        float64 `json:"agreement"`
	Checked          int     `json:"checked_examples"`
	// BaseBias lists the bias raises (logit units) that keep the current
	// classes' recall (Options.BaseMargin and, where the validation
	// examples needed more, Options.NoKeepBase's raise), by label.
	BaseBias map[string]float64 `json:"base_bias,omitempty"`
	// Logits is the quantization of the new head's output.
	Logits Quant `json:"logits"`
	// PeakHeapBytes is the largest live Go heap seen during the run
	// (runtime.MemStats.HeapAlloc, sampled every 10 ms; the whole
	// process's heap, including the caller's data).
	PeakHeapBytes uint64 `json:"peak_heap_bytes"`
}

// Result is a fine-tuned model.
type Result struct {
	Model  []byte
	Labels []string
	Report Report
}

// ErrCheck is returned (wrapped, with the result) when the new model fails
// its check.
var ErrCheck = errors.New("the fine-tuned model failed its check")

// noiseLabels name silence or background classes, whose clips serve as
// noise for augmentation.
var noiseLabels = []string{"silence", "_silence_", "background", "_background_noise_", "noise"}

// Run fine-tunes the model in base (a .tflite file) on data.
func Run(ctx context.Context, base []byte, data Data, opts Options) (*Result, error) {
	start, cpuStart := time.Now(), cpuSeconds()
	heap := newHeapSampler()
	defer heap.stop()
	j, err := prepare(ctx, base, data, opts)
	if err != nil {
		return nil, err
	}
	j.report.EmbedSeconds = time.Since(start).Seconds()
	j.report.EmbedCPU = cpuSeconds() - cpuStart
	res, err := j.complete()
	if res != nil {
		res.Report.PeakHeapBytes = heap.stop()
	}
	return res, err
}

// prepare checks the options, the model and the labels and computes the
// embeddings of every view.
func prepare(ctx context.Context, base []byte, data Data, opts Options) (*job, error) {
	o, err := opts.withDefaults(data)
	if err != nil {
		return nil, err
	}
	model, err := runtime.LoadModel(base)
	if err != nil {
		return nil, err
	}
	h, err := FindHead(model, base)
	if err != nil {
		return nil, err
	}
	j := &job{ctx: ctx, base: base, model: model, head: h, data: data, opts: o}
	if err := j.resolveLabels(); err != nil {
		return nil, err
	}
	if o.Mode == "" {
		o.Mode = j.autoMode()
		o.epochDefault()
		j.opts = o
	}
	if o.Mode == ModeDeep {
		if j.frozen > 0 {
			return nil, errors.New("deep fine-tuning retrains the layer every class depends on; it needs examples of every current class (extend mode trains the head only)")
		}
		if h.Layer < 0 {
			return nil, errors.New("deep fine-tuning needs a CONV_2D or DEPTHWISE_CONV_2D with int8 per-channel weights right before the head; this model has none")
		}
	}
	if err := j.embed(); err != nil {
		return nil, err
	}
	return j, nil
}

// complete trains, quantizes, writes and checks the new model of a
// prepared job.
func (j *job) complete() (*Result, error) {
	if err := j.train(); err != nil {
		if errors.Is(err, errCanceled) && j.ctx.Err() != nil {
			return nil, j.ctx.Err()
		}
		return nil, err
	}
	res, err := j.finish()
	if res != nil {
		res.Report.Labels = j.labels
	}
	return res, err
}

// heapSampler records the peak of the live heap while fine-tuning runs.
type heapSampler struct {
	done chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	peak uint64
	once sync.Once
}

func newHeapSampler() *heapSampler {
	h := &heapSampler{done: make(chan struct{})}
	h.sample()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.done:
				return
			case <-t.C:
				h.sample()
			}
		}
	}()
	return h
}

func (h *heapSampler) sample() {
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	h.mu.Lock()
	h.peak = max(h.peak, ms.HeapAlloc)
	h.mu.Unlock()
}

// stop ends sampling (once) and returns the peak.
func (h *heapSampler) stop() uint64 {
	h.once.Do(func() {
		h.sample()
		close(h.done)
		h.wg.Wait()
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peak
}

func (o Options) withDefaults(data Data) (Options, error) {
	if o.Mode != "" {
		if _, err := ParseMode(string(o.Mode)); err != nil {
			return o, err
		}
	}
	o.epochDefault()
	if o.Epochs < 0 {
		return o, fmt.Errorf("epochs %d must not be negative", o.Epochs)
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 32
	}
	if o.LearningRate <= 0 {
		o.LearningRate = 0.001
	}
	if o.WeightDecay == 0 {
		o.WeightDecay = 0.01
	}
	if o.LabelSmoothing == 0 {
		o.LabelSmoothing = 0.1
	}
	o.LabelSmoothing = math.Max(o.LabelSmoothing, 0)
	if o.ValFraction == 0 {
		o.ValFraction = 0.2
	}
	if o.ValFraction >= 0.9 {
		return o, fmt.Errorf("validation fraction %g leaves too little to train on", o.ValFraction)
	}
	if o.Patience == 0 {
		o.Patience = 6
	}
	audio := len(data.Clips) > 0
	if o.Segments == 0 {
		o.Segments = -1
		if audio {
			o.Segments = 1
		}
	}
	if o.Augment == (Augment{}) {
		o.Augment = DefaultAugment
	}
	if o.Augment.Copies < 0 || !audio {
		o.Augment.Copies = 0
	}
	if o.BaseWeight == 0 {
		o.BaseWeight = 2
	}
	switch {
	case o.BaseMargin == 0:
		o.BaseMargin = 0.5
	case o.BaseMargin < 0:
		o.BaseMargin = 0
	}
	if o.BaseWeight < 0 {
		return o, fmt.Errorf("base weight %g must not be negative", o.BaseWeight)
	}
	if o.Negatives == 0 {
		o.Negatives = 3
	}
	if o.TargetRecall == 0 {
		o.TargetRecall = 0.7
	}
	if o.TargetRecall >= 1 {
		return o, fmt.Errorf("target recall %g must be below 1", o.TargetRecall)
	}
	if o.Stride <= 0 {
		o.Stride = DefaultStride
	}
	if o.MaxAccuracyDrop == 0 {
		o.MaxAccuracyDrop = 0.05
	}
	if o.Workers <= 0 {
		o.Workers = goruntime.GOMAXPROCS(0)
	}
	if audio && len(data.Examples) > 0 {
		return o, errors.New("give either audio clips or model inputs, not both")
	}
	if len(data.Clips) == 0 && len(data.Examples) == 0 {
		return o, errors.New("no examples")
	}
	if audio && data.Frontend == nil {
		return o, errors.New("audio clips need a frontend model")
	}
	return o, nil
}

// epochDefault sets the default epochs once the mode is known.
func (o *Options) epochDefault() {
	if o.Epochs == 0 && o.Mode != "" {
		o.Epochs = 40
		if o.Mode == ModeDeep {
			o.Epochs = 30
		}
	}
}

// autoMode is the mode a job runs in when none is given: deep for audio
// when every class is trained anew and the layer before the head can be
// trained (it generalizes to new voices better than the head alone), else
// head.
func (j *job) autoMode() Mode {
	if len(j.data.Clips) > 0 && j.frozen == 0 && j.head.Layer >= 0 {
		return ModeDeep
	}
	return ModeHead
}

// job is one fine-tuning run.
type job struct {
	ctx    context.Context
	base   []byte
	model  *runtime.Model
	head   *Head
	data   Data
	opts   Options
	labels []string
	frozen int

	// Per example: class, group, validation or not.
	exLabel []int
	exGroup []string
	isVal   []bool
	// Model inputs of the examples themselves (view 0), for the check,
	// and the current model's prediction for them.
	inputs   [][]int8
	basePred []int

	// Views: embeddings (and layer inputs for deep), their example (-1 for
	// synthesized negatives) and class.
	views []view

	fm     *featureMap
	fixedW []float32 // frozen rows, dequantized, in training units (× beta)
	fixedB []float32
	beta   float32

	// The trained head on the embedding, in logit units.
	headW, headB []float32
	layer        *QuantLayer
	report       Report
}

type view struct {
	example int // -1: synthesized negative
	origin  int // the example the view was made from
	label   int
	embed   []int8
	layerIn []int8
}

func (j *job) progress(p Progress) {
	if j.opts.Progress != nil {
		j.opts.Progress(p)
	}
}

func (j *job) resolveLabels() error {
	var names []string
	if len(j.data.Clips) > 0 {
		for _, c := range j.data.Clips {
			names = append(names, c.Label)
		}
	} else {
		for _, e := range j.data.Examples {
			names = append(names, e.Label)
		}
	}
	present := map[string]int{}
	for _, n := range names {
		if n == "" {
			return errors.New("an example has no label")
		}
		present[n]++
	}
	dataLabels := make([]string, 0, len(present))
	for l := range present {
		dataLabels = append(dataLabels, l)
	}
	sort.Strings(dataLabels)
	base := j.opts.BaseLabels
	if base == nil {
		j.labels = dataLabels
	} else {
		if len(base) != j.head.Classes {
			return fmt.Errorf("%d base labels for a head of %d classes", len(base), j.head.Classes)
		}
		seen := map[string]bool{}
		missing := 0
		for _, l := range base {
			if seen[l] {
				return fmt.Errorf("base label %q appears twice", l)
			}
			seen[l] = true
			if present[l] == 0 {
				missing++
			}
		}
		j.labels = slices.Clone(base)
		newLabels := 0
		for _, l := range dataLabels {
			if !seen[l] {
				j.labels = append(j.labels, l)
				newLabels++
			}
		}
		if missing > 0 {
			if newLabels == 0 {
				return fmt.Errorf("the examples hold no new label and only some of the current ones (%d of %d have none): nothing to learn", missing, len(base))
			}
			j.frozen = len(base)
		}
	}
	if len(j.labels) < 2 {
		return fmt.Errorf("a classifier needs at least two classes; the examples have %v", j.labels)
	}
	index := map[string]int{}
	for i, l := range j.labels {
		index[l] = i
	}
	for i, n := range names {
		j.exLabel = append(j.exLabel, index[n])
		g := ""
		if len(j.data.Clips) > 0 {
			g = j.data.Clips[i].Group
		} else {
			g = j.data.Examples[i].Group
		}
		if g == "" {
			g = fmt.Sprintf("\x00example %d", i)
		}
		j.exGroup = append(j.exGroup, g)
	}
	j.isVal = splitByGroup(j.exLabel, j.exGroup, len(j.labels), j.opts.ValFraction, j.opts.Seed)
	return nil
}

// embedTask is one view to compute.
type embedTask struct {
	example int
	view    int // 0: the example itself
	kind    negKind
	slot    int
}

type negKind int

const (
	notNegative negKind = iota
	negNoise            // background noise or silence only
	negReversed         // an example played backwards
	negShifted          // an example shifted mostly out of the window
)

// embed computes every view's embedding.
func (j *job) embed() error {
	audio := len(j.data.Clips) > 0
	var tasks []embedTask
	for i := range j.exLabel {
		tasks = append(tasks, embedTask{example: i})
		if !j.isVal[i] {
			for v := 1; v <= j.opts.Augment.Copies; v++ {
				tasks = append(tasks, embedTask{example: i, view: v})
			}
		}
	}
	if j.frozen > 0 && audio && j.opts.Negatives > 0 {
		// Options.Negatives times as many negatives as training views of
		// the new classes, in equal parts background (noise, or digital
		// silence), reversed clips and clips shifted out of the window.
		n := 0
		for i, l := range j.exLabel {
			if l >= j.frozen && !j.isVal[i] {
				n += 1 + j.opts.Augment.Copies
			}
		}
		n = int(math.Round(float64(n) * j.opts.Negatives))
		var train []int
		for i := range j.exLabel {
			if !j.isVal[i] {
				train = append(train, i)
			}
		}
		for k := 0; k < n; k++ {
			kind := negKind(1 + k%3)
			tasks = append(tasks, embedTask{example: train[(k/3)%len(train)], view: 1000 + k, kind: kind})
			j.report.Negatives++
		}
	}
	for i := range tasks {
		tasks[i].slot = i
	}
	j.views = make([]view, len(tasks))
	j.inputs = make([][]int8, len(j.exLabel))
	j.basePred = make([]int, len(j.exLabel))
	var noises [][]int16
	if audio {
		for i, c := range j.data.Clips {
			if slices.Contains(noiseLabels, c.Label) && !j.isVal[i] {
				noises = append(noises, c.PCM)
			}
		}
	}
	dim := j.head.Dim
	embedStore := make([]int8, len(tasks)*dim)
	var layerStore []int8
	layerSize := 0
	if j.opts.Mode == ModeDeep {
		op := j.model.Subgraphs[0].Operators[j.head.Layer]
		layerSize = runtime.NumElements(j.model.Subgraphs[0].Tensors[op.Inputs[0]].Shape)
		layerStore = make([]int8, len(tasks)*layerSize)
	}

	ctx, cancel := context.WithCancel(j.ctx)
	defer cancel()
	work := make(chan embedTask)
	var mu sync.Mutex
	var firstErr error
	done := 0
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	var wg sync.WaitGroup
	workers := min(j.opts.Workers, len(tasks))
	for range workers {
		bb, err := NewBackbone(j.model, j.head)
		if err != nil {
			return err
		}
		var fe *AudioFrontend
		if audio {
			fe, err = NewAudioFrontend(j.data.Frontend, bb.InputSize(), j.opts.Stride)
			if err != nil {
				return err
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			input := make([]int8, bb.InputSize())
			var viewF []float64
			var viewPCM []int16
			for t := range work {
				var src []int8
				if audio {
					clip := j.data.Clips[t.example]
					pcm := clip.PCM
					if t.view != 0 {
						rng := viewRNG(j.opts.Seed, t.example, t.view)
						n := max(len(clip.PCM), fe.WindowSamples())
						if cap(viewF) < n {
							viewF = make([]float64, n)
							viewPCM = make([]int16, n)
						}
						viewF, viewPCM = viewF[:n], viewPCM[:n]
						j.makeView(rng, t, clip, noises, viewF)
						toPCM16(viewF, viewPCM)
						pcm = viewPCM
					}
					if err := fe.Features(pcm, input); err != nil {
						fail(fmt.Errorf("%s: %w", clip.Name, err))
						return
					}
					if t.view != 0 && t.kind == notNegative {
						j.opts.Augment.maskFeatures(viewRNG(j.opts.Seed^0x6d61736b, t.example, t.view), input, fe.frames, fe.features)
					}
					src = input
				} else {
					src = j.data.Examples[t.example].Input
				}
				emb, lin, logits, err := bb.Run(src)
				if err != nil {
					fail(fmt.Errorf("%s: %w", j.exampleName(t.example), err))
					return
				}
				v := view{example: t.example, origin: t.example, label: j.exLabel[t.example]}
				if t.kind != notNegative {
					v.example = -1
					v.label = argmax(logits[:min(len(logits), j.frozen)])
				}
				v.embed = embedStore[t.slot*dim : (t.slot+1)*dim]
				copy(v.embed, emb)
				if layerStore != nil {
					v.layerIn = layerStore[t.slot*layerSize : (t.slot+1)*layerSize]
					copy(v.layerIn, lin)
				}
				j.views[t.slot] = v
				if t.view == 0 && t.kind == notNegative {
					j.inputs[t.example] = slices.Clone(src)
					j.basePred[t.example] = argmax(logits)
				}
				mu.Lock()
				done++
				if done%64 == 0 || done == len(tasks) {
					j.progress(Progress{Stage: "embed", Done: done, Total: len(tasks)})
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, t := range tasks {
		select {
		case work <- t:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := j.ctx.Err(); err != nil {
		return err
	}
	for i := range j.exLabel {
		if j.isVal[i] {
			j.report.ValExamples++
		} else {
			j.report.TrainExamples++
		}
	}
	for _, v := range j.views {
		if v.example < 0 || !j.isVal[v.example] {
			j.report.TrainViews++
		}
	}
	return nil
}

func (j *job) exampleName(i int) string {
	if len(j.data.Clips) > 0 {
		return j.data.Clips[i].Name
	}
	return j.data.Examples[i].Name
}

// makeView writes an augmented view or a synthesized negative of clip into
// dst.
func (j *job) makeView(r *rand.Rand, t embedTask, clip Clip, noises [][]int16, dst []float64) {
	silence := slices.Contains(noiseLabels, clip.Label)
	switch t.kind {
	case notNegative:
		j.opts.Augment.augmentPCM(r, clip.PCM, noises, silence, dst)
	case negNoise:
		clear(dst)
		if r.IntN(4) > 0 {
			quiet := Augment{NoiseProb: 1}
			quiet.augmentPCM(r, make([]int16, len(dst)), noises, true, dst)
		}
	case negReversed:
		rev := slices.Clone(clip.PCM)
		slices.Reverse(rev)
		j.opts.Augment.augmentPCM(r, rev, noises, silence, dst)
	case negShifted:
		// Keep at most the first or last ~150 ms of the clip's sound.
		a := Augment{GainDB: j.opts.Augment.GainDB, NoiseProb: j.opts.Augment.NoiseProb, MinSNR: j.opts.Augment.MinSNR, MaxSNR: j.opts.Augment.MaxSNR}
		a.augmentPCM(r, clip.PCM, noises, silence, dst)
		n := len(dst)
		edge := activeSpan(dst)
		keep := 2400
		shifted := make([]float64, n)
		if r.IntN(2) == 0 {
			// Word start at the window's end.
			off := n - keep - edge[0]
			for i := range shifted {
				if k := i - off; k >= 0 && k < n {
					shifted[i] = dst[k]
				}
			}
		} else {
			off := edge[1] - keep
			for i := range shifted {
				if k := i + off; k >= 0 && k < n {
					shifted[i] = dst[k]
				}
			}
		}
		copy(dst, shifted)
	}
}

// activeSpan returns the first and last sample above -40 dB of the peak.
func activeSpan(x []float64) [2]int {
	var peak float64
	for _, v := range x {
		peak = math.Max(peak, math.Abs(v))
	}
	th := peak * 0.01
	first, last := 0, len(x)-1
	for first < len(x) && math.Abs(x[first]) < th {
		first++
	}
	for last > first && math.Abs(x[last]) < th {
		last--
	}
	if first >= len(x) {
		return [2]int{0, len(x) - 1}
	}
	return [2]int{first, last}
}

// train fits the head (and the layer before it in deep mode).
func (j *job) train() error {
	h := j.head
	classes := len(j.labels)
	j.beta = 1
	if h.SoftmaxBeta > 0 {
		j.beta = h.SoftmaxBeta
	}
	segments := j.opts.Segments
	if segments < 0 {
		segments = 0
	}
	j.fm = newFeatureMap(h.EmbedShape, h.Embed, segments)
	j.report.Segments = j.fm.segments()
	j.report.Mode = j.opts.Mode
	j.report.Frozen = j.frozen
	train, val := j.samples()
	if j.frozen > 0 {
		j.loadFrozen()
	}
	if !j.opts.NoBaseFeatures && j.opts.Mode != ModeDeep {
		w, b := j.baseHead()
		j.fm.addProjections(w, b)
	}
	cfg := trainConfig{
		epochs: j.opts.Epochs, batch: j.opts.BatchSize, patience: j.opts.Patience,
		lr: j.opts.LearningRate, weightDecay: j.opts.WeightDecay, smoothing: j.opts.LabelSmoothing,
		seed: j.opts.Seed, frozen: j.frozen, fixedLogits: j.fixedLogits,
		stop: func() bool { return j.ctx.Err() != nil },
	}
	start, cpuStart := time.Now(), cpuSeconds()
	total := cfg.epochs
	if j.opts.Mode == ModeDeep {
		total *= 2 // the layer with the head, then the final head
	}
	cfg.progress = func(epoch int, trainLoss, valLoss, valAcc float64) {
		j.progress(Progress{Stage: "train", Done: epoch, Total: total, TrainLoss: trainLoss, ValLoss: valLoss, ValAccuracy: valAcc})
	}
	var lin *linearHead
	switch j.opts.Mode {
	case ModeImprint:
		j.fm.fit(xsOf(train))
		lin = imprintHead(j.fm, classes, train, j.frozen, j.fixedLogits)
	case ModeHead:
		j.fm.fit(xsOf(train))
		var st trainStats
		var err error
		lin, st, err = trainHead(j.fm, classes, train, val, cfg)
		if err != nil {
			return err
		}
		j.report.Epochs, j.report.BestEpoch = st.epochs, st.bestEpoch
		if j.frozen > 0 && j.opts.TargetRecall > 0 {
			if err := j.calibrateNew(lin, cfg); err != nil {
				return err
			}
		}
	case ModeDeep:
		var err error
		lin, err = j.trainDeep(train, val, cfg)
		if err != nil {
			return err
		}
	}
	j.report.TrainSeconds = time.Since(start).Seconds()
	j.report.TrainCPU = cpuSeconds() - cpuStart
	if j.report.Epochs > 0 {
		j.report.SecondsPerEpoch = j.report.TrainSeconds / float64(j.report.Epochs)
		j.report.CPUPerEpoch = j.report.TrainCPU / float64(j.report.Epochs)
	}
	W, B := j.fm.expand(lin.w, lin.b, lin.classes)
	// Back from training units (beta × logits) to logits.
	for i := range W {
		W[i] /= j.beta
	}
	for i := range B {
		B[i] /= j.beta
	}
	if j.frozen > 0 {
		// The kept classes' rows come first, as the current head has them.
		bw, bb := j.baseHead()
		W = append(bw[:j.frozen*h.Dim:j.frozen*h.Dim], W...)
		B = append(bb[:j.frozen:j.frozen], B...)
	}
	j.headW, j.headB = W, B
	if j.frozen == 0 && len(j.opts.BaseLabels) > 0 && !j.opts.NoKeepBase {
		j.keepBase()
	}
	if j.frozen == 0 && j.opts.BaseMargin > 0 {
		for c := range len(j.opts.BaseLabels) {
			if l := j.labels[c]; !slices.Contains(unknownLabels, l) && !slices.Contains(noiseLabels, l) {
				j.headB[c] += float32(j.opts.BaseMargin)
				if j.report.BaseBias == nil {
					j.report.BaseBias = map[string]float64{}
				}
				j.report.BaseBias[l] += j.opts.BaseMargin
			}
		}
	}
	return nil
}

// samples splits the views' embeddings into training and validation
// samples (a view is held out with the example it was made from).
func (j *job) samples() (train, val []sample) {
	for _, v := range j.views {
		s := sample{x: v.embed, label: v.label, weight: j.sampleWeight(v.label)}
		if v.example >= 0 && j.isVal[v.example] {
			val = append(val, s)
		} else {
			train = append(train, s)
		}
	}
	return train, val
}

// sampleWeight is the loss weight of a view of class c besides the class
// balance: Options.BaseWeight for a current class (not "unknown") when all
// classes are trained anew, else 1.
func (j *job) sampleWeight(c int) float32 {
	if j.frozen == 0 && c < len(j.opts.BaseLabels) && !slices.Contains(unknownLabels, j.labels[c]) {
		return float32(j.opts.BaseWeight)
	}
	return 1
}

func xsOf(ss []sample) [][]int8 {
	out := make([][]int8, len(ss))
	for i, s := range ss {
		out[i] = s.x
	}
	return out
}

// baseHead returns the current head, dequantized: logits = W·x + B on the
// dequantized embedding.
func (j *job) baseHead() (W, B []float32) {
	g := j.model.Subgraphs[0]
	h := j.head
	w := &g.Tensors[h.Weights]
	W = make([]float32, h.Classes*h.Dim)
	B = make([]float32, h.Classes)
	for c := range h.Classes {
		s := w.Quant.Scale[min(c, len(w.Quant.Scale)-1)]
		for i := range h.Dim {
			W[c*h.Dim+i] = s * float32(int8(w.Data[c*h.Dim+i]))
		}
	}
	if h.Bias >= 0 {
		b := &g.Tensors[h.Bias]
		vals := int32sOf(b.Data)
		for c := range h.Classes {
			B[c] = b.Quant.Scale[min(c, len(b.Quant.Scale)-1)] * float32(vals[c])
		}
	}
	return W, B
}

// loadFrozen reads the current head's rows in training units.
func (j *job) loadFrozen() {
	W, B := j.baseHead()
	for i := range W {
		W[i] *= j.beta
	}
	for i := range B {
		B[i] *= j.beta
	}
	j.fixedW, j.fixedB = W, B
}

func int32sOf(b []byte) []int32 {
	out := make([]int32, len(b)/4)
	for i := range out {
		out[i] = int32(leUint32(b[4*i:]))
	}
	return out
}

// fixedLogits computes the frozen classes' logits (training units) of an
// embedding.
func (j *job) fixedLogits(x []int8, dst []float32) {
	h := j.head
	q := h.Embed
	for c := range j.frozen {
		row := j.fixedW[c*h.Dim : (c+1)*h.Dim]
		var s float32
		for i, v := range x {
			s += row[i] * float32(int32(v)-q.ZeroPoint)
		}
		dst[c] = s*q.Scale + j.fixedB[c]
	}
}

// floatLogits are the trained head's logits of an embedding (logit units),
// with embed the embedding's quantization.
func (j *job) floatLogits(x []int8, embed Quant, dst []float32) {
	h := j.head
	for c := range len(j.labels) {
		row := j.headW[c*h.Dim : (c+1)*h.Dim]
		var s float32
		for i, v := range x {
			s += row[i] * float32(int32(v)-embed.ZeroPoint)
		}
		dst[c] = s*embed.Scale + j.headB[c]
	}
	if j.frozen > 0 {
		fixed := make([]float32, j.frozen)
		j.fixedLogits(x, fixed)
		for c := range fixed {
			dst[c] = fixed[c] / j.beta
		}
	}
}

// quantizeHead builds the int8 head: frozen rows copied, the others
// quantized per class; the logits calibrated on the training views (or kept,
// in extend mode).
func (j *job) quantizeHead() (*QuantHead, error) {
	h := j.head
	classes := len(j.labels)
	embed := h.Embed
	if j.layer != nil {
		embed = j.layer.Output
	}
	q := &QuantHead{Classes: classes, Dim: h.Dim}
	sw, err := quantize.QuantizeSymmetricPerChannel(j.headW, []int{classes, h.Dim}, 0)
	if err != nil {
		return nil, err
	}
	q.Weights, q.WeightScales = sw.Values, sw.Scales
	// Bias correction: the embedding is far from zero on average (ReLU
	// outputs), so rounding the weights shifts every logit by about
	// Σ (w − ŵ)·mean(x); fold that expected shift back into the bias, so
	// only the small error on x − mean(x) remains.
	mean := j.meanEmbedding()
	bias := slices.Clone(j.headB)
	deq := sw.Dequantize([]int{classes, h.Dim})
	for c := range classes {
		var shift float64
		for i, m := range mean {
			shift += float64(j.headW[c*h.Dim+i]-deq[c*h.Dim+i]) * m
		}
		bias[c] += float32(shift)
	}
	q.Bias, q.BiasScales, err = quantize.QuantizeBias(bias, embed.Scale, q.WeightScales)
	if err != nil {
		return nil, err
	}
	if j.frozen > 0 {
		g := j.model.Subgraphs[0]
		w, b := &g.Tensors[h.Weights], &g.Tensors[h.Bias]
		for c := range j.frozen {
			for i := range h.Dim {
				q.Weights[c*h.Dim+i] = int8(w.Data[c*h.Dim+i])
			}
			q.WeightScales[c] = w.Quant.Scale[min(c, len(w.Quant.Scale)-1)]
			if h.Bias >= 0 {
				q.Bias[c] = int32sOf(b.Data)[c]
				q.BiasScales[c] = b.Quant.Scale[min(c, len(b.Quant.Scale)-1)]
			} else {
				q.Bias[c] = 0
				q.BiasScales[c] = embed.Scale * q.WeightScales[c]
			}
		}
		// Keep the logits' quantization, so the kept classes' logits stay
		// bit-identical, unless the new classes need more room: a new
		// logit clamped at the top would tie with a saturated old one.
		q.Logits = h.Logits
		top := h.Logits.Dequantize(127)
		var obs quantize.RangeObserver
		logits := make([]float32, classes)
		over := 0
		for _, v := range j.views {
			j.floatLogits(v.embed, j.embedQuant(), logits)
			obs.Observe(logits...)
			if slices.Max(logits[j.frozen:]) > top {
				over++
			}
		}
		j.report.FrozenExact = true
		if over*100 > len(j.views) {
			p, err := obs.ParamsInt8()
			if err != nil {
				return nil, err
			}
			q.Logits = Quant{p.Scale, p.ZeroPoint}
			j.report.FrozenExact = false
		}
		return q, nil
	}
	var obs quantize.RangeObserver
	logits := make([]float32, classes)
	for _, v := range j.views {
		j.floatLogits(v.embed, j.embedQuant(), logits)
		obs.Observe(logits...)
	}
	p, err := obs.ParamsInt8()
	if err != nil {
		return nil, err
	}
	q.Logits = Quant{p.Scale, p.ZeroPoint}
	return q, nil
}

// meanEmbedding is the mean dequantized embedding of the training views.
func (j *job) meanEmbedding() []float64 {
	q := j.embedQuant()
	sum := make([]float64, j.head.Dim)
	n := 0
	for _, v := range j.views {
		if v.example >= 0 && j.isVal[v.example] {
			continue
		}
		for i, x := range v.embed {
			sum[i] += float64(x)
		}
		n++
	}
	for i := range sum {
		sum[i] = float64(q.Scale) * (sum[i]/float64(max(n, 1)) - float64(q.ZeroPoint))
	}
	return sum
}

// embedQuant is the quantization of the views' embeddings.
func (j *job) embedQuant() Quant {
	if j.layer != nil {
		return j.layer.Output
	}
	return j.head.Embed
}

// finish quantizes, writes and checks the new model.
func (j *job) finish() (*Result, error) {
	start, cpuStart := time.Now(), cpuSeconds()
	q, err := j.quantizeHead()
	if err != nil {
		return nil, fmt.Errorf("quantize head: %w", err)
	}
	j.report.Logits = q.Logits
	out, err := WriteModel(j.base, j.head, q, j.layer)
	if err != nil {
		return nil, fmt.Errorf("write model: %w", err)
	}
	res := &Result{Model: out, Labels: slices.Clone(j.labels)}
	err = j.check(out)
	j.report.CheckSeconds = time.Since(start).Seconds()
	j.report.CheckCPU = cpuSeconds() - cpuStart
	res.Report = j.report
	return res, err
}

// check loads the written model, compares it with the original, runs it on
// every example and compares its predictions with the float head's and the
// labels.
func (j *job) check(out []byte) error {
	m, err := runtime.LoadModel(out)
	if err != nil {
		return fmt.Errorf("%w: it does not load: %v", ErrCheck, err)
	}
	if err := CompareModels(j.model, m, j.head, j.layer != nil); err != nil {
		return fmt.Errorf("%w: %v", ErrCheck, err)
	}
	h2, err := FindHead(m, out)
	if err != nil || h2.Classes != len(j.labels) {
		return fmt.Errorf("%w: head: %v", ErrCheck, err)
	}
	bb, err := NewBackbone(m, h2)
	if err != nil {
		return fmt.Errorf("%w: it does not run: %v", ErrCheck, err)
	}
	classes := len(j.labels)
	logits := make([]float32, classes)
	var agree, n, valN, valOK, valFloatOK, trainN, trainOK int
	for i, input := range j.inputs {
		if err := j.ctx.Err(); err != nil {
			return err
		}
		emb, _, out, err := bb.Run(input)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCheck, j.exampleName(i), err)
		}
		scores := bb.it.Outputs()[0]
		pred := modelPrediction(scores, out)
		j.floatLogits(emb, j.embedQuant(), logits)
		fp := argmax(logits)
		n++
		if pred == fp {
			agree++
		}
		if j.isVal[i] {
			valN++
			if pred == j.exLabel[i] {
				valOK++
			}
			if fp == j.exLabel[i] {
				valFloatOK++
			}
		} else {
			trainN++
			if pred == j.exLabel[i] {
				trainOK++
			}
		}
		if n%64 == 0 || n == len(j.inputs) {
			j.progress(Progress{Stage: "check", Done: n, Total: len(j.inputs)})
		}
	}
	j.report.Checked = n
	j.report.Agreement = ratio(agree, n)
	j.report.Int8TrainAcc = ratio(trainOK, trainN)
	if valN > 0 {
		j.report.Int8ValAccuracy = ratio(valOK, valN)
		j.report.FloatValAccuracy = ratio(valFloatOK, valN)
		floor := j.opts.MinAccuracy
		if floor == 0 {
			floor = 1.5 / float64(classes)
		}
		if j.report.Int8ValAccuracy < floor {
			return fmt.Errorf("%w: int8 accuracy on the %d validation examples is %.3f, below %.3f", ErrCheck, valN, j.report.Int8ValAccuracy, floor)
		}
		if j.report.Int8ValAccuracy < j.report.FloatValAccuracy-j.opts.MaxAccuracyDrop {
			return fmt.Errorf("%w: int8 accuracy on the validation examples is %.3f, the float head's %.3f", ErrCheck, j.report.Int8ValAccuracy, j.report.FloatValAccuracy)
		}
	}
	return nil
}

// modelPrediction is the class a model's output picks (the first output
// tensor's largest value; the logits when the scores tie, as a saturated
// softmax can).
func modelPrediction(scores *runtime.Tensor, logits []int8) int {
	var vals []float64
	switch scores.Type {
	case runtime.Int8:
		for _, v := range scores.Int8s() {
			vals = append(vals, float64(v))
		}
	case runtime.Float32:
		for _, v := range scores.Float32s() {
			vals = append(vals, float64(v))
		}
	default:
		return argmax(logits)
	}
	best := 0
	for i, v := range vals {
		if v > vals[best] || (v == vals[best] && logits[i] > logits[best]) {
			best = i
		}
	}
	return best
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// calibrateNew sets the bias of each new class (extend mode) from
// cross-validation: the examples are split into folds by group, a head is
// trained without each fold, and the held-out views of the new classes
// give the margin (own logit minus the best other) the class gets on
// examples it has not seen. The bias moves so that TargetRecall of those
// margins are positive.
func (j *job) calibrateNew(lin *linearHead, cfg trainConfig) error {
	classes := len(j.labels)
	groups := map[string]bool{}
	for i, l := range j.exLabel {
		if l >= j.frozen {
			groups[j.exGroup[i]] = true
		}
	}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	sort.Strings(names)
	folds := min(5, len(names))
	if folds < 2 {
		return nil
	}
	rng := rand.New(rand.NewPCG(j.opts.Seed, 0x63616c6962))
	rng.Shuffle(len(names), func(a, b int) { names[a], names[b] = names[b], names[a] })
	foldOf := map[string]int{}
	for i, g := range names {
		foldOf[g] = i % folds
	}
	exFold := make([]int, len(j.exLabel))
	for i, g := range j.exGroup {
		f, ok := foldOf[g]
		if !ok {
			f = i % folds
		}
		exFold[i] = f
	}
	margins := make([][]float64, classes)
	z := make([]float32, j.fm.out)
	fixed := make([]float32, j.frozen)
	logits := make([]float32, classes)
	for f := range folds {
		var train, held []sample
		for _, v := range j.views {
			if v.example >= 0 && j.isVal[v.example] {
				continue
			}
			s := sample{x: v.embed, label: v.label, weight: 1}
			if exFold[v.origin] == f {
				if v.example >= 0 && v.label >= j.frozen {
					held = append(held, s)
				}
				continue
			}
			train = append(train, s)
		}
		c := cfg
		c.progress = nil
		c.seed = cfg.seed + uint64(f) + 1
		h, _, err := trainHead(j.fm, classes, train, nil, c)
		if err != nil {
			return err
		}
		for _, s := range held {
			j.fm.apply(s.x, z)
			j.fixedLogits(s.x, fixed)
			h.logits(z, fixed, logits)
			own := logits[s.label]
			logits[s.label] = float32(math.Inf(-1))
			margins[s.label] = append(margins[s.label], float64(own-slices.Max(logits)))
		}
	}
	for c := j.frozen; c < classes; c++ {
		m := margins[c]
		if len(m) == 0 {
			continue
		}
		sort.Float64s(m)
		q := m[min(len(m)-1, int(float64(len(m))*(1-j.opts.TargetRecall)))]
		lin.b[c-j.frozen] -= float32(q)
	}
	return nil
}

// unknownLabels name the catch-all class of keyword models, whose meaning
// changes when new words become classes of their own.
var unknownLabels = []string{"unknown", "_unknown_"}

// keepBase raises the bias of current classes whose recall on the
// validation examples fell below the current model's on the same examples
// (the new classes compete for them), by the least amount that restores
// it, unless that costs more validation examples than it recovers.
func (j *job) keepBase() {
	classes := len(j.labels)
	logits := make([]float32, classes)
	type valEx struct {
		label  int
		logits []float32
	}
	var val []valEx
	for _, v := range j.views {
		if v.example >= 0 && j.isVal[v.example] {
			j.floatLogits(v.embed, j.embedQuant(), logits)
			val = append(val, valEx{v.label, slices.Clone(logits)})
		}
	}
	for c := range len(j.opts.BaseLabels) {
		if slices.Contains(unknownLabels, j.labels[c]) {
			continue
		}
		var total, baseHits int
		for i, l := range j.exLabel {
			if l == c && j.isVal[i] {
				total++
				if j.basePred[i] == c {
					baseHits++
				}
			}
		}
		if total == 0 {
			continue
		}
		// The raise each missed example needs to become class c.
		var hits int
		var needs []float64
		for _, e := range val {
			if e.label != c {
				continue
			}
			own := e.logits[c]
			other := float32(math.Inf(-1))
			for k, v := range e.logits {
				if k != c {
					other = max(other, v)
				}
			}
			if own > other {
				hits++
			} else {
				needs = append(needs, float64(other-own))
			}
		}
		if hits >= baseHits {
			continue
		}
		sort.Float64s(needs)
		raise := needs[baseHits-hits-1] * 1.01
		raise += float64(j.head.Logits.Scale) // margin: one output step
		// Not at any price: the raise must not cost more examples of
		// other classes than it wins back (a weak head would otherwise
		// hand them all to the protected class).
		gained, lost := 0, 0
		for _, e := range val {
			before := argmax(e.logits)
			e.logits[c] += float32(raise)
			after := argmax(e.logits)
			e.logits[c] -= float32(raise)
			switch {
			case before != e.label && after == e.label:
				gained++
			case before == e.label && after != e.label:
				lost++
			}
		}
		if lost > gained {
			continue
		}
		j.headB[c] += float32(raise)
		if j.report.BaseBias == nil {
			j.report.BaseBias = map[string]float64{}
		}
		j.report.BaseBias[j.labels[c]] = raise
		for _, e := range val {
			e.logits[c] += float32(raise)
		}
	}
}
