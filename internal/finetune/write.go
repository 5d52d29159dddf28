package finetune

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

// QuantHead is an int8 head ready to be written: per-class symmetric int8
// weights, int32 bias at input_scale × weight_scale, and the logits'
// quantization.
type QuantHead struct {
	Classes, Dim int
	Weights      []int8    // Classes × Dim, row-major
	WeightScales []float32 // one per class
	Bias         []int32
	BiasScales   []float32
	Logits       Quant
}

// QuantLayer replaces the constants of the convolution before the head
// (deep fine-tuning) and the quantization of its output, the embedding.
type QuantLayer struct {
	Op           int
	Weights      []int8 // the layer's weight shape
	WeightScales []float32
	Bias         []int32
	BiasScales   []float32
	Output       Quant
}

// WriteModel returns raw with the head replaced by q (and, when layer is
// not nil, the layer before it retrained): new weight and bias buffers,
// shapes, quantization and class count, and the class count carried
// through the operators after the head (RESHAPE shapes, SOFTMAX). Every
// other operator, tensor, buffer and metadata entry is written unchanged.
func WriteModel(raw []byte, h *Head, q *QuantHead, layer *QuantLayer) ([]byte, error) {
	if q.Dim != h.Dim || len(q.Weights) != q.Classes*q.Dim || len(q.WeightScales) != q.Classes ||
		len(q.Bias) != q.Classes || len(q.BiasScales) != q.Classes || q.Classes < 1 {
		return nil, fmt.Errorf("head of %d classes × %d inputs is inconsistent (weights %d, scales %d, bias %d, bias scales %d; the model's embedding has %d values)",
			q.Classes, q.Dim, len(q.Weights), len(q.WeightScales), len(q.Bias), len(q.BiasScales), h.Dim)
	}
	m, err := unpack(raw)
	if err != nil {
		return nil, err
	}
	sg := m.Subgraphs[0]
	refs := make([]int, len(m.Buffers))
	for _, s := range m.Subgraphs {
		for _, t := range s.Tensors {
			if int(t.Buffer) < len(refs) {
				refs[t.Buffer]++
			}
		}
	}
	for _, md := range m.Metadata {
		if int(md.Buffer) < len(refs) {
			refs[md.Buffer]++
		}
	}
	// setConst gives tensor ti new contents, in its own buffer unless the
	// buffer is shared (then a new one is added).
	setConst := func(ti int, data []byte) {
		t := sg.Tensors[ti]
		if t.Buffer == 0 || int(t.Buffer) >= len(refs) || refs[t.Buffer] > 1 {
			m.Buffers = append(m.Buffers, &tflite.BufferT{Data: data})
			t.Buffer = uint32(len(m.Buffers) - 1)
			return
		}
		m.Buffers[t.Buffer].Data = data
	}
	perChannel := func(scales []float32, dim int32) *tflite.QuantizationParametersT {
		return &tflite.QuantizationParametersT{Scale: slices.Clone(scales), ZeroPoint: make([]int64, len(scales)), QuantizedDimension: dim}
	}
	perTensor := func(p Quant) *tflite.QuantizationParametersT {
		return &tflite.QuantizationParametersT{Scale: []float32{p.Scale}, ZeroPoint: []int64{int64(p.ZeroPoint)}}
	}
	if err := checkQuant(q.WeightScales, q.BiasScales, q.Logits); err != nil {
		return nil, fmt.Errorf("head: %w", err)
	}

	w := sg.Tensors[h.Weights]
	w.Shape = []int32{int32(q.Classes), int32(q.Dim)}
	if w.ShapeSignature != nil {
		w.ShapeSignature = slices.Clone(w.Shape)
	}
	w.Quantization = perChannel(q.WeightScales, 0)
	setConst(h.Weights, builder.Int8Data(q.Weights))

	fc := sg.Operators[h.Op]
	bias := h.Bias
	if bias < 0 {
		sg.Tensors = append(sg.Tensors, &tflite.TensorT{Name: w.Name + "/finetune_bias", Type: tflite.TensorTypeINT32})
		bias = len(sg.Tensors) - 1
		if len(fc.Inputs) < 3 {
			fc.Inputs = append(fc.Inputs, int32(bias))
		} else {
			fc.Inputs[2] = int32(bias)
		}
	}
	b := sg.Tensors[bias]
	b.Shape = []int32{int32(q.Classes)}
	if b.ShapeSignature != nil {
		b.ShapeSignature = slices.Clone(b.Shape)
	}
	b.Quantization = perChannel(q.BiasScales, 0)
	setConst(bias, builder.Int32Data(q.Bias))

	resize := func(t *tflite.TensorT) error {
		if len(t.Shape) == 0 {
			return fmt.Errorf("tensor %q has no dimensions", t.Name)
		}
		t.Shape[len(t.Shape)-1] = int32(q.Classes)
		if n := len(t.ShapeSignature); n > 0 && t.ShapeSignature[n-1] != -1 {
			t.ShapeSignature[n-1] = int32(q.Classes)
		}
		return nil
	}
	out := sg.Tensors[h.Output]
	if err := resize(out); err != nil {
		return nil, err
	}
	out.Quantization = perTensor(q.Logits)
	for i, opIndex := range h.Tail {
		t := sg.Tensors[h.TailTensors[i]]
		if err := resize(t); err != nil {
			return nil, err
		}
		op := sg.Operators[opIndex]
		if opts, ok := options(op).(*tflite.ReshapeOptionsT); ok && len(opts.NewShape) > 0 {
			if last := len(opts.NewShape) - 1; opts.NewShape[last] != -1 {
				opts.NewShape[last] = int32(q.Classes)
			}
		}
		if len(op.Inputs) > 1 && op.Inputs[1] >= 0 && m.OperatorCodes[op.OpcodeIndex].BuiltinCode == tflite.BuiltinOperatorRESHAPE {
			st := sg.Tensors[op.Inputs[1]]
			data := m.Buffers[st.Buffer].Data
			if st.Type != tflite.TensorTypeINT32 || len(data) < 4 || len(data)%4 != 0 {
				return nil, fmt.Errorf("RESHAPE operator %d: shape tensor %q is not a constant int32 vector", opIndex, st.Name)
			}
			vals := slices.Clone(data)
			last := vals[len(vals)-4:]
			if int32(leUint32(last)) != -1 {
				putLeUint32(last, uint32(q.Classes))
			}
			setConst(int(op.Inputs[1]), vals)
		}
	}

	if layer != nil {
		if layer.Op != h.Layer || h.Layer < 0 {
			return nil, fmt.Errorf("layer %d is not the trainable layer before the head (%d)", layer.Op, h.Layer)
		}
		if err := checkQuant(layer.WeightScales, layer.BiasScales, layer.Output); err != nil {
			return nil, fmt.Errorf("layer %d: %w", layer.Op, err)
		}
		lop := sg.Operators[layer.Op]
		lw, lb := sg.Tensors[lop.Inputs[1]], sg.Tensors[lop.Inputs[2]]
		if len(layer.Weights) != numElements32(lw.Shape) || len(layer.Bias) != numElements32(lb.Shape) || len(layer.WeightScales) != len(layer.Bias) {
			return nil, fmt.Errorf("layer %d: %d weights, %d scales and %d biases do not fit weights %v and bias %v", layer.Op, len(layer.Weights), len(layer.WeightScales), len(layer.Bias), lw.Shape, lb.Shape)
		}
		lw.Quantization = perChannel(layer.WeightScales, lw.Quantization.QuantizedDimension)
		setConst(int(lop.Inputs[1]), builder.Int8Data(layer.Weights))
		lb.Quantization = perChannel(layer.BiasScales, 0)
		setConst(int(lop.Inputs[2]), builder.Int32Data(layer.Bias))
		sg.Tensors[h.Input].Quantization = perTensor(layer.Output)
	}
	return packModel(m), nil
}

func checkQuant(weightScales, biasScales []float32, out Quant) error {
	for _, s := range slices.Concat(weightScales, biasScales, []float32{out.Scale}) {
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return fmt.Errorf("scale %g is not a positive finite number", s)
		}
	}
	if out.ZeroPoint < -128 || out.ZeroPoint > 127 {
		return fmt.Errorf("zero point %d is outside int8", out.ZeroPoint)
	}
	return nil
}

func numElements32(shape []int32) int {
	n := 1
	for _, d := range shape {
		n *= int(d)
	}
	return n
}

func leUint32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func putLeUint32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// packModel serializes m as ModelT.Pack does, except that buffer contents
// are aligned to 16 bytes as TensorFlow Lite's converter aligns them (the
// generated Pack aligns them to 4), and the file identifier is written.
func packModel(t *tflite.ModelT) []byte {
	size := 1024
	for _, b := range t.Buffers {
		size += len(b.Data) + 32
	}
	bld := flatbuffers.NewBuilder(size)
	offsets := func(n int, pack func(int) flatbuffers.UOffsetT, start func(*flatbuffers.Builder, int) flatbuffers.UOffsetT) flatbuffers.UOffsetT {
		offs := make([]flatbuffers.UOffsetT, n)
		for j := range offs {
			offs[j] = pack(j)
		}
		start(bld, n)
		for j := n - 1; j >= 0; j-- {
			bld.PrependUOffsetT(offs[j])
		}
		return bld.EndVector(n)
	}
	var codes, subgraphs, buffers, metadataBuffer, metadata, signatures, extGroups, extBuffers flatbuffers.UOffsetT
	if t.OperatorCodes != nil {
		codes = offsets(len(t.OperatorCodes), func(j int) flatbuffers.UOffsetT { return t.OperatorCodes[j].Pack(bld) }, tflite.ModelStartOperatorCodesVector)
	}
	if t.Subgraphs != nil {
		subgraphs = offsets(len(t.Subgraphs), func(j int) flatbuffers.UOffsetT { return t.Subgraphs[j].Pack(bld) }, tflite.ModelStartSubgraphsVector)
	}
	description := bld.CreateString(t.Description)
	if t.Buffers != nil {
		buffers = offsets(len(t.Buffers), func(j int) flatbuffers.UOffsetT {
			b := t.Buffers[j]
			var data flatbuffers.UOffsetT
			if b.Data != nil {
				bld.StartVector(1, len(b.Data), 16)
				for i := len(b.Data) - 1; i >= 0; i-- {
					bld.PrependByte(b.Data[i])
				}
				data = bld.EndVector(len(b.Data))
			}
			tflite.BufferStart(bld)
			if b.Data != nil {
				tflite.BufferAddData(bld, data)
			}
			tflite.BufferAddOffset(bld, b.Offset)
			tflite.BufferAddSize(bld, b.Size)
			return tflite.BufferEnd(bld)
		}, tflite.ModelStartBuffersVector)
	}
	if t.MetadataBuffer != nil {
		tflite.ModelStartMetadataBufferVector(bld, len(t.MetadataBuffer))
		for j := len(t.MetadataBuffer) - 1; j >= 0; j-- {
			bld.PrependInt32(t.MetadataBuffer[j])
		}
		metadataBuffer = bld.EndVector(len(t.MetadataBuffer))
	}
	if t.Metadata != nil {
		metadata = offsets(len(t.Metadata), func(j int) flatbuffers.UOffsetT { return t.Metadata[j].Pack(bld) }, tflite.ModelStartMetadataVector)
	}
	if t.SignatureDefs != nil {
		signatures = offsets(len(t.SignatureDefs), func(j int) flatbuffers.UOffsetT { return t.SignatureDefs[j].Pack(bld) }, tflite.ModelStartSignatureDefsVector)
	}
	if t.ExternalBufferGroups != nil {
		extGroups = offsets(len(t.ExternalBufferGroups), func(j int) flatbuffers.UOffsetT { return t.ExternalBufferGroups[j].Pack(bld) }, tflite.ModelStartExternalBufferGroupsVector)
	}
	if t.ExternalBuffers != nil {
		extBuffers = offsets(len(t.ExternalBuffers), func(j int) flatbuffers.UOffsetT { return t.ExternalBuffers[j].Pack(bld) }, tflite.ModelStartExternalBuffersVector)
	}
	tflite.ModelStart(bld)
	tflite.ModelAddVersion(bld, t.Version)
	tflite.ModelAddOperatorCodes(bld, codes)
	tflite.ModelAddSubgraphs(bld, subgraphs)
	tflite.ModelAddDescription(bld, description)
	tflite.ModelAddBuffers(bld, buffers)
	if metadataBuffer != 0 {
		tflite.ModelAddMetadataBuffer(bld, metadataBuffer)
	}
	if metadata != 0 {
		tflite.ModelAddMetadata(bld, metadata)
	}
	if signatures != 0 {
		tflite.ModelAddSignatureDefs(bld, signatures)
	}
	if extGroups != 0 {
		tflite.ModelAddExternalBufferGroups(bld, extGroups)
	}
	if extBuffers != 0 {
		tflite.ModelAddExternalBuffers(bld, extBuffers)
	}
	root := tflite.ModelEnd(bld)
	bld.FinishWithFileIdentifier(root, []byte("TFL3"))
	return bld.FinishedBytes()
}

// CompareModels checks that b is a with only the head (and, when layer is
// true, the layer before it) changed: the same operator codes and
// operators, and every other tensor with the same name, type, shape,
// quantization and contents, the same inputs, outputs and metadata. It is
// how a written model is checked before use.
func CompareModels(a, b *runtime.Model, h *Head, layer bool) error {
	if len(a.Subgraphs) != len(b.Subgraphs) {
		return fmt.Errorf("%d subgraphs, the original has %d", len(b.Subgraphs), len(a.Subgraphs))
	}
	changed := map[int]bool{h.Weights: true, h.Output: true}
	if h.Bias >= 0 {
		changed[h.Bias] = true
	}
	for _, t := range h.TailTensors {
		changed[t] = true
	}
	ga, gb := a.Subgraphs[0], b.Subgraphs[0]
	for _, i := range h.Tail {
		op := &ga.Operators[i]
		if op.Code.Builtin == tflite.BuiltinOperatorRESHAPE && len(op.Inputs) > 1 && op.Inputs[1] >= 0 {
			changed[op.Inputs[1]] = true
		}
	}
	if layer && h.Layer >= 0 {
		op := &ga.Operators[h.Layer]
		changed[op.Inputs[1]], changed[op.Inputs[2]], changed[h.Input] = true, true, true
	}
	if len(gb.Operators) != len(ga.Operators) {
		return fmt.Errorf("%d operators, the original has %d", len(gb.Operators), len(ga.Operators))
	}
	for i := range ga.Operators {
		oa, ob := &ga.Operators[i], &gb.Operators[i]
		if oa.Code != ob.Code || !slices.Equal(oa.Outputs, ob.Outputs) || !bytes.Equal(oa.CustomOptions, ob.CustomOptions) {
			return fmt.Errorf("operator %d differs: %s -> %v, now %s -> %v", i, oa.Code, oa.Outputs, ob.Code, ob.Outputs)
		}
		if !slices.Equal(oa.Inputs, ob.Inputs) && !(i == h.Op && h.Bias < 0 && slices.Equal(oa.Inputs[:2], ob.Inputs[:2])) {
			return fmt.Errorf("operator %d (%s) inputs differ: %v, now %v", i, oa.Code, oa.Inputs, ob.Inputs)
		}
	}
	if !slices.Equal(ga.Inputs, gb.Inputs) || !slices.Equal(ga.Outputs, gb.Outputs) {
		return errors.New("subgraph inputs or outputs differ")
	}
	for i := range ga.Tensors {
		if changed[i] {
			continue
		}
		ta, tb := &ga.Tensors[i], &gb.Tensors[i]
		if ta.Name != tb.Name || ta.Type != tb.Type || !slices.Equal(ta.Shape, tb.Shape) || ta.IsVariable != tb.IsVariable ||
			!bytes.Equal(ta.Data, tb.Data) || !sameQuant(ta.Quant, tb.Quant) {
			return fmt.Errorf("tensor %d %q differs from the original", i, ta.Name)
		}
	}
	if len(a.Metadata) != len(b.Metadata) {
		return errors.New("metadata differs")
	}
	for i := range a.Metadata {
		if a.Metadata[i].Name != b.Metadata[i].Name || !bytes.Equal(a.Metadata[i].Data, b.Metadata[i].Data) {
			return fmt.Errorf("metadata %q differs", a.Metadata[i].Name)
		}
	}
	for s := 1; s < len(a.Subgraphs); s++ {
		sa, sb := a.Subgraphs[s], b.Subgraphs[s]
		if len(sa.Tensors) != len(sb.Tensors) || len(sa.Operators) != len(sb.Operators) {
			return fmt.Errorf("subgraph %d differs", s)
		}
		for i := range sa.Tensors {
			if !bytes.Equal(sa.Tensors[i].Data, sb.Tensors[i].Data) {
				return fmt.Errorf("subgraph %d tensor %d differs", s, i)
			}
		}
	}
	return nil
}

func sameQuant(a, b *runtime.Quantization) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.Equal(a.Scale, b.Scale) && slices.Equal(a.ZeroPoint, b.ZeroPoint) && a.QuantizedDimension == b.QuantizedDimension
}
