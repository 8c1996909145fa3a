//go:build amd64

package kernels

import (
	"golang.org/x/sys/cpu"
)

//go:generate go run gen_asm.go

var avx2Impl = &impl{
	name: "avx2",
	mr:   mr256, nr: 16,
	kc: 256, mc: 120, nc: 2048,
	kernel: kernelAVX2,
	axpy:   axpyGeneric,
	scale:  scaleGeneric,
	add:    addGeneric,
	dot:    dotGeneric,
	dwRows: dwRowsGeneric,
	dwDot:  dwDotGeneric,
	spread: scatterAdd,
	deint2: deint2Generic,
}

var avx512Impl = &impl{
	name: "avx512",
	mr:   mr512, nr: 32,
	kc: 256, mc: mr512 * 12, nc: 2048,
	kernel: kernelAVX512,
	axpy:   axpy512,
	scale:  scale512,
	add:    add512,
	dot:    dot512,
	dwRows: dwRowsAVX512,
	dwDot:  dwDotAVX512,
	spread: spreadAVX512,
	deint2: deint2AVX512,
}

func init() {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		impls = append(impls, avx2Impl)
	}
	if cpu.X86.HasAVX512F {
		impls = append(impls, avx512Impl)
	}
}

func kernelAVX512(k int, ap, bp, c []float32, ldc int, alpha, beta float32, rows, cols int) {
	_ = ap[mr512*k-1]
	_ = bp[32*k-1]
	_ = c[(rows-1)*ldc+cols-1]
	mask := uint32(1<<cols - 1)
	kern512xTab[rows-1](k, &ap[0], &bp[0], &c[0], ldc, alpha, beta, mask)
}

func kernelAVX2(k int, ap, bp, c []float32, ldc int, alpha, beta float32, rows, cols int) {
	_ = ap[mr256*k-1]
	_ = bp[16*k-1]
	_ = c[(rows-1)*ldc+cols-1]
	if cols == 16 {
		kern256xTab[rows-1](k, &ap[0], &bp[0], &c[0], ldc, alpha, beta, 0)
		return
	}
	// Partial tile: compute into a full scratch tile, then merge.
	var tmp [mr256 * 16]float32
	kern256xTab[rows-1](k, &ap[0], &bp[0], &tmp[0], 16, alpha, 0, 0)
	for r := 0; r < rows; r++ {
		row := c[r*ldc : r*ldc+cols]
		t := tmp[r*16 : r*16+cols]
		if beta == 0 {
			copy(row, t)
		} else {
			for j := range row {
				row[j] = t[j] + beta*row[j]
			}
		}
	}
}
