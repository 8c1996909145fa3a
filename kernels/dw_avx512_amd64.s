//go:build amd64

#include "textflag.h"

// Depthwise convolution kernels for AVX-512; see depthwise.go for the
// scratch layout. Columns go 64 at a time (four accumulators), then 16 at
// a time, then one masked step for the rest.

// func dwRows512(dst, src *float32, offs *int, w *float32, taps, n, rows, srcStep, dstStep int)
//
// dst[r*dstStep+i] = sum_t w[t] * src[r*srcStep+offs[t]+i] for i < n, r < rows.
TEXT ·dwRows512(SB), NOSPLIT, $0-72
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ offs+16(FP), R8
	MOVQ w+24(FP), R9
	MOVQ taps+32(FP), R10
	MOVQ n+40(FP), R11
	MOVQ rows+48(FP), R12
	MOVQ srcStep+56(FP), R13
	SHLQ $2, R13
	MOVQ dstStep+64(FP), R14
	SHLQ $2, R14
	// K1 = mask of the n%16 tail columns.
	MOVQ R11, CX
	ANDQ $15, CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1
rows_loop:
	TESTQ R12, R12
	JZ rows_done
	XORQ BX, BX // column offset in bytes
	MOVQ R11, CX // columns left
rows_c64:
	CMPQ CX, $64
	JL rows_c16
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	XORQ DX, DX
rows_t64:
	VBROADCASTSS (R9)(DX*4), Z8
	MOVQ (R8)(DX*8), AX
	LEAQ (SI)(AX*4), AX
	ADDQ BX, AX
	VFMADD231PS (AX), Z8, Z0
	VFMADD231PS 64(AX), Z8, Z1
	VFMADD231PS 128(AX), Z8, Z2
	VFMADD231PS 192(AX), Z8, Z3
	INCQ DX
	CMPQ DX, R10
	JL rows_t64
	VMOVUPS Z0, (DI)(BX*1)
	VMOVUPS Z1, 64(DI)(BX*1)
	VMOVUPS Z2, 128(DI)(BX*1)
	VMOVUPS Z3, 192(DI)(BX*1)
	ADDQ $256, BX
	SUBQ $64, CX
	JMP rows_c64
rows_c16:
	CMPQ CX, $16
	JL rows_tail
	VPXORD Z0, Z0, Z0
	XORQ DX, DX
rows_t16:
	VBROADCASTSS (R9)(DX*4), Z8
	MOVQ (R8)(DX*8), AX
	LEAQ (SI)(AX*4), AX
	VFMADD231PS (AX)(BX*1), Z8, Z0
	INCQ DX
	CMPQ DX, R10
	JL rows_t16
	VMOVUPS Z0, (DI)(BX*1)
	ADDQ $64, BX
	SUBQ $16, CX
	JMP rows_c16
rows_tail:
	TESTQ CX, CX
	JZ rows_next
	VPXORD Z0, Z0, Z0
	XORQ DX, DX
rows_tt:
	VBROADCASTSS (R9)(DX*4), Z8
	MOVQ (R8)(DX*8), AX
	LEAQ (SI)(AX*4), AX
	VFMADD231PS (AX)(BX*1), Z8, K1, Z0
	INCQ DX
	CMPQ DX, R10
	JL rows_tt
	VMOVUPS Z0, K1, (DI)(BX*1)
rows_next:
	ADDQ R13, SI
	ADDQ R14, DI
	DECQ R12
	JMP rows_loop
rows_done:
	VZEROUPPER
	RET

// func dwDot512(src, dy *float32, offs *int, taps, n, rows, srcStep, dyStep int, out *float32)
//
// out[t] += sum_r sum_i dy[r*dyStep+i] * src[r*srcStep+offs[t]+i].
TEXT ·dwDot512(SB), NOSPLIT, $0-72
	MOVQ offs+16(FP), R8
	MOVQ taps+24(FP), R10
	MOVQ n+32(FP), R11
	MOVQ srcStep+48(FP), R13
	SHLQ $2, R13
	MOVQ dyStep+56(FP), R14
	SHLQ $2, R14
	MOVQ out+64(FP), R9
	MOVQ R11, CX
	ANDQ $15, CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1
	XORQ DX, DX // tap
dot_tap:
	CMPQ DX, R10
	JGE dot_done
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	MOVQ (R8)(DX*8), AX
	MOVQ src+0(FP), SI
	LEAQ (SI)(AX*4), SI // tap's source row pointer
	MOVQ dy+8(FP), DI
	MOVQ rows+40(FP), R12
dot_row:
	TESTQ R12, R12
	JZ dot_reduce
	XORQ BX, BX
	MOVQ R11, CX
dot_c64:
	CMPQ CX, $64
	JL dot_c16
	VMOVUPS (DI)(BX*1), Z4
	VMOVUPS 64(DI)(BX*1), Z5
	VMOVUPS 128(DI)(BX*1), Z6
	VMOVUPS 192(DI)(BX*1), Z7
	VFMADD231PS (SI)(BX*1), Z4, Z0
	VFMADD231PS 64(SI)(BX*1), Z5, Z1
	VFMADD231PS 128(SI)(BX*1), Z6, Z2
	VFMADD231PS 192(SI)(BX*1), Z7, Z3
	ADDQ $256, BX
	SUBQ $64, CX
	JMP dot_c64
dot_c16:
	CMPQ CX, $16
	JL dot_tail
	VMOVUPS (DI)(BX*1), Z4
	VFMADD231PS (SI)(BX*1), Z4, Z0
	ADDQ $64, BX
	SUBQ $16, CX
	JMP dot_c16
dot_tail:
	TESTQ CX, CX
	JZ dot_nextrow
	VMOVUPS.Z (DI)(BX*1), K1, Z4
	VMOVUPS.Z (SI)(BX*1), K1, Z5
	VFMADD231PS Z5, Z4, Z1
dot_nextrow:
	ADDQ R13, SI
	ADDQ R14, DI
	DECQ R12
	JMP dot_row
dot_reduce:
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z2, Z0, Z0
	VEXTRACTF32X8 $1, Z0, Y1
	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVHLPS X0, X0, X1
	VADDPS X1, X0, X0
	VMOVSHDUP X0, X1
	VADDSS X1, X0, X0
	VADDSS (R9)(DX*4), X0, X0
	VMOVSS X0, (R9)(DX*4)
	INCQ DX
	JMP dot_tap
dot_done:
	VZEROUPPER
	RET

// Even-lane indices for VPERMT2PS: lanes 0..15 pick elements 0,2,...,30 of
// the 32-element table formed by two registers.
DATA evenIdx<>+0(SB)/4, $0
DATA evenIdx<>+4(SB)/4, $2
DATA evenIdx<>+8(SB)/4, $4
DATA evenIdx<>+12(SB)/4, $6
DATA evenIdx<>+16(SB)/4, $8
DATA evenIdx<>+20(SB)/4, $10
DATA evenIdx<>+24(SB)/4, $12
DATA evenIdx<>+28(SB)/4, $14
DATA evenIdx<>+32(SB)/4, $16
DATA evenIdx<>+36(SB)/4, $18
DATA evenIdx<>+40(SB)/4, $20
DATA evenIdx<>+44(SB)/4, $22
DATA evenIdx<>+48(SB)/4, $24
DATA evenIdx<>+52(SB)/4, $26
DATA evenIdx<>+56(SB)/4, $28
DATA evenIdx<>+60(SB)/4, $30
GLOBL evenIdx<>(SB), RODATA|NOPTR, $64

// func gather2x512(dst, src *float32, n int)
//
// dst[i] = src[2*i] for i < n; reads src[0 : 2n-1] only.
TEXT ·gather2x512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VMOVDQU32 evenIdx<>(SB), Z9
g2_loop:
	CMPQ CX, $16
	JLE g2_tail
	VMOVUPS (SI), Z1
	VPERMT2PS 64(SI), Z9, Z1
	VMOVUPS Z1, (DI)
	ADDQ $128, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP g2_loop
g2_tail:
	TESTQ CX, CX
	JZ g2_done
	// Load the 2n-1 needed elements under a 32-bit mask.
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K3
	SHLQ $1, CX
	DECQ CX
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX
	KMOVW AX, K1
	SHRQ $16, AX
	KMOVW AX, K2
	VMOVUPS.Z (SI), K1, Z1
	VMOVUPS.Z 64(SI), K2, Z2
	VPERMT2PS Z2, Z9, Z1
	VMOVUPS Z1, K3, (DI)
g2_done:
	VZEROUPPER
	RET

// func spread2x512(dst, src *float32, n int)
//
// dst[2*i] = src[i] for i < n and dst[2*i+1] = 0 for i < n-1.
TEXT ·spread2x512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
s2_loop:
	CMPQ CX, $8
	JLE s2_tail
	VPMOVZXDQ (SI), Z1
	VMOVUPS Z1, (DI)
	ADDQ $32, SI
	ADDQ $64, DI
	SUBQ $8, CX
	JMP s2_loop
s2_tail:
	TESTQ CX, CX
	JZ s2_done
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1
	SHLQ $1, CX
	DECQ CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K2
	VMOVUPS.Z (SI), K1, Y1
	VPMOVZXDQ Y1, Z1
	VMOVUPS Z1, K2, (DI)
s2_done:
	VZEROUPPER
	RET
