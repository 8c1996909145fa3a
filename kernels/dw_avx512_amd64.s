//go:build amd64

#include "textflag.h"
#include "asm_amd64.h"

// Depthwise convolution kernels for AVX-512; see depthwise.go for the
// scratch layout. Columns go 64 at a time (four accumulators), then 16 at
// a time, then one masked step for the rest.

// MASKS64 sets K1..K4 to the lanes of the next min(CX, 64) columns
// (CX > 0). Clobbers AX.
#define MASKS64 \
	MOVQ $-1, AX \
	CMPQ CX, $64 \
	JGE 4(PC) \
	LOWBITS(AX) \
	KMOVW AX, K1 \
	SHRQ $16, AX \
	KMOVW AX, K2 \
	SHRQ $16, AX \
	KMOVW AX, K3 \
	SHRQ $16, AX \
	KMOVW AX, K4

// TAPSRC sets AX to the current tap's source pointer at column offset BX:
// SI + offs[DX]*4 + BX.
#define TAPSRC \
	MOVQ (R8)(DX*8), AX \
	LEAQ (SI)(AX*4), AX \
	ADDQ BX, AX

// func dwRows512(dst, src *float32, offs *int, w *float32, taps, n, rows, srcStep, dstStep int)
//
// dst[r*dstStep+i] = sum_t w[t] * src[r*srcStep+offs[t]+i] for i < n, r < rows.
// Columns go in blocks of up to 64 (four masked accumulators), or 32 or 16
// for narrow remainders so that short rows do not waste FMA slots.
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
rows_loop:
	TESTQ R12, R12
	JZ rows_done
	XORQ BX, BX // column offset in bytes
	MOVQ R11, CX // columns left
rows_blk:
	TESTQ CX, CX
	JLE rows_next
	MASKS64
	XORQ DX, DX
	CMPQ CX, $16
	JLE rows_b16
	CMPQ CX, $32
	JLE rows_b32
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
rows_t64:
	VBROADCASTSS (R9)(DX*4), Z8
	TAPSRC
	VFMADD231PS (AX), Z8, K1, Z0
	VFMADD231PS 64(AX), Z8, K2, Z1
	VFMADD231PS 128(AX), Z8, K3, Z2
	VFMADD231PS 192(AX), Z8, K4, Z3
	INCQ DX
	CMPQ DX, R10
	JL rows_t64
	VMOVUPS Z0, K1, (DI)(BX*1)
	VMOVUPS Z1, K2, 64(DI)(BX*1)
	VMOVUPS Z2, K3, 128(DI)(BX*1)
	VMOVUPS Z3, K4, 192(DI)(BX*1)
	ADDQ $256, BX
	SUBQ $64, CX
	JMP rows_blk
rows_b32:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
rows_t32:
	VBROADCASTSS (R9)(DX*4), Z8
	TAPSRC
	VFMADD231PS (AX), Z8, K1, Z0
	VFMADD231PS 64(AX), Z8, K2, Z1
	INCQ DX
	CMPQ DX, R10
	JL rows_t32
	VMOVUPS Z0, K1, (DI)(BX*1)
	VMOVUPS Z1, K2, 64(DI)(BX*1)
	JMP rows_next
rows_b16:
	VPXORD Z0, Z0, Z0
rows_t16:
	VBROADCASTSS (R9)(DX*4), Z8
	TAPSRC
	VFMADD231PS (AX), Z8, K1, Z0
	INCQ DX
	CMPQ DX, R10
	JL rows_t16
	VMOVUPS Z0, K1, (DI)(BX*1)
rows_next:
	ADDQ R13, SI
	ADDQ R14, DI
	DECQ R12
	JMP rows_loop
rows_done:
	VZEROUPPER
	RET

// DOTBLK adds one block of up to 64 columns of a row (dy at DI, source at
// SI, offset BX, masks K1..K4) into accumulators a0..a3.
#define DOTBLK(a0, a1, a2, a3) \
	VMOVUPS.Z (DI)(BX*1), K1, Z16 \
	VMOVUPS.Z 64(DI)(BX*1), K2, Z17 \
	VMOVUPS.Z 128(DI)(BX*1), K3, Z18 \
	VMOVUPS.Z 192(DI)(BX*1), K4, Z19 \
	VFMADD231PS (SI)(BX*1), Z16, K1, a0 \
	VFMADD231PS 64(SI)(BX*1), Z17, K2, a1 \
	VFMADD231PS 128(SI)(BX*1), Z18, K3, a2 \
	VFMADD231PS 192(SI)(BX*1), Z19, K4, a3

// DOTBLK32 is DOTBLK for at most 32 columns.
#define DOTBLK32(a0, a1) \
	VMOVUPS.Z (DI)(BX*1), K1, Z16 \
	VMOVUPS.Z 64(DI)(BX*1), K2, Z17 \
	VFMADD231PS (SI)(BX*1), Z16, K1, a0 \
	VFMADD231PS 64(SI)(BX*1), Z17, K2, a1

// DOTBLK16 is DOTBLK for at most 16 columns.
#define DOTBLK16(a0) \
	VMOVUPS.Z (DI)(BX*1), K1, Z16 \
	VFMADD231PS (SI)(BX*1), Z16, K1, a0

// func dwDot512(src, dy *float32, offs *int, taps, n, rows, srcStep, dyStep int, out *float32)
//
// out[t] += sum_r sum_i dy[r*dyStep+i] * src[r*srcStep+offs[t]+i].
// Even and odd rows use separate accumulators to halve the FMA chains.
TEXT ·dwDot512(SB), NOSPLIT, $0-72
	MOVQ offs+16(FP), R8
	MOVQ taps+24(FP), R10
	MOVQ n+32(FP), R11
	MOVQ srcStep+48(FP), R13
	SHLQ $2, R13
	MOVQ dyStep+56(FP), R14
	SHLQ $2, R14
	MOVQ out+64(FP), R9
	XORQ DX, DX // tap
dot_tap:
	CMPQ DX, R10
	JGE dot_done
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
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
dot_blk:
	TESTQ CX, CX
	JLE dot_row2
	MASKS64
	CMPQ CX, $16
	JLE dot_b16
	CMPQ CX, $32
	JLE dot_b32
	DOTBLK(Z0, Z1, Z2, Z3)
	ADDQ $256, BX
	SUBQ $64, CX
	JMP dot_blk
dot_b32:
	DOTBLK32(Z0, Z1)
	JMP dot_row2
dot_b16:
	DOTBLK16(Z0)
dot_row2:
	ADDQ R13, SI
	ADDQ R14, DI
	DECQ R12
	JZ dot_reduce
	XORQ BX, BX
	MOVQ R11, CX
dot_blk2:
	TESTQ CX, CX
	JLE dot_next
	MASKS64
	CMPQ CX, $16
	JLE dot_b16b
	CMPQ CX, $32
	JLE dot_b32b
	DOTBLK(Z4, Z5, Z6, Z7)
	ADDQ $256, BX
	SUBQ $64, CX
	JMP dot_blk2
dot_b32b:
	DOTBLK32(Z4, Z5)
	JMP dot_next
dot_b16b:
	DOTBLK16(Z4)
dot_next:
	ADDQ R13, SI
	ADDQ R14, DI
	DECQ R12
	JMP dot_row
dot_reduce:
	VADDPS Z4, Z0, Z0
	VADDPS Z5, Z1, Z1
	VADDPS Z6, Z2, Z2
	VADDPS Z7, Z3, Z3
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z2, Z0, Z0
	HSUMZ0
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
	LOWBITS(AX)
	KMOVW AX, K1
	SHLQ $1, CX
	DECQ CX
	LOWBITS(AX)
	KMOVW AX, K2
	VMOVUPS.Z (SI), K1, Z1
	VPMOVZXDQ Y1, Z1
	VMOVUPS Z1, K2, (DI)
s2_done:
	VZEROUPPER
	RET

DATA oddIdx<>+0(SB)/4, $1
DATA oddIdx<>+4(SB)/4, $3
DATA oddIdx<>+8(SB)/4, $5
DATA oddIdx<>+12(SB)/4, $7
DATA oddIdx<>+16(SB)/4, $9
DATA oddIdx<>+20(SB)/4, $11
DATA oddIdx<>+24(SB)/4, $13
DATA oddIdx<>+28(SB)/4, $15
DATA oddIdx<>+32(SB)/4, $17
DATA oddIdx<>+36(SB)/4, $19
DATA oddIdx<>+40(SB)/4, $21
DATA oddIdx<>+44(SB)/4, $23
DATA oddIdx<>+48(SB)/4, $25
DATA oddIdx<>+52(SB)/4, $27
DATA oddIdx<>+56(SB)/4, $29
DATA oddIdx<>+60(SB)/4, $31
GLOBL oddIdx<>(SB), RODATA|NOPTR, $64

// func deint2x512(even, odd, src *float32, n int)
//
// even[i] = src[2i] and odd[i] = src[2i+1] for the indices below n.
TEXT ·deint2x512(SB), NOSPLIT, $0-32
	MOVQ even+0(FP), DI
	MOVQ odd+8(FP), DX
	MOVQ src+16(FP), SI
	MOVQ n+24(FP), CX
	VMOVDQU32 evenIdx<>(SB), Z9
	VMOVDQU32 oddIdx<>(SB), Z10
di_loop:
	CMPQ CX, $32
	JL di_tail
	VMOVUPS (SI), Z1
	VMOVUPS 64(SI), Z2
	VMOVAPS Z1, Z3
	VPERMT2PS Z2, Z9, Z1
	VPERMT2PS Z2, Z10, Z3
	VMOVUPS Z1, (DI)
	VMOVUPS Z3, (DX)
	ADDQ $128, SI
	ADDQ $64, DI
	ADDQ $64, DX
	SUBQ $32, CX
	JMP di_loop
di_tail:
	TESTQ CX, CX
	JZ di_done
	LOWBITS(AX)
	KMOVW AX, K1
	SHRQ $16, AX
	KMOVW AX, K2
	VMOVUPS.Z (SI), K1, Z1
	VMOVUPS.Z 64(SI), K2, Z2
	VMOVAPS Z1, Z3
	VPERMT2PS Z2, Z9, Z1
	VPERMT2PS Z2, Z10, Z3
	// ceil(n/2) evens and floor(n/2) odds.
	MOVQ CX, BX
	INCQ CX
	SHRQ $1, CX
	LOWBITS(AX)
	KMOVW AX, K3
	MOVQ BX, CX
	SHRQ $1, CX
	LOWBITS(AX)
	KMOVW AX, K4
	VMOVUPS Z1, K3, (DI)
	VMOVUPS Z3, K4, (DX)
di_done:
	VZEROUPPER
	RET
