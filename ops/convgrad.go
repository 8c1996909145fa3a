package ops

import (
	"runtime"

	"lowbit/kernels"
)

// convWindowCols is the number of implicit-GEMM columns (padded grid
// positions) that gradWeightWindows aims at per group of images: long
// enough dot products to amortize their final sums, while the group's
// padded input and spread gradient stay in the core's L2 cache.
const convWindowCols = 4096

// spreadGrad writes the output gradient of images [i0, i0+cnt) onto the
// implicit GEMM's padded grids in buf (m rows of cols, image j at column
// j·hp·wp), zero elsewhere, and returns it.
func (p *convPlan) spreadGrad(buf *[]float32, dy []float32, i0, cnt, cols int) []float32 {
	g := &p.g
	plane := p.hp * p.wp
	dyp := grow(buf, p.m*cols)
	clear(dyp)
	for j := 0; j < cnt; j++ {
		src := dy[(i0+j)*p.outSize : (i0+j+1)*p.outSize]
		for m := 0; m < p.m; m++ {
			kernels.CopyRows(dyp[m*cols+j*plane:], src[m*p.ohw:(m+1)*p.ohw], g.OW, g.OH, p.wp, g.OW)
		}
	}
	return dyp
}

// windowPanel returns the panel width for mg output channels per group.
func windowPanel(mg int) int {
	if mg <= 16 {
		return 16
	}
	return 32
}

// gradWeightOuter is gradWeight by outer products (kernels.WindowOuter),
// used where the kernel exists: per group of images the output gradient is
// transposed into panels of output channels, and every block of up to 9
// rows of the (implicit) column matrix adds its values, read in place and
// broadcast one at a time, times the panels. For stride-1 layers the rows
// are the taps' windows of one channel's padded input (groups of about
// convWindowCols grid positions); otherwise they are rows of the column
// matrix (the input itself for pointwise layers). Nothing of the input is
// packed. The fixed split into partial sums hold the gradient transposed
// (row r of the column matrix, then the output channels). then, when not
// nil (only without shift), runs after each image group's gradient while
// its output gradient is still in cache (see gradWeight).
func (p *convPlan) gradWeightOuter(x, dy, dw []float32, then func(s *convScratch, gi int)) {
	g := &p.g
	plane := p.hp * p.wp
	taps := g.KH * g.KW
	nb, groups := p.nb, p.imageGroups()
	var offs []int
	if p.shift {
		workers := runtime.GOMAXPROCS(0)
		nb = max(1, min(convWindowCols/plane, (p.n+4*workers-1)/(4*workers)))
		groups = (p.n + nb - 1) / nb
		offs = make([]int, taps) // tap windows from a channel's first plane
		for ky := 0; ky < g.KH; ky++ {
			for kx := 0; kx < g.KW; kx++ {
				offs[ky*g.KW+kx] = ky*g.DH*p.wp + kx*g.DW
			}
		}
	}
	parts := min(groups, convPartsMax)
	// A pointwise layer with fewer input than output channels (expansion)
	// transposes its input into the panels instead, and broadcasts the
	// output gradient: the partial sums then hold the gradient itself
	// (output channel, then input channel in rows of ldo).
	swap := p.swapOuter()
	pm, prows := p.mg, p.rows // panel channels, broadcast rows
	if swap {
		pm, prows = p.c, p.m
	}
	width := windowPanel(pm)
	panels := (pm + width - 1) / width
	ldo := panels * width // a row of ldo per broadcast row
	tsize := prows * ldo
	pp := convPartials.Get()
	partial := grow(pp, parts*tsize)
	p.run(parts, func(s *convScratch, lo, hi int) {
		var rowOffs [9]int
		for part := lo; part < hi; part++ {
			acc := partial[part*tsize : (part+1)*tsize]
			clear(acc)
			for gi := part * groups / parts; gi < (part+1)*groups/parts; gi++ {
				i0 := gi * nb
				cnt := min(nb, p.n-i0)
				var xs, dyp []float32
				var cols int
				if p.shift {
					cols = (cnt-1)*plane + g.OH*p.wp
					xs = p.paddedGroup(&s.col, x, i0, cnt, nb)
					dyp = p.spreadGrad(&s.dy, dy, i0, cnt, cols)
				} else {
					cols = cnt * p.ohw
					dyp = p.gradOutput(s, dy, i0, cnt)
					xs = p.columns(s, x, i0, cnt)
				}
				panel := grow(&s.out, cols*width)
				if swap {
					for q := 0; q < panels; q++ {
						c0 := q * width
						kernels.PanelT(panel, xs[c0*cols:], cols, min(width, p.c-c0), cols, width)
						for r := 0; r < p.m; r += 9 {
							ro := rowOffs[:min(9, p.m-r)]
							for t := range ro {
								ro[t] = t * cols
							}
							kernels.WindowOuter(dyp[r*cols:], ro, panel, width, cols, acc[r*ldo+c0:], ldo)
						}
					}
				}
				for gr := 0; gr < p.groups && !swap; gr++ {
					for q := 0; q < panels; q++ {
						m0 := gr*p.mg + q*width
						kernels.PanelT(panel, dyp[m0*cols:], cols, min(width, p.mg-q*width), cols, width)
						if p.shift {
							for c := gr * (p.c / p.groups); c < (gr+1)*(p.c/p.groups); c++ {
								kernels.WindowOuter(xs[c*nb*plane:], offs, panel, width, cols, acc[c*taps*ldo+q*width:], ldo)
							}
							continue
						}
						for r := gr * p.kg; r < (gr+1)*p.kg; r += 9 {
							ro := rowOffs[:min(9, (gr+1)*p.kg-r)]
							for t := range ro {
								ro[t] = t * cols
							}
							kernels.WindowOuter(xs[r*cols:], ro, panel, width, cols, acc[r*ldo+q*width:], ldo)
						}
					}
				}
				if then != nil {
					then(s, gi)
				}
			}
		}
	})
	// dw[m][row within the group] = Σ_parts of the transposed sums.
	sumParts(partial, partial[:tsize], parts, tsize)
	if swap {
		for m := 0; m < p.m; m++ {
			copy(dw[m*p.kg:(m+1)*p.kg], partial[m*ldo:])
		}
		convPartials.Put(pp)
		return
	}
	for r := 0; r < p.rows; r++ {
		gr := r / p.kg
		row := partial[r*ldo:]
		for j := 0; j < p.mg; j++ {
			dw[(gr*p.mg+j)*p.kg+r%p.kg] = row[j]
		}
	}
	convPartials.Put(pp)
}

// swapOuter reports whether gradWeightOuter transposes the input rather
// than the output gradient: pointwise layers without groups whose input
// has fewer channels, a smaller transpose, and at least one full panel.
func (p *convPlan) swapOuter() bool {
	return !p.shift && p.pointwise && p.groups == 1 && p.c < p.m && p.c >= convSwapMin
}

// convSwapMin is the fewest input channels for which swapOuter transposes
// the input (narrower panels use the micro-kernel poorly).
const convSwapMin = 16

// sumParts sets dst (size floats) to the sum of the parts partial sums in
// partial (size floats each, part 0 first; dst may be part 0), adding them
// in part order for every element, with the elements spread over the
// workers.
func sumParts(partial, dst []float32, parts, size int) {
	kernels.ParallelChunks(size, max(1<<14, size/(4*runtime.GOMAXPROCS(0))), func(lo, hi int) {
		if &dst[lo] != &partial[lo] {
			copy(dst[lo:hi], partial[lo:hi])
		}
		for part := 1; part < parts; part++ {
			kernels.Add(dst[lo:hi], dst[lo:hi], partial[part*size+lo:part*size+hi])
		}
	})
}
