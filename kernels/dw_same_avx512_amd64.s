//go:build amd64

#include "textflag.h"

// TAP4 adds tap CX (weight at woff(R8)(CX*4) into wz, offset at
// ooff(R9)(CX*8)) of four runs side by side into a0..a3 under the mask row
// at AX, which it advances to the next tap's.
#define TAP4(woff, ooff, wz, a0, a1, a2, a3) \
	VBROADCASTSS woff(R8)(CX*4), wz \
	MOVQ ooff(R9)(CX*8), BX \
	KMOVW (AX)(DX*2), K1 \
	KMOVW 2(AX)(DX*2), K2 \
	KMOVW 4(AX)(DX*2), K3 \
	KMOVW 6(AX)(DX*2), K4 \
	VFMADD231PS (SI)(BX*4), wz, K1, a0 \
	VFMADD231PS 64(SI)(BX*4), wz, K2, a1 \
	VFMADD231PS 128(SI)(BX*4), wz, K3, a2 \
	VFMADD231PS 192(SI)(BX*4), wz, K4, a3 \
	ADDQ R14, AX

// func dwSame512(x, y, w *float32, offs *int, masks *uint16, taps, chunks, period int, a, b, bias, lo, hi float32)
//
// Runs of 16 outputs: acc = sum over taps t of w[t]*x[16r+offs[t]+i]
// for the lanes of tap t's mask (others add nothing; in order for single
// runs, the even and the odd taps apart for four side by side), then
// min(max(a*(acc+bias) + b, lo), hi) stored under the run's store mask.
// Four runs go side by side (independent FMA chains), then single runs.
//
// SI, DI: x and y at the current run; R8: w; R9: offs; R10: masks;
// R11: taps; R12: runs left; R13: period; R14: period*2 (bytes per mask
// row); DX: mask column m of the current run; CX: tap; AX: mask row of
// tap CX; BX: tap offset.
TEXT ·dwSame512(SB), NOSPLIT, $0-84
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ w+16(FP), R8
	MOVQ offs+24(FP), R9
	MOVQ masks+32(FP), R10
	MOVQ taps+40(FP), R11
	MOVQ chunks+48(FP), R12
	MOVQ period+56(FP), R13
	LEAQ (R13)(R13*1), R14
	VBROADCASTSS a+64(FP), Z16
	VBROADCASTSS b+68(FP), Z17
	VBROADCASTSS bias+72(FP), Z18
	VBROADCASTSS lo+76(FP), Z19
	VBROADCASTSS hi+80(FP), Z20
	XORQ DX, DX

same4:
	CMPQ R12, $4
	JL same1
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	XORQ CX, CX
	MOVQ R10, AX

	// Taps in pairs: the even ones into Z0..Z3, the odd ones into
	// Z8..Z11 (eight independent FMA chains), added at the end.
same4_tap2:
	LEAQ 1(CX), BX
	CMPQ BX, R11
	JGE same4_tap1
	TAP4(0, 0, Z21, Z0, Z1, Z2, Z3)
	TAP4(4, 8, Z22, Z8, Z9, Z10, Z11)
	ADDQ $2, CX
	JMP same4_tap2

same4_tap1:
	CMPQ CX, R11
	JGE same4_sum
	TAP4(0, 0, Z21, Z0, Z1, Z2, Z3)

same4_sum:
	VADDPS Z8, Z0, Z0
	VADDPS Z9, Z1, Z1
	VADDPS Z10, Z2, Z2
	VADDPS Z11, Z3, Z3

	// AX is now the store-mask row.
	VADDPS Z18, Z0, Z0
	VADDPS Z18, Z1, Z1
	VADDPS Z18, Z2, Z2
	VADDPS Z18, Z3, Z3
	VMOVAPS Z17, Z4
	VMOVAPS Z17, Z5
	VMOVAPS Z17, Z6
	VMOVAPS Z17, Z7
	VFMADD231PS Z0, Z16, Z4
	VFMADD231PS Z1, Z16, Z5
	VFMADD231PS Z2, Z16, Z6
	VFMADD231PS Z3, Z16, Z7
	VMAXPS Z4, Z19, Z4
	VMAXPS Z5, Z19, Z5
	VMAXPS Z6, Z19, Z6
	VMAXPS Z7, Z19, Z7
	VMINPS Z4, Z20, Z4
	VMINPS Z5, Z20, Z5
	VMINPS Z6, Z20, Z6
	VMINPS Z7, Z20, Z7
	KMOVW (AX)(DX*2), K1
	KMOVW 2(AX)(DX*2), K2
	KMOVW 4(AX)(DX*2), K3
	KMOVW 6(AX)(DX*2), K4
	VMOVUPS Z4, K1, (DI)
	VMOVUPS Z5, K2, 64(DI)
	VMOVUPS Z6, K3, 128(DI)
	VMOVUPS Z7, K4, 192(DI)
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $4, R12
	ADDQ $4, DX
	CMPQ DX, R13
	JL same4
	SUBQ R13, DX
	JMP same4

same1:
	TESTQ R12, R12
	JLE same_done
	VPXORD Z0, Z0, Z0
	XORQ CX, CX
	MOVQ R10, AX

same1_tap:
	VBROADCASTSS (R8)(CX*4), Z21
	MOVQ (R9)(CX*8), BX
	KMOVW (AX)(DX*2), K1
	VFMADD231PS (SI)(BX*4), Z21, K1, Z0
	ADDQ R14, AX
	INCQ CX
	CMPQ CX, R11
	JL same1_tap

	VADDPS Z18, Z0, Z0
	VMOVAPS Z17, Z4
	VFMADD231PS Z0, Z16, Z4
	VMAXPS Z4, Z19, Z4
	VMINPS Z4, Z20, Z4
	KMOVW (AX)(DX*2), K1
	VMOVUPS Z4, K1, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ R12
	INCQ DX
	CMPQ DX, R13
	JL same1
	SUBQ R13, DX
	JMP same1

same_done:
	VZEROUPPER
	RET
