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

func winoMergeArch(im *impl, n int, x []float32, h, w int, y []float32, yld int) bool {
	if im != avx512Impl {
		return false
	}
	tw := (w + n - 1) / n
	ti := ((h + n - 1) / n) * tw
	if n == 2 {
		wgMerge512(&x[0], h, w, &y[0], yld, tw, ti)
	} else {
		wgMerge4x512(&x[0], h, w, &y[0], yld, tw, ti)
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
