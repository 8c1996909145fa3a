//go:build amd64

package kernels

//go:generate go run winograd_gen.go

//go:noescape
func wgIn512(x, v *float32, vs int, offs *int, masks *uint16, ti int)

//go:noescape
func wgOut512(mm *float32, ms, ti int, y, res *float32, a, b, bias, lo, hi float32)

//go:noescape
func wgIn4x512(x, v *float32, vs int, offs *int, masks *uint16, ti int, stash *float32)

//go:noescape
func wgOut4x512(mm *float32, ms, ti int, y, res *float32, a, b, bias, lo, hi float32, stash *float32)

//go:noescape
func wgSplit512(x *float32, h, w int, y *float32, ld, ss, tw int)

//go:noescape
func wgMerge512(x *float32, h, w int, y *float32, yld, tw, ti int)

//go:noescape
func wgSplit4x512(x *float32, h, w int, y *float32, ld, ss, tw int)

//go:noescape
func wgSub2x512(x *float32, h, w int, y *float32, ow int)

//go:noescape
func wgMerge4x512(x *float32, h, w int, y *float32, yld, tw, ti int)

// The *Arch functions run the AVX-512 code when im is the AVX-512
// implementation and report whether they did; their callers have checked
// the slice bounds.

func winoInputArch(im *impl, n int, sc *winoScratch, x []float32, ti int, v []float32, vs int) bool {
	if im != avx512Impl {
		return false
	}
	if n == 2 {
		wgIn512(&x[0], &v[0], vs, &sc.offs[0], &sc.masks[0], ti)
	} else {
		wgIn4x512(&x[0], &v[0], vs, &sc.offs[0], &sc.masks[0], ti, &sc.stash[0])
	}
	return true
}

func winoOutputArch(im *impl, n int, sc *winoScratch, mm []float32, ms, ti int, y, res []float32, a, b, bias, lo, hi float32) bool {
	if im != avx512Impl {
		return false
	}
	var rp *float32
	if res != nil {
		_ = res[n*n*ti-1]
		rp = &res[0]
	}
	if n == 2 {
		wgOut512(&mm[0], ms, ti, &y[0], rp, a, b, bias, lo, hi)
	} else {
		wgOut4x512(&mm[0], ms, ti, &y[0], rp, a, b, bias, lo, hi, &sc.stash[0])
	}
	return true
}

func winoSplitArch(im *impl, n int, x []float32, h, w int, y []float32, ld, ss int) bool {
	if im != avx512Impl {
		return false
	}
	if n == 2 {
		wgSplit512(&x[0], h, w, &y[0], ld, ss, (w+1)/2)
	} else {
		wgSplit4x512(&x[0], h, w, &y[0], ld, ss, (w+3)/4)
	}
	return true
}

// winoMergeArch reads sub-planes ss apart, rows ⌈w/n⌉ apart.
func winoMergeArch(im *impl, n int, x []float32, h, w int, y []float32, yld, ss int) bool {
	if im != avx512Impl {
		return false
	}
	tw := (w + n - 1) / n
	if n == 2 {
		wgMerge512(&x[0], h, w, &y[0], yld, tw, ss)
	} else {
		wgMerge4x512(&x[0], h, w, &y[0], yld, tw, ss)
	}
	return true
}

func sub2Arch(im *impl, x []float32, h, w int, y []float32) bool {
	if im != avx512Impl {
		return false
	}
	wgSub2x512(&x[0], h, w, &y[0], (w+1)/2)
	return true
}

// winoProductsArch computes the products of WinogradConv, mm[ξ·m·t + o·t
// + col] = Σ_i U_ξ[o][i]·v[ξ·c·t + i·t + col] (rows[i] = i·t), with the
// AVX-512 micro-kernel called directly, which saves SgemmPackedOffsets'
// set-up per product (a layer has a² of them, on few columns); it reports
// false (nothing done) for other implementations or filters packed in
// several depth blocks.
func winoProductsArch(im *impl, ww *WinogradWeights, v []float32, rows []int, t int, mm []float32) bool {
	if !winoDirect(im, ww) {
		return false
	}
	m, c := ww.m, ww.c
	_ = rows[c-1]
	_ = v[len(ww.pa)*c*t-1]
	_ = mm[len(ww.pa)*m*t-1]
	for xi := range ww.pa {
		winoPanels(&ww.pa[xi], m, c, t, v[xi*c*t:], 0, rows, mm[xi*m*t:])
	}
	return true
}

// winoDirect reports whether the products can call the AVX-512
// micro-kernel directly.
func winoDirect(im *impl, ww *WinogradWeights) bool {
	if im != avx512Impl || im.mr != mr512 || im.nr != 32 {
		return false
	}
	for xi := range ww.pa {
		if p := &ww.pa[xi]; p.im != im || p.kblocks != 1 || p.m != ww.m || p.k != ww.c {
			return false
		}
	}
	return true
}

// winoPanels computes the m×t product of p (m×c) and the c rows at
// v[rows[i]] (the 32-column panel j of them starting at v[j·pstride +
// rows[i]], or at 32·j when pstride is 0) into mm (rows t apart).
func winoPanels(p *PackedA, m, c, t int, v []float32, pstride int, rows []int, mm []float32) {
	_ = p.data[p.mpad*c-1]
	for j := 0; 32*j < t; j++ {
		cols := min(32, t-32*j)
		mask := uint32(1<<cols - 1)
		b := 32 * j
		if pstride > 0 {
			b = j * pstride
		}
		for q := 0; q*mr512 < m; q++ {
			r := min(mr512, m-q*mr512)
			kern512oTab[r-1](c, &p.data[q*mr512*c], &v[b], &rows[0], &mm[q*mr512*t+32*j], t, 1, 0, mask)
		}
	}
}

// winoPairedArch runs the input transforms and the products of a stacked
// WinogradConv (t tiles per channel of x, channels xcs apart) with the
// transformed inputs of every 32 tiles of a channel together,
// V[i][j][ξ][32] for channel i and 32-tile panel j: the transforms then
// write nearly in sequence (a² rows of t apart miss the cache) and the
// micro-kernel reads each product's panels where they are. It reports
// false (nothing done) where winoProductsArch would.
func winoPairedArch(im *impl, k *winoKind, sc *winoScratch, ww *WinogradWeights, x []float32, xcs, t int, mm []float32) bool {
	if !winoDirect(im, ww) {
		return false
	}
	m, c, xis := ww.m, ww.c, k.a*k.a
	panels := (t + 31) / 32
	blk := xis * 32
	cs := panels * blk
	v := growFloats(&sc.v, c*cs)
	per := xis + 1
	_ = sc.masks[(2*panels-1)*per-1]
	_ = x[(c-1)*xcs+k.n*k.n*t-1]
	_ = mm[xis*m*t-1]
	for i := 0; i < c; i++ {
		xc := x[i*xcs : i*xcs+k.n*k.n*t]
		for j := 0; j < panels; j++ {
			tiles := min(32, t-32*j)
			dst := &v[i*cs+j*blk]
			if k.n == 2 {
				wgIn512(&xc[32*j], dst, 32, &sc.offs[0], &sc.masks[2*j*per], tiles)
			} else {
				wgIn4x512(&xc[32*j], dst, 32, &sc.offs[0], &sc.masks[2*j*per], tiles, &sc.stash[0])
			}
		}
	}
	rows := sc.rows[:0]
	for i := 0; i < c; i++ {
		rows = append(rows, i*cs)
	}
	sc.rows = rows
	for xi := range ww.pa {
		winoPanels(&ww.pa[xi], m, c, t, v[xi*32:], blk, rows, mm[xi*m*t:])
	}
	return true
}
