package finetune

import (
	"fmt"

	"github.com/edged/edged/internal/runtime"
)

// AudioFrontend turns a PCM clip into a classifier's input: the feature
// frontend (int16 PCM frame in, one int8 feature frame out) run from a
// fresh state on frames at every stride while a whole frame fits, at most
// one window, the rest left 0 — the framing of KeywordSpotter.Classify and
// TensorFlow Lite Micro's micro_speech test.
type AudioFrontend struct {
	it                         *runtime.Interpreter
	frameLen, stride, features int
	frames                     int // feature frames per classifier input
}

// DefaultStride is the hop between feature frames at 16 kHz (20 ms).
const DefaultStride = 320

// NewAudioFrontend prepares frontend for a classifier whose input holds
// inputValues int8 values.
func NewAudioFrontend(frontend *runtime.Model, inputValues, stride int) (*AudioFrontend, error) {
	it, err := runtime.NewInterpreter(frontend, nil)
	if err != nil {
		return nil, fmt.Errorf("frontend: %w", err)
	}
	in, out := it.Inputs(), it.Outputs()
	if len(in) != 1 || in[0].Type != runtime.Int16 || len(out) != 1 || out[0].Type != runtime.Int8 {
		return nil, fmt.Errorf("frontend must take one int16 PCM frame and give one int8 feature frame")
	}
	a := &AudioFrontend{it: it, frameLen: in[0].NumElements(), stride: stride, features: out[0].NumElements()}
	if a.stride <= 0 || a.stride > a.frameLen {
		return nil, fmt.Errorf("stride %d must be in 1..%d (the frame length)", stride, a.frameLen)
	}
	if inputValues%a.features != 0 {
		return nil, fmt.Errorf("the classifier's input (%d values) is not a whole number of %d-value feature frames", inputValues, a.features)
	}
	a.frames = inputValues / a.features
	return a, nil
}

// WindowSamples is the span of PCM one classifier input covers.
func (a *AudioFrontend) WindowSamples() int { return (a.frames-1)*a.stride + a.frameLen }

// Features computes the classifier input of pcm into dst (frames ×
// features int8 values).
func (a *AudioFrontend) Features(pcm []int16, dst []int8) error {
	if len(dst) != a.frames*a.features {
		return fmt.Errorf("feature buffer of %d values, want %d", len(dst), a.frames*a.features)
	}
	a.it.Reset()
	clear(dst)
	in, out := a.it.Inputs()[0].Int16s(), a.it.Outputs()[0]
	for f := 0; f < a.frames && f*a.stride+a.frameLen <= len(pcm); f++ {
		copy(in, pcm[f*a.stride:f*a.stride+a.frameLen])
		if err := a.it.Invoke(); err != nil {
			return fmt.Errorf("frontend: %w", err)
		}
		copy(dst[f*a.features:], out.Int8s())
	}
	return nil
}

// Backbone runs a model and reads its embedding (the head's input) and,
// for deep fine-tuning, the input of the layer before the head.
type Backbone struct {
	it         *runtime.Interpreter
	head       *Head
	in         *runtime.Tensor
	embed      *runtime.Tensor
	layerInput *runtime.Tensor
	out        *runtime.Tensor
}

// NewBackbone prepares m (whose head is h) to produce embeddings.
func NewBackbone(m *runtime.Model, h *Head) (*Backbone, error) {
	it, err := runtime.NewInterpreter(m, &runtime.Options{PreserveAllTensors: true})
	if err != nil {
		return nil, err
	}
	if len(it.Inputs()) != 1 || it.Inputs()[0].Type != runtime.Int8 {
		return nil, fmt.Errorf("fine-tuning needs a model with one int8 input")
	}
	b := &Backbone{it: it, head: h, in: it.Inputs()[0], embed: it.Tensor(h.Input), out: it.Tensor(h.Output)}
	if h.Layer >= 0 {
		op := m.Subgraphs[0].Operators[h.Layer]
		b.layerInput = it.Tensor(op.Inputs[0])
	}
	return b, nil
}

// InputSize is the number of int8 values of the model's input.
func (b *Backbone) InputSize() int { return b.in.NumElements() }

// Run invokes the model on input and returns its embedding, the input of
// the layer before the head (nil when there is none) and the int8 logits.
// The slices are the interpreter's and valid until the next Run.
func (b *Backbone) Run(input []int8) (embed, layerInput, logits []int8, err error) {
	dst := b.in.Int8s()
	if len(input) != len(dst) {
		return nil, nil, nil, fmt.Errorf("input of %d values, the model takes %d", len(input), len(dst))
	}
	copy(dst, input)
	b.it.Reset()
	if err := b.it.Invoke(); err != nil {
		return nil, nil, nil, err
	}
	if b.layerInput != nil {
		layerInput = b.layerInput.Int8s()
	}
	return b.embed.Int8s(), layerInput, b.out.Int8s(), nil
}
