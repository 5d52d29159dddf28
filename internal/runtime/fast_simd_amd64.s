#include "textflag.h"

// AVX2 micro-kernels of the optimized int8/uint8 kernels. Every product is
// int16×int16 summed in pairs by VPMADDWD into int32 (exact: operands are at
// most 255 in magnitude) and accumulated with wrapping VPADDD, which is the
// reference's int32 arithmetic in another order.

// func gemmAVX2(a *int16, kp int, w *int16, nb int, bias *int32, acc *int32, accStride int, tiles int)
// tiles × 4 rows of a (kp int16 each, consecutive) times nb packed blocks
// of 16 channels; tile t's rows go to acc rows 4t..4t+3.
TEXT ·gemmAVX2(SB), NOSPLIT, $0-64
	MOVQ a+0(FP), SI
	MOVQ kp+8(FP), R12
	MOVQ R12, R8
	SHLQ $1, R8              // row stride in bytes
	LEAQ (R8)(R8*2), R9      // 3 rows
	SHRQ $1, R12             // pairs
	MOVQ acc+40(FP), DX
	MOVQ accStride+48(FP), R10
	SHLQ $2, R10             // acc row stride in bytes
	LEAQ (R10)(R10*2), R11
	MOVQ tiles+56(FP), R15

gemm_tile:
	MOVQ w+16(FP), DI
	MOVQ nb+24(FP), CX
	MOVQ bias+32(FP), BX
	MOVQ DX, R14             // this tile's acc

gemm_block:
	VMOVDQU (BX), Y0
	VMOVDQU 32(BX), Y1
	VMOVDQA Y0, Y2
	VMOVDQA Y1, Y3
	VMOVDQA Y0, Y4
	VMOVDQA Y1, Y5
	VMOVDQA Y0, Y6
	VMOVDQA Y1, Y7
	MOVQ SI, AX
	MOVQ R12, R13
	TESTQ R13, R13
	JZ gemm_store

gemm_pair:
	VMOVDQU (DI), Y8
	VMOVDQU 32(DI), Y9
	VPBROADCASTD (AX), Y10
	VPMADDWD Y8, Y10, Y12
	VPADDD Y12, Y0, Y0
	VPMADDWD Y9, Y10, Y13
	VPADDD Y13, Y1, Y1
	VPBROADCASTD (AX)(R8*1), Y11
	VPMADDWD Y8, Y11, Y14
	VPADDD Y14, Y2, Y2
	VPMADDWD Y9, Y11, Y15
	VPADDD Y15, Y3, Y3
	VPBROADCASTD (AX)(R8*2), Y10
	VPMADDWD Y8, Y10, Y12
	VPADDD Y12, Y4, Y4
	VPMADDWD Y9, Y10, Y13
	VPADDD Y13, Y5, Y5
	VPBROADCASTD (AX)(R9*1), Y11
	VPMADDWD Y8, Y11, Y14
	VPADDD Y14, Y6, Y6
	VPMADDWD Y9, Y11, Y15
	VPADDD Y15, Y7, Y7
	ADDQ $4, AX
	ADDQ $64, DI
	DECQ R13
	JNZ gemm_pair

gemm_store:
	VMOVDQU Y0, (DX)
	VMOVDQU Y1, 32(DX)
	VMOVDQU Y2, (DX)(R10*1)
	VMOVDQU Y3, 32(DX)(R10*1)
	VMOVDQU Y4, (DX)(R10*2)
	VMOVDQU Y5, 32(DX)(R10*2)
	VMOVDQU Y6, (DX)(R11*1)
	VMOVDQU Y7, 32(DX)(R11*1)
	ADDQ $64, BX
	ADDQ $64, DX
	DECQ CX
	JNZ gemm_block

	LEAQ (SI)(R8*4), SI      // next 4 rows of a
	LEAQ (R14)(R10*4), DX    // next 4 rows of acc
	DECQ R15
	JNZ gemm_tile
	VZEROUPPER
	RET

DATA lowbytes<>+0(SB)/8, $0x0e0c0a0806040200
DATA lowbytes<>+8(SB)/8, $0x8080808080808080
GLOBL lowbytes<>(SB), RODATA|NOPTR, $16

// func requantAVX2(acc *int32, n int, sig, lsh, rsh, mask, thr *int32, out *byte, zp, lo, hi, rows, accStride, outStride, shifts int)
// rows pixels of n channels (a multiple of 8) each; acc and out advance by
// accStride int32 and outStride bytes per pixel. MultiplyByQuantizedMultiplier:
// x << lsh (wrapping; skipped when shifts is 0, all lsh being 0), the
// rounding doubling high multiply as floor((x·sig + 2^30) / 2^31) (sig is
// never MinInt32, so it never saturates), the rounding right shift by rsh
// (ties away from zero), then zero point and clamp.
TEXT ·requantAVX2(SB), NOSPLIT, $0-120
	MOVQ $0x40000000, AX
	MOVQ AX, X15
	VPBROADCASTQ X15, Y15
	MOVQ zp+64(FP), AX
	MOVQ AX, X14
	VPBROADCASTD X14, Y14
	MOVQ lo+72(FP), AX
	MOVQ AX, X13
	VPBROADCASTD X13, Y13
	MOVQ hi+80(FP), AX
	MOVQ AX, X12
	VPBROADCASTD X12, Y12
	VMOVDQU lowbytes<>(SB), X11
	MOVQ acc+0(FP), SI
	MOVQ out+56(FP), DI
	MOVQ n+8(FP), CX
	MOVQ sig+16(FP), R8
	MOVQ lsh+24(FP), R10
	MOVQ rsh+32(FP), R11
	MOVQ mask+40(FP), R12
	MOVQ thr+48(FP), R13
	MOVQ accStride+96(FP), R15
	SHLQ $2, R15
	MOVQ rows+88(FP), BX
	MOVQ outStride+104(FP), DX
	MOVQ shifts+112(FP), R14

rq_row:
	XORQ R9, R9
	TESTQ R14, R14
	JNZ rq_shift
rq_noshift:
	VMOVDQU (SI)(R9*4), Y0
	VMOVDQU (R8)(R9*4), Y1
	VPMULDQ Y1, Y0, Y2
	VPSRLQ $32, Y0, Y3
	VPSRLQ $32, Y1, Y4
	VPMULDQ Y4, Y3, Y3
	VPADDQ Y15, Y2, Y2
	VPADDQ Y15, Y3, Y3
	VPSRLQ $31, Y2, Y2
	VPSLLQ $1, Y3, Y3
	VPBLENDD $0xAA, Y3, Y2, Y0
	VPAND (R12)(R9*4), Y0, Y2
	VPSRAD $31, Y0, Y3
	VMOVDQU (R13)(R9*4), Y4
	VPSUBD Y3, Y4, Y4
	VPSRAVD (R11)(R9*4), Y0, Y0
	VPCMPGTD Y4, Y2, Y2
	VPSUBD Y2, Y0, Y0
	VPADDD Y14, Y0, Y0
	VPMAXSD Y13, Y0, Y0
	VPMINSD Y12, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPACKSSDW X1, X0, X0
	VPSHUFB X11, X0, X0
	MOVQ X0, (DI)(R9*1)
	ADDQ $8, R9
	CMPQ R9, CX
	JLT rq_noshift
	JMP rq_next
rq_shift:
	VMOVDQU (SI)(R9*4), Y0
	VPSLLVD (R10)(R9*4), Y0, Y0
	VMOVDQU (R8)(R9*4), Y1
	VPMULDQ Y1, Y0, Y2
	VPSRLQ $32, Y0, Y3
	VPSRLQ $32, Y1, Y4
	VPMULDQ Y4, Y3, Y3
	VPADDQ Y15, Y2, Y2
	VPADDQ Y15, Y3, Y3
	VPSRLQ $31, Y2, Y2
	VPSLLQ $1, Y3, Y3
	VPBLENDD $0xAA, Y3, Y2, Y0
	VPAND (R12)(R9*4), Y0, Y2
	VPSRAD $31, Y0, Y3
	VMOVDQU (R13)(R9*4), Y4
	VPSUBD Y3, Y4, Y4
	VPSRAVD (R11)(R9*4), Y0, Y0
	VPCMPGTD Y4, Y2, Y2
	VPSUBD Y2, Y0, Y0
	VPADDD Y14, Y0, Y0
	VPMAXSD Y13, Y0, Y0
	VPMINSD Y12, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPACKSSDW X1, X0, X0
	VPSHUFB X11, X0, X0
	MOVQ X0, (DI)(R9*1)
	ADDQ $8, R9
	CMPQ R9, CX
	JLT rq_shift
	JMP rq_next
rq_next:
	ADDQ R15, SI
	ADDQ DX, DI
	DECQ BX
	JNZ rq_row
	VZEROUPPER
	RET

// func widenInt8AVX2(dst *int16, src *byte, n int)   n a multiple of 16
TEXT ·widenInt8AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
wi_loop:
	VPMOVSXBW (SI), Y0
	VMOVDQU Y0, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	SUBQ $16, CX
	JNZ wi_loop
	VZEROUPPER
	RET

// func widenUint8AVX2(dst *int16, src *byte, n int)   n a multiple of 16
TEXT ·widenUint8AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
wu_loop:
	VPMOVZXBW (SI), Y0
	VMOVDQU Y0, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	SUBQ $16, CX
	JNZ wu_loop
	VZEROUPPER
	RET

// func dwRowAVX2(base *int16, taps *int64, npairs, ncb, tail8 int, w *int16, bias *int32, acc *int32, outW, xstride int)
// One output row of a depthwise convolution over int16 input rows (zero
// points at the padding): taps holds 2·npairs byte offsets from base of the
// filter taps for output column 0 (pairs of taps; an odd last tap is paired
// with a zero-weight copy), xstride the bytes between output columns. For
// each column and block of 16 channels, the two taps' inputs are
// interleaved (VPUNPCKLWD/HWD, channels 0-3,8-11 and 4-7,12-15) and
// multiplied with the pair's weights, packed in that order; a last block of
// 8 channels (tail8 = 1) goes the same way in 128-bit registers (channels
// 0-3 and 4-7). Weights: per pair, the blocks' 32 int16 then the tail's 16.
TEXT ·dwRowAVX2(SB), NOSPLIT, $0-80
	MOVQ base+0(FP), R8
	MOVQ outW+64(FP), R15
	MOVQ ncb+24(FP), R14
	SHLQ $6, R14
	MOVQ tail8+32(FP), AX
	SHLQ $5, AX
	ADDQ AX, R14             // weight bytes per pair: ncb*64 + tail8*32
	MOVQ acc+56(FP), DX

dw_col:
	MOVQ bias+48(FP), BX
	MOVQ w+40(FP), R10
	XORQ R11, R11            // channel block byte offset in the input (cb*32)
	MOVQ ncb+24(FP), R12
	TESTQ R12, R12
	JZ dw_tail

dw_block:
	VMOVDQU (BX), Y0
	VMOVDQU 32(BX), Y1
	MOVQ taps+8(FP), R9
	MOVQ R10, DI
	MOVQ npairs+16(FP), R13

dw_pair:
	MOVQ (R9), AX
	MOVQ 8(R9), CX
	ADDQ R8, AX
	ADDQ R8, CX
	VMOVDQU (AX)(R11*1), Y2
	VMOVDQU (CX)(R11*1), Y3
	VPUNPCKLWD Y3, Y2, Y4
	VPUNPCKHWD Y3, Y2, Y5
	VPMADDWD (DI), Y4, Y4
	VPMADDWD 32(DI), Y5, Y5
	VPADDD Y4, Y0, Y0
	VPADDD Y5, Y1, Y1
	ADDQ $16, R9
	ADDQ R14, DI
	DECQ R13
	JNZ dw_pair

	VPERM2I128 $0x20, Y1, Y0, Y2
	VPERM2I128 $0x31, Y1, Y0, Y3
	VMOVDQU Y2, (DX)
	VMOVDQU Y3, 32(DX)
	ADDQ $64, DX
	ADDQ $64, BX
	ADDQ $64, R10
	ADDQ $32, R11
	DECQ R12
	JNZ dw_block

dw_tail:
	MOVQ tail8+32(FP), AX
	TESTQ AX, AX
	JZ dw_next
	VMOVDQU (BX), X0
	VMOVDQU 16(BX), X1
	MOVQ taps+8(FP), R9
	MOVQ R10, DI
	MOVQ npairs+16(FP), R13

dw_tail_pair:
	MOVQ (R9), AX
	MOVQ 8(R9), CX
	ADDQ R8, AX
	ADDQ R8, CX
	VMOVDQU (AX)(R11*1), X2
	VMOVDQU (CX)(R11*1), X3
	VPUNPCKLWD X3, X2, X4
	VPUNPCKHWD X3, X2, X5
	VPMADDWD (DI), X4, X4
	VPMADDWD 16(DI), X5, X5
	VPADDD X4, X0, X0
	VPADDD X5, X1, X1
	ADDQ $16, R9
	ADDQ R14, DI
	DECQ R13
	JNZ dw_tail_pair

	VMOVDQU X0, (DX)
	VMOVDQU X1, 16(DX)
	ADDQ $32, DX

dw_next:
	ADDQ xstride+72(FP), R8
	DECQ R15
	JNZ dw_col
	VZEROUPPER
	RET

// func int8PeakAVX2(iters int)
// The core's exact int8 multiply-accumulate peak: 8 independent chains of
// VPMADDWD (16 multiply-accumulates each) and VPADDD per iteration, 128
// multiply-accumulates, nothing else but the loop counter.
TEXT ·int8PeakAVX2(SB), NOSPLIT, $0-8
	MOVQ iters+0(FP), CX
	VPXOR Y8, Y8, Y8
	VPXOR Y9, Y9, Y9
	VPXOR Y10, Y10, Y10
	VPXOR Y11, Y11, Y11
	VPXOR Y12, Y12, Y12
	VPXOR Y13, Y13, Y13
	VPXOR Y14, Y14, Y14
	VPXOR Y15, Y15, Y15
	VPCMPEQD Y0, Y0, Y0
	VPCMPEQD Y1, Y1, Y1
peak_loop:
	VPMADDWD Y0, Y1, Y2
	VPADDD Y2, Y8, Y8
	VPMADDWD Y0, Y1, Y3
	VPADDD Y3, Y9, Y9
	VPMADDWD Y0, Y1, Y4
	VPADDD Y4, Y10, Y10
	VPMADDWD Y0, Y1, Y5
	VPADDD Y5, Y11, Y11
	VPMADDWD Y0, Y1, Y6
	VPADDD Y6, Y12, Y12
	VPMADDWD Y0, Y1, Y7
	VPADDD Y7, Y13, Y13
	VPMADDWD Y0, Y1, Y2
	VPADDD Y2, Y14, Y14
	VPMADDWD Y0, Y1, Y3
	VPADDD Y3, Y15, Y15
	DECQ CX
	JNZ peak_loop
	VZEROUPPER
	RET

// func mulRequantAVX2(a, b, out *byte, n, signed, o1, o2, sig, lsh, rsh, mask, thr, zp, lo, hi int)
// Element-wise quantized MUL of n (a multiple of 8) elements: (a + o1)·(b +
// o2) in int32 (at most 255·255 in magnitude), then the requantization of
// requantAVX2 with one multiplier: shifts by lsh and rsh, the rounding
// doubling high multiply by sig, rounding division, zero point, clamp.
TEXT ·mulRequantAVX2(SB), NOSPLIT, $0-120
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ out+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ $0x40000000, AX
	MOVQ AX, X15
	VPBROADCASTQ X15, Y15
	MOVQ zp+96(FP), AX
	MOVQ AX, X14
	VPBROADCASTD X14, Y14
	MOVQ lo+104(FP), AX
	MOVQ AX, X13
	VPBROADCASTD X13, Y13
	MOVQ hi+112(FP), AX
	MOVQ AX, X12
	VPBROADCASTD X12, Y12
	VMOVDQU lowbytes<>(SB), X11
	MOVQ o1+40(FP), AX
	MOVQ AX, X10
	VPBROADCASTD X10, Y10
	MOVQ o2+48(FP), AX
	MOVQ AX, X9
	VPBROADCASTD X9, Y9
	MOVQ sig+56(FP), AX
	MOVQ AX, X8
	VPBROADCASTD X8, Y8
	MOVQ lsh+64(FP), AX
	MOVQ AX, X7
	MOVQ rsh+72(FP), AX
	MOVQ AX, X6
	MOVQ mask+80(FP), AX
	MOVQ AX, X5
	VPBROADCASTD X5, Y5
	MOVQ thr+88(FP), AX
	MOVQ AX, X4
	VPBROADCASTD X4, Y4
	MOVQ signed+32(FP), AX
	TESTQ AX, AX
	JZ mul_unsigned

mul_signed:
	VPMOVSXBD (SI), Y0
	VPMOVSXBD (DI), Y1
	JMP mul_body
mul_unsigned:
	VPMOVZXBD (SI), Y0
	VPMOVZXBD (DI), Y1
mul_body:
	VPADDD Y10, Y0, Y0
	VPADDD Y9, Y1, Y1
	VPMULLD Y1, Y0, Y0
	VPSLLD X7, Y0, Y0
	VPMULDQ Y8, Y0, Y1
	VPSRLQ $32, Y0, Y2
	VPMULDQ Y8, Y2, Y2
	VPADDQ Y15, Y1, Y1
	VPADDQ Y15, Y2, Y2
	VPSRLQ $31, Y1, Y1
	VPSLLQ $1, Y2, Y2
	VPBLENDD $0xAA, Y2, Y1, Y0
	VPAND Y5, Y0, Y1
	VPSRAD $31, Y0, Y2
	VPSUBD Y2, Y4, Y2
	VPSRAD X6, Y0, Y0
	VPCMPGTD Y2, Y1, Y1
	VPSUBD Y1, Y0, Y0
	VPADDD Y14, Y0, Y0
	VPMAXSD Y13, Y0, Y0
	VPMINSD Y12, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPACKSSDW X1, X0, X0
	VPSHUFB X11, X0, X0
	MOVQ X0, (DX)
	ADDQ $8, SI
	ADDQ $8, DI
	ADDQ $8, DX
	SUBQ $8, CX
	JZ mul_done
	MOVQ signed+32(FP), AX
	TESTQ AX, AX
	JZ mul_unsigned
	JMP mul_signed
mul_done:
	VZEROUPPER
	RET

// func gatherAVX2(dst *int16, dstStride int, ring *int16, offs *int, nfy, run, count, xstep int)
// The patches of count consecutive output pixels of one output row: for
// pixel p and filter row fy, run bytes from ring + 2·offs[fy] + p·xstep to
// dst + p·dstStride + fy·run. Copies go in 32-byte chunks, the last one
// past the run: each later copy overwrites what an earlier one wrote past
// its end, and the caller leaves 32 bytes of slack after the destination
// and the ring.
TEXT ·gatherAVX2(SB), NOSPLIT, $0-64
	MOVQ dst+0(FP), DI
	MOVQ ring+16(FP), SI
	MOVQ count+48(FP), CX
	MOVQ run+40(FP), R11
gather_pixel:
	MOVQ offs+24(FP), R8
	MOVQ nfy+32(FP), R9
	MOVQ DI, DX
gather_row:
	MOVQ (R8), AX
	LEAQ (SI)(AX*2), AX      // offs are in int16 elements
	MOVQ R11, R10
gather_chunk:
	VMOVDQU (AX), Y0
	VMOVDQU Y0, (DX)
	ADDQ $32, AX
	ADDQ $32, DX
	SUBQ $32, R10
	JG gather_chunk
	ADDQ R10, DX             // back to the run's end (R10 <= 0)
	ADDQ $8, R8
	DECQ R9
	JNZ gather_row
	ADDQ dstStride+8(FP), DI
	ADDQ xstep+56(FP), SI
	DECQ CX
	JNZ gather_pixel
	VZEROUPPER
	RET

// func dw3x3AVX2(base *int16, rowOffs *int64, colStep, ncb, tail8 int, w *int16, bias *int32, acc *int32, outW, xstride, accStride int)
// dwRowAVX2 for 3×3 filters: the five pairs of taps ((0,0)+(0,1), (0,2)+(1,0),
// (1,1)+(1,2), (2,0)+(2,1), (2,2) alone) with their weights held in
// registers for a whole row, one block of channels at a time; the three
// filter rows start at base + rowOffs[i], the columns colStep bytes apart.
TEXT ·dw3x3AVX2(SB), NOSPLIT, $0-88
	MOVQ base+0(FP), SI
	MOVQ colStep+16(FP), R11
	MOVQ accStride+80(FP), R12
	MOVQ ncb+24(FP), R14
	SHLQ $6, R14
	MOVQ tail8+32(FP), AX
	SHLQ $5, AX
	ADDQ AX, R14             // weight bytes per pair
	MOVQ w+40(FP), DI
	MOVQ bias+48(FP), BX
	XORQ CX, CX              // channel byte offset in the rows
	MOVQ acc+56(FP), R15     // acc of this block, column 0
	MOVQ ncb+24(FP), AX
	TESTQ AX, AX
	JZ dw3_tail
	MOVQ AX, ncb+24(FP)

dw3_block:
	VMOVDQU (DI), Y6
	VMOVDQU 32(DI), Y7
	VMOVDQU (DI)(R14*1), Y8
	VMOVDQU 32(DI)(R14*1), Y9
	VMOVDQU (DI)(R14*2), Y10
	VMOVDQU 32(DI)(R14*2), Y11
	LEAQ (DI)(R14*2), AX
	ADDQ R14, AX
	VMOVDQU (AX), Y12
	VMOVDQU 32(AX), Y13
	VMOVDQU (AX)(R14*1), Y14
	VMOVDQU 32(AX)(R14*1), Y15
	MOVQ rowOffs+8(FP), AX
	MOVQ (AX), R8
	ADDQ SI, R8
	ADDQ CX, R8
	MOVQ 8(AX), R9
	ADDQ SI, R9
	ADDQ CX, R9
	MOVQ 16(AX), R10
	ADDQ SI, R10
	ADDQ CX, R10
	MOVQ outW+64(FP), R13
	MOVQ R15, DX
dw3_col:
	VMOVDQU (R8), Y2
	VPUNPCKLWD (R8)(R11*1), Y2, Y4
	VPUNPCKHWD (R8)(R11*1), Y2, Y5
	VPMADDWD Y6, Y4, Y4
	VPMADDWD Y7, Y5, Y5
	VPADDD (BX), Y4, Y0
	VPADDD 32(BX), Y5, Y1
	VMOVDQU (R8)(R11*2), Y2
	VPUNPCKLWD (R9), Y2, Y4
	VPUNPCKHWD (R9), Y2, Y5
	VPMADDWD Y8, Y4, Y4
	VPMADDWD Y9, Y5, Y5
	VPADDD Y4, Y0, Y0
	VPADDD Y5, Y1, Y1
	VMOVDQU (R9)(R11*1), Y2
	VPUNPCKLWD (R9)(R11*2), Y2, Y4
	VPUNPCKHWD (R9)(R11*2), Y2, Y5
	VPMADDWD Y10, Y4, Y4
	VPMADDWD Y11, Y5, Y5
	VPADDD Y4, Y0, Y0
	VPADDD Y5, Y1, Y1
	VMOVDQU (R10), Y2
	VPUNPCKLWD (R10)(R11*1), Y2, Y4
	VPUNPCKHWD (R10)(R11*1), Y2, Y5
	VPMADDWD Y12, Y4, Y4
	VPMADDWD Y13, Y5, Y5
	VPADDD Y4, Y0, Y0
	VPADDD Y5, Y1, Y1
	VMOVDQU (R10)(R11*2), Y2
	VPUNPCKLWD Y2, Y2, Y4
	VPUNPCKHWD Y2, Y2, Y5
	VPMADDWD Y14, Y4, Y4
	VPMADDWD Y15, Y5, Y5
	VPADDD Y4, Y0, Y0
	VPADDD Y5, Y1, Y1
	VPERM2I128 $0x20, Y1, Y0, Y2
	VPERM2I128 $0x31, Y1, Y0, Y3
	VMOVDQU Y2, (DX)
	VMOVDQU Y3, 32(DX)
	ADDQ xstride+72(FP), R8
	ADDQ xstride+72(FP), R9
	ADDQ xstride+72(FP), R10
	ADDQ R12, DX
	DECQ R13
	JNZ dw3_col
	ADDQ $64, DI
	ADDQ $64, BX
	ADDQ $32, CX
	ADDQ $64, R15
	DECQ ncb+24(FP)
	JNZ dw3_block

dw3_tail:
	MOVQ tail8+32(FP), AX
	TESTQ AX, AX
	JZ dw3_done
	VMOVDQU (DI), X6
	VMOVDQU 16(DI), X7
	VMOVDQU (DI)(R14*1), X8
	VMOVDQU 16(DI)(R14*1), X9
	VMOVDQU (DI)(R14*2), X10
	VMOVDQU 16(DI)(R14*2), X11
	LEAQ (DI)(R14*2), AX
	ADDQ R14, AX
	VMOVDQU (AX), X12
	VMOVDQU 16(AX), X13
	VMOVDQU (AX)(R14*1), X14
	VMOVDQU 16(AX)(R14*1), X15
	MOVQ rowOffs+8(FP), AX
	MOVQ (AX), R8
	ADDQ SI, R8
	ADDQ CX, R8
	MOVQ 8(AX), R9
	ADDQ SI, R9
	ADDQ CX, R9
	MOVQ 16(AX), R10
	ADDQ SI, R10
	ADDQ CX, R10
	MOVQ outW+64(FP), R13
	MOVQ R15, DX
dw3_tcol:
	VMOVDQU (R8), X2
	VPUNPCKLWD (R8)(R11*1), X2, X4
	VPUNPCKHWD (R8)(R11*1), X2, X5
	VPMADDWD X6, X4, X4
	VPMADDWD X7, X5, X5
	VPADDD (BX), X4, X0
	VPADDD 16(BX), X5, X1
	VMOVDQU (R8)(R11*2), X2
	VPUNPCKLWD (R9), X2, X4
	VPUNPCKHWD (R9), X2, X5
	VPMADDWD X8, X4, X4
	VPMADDWD X9, X5, X5
	VPADDD X4, X0, X0
	VPADDD X5, X1, X1
	VMOVDQU (R9)(R11*1), X2
	VPUNPCKLWD (R9)(R11*2), X2, X4
	VPUNPCKHWD (R9)(R11*2), X2, X5
	VPMADDWD X10, X4, X4
	VPMADDWD X11, X5, X5
	VPADDD X4, X0, X0
	VPADDD X5, X1, X1
	VMOVDQU (R10), X2
	VPUNPCKLWD (R10)(R11*1), X2, X4
	VPUNPCKHWD (R10)(R11*1), X2, X5
	VPMADDWD X12, X4, X4
	VPMADDWD X13, X5, X5
	VPADDD X4, X0, X0
	VPADDD X5, X1, X1
	VMOVDQU (R10)(R11*2), X2
	VPUNPCKLWD X2, X2, X4
	VPUNPCKHWD X2, X2, X5
	VPMADDWD X14, X4, X4
	VPMADDWD X15, X5, X5
	VPADDD X4, X0, X0
	VPADDD X5, X1, X1
	VMOVDQU X0, (DX)
	VMOVDQU X1, 16(DX)
	ADDQ xstride+72(FP), R8
	ADDQ xstride+72(FP), R9
	ADDQ xstride+72(FP), R10
	ADDQ R12, DX
	DECQ R13
	JNZ dw3_tcol

dw3_done:
	VZEROUPPER
	RET

// func addRequantAVX2(a, b, out *byte, n int, variant int, p *[160]int32)
// Element-wise quantized ADD (variant bit 1: SUB; bit 0: int8, else uint8)
// of n (a multiple of 8) elements, as the reference computes it: each
// input plus its offset, shifted left 20, rescaled (rounding doubling high
// multiply, rounding right shift), summed, rescaled to the output, zero
// point, clamp. p holds the parameters broadcast to 8 lanes: offsets (0,
// 32), significands (64, 96, 128), masks and thresholds of the three
// rounding shifts (160-320), zero point, lo, hi (352-416), the 2^30 nudge
// as quadwords (448), the three shift counts (480, 512, 544).
TEXT ·addRequantAVX2(SB), NOSPLIT, $0-48
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ out+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ p+40(FP), BX
	MOVQ variant+32(FP), AX
	CMPQ AX, $1
	JEQ add_s8
	CMPQ AX, $2
	JEQ sub_u8
	CMPQ AX, $3
	JEQ sub_s8
add_u8:
	VPMOVZXBD (SI), Y0
	VPMOVZXBD (DI), Y1
	VPADDD 0(BX), Y0, Y0
	VPADDD 32(BX), Y1, Y1
	VPSLLD $20, Y0, Y0
	VPSLLD $20, Y1, Y1
	VPMULDQ 64(BX), Y0, Y2
	VPSRLQ $32, Y0, Y3
	VPMULDQ 64(BX), Y3, Y3
	VPADDQ 448(BX), Y2, Y2
	VPADDQ 448(BX), Y3, Y3
	VPSRLQ $31, Y2, Y2
	VPSLLQ $1, Y3, Y3
	VPBLENDD $0xAA, Y3, Y2, Y0
	VPAND 160(BX), Y0, Y2
	VPSRAD $31, Y0, Y3
	VMOVDQU 192(BX), Y6
	VPSUBD Y3, Y6, Y3
	VPSRAD 480(BX), Y0, Y0
	VPCMPGTD Y3, Y2, Y2
	VPSUBD Y2, Y0, Y0
	VPMULDQ 96(BX), Y1, Y4
	VPSRLQ $32, Y1, Y5
	VPMULDQ 96(BX), Y5, Y5
	VPADDQ 448(BX), Y4, Y4
	VPADDQ 448(BX), Y5, Y5
	VPSRLQ $31, Y4, Y4
	VPSLLQ $1, Y5, Y5
	VPBLENDD $0xAA, Y5, Y4, Y1
	VPAND 224(BX), Y1, Y4
	VPSRAD $31, Y1, Y5
	VMOVDQU 256(BX), Y6
	VPSUBD Y5, Y6, Y5
	VPSRAD 512(BX), Y1, Y1
	VPCMPGTD Y5, Y4, Y4
	VPSUBD Y4, Y1, Y1
	VPADDD Y1, Y0, Y0
	VPMULDQ 128(BX), Y0, Y2
	VPSRLQ $32, Y0, Y3
	VPMULDQ 128(BX), Y3, Y3
	VPADDQ 448(BX), Y2, Y2
	VPADDQ 448(BX), Y3, Y3
	VPSRLQ $31, Y2, Y2
	VPSLLQ $1, Y3, Y3
	VPBLENDD $0xAA, Y3, Y2, Y0
	VPAND 288(BX), Y0, Y2
	VPSRAD $31, Y0, Y3
	VMOVDQU 320(BX), Y6
	VPSUBD Y3, Y6, Y3
	VPSRAD 544(BX), Y0, Y0
	VPCMPGTD Y3, Y2, Y2
	VPSUBD Y2, Y0, Y0
	VPADDD 352(BX), Y0, Y0
	VPMAXSD 384(BX), Y0, Y0
	VPMINSD 416(BX), Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPACKSSDW X1, X0, X0
	VPSHUFB lowbytes<>(SB), X0, X0
	MOVQ X0, (DX)
	ADDQ $8, SI
	ADDQ $8, DI
	ADDQ $8, DX
	SUBQ $8, CX
	JNZ add_u8
	JMP add_done
add_s8:
	VPMOVSXBD (SI), Y0
	VPMOVSXBD (DI), Y1
	VPADDD 0(BX), Y0, Y0
	VPADDD 32(BX), Y1, Y1
	VPSLLD $20, Y0, Y0
	VPSLLD $20, Y1, Y1
	VPMULDQ 64(BX), Y0, Y2
	VPSRLQ $32, Y0, Y3
	VPMULDQ 64(BX), Y3, Y3
	VPADDQ 448(BX), Y2, Y2
	VPADDQ 448(BX), Y3, Y3
	VPSRLQ $31, Y2, Y2
	VPSLLQ $1, Y3, Y3
	VPBLENDD $0xAA, Y3, Y2, Y0
	VPAND 160(BX), Y0, Y2
	VPSRAD $31, Y0, Y3
	VMOVDQU 192(BX), Y6
	VPSUBD Y3, Y6, Y3
	VPSRAD 480(BX), Y0, Y0
	VPCMPGTD Y3, Y2, Y2
	VPSUBD Y2, Y0, Y0
	VPMULDQ 96(BX), Y1, Y4
	VPSRLQ $32, Y1, Y5
	VPMULDQ 96(BX), Y5, Y5
	VPADDQ 448(BX), Y4, Y4
	VPADDQ 448(BX), Y5, Y5
	VPSRLQ $31, Y4, Y4
	VPSLLQ $1, Y5, Y5
	VPBLENDD $0xAA, Y5, Y4, Y1
	VPAND 224(BX), Y1, Y4
	VPSRAD $31, Y1, Y5
	VMOVDQU 256(BX), Y6
	VPSUBD Y5, Y6, Y5
	VPSRAD 512(BX), Y1, Y1
	VPCMPGTD Y5, Y4, Y4
	VPSUBD Y4, Y1, Y1
	VPADDD Y1, Y0, Y0
	VPMULDQ 128(BX), Y0, Y2
	VPSRLQ $32, Y0, Y3
	VPMULDQ 128(BX), Y3, Y3
	VPADDQ 448(BX), Y2, Y2
	VPADDQ 448(BX), Y3, Y3
	VPSRLQ $31, Y2, Y2
	VPSLLQ $1, Y3, Y3
	VPBLENDD $0xAA, Y3, Y2, Y0
	VPAND 288(BX), Y0, Y2
	VPSRAD $31, Y0, Y3
	VMOVDQU 320(BX), Y6
	VPSUBD Y3, Y6, Y3
	VPSRAD 544(BX), Y0, Y0
	VPCMPGTD Y3, Y2, Y2
	VPSUBD Y2, Y0, Y0
	VPADDD 352(BX), Y0, Y0
	VPMAXSD 384(BX), Y0, Y0
	VPMINSD 416(BX), Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPACKSSDW X1, X0, X0
	VPSHUFB lowbytes<>(SB), X0, X0
	MOVQ X0, (DX)
	ADDQ $8, SI
	ADDQ $8, DI
	ADDQ $8, DX
	SUBQ $8, CX
	JNZ add_s8
	JMP add_done
sub_u8:
	VPMOVZXBD (SI), Y0
	VPMOVZXBD (DI), Y1
	VPADDD 0(BX), Y0, Y0
	VPADDD 32(BX), Y1, Y1
	VPSLLD $20, Y0, Y0
	VPSLLD $20, Y1, Y1
	VPMULDQ 64(BX), Y0, Y2
	VPSRLQ $32, Y0, Y3
	VPMULDQ 64(BX), Y3, Y3
	VPADDQ 448(BX), Y2, Y2
	VPADDQ 448(BX), Y3, Y3
	VPSRLQ $31, Y2, Y2
	VPSLLQ $1, Y3, Y3
	VPBLENDD $0xAA, Y3, Y2, Y0
	VPAND 160(BX), Y0, Y2
	VPSRAD $31, Y0, Y3
	VMOVDQU 192(BX), Y6
	VPSUBD Y3, Y6, Y3
	VPSRAD 480(BX), Y0, Y0
	VPCMPGTD Y3, Y2, Y2
	VPSUBD Y2, Y0, Y0
	VPMULDQ 96(BX), Y1, Y4
	VPSRLQ $32, Y1, Y5
	VPMULDQ 96(BX), Y5, Y5
	VPADDQ 448(BX), Y4, Y4
	VPADDQ 448(BX), Y5, Y5
	VPSRLQ $31, Y4, Y4
	VPSLLQ $1, Y5, Y5
	VPBLENDD $0xAA, Y5, Y4, Y1
	VPAND 224(BX), Y1, Y4
	VPSRAD $31, Y1, Y5
	VMOVDQU 256(BX), Y6
	VPSUBD Y5, Y6, Y5
	VPSRAD 512(BX), Y1, Y1
	VPCMPGTD Y5, Y4, Y4
	VPSUBD Y4, Y1, Y1
	VPSUBD Y1, Y0, Y0
	VPMULDQ 128(BX), Y0, Y2
	VPSRLQ $32, Y0, Y3
	VPMULDQ 128(BX), Y3, Y3
	VPADDQ 448(BX), Y2, Y2
	VPADDQ 448(BX), Y3, Y3
	VPSRLQ $31, Y2, Y2
	VPSLLQ $1, Y3, Y3
	VPBLENDD $0xAA, Y3, Y2, Y0
	VPAND 288(BX), Y0, Y2
	VPSRAD $31, Y0, Y3
	VMOVDQU 320(BX), Y6
	VPSUBD Y3, Y6, Y3
	VPSRAD 544(BX), Y0, Y0
	VPCMPGTD Y3, Y2, Y2
	VPSUBD Y2, Y0, Y0
	VPADDD 352(BX), Y0, Y0
	VPMAXSD 384(BX), Y0, Y0
	VPMINSD 416(BX), Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPACKSSDW X1, X0, X0
	VPSHUFB lowbytes<>(SB), X0, X0
	MOVQ X0, (DX)
	ADDQ $8, SI
	ADDQ $8, DI
	ADDQ $8, DX
	SUBQ $8, CX
	JNZ sub_u8
	JMP add_done
sub_s8:
	VPMOVSXBD (SI), Y0
	VPMOVSXBD (DI), Y1
	VPADDD 0(BX), Y0, Y0
	VPADDD 32(BX), Y1, Y1
	VPSLLD $20, Y0, Y0
	VPSLLD $20, Y1, Y1
	VPMULDQ 64(BX), Y0, Y2
	VPSRLQ $32, Y0, Y3
	VPMULDQ 64(BX), Y3, Y3
	VPADDQ 448(BX), Y2, Y2
	VPADDQ 448(BX), Y3, Y3
	VPSRLQ $31, Y2, Y2
	VPSLLQ $1, Y3, Y3
	VPBLENDD $0xAA, Y3, Y2, Y0
	VPAND 160(BX), Y0, Y2
	VPSRAD $31, Y0, Y3
	VMOVDQU 192(BX), Y6
	VPSUBD Y3, Y6, Y3
	VPSRAD 480(BX), Y0, Y0
	VPCMPGTD Y3, Y2, Y2
	VPSUBD Y2, Y0, Y0
	VPMULDQ 96(BX), Y1, Y4
	VPSRLQ $32, Y1, Y5
	VPMULDQ 96(BX), Y5, Y5
	VPADDQ 448(BX), Y4, Y4
	VPADDQ 448(BX), Y5, Y5
	VPSRLQ $31, Y4, Y4
	VPSLLQ $1, Y5, Y5
	VPBLENDD $0xAA, Y5, Y4, Y1
	VPAND 224(BX), Y1, Y4
	VPSRAD $31, Y1, Y5
	VMOVDQU 256(BX), Y6
	VPSUBD Y5, Y6, Y5
	VPSRAD 512(BX), Y1, Y1
	VPCMPGTD Y5, Y4, Y4
	VPSUBD Y4, Y1, Y1
	VPSUBD Y1, Y0, Y0
	VPMULDQ 128(BX), Y0, Y2
	VPSRLQ $32, Y0, Y3
	VPMULDQ 128(BX), Y3, Y3
	VPADDQ 448(BX), Y2, Y2
	VPADDQ 448(BX), Y3, Y3
	VPSRLQ $31, Y2, Y2
	VPSLLQ $1, Y3, Y3
	VPBLENDD $0xAA, Y3, Y2, Y0
	VPAND 288(BX), Y0, Y2
	VPSRAD $31, Y0, Y3
	VMOVDQU 320(BX), Y6
	VPSUBD Y3, Y6, Y3
	VPSRAD 544(BX), Y0, Y0
	VPCMPGTD Y3, Y2, Y2
	VPSUBD Y2, Y0, Y0
	VPADDD 352(BX), Y0, Y0
	VPMAXSD 384(BX), Y0, Y0
	VPMINSD 416(BX), Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPACKSSDW X1, X0, X0
	VPSHUFB lowbytes<>(SB), X0, X0
	MOVQ X0, (DX)
	ADDQ $8, SI
	ADDQ $8, DI
	ADDQ $8, DX
	SUBQ $8, CX
	JNZ sub_s8
	JMP add_done
add_done:
	VZEROUPPER
	RET

// func lookupAVX2(in, out *byte, n int, tab *[16][32]byte)
// out[i] = table[in[i]] for n (a multiple of 32) bytes; tab holds the
// 256-entry table as 16 rows of 16 entries, each repeated in both 128-bit
// lanes. Row h is looked up with VPSHUFB by the low nibble and blended in
// where the high nibble is h.
TEXT ·lookupAVX2(SB), NOSPLIT, $0-32
	MOVQ in+0(FP), SI
	MOVQ out+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ tab+24(FP), BX
	MOVQ $0x0f0f0f0f0f0f0f0f, AX
	MOVQ AX, X15
	VPBROADCASTQ X15, Y15
	MOVQ $0x0101010101010101, AX
	MOVQ AX, X14
	VPBROADCASTQ X14, Y14
lut_loop:
	VMOVDQU (SI), Y0
	VPSRLW $4, Y0, Y1
	VPAND Y15, Y1, Y1
	VPAND Y15, Y0, Y0
	VPXOR Y5, Y5, Y5
	VPXOR Y2, Y2, Y2
	MOVQ BX, DX
	MOVQ $16, R8
lut_row:
	VMOVDQU (DX), Y3
	VPSHUFB Y0, Y3, Y3
	VPCMPEQB Y5, Y1, Y4
	VPBLENDVB Y4, Y3, Y2, Y2
	VPADDB Y14, Y5, Y5
	ADDQ $32, DX
	DECQ R8
	JNZ lut_row
	VMOVDQU Y2, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $32, CX
	JNZ lut_loop
	VZEROUPPER
	RET

// func maxRowsAVX2(dst *byte, dstStride int, src *byte, srcStride, n, count, signed int)
// For count pixels: dst[p·dstStride + i] = max(dst[...], src[p·srcStride +
// i]) over n ≥ 32 bytes, in 32-byte chunks, the last one overlapping (max is
// idempotent).
TEXT ·maxRowsAVX2(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ src+16(FP), SI
	MOVQ n+32(FP), R9
	SUBQ $32, R9             // offset of the last chunk
	MOVQ count+40(FP), R10
	MOVQ signed+48(FP), R11
mx_pix:
	XORQ AX, AX
mx_chunk:
	CMPQ AX, R9
	JLE mx_ok
	MOVQ R9, AX
mx_ok:
	VMOVDQU (SI)(AX*1), Y0
	VMOVDQU (DI)(AX*1), Y1
	TESTQ R11, R11
	JZ mx_unsigned
	VPMAXSB Y0, Y1, Y1
	JMP mx_store
mx_unsigned:
	VPMAXUB Y0, Y1, Y1
mx_store:
	VMOVDQU Y1, (DI)(AX*1)
	CMPQ AX, R9
	JEQ mx_next
	ADDQ $32, AX
	JMP mx_chunk
mx_next:
	ADDQ dstStride+8(FP), DI
	ADDQ srcStride+24(FP), SI
	DECQ R10
	JNZ mx_pix
	VZEROUPPER
	RET
