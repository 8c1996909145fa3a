package kernels

import (
	"fmt"
	"math"
	"slices"
)

// Winograd F(n×n, 3×3) convolution (n = 2 or 4) for 3×3 layers with
// stride 1 and one pixel of zero padding on every side (output the
// input's size), the bulk of a ResNet's work. Each n×n block of outputs (a
// tile) comes from the a×a input patch around it (a = n+2): with
// V = Bᵀ·d·B per input channel and U = G·g·Gᵀ per filter, the tile is
// Aᵀ·(Σ_c U ⊙ V)·A, so the 9n² multiply-adds per channel pair and tile of
// the direct convolution become a² (16 instead of 36 for n = 2, 36 instead
// of 144 for n = 4), done as a² independent products (one per position ξ
// of the transformed tile) of the transformed filters (M × C, packed once)
// with the transformed inputs (C × tiles). The transforms are additions
// and multiplications by small constants; their float32 rounding differs
// from the direct convolution's by a few units in the last place for
// n = 2 and somewhat more for n = 4.
//
// Planes go in and out in the parity layout of the tile size, which makes
// every transform a sweep over 16 consecutive tiles with no shuffles: a
// plane of H×W becomes n² sub-planes P[ry][rx] of TH×TW (TH = ⌈H/n⌉,
// TW = ⌈W/n⌉) with P[ry][rx][Y][X] = x[nY+ry][nX+rx], so that tile
// (ty, tx) — number ty·TW + tx of the TI = TH·TW tiles — has its output
// pixels at P[p][q][ty][tx] and each of its a² input pixels at a fixed
// offset from the tile's number in one sub-plane. Positions outside the
// image (sizes not multiples of n) hold anything and are never read.
// WinogradSplit and WinogradMerge convert from and to row-major planes.

// winoKind holds the transform matrices of one tile size.
type winoKind struct {
	n, a int
	bt   [][]float32 // Bᵀ, a×a
	g    [][]float64 // G, a×3
	at   [][]float32 // Aᵀ, n×a
}

var winoKinds = map[int]*winoKind{
	2: {n: 2, a: 4,
		bt: [][]float32{{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}},
		g:  [][]float64{{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}},
		at: [][]float32{{1, 1, 1, 0}, {0, 1, -1, -1}}},
	4: {n: 4, a: 6,
		bt: [][]float32{
			{4, 0, -5, 0, 1, 0},
			{0, -4, -4, 1, 1, 0},
			{0, 4, -4, -1, 1, 0},
			{0, -2, -1, 2, 1, 0},
			{0, 2, -1, -2, 1, 0},
			{0, 4, 0, -5, 0, 1}},
		g: [][]float64{
			{1.0 / 4, 0, 0},
			{-1.0 / 6, -1.0 / 6, -1.0 / 6},
			{-1.0 / 6, 1.0 / 6, -1.0 / 6},
			{1.0 / 24, 1.0 / 12, 1.0 / 6},
			{1.0 / 24, -1.0 / 12, 1.0 / 6},
			{0, 0, 1}},
		at: [][]float32{
			{1, 1, 1, 1, 1, 0},
			{0, 1, -1, 2, -2, 0},
			{0, 1, 1, 4, 4, 0},
			{0, 1, -1, 8, -8, 1}}},
}

func winoKindOf(n int) *winoKind {
	k := winoKinds[n]
	if k == nil {
		panic(fmt.Sprintf("kernels: Winograd tile size %d (want 2 or 4)", n))
	}
	return k
}

// WinogradPlane returns the size of an h×w plane in the parity layout of
// tile size n.
func WinogradPlane(h, w, n int) int { return n * n * ((h + n - 1) / n) * ((w + n - 1) / n) }

// WinogradWeights holds a layer's transformed filters, packed for the
// products.
type WinogradWeights struct {
	m, c, n int
	pa      []PackedA
	u       []float32
	src     []float32 // the filters last prepared
}

// Prepare transforms the filters w [m, c, 3, 3] for tile size n (2 or 4)
// and packs them for the current implementation; it returns at once when
// it last prepared the same values the same way.
func (ww *WinogradWeights) Prepare(m, c, n int, w []float32) {
	k := winoKindOf(n)
	w = w[:m*c*9]
	if ww.m == m && ww.c == c && ww.n == n && ww.pa[0].im == current.Load() && slices.Equal(ww.src, w) {
		return
	}
	ww.m, ww.c, ww.n = m, c, n
	ww.src = append(ww.src[:0], w...)
	xis := k.a * k.a
	growFloats(&ww.u, xis*m*c)
	t := make([][3]float64, k.a)
	for o := 0; o < m; o++ {
		for i := 0; i < c; i++ {
			f := w[(o*c+i)*9 : (o*c+i+1)*9]
			// t = G·f (a×3), u = t·Gᵀ (a×a).
			for r := 0; r < k.a; r++ {
				for q := 0; q < 3; q++ {
					t[r][q] = k.g[r][0]*float64(f[q]) + k.g[r][1]*float64(f[3+q]) + k.g[r][2]*float64(f[6+q])
				}
			}
			for r := 0; r < k.a; r++ {
				for q := 0; q < k.a; q++ {
					u := t[r][0]*k.g[q][0] + t[r][1]*k.g[q][1] + t[r][2]*k.g[q][2]
					ww.u[((r*k.a+q)*m+o)*c+i] = float32(u)
				}
			}
		}
	}
	if len(ww.pa) != xis {
		ww.pa = make([]PackedA, xis)
	}
	for xi := range ww.pa {
		ww.pa[xi].Pack(false, m, c, ww.u[xi*m*c:(xi+1)*m*c], c)
	}
}

// WinogradEpilogue is applied to every output before it is stored, with
// the rounding of a bias add, Affine, Add and Clamp in that order:
// v = acc + Bias[m]; v = A[m]·v + B[m]; v += residual; min(max(v, Lo), Hi).
// Nil Bias means none and nil A, B mean A = 1, B = 0. The residual of
// channel m, image j is a parity-layout plane at Res[m·ResCS + j·ResPS]
// (nil for none).
type WinogradEpilogue struct {
	A, B, Bias   []float32
	Lo, Hi       float32
	Res          []float32
	ResCS, ResPS int
}

// winoScratch is the working memory of one call: transformed inputs,
// products, the row offsets of the products, the input transform's tap
// offsets and lane masks, and the transforms' spill area.
type winoScratch struct {
	v, m, stash []float32
	rows        []int
	offs        []int
	masks       []uint16
	key         [4]int
}

var winoScratches FreeList[winoScratch]

// WinogradConv computes the 3×3, stride-1, pad-1 convolution of planes
// h×w images with the filters of ww, then ep (nil for none), on the
// calling goroutine. Input channel c of image j is the parity-layout
// plane (of ww's tile size n) at x[c·xcs + j·WinogradPlane(h, w, n)];
// output channel m of image j is written as such a plane at
// y[m·ycs + j·WinogradPlane(h, w, n)].
func WinogradConv(ww *WinogradWeights, h, w, planes int, x []float32, xcs int, y []float32, ycs int, ep *WinogradEpilogue) {
	winogradConv(ww, h, w, planes, false, x, xcs, y, ycs, ep)
}

// WinogradConvStacked is WinogradConv on planes in the stacked parity
// layout, which puts the tiles of consecutive images next to each other:
// sub-plane k (of n²) of image j, channel c at x[c·xcs + k·planes·TI +
// j·TI] (TI = ⌈h/n⌉·⌈w/n⌉ tiles per image; the sub-planes of all images
// of a channel take WinogradPlane(h, w, n)·planes consecutive floats), so
// that the transforms' 16-tile runs stay full on small planes. The output
// and the residual (at Res[m·ResCS], ResPS unused) have that layout too;
// SplitParity and MergeParity with ParityLayout{N: n, CS: cs, SS:
// planes·TI, PS: TI, LD: ⌈w/n⌉} convert from and to row-major planes.
func WinogradConvStacked(ww *WinogradWeights, h, w, planes int, x []float32, xcs int, y []float32, ycs int, ep *WinogradEpilogue) {
	winogradConv(ww, h, w, planes, true, x, xcs, y, ycs, ep)
}

// winogradConv is WinogradConv, or with stacked WinogradConvStacked.
func winogradConv(ww *WinogradWeights, h, w, planes int, stacked bool, x []float32, xcs int, y []float32, ycs int, ep *WinogradEpilogue) {
	if planes <= 0 || h <= 0 || w <= 0 || ww.m <= 0 || ww.c <= 0 {
		return
	}
	k := winoKindOf(ww.n)
	m, c, n := ww.m, ww.c, ww.n
	xis := k.a * k.a
	th, tw := (h+n-1)/n, (w+n-1)/n
	ti := th * tw
	ps := n * n * ti
	t := planes * ti
	_ = x[(c-1)*xcs+planes*ps-1]
	_ = y[(m-1)*ycs+planes*ps-1]
	e := WinogradEpilogue{Lo: float32(math.Inf(-1)), Hi: float32(math.Inf(1))}
	if ep != nil {
		e = *ep
		if e.A != nil || e.B != nil {
			_, _ = e.A[m-1], e.B[m-1]
		}
		if e.Bias != nil {
			_ = e.Bias[m-1]
		}
		if e.Res != nil && stacked {
			_ = e.Res[(m-1)*e.ResCS+planes*ps-1]
		} else if e.Res != nil {
			_ = e.Res[(m-1)*e.ResCS+(planes-1)*e.ResPS+ps-1]
		}
	}
	im := current.Load()
	sc := winoScratches.Get()
	defer winoScratches.Put(sc)
	if stacked {
		sc.table(k, h, w, planes)
	} else {
		sc.table(k, h, w, 1)
	}
	growFloats(&sc.stash, xis*16)
	mm := growFloats(&sc.m, xis*m*t)
	if !stacked || !winoPairedArch(im, k, sc, ww, x, xcs, t, mm) {
		v := growFloats(&sc.v, xis*c*t)
		for ch := 0; ch < c; ch++ {
			if stacked {
				winoInput(im, k, sc, x[ch*xcs:ch*xcs+planes*ps], t, v[ch*t:], c*t)
				continue
			}
			for j := 0; j < planes; j++ {
				winoInput(im, k, sc, x[ch*xcs+j*ps:ch*xcs+(j+1)*ps], ti, v[ch*t+j*ti:], c*t)
			}
		}
		// The products read the rows of V in place (no packing of B).
		rows := sc.rows[:0]
		for ch := 0; ch < c; ch++ {
			rows = append(rows, ch*t)
		}
		sc.rows = rows
		if !winoProductsArch(im, ww, v, rows, t, mm) {
			for xi := 0; xi < xis; xi++ {
				SgemmPackedOffsets(&ww.pa[xi], t, 1, v[xi*c*t:(xi+1)*c*t], rows, 0, mm[xi*m*t:(xi+1)*m*t], t)
			}
		}
	}
	for o := 0; o < m; o++ {
		a, b, bias := float32(1), float32(0), float32(0)
		if e.A != nil {
			a, b = e.A[o], e.B[o]
		}
		if e.Bias != nil {
			bias = e.Bias[o]
		}
		if stacked {
			var res []float32
			if e.Res != nil {
				res = e.Res[o*e.ResCS : o*e.ResCS+planes*ps]
			}
			winoOutput(im, k, sc, mm[o*t:], m*t, t, y[o*ycs:o*ycs+planes*ps], res, a, b, bias, e.Lo, e.Hi)
			continue
		}
		for j := 0; j < planes; j++ {
			var res []float32
			if e.Res != nil {
				res = e.Res[o*e.ResCS+j*e.ResPS : o*e.ResCS+j*e.ResPS+ps]
			}
			winoOutput(im, k, sc, mm[o*t+j*ti:], m*t, ti, y[o*ycs+j*ps:o*ycs+(j+1)*ps], res, a, b, bias, e.Lo, e.Hi)
		}
	}
}

// table sets the input transform's tap offsets and masks for planes h×w
// planes stacked (one: the parity layout): input pixel (i, j) of the
// patch of tile t (t mod TI of image ⌊t/TI⌋ at tile row ty, column tx:
// image row n·ty−1+i, column n·tx−1+j) is at offs[a·i+j] + t in the
// sub-planes of planes·TI tiles; masks[q·(a²+1) + a·i+j] has the lanes l
// of the run of tiles 16q+l whose pixel (i, j) lies in the image,
// masks[q·(a²+1) + a²] the lanes that are tiles.
func (sc *winoScratch) table(k *winoKind, h, w, planes int) {
	if sc.key == [4]int{h, w, k.n, planes} && len(sc.offs) == k.a*k.a {
		return
	}
	sc.key = [4]int{h, w, k.n, planes}
	n, a := k.n, k.a
	th, tw := (h+n-1)/n, (w+n-1)/n
	ti := th * tw
	all := planes * ti
	sc.offs = sc.offs[:0]
	for i := 0; i < a; i++ {
		for j := 0; j < a; j++ {
			// Patch row i is image row n·ty + (i−1): sub-plane row
			// parity (i−1) mod n, tile row shift ⌊(i−1)/n⌋.
			ry, dy := (i-1+n)%n, (i-1+n)/n-1
			rx, dx := (j-1+n)%n, (j-1+n)/n-1
			sc.offs = append(sc.offs, (ry*n+rx)*all+dy*tw+dx)
		}
	}
	per := a*a + 1
	chunks := (all + 15) / 16
	if cap(sc.masks) < per*chunks {
		sc.masks = make([]uint16, per*chunks)
	}
	sc.masks = sc.masks[:per*chunks]
	clear(sc.masks)
	for q := 0; q < chunks; q++ {
		for l := 0; l < 16 && 16*q+l < all; l++ {
			t := 16*q + l
			ty, tx := (t%ti)/tw, t%tw
			sc.masks[q*per+a*a] |= 1 << l
			for i := 0; i < a; i++ {
				for j := 0; j < a; j++ {
					r, col := n*ty-1+i, n*tx-1+j
					if r >= 0 && r < h && col >= 0 && col < w {
						sc.masks[q*per+a*i+j] |= 1 << l
					}
				}
			}
		}
	}
}

// winoInput writes V[ξ·vs + t] for the ti tiles t of one parity plane x.
func winoInput(im *impl, k *winoKind, sc *winoScratch, x []float32, ti int, v []float32, vs int) {
	a := k.a
	_ = x[k.n*k.n*ti-1]
	_ = v[(a*a-1)*vs+ti-1]
	if !winoInputArch(im, k.n, sc, x, ti, v, vs) {
		winoInputGeneric(k, sc, x, ti, v, vs)
	}
}

// winoInputGeneric is winoInput's portable code.
func winoInputGeneric(k *winoKind, sc *winoScratch, x []float32, ti int, v []float32, vs int) {
	a := k.a
	per := a*a + 1
	var d, u [36]float32
	for t := 0; t < ti; t++ {
		q, l := t/16, t%16
		for e := 0; e < a*a; e++ {
			d[e] = 0
			if sc.masks[q*per+e]&(1<<l) != 0 {
				d[e] = x[sc.offs[e]+t]
			}
		}
		// Rows: u = d·B (patch row i), then columns: V = Bᵀ·u.
		for i := 0; i < a; i++ {
			for b := 0; b < a; b++ {
				var s float32
				for j := 0; j < a; j++ {
					s += d[i*a+j] * k.bt[b][j]
				}
				u[i*a+b] = s
			}
		}
		for r := 0; r < a; r++ {
			for b := 0; b < a; b++ {
				var s float32
				for i := 0; i < a; i++ {
					s += k.bt[r][i] * u[i*a+b]
				}
				v[(r*a+b)*vs+t] = s
			}
		}
	}
}

// winoOutput turns the products M[ξ·ms + t] of the ti tiles of one output
// channel and image into its parity plane y, with the epilogue (res a
// parity plane, nil for none).
func winoOutput(im *impl, k *winoKind, sc *winoScratch, mm []float32, ms, ti int, y, res []float32, a, b, bias, lo, hi float32) {
	n, pa := k.n, k.a
	_ = mm[(pa*pa-1)*ms+ti-1]
	_ = y[n*n*ti-1]
	if !winoOutputArch(im, n, sc, mm, ms, ti, y, res, a, b, bias, lo, hi) {
		winoOutputGeneric(k, mm, ms, ti, y, res, a, b, bias, lo, hi)
	}
}

// winoOutputGeneric is winoOutput's portable code.
func winoOutputGeneric(k *winoKind, mm []float32, ms, ti int, y, res []float32, a, b, bias, lo, hi float32) {
	n, pa := k.n, k.a
	var s [24]float32
	for t := 0; t < ti; t++ {
		// Columns: s = Aᵀ·M, then rows: out = s·A.
		for p := 0; p < n; p++ {
			for c := 0; c < pa; c++ {
				var acc float32
				for r := 0; r < pa; r++ {
					acc += k.at[p][r] * mm[(r*pa+c)*ms+t]
				}
				s[p*pa+c] = acc
			}
		}
		for p := 0; p < n; p++ {
			for q := 0; q < n; q++ {
				var v float32
				for c := 0; c < pa; c++ {
					v += s[p*pa+c] * k.at[q][c]
				}
				v += bias
				v = a*v + b
				o := (p*n+q)*ti + t
				if res != nil {
					v += res[o]
				}
				y[o] = min(max(v, lo), hi)
			}
		}
	}
}

// WinogradSplit copies ch channels of planes h×w images into the parity
// layout of tile size n: channel c of image j from the row-major plane at
// x[c·xcs + j·xps] to y[c·ycs + j·WinogradPlane(h, w, n)].
func WinogradSplit(h, w, n, ch, planes int, x []float32, xcs, xps int, y []float32, ycs int) {
	th, tw := (h+n-1)/n, (w+n-1)/n
	ti := th * tw
	SplitParity(h, w, ch, planes, x, xcs, xps, y, ParityLayout{N: n, CS: ycs, SS: ti, PS: n * n * ti, LD: tw})
}

// ParityLayout places the N² sub-planes P[ry][rx] (⌈h/N⌉ rows of ⌈w/N⌉,
// P[ry][rx][Y][X] = x[N·Y+ry][N·X+rx]) of each channel and image: row Y
// of sub-plane k = N·ry+rx of channel c, image j at
// c·CS + k·SS + j·PS + Off + Y·LD. N is 2 or 4.
type ParityLayout struct {
	N, CS, SS, PS, LD, Off int
}

// SplitParity copies ch channels of planes h×w images (channel c of image
// j the row-major plane at x[c·xcs + j·xps]) into y in layout l. Sub-plane
// positions past the image (sizes not multiples of N) get zero or are
// left alone.
func SplitParity(h, w, ch, planes int, x []float32, xcs, xps int, y []float32, l ParityLayout) {
	if h <= 0 || w <= 0 || ch <= 0 || planes <= 0 {
		return
	}
	n := l.N
	l.check("SplitParity", h, w, ch, planes, y)
	_ = x[(ch-1)*xcs+(planes-1)*xps+h*w-1]
	im := current.Load()
	for c := 0; c < ch; c++ {
		for j := 0; j < planes; j++ {
			src := x[c*xcs+j*xps : c*xcs+j*xps+h*w]
			dst := y[c*l.CS+j*l.PS+l.Off:]
			if winoSplitArch(im, n, src, h, w, dst, l.LD, l.SS) {
				continue
			}
			for r := 0; r < h; r++ {
				row := src[r*w : (r+1)*w]
				base := (r % n) * n * l.SS
				Y := r / n
				for col, v := range row {
					dst[base+(col%n)*l.SS+Y*l.LD+col/n] = v
				}
			}
		}
	}
}

// check panics unless l is a parity layout of tile size 2 or 4 whose rows
// hold ⌈w/N⌉ and buf holds ch channels of planes h×w images in it.
func (l ParityLayout) check(fn string, h, w, ch, planes int, buf []float32) {
	n := l.N
	winoKindOf(n)
	th, tw := (h+n-1)/n, (w+n-1)/n
	if l.LD < tw {
		panic(fmt.Sprintf("kernels: %s: row stride %d below the sub-plane width %d", fn, l.LD, tw))
	}
	_ = buf[(ch-1)*l.CS+(n*n-1)*l.SS+(planes-1)*l.PS+l.Off+(th-1)*l.LD+tw-1]
}

// WinogradMerge is WinogradSplit's inverse: channel c of image j from the
// parity plane at x[c·xcs + j·WinogradPlane(h, w, n)] to the h rows of w
// at y[c·ycs + j·yps + r·yld].
func WinogradMerge(h, w, n, ch, planes int, x []float32, xcs int, y []float32, ycs, yps, yld int) {
	th, tw := (h+n-1)/n, (w+n-1)/n
	ti := th * tw
	MergeParity(h, w, ch, planes, x, ParityLayout{N: n, CS: xcs, SS: ti, PS: n * n * ti, LD: tw}, y, ycs, yps, yld)
}

// MergeParity is SplitParity's inverse: channel c of image j from layout
// l to the h rows of w at y[c·ycs + j·yps + r·yld].
func MergeParity(h, w, ch, planes int, x []float32, l ParityLayout, y []float32, ycs, yps, yld int) {
	if h <= 0 || w <= 0 || ch <= 0 || planes <= 0 {
		return
	}
	n := l.N
	l.check("MergeParity", h, w, ch, planes, x)
	tw := (w + n - 1) / n
	_ = y[(ch-1)*ycs+(planes-1)*yps+(h-1)*yld+w-1]
	im := current.Load()
	for c := 0; c < ch; c++ {
		for j := 0; j < planes; j++ {
			src := x[c*l.CS+j*l.PS+l.Off:]
			dst := y[c*ycs+j*yps : c*ycs+j*yps+(h-1)*yld+w]
			if l.LD == tw && winoMergeArch(im, n, src, h, w, dst, yld, l.SS) {
				continue
			}
			for r := 0; r < h; r++ {
				base := (r%n)*n*l.SS + (r/n)*l.LD
				for col := 0; col < w; col++ {
					dst[r*yld+col] = src[base+(col%n)*l.SS+col/n]
				}
			}
		}
	}
}

// Subsample2 copies the even rows and columns of ch channels of planes
// h×w images — channel c of image j from the row-major plane at
// x[c·xcs + j·xps] — as ⌈h/2⌉×⌈w/2⌉ planes to y[c·ycs + j·yps]: the input
// a 1×1 convolution of stride 2 reads.
func Subsample2(h, w, ch, planes int, x []float32, xcs, xps int, y []float32, ycs, yps int) {
	if h <= 0 || w <= 0 || ch <= 0 || planes <= 0 {
		return
	}
	oh, ow := (h+1)/2, (w+1)/2
	_ = x[(ch-1)*xcs+(planes-1)*xps+h*w-1]
	_ = y[(ch-1)*ycs+(planes-1)*yps+oh*ow-1]
	im := current.Load()
	for c := 0; c < ch; c++ {
		for j := 0; j < planes; j++ {
			src := x[c*xcs+j*xps : c*xcs+j*xps+h*w]
			dst := y[c*ycs+j*yps : c*ycs+j*yps+oh*ow]
			if sub2Arch(im, src, h, w, dst) {
				continue
			}
			for r := 0; r < oh; r++ {
				for col := 0; col < ow; col++ {
					dst[r*ow+col] = src[2*r*w+2*col]
				}
			}
		}
	}
}
