package runtime

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/edged/edged/internal/runtime/tflite"
)

// Kernel runs one operator of one interpreter. Prepare is called once, in
// graph order, before the arena is planned: it checks types and shapes, sets
// output shapes, computes quantization parameters and requests scratch
// memory. Eval runs the operator on the arena's current contents; it must not
// allocate.
//
// A kernel keeps the *Tensor pointers it gets in Prepare; their contents are
// in place by the time Eval is called.
type Kernel interface {
	Prepare(c *PrepareContext) error
	Eval() error
}

// Resetter is implemented by kernels that keep state across invocations
// beyond variable tensors.
type Resetter interface {
	Reset()
}

// MACCounter is implemented by kernels that multiply-accumulate: the count
// per invocation, for `edged inspect` and `edged bench`.
type MACCounter interface {
	MACs() int64
}

// Registration describes how to run an operator kind.
type Registration struct {
	Builtin    tflite.BuiltinOperator
	Custom     string // custom code, with Builtin == CUSTOM
	MaxVersion int    // newest operator version the kernel implements
	New        func() Kernel
}

type registryKey struct {
	builtin tflite.BuiltinOperator
	custom  string
}

// registry is the op registry, filled by the kernel files' init functions.
// It is the runtime's only global state and is read-only once main starts.
var registry = map[registryKey]*Registration{}

// Register adds an operator kind. It panics on a duplicate, which is a
// programming error found at start-up.
func Register(r Registration) {
	k := registryKey{r.Builtin, r.Custom}
	if _, dup := registry[k]; dup {
		panic(fmt.Sprintf("runtime: operator %s registered twice", OpCode{Builtin: r.Builtin, Custom: r.Custom}.Name()))
	}
	registry[k] = &r
}

func lookup(c OpCode) (*Registration, error) {
	r, ok := registry[registryKey{c.Builtin, c.Custom}]
	if !ok {
		if c.Builtin == tflite.BuiltinOperatorCUSTOM {
			return nil, fmt.Errorf("custom operator %q is not supported", c.Custom)
		}
		return nil, fmt.Errorf("operator %s is not supported", c.Name())
	}
	if c.Version > r.MaxVersion {
		return nil, fmt.Errorf("operator %s version %d is not supported (edged implements versions 1 to %d)", c.Name(), c.Version, r.MaxVersion)
	}
	return r, nil
}

// SupportedOps lists the registered operators with their newest version.
func SupportedOps() []OpCode {
	out := make([]OpCode, 0, len(registry))
	for _, r := range registry {
		out = append(out, OpCode{Builtin: r.Builtin, Custom: r.Custom, Version: r.MaxVersion})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

// Scratch is temporary memory a kernel asked for in Prepare; its Bytes are
// valid during the kernel's Eval and are shared with other operators'
// tensors outside it.
type Scratch struct {
	size  int
	Bytes []byte
}

// PrepareContext gives a kernel what it needs during Prepare.
type PrepareContext struct {
	it      *Interpreter
	op      *Operator
	node    *node
	scratch []*Scratch
}

// Op is the operator being prepared.
func (c *PrepareContext) Op() *Operator { return c.op }

// Version is the operator version the model asks for.
func (c *PrepareContext) Version() int { return c.op.Code.Version }

// NumInputs is the number of input slots, omitted optional ones included.
func (c *PrepareContext) NumInputs() int { return len(c.op.Inputs) }

// NumOutputs is the number of outputs.
func (c *PrepareContext) NumOutputs() int { return len(c.op.Outputs) }

// Input returns input i, or nil when the slot is absent or marked omitted.
func (c *PrepareContext) Input(i int) *Tensor {
	if i < 0 || i >= len(c.op.Inputs) || c.op.Inputs[i] < 0 {
		return nil
	}
	return c.it.tensors[c.op.Inputs[i]]
}

// Output returns output i, or nil when absent.
func (c *PrepareContext) Output(i int) *Tensor {
	if i < 0 || i >= len(c.op.Outputs) {
		return nil
	}
	return c.it.tensors[c.op.Outputs[i]]
}

// ExpectIO checks the number of inputs (between minIn and maxIn) and
// outputs, and that the first minIn inputs are present.
func (c *PrepareContext) ExpectIO(minIn, maxIn, outputs int) error {
	if n := len(c.op.Inputs); n < minIn || n > maxIn {
		if minIn == maxIn {
			return fmt.Errorf("has %d inputs, want %d", n, minIn)
		}
		return fmt.Errorf("has %d inputs, want %d to %d", n, minIn, maxIn)
	}
	for i := range minIn {
		if c.op.Inputs[i] < 0 {
			return fmt.Errorf("required input %d is omitted", i)
		}
	}
	if n := len(c.op.Outputs); n != outputs {
		return fmt.Errorf("has %d outputs, want %d", n, outputs)
	}
	return nil
}

// flatTable is what flatc generates for every table.
type flatTable interface {
	Init(buf []byte, i flatbuffers.UOffsetT)
}

// emptyTable is a flatbuffer holding one table with no fields: options read
// through it take their schema defaults, as TensorFlow Lite does when an
// operator carries no options.
var emptyTable = []byte{4, 0, 4, 0, 4, 0, 0, 0}

// Options points dst at the operator's builtin options, which must be of
// type want; an operator without options gets every field's default.
func (c *PrepareContext) Options(want tflite.BuiltinOptions, dst flatTable) error {
	switch c.op.optionsType {
	case tflite.BuiltinOptionsNONE:
		dst.Init(emptyTable, 4)
	case want:
		dst.Init(c.op.optionsTable.Bytes, c.op.optionsTable.Pos)
	default:
		return fmt.Errorf("carries %s options, want %s", tflite.EnumNamesBuiltinOptions[c.op.optionsType], tflite.EnumNamesBuiltinOptions[want])
	}
	return nil
}

// CustomOptions returns the operator's custom options (a flexbuffer for the
// TFLM custom operators).
func (c *PrepareContext) CustomOptions() []byte { return c.op.CustomOptions }

// RequestScratch reserves size bytes of scratch memory for the kernel's
// Eval. Bytes is filled in when the arena is planned.
func (c *PrepareContext) RequestScratch(size int) *Scratch {
	s := &Scratch{size: size}
	c.scratch = append(c.scratch, s)
	return s
}

// SetOutputShape sets an output's shape, computed from the inputs. The
// model's declared shape must agree unless it is left empty (unknown), so a
// model whose shapes are inconsistent is rejected at load instead of writing
// out of bounds.
func (c *PrepareContext) SetOutputShape(i int, shape []int) error {
	t := c.Output(i)
	if t == nil {
		return fmt.Errorf("output %d is missing", i)
	}
	return c.it.setShape(t, shape)
}

// Optimized reports whether the kernel may choose an optimized
// implementation; false when the interpreter is forced onto the reference
// kernels.
func (c *PrepareContext) Optimized() bool { return c.it.optimized }

// simd is the micro-kernel family optimized kernels use.
func (c *PrepareContext) simd() simdKind { return c.it.simd }

// pool is the interpreter's worker pool (nil when single-threaded).
func (c *PrepareContext) pool() *workerPool { return c.it.pool }

// Threads is the number of goroutines that may share the kernel's work.
func (c *PrepareContext) Threads() int { return c.it.pool.Threads() }

// requestWorkspace asks for size bytes of per-thread working memory, valid
// during Eval and shared by all operators; the returned workspace's get(w)
// is thread w's buffer (at least size bytes) once the interpreter is built.
func (c *PrepareContext) requestWorkspace(size int) *workspace {
	ws := c.it.workspace
	ws.size = max(ws.size, alignUp(size, 64))
	return ws
}

// Errorf builds an error; the interpreter adds which operator it is.
func (c *PrepareContext) Errorf(format string, args ...any) error {
	return fmt.Errorf(format, args...)
}

// errUnsupportedType is wrapped by kernels for type combinations they lack.
var errUnsupportedType = errors.New("unsupported tensor type")

// UnsupportedTypes reports a type combination a kernel lacks, naming it.
func UnsupportedTypes(what string, types ...DType) error {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = t.String()
	}
	return fmt.Errorf("%w: %s %v", errUnsupportedType, what, names)
}

// IsUnsupportedType reports whether err says a type combination is missing.
func IsUnsupportedType(err error) bool { return errors.Is(err, errUnsupportedType) }

// KnownInputType is a helper for kernels that accept a list of types.
func KnownInputType(t DType, allowed ...DType) bool { return slices.Contains(allowed, t) }
