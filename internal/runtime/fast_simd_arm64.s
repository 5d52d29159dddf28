#include "textflag.h"

// NEON micro-kernels of the optimized int8/uint8 kernels (arm64). Products
// are int16×int16 accumulated in int32 by SMLAL/SMLAL2 (exact: operands are
// at most 255 in magnitude; the int32 sums wrap as the reference's).
// Go's arm64 assembler has no mnemonics for SMLAL, ADDP (vector), SSHL,
// SRSHL, SQRDMULH, SQADD, SSHR, SMAX, SMIN, NEG, XTN, SXTL and UXTL, so
// they are written as WORD encodings (ARM DDI 0487, "Advanced SIMD"), each
// with its assembly in a comment; fast_simd_arm64_test.go checks them
// against the pure-Go kernels under qemu.

// func gemmNEON(a *int16, kp int, w *int16, nb int, bias *int32, acc *int32, accStride int, tiles int)
// Packed blocks hold [pairs][16 channels][2] int16. For a pair (a0, a1) of
// a row, LD1R replicates it over the lanes, SMLAL/SMLAL2 multiply lane by
// lane (c·k0·a0, c·k1·a1, ...) into per-(channel, parity) sums, and ADDP
// adds each channel's two parities at the end. Two rows at a time.
TEXT ·gemmNEON(SB), NOSPLIT, $0-64
	MOVD a+0(FP), R0
	MOVD kp+8(FP), R2
	LSL $1, R2, R1            // row bytes
	LSR $1, R2, R2            // pairs
	MOVD acc+40(FP), R6
	MOVD accStride+48(FP), R7
	LSL $2, R7, R7            // acc row bytes
	MOVD tiles+56(FP), R8

gemm_tile:
	MOVD w+16(FP), R10
	MOVD bias+32(FP), R11
	MOVD nb+24(FP), R9
	MOVD R6, R12              // acc of row 0, this block

gemm_block:
	// rows 0 and 1
	MOVD R0, R14
	ADD R1, R14, R15
	VEOR V16.B16, V16.B16, V16.B16
	VEOR V17.B16, V17.B16, V17.B16
	VEOR V18.B16, V18.B16, V18.B16
	VEOR V19.B16, V19.B16, V19.B16
	VEOR V20.B16, V20.B16, V20.B16
	VEOR V21.B16, V21.B16, V21.B16
	VEOR V22.B16, V22.B16, V22.B16
	VEOR V23.B16, V23.B16, V23.B16
	VEOR V24.B16, V24.B16, V24.B16
	VEOR V25.B16, V25.B16, V25.B16
	VEOR V26.B16, V26.B16, V26.B16
	VEOR V27.B16, V27.B16, V27.B16
	VEOR V28.B16, V28.B16, V28.B16
	VEOR V29.B16, V29.B16, V29.B16
	VEOR V30.B16, V30.B16, V30.B16
	VEOR V31.B16, V31.B16, V31.B16
	MOVD R10, R16
	MOVD R2, R17
	CBZ R17, gemm_reduce0
gemm_pair0:
	VLD1.P 64(R16), [V0.H8, V1.H8, V2.H8, V3.H8]
	VLD1R.P 4(R14), [V4.S4]
	VLD1R.P 4(R15), [V5.S4]
	WORD $0x0e648010 // SMLAL V16.4S, V0.4H, V4.4H
	WORD $0x4e648011 // SMLAL2 V17.4S, V0.8H, V4.8H
	WORD $0x0e648032 // SMLAL V18.4S, V1.4H, V4.4H
	WORD $0x4e648033 // SMLAL2 V19.4S, V1.8H, V4.8H
	WORD $0x0e648054 // SMLAL V20.4S, V2.4H, V4.4H
	WORD $0x4e648055 // SMLAL2 V21.4S, V2.8H, V4.8H
	WORD $0x0e648076 // SMLAL V22.4S, V3.4H, V4.4H
	WORD $0x4e648077 // SMLAL2 V23.4S, V3.8H, V4.8H
	WORD $0x0e658018 // SMLAL V24.4S, V0.4H, V5.4H
	WORD $0x4e658019 // SMLAL2 V25.4S, V0.8H, V5.8H
	WORD $0x0e65803a // SMLAL V26.4S, V1.4H, V5.4H
	WORD $0x4e65803b // SMLAL2 V27.4S, V1.8H, V5.8H
	WORD $0x0e65805c // SMLAL V28.4S, V2.4H, V5.4H
	WORD $0x4e65805d // SMLAL2 V29.4S, V2.8H, V5.8H
	WORD $0x0e65807e // SMLAL V30.4S, V3.4H, V5.4H
	WORD $0x4e65807f // SMLAL2 V31.4S, V3.8H, V5.8H
	SUBS $1, R17, R17
	BNE gemm_pair0
gemm_reduce0:
	VLD1 (R11), [V8.S4, V9.S4, V10.S4, V11.S4]
	WORD $0x4eb1be00 // ADDP V0.4S, V16.4S, V17.4S
	VADD V8.S4, V0.S4, V0.S4
	WORD $0x4eb3be41 // ADDP V1.4S, V18.4S, V19.4S
	VADD V9.S4, V1.S4, V1.S4
	WORD $0x4eb5be82 // ADDP V2.4S, V20.4S, V21.4S
	VADD V10.S4, V2.S4, V2.S4
	WORD $0x4eb7bec3 // ADDP V3.4S, V22.4S, V23.4S
	VADD V11.S4, V3.S4, V3.S4
	WORD $0x4eb9bf04 // ADDP V4.4S, V24.4S, V25.4S
	VADD V8.S4, V4.S4, V4.S4
	WORD $0x4ebbbf45 // ADDP V5.4S, V26.4S, V27.4S
	VADD V9.S4, V5.S4, V5.S4
	WORD $0x4ebdbf86 // ADDP V6.4S, V28.4S, V29.4S
	VADD V10.S4, V6.S4, V6.S4
	WORD $0x4ebfbfc7 // ADDP V7.4S, V30.4S, V31.4S
	VADD V11.S4, V7.S4, V7.S4
	MOVD R12, R19
	VST1 [V0.S4, V1.S4, V2.S4, V3.S4], (R19)
	ADD R7, R19, R19
	VST1 [V4.S4, V5.S4, V6.S4, V7.S4], (R19)
	// rows 2 and 3
	ADD R1, R0, R14
	ADD R1, R14, R14
	ADD R1, R14, R15
	VEOR V16.B16, V16.B16, V16.B16
	VEOR V17.B16, V17.B16, V17.B16
	VEOR V18.B16, V18.B16, V18.B16
	VEOR V19.B16, V19.B16, V19.B16
	VEOR V20.B16, V20.B16, V20.B16
	VEOR V21.B16, V21.B16, V21.B16
	VEOR V22.B16, V22.B16, V22.B16
	VEOR V23.B16, V23.B16, V23.B16
	VEOR V24.B16, V24.B16, V24.B16
	VEOR V25.B16, V25.B16, V25.B16
	VEOR V26.B16, V26.B16, V26.B16
	VEOR V27.B16, V27.B16, V27.B16
	VEOR V28.B16, V28.B16, V28.B16
	VEOR V29.B16, V29.B16, V29.B16
	VEOR V30.B16, V30.B16, V30.B16
	VEOR V31.B16, V31.B16, V31.B16
	MOVD R10, R16
	MOVD R2, R17
	CBZ R17, gemm_reduce1
gemm_pair1:
	VLD1.P 64(R16), [V0.H8, V1.H8, V2.H8, V3.H8]
	VLD1R.P 4(R14), [V4.S4]
	VLD1R.P 4(R15), [V5.S4]
	WORD $0x0e648010 // SMLAL V16.4S, V0.4H, V4.4H
	WORD $0x4e648011 // SMLAL2 V17.4S, V0.8H, V4.8H
	WORD $0x0e648032 // SMLAL V18.4S, V1.4H, V4.4H
	WORD $0x4e648033 // SMLAL2 V19.4S, V1.8H, V4.8H
	WORD $0x0e648054 // SMLAL V20.4S, V2.4H, V4.4H
	WORD $0x4e648055 // SMLAL2 V21.4S, V2.8H, V4.8H
	WORD $0x0e648076 // SMLAL V22.4S, V3.4H, V4.4H
	WORD $0x4e648077 // SMLAL2 V23.4S, V3.8H, V4.8H
	WORD $0x0e658018 // SMLAL V24.4S, V0.4H, V5.4H
	WORD $0x4e658019 // SMLAL2 V25.4S, V0.8H, V5.8H
	WORD $0x0e65803a // SMLAL V26.4S, V1.4H, V5.4H
	WORD $0x4e65803b // SMLAL2 V27.4S, V1.8H, V5.8H
	WORD $0x0e65805c // SMLAL V28.4S, V2.4H, V5.4H
	WORD $0x4e65805d // SMLAL2 V29.4S, V2.8H, V5.8H
	WORD $0x0e65807e // SMLAL V30.4S, V3.4H, V5.4H
	WORD $0x4e65807f // SMLAL2 V31.4S, V3.8H, V5.8H
	SUBS $1, R17, R17
	BNE gemm_pair1
gemm_reduce1:
	VLD1 (R11), [V8.S4, V9.S4, V10.S4, V11.S4]
	WORD $0x4eb1be00 // ADDP V0.4S, V16.4S, V17.4S
	VADD V8.S4, V0.S4, V0.S4
	WORD $0x4eb3be41 // ADDP V1.4S, V18.4S, V19.4S
	VADD V9.S4, V1.S4, V1.S4
	WORD $0x4eb5be82 // ADDP V2.4S, V20.4S, V21.4S
	VADD V10.S4, V2.S4, V2.S4
	WORD $0x4eb7bec3 // ADDP V3.4S, V22.4S, V23.4S
	VADD V11.S4, V3.S4, V3.S4
	WORD $0x4eb9bf04 // ADDP V4.4S, V24.4S, V25.4S
	VADD V8.S4, V4.S4, V4.S4
	WORD $0x4ebbbf45 // ADDP V5.4S, V26.4S, V27.4S
	VADD V9.S4, V5.S4, V5.S4
	WORD $0x4ebdbf86 // ADDP V6.4S, V28.4S, V29.4S
	VADD V10.S4, V6.S4, V6.S4
	WORD $0x4ebfbfc7 // ADDP V7.4S, V30.4S, V31.4S
	VADD V11.S4, V7.S4, V7.S4
	ADD R7, R12, R19
	ADD R7, R19, R19
	VST1 [V0.S4, V1.S4, V2.S4, V3.S4], (R19)
	ADD R7, R19, R19
	VST1 [V4.S4, V5.S4, V6.S4, V7.S4], (R19)
	MOVD R16, R10             // the next block follows
	ADD $64, R11, R11
	ADD $64, R12, R12
	SUBS $1, R9, R9
	BNE gemm_block

	ADD R1<<2, R0, R0         // next 4 rows of a
	ADD R7<<2, R6, R6         // next 4 rows of acc
	SUBS $1, R8, R8
	BNE gemm_tile
	RET

// func requantNEON(acc *int32, n int, sig, lsh, rsh, mask, thr *int32, out *byte, zp, lo, hi, rows, accStride, outStride int)
// n a multiple of 8. SSHL by lsh (wrapping left shift); SQRDMULH, which is
// gemmlowp's SaturatingRoundingDoublingHighMul; RoundingDivideByPOT as
// TensorFlow Lite's NEON code does it, a -1 fix-up of negative values (never
// saturating: the high multiply's result is never MinInt32) and a rounding
// shift right SRSHL by -rsh; zero point, clamp, and narrowing of values
// already in range.
TEXT ·requantNEON(SB), NOSPLIT, $0-112
	MOVD zp+64(FP), R0
	VDUP R0, V28.S4
	MOVD lo+72(FP), R0
	VDUP R0, V29.S4
	MOVD hi+80(FP), R0
	VDUP R0, V30.S4
	MOVD acc+0(FP), R13
	MOVD out+56(FP), R14
	MOVD accStride+96(FP), R15
	LSL $2, R15, R15
	MOVD rows+88(FP), R16
	MOVD outStride+104(FP), R17

rq_row:
	MOVD R13, R0
	MOVD R14, R1
	MOVD n+8(FP), R2
	MOVD sig+16(FP), R3
	MOVD lsh+24(FP), R4
	MOVD rsh+32(FP), R5

rq_loop:
	VLD1.P 32(R0), [V0.S4, V1.S4]
	VLD1.P 32(R3), [V2.S4, V3.S4]
	VLD1.P 32(R4), [V4.S4, V5.S4]
	VLD1.P 32(R5), [V6.S4, V7.S4]
	WORD $0x4ea44400 // SSHL V0.4S, V0.4S, V4.4S
	WORD $0x6ea2b400 // SQRDMULH V0.4S, V0.4S, V2.4S
	WORD $0x6ea0b8c6 // NEG V6.4S, V6.4S
	WORD $0x4e261c08 // AND V8.16B, V0.16B, V6.16B
	WORD $0x4f210508 // SSHR V8.4S, V8.4S, #31
	WORD $0x4ea80c00 // SQADD V0.4S, V0.4S, V8.4S
	WORD $0x4ea65400 // SRSHL V0.4S, V0.4S, V6.4S
	VADD V28.S4, V0.S4, V0.S4
	WORD $0x4ebd6400 // SMAX V0.4S, V0.4S, V29.4S
	WORD $0x4ebe6c00 // SMIN V0.4S, V0.4S, V30.4S
	WORD $0x4ea54421 // SSHL V1.4S, V1.4S, V5.4S
	WORD $0x6ea3b421 // SQRDMULH V1.4S, V1.4S, V3.4S
	WORD $0x6ea0b8e7 // NEG V7.4S, V7.4S
	WORD $0x4e271c29 // AND V9.16B, V1.16B, V7.16B
	WORD $0x4f210529 // SSHR V9.4S, V9.4S, #31
	WORD $0x4ea90c21 // SQADD V1.4S, V1.4S, V9.4S
	WORD $0x4ea75421 // SRSHL V1.4S, V1.4S, V7.4S
	VADD V28.S4, V1.S4, V1.S4
	WORD $0x4ebd6421 // SMAX V1.4S, V1.4S, V29.4S
	WORD $0x4ebe6c21 // SMIN V1.4S, V1.4S, V30.4S
	WORD $0x0e61280a // XTN V10.4H, V0.4S
	WORD $0x4e61282a // XTN2 V10.8H, V1.4S
	WORD $0x0e21294b // XTN V11.8B, V10.8H
	VST1.P [V11.D1], 8(R1)
	SUBS $8, R2, R2
	BNE rq_loop

	ADD R15, R13, R13
	ADD R17, R14, R14
	SUBS $1, R16, R16
	BNE rq_row
	RET

// func widenInt8NEON(dst *int16, src *byte, n int)   n a multiple of 16
TEXT ·widenInt8NEON(SB), NOSPLIT, $0-24
	MOVD dst+0(FP), R0
	MOVD src+8(FP), R1
	MOVD n+16(FP), R2
widenInt8NEON_loop:
	VLD1.P 16(R1), [V0.B16]
	WORD $0x0f08a401 // SXTL V1.8H, V0.8B
	WORD $0x4f08a402 // SXTL2 V2.8H, V0.16B
	VST1.P [V1.H8, V2.H8], 32(R0)
	SUBS $16, R2, R2
	BNE widenInt8NEON_loop
	RET

// func widenUint8NEON(dst *int16, src *byte, n int)   n a multiple of 16
TEXT ·widenUint8NEON(SB), NOSPLIT, $0-24
	MOVD dst+0(FP), R0
	MOVD src+8(FP), R1
	MOVD n+16(FP), R2
widenUint8NEON_loop:
	VLD1.P 16(R1), [V0.B16]
	WORD $0x2f08a401 // UXTL V1.8H, V0.8B
	WORD $0x6f08a402 // UXTL2 V2.8H, V0.16B
	VST1.P [V1.H8, V2.H8], 32(R0)
	SUBS $16, R2, R2
	BNE widenUint8NEON_loop
	RET

// func dwRowNEON(base *int16, taps *int64, ntaps, cp int, w *int16, bias *int32, acc *int32, outW, xstride int)
// One output row of a depthwise convolution over int16 ring rows: for each
// output column and 8 channels, Σ over taps of input × weight (weights
// [tap][cp] int16) by SMLAL/SMLAL2, from the bias. taps: byte offsets from
// base for output column 0; xstride: bytes between output columns.
TEXT ·dwRowNEON(SB), NOSPLIT, $0-72
	MOVD base+0(FP), R0
	MOVD cp+24(FP), R9
	LSL $1, R9, R10           // bytes per tap of weights
	MOVD acc+48(FP), R1
	MOVD outW+56(FP), R2

dw_col:
	MOVD bias+40(FP), R3
	MOVD w+32(FP), R4
	MOVD $0, R5               // channel byte offset (int16)
	LSR $3, R9, R6            // blocks of 8 channels

dw_block:
	VLD1.P 32(R3), [V16.S4, V17.S4]
	MOVD taps+8(FP), R7
	ADD R5, R4, R11           // weights of this block, tap 0
	MOVD ntaps+16(FP), R8

dw_tap:
	MOVD.P 8(R7), R12
	ADD R0, R12, R12
	ADD R5, R12, R12
	VLD1 (R12), [V0.H8]
	VLD1 (R11), [V2.H8]
	ADD R10, R11, R11
	WORD $0x0e628010 // SMLAL V16.4S, V0.4H, V2.4H
	WORD $0x4e628011 // SMLAL2 V17.4S, V0.8H, V2.8H
	SUBS $1, R8, R8
	BNE dw_tap

	VST1.P [V16.S4, V17.S4], 32(R1)
	ADD $16, R5, R5
	SUBS $1, R6, R6
	BNE dw_block

	MOVD xstride+64(FP), R12
	ADD R12, R0, R0
	SUBS $1, R2, R2
	BNE dw_col
	RET

// func int8PeakNEON(iters int)
// The exact int8 multiply-accumulate peak: 16 independent SMLAL/SMLAL2
// (4 multiply-accumulates each) per iteration.
TEXT ·int8PeakNEON(SB), NOSPLIT, $0-8
	MOVD iters+0(FP), R0
peak_loop:
	WORD $0x0e618010 // SMLAL V16.4S, V0.4H, V1.4H
	WORD $0x4e618011 // SMLAL2 V17.4S, V0.8H, V1.8H
	WORD $0x0e618012 // SMLAL V18.4S, V0.4H, V1.4H
	WORD $0x4e618013 // SMLAL2 V19.4S, V0.8H, V1.8H
	WORD $0x0e618014 // SMLAL V20.4S, V0.4H, V1.4H
	WORD $0x4e618015 // SMLAL2 V21.4S, V0.8H, V1.8H
	WORD $0x0e618016 // SMLAL V22.4S, V0.4H, V1.4H
	WORD $0x4e618017 // SMLAL2 V23.4S, V0.8H, V1.8H
	WORD $0x0e618018 // SMLAL V24.4S, V0.4H, V1.4H
	WORD $0x4e618019 // SMLAL2 V25.4S, V0.8H, V1.8H
	WORD $0x0e61801a // SMLAL V26.4S, V0.4H, V1.4H
	WORD $0x4e61801b // SMLAL2 V27.4S, V0.8H, V1.8H
	WORD $0x0e61801c // SMLAL V28.4S, V0.4H, V1.4H
	WORD $0x4e61801d // SMLAL2 V29.4S, V0.8H, V1.8H
	WORD $0x0e61801e // SMLAL V30.4S, V0.4H, V1.4H
	WORD $0x4e61801f // SMLAL2 V31.4S, V0.8H, V1.8H
	SUBS $1, R0, R0
	BNE peak_loop
	RET

// func gemmDotNEON(a *int16, kp int, w *int8, nb int, bias *int32, acc *int32, accStride int, tiles int)
// The micro-kernel for int8 models on CPUs with the dot-product extension
// (Raspberry Pi 5): rows of a (int8 values widened to int16, kp a multiple
// of 16) are narrowed back with XTN/XTN2, and SDOT (by element) multiplies
// 4 consecutive depth values of a row with 4 of each of 4 channels and adds
// the sum to the channel's int32 (exact: 4·128·128 fits easily; the sums
// wrap as the reference's). Packed blocks hold, per 16 depth values, 4
// groups of 4 × [4 channels][4 depth values] int8. 4 rows × 16 channels.
TEXT ·gemmDotNEON(SB), NOSPLIT, $0-64
	MOVD a+0(FP), R0
	MOVD kp+8(FP), R2
	LSL $1, R2, R1            // row bytes
	LSR $4, R2, R2            // chunks of 16 depth values
	MOVD acc+40(FP), R6
	MOVD accStride+48(FP), R7
	LSL $2, R7, R7            // acc row bytes
	MOVD tiles+56(FP), R8

dot_tile:
	MOVD w+16(FP), R10
	MOVD bias+32(FP), R11
	MOVD nb+24(FP), R9
	MOVD R6, R12

dot_block:
	VLD1 (R11), [V0.S4, V1.S4, V2.S4, V3.S4]
	VMOV V0.B16, V16.B16
	VMOV V1.B16, V17.B16
	VMOV V2.B16, V18.B16
	VMOV V3.B16, V19.B16
	VMOV V0.B16, V20.B16
	VMOV V1.B16, V21.B16
	VMOV V2.B16, V22.B16
	VMOV V3.B16, V23.B16
	VMOV V0.B16, V24.B16
	VMOV V1.B16, V25.B16
	VMOV V2.B16, V26.B16
	VMOV V3.B16, V27.B16
	VMOV V0.B16, V28.B16
	VMOV V1.B16, V29.B16
	VMOV V2.B16, V30.B16
	VMOV V3.B16, V31.B16
	MOVD R0, R13
	ADD R1, R13, R14
	ADD R1, R14, R15
	ADD R1, R15, R16
	MOVD R2, R17

dot_chunk:
	VLD1.P 32(R13), [V4.H8, V5.H8]
	WORD $0x0e212888 // XTN V8.8B, V4.8H
	WORD $0x4e2128a8 // XTN2 V8.16B, V5.8H
	VLD1.P 32(R14), [V4.H8, V5.H8]
	WORD $0x0e212889 // XTN V9.8B, V4.8H
	WORD $0x4e2128a9 // XTN2 V9.16B, V5.8H
	VLD1.P 32(R15), [V4.H8, V5.H8]
	WORD $0x0e21288a // XTN V10.8B, V4.8H
	WORD $0x4e2128aa // XTN2 V10.16B, V5.8H
	VLD1.P 32(R16), [V4.H8, V5.H8]
	WORD $0x0e21288b // XTN V11.8B, V4.8H
	WORD $0x4e2128ab // XTN2 V11.16B, V5.8H
	VLD1.P 64(R10), [V0.B16, V1.B16, V2.B16, V3.B16]
	WORD $0x4f88e010 // SDOT V16.4S, V0.16B, V8.4B[0]
	WORD $0x4f88e031 // SDOT V17.4S, V1.16B, V8.4B[0]
	WORD $0x4f88e052 // SDOT V18.4S, V2.16B, V8.4B[0]
	WORD $0x4f88e073 // SDOT V19.4S, V3.16B, V8.4B[0]
	WORD $0x4f89e014 // SDOT V20.4S, V0.16B, V9.4B[0]
	WORD $0x4f89e035 // SDOT V21.4S, V1.16B, V9.4B[0]
	WORD $0x4f89e056 // SDOT V22.4S, V2.16B, V9.4B[0]
	WORD $0x4f89e077 // SDOT V23.4S, V3.16B, V9.4B[0]
	WORD $0x4f8ae018 // SDOT V24.4S, V0.16B, V10.4B[0]
	WORD $0x4f8ae039 // SDOT V25.4S, V1.16B, V10.4B[0]
	WORD $0x4f8ae05a // SDOT V26.4S, V2.16B, V10.4B[0]
	WORD $0x4f8ae07b // SDOT V27.4S, V3.16B, V10.4B[0]
	WORD $0x4f8be01c // SDOT V28.4S, V0.16B, V11.4B[0]
	WORD $0x4f8be03d // SDOT V29.4S, V1.16B, V11.4B[0]
	WORD $0x4f8be05e // SDOT V30.4S, V2.16B, V11.4B[0]
	WORD $0x4f8be07f // SDOT V31.4S, V3.16B, V11.4B[0]
	VLD1.P 64(R10), [V0.B16, V1.B16, V2.B16, V3.B16]
	WORD $0x4fa8e010 // SDOT V16.4S, V0.16B, V8.4B[1]
	WORD $0x4fa8e031 // SDOT V17.4S, V1.16B, V8.4B[1]
	WORD $0x4fa8e052 // SDOT V18.4S, V2.16B, V8.4B[1]
	WORD $0x4fa8e073 // SDOT V19.4S, V3.16B, V8.4B[1]
	WORD $0x4fa9e014 // SDOT V20.4S, V0.16B, V9.4B[1]
	WORD $0x4fa9e035 // SDOT V21.4S, V1.16B, V9.4B[1]
	WORD $0x4fa9e056 // SDOT V22.4S, V2.16B, V9.4B[1]
	WORD $0x4fa9e077 // SDOT V23.4S, V3.16B, V9.4B[1]
	WORD $0x4faae018 // SDOT V24.4S, V0.16B, V10.4B[1]
	WORD $0x4faae039 // SDOT V25.4S, V1.16B, V10.4B[1]
	WORD $0x4faae05a // SDOT V26.4S, V2.16B, V10.4B[1]
	WORD $0x4faae07b // SDOT V27.4S, V3.16B, V10.4B[1]
	WORD $0x4fabe01c // SDOT V28.4S, V0.16B, V11.4B[1]
	WORD $0x4fabe03d // SDOT V29.4S, V1.16B, V11.4B[1]
	WORD $0x4fabe05e // SDOT V30.4S, V2.16B, V11.4B[1]
	WORD $0x4fabe07f // SDOT V31.4S, V3.16B, V11.4B[1]
	VLD1.P 64(R10), [V0.B16, V1.B16, V2.B16, V3.B16]
	WORD $0x4f88e810 // SDOT V16.4S, V0.16B, V8.4B[2]
	WORD $0x4f88e831 // SDOT V17.4S, V1.16B, V8.4B[2]
	WORD $0x4f88e852 // SDOT V18.4S, V2.16B, V8.4B[2]
	WORD $0x4f88e873 // SDOT V19.4S, V3.16B, V8.4B[2]
	WORD $0x4f89e814 // SDOT V20.4S, V0.16B, V9.4B[2]
	WORD $0x4f89e835 // SDOT V21.4S, V1.16B, V9.4B[2]
	WORD $0x4f89e856 // SDOT V22.4S, V2.16B, V9.4B[2]
	WORD $0x4f89e877 // SDOT V23.4S, V3.16B, V9.4B[2]
	WORD $0x4f8ae818 // SDOT V24.4S, V0.16B, V10.4B[2]
	WORD $0x4f8ae839 // SDOT V25.4S, V1.16B, V10.4B[2]
	WORD $0x4f8ae85a // SDOT V26.4S, V2.16B, V10.4B[2]
	WORD $0x4f8ae87b // SDOT V27.4S, V3.16B, V10.4B[2]
	WORD $0x4f8be81c // SDOT V28.4S, V0.16B, V11.4B[2]
	WORD $0x4f8be83d // SDOT V29.4S, V1.16B, V11.4B[2]
	WORD $0x4f8be85e // SDOT V30.4S, V2.16B, V11.4B[2]
	WORD $0x4f8be87f // SDOT V31.4S, V3.16B, V11.4B[2]
	VLD1.P 64(R10), [V0.B16, V1.B16, V2.B16, V3.B16]
	WORD $0x4fa8e810 // SDOT V16.4S, V0.16B, V8.4B[3]
	WORD $0x4fa8e831 // SDOT V17.4S, V1.16B, V8.4B[3]
	WORD $0x4fa8e852 // SDOT V18.4S, V2.16B, V8.4B[3]
	WORD $0x4fa8e873 // SDOT V19.4S, V3.16B, V8.4B[3]
	WORD $0x4fa9e814 // SDOT V20.4S, V0.16B, V9.4B[3]
	WORD $0x4fa9e835 // SDOT V21.4S, V1.16B, V9.4B[3]
	WORD $0x4fa9e856 // SDOT V22.4S, V2.16B, V9.4B[3]
	WORD $0x4fa9e877 // SDOT V23.4S, V3.16B, V9.4B[3]
	WORD $0x4faae818 // SDOT V24.4S, V0.16B, V10.4B[3]
	WORD $0x4faae839 // SDOT V25.4S, V1.16B, V10.4B[3]
	WORD $0x4faae85a // SDOT V26.4S, V2.16B, V10.4B[3]
	WORD $0x4faae87b // SDOT V27.4S, V3.16B, V10.4B[3]
	WORD $0x4fabe81c // SDOT V28.4S, V0.16B, V11.4B[3]
	WORD $0x4fabe83d // SDOT V29.4S, V1.16B, V11.4B[3]
	WORD $0x4fabe85e // SDOT V30.4S, V2.16B, V11.4B[3]
	WORD $0x4fabe87f // SDOT V31.4S, V3.16B, V11.4B[3]
	SUBS $1, R17, R17
	BNE dot_chunk

	MOVD R12, R19
	VST1 [V16.S4, V17.S4, V18.S4, V19.S4], (R19)
	ADD R7, R19, R19
	VST1 [V20.S4, V21.S4, V22.S4, V23.S4], (R19)
	ADD R7, R19, R19
	VST1 [V24.S4, V25.S4, V26.S4, V27.S4], (R19)
	ADD R7, R19, R19
	VST1 [V28.S4, V29.S4, V30.S4, V31.S4], (R19)
	ADD $64, R11, R11
	ADD $64, R12, R12
	SUBS $1, R9, R9
	BNE dot_block

	ADD R1<<2, R0, R0
	ADD R7<<2, R6, R6
	SUBS $1, R8, R8
	BNE dot_tile
	RET

