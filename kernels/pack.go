package kernels

// Packing copies a block of op(A) into mr-row panels and a block of op(B)
// into nr-column panels, each stored depth-major (for every p, the mr or
// nr values the micro-kernel consumes together), zero-padded to full
// panels. Transposition is absorbed here, so one kernel serves all four
// transpose combinations.

// packA packs rows [ic, ic+mc) and depths [pc, pc+kc) of op(A) into ap.
func (x *gemmJob) packA(ap []float32, ic, mc, pc, kc int) {
	mr := x.im.mr
	for ir := 0; ir < mc; ir += mr {
		rows := min(mr, mc-ir)
		dst := ap[ir*kc : ir*kc+mr*kc]
		if x.transA {
			// op(A)[i][p] = a[p*lda+i]: each depth is a contiguous run.
			base := pc*x.lda + ic + ir
			for p := 0; p < kc; p++ {
				d := dst[p*mr : p*mr+mr]
				copy(d, x.a[base+p*x.lda:base+p*x.lda+rows])
				clear(d[rows:])
			}
			continue
		}
		// op(A)[i][p] = a[i*lda+p]: transpose rows into the panel.
		for r := 0; r < rows; r++ {
			src := x.a[(ic+ir+r)*x.lda+pc:][:kc]
			scatter(dst[r:], src, mr)
		}
		for r := rows; r < mr; r++ {
			for p := 0; p < kc; p++ {
				dst[p*mr+r] = 0
			}
		}
	}
}

// packB packs columns [jc+c0, jc+c1) and depths [pc, pc+kc) of op(B) into
// bp; c0 is a multiple of nr and the panels start at bp[c0*kc].
func (x *gemmJob) packB(bp []float32, pc, kc, jc, c0, c1 int) {
	nr := x.im.nr
	for jr := c0; jr < c1; jr += nr {
		cols := min(nr, c1-jr)
		dst := bp[jr*kc : jr*kc+nr*kc]
		if !x.transB {
			// op(B)[p][j] = b[p*ldb+j]: each depth is a contiguous run.
			base := pc*x.ldb + jc + jr
			for p := 0; p < kc; p++ {
				d := dst[p*nr : p*nr+nr]
				copy(d, x.b[base+p*x.ldb:base+p*x.ldb+cols])
				clear(d[cols:])
			}
			continue
		}
		for j := 0; j < cols; j++ {
			src := x.b[(jc+jr+j)*x.ldb+pc:][:kc]
			scatter(dst[j:], src, nr)
		}
		for j := cols; j < nr; j++ {
			for p := 0; p < kc; p++ {
				dst[p*nr+j] = 0
			}
		}
	}
}

// scatter writes src[p] to dst[p*stride].
func scatter(dst, src []float32, stride int) {
	if len(src) == 0 {
		return
	}
	_ = dst[(len(src)-1)*stride]
	for p, v := range src {
		dst[p*stride] = v
	}
}
