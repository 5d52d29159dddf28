package runtime

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/edged/edged/internal/runtime/tflite"
)

// Backend runs one model: the pure-Go Interpreter, or a delegate such as
// Arm NN (internal/runtime/armnn, in builds with -tags armnn). Callers set
// inputs by writing into Inputs()[i].Bytes(), call Invoke, and read
// Outputs()[i]; the tensors, their buffers and their order stay the same for
// the backend's life, and Invoke allocates nothing on the Go heap. Tensor
// names, types, shapes and quantization are the model's, whichever backend
// runs it. A Backend is not safe for concurrent use; Close releases what it
// holds outside the Go heap.
type Backend interface {
	// Name says what runs the model: "int8" for the pure-Go kernels,
	// "armnn/CpuRef" or "armnn/CpuAcc" for Arm NN.
	Name() string
	// Inputs and Outputs are the subgraph's input and output tensors, in
	// order.
	Inputs() []*Tensor
	Outputs() []*Tensor
	// Invoke runs the model once on the inputs' current contents.
	Invoke() error
	// Reset returns any state the model carries between invocations
	// (variable tensors, stateful kernels) to its start.
	Reset()
	// Close releases the backend. The tensors must not be used afterwards.
	Close() error
}

// Backend names, as the configuration and the command line spell them.
const (
	// BackendAuto measures the delegates against the pure-Go kernels at
	// load and keeps the fastest that agrees (see OpenBackend).
	BackendAuto = "auto"
	// BackendInt8 is the pure-Go interpreter, bit-exact with TFLM.
	BackendInt8 = "int8"
	// BackendArmNN is Arm NN through cgo, in builds with -tags armnn.
	BackendArmNN = "armnn"
)

// BackendNames are the names OpenBackend accepts.
var BackendNames = []string{BackendAuto, BackendInt8, BackendArmNN}

// ErrArmNNNotBuilt is returned when Arm NN is asked for by a build without
// it.
var ErrArmNNNotBuilt = errors.New("this edged was built without the Arm NN backend; use the edged-armnn build")

var _ Backend = (*Interpreter)(nil)

// Name is "int8": the pure-Go kernels.
func (it *Interpreter) Name() string { return BackendInt8 }

// Bytes is the file the model was read from. It must not be modified;
// delegates that need to change it work on a copy.
func (m *Model) Bytes() []byte { return m.raw }

// NewTensor returns a tensor shaped, typed and quantized as info declares,
// with a zeroed buffer of its own (aligned for any element type): for
// delegates, whose tensors live outside any interpreter's arena.
func NewTensor(info *TensorInfo) (*Tensor, error) {
	if slices.ContainsFunc(info.Shape, func(d int) bool { return d < 0 }) {
		return nil, fmt.Errorf("tensor %d %q: shape %s is not known before the model runs", info.Index, info.Name, FormatShape(info.Shape))
	}
	if info.Type.Size() == 0 {
		return nil, fmt.Errorf("tensor %d %q: type %s has no fixed size", info.Index, info.Name, info.Type)
	}
	t := &Tensor{
		Index: info.Index, Name: info.Name, Type: info.Type, Shape: slices.Clone(info.Shape),
		Quant: info.Quant, Variable: info.IsVariable,
	}
	t.data = alignedBytes(info.Bytes())
	return t, nil
}

// Delegate is a backend other than the pure-Go kernels. Delegates register
// themselves (RegisterDelegate) from packages that builds include with a
// build tag, so OpenBackend and the rest of edged never import them.
type Delegate struct {
	// Name is how configurations ask for it ("armnn").
	Name string
	// Describe says what it is and what it found, for edged version
	// ("Arm NN 22.0.0 through cgo; compute backends CpuRef").
	Describe func() string
	// Open hands a model (already validated by LoadModel) to the delegate.
	// An error means the delegate cannot run this model (an operator it
	// lacks, a type, a missing compute backend) and says why; edged then
	// falls back to the pure-Go kernels.
	Open func(m *Model) (Backend, error)
}

var (
	delegatesMu sync.Mutex
	delegates   = map[string]Delegate{}
)

// RegisterDelegate makes a delegate available by name.
func RegisterDelegate(d Delegate) {
	delegatesMu.Lock()
	defer delegatesMu.Unlock()
	if d.Name == "" || d.Open == nil {
		panic("runtime: RegisterDelegate needs a name and Open")
	}
	if _, dup := delegates[d.Name]; dup {
		panic("runtime: delegate " + d.Name + " registered twice")
	}
	delegates[d.Name] = d
}

// LookupDelegate returns the delegate registered under name.
func LookupDelegate(name string) (Delegate, bool) {
	delegatesMu.Lock()
	defer delegatesMu.Unlock()
	d, ok := delegates[name]
	return d, ok
}

// Delegates lists the registered delegates by name.
func Delegates() []Delegate {
	delegatesMu.Lock()
	defer delegatesMu.Unlock()
	out := make([]Delegate, 0, len(delegates))
	for _, d := range delegates {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CheckBackendName reports whether name is a backend this build can give:
// "" and auto always (auto means int8 without delegates), int8 always,
// armnn only in builds with it (else ErrArmNNNotBuilt).
func CheckBackendName(name string) error {
	switch name {
	case "", BackendAuto, BackendInt8:
		return nil
	}
	if _, ok := LookupDelegate(name); ok {
		return nil
	}
	if name == BackendArmNN {
		return ErrArmNNNotBuilt
	}
	return fmt.Errorf("unknown backend %q (one of %s)", name, strings.Join(BackendNames, ", "))
}

// OptionsType is the type of the builtin options the operator carries
// (BuiltinOptionsNONE when it has none).
func (o *Operator) OptionsType() tflite.BuiltinOptions { return o.optionsType }
