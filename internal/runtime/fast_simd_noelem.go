//go:build !amd64

// The element-wise kernels (MUL, ADD/SUB, gathers, lookups, max pooling)
// have micro-kernels on amd64 only: elsewhere the callers run their pure-Go
// paths.

package runtime

func mulRow(simdKind, []byte, []byte, []byte, bool, int32, int32, *requantParams) int { return 0 }

const gatherSlack = 16

func gatherRow(simdKind, []int16, int, []int16, []int, int, int, int) bool { return false }

func newAddParams(*addSubQuant) *[160]int32 { return nil }

func addRow(simdKind, *[160]int32, []byte, []byte, []byte, bool, bool) int { return 0 }

func lookupBytes(_ simdKind, in, out []byte, lut *[256]uint8, _ *[16][32]byte) {
	lookupUint8(in, out, lut)
}

func maxRows(_ simdKind, dst []byte, dstStride int, src []byte, srcStride, n, count int, signed bool) {
	maxRowsGo(dst, dstStride, src, srcStride, n, count, signed)
}
