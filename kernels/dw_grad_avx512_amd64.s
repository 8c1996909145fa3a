//go:build amd64

#include "textflag.h"
#include "asm_amd64.h"

// Weight gradient of a 3×3 depthwise convolution (AVX-512), same-size or
// stride 2 on parity-split input, see dw_grad.go: one accumulator per tap
// (Z0..Z8) over all runs of all planes; each tap's inputs are a
// merge-masked FMA straight from memory at the tap's offset (masked-off
// lanes are neither read nor faulted). The planes of a channel are an
// image apart (xps bytes for x, dps for dy), so each run prefetches the
// next plane's.

// TAP adds dy (Z9) times tap t's inputs into acc: mask at moff(DX),
// byte offset at ooff(R8).
#define TAP(moff, ooff, acc) \
	KMOVW moff(DX), K2 \
	MOVQ ooff(R8), R11 \
	VFMADD231PS (BX)(R11*1), Z9, K2, acc

// HSUMADD adds the lanes of z to the float32 at off(R9) (via Z0; Y1 is
// clobbered, so accumulator Z1 must be summed first and Z0 saved).
#define HSUMADD(z, off) \
	VMOVAPS z, Z0 \
	HSUMZ0 \
	VADDSS off(R9), X0, X0 \
	VMOVSS X0, off(R9)

// func dwGradW9x512(x, dy *float32, offs *int, masks *uint16, runs, planes, xps, dps int, out *float32)
TEXT ·dwGradW9x512(SB), NOSPLIT, $0-72
	MOVQ x+0(FP), SI
	MOVQ dy+8(FP), DI
	MOVQ offs+16(FP), R8
	MOVQ masks+24(FP), R9
	MOVQ runs+32(FP), R10
	MOVQ planes+40(FP), R12
	MOVQ xps+48(FP), R13
	MOVQ dps+56(FP), R14
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	TESTQ R12, R12
	JZ gw_done
	TESTQ R10, R10
	JZ gw_done
gw_plane:
	MOVQ R10, CX
	MOVQ R9, DX
	MOVQ SI, BX
	MOVQ DI, AX
gw_run:
	PREFETCHT0 (BX)(R13*1)
	PREFETCHT0 (AX)(R14*1)
	KMOVW 18(DX), K1
	VMOVUPS.Z (AX), K1, Z9
	TAP(0, 0, Z0)
	TAP(2, 8, Z1)
	TAP(4, 16, Z2)
	TAP(6, 24, Z3)
	TAP(8, 32, Z4)
	TAP(10, 40, Z5)
	TAP(12, 48, Z6)
	TAP(14, 56, Z7)
	TAP(16, 64, Z8)
	ADDQ $32, DX
	ADDQ $64, BX
	ADDQ $64, AX
	DECQ CX
	JNZ gw_run
	ADDQ R13, SI
	ADDQ R14, DI
	DECQ R12
	JNZ gw_plane
gw_done:
	MOVQ out+64(FP), R9
	VMOVAPS Z0, Z10
	HSUMADD(Z1, 4)
	HSUMADD(Z2, 8)
	HSUMADD(Z3, 12)
	HSUMADD(Z4, 16)
	HSUMADD(Z5, 20)
	HSUMADD(Z6, 24)
	HSUMADD(Z7, 28)
	HSUMADD(Z8, 32)
	HSUMADD(Z10, 0)
	VZEROUPPER
	RET
