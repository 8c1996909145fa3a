//go:build amd64

#include "textflag.h"
#include "asm_amd64.h"

// BatchNorm row kernels (AVX-512), see vec_bn.go. Each walks rows runs of
// n floats, stride floats apart, with the run's BNCoef (A 0, B 4, Shift 8,
// Alpha 12, Beta 16, Delta 20; 32 bytes) at R13: 32 floats per main-loop
// step, 16 per second step, then one masked step (K1, set once) for the
// rest. Sums keep float32 lanes per run and are added in float64 into the
// run's two float64 accumulators at R14.

// TAILMASK sets K1 to the low CX bits (CX < 16). Clobbers AX.
#define TAILMASK \
	LOWBITS(AX) \
	KMOVW AX, K1

// ROWSUMS adds the lanes of Z0 and of Z2 (float32), in float64, to the
// accumulators 0(R14) and 8(R14). Clobbers Z4..Z7.
#define ROWSUMS \
	VCVTPS2PD Y0, Z4 \
	VEXTRACTF32X8 $1, Z0, Y5 \
	VCVTPS2PD Y5, Z5 \
	VADDPD Z5, Z4, Z4 \
	VCVTPS2PD Y2, Z6 \
	VEXTRACTF32X8 $1, Z2, Y5 \
	VCVTPS2PD Y5, Z5 \
	VADDPD Z5, Z6, Z6 \
	VEXTRACTF64X4 $1, Z4, Y5 \
	VADDPD Y5, Y4, Y4 \
	VEXTRACTF64X4 $1, Z6, Y5 \
	VADDPD Y5, Y6, Y6 \
	VEXTRACTF128 $1, Y4, X5 \
	VADDPD X5, X4, X4 \
	VEXTRACTF128 $1, Y6, X5 \
	VADDPD X5, X6, X6 \
	VUNPCKLPD X6, X4, X5 \
	VUNPCKHPD X6, X4, X7 \
	VADDPD X7, X5, X5 \
	VADDPD (R14), X5, X5 \
	VMOVUPD X5, (R14)

// ACTMASK sets K2 to the lanes of x (in xr) that pass the activation mask
// lo < A·x + B < hi (A, B in Z12, Z13; lo, hi in Z14, Z15), or to all
// lanes when K4 is all ones (no mask). Clobbers zt.
#define ACTMASK(xr, zt) \
	VMOVAPS Z13, zt \
	VFMADD231PS xr, Z12, zt \
	VCMPPS $0x1e, Z14, zt, K2 \
	VCMPPS $0x11, Z15, zt, K2, K2 \
	KORW K4, K2, K2

// MASKFLAG sets K4 to all ones when the bool at moff(FP) is false (no
// mask), to none otherwise. Clobbers AX.
#define MASKFLAG(moff) \
	MOVBQZX moff(FP), AX \
	DECQ AX \
	KMOVW AX, K4

// func bnMomentsEach512(x *float32, n, rows, stride int, coef *BNCoef, sums *float64, ahead int)
TEXT ·bnMomentsEach512(SB), NOSPLIT, $0-56
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), R8
	MOVQ rows+16(FP), R9
	MOVQ stride+24(FP), R10
	SHLQ $2, R10
	MOVQ coef+32(FP), R13
	MOVQ sums+40(FP), R14
	MOVQ ahead+48(FP), DX
	SHLQ $2, DX
	MOVQ R8, CX
	ANDQ $15, CX
	TAILMASK
	TESTQ R9, R9
	JZ mo_done
mo_row:
	VBROADCASTSS 8(R13), Z8
	MOVQ SI, BX
	MOVQ R8, CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
mo32:
	CMPQ CX, $32
	JL mo16
	PREFETCHT0 (BX)(DX*1)
	PREFETCHT0 64(BX)(DX*1)
	VMOVUPS (BX), Z4
	VSUBPS Z8, Z4, Z4
	VMOVUPS 64(BX), Z5
	VSUBPS Z8, Z5, Z5
	VADDPS Z4, Z0, Z0
	VADDPS Z5, Z1, Z1
	VFMADD231PS Z4, Z4, Z2
	VFMADD231PS Z5, Z5, Z3
	ADDQ $128, BX
	SUBQ $32, CX
	JMP mo32
mo16:
	CMPQ CX, $16
	JL motail
	PREFETCHT0 (BX)(DX*1)
	VMOVUPS (BX), Z4
	VSUBPS Z8, Z4, Z4
	VADDPS Z4, Z0, Z0
	VFMADD231PS Z4, Z4, Z2
	ADDQ $64, BX
	SUBQ $16, CX
motail:
	TESTQ CX, CX
	JZ mo_end
	VMOVUPS.Z (BX), K1, Z4
	VSUBPS.Z Z8, Z4, K1, Z4
	VADDPS Z4, Z1, Z1
	VFMADD231PS Z4, Z4, Z3
mo_end:
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	ROWSUMS
	ADDQ R10, SI
	ADDQ $32, R13
	ADDQ $16, R14
	DECQ R9
	JNZ mo_row
mo_done:
	VZEROUPPER
	RET

// APPLYSTEP writes min(max(A·x+B (+ res), lo), hi) for one vector at
// off(BX) of the rows x SI, residual DX, dst DI, and prefetches the next
// call's dst and residual (R11, R12).
#define APPLYSTEP(off) \
	PREFETCHT0 off(R11)(BX*1) \
	PREFETCHT0 off(R12)(BX*1) \
	VMOVAPS Z13, Z0 \
	VFMADD231PS off(SI)(BX*1), Z12, Z0 \
	TESTQ R14, R14 \
	JZ 2(PC) \
	VADDPS off(DX)(BX*1), Z0, Z0 \
	VMAXPS Z0, Z14, Z0 \
	VMINPS Z0, Z15, Z0 \
	VMOVUPS Z0, off(DI)(BX*1)

// func bnApplyEach512(dst, x, res *float32, n, rows, stride int, coef *BNCoef, lo, hi float32, hasRes bool, ahead int)
TEXT ·bnApplyEach512(SB), NOSPLIT, $0-80
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ res+16(FP), DX
	MOVQ n+24(FP), R8
	MOVQ rows+32(FP), R9
	MOVQ stride+40(FP), R10
	SHLQ $2, R10
	MOVQ coef+48(FP), R13
	VBROADCASTSS lo+56(FP), Z14
	VBROADCASTSS hi+60(FP), Z15
	MOVBQZX hasRes+64(FP), R14
	MOVQ R8, CX
	ANDQ $15, CX
	TAILMASK
	TESTQ R9, R9
	JZ ap_done
ap_row:
	VBROADCASTSS 0(R13), Z12
	VBROADCASTSS 4(R13), Z13
	XORQ BX, BX
	MOVQ ahead+72(FP), CX
	LEAQ (DI)(CX*4), R11
	LEAQ (DX)(CX*4), R12
	MOVQ R8, CX
ap32:
	CMPQ CX, $32
	JL ap16
	APPLYSTEP(0)
	APPLYSTEP(64)
	ADDQ $128, BX
	SUBQ $32, CX
	JMP ap32
ap16:
	CMPQ CX, $16
	JL aptail
	APPLYSTEP(0)
	ADDQ $64, BX
	SUBQ $16, CX
aptail:
	TESTQ CX, CX
	JZ ap_next
	VMOVUPS.Z (SI)(BX*1), K1, Z1
	VMOVAPS Z13, Z0
	VFMADD231PS Z1, Z12, Z0
	TESTQ R14, R14
	JZ aptail_nores
	VMOVUPS.Z (DX)(BX*1), K1, Z2
	VADDPS Z2, Z0, Z0
aptail_nores:
	VMAXPS Z0, Z14, Z0
	VMINPS Z0, Z15, Z0
	VMOVUPS Z0, K1, (DI)(BX*1)
ap_next:
	ADDQ R10, DI
	ADDQ R10, SI
	ADDQ R10, DX
	ADDQ $32, R13
	DECQ R9
	JNZ ap_row
ap_done:
	VZEROUPPER
	RET

// SUMSTEP adds one vector of m·dy (dy at off(DX)) and m·dy·(x−Shift) (x
// at off(SI)) into accumulators s, q. Clobbers Z4, Z6, Z7, K2.
#define SUMSTEP(off, s, q) \
	PREFETCHT0 off(SI)(BX*1) \
	PREFETCHT0 off(DX)(BX*1) \
	VMOVUPS off(SI), Z4 \
	ACTMASK(Z4, Z6) \
	VMOVUPS.Z off(DX), K2, Z7 \
	VSUBPS Z8, Z4, Z4 \
	VADDPS Z7, s, s \
	VFMADD231PS Z4, Z7, q

// func bnSumsEach512(dy, x *float32, n, rows, stride int, coef *BNCoef, lo, hi float32, masked bool, sums *float64, ahead int)
TEXT ·bnSumsEach512(SB), NOSPLIT, $0-80
	MOVQ dy+0(FP), R11
	MOVQ x+8(FP), R12
	MOVQ n+16(FP), R8
	MOVQ rows+24(FP), R9
	MOVQ stride+32(FP), R10
	SHLQ $2, R10
	MOVQ coef+40(FP), R13
	VBROADCASTSS lo+48(FP), Z14
	VBROADCASTSS hi+52(FP), Z15
	MASKFLAG(masked+56)
	MOVQ sums+64(FP), R14
	MOVQ ahead+72(FP), BX
	SHLQ $2, BX
	MOVQ R8, CX
	ANDQ $15, CX
	TAILMASK
	TESTQ R9, R9
	JZ bs_done
bs_row:
	VBROADCASTSS 0(R13), Z12
	VBROADCASTSS 4(R13), Z13
	VBROADCASTSS 8(R13), Z8
	MOVQ R11, DX
	MOVQ R12, SI
	MOVQ R8, CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
bs32:
	CMPQ CX, $32
	JL bs16
	SUMSTEP(0, Z0, Z2)
	SUMSTEP(64, Z1, Z3)
	ADDQ $128, SI
	ADDQ $128, DX
	SUBQ $32, CX
	JMP bs32
bs16:
	CMPQ CX, $16
	JL bstail
	SUMSTEP(0, Z0, Z2)
	ADDQ $64, SI
	ADDQ $64, DX
	SUBQ $16, CX
bstail:
	TESTQ CX, CX
	JZ bs_end
	VMOVUPS.Z (SI), K1, Z4
	ACTMASK(Z4, Z6)
	KANDW K1, K2, K2
	VMOVUPS.Z (DX), K2, Z7
	VSUBPS.Z Z8, Z4, K1, Z4
	VADDPS Z7, Z1, Z1
	VFMADD231PS Z4, Z7, Z3
bs_end:
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	ROWSUMS
	ADDQ R10, R11
	ADDQ R10, R12
	ADDQ $32, R13
	ADDQ $16, R14
	DECQ R9
	JNZ bs_row
bs_done:
	VZEROUPPER
	RET

// GRADSTEP writes Alpha·m·dy + Beta·(x−Shift) + Delta for one vector at
// off (dst DI, dy DX, x SI) and prefetches the next call's dst (BX bytes
// on). Clobbers Z0, Z4..Z7, K2.
#define GRADSTEP(off) \
	PREFETCHT0 off(DI)(BX*1) \
	VMOVUPS off(SI), Z4 \
	ACTMASK(Z4, Z6) \
	VMOVUPS.Z off(DX), K2, Z7 \
	VSUBPS Z8, Z4, Z5 \
	VMOVAPS Z11, Z0 \
	VFMADD231PS Z5, Z9, Z0 \
	VFMADD231PS Z7, Z10, Z0 \
	VMOVUPS Z0, off(DI)

// func bnGradEach512(dst, dy, x *float32, n, rows, stride int, coef *BNCoef, lo, hi float32, masked bool, ahead int)
TEXT ·bnGradEach512(SB), NOSPLIT, $0-80
	MOVQ dst+0(FP), R14
	MOVQ dy+8(FP), R11
	MOVQ x+16(FP), R12
	MOVQ n+24(FP), R8
	MOVQ rows+32(FP), R9
	MOVQ stride+40(FP), R10
	SHLQ $2, R10
	MOVQ coef+48(FP), R13
	VBROADCASTSS lo+56(FP), Z14
	VBROADCASTSS hi+60(FP), Z15
	MASKFLAG(masked+64)
	MOVQ ahead+72(FP), BX
	SHLQ $2, BX
	MOVQ R8, CX
	ANDQ $15, CX
	TAILMASK
	TESTQ R9, R9
	JZ bg_done
bg_row:
	VBROADCASTSS 0(R13), Z12
	VBROADCASTSS 4(R13), Z13
	VBROADCASTSS 8(R13), Z8
	VBROADCASTSS 12(R13), Z10
	VBROADCASTSS 16(R13), Z9
	VBROADCASTSS 20(R13), Z11
	MOVQ R14, DI
	MOVQ R11, DX
	MOVQ R12, SI
	MOVQ R8, CX
bg32:
	CMPQ CX, $32
	JL bg16
	GRADSTEP(0)
	GRADSTEP(64)
	ADDQ $128, DI
	ADDQ $128, SI
	ADDQ $128, DX
	SUBQ $32, CX
	JMP bg32
bg16:
	CMPQ CX, $16
	JL bgtail
	GRADSTEP(0)
	ADDQ $64, DI
	ADDQ $64, SI
	ADDQ $64, DX
	SUBQ $16, CX
bgtail:
	TESTQ CX, CX
	JZ bg_next
	VMOVUPS.Z (SI), K1, Z4
	ACTMASK(Z4, Z6)
	KANDW K1, K2, K2
	VMOVUPS.Z (DX), K2, Z7
	VSUBPS Z8, Z4, Z5
	VMOVAPS Z11, Z0
	VFMADD231PS Z5, Z9, Z0
	VFMADD231PS Z7, Z10, Z0
	VMOVUPS Z0, K1, (DI)
bg_next:
	ADDQ R10, R14
	ADDQ R10, R11
	ADDQ R10, R12
	ADDQ $32, R13
	DECQ R9
	JNZ bg_row
bg_done:
	VZEROUPPER
	RET

// MSUMSTEP writes m·dy for one vector at off(BX) (dz R11, dy R12, y DI,
// x SI; m from lo < y < hi, or all lanes when K4 is all ones) and adds
// m·dy and m·dy·(x−Shift) into s, q; it prefetches the next call's dy,
// x and y (AX, DX, R8). Clobbers Z4, Z6, Z7, K2.
#define MSUMSTEP(off, s, q) \
	PREFETCHT0 off(AX)(BX*1) \
	PREFETCHT0 off(DX)(BX*1) \
	PREFETCHT0 off(R8)(BX*1) \
	VMOVUPS off(DI)(BX*1), Z6 \
	VCMPPS $0x1e, Z14, Z6, K2 \
	VCMPPS $0x11, Z15, Z6, K2, K2 \
	KORW K4, K2, K2 \
	VMOVUPS.Z off(R12)(BX*1), K2, Z7 \
	VMOVUPS Z7, off(R11)(BX*1) \
	VMOVUPS off(SI)(BX*1), Z4 \
	VSUBPS Z8, Z4, Z4 \
	VADDPS Z7, s, s \
	VFMADD231PS Z4, Z7, q

// func bnMaskSumsEach512(dz, dy, y, x *float32, n, rows, stride int, coef *BNCoef, lo, hi float32, masked bool, sums *float64, ahead int)
TEXT ·bnMaskSumsEach512(SB), NOSPLIT, $0-96
	MOVQ dz+0(FP), R11
	MOVQ dy+8(FP), R12
	MOVQ y+16(FP), DI
	MOVQ x+24(FP), SI
	MOVQ n+32(FP), R8
	MOVQ rows+40(FP), R9
	MOVQ stride+48(FP), R10
	SHLQ $2, R10
	MOVQ coef+56(FP), R13
	VBROADCASTSS lo+64(FP), Z14
	VBROADCASTSS hi+68(FP), Z15
	MASKFLAG(masked+72)
	MOVQ sums+80(FP), R14
	MOVQ R8, CX
	ANDQ $15, CX
	TAILMASK
	TESTQ R9, R9
	JZ ms_done
ms_row:
	VBROADCASTSS 8(R13), Z8
	XORQ BX, BX
	MOVQ ahead+88(FP), CX
	LEAQ (R12)(CX*4), AX
	LEAQ (SI)(CX*4), DX
	LEAQ (DI)(CX*4), R8
	MOVQ n+32(FP), CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
ms32:
	CMPQ CX, $32
	JL ms16
	MSUMSTEP(0, Z0, Z2)
	MSUMSTEP(64, Z1, Z3)
	ADDQ $128, BX
	SUBQ $32, CX
	JMP ms32
ms16:
	CMPQ CX, $16
	JL mstail
	MSUMSTEP(0, Z0, Z2)
	ADDQ $64, BX
	SUBQ $16, CX
mstail:
	TESTQ CX, CX
	JZ ms_end
	VMOVUPS.Z (DI)(BX*1), K1, Z6
	VCMPPS $0x1e, Z14, Z6, K2
	VCMPPS $0x11, Z15, Z6, K2, K2
	KORW K4, K2, K2
	KANDW K1, K2, K2
	VMOVUPS.Z (R12)(BX*1), K2, Z7
	VMOVUPS Z7, K1, (R11)(BX*1)
	VMOVUPS.Z (SI)(BX*1), K1, Z4
	VSUBPS.Z Z8, Z4, K1, Z4
	VADDPS Z7, Z1, Z1
	VFMADD231PS Z4, Z7, Z3
ms_end:
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	ROWSUMS
	ADDQ R10, R11
	ADDQ R10, R12
	ADDQ R10, DI
	ADDQ R10, SI
	ADDQ $32, R13
	ADDQ $16, R14
	DECQ R9
	JNZ ms_row
ms_done:
	VZEROUPPER
	RET
