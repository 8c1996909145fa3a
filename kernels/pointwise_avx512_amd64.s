//go:build amd64

#include "textflag.h"
#include "asm_amd64.h"

// Pointwise helpers for normalization and activations (AVX-512): 32
// floats per main-loop step, 16 per second-loop step, then a masked final
// step for the remainder.

// TAILMASK sets K1 to the low CX bits (CX < 16). Clobbers AX.
#define TAILMASK \
	LOWBITS(AX) \
	KMOVW AX, K1

// func moments512(x []float32, shift float32) (sum, sumSq float32)
TEXT ·moments512(SB), NOSPLIT, $0-40
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VBROADCASTSS shift+24(FP), Z8
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
mom32:
	CMPQ CX, $32
	JL mom16
	VMOVUPS (SI), Z4
	VSUBPS Z8, Z4, Z4
	VMOVUPS 64(SI), Z5
	VSUBPS Z8, Z5, Z5
	VADDPS Z4, Z0, Z0
	VADDPS Z5, Z1, Z1
	VFMADD231PS Z4, Z4, Z2
	VFMADD231PS Z5, Z5, Z3
	ADDQ $128, SI
	SUBQ $32, CX
	JMP mom32
mom16:
	CMPQ CX, $16
	JL momtail
	VMOVUPS (SI), Z4
	VSUBPS Z8, Z4, Z4
	VADDPS Z4, Z0, Z0
	VFMADD231PS Z4, Z4, Z2
	ADDQ $64, SI
	SUBQ $16, CX
	JMP mom16
momtail:
	TESTQ CX, CX
	JZ momsum
	TAILMASK
	VMOVUPS.Z (SI), K1, Z4
	VSUBPS.Z Z8, Z4, K1, Z4
	VADDPS Z4, Z1, Z1
	VFMADD231PS Z4, Z4, Z3
momsum:
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	HSUMZ0
	MOVSS X0, sum+32(FP)
	VMOVAPS Z2, Z0
	HSUMZ0
	MOVSS X0, sumSq+36(FP)
	VZEROUPPER
	RET

// func dotShifted512(dy, x []float32, shift float32) (sumDy, sumDyX float32)
TEXT ·dotShifted512(SB), NOSPLIT, $0-64
	MOVQ dy_base+0(FP), DI
	MOVQ dy_len+8(FP), CX
	MOVQ x_base+24(FP), SI
	VBROADCASTSS shift+48(FP), Z8
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
dsh32:
	CMPQ CX, $32
	JL dsh16
	VMOVUPS (DI), Z6
	VMOVUPS 64(DI), Z7
	VMOVUPS (SI), Z4
	VSUBPS Z8, Z4, Z4
	VMOVUPS 64(SI), Z5
	VSUBPS Z8, Z5, Z5
	VADDPS Z6, Z0, Z0
	VADDPS Z7, Z1, Z1
	VFMADD231PS Z4, Z6, Z2
	VFMADD231PS Z5, Z7, Z3
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP dsh32
dsh16:
	CMPQ CX, $16
	JL dshtail
	VMOVUPS (DI), Z6
	VMOVUPS (SI), Z4
	VSUBPS Z8, Z4, Z4
	VADDPS Z6, Z0, Z0
	VFMADD231PS Z4, Z6, Z2
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP dsh16
dshtail:
	TESTQ CX, CX
	JZ dshsum
	TAILMASK
	VMOVUPS.Z (DI), K1, Z6
	VMOVUPS.Z (SI), K1, Z4
	VSUBPS.Z Z8, Z4, K1, Z4
	VADDPS Z6, Z1, Z1
	VFMADD231PS Z4, Z6, Z3
dshsum:
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	HSUMZ0
	MOVSS X0, sumDy+56(FP)
	VMOVAPS Z2, Z0
	HSUMZ0
	MOVSS X0, sumDyX+60(FP)
	VZEROUPPER
	RET

// func affine512(dst, x []float32, a, b float32)
TEXT ·affine512(SB), NOSPLIT, $0-56
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ x_base+24(FP), SI
	VBROADCASTSS a+48(FP), Z8
	VBROADCASTSS b+52(FP), Z9
aff32:
	CMPQ CX, $32
	JL aff16
	VMOVAPS Z9, Z0
	VMOVAPS Z9, Z1
	VFMADD231PS (SI), Z8, Z0
	VFMADD231PS 64(SI), Z8, Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP aff32
aff16:
	CMPQ CX, $16
	JL afftail
	VMOVAPS Z9, Z0
	VFMADD231PS (SI), Z8, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP aff16
afftail:
	TESTQ CX, CX
	JZ affdone
	TAILMASK
	VMOVUPS.Z (SI), K1, Z2
	VMOVAPS Z9, Z0
	VFMADD231PS Z2, Z8, Z0
	VMOVUPS Z0, K1, (DI)
affdone:
	VZEROUPPER
	RET

// func affineClamp512(dst, x []float32, a, b, lo, hi float32)
TEXT ·affineClamp512(SB), NOSPLIT, $0-64
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ x_base+24(FP), SI
	VBROADCASTSS a+48(FP), Z8
	VBROADCASTSS b+52(FP), Z9
	VBROADCASTSS lo+56(FP), Z10
	VBROADCASTSS hi+60(FP), Z11
afc32:
	CMPQ CX, $32
	JL afc16
	VMOVAPS Z9, Z0
	VMOVAPS Z9, Z1
	VFMADD231PS (SI), Z8, Z0
	VFMADD231PS 64(SI), Z8, Z1
	VMAXPS Z0, Z10, Z0
	VMAXPS Z1, Z10, Z1
	VMINPS Z0, Z11, Z0
	VMINPS Z1, Z11, Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP afc32
afc16:
	CMPQ CX, $16
	JL afctail
	VMOVAPS Z9, Z0
	VFMADD231PS (SI), Z8, Z0
	VMAXPS Z0, Z10, Z0
	VMINPS Z0, Z11, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP afc16
afctail:
	TESTQ CX, CX
	JZ afcdone
	TAILMASK
	VMOVUPS.Z (SI), K1, Z2
	VMOVAPS Z9, Z0
	VFMADD231PS Z2, Z8, Z0
	VMAXPS Z0, Z10, Z0
	VMINPS Z0, Z11, Z0
	VMOVUPS Z0, K1, (DI)
afcdone:
	VZEROUPPER
	RET

// func bnGrad512(dst, dy, x []float32, alpha, beta, shift, delta float32)
// dst = alpha·dy + beta·(x − shift) + delta
TEXT ·bnGrad512(SB), NOSPLIT, $0-88
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ dy_base+24(FP), DX
	MOVQ x_base+48(FP), SI
	VBROADCASTSS alpha+72(FP), Z8
	VBROADCASTSS beta+76(FP), Z9
	VBROADCASTSS shift+80(FP), Z10
	VBROADCASTSS delta+84(FP), Z11
bng32:
	CMPQ CX, $32
	JL bng16
	VMOVUPS (SI), Z2
	VSUBPS Z10, Z2, Z2
	VMOVUPS 64(SI), Z3
	VSUBPS Z10, Z3, Z3
	VMOVAPS Z11, Z0
	VMOVAPS Z11, Z1
	VFMADD231PS (DX), Z8, Z0
	VFMADD231PS 64(DX), Z8, Z1
	VFMADD231PS Z2, Z9, Z0
	VFMADD231PS Z3, Z9, Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ $128, SI
	ADDQ $128, DX
	ADDQ $128, DI
	SUBQ $32, CX
	JMP bng32
bng16:
	CMPQ CX, $16
	JL bngtail
	VMOVUPS (SI), Z2
	VSUBPS Z10, Z2, Z2
	VMOVAPS Z11, Z0
	VFMADD231PS (DX), Z8, Z0
	VFMADD231PS Z2, Z9, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $16, CX
	JMP bng16
bngtail:
	TESTQ CX, CX
	JZ bngdone
	TAILMASK
	VMOVUPS.Z (SI), K1, Z2
	VMOVUPS.Z (DX), K1, Z4
	VSUBPS Z10, Z2, Z2
	VMOVAPS Z11, Z0
	VFMADD231PS Z4, Z8, Z0
	VFMADD231PS Z2, Z9, Z0
	VMOVUPS Z0, K1, (DI)
bngdone:
	VZEROUPPER
	RET

// func maskInside512(dst, dy, y []float32, lo, hi float32)
// dst = dy where lo < y < hi, else 0
TEXT ·maskInside512(SB), NOSPLIT, $0-80
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ dy_base+24(FP), DX
	MOVQ y_base+48(FP), SI
	VBROADCASTSS lo+72(FP), Z8
	VBROADCASTSS hi+76(FP), Z9
msk16:
	CMPQ CX, $16
	JL msktail
	VMOVUPS (SI), Z0
	VCMPPS $0x1e, Z8, Z0, K2 // y > lo (ordered, quiet)
	VCMPPS $0x11, Z9, Z0, K3 // y < hi (ordered, quiet)
	KANDW K2, K3, K2
	VMOVUPS.Z (DX), K2, Z1
	VMOVUPS Z1, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $16, CX
	JMP msk16
msktail:
	TESTQ CX, CX
	JZ mskdone
	TAILMASK
	VMOVUPS.Z (SI), K1, Z0
	VCMPPS $0x1e, Z8, Z0, K2
	VCMPPS $0x11, Z9, Z0, K3
	KANDW K2, K3, K2
	KANDW K1, K2, K2
	VMOVUPS.Z (DX), K2, Z1
	VMOVUPS Z1, K1, (DI)
mskdone:
	VZEROUPPER
	RET

// func copyRows512(dst, src []float32, n, rows, dstStride, srcStride int)
// copies rows runs of n floats: dst[r*dstStride+i] = src[r*srcStride+i].
TEXT ·copyRows512(SB), NOSPLIT, $0-80
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ n+48(FP), R8
	MOVQ rows+56(FP), R9
	MOVQ dstStride+64(FP), R10
	MOVQ srcStride+72(FP), R11
	SHLQ $2, R10
	SHLQ $2, R11
	// K1 = mask of the last n mod 16 floats of a row.
	MOVQ R8, CX
	ANDQ $15, CX
	TAILMASK
	TESTQ R9, R9
	JZ cr_done
cr_row:
	MOVQ DI, DX
	MOVQ SI, BX
	MOVQ R8, CX
cr16:
	CMPQ CX, $16
	JL cr_tail
	VMOVUPS (BX), Z0
	VMOVUPS Z0, (DX)
	ADDQ $64, BX
	ADDQ $64, DX
	SUBQ $16, CX
	JMP cr16
cr_tail:
	TESTQ CX, CX
	JZ cr_next
	VMOVUPS.Z (BX), K1, Z0
	VMOVUPS Z0, K1, (DX)
cr_next:
	ADDQ R10, DI
	ADDQ R11, SI
	DECQ R9
	JNZ cr_row
cr_done:
	VZEROUPPER
	RET

// func epiRows512(dst, src, res []float32, n, rows, dstStride, srcStride int, a, b, lo, hi float32, hasRes bool)
// dst[r*dstStride+i] = min(max(a*src[r*srcStride+i] + b (+ res[r*dstStride+i]), lo), hi)
TEXT ·epiRows512(SB), NOSPLIT, $0-121
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ res_base+48(FP), DX
	MOVQ n+72(FP), R8
	MOVQ rows+80(FP), R9
	MOVQ dstStride+88(FP), R10
	MOVQ srcStride+96(FP), R11
	VBROADCASTSS a+104(FP), Z8
	VBROADCASTSS b+108(FP), Z9
	VBROADCASTSS lo+112(FP), Z10
	VBROADCASTSS hi+116(FP), Z11
	MOVBLZX hasRes+120(FP), R12
	SHLQ $2, R10
	SHLQ $2, R11
	MOVQ R8, CX
	ANDQ $15, CX
	TAILMASK
	TESTQ R9, R9
	JZ ep_done
ep_row:
	MOVQ DI, R13
	MOVQ SI, BX
	MOVQ DX, R14
	MOVQ R8, CX
ep16:
	CMPQ CX, $16
	JL ep_tail
	VMOVAPS Z9, Z0
	VFMADD231PS (BX), Z8, Z0
	TESTQ R12, R12
	JZ ep16_nores
	VADDPS (R14), Z0, Z0
ep16_nores:
	VMAXPS Z0, Z10, Z0
	VMINPS Z0, Z11, Z0
	VMOVUPS Z0, (R13)
	ADDQ $64, BX
	ADDQ $64, R13
	ADDQ $64, R14
	SUBQ $16, CX
	JMP ep16
ep_tail:
	TESTQ CX, CX
	JZ ep_next
	VMOVUPS.Z (BX), K1, Z1
	VMOVAPS Z9, Z0
	VFMADD231PS Z1, Z8, Z0
	TESTQ R12, R12
	JZ eptail_nores
	VMOVUPS.Z (R14), K1, Z2
	VADDPS Z2, Z0, Z0
eptail_nores:
	VMAXPS Z0, Z10, Z0
	VMINPS Z0, Z11, Z0
	VMOVUPS Z0, K1, (R13)
ep_next:
	ADDQ R10, DI
	ADDQ R10, DX
	ADDQ R11, SI
	DECQ R9
	JNZ ep_row
ep_done:
	VZEROUPPER
	RET
