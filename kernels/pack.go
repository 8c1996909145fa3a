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
			x.im.packN(dst, x.a[pc*x.lda+ic+ir:], x.lda, rows, kc, mr)
			continue
		}
		// op(A)[i][p] = a[i*lda+p]: transpose rows into the panel.
		x.im.packT(dst, x.a[(ic+ir)*x.lda+pc:], x.lda, rows, kc, mr)
	}
}

// packBOffs packs columns [jc+c0, jc+c1) and depths [pc, pc+kc) of op(B)
// = Bᵀ where row j of B is b[boffs[j]:] (see SgemmRowsT).
func (x *gemmJob) packBOffs(bp []float32, pc, kc, jc, c0, c1 int) {
	nr := x.im.nr
	for jr := c0; jr < c1; jr += nr {
		cols := min(nr, c1-jr)
		x.im.packTOffs(bp[jr*kc:jr*kc+nr*kc], x.b[pc:], x.boffs[jc+jr:], cols, kc, nr)
	}
}

// packB packs columns [jc+c0, jc+c1) and depths [pc, pc+kc) of op(B) into
// bp; c0 is a multiple of nr and the panels start at bp[c0*kc].
func (x *gemmJob) packB(bp []float32, pc, kc, jc, c0, c1 int) {
	if x.boffs != nil {
		x.packBOffs(bp, pc, kc, jc, c0, c1)
		return
	}
	nr := x.im.nr
	for jr := c0; jr < c1; jr += nr {
		cols := min(nr, c1-jr)
		dst := bp[jr*kc : jr*kc+nr*kc]
		if !x.transB {
			// op(B)[p][j] = b[p*ldb+j]: each depth is a contiguous run.
			x.im.packN(dst, x.b[pc*x.ldb+jc+jr:], x.ldb, cols, kc, nr)
			continue
		}
		// op(B)[p][j] = b[j*ldb+p]: transpose rows into the panel.
		x.im.packT(dst, x.b[(jc+jr)*x.ldb+pc:], x.ldb, cols, kc, nr)
	}
}

// packNGeneric sets dst[p·width+j] = src[p·ld+j] for p < kc, j < cols
// and zero-pads columns up to width.
func packNGeneric(dst, src []float32, ld, cols, kc, width int) {
	for p := 0; p < kc; p++ {
		d := dst[p*width : p*width+width]
		copy(d, src[p*ld:p*ld+cols])
		clear(d[cols:])
	}
}

// packTGeneric sets dst[p·width+r] = src[r·ld+p] for p < kc, r < rows
// and zero-pads rows up to width.
func packTGeneric(dst, src []float32, ld, rows, kc, width int) {
	if kc <= 0 {
		return
	}
	dst = dst[:kc*width]
	for r := 0; r < rows; r++ {
		row := src[r*ld : r*ld+kc]
		for p, v := range row {
			dst[p*width+r] = v
		}
	}
	for r := rows; r < width; r++ {
		for p := 0; p < kc; p++ {
			dst[p*width+r] = 0
		}
	}
}

// packTOffsGeneric sets dst[p·width+r] = src[offs[r]+p] for p < kc,
// r < rows and zero-pads rows up to width.
func packTOffsGeneric(dst, src []float32, offs []int32, rows, kc, width int) {
	if kc <= 0 {
		return
	}
	dst = dst[:kc*width]
	for r := 0; r < rows; r++ {
		row := src[int(offs[r]) : int(offs[r])+kc]
		for p, v := range row {
			dst[p*width+r] = v
		}
	}
	for r := rows; r < width; r++ {
		for p := 0; p < kc; p++ {
			dst[p*width+r] = 0
		}
	}
}
