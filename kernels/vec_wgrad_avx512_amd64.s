//go:build amd64

#include "textflag.h"

// Weight gradient of a stride-1 convolution by windows (AVX-512), see
// vec_wgrad.go. The taps' byte offsets live in R8..R14, AX, BX, added to
// the running window base SI. Accumulators Z0..Z8 (taps, panel columns
// 0..15) and Z9..Z17 (columns 16..31); per grid position one panel row
// (Z27, Z28) and nine broadcast inputs.

// OSTEP1 adds tap input x[off] (broadcast) times Z27 into a0.
#define OSTEP1(off, a0) \
	VBROADCASTSS (SI)(off*1), Z30 \
	VFMADD231PS Z30, Z27, a0

// OSTEP2 adds tap input x[off] times Z27, Z28 into a0, a1.
#define OSTEP2(off, a0, a1) \
	VBROADCASTSS (SI)(off*1), Z30 \
	VFMADD231PS Z30, Z27, a0 \
	VFMADD231PS Z30, Z28, a1

// OADD adds accumulator z to the 16 floats at off(DI).
#define OADD(z, off) \
	VADDPS off(DI), z, z \
	VMOVUPS z, off(DI)

// func windowOuter9(x *float32, offs *[9]int, panel *float32, width, k int, out *float32, ldo int)
TEXT ·windowOuter9(SB), NOSPLIT, $0-56
	MOVQ offs+8(FP), SI
	MOVQ 0(SI), R8
	MOVQ 8(SI), R9
	MOVQ 16(SI), R10
	MOVQ 24(SI), R11
	MOVQ 32(SI), R12
	MOVQ 40(SI), R13
	MOVQ 48(SI), R14
	MOVQ 56(SI), AX
	MOVQ 64(SI), BX
	MOVQ x+0(FP), SI
	MOVQ panel+16(FP), DI
	MOVQ width+24(FP), DX
	SHLQ $2, DX
	MOVQ k+32(FP), CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	TESTQ CX, CX
	JZ wo_sum
	CMPQ DX, $64
	JE wo_loop1
wo_loop2:
	VMOVUPS (DI), Z27
	VMOVUPS 64(DI), Z28
	OSTEP2(R8, Z0, Z9)
	OSTEP2(R9, Z1, Z10)
	OSTEP2(R10, Z2, Z11)
	OSTEP2(R11, Z3, Z12)
	OSTEP2(R12, Z4, Z13)
	OSTEP2(R13, Z5, Z14)
	OSTEP2(R14, Z6, Z15)
	OSTEP2(AX, Z7, Z16)
	OSTEP2(BX, Z8, Z17)
	ADDQ $4, SI
	ADDQ DX, DI
	DECQ CX
	JNZ wo_loop2
	JMP wo_sum
wo_loop1:
	VMOVUPS (DI), Z27
	OSTEP1(R8, Z0)
	OSTEP1(R9, Z1)
	OSTEP1(R10, Z2)
	OSTEP1(R11, Z3)
	OSTEP1(R12, Z4)
	OSTEP1(R13, Z5)
	OSTEP1(R14, Z6)
	OSTEP1(AX, Z7)
	OSTEP1(BX, Z8)
	ADDQ $4, SI
	ADDQ DX, DI
	DECQ CX
	JNZ wo_loop1
wo_sum:
	MOVQ width+24(FP), DX
	MOVQ out+40(FP), DI
	MOVQ ldo+48(FP), SI
	SHLQ $2, SI
	OADD(Z0, 0)
	CMPQ DX, $16
	JE 3(PC)
	OADD(Z9, 64)
	ADDQ SI, DI
	OADD(Z1, 0)
	CMPQ DX, $16
	JE 3(PC)
	OADD(Z10, 64)
	ADDQ SI, DI
	OADD(Z2, 0)
	CMPQ DX, $16
	JE 3(PC)
	OADD(Z11, 64)
	ADDQ SI, DI
	OADD(Z3, 0)
	CMPQ DX, $16
	JE 3(PC)
	OADD(Z12, 64)
	ADDQ SI, DI
	OADD(Z4, 0)
	CMPQ DX, $16
	JE 3(PC)
	OADD(Z13, 64)
	ADDQ SI, DI
	OADD(Z5, 0)
	CMPQ DX, $16
	JE 3(PC)
	OADD(Z14, 64)
	ADDQ SI, DI
	OADD(Z6, 0)
	CMPQ DX, $16
	JE 3(PC)
	OADD(Z15, 64)
	ADDQ SI, DI
	OADD(Z7, 0)
	CMPQ DX, $16
	JE 3(PC)
	OADD(Z16, 64)
	ADDQ SI, DI
	OADD(Z8, 0)
	CMPQ DX, $16
	JE 3(PC)
	OADD(Z17, 64)
	VZEROUPPER
	RET
