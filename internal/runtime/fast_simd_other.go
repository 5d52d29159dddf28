//go:build !amd64

package runtime

func detectSIMD() simdKind { return simdNone }

func gemm(_ simdKind, a []int16, p *packedFilter, acc []int32, accStride int) {
	gemmGo(a, p, acc, accStride)
}

func requant(_ simdKind, acc []int32, r *requantParams, out []byte) { requantGo(acc, r, out) }

func widen(_ simdKind, dst []int16, src []byte, signed bool) { widenGo(dst, src, signed) }

func dwRow(_ simdKind, d *dwFast, ring []int16, taps []int64, acc []int32) {
	dwRowGo(d, ring, taps, acc)
}
