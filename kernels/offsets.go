package kernels

import "fmt"

// SgemmPackedOffsets computes C = alpha·op(A)·B + beta·C with op(A) taken
// from p (m×k) and B a k×n matrix whose row r is b[offs[r] : offs[r]+n]:
// the rows may sit anywhere in b, e.g. shifted windows of a padded image,
// so a stride-1 convolution reads its input in place instead of through
// an im2col copy (implicit GEMM). The AVX-512 micro-kernel loads those rows
// directly; the other implementations pack each 8- or 16-wide column tile
// first. It runs on the calling goroutine and does not allocate in steady
// state. Offsets or slices out of range make it panic.
func SgemmPackedOffsets(p *PackedA, n int, alpha float32, b []float32, offs []int, beta float32, c []float32, ldc int) {
	m, k := p.m, p.k
	if trivialProduct(m, n, k, alpha, beta, c, ldc) {
		return
	}
	if len(offs) < k {
		panic(fmt.Sprintf("kernels: SgemmPackedOffsets: %d row offsets for depth %d", len(offs), k))
	}
	for _, o := range offs[:k] {
		if o < 0 || o+n > len(b) {
			panic(fmt.Sprintf("kernels: SgemmPackedOffsets: row at offset %d of %d columns outside B of %d elements", o, n, len(b)))
		}
	}
	im := p.im
	mr, nr := im.mr, im.nr
	panels := p.mpad / mr
	var bp *[]float32
	if im.kernelOffs == nil {
		bp = panelBufs.Get()
		growFloats(bp, p.kc*nr)
	}
	for j0 := 0; j0 < n; j0 += nr {
		cols := min(nr, n-j0)
		bj := b[j0:]
		for kb := 0; kb < p.kblocks; kb++ {
			pc := kb * p.kc
			kc := min(p.kc, k-pc)
			bt := beta
			if kb > 0 {
				bt = 1
			}
			apb := p.data[kb*p.kc*p.mpad:]
			ob := offs[pc : pc+kc]
			if bp != nil {
				packOffsets(*bp, bj, ob, cols, nr)
			}
			for q := 0; q < panels; q++ {
				rows := min(mr, m-q*mr)
				apan := apb[q*mr*kc : (q+1)*mr*kc]
				cq := c[q*mr*ldc+j0:]
				if bp != nil {
					im.kernel(kc, apan, (*bp)[:kc*nr], cq, ldc, alpha, bt, rows, cols)
				} else {
					im.kernelOffs(kc, apan, bj, ob, cq, ldc, alpha, bt, rows, cols)
				}
			}
		}
	}
	if bp != nil {
		panelBufs.Put(bp)
	}
}

// packOffsets packs rows b[offs[p]:][:cols] into a width-wide panel,
// zero-padded.
func packOffsets(dst, b []float32, offs []int, cols, width int) {
	for p, o := range offs {
		d := dst[p*width : (p+1)*width]
		copy(d, b[o:o+cols])
		clear(d[cols:])
	}
}
