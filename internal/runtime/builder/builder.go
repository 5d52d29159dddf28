// Package builder writes TensorFlow Lite model files from a description in
// Go: tensors with shapes, types, constant contents and quantization, and
// operators with their options. Tests everywhere in edged use it to make
// real .tflite models of any op and size without a Python toolchain, and the
// fuzz tests seed the model reader with its output.
package builder

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/edged/edged/internal/runtime/tflite"
)

// Tensor describes one tensor.
type Tensor struct {
	Name  string
	Type  tflite.TensorType
	Shape []int
	// Data holds constant contents, little-endian; nil for activations.
	Data []byte
	// Scale and ZeroPoint give affine quantization (per channel along
	// QuantizedDimension when there is more than one scale).
	Scale              []float32
	ZeroPoint          []int64
	QuantizedDimension int
	Variable           bool
	// ShapeSignature, when set, is written as shape_signature (-1 for a
	// dynamic dimension).
	ShapeSignature []int
}

// Op describes one operator.
type Op struct {
	Builtin tflite.BuiltinOperator
	Custom  string // custom code when Builtin is CUSTOM
	Version int    // 1 when 0
	Inputs  []int  // tensor indices; -1 for an omitted optional input
	Outputs []int
	// Options are the builtin options, e.g.
	// &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsConv2DOptions, Value: &tflite.Conv2DOptionsT{...}}.
	Options       *tflite.BuiltinOptionsT
	CustomOptions []byte
	Intermediates []int
}

// Model is a single-subgraph model under construction.
type Model struct {
	Description string
	Tensors     []Tensor
	Ops         []Op
	Inputs      []int
	Outputs     []int
	// ExternalBuffers stores constant data after the flatbuffer and
	// points at it with Buffer.offset/size, as converters do for models
	// over 2 GiB.
	ExternalBuffers bool
	// Metadata entries are written as named buffers.
	Metadata map[string][]byte
	// SkipChecks writes the model even where constant data does not fit
	// its shape, for tests of the reader's own checks.
	SkipChecks bool
}

// AddTensor appends a tensor and returns its index.
func (m *Model) AddTensor(t Tensor) int {
	m.Tensors = append(m.Tensors, t)
	return len(m.Tensors) - 1
}

// AddOp appends an operator.
func (m *Model) AddOp(op Op) { m.Ops = append(m.Ops, op) }

// Bytes serializes the model.
func (m *Model) Bytes() ([]byte, error) {
	if !m.ExternalBuffers {
		return m.build(nil)
	}
	// Offsets depend on the flatbuffer's size, which does not depend on the
	// offsets' values: build once with placeholders to learn it.
	n := 0
	for _, t := range m.Tensors {
		if t.Data != nil {
			n++
		}
	}
	placeholder := make([]uint64, n)
	for i := range placeholder {
		placeholder[i] = 2 // any non-default value: the field must be present
	}
	fb, err := m.build(placeholder)
	if err != nil {
		return nil, err
	}
	base := align16(len(fb))
	offsets := make([]uint64, 0, n)
	pos := base
	for _, t := range m.Tensors {
		if t.Data != nil {
			offsets = append(offsets, uint64(pos))
			pos = align16(pos + len(t.Data))
		}
	}
	fb, err = m.build(offsets)
	if err != nil {
		return nil, err
	}
	if align16(len(fb)) != base {
		return nil, fmt.Errorf("builder: flatbuffer size changed between passes (%d, %d)", base, len(fb))
	}
	out := make([]byte, pos)
	copy(out, fb)
	i := 0
	for _, t := range m.Tensors {
		if t.Data != nil {
			copy(out[offsets[i]:], t.Data)
			i++
		}
	}
	return out, nil
}

func align16(n int) int { return (n + 15) &^ 15 }

// build writes the flatbuffer. With external offsets, constant data is
// referenced at those offsets instead of stored inline.
func (m *Model) build(external []uint64) ([]byte, error) {
	b := flatbuffers.NewBuilder(1024)

	// Buffer 0 is the empty sentinel; then one buffer per constant tensor
	// and one per metadata entry.
	var buffers []flatbuffers.UOffsetT
	emptyBuffer := func() flatbuffers.UOffsetT {
		tflite.BufferStart(b)
		return tflite.BufferEnd(b)
	}
	dataBuffer := func(data []byte, ext int) flatbuffers.UOffsetT {
		if external != nil && ext >= 0 {
			tflite.BufferStart(b)
			tflite.BufferAddOffset(b, external[ext])
			tflite.BufferAddSize(b, uint64(len(data)))
			return tflite.BufferEnd(b)
		}
		b.StartVector(1, len(data), 16)
		for i := len(data) - 1; i >= 0; i-- {
			b.PrependByte(data[i])
		}
		vec := b.EndVector(len(data))
		tflite.BufferStart(b)
		tflite.BufferAddData(b, vec)
		return tflite.BufferEnd(b)
	}
	buffers = append(buffers, emptyBuffer())
	tensorBuffer := make([]uint32, len(m.Tensors))
	ext := 0
	for i, t := range m.Tensors {
		if t.Data == nil {
			continue
		}
		tensorBuffer[i] = uint32(len(buffers))
		buffers = append(buffers, dataBuffer(t.Data, ext))
		ext++
	}
	type metaEntry struct {
		name   string
		buffer uint32
	}
	var metas []metaEntry
	for _, name := range slices.Sorted(maps.Keys(m.Metadata)) {
		metas = append(metas, metaEntry{name, uint32(len(buffers))})
		buffers = append(buffers, dataBuffer(m.Metadata[name], -1))
	}

	// Operator codes, deduplicated by (builtin, custom, version).
	type codeKey struct {
		builtin tflite.BuiltinOperator
		custom  string
		version int32
	}
	codeIndex := map[codeKey]uint32{}
	var codes []*tflite.OperatorCodeT
	var ops []*tflite.OperatorT
	for i, op := range m.Ops {
		v := int32(op.Version)
		if v == 0 {
			v = 1
		}
		k := codeKey{op.Builtin, op.Custom, v}
		ci, ok := codeIndex[k]
		if !ok {
			ci = uint32(len(codes))
			codeIndex[k] = ci
			dep := int8(127) // TensorFlow Lite's placeholder for codes past 127
			if op.Builtin < 127 {
				dep = int8(op.Builtin)
			}
			codes = append(codes, &tflite.OperatorCodeT{DeprecatedBuiltinCode: dep, BuiltinCode: op.Builtin, CustomCode: op.Custom, Version: v})
		}
		if op.Builtin == tflite.BuiltinOperatorCUSTOM && op.Custom == "" {
			return nil, fmt.Errorf("builder: op %d is CUSTOM without a custom code", i)
		}
		ops = append(ops, &tflite.OperatorT{
			OpcodeIndex:    ci,
			Inputs:         toInt32(op.Inputs),
			Outputs:        toInt32(op.Outputs),
			BuiltinOptions: op.Options,
			CustomOptions:  op.CustomOptions,
			Intermediates:  toInt32(op.Intermediates),
		})
	}
	var tensors []*tflite.TensorT
	for i, t := range m.Tensors {
		if t.Data != nil {
			want := numElements(t.Shape) * typeSize(t.Type)
			if !m.SkipChecks && typeSize(t.Type) > 0 && len(t.Data) != want {
				return nil, fmt.Errorf("builder: tensor %d %q: %d bytes of data for shape %v (%d bytes)", i, t.Name, len(t.Data), t.Shape, want)
			}
		}
		tt := &tflite.TensorT{
			Shape:          toInt32(t.Shape),
			Type:           t.Type,
			Buffer:         tensorBuffer[i],
			Name:           t.Name,
			IsVariable:     t.Variable,
			ShapeSignature: toInt32(t.ShapeSignature),
		}
		if len(t.Scale) > 0 || len(t.ZeroPoint) > 0 {
			tt.Quantization = &tflite.QuantizationParametersT{
				Scale:              t.Scale,
				ZeroPoint:          t.ZeroPoint,
				QuantizedDimension: int32(t.QuantizedDimension),
			}
		}
		tensors = append(tensors, tt)
	}
	sg := &tflite.SubGraphT{
		Tensors:   tensors,
		Inputs:    toInt32(m.Inputs),
		Outputs:   toInt32(m.Outputs),
		Operators: ops,
		Name:      "main",
	}
	sgOff := sg.Pack(b)
	codeOffs := make([]flatbuffers.UOffsetT, len(codes))
	for i, c := range codes {
		codeOffs[i] = c.Pack(b)
	}
	metaOffs := make([]flatbuffers.UOffsetT, len(metas))
	for i, me := range metas {
		name := b.CreateString(me.name)
		tflite.MetadataStart(b)
		tflite.MetadataAddName(b, name)
		tflite.MetadataAddBuffer(b, me.buffer)
		metaOffs[i] = tflite.MetadataEnd(b)
	}
	desc := b.CreateString(m.Description)
	codesVec := offsetVector(b, codeOffs)
	sgVec := offsetVector(b, []flatbuffers.UOffsetT{sgOff})
	bufVec := offsetVector(b, buffers)
	var metaVec flatbuffers.UOffsetT
	if len(metaOffs) > 0 {
		metaVec = offsetVector(b, metaOffs)
	}
	tflite.ModelStart(b)
	tflite.ModelAddVersion(b, 3)
	tflite.ModelAddOperatorCodes(b, codesVec)
	tflite.ModelAddSubgraphs(b, sgVec)
	tflite.ModelAddDescription(b, desc)
	tflite.ModelAddBuffers(b, bufVec)
	if len(metaOffs) > 0 {
		tflite.ModelAddMetadata(b, metaVec)
	}
	root := tflite.ModelEnd(b)
	b.FinishWithFileIdentifier(root, []byte("TFL3"))
	return b.FinishedBytes(), nil
}

func offsetVector(b *flatbuffers.Builder, offs []flatbuffers.UOffsetT) flatbuffers.UOffsetT {
	b.StartVector(4, len(offs), 4)
	for i := len(offs) - 1; i >= 0; i-- {
		b.PrependUOffsetT(offs[i])
	}
	return b.EndVector(len(offs))
}

func toInt32(v []int) []int32 {
	if v == nil {
		return nil
	}
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

func numElements(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func typeSize(t tflite.TensorType) int {
	switch t {
	case tflite.TensorTypeINT8, tflite.TensorTypeUINT8, tflite.TensorTypeBOOL:
		return 1
	case tflite.TensorTypeINT16, tflite.TensorTypeFLOAT16, tflite.TensorTypeUINT16:
		return 2
	case tflite.TensorTypeINT32, tflite.TensorTypeFLOAT32, tflite.TensorTypeUINT32:
		return 4
	case tflite.TensorTypeINT64, tflite.TensorTypeFLOAT64, tflite.TensorTypeUINT64:
		return 8
	}
	return 0
}

// Int8Data encodes int8 values as tensor bytes.
func Int8Data(v []int8) []byte {
	out := make([]byte, len(v))
	for i, x := range v {
		out[i] = byte(x)
	}
	return out
}

// Int16Data encodes int16 values as little-endian tensor bytes.
func Int16Data(v []int16) []byte {
	out := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(out[2*i:], uint16(x))
	}
	return out
}

// Int32Data encodes int32 values as little-endian tensor bytes.
func Int32Data(v []int32) []byte {
	out := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(out[4*i:], uint32(x))
	}
	return out
}

// Int64Data encodes int64 values as little-endian tensor bytes.
func Int64Data(v []int64) []byte {
	out := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(out[8*i:], uint64(x))
	}
	return out
}

// Float32Data encodes float32 values as little-endian tensor bytes.
func Float32Data(v []float32) []byte {
	out := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
	}
	return out
}
