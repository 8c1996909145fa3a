// Macros shared by the hand-written AVX-512 assembly files.

// LOWBITS sets reg to the mask of the low CX bits (CX < 64).
#define LOWBITS(reg) \
	MOVQ $1, reg \
	SHLQ CX, reg \
	DECQ reg

// HSUMZ0 sums the 16 lanes of Z0 into the low lane of X0. Clobbers Y1.
#define HSUMZ0 \
	VEXTRACTF64X4 $1, Z0, Y1 \
	VADDPS Y1, Y0, Y0 \
	VEXTRACTF128 $1, Y0, X1 \
	VADDPS X1, X0, X0 \
	VMOVHLPS X0, X0, X1 \
	VADDPS X1, X0, X0 \
	VMOVSHDUP X0, X1 \
	VADDSS X1, X0, X0
