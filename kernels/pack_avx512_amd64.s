//go:build amd64

#include "textflag.h"
#include "asm_amd64.h"

DATA iota16<>+0(SB)/4, $0
DATA iota16<>+4(SB)/4, $1
DATA iota16<>+8(SB)/4, $2
DATA iota16<>+12(SB)/4, $3
DATA iota16<>+16(SB)/4, $4
DATA iota16<>+20(SB)/4, $5
DATA iota16<>+24(SB)/4, $6
DATA iota16<>+28(SB)/4, $7
DATA iota16<>+32(SB)/4, $8
DATA iota16<>+36(SB)/4, $9
DATA iota16<>+40(SB)/4, $10
DATA iota16<>+44(SB)/4, $11
DATA iota16<>+48(SB)/4, $12
DATA iota16<>+52(SB)/4, $13
DATA iota16<>+56(SB)/4, $14
DATA iota16<>+60(SB)/4, $15
GLOBL iota16<>(SB), RODATA|NOPTR, $64

// func packT512(dst, src *float32, ld, rows, kc, width int)
//
// Transposing pack: dst[p*width+r] = src[r*ld+p] for p < kc and r < rows,
// and 0 for rows <= r < width. rows <= width and width is 32 or at most
// 16. Each depth step gathers the values of all rows at once.
TEXT ·packT512(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), AX
	MOVQ rows+24(FP), CX
	MOVQ kc+32(FP), DX
	MOVQ width+40(FP), R8
	// Z30 = row offsets of rows 0..15, Z31 = of rows 16..31 (in elements).
	VPBROADCASTD AX, Z29
	VMOVDQU32 iota16<>(SB), Z30
	VPMULLD Z29, Z30, Z30
	SHLQ $4, AX
	VPBROADCASTD AX, Z29
	VPADDD Z29, Z30, Z31
	// R9 = 32-bit mask of the real rows; R10 = store mask for width <= 16.
	LOWBITS(R9)
	MOVQ R8, CX
	LOWBITS(R10)
	KMOVW R10, K3
	MOVQ R9, R11
	SHRQ $16, R11
	MOVQ R8, R12
	SHLQ $2, R12 // dst step in bytes
	TESTQ DX, DX
	JZ pt_done
	CMPQ R8, $32
	JEQ pt_wide
pt_narrow:
	VPXORD Z0, Z0, Z0
	KMOVW R9, K1
	VGATHERDPS (SI)(Z30*4), K1, Z0
	VMOVUPS Z0, K3, (DI)
	ADDQ $4, SI
	ADDQ R12, DI
	DECQ DX
	JNZ pt_narrow
	JMP pt_done
pt_wide:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	KMOVW R9, K1
	KMOVW R11, K2
	VGATHERDPS (SI)(Z30*4), K1, Z0
	VGATHERDPS (SI)(Z31*4), K2, Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ $4, SI
	ADDQ $128, DI
	DECQ DX
	JNZ pt_wide
pt_done:
	VZEROUPPER
	RET

// func packN512(dst, src *float32, ld, cols, kc, width int)
//
// Copying pack: dst[p*width+j] = src[p*ld+j] for p < kc and j < cols, and
// 0 for cols <= j < width. cols <= width and width is 32 or at most 16.
TEXT ·packN512(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), R13
	SHLQ $2, R13
	MOVQ cols+24(FP), CX
	MOVQ kc+32(FP), DX
	MOVQ width+40(FP), R8
	LOWBITS(R9)
	KMOVW R9, K1
	SHRQ $16, R9
	KMOVW R9, K2
	MOVQ R8, CX
	LOWBITS(R10)
	KMOVW R10, K3
	MOVQ R8, R12
	SHLQ $2, R12
	TESTQ DX, DX
	JZ pn_done
	CMPQ R8, $32
	JEQ pn_wide
pn_narrow:
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS Z0, K3, (DI)
	ADDQ R13, SI
	ADDQ R12, DI
	DECQ DX
	JNZ pn_narrow
	JMP pn_done
pn_wide:
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z 64(SI), K2, Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ R13, SI
	ADDQ $128, DI
	DECQ DX
	JNZ pn_wide
pn_done:
	VZEROUPPER
	RET

// func packTOffs512(dst, src *float32, offs *int32, rows, kc, width int)
//
// Transposing pack of rows at arbitrary offsets: dst[p*width+r] =
// src[offs[r]+p] for p < kc and r < rows, and 0 for rows <= r < width.
// rows <= width and width is 32 or at most 16.
TEXT ·packTOffs512(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ offs+16(FP), AX
	MOVQ rows+24(FP), CX
	MOVQ kc+32(FP), DX
	MOVQ width+40(FP), R8
	// R9 = 32-bit mask of the real rows; R10 = store mask for width <= 16.
	LOWBITS(R9)
	MOVQ R8, CX
	LOWBITS(R10)
	KMOVW R10, K3
	MOVQ R9, R11
	SHRQ $16, R11
	// Z30, Z31 = offsets of rows 0..15 and 16..31 (only real rows loaded).
	KMOVW R9, K1
	KMOVW R11, K2
	VMOVDQU32.Z (AX), K1, Z30
	VMOVDQU32.Z 64(AX), K2, Z31
	MOVQ R8, R12
	SHLQ $2, R12 // dst step in bytes
	TESTQ DX, DX
	JZ pto_done
	CMPQ R8, $32
	JEQ pto_wide
pto_narrow:
	VPXORD Z0, Z0, Z0
	KMOVW R9, K1
	VGATHERDPS (SI)(Z30*4), K1, Z0
	VMOVUPS Z0, K3, (DI)
	ADDQ $4, SI
	ADDQ R12, DI
	DECQ DX
	JNZ pto_narrow
	JMP pto_done
pto_wide:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	KMOVW R9, K1
	KMOVW R11, K2
	VGATHERDPS (SI)(Z30*4), K1, Z0
	VGATHERDPS (SI)(Z31*4), K2, Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ $4, SI
	ADDQ $128, DI
	DECQ DX
	JNZ pto_wide
pto_done:
	VZEROUPPER
	RET
