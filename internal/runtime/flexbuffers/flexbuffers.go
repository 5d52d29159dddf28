// Package flexbuffers reads (and, for tests and model writing, writes) the
// FlexBuffers encoding that TensorFlow Lite custom operators use for their
// options: TFLM's Signal ops and TFLite_Detection_PostProcess keep a map of
// scalars and vectors there.
//
// No maintained Go implementation exists (the flatbuffers Go module has none),
// so this is a small one covering what operator options use: maps, typed and
// untyped vectors, integers, floats, booleans, strings and keys. Every read is
// bounds-checked: custom options come from untrusted model files, and a
// malformed buffer gives an error, never a panic.
package flexbuffers

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
)

// Type is a FlexBuffers value type.
type Type uint8

// The FlexBuffers types (flexbuffers.h).
const (
	TypeNull          Type = 0
	TypeInt           Type = 1
	TypeUint          Type = 2
	TypeFloat         Type = 3
	TypeKey           Type = 4
	TypeString        Type = 5
	TypeIndirectInt   Type = 6
	TypeIndirectUint  Type = 7
	TypeIndirectFloat Type = 8
	TypeMap           Type = 9
	TypeVector        Type = 10
	TypeVectorInt     Type = 11
	TypeVectorUint    Type = 12
	TypeVectorFloat   Type = 13
	TypeVectorKey     Type = 14
	TypeVectorInt2    Type = 16
	TypeVectorFloat4  Type = 24
	TypeBlob          Type = 25
	TypeBool          Type = 26
	TypeVectorBool    Type = 36
)

var errMalformed = errors.New("malformed flexbuffer")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// Ref is a reference to one value.
type Ref struct {
	buf         []byte
	offset      int // where the value (or its offset) is stored
	parentWidth int // bytes of the slot at offset
	byteWidth   int // bytes per element of what an offset points at
	typ         Type
}

// Type is the value's type.
func (r Ref) Type() Type { return r.typ }

// Root returns the root value of a FlexBuffer.
func Root(buf []byte) (Ref, error) {
	if len(buf) < 3 {
		return Ref{}, malformed("%d bytes is too short", len(buf))
	}
	width := int(buf[len(buf)-1])
	if width != 1 && width != 2 && width != 4 && width != 8 {
		return Ref{}, malformed("root width %d", width)
	}
	packed := buf[len(buf)-2]
	off := len(buf) - 2 - width
	if off < 0 {
		return Ref{}, malformed("root does not fit")
	}
	return Ref{buf: buf, offset: off, parentWidth: width, byteWidth: 1 << (packed & 3), typ: Type(packed >> 2)}, nil
}

func (r Ref) readUint(off, width int) (uint64, error) {
	if off < 0 || width <= 0 || off > len(r.buf)-width {
		return 0, malformed("read of %d bytes at %d outside %d bytes", width, off, len(r.buf))
	}
	b := r.buf[off:]
	switch width {
	case 1:
		return uint64(b[0]), nil
	case 2:
		return uint64(binary.LittleEndian.Uint16(b)), nil
	case 4:
		return uint64(binary.LittleEndian.Uint32(b)), nil
	case 8:
		return binary.LittleEndian.Uint64(b), nil
	}
	return 0, malformed("width %d", width)
}

func (r Ref) readInt(off, width int) (int64, error) {
	u, err := r.readUint(off, width)
	if err != nil {
		return 0, err
	}
	switch width {
	case 1:
		return int64(int8(u)), nil
	case 2:
		return int64(int16(u)), nil
	case 4:
		return int64(int32(u)), nil
	}
	return int64(u), nil
}

func (r Ref) readFloat(off, width int) (float64, error) {
	u, err := r.readUint(off, width)
	if err != nil {
		return 0, err
	}
	switch width {
	case 4:
		return float64(math.Float32frombits(uint32(u))), nil
	case 8:
		return math.Float64frombits(u), nil
	}
	return 0, malformed("float of width %d", width)
}

// indirect follows the offset stored at r.offset.
func (r Ref) indirect() (int, error) {
	rel, err := r.readUint(r.offset, r.parentWidth)
	if err != nil {
		return 0, err
	}
	if rel > uint64(r.offset) {
		return 0, malformed("offset %d points before the buffer", rel)
	}
	return r.offset - int(rel), nil
}

// Int returns the value as an integer, converting as FlexBuffers' AsInt64
// does (floats truncate, booleans are 0/1, vectors give their size).
func (r Ref) Int() (int64, error) {
	switch r.typ {
	case TypeNull:
		return 0, nil
	case TypeInt:
		return r.readInt(r.offset, r.parentWidth)
	case TypeUint, TypeBool:
		u, err := r.readUint(r.offset, r.parentWidth)
		return int64(u), err
	case TypeFloat:
		f, err := r.readFloat(r.offset, r.parentWidth)
		return int64(f), err
	case TypeIndirectInt:
		p, err := r.indirect()
		if err != nil {
			return 0, err
		}
		return r.readInt(p, r.byteWidth)
	case TypeIndirectUint:
		p, err := r.indirect()
		if err != nil {
			return 0, err
		}
		u, err := r.readUint(p, r.byteWidth)
		return int64(u), err
	case TypeIndirectFloat:
		p, err := r.indirect()
		if err != nil {
			return 0, err
		}
		f, err := r.readFloat(p, r.byteWidth)
		return int64(f), err
	}
	if v, err := r.Vector(); err == nil {
		return int64(v.Len()), nil
	}
	return 0, fmt.Errorf("flexbuffer value of type %d is not a number", r.typ)
}

// Float returns the value as a float64, converting as AsDouble does.
func (r Ref) Float() (float64, error) {
	switch r.typ {
	case TypeFloat:
		return r.readFloat(r.offset, r.parentWidth)
	case TypeIndirectFloat:
		p, err := r.indirect()
		if err != nil {
			return 0, err
		}
		return r.readFloat(p, r.byteWidth)
	case TypeUint, TypeIndirectUint, TypeBool:
		i, err := r.Int()
		return float64(uint64(i)), err
	}
	i, err := r.Int()
	return float64(i), err
}

// Bool returns the value as a boolean (non-zero is true).
func (r Ref) Bool() (bool, error) {
	if r.typ == TypeBool {
		u, err := r.readUint(r.offset, r.parentWidth)
		return u != 0, err
	}
	i, err := r.Int()
	return i != 0, err
}

// String returns a string or key value.
func (r Ref) String() (string, error) {
	switch r.typ {
	case TypeKey:
		p, err := r.indirect()
		if err != nil {
			return "", err
		}
		return r.cstring(p)
	case TypeString:
		p, err := r.indirect()
		if err != nil {
			return "", err
		}
		n, err := r.readUint(p-r.byteWidth, r.byteWidth)
		if err != nil {
			return "", err
		}
		if n > uint64(len(r.buf)-p) {
			return "", malformed("string of %d bytes runs past the end", n)
		}
		return string(r.buf[p : p+int(n)]), nil
	}
	return "", fmt.Errorf("flexbuffer value of type %d is not a string", r.typ)
}

func (r Ref) cstring(p int) (string, error) {
	if p < 0 || p >= len(r.buf) {
		return "", malformed("key at %d outside the buffer", p)
	}
	for i := p; i < len(r.buf); i++ {
		if r.buf[i] == 0 {
			return string(r.buf[p:i]), nil
		}
	}
	return "", malformed("key at %d is not terminated", p)
}

// Vector is a vector (typed or not) or a map's values.
type Vector struct {
	buf       []byte
	start     int  // first element
	n         int  // elements
	width     int  // bytes per element
	elemType  Type // for typed vectors
	typeBytes int  // for untyped vectors: where the packed types start, else -1
}

// Len is the number of elements.
func (v Vector) Len() int { return v.n }

// At returns element i.
func (v Vector) At(i int) (Ref, error) {
	if i < 0 || i >= v.n {
		return Ref{}, fmt.Errorf("flexbuffer vector index %d out of range [0,%d)", i, v.n)
	}
	off := v.start + i*v.width
	if v.typeBytes < 0 {
		return Ref{buf: v.buf, offset: off, parentWidth: v.width, byteWidth: 1, typ: v.elemType}, nil
	}
	tb := v.typeBytes + i
	if tb >= len(v.buf) {
		return Ref{}, malformed("type byte %d outside the buffer", tb)
	}
	packed := v.buf[tb]
	return Ref{buf: v.buf, offset: off, parentWidth: v.width, byteWidth: 1 << (packed & 3), typ: Type(packed >> 2)}, nil
}

// Vector returns the value as a vector.
func (r Ref) Vector() (Vector, error) {
	var elem Type
	fixed := 0
	typed := true
	switch {
	case r.typ == TypeVector || r.typ == TypeMap:
		typed = false
	case r.typ >= TypeVectorInt && r.typ <= TypeVectorKey:
		elem = r.typ - TypeVectorInt + TypeInt
	case r.typ == TypeVectorBool:
		elem = TypeBool
	case r.typ >= TypeVectorInt2 && r.typ <= TypeVectorFloat4:
		k := int(r.typ - TypeVectorInt2)
		elem = Type(k%3) + TypeInt
		fixed = k/3 + 2
	default:
		return Vector{}, fmt.Errorf("flexbuffer value of type %d is not a vector", r.typ)
	}
	p, err := r.indirect()
	if err != nil {
		return Vector{}, err
	}
	n := fixed
	if n == 0 {
		u, err := r.readUint(p-r.byteWidth, r.byteWidth)
		if err != nil {
			return Vector{}, err
		}
		if u > uint64(len(r.buf)) {
			return Vector{}, malformed("vector of %d elements", u)
		}
		n = int(u)
	}
	end := p + n*r.byteWidth
	typeBytes := -1
	if !typed {
		typeBytes = end
		end += n
	}
	if p < 0 || end > len(r.buf) || end < p {
		return Vector{}, malformed("vector of %d elements at %d runs past the end (%d bytes)", n, p, len(r.buf))
	}
	return Vector{buf: r.buf, start: p, n: n, width: r.byteWidth, elemType: elem, typeBytes: typeBytes}, nil
}

// Map is a map from keys to values.
type Map struct {
	values Vector
	keys   Vector
}

// Map returns the value as a map.
func (r Ref) Map() (Map, error) {
	if r.typ != TypeMap {
		return Map{}, fmt.Errorf("flexbuffer value of type %d is not a map", r.typ)
	}
	values, err := r.Vector()
	if err != nil {
		return Map{}, err
	}
	base := values.start - 3*values.width
	keysRel, err := r.readUint(base, values.width)
	if err != nil {
		return Map{}, err
	}
	keysWidth, err := r.readUint(base+values.width, values.width)
	if err != nil {
		return Map{}, err
	}
	if keysWidth != 1 && keysWidth != 2 && keysWidth != 4 && keysWidth != 8 {
		return Map{}, malformed("map key width %d", keysWidth)
	}
	if keysRel > uint64(base) {
		return Map{}, malformed("map keys offset points before the buffer")
	}
	kr := Ref{buf: r.buf, offset: base, parentWidth: values.width, byteWidth: int(keysWidth), typ: TypeVectorKey}
	keys, err := kr.Vector()
	if err != nil {
		return Map{}, err
	}
	if keys.n != values.n {
		return Map{}, malformed("map has %d keys and %d values", keys.n, values.n)
	}
	return Map{values: values, keys: keys}, nil
}

// Len is the number of entries.
func (m Map) Len() int { return m.values.n }

// Key returns key i.
func (m Map) Key(i int) (string, error) {
	k, err := m.keys.At(i)
	if err != nil {
		return "", err
	}
	return k.String()
}

// Get returns the value for key, and whether it is present.
func (m Map) Get(key string) (Ref, bool, error) {
	// Keys are sorted; a linear scan keeps a malformed, unsorted map from
	// hiding keys and costs nothing for options maps of a dozen entries.
	for i := range m.keys.n {
		k, err := m.Key(i)
		if err != nil {
			return Ref{}, false, err
		}
		if k == key {
			v, err := m.values.At(i)
			return v, err == nil, err
		}
	}
	return Ref{}, false, nil
}

// Builder writes a FlexBuffer holding one map (the shape of operator
// options). Every slot is 8 bytes wide, which every reader accepts.
type Builder struct {
	entries map[string]any
}

// NewMap starts a map.
func NewMap() *Builder { return &Builder{entries: map[string]any{}} }

// Int, Uint, Float, Bool, String, Ints and Floats add entries.
func (b *Builder) Int(key string, v int64) *Builder        { b.entries[key] = v; return b }
func (b *Builder) Uint(key string, v uint64) *Builder      { b.entries[key] = v; return b }
func (b *Builder) Float(key string, v float64) *Builder    { b.entries[key] = v; return b }
func (b *Builder) Bool(key string, v bool) *Builder        { b.entries[key] = v; return b }
func (b *Builder) String(key string, v string) *Builder    { b.entries[key] = v; return b }
func (b *Builder) Ints(key string, v []int64) *Builder     { b.entries[key] = v; return b }
func (b *Builder) Floats(key string, v []float64) *Builder { b.entries[key] = v; return b }

// Bytes encodes the map.
func (b *Builder) Bytes() []byte {
	const w = 8
	var out []byte
	put := func(u uint64) { out = binary.LittleEndian.AppendUint64(out, u) }
	keys := make([]string, 0, len(b.entries))
	for k := range b.entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	keyPos := make([]int, len(keys))
	for i, k := range keys {
		keyPos[i] = len(out)
		out = append(append(out, k...), 0)
	}
	// Out-of-line values: strings and vectors.
	valuePos := map[string]int{}
	for _, k := range keys {
		switch v := b.entries[k].(type) {
		case string:
			for len(out)%w != 0 {
				out = append(out, 0)
			}
			put(uint64(len(v)))
			valuePos[k] = len(out)
			out = append(append(out, v...), 0)
		case []int64:
			for len(out)%w != 0 {
				out = append(out, 0)
			}
			put(uint64(len(v)))
			valuePos[k] = len(out)
			for _, x := range v {
				put(uint64(x))
			}
		case []float64:
			for len(out)%w != 0 {
				out = append(out, 0)
			}
			put(uint64(len(v)))
			valuePos[k] = len(out)
			for _, x := range v {
				put(math.Float64bits(x))
			}
		}
	}
	for len(out)%w != 0 {
		out = append(out, 0)
	}
	// Keys vector.
	put(uint64(len(keys)))
	keysVec := len(out)
	for i := range keys {
		put(uint64(len(out) - keyPos[i]))
	}
	// Map prefix: keys offset, keys width, length; then values and types.
	put(uint64(len(out) - keysVec))
	put(w)
	put(uint64(len(keys)))
	valuesVec := len(out)
	types := make([]byte, len(keys))
	for i, k := range keys {
		slot := len(out)
		switch v := b.entries[k].(type) {
		case int64:
			put(uint64(v))
			types[i] = byte(TypeInt)<<2 | 3
		case uint64:
			put(v)
			types[i] = byte(TypeUint)<<2 | 3
		case float64:
			put(math.Float64bits(v))
			types[i] = byte(TypeFloat)<<2 | 3
		case bool:
			u := uint64(0)
			if v {
				u = 1
			}
			put(u)
			types[i] = byte(TypeBool)<<2 | 3
		case string:
			put(uint64(slot - valuePos[k]))
			types[i] = byte(TypeString)<<2 | 3
		case []int64:
			put(uint64(slot - valuePos[k]))
			types[i] = byte(TypeVectorInt)<<2 | 3
		case []float64:
			put(uint64(slot - valuePos[k]))
			types[i] = byte(TypeVectorFloat)<<2 | 3
		}
	}
	out = append(out, types...)
	// Root: offset to the map, its packed type, the root width.
	for len(out)%w != 0 {
		out = append(out, 0)
	}
	root := len(out)
	put(uint64(root - valuesVec))
	out = append(out, byte(TypeMap)<<2|3, w)
	return out
}
