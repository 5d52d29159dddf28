package tflite

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// The flatbuffers Go runtime trusts its input: an offset past the end of the
// buffer makes an accessor panic. VerifyModelBuffer walks every table, vector
// and string the schema says a Model may hold, and checks that each lies inside
// the buffer, before any generated accessor touches it. It is the Go
// counterpart of the C++ runtime's VerifyModelBuffer.

type fieldKind uint8

const (
	fieldScalar fieldKind = iota
	fieldString
	fieldVectorScalar
	fieldVectorString
	fieldVectorTable
	fieldTable
	fieldUnion
)

type fieldSpec struct {
	name string
	slot int
	kind fieldKind
	size int // bytes per scalar (fieldScalar, fieldVectorScalar)
	ref  int // index into tableSpecs (tables) or unionSpecs (unions)
}

type tableSpec struct {
	name   string
	fields []fieldSpec
}

type unionSpec struct {
	name    string
	members map[uint8]int // type tag -> index into tableSpecs
}

const (
	maxVerifyDepth = 64
	// minModelSize is the root offset plus the file identifier.
	minModelSize = 8
	// FileIdentifier is what a TensorFlow Lite flatbuffer carries at bytes 4..8.
	FileIdentifier = "TFL3"
)

// VerifyError says where in the flatbuffer a structural problem was found.
type VerifyError struct {
	Path   string // e.g. "Model.subgraphs[0].tensors[5].shape"
	Offset int64  // byte offset in the buffer, -1 when not meaningful
	Reason string
}

func (e *VerifyError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("flatbuffer %s (at byte %d): %s", e.Path, e.Offset, e.Reason)
	}
	return fmt.Sprintf("flatbuffer %s: %s", e.Path, e.Reason)
}

type pathElem struct {
	name  string
	index int // -1 when the element is not a vector entry
}

type verifier struct {
	buf       []byte
	tables    int
	maxTables int
	path      []pathElem
}

// VerifyModelBuffer checks that buf is a structurally sound TensorFlow Lite
// flatbuffer: the identifier, and every table, vector and string reachable from
// the root within bounds. Only after it returns nil may GetRootAsModel and the
// generated accessors be used on buf.
//
// Buffers may carry trailing data after the flatbuffer (Ultralytics appends a
// zip archive); that is allowed, as in TensorFlow Lite.
func VerifyModelBuffer(buf []byte) error {
	if len(buf) < minModelSize {
		return &VerifyError{Path: "Model", Offset: -1, Reason: fmt.Sprintf("file is %d bytes, too short to be a TensorFlow Lite model", len(buf))}
	}
	if uint64(len(buf)) >= 1<<32 {
		return &VerifyError{Path: "Model", Offset: -1, Reason: "flatbuffer part larger than 4 GiB"}
	}
	if id := string(buf[4:8]); id != FileIdentifier {
		return &VerifyError{Path: "Model", Offset: 4, Reason: fmt.Sprintf("file identifier is %q, want %q (not a .tflite file?)", id, FileIdentifier)}
	}
	v := &verifier{buf: buf}
	// A table takes at least 4 bytes, so an honest buffer cannot hold more
	// tables than this; sharing one table from many places (legal, but never
	// done by TensorFlow's converters) cannot make the walk explode past it.
	v.maxTables = len(buf)/4 + 1024
	root := uint64(binary.LittleEndian.Uint32(buf))
	v.path = append(v.path, pathElem{name: tableSpecs[rootTable].name, index: -1})
	return v.table(root, rootTable, 0)
}

func (v *verifier) fail(off uint64, format string, args ...any) error {
	var b strings.Builder
	for i, p := range v.path {
		if i > 0 && p.index < 0 {
			b.WriteByte('.')
		}
		if p.index >= 0 {
			b.WriteString("[" + strconv.Itoa(p.index) + "]")
		} else {
			b.WriteString(p.name)
		}
	}
	return &VerifyError{Path: b.String(), Offset: int64(off), Reason: fmt.Sprintf(format, args...)}
}

func (v *verifier) inBounds(off, size uint64) bool {
	return off <= uint64(len(v.buf)) && size <= uint64(len(v.buf))-off
}

func (v *verifier) u16(off uint64) uint64 { return uint64(binary.LittleEndian.Uint16(v.buf[off:])) }
func (v *verifier) u32(off uint64) uint64 { return uint64(binary.LittleEndian.Uint32(v.buf[off:])) }

// table verifies the table at pos against tableSpecs[spec].
func (v *verifier) table(pos uint64, spec int, depth int) error {
	if depth > maxVerifyDepth {
		return v.fail(pos, "tables nested deeper than %d", maxVerifyDepth)
	}
	v.tables++
	if v.tables > v.maxTables {
		return v.fail(pos, "more than %d tables reachable from the root", v.maxTables)
	}
	if pos%4 != 0 || !v.inBounds(pos, 4) {
		return v.fail(pos, "table offset out of bounds or misaligned (buffer is %d bytes)", len(v.buf))
	}
	soff := int64(int32(v.u32(pos)))
	vt := int64(pos) - soff
	if vt < 0 || vt%2 != 0 || !v.inBounds(uint64(vt), 4) {
		return v.fail(pos, "vtable offset %d out of bounds or misaligned", vt)
	}
	vtSize := v.u16(uint64(vt))
	tSize := v.u16(uint64(vt) + 2)
	if vtSize < 4 || vtSize%2 != 0 || !v.inBounds(uint64(vt), vtSize) {
		return v.fail(uint64(vt), "vtable size %d invalid or out of bounds", vtSize)
	}
	if tSize < 4 || !v.inBounds(pos, tSize) {
		return v.fail(pos, "table size %d runs past the end of the buffer", tSize)
	}
	ts := &tableSpecs[spec]
	for i := range ts.fields {
		f := &ts.fields[i]
		entry := uint64(4 + 2*f.slot)
		if entry+2 > vtSize {
			continue // field absent: written by an older schema or left at its default
		}
		off := v.u16(uint64(vt) + entry)
		if off == 0 {
			continue
		}
		v.path = append(v.path, pathElem{name: f.name, index: -1})
		if err := v.field(pos, off, tSize, uint64(vt), vtSize, ts, f, depth); err != nil {
			return err
		}
		v.path = v.path[:len(v.path)-1]
	}
	return nil
}

func (v *verifier) field(pos, off, tSize, vt, vtSize uint64, ts *tableSpec, f *fieldSpec, depth int) error {
	width := uint64(4)
	if f.kind == fieldScalar {
		width = uint64(f.size)
	}
	if off+width > tSize {
		return v.fail(pos+off, "field of %d bytes at table offset %d runs past the table's %d bytes", width, off, tSize)
	}
	if f.kind == fieldScalar {
		return nil
	}
	ref := pos + off
	target := ref + v.u32(ref)
	switch f.kind {
	case fieldString:
		return v.vector(target, 1, true)
	case fieldVectorScalar:
		return v.vector(target, uint64(f.size), false)
	case fieldVectorString, fieldVectorTable:
		if err := v.vector(target, 4, false); err != nil {
			return err
		}
		n := v.u32(target)
		for i := uint64(0); i < n; i++ {
			elem := target + 4 + 4*i
			elemTarget := elem + v.u32(elem)
			v.path = append(v.path, pathElem{index: int(i)})
			var err error
			if f.kind == fieldVectorString {
				err = v.vector(elemTarget, 1, true)
			} else {
				err = v.table(elemTarget, f.ref, depth+1)
			}
			if err != nil {
				return err
			}
			v.path = v.path[:len(v.path)-1]
		}
		return nil
	case fieldTable:
		return v.table(target, f.ref, depth+1)
	case fieldUnion:
		// The type tag sits in the slot before the value.
		tag := uint64(0)
		tagEntry := uint64(4 + 2*(f.slot-1))
		if tagEntry+2 <= vtSize {
			if tagOff := v.u16(vt + tagEntry); tagOff != 0 {
				tag = uint64(v.buf[pos+tagOff])
			}
		}
		if tag == 0 {
			return nil // NONE: the value is never read
		}
		member, ok := unionSpecs[f.ref].members[uint8(tag)]
		if !ok {
			// A member from a newer schema; nothing here will read it as a
			// table, and the op that owns it is rejected as unknown.
			return nil
		}
		return v.table(target, member, depth+1)
	}
	return v.fail(pos+off, "internal error: unknown field kind %d in %s", f.kind, ts.name)
}

// vector checks a length-prefixed vector (or string, which also needs its
// terminating zero byte) at pos.
func (v *verifier) vector(pos, elemSize uint64, isString bool) error {
	if pos%4 != 0 || !v.inBounds(pos, 4) {
		return v.fail(pos, "vector offset out of bounds or misaligned (buffer is %d bytes)", len(v.buf))
	}
	n := v.u32(pos)
	size := n * elemSize // n < 2^32 and elemSize <= 8: no overflow in 64 bits
	if isString {
		size++
	}
	if !v.inBounds(pos+4, size) {
		return v.fail(pos, "vector of %d elements of %d bytes runs past the end of the buffer (%d bytes)", n, elemSize, len(v.buf))
	}
	if isString && v.buf[pos+4+n] != 0 {
		return v.fail(pos, "string of %d bytes is not zero-terminated", n)
	}
	return nil
}
