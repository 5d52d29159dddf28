package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"unsafe"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/edged/edged/internal/runtime/tflite"
)

// Limits on what a model may declare. They are far above anything a
// converter writes and keep a hostile file from making edged allocate without
// bound.
const (
	// MaxRank is the largest tensor rank edged accepts.
	MaxRank = 16
	// maxTensorBytes bounds one tensor; planning checks the arena as a whole.
	maxTensorBytes = 1 << 40
	// maxGraphItems bounds tensors and operators per subgraph.
	maxGraphItems = 1 << 20
)

// schemaVersion is the TensorFlow Lite schema version edged reads.
const schemaVersion = 3

// Quantization holds a tensor's affine quantization: real = Scale *
// (q - ZeroPoint), per tensor (one scale) or per channel along
// QuantizedDimension.
type Quantization struct {
	Scale              []float32
	ZeroPoint          []int64
	QuantizedDimension int
}

// Quantized reports whether any scale is present.
func (q *Quantization) Quantized() bool { return q != nil && len(q.Scale) > 0 }

// PerChannel reports whether there is more than one scale.
func (q *Quantization) PerChannel() bool { return q != nil && len(q.Scale) > 1 }

// TensorInfo is a tensor as the model declares it.
type TensorInfo struct {
	Index        int
	Name         string
	Type         DType
	Shape        []int
	Quant        *Quantization // nil when the tensor is not quantized
	Buffer       int
	Data         []byte // constant contents; nil for activations
	IsVariable   bool
	ShapeDynamic bool // shape or shape_signature has a -1
}

// Bytes is the size of the tensor's contents.
func (t *TensorInfo) Bytes() int { return NumElements(t.Shape) * t.Type.Size() }

// Operator is one node of a subgraph.
type Operator struct {
	Index         int
	Code          OpCode
	Inputs        []int // -1 marks an omitted optional input
	Outputs       []int
	Intermediates []int
	CustomOptions []byte

	optionsType  tflite.BuiltinOptions
	optionsTable flatbuffers.Table
}

// OpCode identifies an operator kind and version.
type OpCode struct {
	Builtin tflite.BuiltinOperator
	Custom  string // for CUSTOM
	Version int
}

// Name is the builtin operator name ("CONV_2D") or the custom code.
func (c OpCode) Name() string {
	if c.Builtin == tflite.BuiltinOperatorCUSTOM {
		return c.Custom
	}
	if n, ok := tflite.EnumNamesBuiltinOperator[c.Builtin]; ok {
		return n
	}
	return fmt.Sprintf("BUILTIN_%d", int32(c.Builtin))
}

func (c OpCode) String() string { return fmt.Sprintf("%s v%d", c.Name(), c.Version) }

// Subgraph is a graph of operators over tensors.
type Subgraph struct {
	Index     int
	Name      string
	Tensors   []TensorInfo
	Inputs    []int
	Outputs   []int
	Operators []Operator
}

// Metadata is a named buffer the converter attached (e.g.
// "min_runtime_version").
type Metadata struct {
	Name string
	Data []byte
}

// Model is a validated TensorFlow Lite model. It is read-only after
// LoadModel and may back any number of interpreters at once.
type Model struct {
	Description string
	Subgraphs   []*Subgraph
	Metadata    []Metadata
	// Size is the byte size of the file the model was read from.
	Size int
	raw  []byte
}

// ModelError is returned for a model that cannot be read: it names the
// file (when known) and where in the model the problem is.
type ModelError struct {
	File  string
	Where string // "subgraph 0 tensor 5 \"conv/weights\"", "flatbuffer Model.buffers[3]"
	Err   error
}

func (e *ModelError) Error() string {
	prefix := "model"
	if e.File != "" {
		prefix = e.File
	}
	if e.Where == "" {
		return fmt.Sprintf("%s: %v", prefix, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", prefix, e.Where, e.Err)
}

func (e *ModelError) Unwrap() error { return e.Err }

// LoadModelFile reads and validates a .tflite file.
func LoadModelFile(path string) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	m, err := LoadModel(b)
	if err != nil {
		var me *ModelError
		if errors.As(err, &me) {
			me.File = path
		}
		return nil, err
	}
	return m, nil
}

// LoadModel validates buf as a TensorFlow Lite model and returns its
// description. buf must not be modified afterwards: constant tensors point
// into it.
func LoadModel(buf []byte) (*Model, error) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		return nil, &ModelError{Err: errors.New("edged runs only on little-endian CPUs")}
	}
	fb := buf
	// Offsets in the flatbuffer are 32-bit; data past them is reached
	// through Buffer.offset/size. (A variable, so that 32-bit builds
	// compile.)
	limit := uint64(math.MaxUint32)
	if uint64(len(fb)) > limit {
		fb = fb[:limit]
	}
	if err := tflite.VerifyModelBuffer(fb); err != nil {
		var ve *tflite.VerifyError
		if errors.As(err, &ve) {
			return nil, &ModelError{Where: "flatbuffer " + ve.Path, Err: fmt.Errorf("%s (byte %d)", ve.Reason, ve.Offset)}
		}
		return nil, &ModelError{Err: err}
	}
	r := &modelReader{file: buf, fb: tflite.GetRootAsModel(fb, 0)}
	return r.read()
}

type modelReader struct {
	file    []byte
	fb      *tflite.Model
	buffers [][]byte
	codes   []OpCode
}

func (r *modelReader) errf(where string, format string, args ...any) error {
	return &ModelError{Where: where, Err: fmt.Errorf(format, args...)}
}

func (r *modelReader) read() (*Model, error) {
	fb := r.fb
	if v := fb.Version(); v != schemaVersion {
		return nil, r.errf("", "schema version %d, edged reads version %d", v, schemaVersion)
	}
	m := &Model{Description: string(fb.Description()), Size: len(r.file), raw: r.file}
	if err := r.readBuffers(); err != nil {
		return nil, err
	}
	if err := r.readOpCodes(); err != nil {
		return nil, err
	}
	n := fb.SubgraphsLength()
	if n == 0 {
		return nil, r.errf("", "model has no subgraphs")
	}
	var sg tflite.SubGraph
	for i := range n {
		fb.Subgraphs(&sg, i)
		s, err := r.readSubgraph(&sg, i)
		if err != nil {
			return nil, err
		}
		m.Subgraphs = append(m.Subgraphs, s)
	}
	var md tflite.Metadata
	for i := range fb.MetadataLength() {
		fb.Metadata(&md, i)
		b := int(md.Buffer())
		if b >= len(r.buffers) {
			return nil, r.errf(fmt.Sprintf("metadata %d %q", i, md.Name()), "buffer index %d out of range (model has %d buffers)", b, len(r.buffers))
		}
		m.Metadata = append(m.Metadata, Metadata{Name: string(md.Name()), Data: r.buffers[b]})
	}
	return m, nil
}

func (r *modelReader) readBuffers() error {
	var b tflite.Buffer
	n := r.fb.BuffersLength()
	r.buffers = make([][]byte, n)
	for i := range n {
		r.fb.Buffers(&b, i)
		where := fmt.Sprintf("buffer %d", i)
		data := b.DataBytes()
		off, size := b.Offset(), b.Size()
		if off > 1 {
			// Data stored after the flatbuffer (models over 2 GiB).
			if len(data) > 0 {
				return r.errf(where, "has both inline data and an offset")
			}
			if off > uint64(len(r.file)) || size > uint64(len(r.file))-off {
				return r.errf(where, "offset %d + size %d runs past the end of the file (%d bytes)", off, size, len(r.file))
			}
			data = r.file[off : off+size]
		}
		if len(data) == 0 {
			data = nil
		}
		r.buffers[i] = data
	}
	return nil
}

func (r *modelReader) readOpCodes() error {
	var oc tflite.OperatorCode
	n := r.fb.OperatorCodesLength()
	r.codes = make([]OpCode, n)
	for i := range n {
		r.fb.OperatorCodes(&oc, i)
		// Models written before the builtin_code field carry the code only
		// in deprecated_builtin_code; newer ones carry both, and the larger
		// is right (TensorFlow Lite's GetBuiltinCode).
		code := max(int32(oc.BuiltinCode()), int32(oc.DeprecatedBuiltinCode()))
		v := int(oc.Version())
		if v < 1 {
			return r.errf(fmt.Sprintf("operator code %d", i), "version %d is not valid", v)
		}
		r.codes[i] = OpCode{Builtin: tflite.BuiltinOperator(code), Custom: string(oc.CustomCode()), Version: v}
		if r.codes[i].Builtin == tflite.BuiltinOperatorCUSTOM && r.codes[i].Custom == "" {
			return r.errf(fmt.Sprintf("operator code %d", i), "CUSTOM operator without a custom_code")
		}
	}
	return nil
}

func (r *modelReader) readSubgraph(sg *tflite.SubGraph, index int) (*Subgraph, error) {
	s := &Subgraph{Index: index, Name: string(sg.Name())}
	where := func(format string, args ...any) string {
		return fmt.Sprintf("subgraph %d: ", index) + fmt.Sprintf(format, args...)
	}
	nt, no := sg.TensorsLength(), sg.OperatorsLength()
	if nt > maxGraphItems || no > maxGraphItems {
		return nil, r.errf(where("sizes"), "%d tensors and %d operators exceed edged's limit of %d", nt, no, maxGraphItems)
	}
	s.Tensors = make([]TensorInfo, nt)
	var t tflite.Tensor
	for i := range nt {
		sg.Tensors(&t, i)
		if err := r.readTensor(&t, i, &s.Tensors[i]); err != nil {
			var me *ModelError
			if errors.As(err, &me) {
				me.Where = where("%s", me.Where)
			}
			return nil, err
		}
	}
	readIndices := func(n int, get func(int) int32, what string, allowOmitted bool) ([]int, error) {
		out := make([]int, n)
		for j := range n {
			v := int(get(j))
			if v == -1 && allowOmitted {
				out[j] = -1
				continue
			}
			if v < 0 || v >= nt {
				return nil, r.errf(where("%s %d", what, j), "tensor index %d out of range (subgraph has %d tensors)", v, nt)
			}
			out[j] = v
		}
		return out, nil
	}
	var err error
	if s.Inputs, err = readIndices(sg.InputsLength(), sg.Inputs, "input", false); err != nil {
		return nil, err
	}
	if s.Outputs, err = readIndices(sg.OutputsLength(), sg.Outputs, "output", false); err != nil {
		return nil, err
	}
	s.Operators = make([]Operator, no)
	var op tflite.Operator
	for i := range no {
		sg.Operators(&op, i)
		o := &s.Operators[i]
		o.Index = i
		ci := int(op.OpcodeIndex())
		if ci >= len(r.codes) {
			return nil, r.errf(where("operator %d", i), "opcode index %d out of range (model has %d operator codes)", ci, len(r.codes))
		}
		o.Code = r.codes[ci]
		opWhere := fmt.Sprintf("operator %d (%s) ", i, o.Code.Name())
		if o.Inputs, err = readIndices(op.InputsLength(), op.Inputs, opWhere+"input", true); err != nil {
			return nil, err
		}
		if o.Outputs, err = readIndices(op.OutputsLength(), op.Outputs, opWhere+"output", false); err != nil {
			return nil, err
		}
		if o.Intermediates, err = readIndices(op.IntermediatesLength(), op.Intermediates, opWhere+"intermediate", true); err != nil {
			return nil, err
		}
		o.CustomOptions = op.CustomOptionsBytes()
		if off, size := op.LargeCustomOptionsOffset(), op.LargeCustomOptionsSize(); off > 1 {
			if off > uint64(len(r.file)) || size > uint64(len(r.file))-off {
				return nil, r.errf(where("operator %d", i), "custom options at offset %d + size %d run past the end of the file (%d bytes)", off, size, len(r.file))
			}
			o.CustomOptions = r.file[off : off+size]
		}
		o.optionsType = op.BuiltinOptionsType()
		if o.optionsType != tflite.BuiltinOptionsNONE {
			if !op.BuiltinOptions(&o.optionsTable) {
				o.optionsType = tflite.BuiltinOptionsNONE
			}
		}
	}
	if err := checkDataflow(s); err != nil {
		return nil, &ModelError{Where: fmt.Sprintf("subgraph %d", index), Err: err}
	}
	return s, nil
}

func (r *modelReader) readTensor(t *tflite.Tensor, index int, out *TensorInfo) error {
	out.Index = index
	out.Name = string(t.Name())
	where := fmt.Sprintf("tensor %d %q", index, out.Name)
	out.Type = DType(t.Type())
	out.IsVariable = t.IsVariable()
	rank := t.ShapeLength()
	if rank > MaxRank {
		return r.errf(where, "rank %d exceeds edged's limit of %d", rank, MaxRank)
	}
	out.Shape = make([]int, rank)
	elems := int64(1)
	for d := range rank {
		v := t.Shape(d)
		out.Shape[d] = int(v)
		if v == -1 {
			// Unknown until an operator's Prepare computes it.
			out.ShapeDynamic = true
			continue
		}
		if v < 0 {
			return r.errf(where, "dimension %d is %d", d, v)
		}
		if v != 0 && elems > maxTensorBytes/int64(v) {
			return r.errf(where, "shape %s is larger than %d elements", FormatShape(out.Shape), int64(maxTensorBytes))
		}
		elems *= int64(v)
	}
	for d := range t.ShapeSignatureLength() {
		if t.ShapeSignature(d) < 0 {
			out.ShapeDynamic = true
		}
	}
	if t.Sparsity(nil) != nil {
		return r.errf(where, "sparse tensors are not supported")
	}
	size := out.Type.Size()
	known := size > 0 || out.Type == String
	if !known {
		return r.errf(where, "element type %s is not supported", out.Type)
	}
	if size > 0 && elems*int64(size) > maxTensorBytes {
		return r.errf(where, "shape %s of %s is larger than %d bytes", FormatShape(out.Shape), out.Type, int64(maxTensorBytes))
	}
	b := int(t.Buffer())
	if b >= len(r.buffers) {
		return r.errf(where, "buffer index %d out of range (model has %d buffers)", b, len(r.buffers))
	}
	out.Buffer = b
	if data := r.buffers[b]; data != nil {
		if out.ShapeDynamic {
			return r.errf(where, "constant tensor with unknown dimensions %s", FormatShape(out.Shape))
		}
		if out.Type == String {
			return r.errf(where, "constant string tensors are not supported")
		}
		if want := elems * int64(size); int64(len(data)) != want {
			return r.errf(where, "buffer %d holds %d bytes, but shape %s of %s needs %d", b, len(data), FormatShape(out.Shape), out.Type, want)
		}
		out.Data = alignedData(data, size)
	}
	var q tflite.QuantizationParameters
	if t.Quantization(&q) != nil {
		if q.DetailsType() != tflite.QuantizationDetailsNONE {
			return r.errf(where, "custom quantization details (%s) are not supported", tflite.EnumNamesQuantizationDetails[q.DetailsType()])
		}
		ns, nz := q.ScaleLength(), q.ZeroPointLength()
		if ns > 0 {
			if nz != ns {
				return r.errf(where, "quantization has %d scales and %d zero points; they must match", ns, nz)
			}
			qp := &Quantization{Scale: make([]float32, ns), ZeroPoint: make([]int64, nz), QuantizedDimension: int(q.QuantizedDimension())}
			for i := range ns {
				qp.Scale[i] = q.Scale(i)
				qp.ZeroPoint[i] = q.ZeroPoint(i)
			}
			if ns > 1 {
				qd := qp.QuantizedDimension
				if rank == 1 && out.Shape[0] == ns && qd != 0 {
					// Some converters copy the filter's quantized_dimension
					// onto per-channel biases (person_detect's say 3);
					// a vector can only be quantized along its one axis,
					// which is how TFLM reads it.
					qd, qp.QuantizedDimension = 0, 0
				}
				if qd < 0 || qd >= rank {
					return r.errf(where, "quantized_dimension %d out of range for rank %d", qd, rank)
				}
				if out.Shape[qd] != ns {
					return r.errf(where, "%d per-channel scales, but dimension %d (quantized_dimension) has %d entries", ns, qd, out.Shape[qd])
				}
			}
			out.Quant = qp
		}
	}
	return nil
}

// alignedData returns data itself when its start suits elements of size
// elemSize, else an aligned copy: kernels read constants in place through
// typed views, which some ARM cores require to be aligned.
func alignedData(data []byte, elemSize int) []byte {
	if elemSize <= 1 || uintptr(unsafe.Pointer(unsafe.SliceData(data)))%uintptr(elemSize) == 0 {
		return data
	}
	words := make([]uint64, (len(data)+7)/8)
	out := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(words))), len(data))
	copy(out, data)
	return out
}

// checkDataflow checks the operators run in an order where every tensor an
// operator reads exists by then: a constant, a variable, a subgraph input
// or the output of an earlier operator, and that no tensor has two writers.
func checkDataflow(s *Subgraph) error {
	const (
		unknown = iota
		available
	)
	state := make([]uint8, len(s.Tensors))
	writer := make([]int, len(s.Tensors))
	for i := range writer {
		writer[i] = -1
	}
	for i := range s.Tensors {
		if s.Tensors[i].Data != nil || s.Tensors[i].IsVariable {
			state[i] = available
		}
	}
	for _, in := range s.Inputs {
		state[in] = available
	}
	for i := range s.Operators {
		op := &s.Operators[i]
		for j, t := range op.Inputs {
			if t < 0 {
				continue
			}
			if state[t] != available {
				if w := writerAfter(s, t, i); w >= 0 {
					return fmt.Errorf("operator %d (%s) input %d reads tensor %d %q before operator %d writes it", i, op.Code.Name(), j, t, s.Tensors[t].Name, w)
				}
				return fmt.Errorf("operator %d (%s) input %d reads tensor %d %q, which is not a constant, a variable, a subgraph input or any operator's output", i, op.Code.Name(), j, t, s.Tensors[t].Name)
			}
		}
		for _, t := range op.Outputs {
			if s.Tensors[t].Data != nil {
				return fmt.Errorf("operator %d (%s) writes constant tensor %d %q", i, op.Code.Name(), t, s.Tensors[t].Name)
			}
			if writer[t] >= 0 {
				return fmt.Errorf("tensor %d %q is written by operators %d and %d", t, s.Tensors[t].Name, writer[t], i)
			}
			writer[t] = i
			state[t] = available
		}
	}
	for j, t := range s.Outputs {
		if state[t] != available {
			return fmt.Errorf("output %d is tensor %d %q, which nothing writes", j, t, s.Tensors[t].Name)
		}
	}
	return nil
}

func writerAfter(s *Subgraph, tensor, after int) int {
	for i := after; i < len(s.Operators); i++ {
		for _, t := range s.Operators[i].Outputs {
			if t == tensor {
				return i
			}
		}
	}
	return -1
}

// NumElements is the product of the dimensions (1 for a scalar).
func NumElements(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
