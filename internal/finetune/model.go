package finetune

import (
	"errors"
	"fmt"
	"slices"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/tflite"
)

// Head is the classification head of a model: its last FULLY_CONNECTED
// operator and the operators after it that only pass the class scores on
// (SOFTMAX, RESHAPE, DEQUANTIZE). Everything before the head is the frozen
// backbone; the head's input tensor is the embedding.
type Head struct {
	Op      int // the FULLY_CONNECTED operator
	Input   int // embedding tensor (int8)
	Weights int // int8 [classes, dim]
	Bias    int // int32 [classes], or -1
	Output  int // int8 logits
	// Tail are the operators after the head, in order; TailTensors their
	// outputs (the last one is a subgraph output).
	Tail        []int
	TailTensors []int
	Classes     int
	Dim         int
	EmbedShape  []int
	Embed       Quant // the embedding's quantization
	Logits      Quant // the logits' quantization
	// SoftmaxBeta is the beta of a SOFTMAX in the tail (0 when there is
	// none): the scores are softmax(beta × logits).
	SoftmaxBeta float32
	// Layer is the operator producing the embedding when it is a
	// convolution deep fine-tuning can train (CONV_2D or DEPTHWISE_CONV_2D
	// with int8 per-channel weights), else -1.
	Layer int
}

// Quant is a per-tensor affine quantization.
type Quant struct {
	Scale     float32
	ZeroPoint int32
}

// Dequantize returns the real value of q.
func (q Quant) Dequantize(v int8) float32 { return q.Scale * float32(int32(v)-q.ZeroPoint) }

// ErrNoHead is returned for a model without a classification head
// fine-tuning can replace.
var ErrNoHead = errors.New("no int8 FULLY_CONNECTED classification head")

// FindHead locates the classification head of m's first subgraph: its last
// FULLY_CONNECTED operator, which must have int8 input, weights [classes,
// dim] and output, an int32 bias (or none), no fused activation, and be
// followed only by operators that pass the class scores on to a subgraph
// output. raw is the model file (for operator options).
func FindHead(m *runtime.Model, raw []byte) (*Head, error) {
	g := m.Subgraphs[0]
	fb, err := unpack(raw)
	if err != nil {
		return nil, err
	}
	sg := fb.Subgraphs[0]
	op := -1
	for i := len(g.Operators) - 1; i >= 0; i-- {
		if g.Operators[i].Code.Builtin == tflite.BuiltinOperatorFULLY_CONNECTED {
			op = i
			break
		}
	}
	if op < 0 {
		return nil, fmt.Errorf("%w: the model has no FULLY_CONNECTED operator", ErrNoHead)
	}
	o := &g.Operators[op]
	where := fmt.Sprintf("operator %d (FULLY_CONNECTED)", op)
	if len(o.Inputs) < 2 || len(o.Outputs) != 1 {
		return nil, fmt.Errorf("%w: %s has %d inputs and %d outputs", ErrNoHead, where, len(o.Inputs), len(o.Outputs))
	}
	h := &Head{Op: op, Input: o.Inputs[0], Weights: o.Inputs[1], Bias: -1, Output: o.Outputs[0], Layer: -1}
	if len(o.Inputs) > 2 {
		h.Bias = o.Inputs[2]
	}
	in, w, out := &g.Tensors[h.Input], &g.Tensors[h.Weights], &g.Tensors[h.Output]
	if in.Type != runtime.Int8 || w.Type != runtime.Int8 || out.Type != runtime.Int8 {
		return nil, fmt.Errorf("%w: %s has types %s, %s -> %s; fine-tuning writes int8 heads", ErrNoHead, where, in.Type, w.Type, out.Type)
	}
	if w.Data == nil || len(w.Shape) != 2 {
		return nil, fmt.Errorf("%w: %s weights %q must be a constant [classes, dim] tensor (shape %s)", ErrNoHead, where, w.Name, runtime.FormatShape(w.Shape))
	}
	if in.Quant.PerChannel() || out.Quant.PerChannel() || !in.Quant.Quantized() || !out.Quant.Quantized() {
		return nil, fmt.Errorf("%w: %s input and output must be quantized per tensor", ErrNoHead, where)
	}
	h.Classes, h.Dim = w.Shape[0], w.Shape[1]
	if runtime.NumElements(in.Shape) != h.Dim {
		return nil, fmt.Errorf("%w: %s input %s has %d values, the weights expect %d (batches are not supported)", ErrNoHead, where, runtime.FormatShape(in.Shape), runtime.NumElements(in.Shape), h.Dim)
	}
	if h.Bias >= 0 {
		b := &g.Tensors[h.Bias]
		if b.Type != runtime.Int32 || b.Data == nil || runtime.NumElements(b.Shape) != h.Classes {
			return nil, fmt.Errorf("%w: %s bias %q must be a constant int32 vector of %d", ErrNoHead, where, b.Name, h.Classes)
		}
	}
	if runtime.NumElements(out.Shape) != h.Classes {
		return nil, fmt.Errorf("%w: %s output %s has %d values for %d classes", ErrNoHead, where, runtime.FormatShape(out.Shape), runtime.NumElements(out.Shape), h.Classes)
	}
	if opts, ok := options(sg.Operators[op]).(*tflite.FullyConnectedOptionsT); ok {
		if opts.FusedActivationFunction != tflite.ActivationFunctionTypeNONE {
			return nil, fmt.Errorf("%w: %s has fused activation %s; a classification head has none", ErrNoHead, where, tflite.EnumNamesActivationFunctionType[opts.FusedActivationFunction])
		}
	}
	h.EmbedShape = slices.Clone(in.Shape)
	h.Embed = Quant{in.Quant.Scale[0], int32(in.Quant.ZeroPoint[0])}
	h.Logits = Quant{out.Quant.Scale[0], int32(out.Quant.ZeroPoint[0])}

	// Follow the scores to a subgraph output.
	t := h.Output
	for {
		users := consumers(g, t)
		if len(users) == 0 {
			if !slices.Contains(g.Outputs, t) {
				return nil, fmt.Errorf("%w: tensor %d %q after the head is neither used nor a subgraph output", ErrNoHead, t, g.Tensors[t].Name)
			}
			break
		}
		if len(users) > 1 {
			return nil, fmt.Errorf("%w: the scores (tensor %d %q) feed %d operators; the head must end the graph", ErrNoHead, t, g.Tensors[t].Name, len(users))
		}
		u := &g.Operators[users[0]]
		switch u.Code.Builtin {
		case tflite.BuiltinOperatorSOFTMAX:
			beta := float32(1)
			if opts, ok := options(sg.Operators[u.Index]).(*tflite.SoftmaxOptionsT); ok {
				beta = opts.Beta
			}
			if !(beta > 0) {
				return nil, fmt.Errorf("%w: SOFTMAX operator %d has beta %g", ErrNoHead, u.Index, beta)
			}
			h.SoftmaxBeta = beta
		case tflite.BuiltinOperatorRESHAPE, tflite.BuiltinOperatorDEQUANTIZE:
		default:
			return nil, fmt.Errorf("%w: the head is followed by %s (operator %d); only SOFTMAX, RESHAPE and DEQUANTIZE may follow it", ErrNoHead, u.Code.Name(), u.Index)
		}
		if len(u.Outputs) != 1 || u.Inputs[0] != t {
			return nil, fmt.Errorf("%w: operator %d (%s) after the head must take the scores as its first input and have one output", ErrNoHead, u.Index, u.Code.Name())
		}
		next := u.Outputs[0]
		if runtime.NumElements(g.Tensors[next].Shape) != h.Classes || g.Tensors[next].ShapeDynamic {
			return nil, fmt.Errorf("%w: operator %d (%s) output %s does not hold one value per class", ErrNoHead, u.Index, u.Code.Name(), runtime.FormatShape(g.Tensors[next].Shape))
		}
		h.Tail = append(h.Tail, u.Index)
		h.TailTensors = append(h.TailTensors, next)
		t = next
	}
	if p := producer(g, h.Input); p >= 0 {
		if layerTrainable(g, sg, p) == nil {
			h.Layer = p
		}
	}
	return h, nil
}

// consumers lists the operators reading tensor t.
func consumers(g *runtime.Subgraph, t int) []int {
	var out []int
	for i := range g.Operators {
		if slices.Contains(g.Operators[i].Inputs, t) {
			out = append(out, i)
		}
	}
	return out
}

// producer is the operator writing tensor t, or -1.
func producer(g *runtime.Subgraph, t int) int {
	for i := range g.Operators {
		if slices.Contains(g.Operators[i].Outputs, t) {
			return i
		}
	}
	return -1
}

// unpack reads a model file into the flatbuffers object API, with vectors
// the file does not hold left nil (the generated code makes them empty,
// which would write empty vectors where there were none).
func unpack(raw []byte) (*tflite.ModelT, error) {
	if err := tflite.VerifyModelBuffer(raw); err != nil {
		return nil, err
	}
	m := tflite.GetRootAsModel(raw, 0).UnPack()
	for _, b := range m.Buffers {
		if b.Offset > 1 {
			return nil, errors.New("models with buffers stored after the flatbuffer (over 2 GiB) are not supported for fine-tuning")
		}
		if len(b.Data) == 0 {
			b.Data = nil
		}
	}
	if len(m.Subgraphs) == 0 {
		return nil, errors.New("model has no subgraphs")
	}
	nilIfEmpty(&m.MetadataBuffer)
	nilIfEmpty(&m.Metadata)
	nilIfEmpty(&m.SignatureDefs)
	nilIfEmpty(&m.ExternalBufferGroups)
	nilIfEmpty(&m.ExternalBuffers)
	for _, sg := range m.Subgraphs {
		for _, t := range sg.Tensors {
			nilIfEmpty(&t.ShapeSignature)
			nilIfEmpty(&t.VariantTensors)
			if q := t.Quantization; q != nil {
				nilIfEmpty(&q.Min)
				nilIfEmpty(&q.Max)
				nilIfEmpty(&q.Scale)
				nilIfEmpty(&q.ZeroPoint)
			}
		}
		for _, op := range sg.Operators {
			nilIfEmpty(&op.MutatingVariableInputs)
			nilIfEmpty(&op.Intermediates)
			nilIfEmpty(&op.CustomOptions)
		}
	}
	for _, sd := range m.SignatureDefs {
		nilIfEmpty(&sd.Inputs)
		nilIfEmpty(&sd.Outputs)
	}
	return m, nil
}

func nilIfEmpty[T any](s *[]T) {
	if len(*s) == 0 {
		*s = nil
	}
}

// options returns an operator's builtin options (nil when it has none).
func options(op *tflite.OperatorT) any {
	if op.BuiltinOptions == nil {
		return nil
	}
	return op.BuiltinOptions.Value
}
