#include "textflag.h"

// NEON micro-kernel for 32-bit ARM (armv7 with NEON, e.g. a Raspberry Pi
// 2/3/4 on a 32-bit OS), chosen when the CPU reports NEON; armv6 and CPUs
// without NEON use the pure-Go kernels. Go's 32-bit ARM assembler has no
// NEON mnemonics, so every vector instruction is a WORD encoding (ARM DDI
// 0406, A32 "Advanced SIMD"), its assembly in a comment. Products are
// int16×int16 accumulated in int32 by VMLAL.S16 (exact: operands are at
// most 255 in magnitude; the sums wrap as the reference's).

// func gemmNEON32(a *int16, kp int, w *int16, nb int, bias *int32, acc *int32, accStride int, tiles int)
// As gemmGo, one row at a time: for a pair (a0, a1) of the row, VLD1 to all
// lanes replicates it, VMLAL.S16 multiplies it lane by lane with the
// packed [16 channels][2] weights into per-(channel, parity) sums, and
// VPADD adds each channel's two parities at the end.
TEXT ·gemmNEON32(SB), NOSPLIT, $0-32
	MOVW tiles+28(FP), R8
	MOVW a+0(FP), R0          // row pointer
	MOVW accStride+24(FP), R7
	MOVW $4, R9
	MUL R9, R7                // acc row bytes
	MOVW acc+20(FP), R6       // acc row pointer
	MOVW R8, R9
	MOVW $4, R1
	MUL R1, R9                // rows = 4 × tiles

gemm_row:
	MOVW w+8(FP), R3          // weights, block 0
	MOVW bias+16(FP), R4
	MOVW R6, R5               // acc of this row, block 0
	MOVW nb+12(FP), R8

gemm_block:
	WORD $0xf3000150 // VEOR Q0, Q0, Q0
	WORD $0xf3022152 // VEOR Q1, Q1, Q1
	WORD $0xf3044154 // VEOR Q2, Q2, Q2
	WORD $0xf3066156 // VEOR Q3, Q3, Q3
	WORD $0xf3088158 // VEOR Q4, Q4, Q4
	WORD $0xf30aa15a // VEOR Q5, Q5, Q5
	WORD $0xf30cc15c // VEOR Q6, Q6, Q6
	WORD $0xf30ee15e // VEOR Q7, Q7, Q7
	MOVW R0, R2               // this row's pairs
	MOVW kp+4(FP), R12
	MOVW R12>>1, R12          // pairs

gemm_pair:
	WORD $0xf463024d // VLD1.16 {D16-D19}, [R3]!
	WORD $0xf463424d // VLD1.16 {D20-D23}, [R3]!
	WORD $0xf4e28cad // VLD1.32 {D24[], D25[]}, [R2]!
	WORD $0xf29008a8 // VMLAL.S16 Q0, D16, D24
	WORD $0xf29128a8 // VMLAL.S16 Q1, D17, D24
	WORD $0xf29248a8 // VMLAL.S16 Q2, D18, D24
	WORD $0xf29368a8 // VMLAL.S16 Q3, D19, D24
	WORD $0xf29488a8 // VMLAL.S16 Q4, D20, D24
	WORD $0xf295a8a8 // VMLAL.S16 Q5, D21, D24
	WORD $0xf296c8a8 // VMLAL.S16 Q6, D22, D24
	WORD $0xf297e8a8 // VMLAL.S16 Q7, D23, D24
	SUB.S $1, R12
	BNE gemm_pair

	WORD $0xf2600b11 // VPADD.I32 D16, D0, D1
	WORD $0xf2621b13 // VPADD.I32 D17, D2, D3
	WORD $0xf2642b15 // VPADD.I32 D18, D4, D5
	WORD $0xf2663b17 // VPADD.I32 D19, D6, D7
	WORD $0xf2684b19 // VPADD.I32 D20, D8, D9
	WORD $0xf26a5b1b // VPADD.I32 D21, D10, D11
	WORD $0xf26c6b1d // VPADD.I32 D22, D12, D13
	WORD $0xf26e7b1f // VPADD.I32 D23, D14, D15
	WORD $0xf464828d // VLD1.32 {D24-D27}, [R4]!
	WORD $0xf464c28d // VLD1.32 {D28-D31}, [R4]!
	WORD $0xf26008e8 // VADD.I32 Q8, Q8, Q12
	WORD $0xf26228ea // VADD.I32 Q9, Q9, Q13
	WORD $0xf26448ec // VADD.I32 Q10, Q10, Q14
	WORD $0xf26668ee // VADD.I32 Q11, Q11, Q15
	WORD $0xf445028d // VST1.32 {D16-D19}, [R5]!
	WORD $0xf445428d // VST1.32 {D20-D23}, [R5]!
	SUB.S $1, R8
	BNE gemm_block

	MOVW kp+4(FP), R1
	ADD R1<<1, R0             // next row of a
	ADD R7, R6                // next row of acc
	SUB.S $1, R9
	BNE gemm_row
	RET
