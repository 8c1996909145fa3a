//go:build amd64

package kernels

import (
	"golang.org/x/sys/cpu"
)

//go:generate go run gen_asm.go

var avx2Impl = derive(genericImpl, func(im *impl) {
	im.name = "avx2"
	im.mr, im.nr = mr256, 16
	im.kernel = kernelAVX2
})

var avx512Impl = derive(genericImpl, func(im *impl) {
	im.name = "avx512"
	im.mr, im.nr = mr512, 32
	im.kernel, im.kernelOffs = kernelAVX512, kernelOffsAVX512
	im.packT, im.packN, im.packTOffs = packTAVX512, packNAVX512, packTOffsAVX512
	im.axpy, im.scale, im.add, im.dot = axpy512, scale512, add512, dot512
	im.dwRows, im.dwDot = dwRowsAVX512, dwDotAVX512
	im.spread, im.deint2, im.copyRows = spreadAVX512, deint2AVX512, copyRowsAVX512
	im.epiRows = epiRowsAVX512
	im.affine, im.affineClamp = affine512, affineClamp512
	im.maskInside = maskInside512
})

// archImpls lists the assembly implementations this CPU and OS support,
// slowest first.
func archImpls() []*impl {
	var list []*impl
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		list = append(list, avx2Impl)
	}
	if cpu.X86.HasAVX512F {
		list = append(list, avx512Impl)
	}
	return list
}

func kernelAVX512(k int, ap, bp, c []float32, ldc int, alpha, beta float32, rows, cols int) {
	_ = ap[mr512*k-1]
	_ = bp[32*k-1]
	_ = c[(rows-1)*ldc+cols-1]
	mask := uint32(1<<cols - 1)
	kern512xTab[rows-1](k, &ap[0], &bp[0], &c[0], ldc, alpha, beta, mask)
}

// kernelOffsAVX512 runs the row-offset micro-kernel; SgemmPackedOffsets
// has checked that every row's cols elements lie inside b.
func kernelOffsAVX512(k int, ap, b []float32, offs []int, c []float32, ldc int, alpha, beta float32, rows, cols int) {
	_ = ap[mr512*k-1]
	_ = offs[k-1]
	_ = c[(rows-1)*ldc+cols-1]
	mask := uint32(1<<cols - 1)
	kern512oTab[rows-1](k, &ap[0], &b[0], &offs[0], &c[0], ldc, alpha, beta, mask)
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
