package runtime

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unsafe"
)

// Tensor is a tensor of one interpreter: its current shape and its bytes in
// the interpreter's arena (or in the model, for constants). Typed views
// reinterpret the bytes in place; edged runs only on little-endian CPUs.
type Tensor struct {
	Index    int
	Name     string
	Type     DType
	Shape    []int
	Quant    *Quantization
	Const    bool
	Variable bool

	data []byte
}

// Bytes returns the tensor's contents. Writing into it is how inputs are
// set; constants must not be written.
func (t *Tensor) Bytes() []byte { return t.data }

// NumElements is the number of elements of the current shape.
func (t *Tensor) NumElements() int { return NumElements(t.Shape) }

// ByteSize is the number of bytes of the current shape.
func (t *Tensor) ByteSize() int { return t.NumElements() * t.Type.Size() }

// Scale is the per-tensor scale (the first, for per-channel tensors), 0 when
// not quantized.
func (t *Tensor) Scale() float32 {
	if !t.Quant.Quantized() {
		return 0
	}
	return t.Quant.Scale[0]
}

// ZeroPoint is the per-tensor zero point (the first, for per-channel
// tensors), 0 when not quantized.
func (t *Tensor) ZeroPoint() int32 {
	if !t.Quant.Quantized() {
		return 0
	}
	return int32(t.Quant.ZeroPoint[0])
}

// Dim returns dimension i, counting from the end when i < 0.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.Shape)
	}
	return t.Shape[i]
}

// CopyFrom sets the tensor's contents, checking the size.
func (t *Tensor) CopyFrom(b []byte) error {
	if len(b) != len(t.data) {
		return fmt.Errorf("tensor %q (%s%s) takes %d bytes, got %d", t.Name, t.Type, FormatShape(t.Shape), len(t.data), len(b))
	}
	copy(t.data, b)
	return nil
}

func (t *Tensor) String() string {
	return fmt.Sprintf("%d %q %s%s", t.Index, t.Name, t.Type, FormatShape(t.Shape))
}

func view[T any](b []byte) []T {
	var zero T
	size := int(unsafe.Sizeof(zero))
	if len(b) < size {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/size)
}

// Typed views of the contents. They do not check the element type: kernels
// check types once in Prepare.

func (t *Tensor) Int8s() []int8       { return view[int8](t.data) }
func (t *Tensor) Uint8s() []uint8     { return t.data }
func (t *Tensor) Int16s() []int16     { return view[int16](t.data) }
func (t *Tensor) Int32s() []int32     { return view[int32](t.data) }
func (t *Tensor) Int64s() []int64     { return view[int64](t.data) }
func (t *Tensor) Uint16s() []uint16   { return view[uint16](t.data) }
func (t *Tensor) Uint32s() []uint32   { return view[uint32](t.data) }
func (t *Tensor) Uint64s() []uint64   { return view[uint64](t.data) }
func (t *Tensor) Float32s() []float32 { return view[float32](t.data) }
func (t *Tensor) Float64s() []float64 { return view[float64](t.data) }
func (t *Tensor) Bools() []bool       { return view[bool](t.data) }

// FormatShape prints a shape as "[1,96,96,1]".
func FormatShape(shape []int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range shape {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(d))
	}
	b.WriteByte(']')
	return b.String()
}

// SameShape reports whether two shapes are equal.
func SameShape(a, b []int) bool { return slices.Equal(a, b) }
