//go:build armnn

package armnn

/*
#cgo CXXFLAGS: -std=c++14
#cgo LDFLAGS: -larmnnTfLiteParser -larmnn -lstdc++
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"os"
	goruntime "runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/edged/edged/internal/runtime"
)

func init() {
	runtime.RegisterDelegate(runtime.Delegate{
		Name:     runtime.BackendArmNN,
		Describe: Describe,
		Open: func(m *runtime.Model) (runtime.Backend, error) {
			b, err := Open(m)
			if err != nil {
				return nil, err
			}
			return b, nil
		},
	})
}

// DefaultBackends is the compute backends' preference order: NEON where
// there is NEON, the reference backend elsewhere.
const DefaultBackends = "CpuAcc,CpuRef"

// Error is a failure Arm NN reported across the C boundary.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return "armnn: " + e.Msg }

func cError(code C.int, msg *C.char) error {
	if code == C.EDGED_ARMNN_OK {
		return nil
	}
	s := "unknown error"
	if msg != nil {
		s = C.GoString(msg)
		C.free(unsafe.Pointer(msg))
	}
	return &Error{Code: int(code), Msg: s}
}

// The Arm NN runtime is created once per process (it loads the dynamic
// backends) and shared by every model.
var shared struct {
	once     sync.Once
	rt       *C.edged_armnn_runtime
	backends []string
	err      error
}

func sharedRuntime() (*C.edged_armnn_runtime, error) {
	shared.once.Do(func() {
		path := C.CString(os.Getenv("EDGED_ARMNN_BACKEND_PATH"))
		defer C.free(unsafe.Pointer(path))
		var rt *C.edged_armnn_runtime
		var names, msg *C.char
		if err := cError(C.edged_armnn_runtime_new(path, &rt, &names, &msg), msg); err != nil {
			shared.err = err
			return
		}
		shared.rt = rt
		shared.backends = strings.Split(C.GoString(names), ",")
		C.free(unsafe.Pointer(names))
	})
	return shared.rt, shared.err
}

// Version is the Arm NN library's version.
func Version() string { return C.GoString(C.edged_armnn_version()) }

// ComputeBackends lists the compute backends Arm NN found (CpuRef, CpuAcc),
// or why it found none.
func ComputeBackends() ([]string, error) {
	if _, err := sharedRuntime(); err != nil {
		return nil, err
	}
	return shared.backends, nil
}

// Describe says what this delegate is, for edged version.
func Describe() string {
	s := "Arm NN " + Version() + " (Debian's 20.08) through cgo"
	if b, err := ComputeBackends(); err != nil {
		return s + "; " + err.Error()
	} else {
		return s + "; compute backends " + strings.Join(b, ", ") + ", preferred " + preferred()
	}
}

func preferred() string {
	if p := os.Getenv("EDGED_ARMNN_BACKENDS"); p != "" {
		return p
	}
	return DefaultBackends
}

// Backend runs one model on Arm NN. Its tensors are Go memory: Invoke
// copies the inputs into Arm NN's buffers, runs the network and copies the
// outputs back, so C never holds a Go pointer.
type Backend struct {
	m       *C.edged_armnn_model
	name    string
	inputs  []*runtime.Tensor
	outputs []*runtime.Tensor
	cleanup goruntime.Cleanup
	// msg is C memory for the shim's error message pointer: a Go variable
	// whose address went to C would escape to the heap on every Invoke.
	msg **C.char
	// Notes are what Prepare patched in the model for Arm NN.
	Notes []string
}

var _ runtime.Backend = (*Backend)(nil)

// OpenBytes reads and validates a model with edged's reader, then opens it.
func OpenBytes(b []byte) (*Backend, error) {
	m, err := runtime.LoadModel(b)
	if err != nil {
		return nil, err
	}
	return Open(m)
}

// Open hands a model that runtime.LoadModel accepted to Arm NN: Check, then
// Prepare, then Arm NN's parser, optimizer and runtime. Every refusal is an
// error saying why (an *UnsupportedError before Arm NN sees the model, an
// *Error from Arm NN).
func Open(m *runtime.Model) (*Backend, error) {
	if err := Check(m); err != nil {
		return nil, err
	}
	g := m.Subgraphs[0]
	for _, list := range [][]int{g.Inputs, g.Outputs} {
		for _, ti := range list {
			if ti >= 1<<23 {
				return nil, &UnsupportedError{fmt.Sprintf("tensor index %d is beyond Arm NN's binding ids", ti)}
			}
		}
	}
	buf, notes := Prepare(m)
	cm, used, err := openNetwork(buf, g.Inputs, g.Outputs)
	if err != nil {
		return nil, err
	}
	b := &Backend{m: cm, name: runtime.BackendArmNN + "/" + strings.ReplaceAll(used, ",", "+"), Notes: notes}
	b.msg = (**C.char)(C.calloc(1, C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	b.cleanup = goruntime.AddCleanup(b, func(h handles) { h.free() }, handles{cm, b.msg})
	for i, ti := range g.Inputs {
		t, err := b.bind(&g.Tensors[ti], 0, i)
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
		b.inputs = append(b.inputs, t)
	}
	for i, ti := range g.Outputs {
		t, err := b.bind(&g.Tensors[ti], 1, i)
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("output %d: %w", i, err)
		}
		b.outputs = append(b.outputs, t)
	}
	return b, nil
}

// openNetwork hands model bytes to Arm NN as they are, binding the given
// tensors of subgraph 0 as inputs and outputs.
func openNetwork(buf []byte, inputs, outputs []int) (*C.edged_armnn_model, string, error) {
	rt, err := sharedRuntime()
	if err != nil {
		return nil, "", err
	}
	if len(buf) == 0 {
		return nil, "", errors.New("armnn: no model bytes")
	}
	ins := make([]C.int32_t, len(inputs))
	for i, ti := range inputs {
		ins[i] = C.int32_t(ti)
	}
	outs := make([]C.int32_t, len(outputs))
	for i, ti := range outputs {
		outs[i] = C.int32_t(ti)
	}
	prefs := C.CString(preferred())
	defer C.free(unsafe.Pointer(prefs))
	var cm *C.edged_armnn_model
	var used, msg *C.char
	rc := C.edged_armnn_model_new(rt, (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(buf))), C.size_t(len(buf)), prefs,
		ptrOrNil(ins), C.size_t(len(ins)), ptrOrNil(outs), C.size_t(len(outs)), &cm, &used, &msg)
	if err := cError(rc, msg); err != nil {
		return nil, "", err
	}
	names := C.GoString(used)
	C.free(unsafe.Pointer(used))
	return cm, names, nil
}

func ptrOrNil(s []C.int32_t) *C.int32_t {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}

// Arm NN's DataType values (armnn/Types.hpp, 20.08).
const (
	dtFloat16  = 0
	dtFloat32  = 1
	dtQAsymmU8 = 2
	dtSigned32 = 3
	dtBoolean  = 4
	dtQSymmS16 = 5
	dtQSymmS8  = 7
	dtQAsymmS8 = 8
)

func sameType(armnnType C.int32_t, t runtime.DType) bool {
	switch armnnType {
	case dtFloat32:
		return t == runtime.Float32
	case dtQAsymmU8:
		return t == runtime.Uint8
	case dtQAsymmS8, dtQSymmS8:
		return t == runtime.Int8
	case dtQSymmS16:
		return t == runtime.Int16
	case dtSigned32:
		return t == runtime.Int32
	case dtBoolean:
		return t == runtime.Bool
	}
	return false
}

// bind checks Arm NN's view of a model input or output against edged's
// (type, size, quantization) and makes the Go tensor that stands for it.
func (b *Backend) bind(ti *runtime.TensorInfo, output C.int, i int) (*runtime.Tensor, error) {
	var info C.edged_armnn_tensor_info
	var msg *C.char
	if err := cError(C.edged_armnn_model_info(b.m, output, C.size_t(i), &info, &msg), msg); err != nil {
		return nil, err
	}
	t, err := runtime.NewTensor(ti)
	if err != nil {
		return nil, &UnsupportedError{err.Error()}
	}
	if !sameType(info.dtype, ti.Type) || uint64(info.bytes) != uint64(t.ByteSize()) {
		return nil, &UnsupportedError{fmt.Sprintf("tensor %d %q: Arm NN sees Arm NN type %d of %d bytes, the model says %s%s (%d bytes)",
			ti.Index, ti.Name, int(info.dtype), uint64(info.bytes), ti.Type, runtime.FormatShape(ti.Shape), t.ByteSize())}
	}
	if q := ti.Quant; q.Quantized() && !q.PerChannel() && ti.Type != runtime.Float32 && ti.Type != runtime.Int32 {
		s, zp := float64(info.scale), int64(info.offset)
		if math.Abs(s-float64(q.Scale[0])) > 1e-6*math.Abs(float64(q.Scale[0])) || zp != q.ZeroPoint[0] {
			return nil, &UnsupportedError{fmt.Sprintf("tensor %d %q: Arm NN quantizes it with scale %g zero point %d, the model with %g and %d",
				ti.Index, ti.Name, s, zp, q.Scale[0], q.ZeroPoint[0])}
		}
	}
	return t, nil
}

// handles are a Backend's C resources.
type handles struct {
	m   *C.edged_armnn_model
	msg **C.char
}

func (h handles) free() {
	C.edged_armnn_model_free(h.m)
	C.free(unsafe.Pointer(h.msg))
}

// Name is "armnn/" and the compute backends the network runs on.
func (b *Backend) Name() string { return b.name }

// Inputs are the model's inputs; write into their bytes before Invoke.
func (b *Backend) Inputs() []*runtime.Tensor { return b.inputs }

// Outputs are the model's outputs, as of the last Invoke.
func (b *Backend) Outputs() []*runtime.Tensor { return b.outputs }

var errClosed = errors.New("armnn: backend is closed")

// Invoke copies the inputs in, runs the network and copies the outputs out.
func (b *Backend) Invoke() error {
	if b.m == nil {
		return errClosed
	}
	msg := b.msg
	for i, t := range b.inputs {
		d := t.Bytes()
		if err := cError(C.edged_armnn_set_input(b.m, C.size_t(i), unsafe.Pointer(unsafe.SliceData(d)), C.size_t(len(d)), msg), *msg); err != nil {
			return fmt.Errorf("input %d %q: %w", i, t.Name, err)
		}
	}
	if err := cError(C.edged_armnn_invoke(b.m, msg), *msg); err != nil {
		return err
	}
	for i, t := range b.outputs {
		d := t.Bytes()
		if err := cError(C.edged_armnn_get_output(b.m, C.size_t(i), unsafe.Pointer(unsafe.SliceData(d)), C.size_t(len(d)), msg), *msg); err != nil {
			return fmt.Errorf("output %d %q: %w", i, t.Name, err)
		}
	}
	goruntime.KeepAlive(b)
	return nil
}

// Reset does nothing: models with state never reach Arm NN (Check).
func (b *Backend) Reset() {}

// Close unloads the network from Arm NN.
func (b *Backend) Close() error {
	if b.m == nil {
		return nil
	}
	b.cleanup.Stop()
	handles{b.m, b.msg}.free()
	b.m, b.msg = nil, nil
	return nil
}
