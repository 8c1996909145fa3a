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
