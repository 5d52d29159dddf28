package runtime

import (
	"fmt"

	"github.com/edged/edged/internal/runtime/tflite"
)

// DType is a tensor element type. Its values are TensorFlow Lite's
// TensorType numbers.
type DType uint8

// The element types edged's kernels read or write.
const (
	Float32 DType = DType(tflite.TensorTypeFLOAT32)
	Float16 DType = DType(tflite.TensorTypeFLOAT16)
	Int32   DType = DType(tflite.TensorTypeINT32)
	Uint8   DType = DType(tflite.TensorTypeUINT8)
	Int64   DType = DType(tflite.TensorTypeINT64)
	String  DType = DType(tflite.TensorTypeSTRING)
	Bool    DType = DType(tflite.TensorTypeBOOL)
	Int16   DType = DType(tflite.TensorTypeINT16)
	Int8    DType = DType(tflite.TensorTypeINT8)
	Float64 DType = DType(tflite.TensorTypeFLOAT64)
	Uint64  DType = DType(tflite.TensorTypeUINT64)
	Uint32  DType = DType(tflite.TensorTypeUINT32)
	Uint16  DType = DType(tflite.TensorTypeUINT16)
)

var dtypeSizes = map[DType]int{
	Float32: 4, Float16: 2, Int32: 4, Uint8: 1, Int64: 8, Bool: 1,
	Int16: 2, Int8: 1, Float64: 8, Uint64: 8, Uint32: 4, Uint16: 2,
}

// Size is the element size in bytes, 0 for types without a fixed size
// (strings) or that edged does not know.
func (d DType) Size() int { return dtypeSizes[d] }

// String is the lower-case name used in errors, JSON and golden case files
// ("int8", "float32").
func (d DType) String() string {
	switch d {
	case Float32:
		return "float32"
	case Float16:
		return "float16"
	case Int32:
		return "int32"
	case Uint8:
		return "uint8"
	case Int64:
		return "int64"
	case String:
		return "string"
	case Bool:
		return "bool"
	case Int16:
		return "int16"
	case Int8:
		return "int8"
	case Float64:
		return "float64"
	case Uint64:
		return "uint64"
	case Uint32:
		return "uint32"
	case Uint16:
		return "uint16"
	}
	if name, ok := tflite.EnumNamesTensorType[tflite.TensorType(d)]; ok {
		return "tflite:" + name
	}
	return fmt.Sprintf("type(%d)", uint8(d))
}

// ParseDType maps a name as String prints it back to a DType.
func ParseDType(name string) (DType, error) {
	for d := range dtypeSizes {
		if d.String() == name {
			return d, nil
		}
	}
	return 0, fmt.Errorf("unknown tensor type %q", name)
}
