package ops

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"

	"lowbit/graph"
	"lowbit/kernels"
	"lowbit/tensor"
)

// convChain runs consecutive convolutions, each with its fused epilogue
// (a convFused), at inference as one op: a MobileNet inverted-residual
// block (expand 1×1, depthwise, project 1×1), a ResNet basic block (3×3,
// 3×3) or a run of such blocks (a ResNet stage), whose residual Adds then
// read values computed inside the chain; a lone convFused runs as a
// one-stage chain. Instead of one pass over the whole batch per layer,
// each goroutine takes a small group of images through the stages of a
// segment (a run of blocks that want the same group size), so the
// intermediate activations stay in its cache, and each stage writes
// straight into the layout the next one reads: a channel-major column
// matrix for a 1×1 product or a "same" depthwise convolution, parity
// sub-planes for Winograd F(2×2, 3×3) or F(4×4, 3×3) and for stride-2
// layers, padded planes for other stride-1 convolutions. The float32
// operations are those of the separate fused ops except for the Winograd
// stages, whose transforms round differently (within 1e-4 of the direct
// convolution, relative to the outputs' scale). Its inputs are the first
// stage's inputs, then each later stage's inputs without X and without a
// residual computed inside the chain.
type convChain struct {
	stages []convFused
	// res[k] ≥ 0 when stage k's Add reads the input of stage res[k]
	// (a value of the chain) rather than an input of the op; nil or −1
	// otherwise.
	res []int
}

// chainMaxStages bounds a chain.
const chainMaxStages = 256

// resOf is res[k], or −1.
func (ch convChain) resOf(k int) int {
	if k < len(ch.res) {
		return ch.res[k]
	}
	return -1
}

// resList returns a copy of res with an entry per stage.
func (ch convChain) resList() []int {
	r := make([]int, len(ch.stages))
	for k := range r {
		r[k] = ch.resOf(k)
	}
	return r
}

// Fuse appends a following Conv as a new stage, unless the chain is full;
// any other op goes to the last stage's epilogue.
func (ch convChain) Fuse(next graph.Op) (graph.Op, bool) {
	n := len(ch.stages)
	if o, ok := next.(Conv); ok {
		if n >= chainMaxStages {
			return nil, false
		}
		if _, _, _, _, _, err := o.attrs(); err != nil {
			return nil, false
		}
		return convChain{stages: append(ch.stages[:n:n], convFused{conv: o, names: o.Type()}), res: append(ch.resList(), -1)}, true
	}
	return ch.fuseLast(next, ch.resOf(n-1))
}

// fuseLast adds next to the last stage's epilogue, with res as the stage's
// res entry.
func (ch convChain) fuseLast(next graph.Op, res int) (graph.Op, bool) {
	n := len(ch.stages)
	f, ok := ch.stages[n-1].Fuse(next)
	if !ok {
		return nil, false
	}
	lf, ok := f.(convFused)
	if !ok {
		return nil, false
	}
	r := ch.resList()
	r[n-1] = res
	return convChain{stages: append(ch.stages[:n-1:n-1], lf), res: r}, true
}

// FuseInternal absorbs an Add (into the last stage's epilogue) whose
// second operand is the input of an earlier stage (see graph.ChainFuser):
// the chain's output after refs[0] fusions, which must be the output of a
// stage before the last.
func (ch convChain) FuseInternal(next graph.Op, refs []int) (graph.Op, bool) {
	if _, ok := next.(Add); !ok || len(refs) != 1 || refs[0] < 0 {
		return nil, false
	}
	n := len(ch.stages)
	j, s := -1, -1
	for k := 0; k < n-1 && s < refs[0]; k++ {
		s += ch.stages[k].steps()
		if s == refs[0] {
			j = k + 1
		}
	}
	if j < 0 {
		return nil, false
	}
	return ch.fuseLast(next, j)
}

// steps is the number of ops fused into f.
func (f convFused) steps() int {
	n := 1
	for _, b := range []bool{f.bn != nil, f.add, f.clamp} {
		if b {
			n++
		}
	}
	return n
}

// groups is the Groups attribute with 0 read as 1.
func (op Conv) groups() int { return max(op.Groups, 1) }

// Type names the chained ops.
func (ch convChain) Type() string {
	names := make([]string, len(ch.stages))
	for i, f := range ch.stages {
		names[i] = f.names
	}
	return strings.Join(names, "+")
}

// stageInputs locates one stage's inputs in the chain's input list (-1
// for absent ones; x is -1 for the previous stage's output, res for a
// residual computed inside the chain).
type stageInputs struct {
	x, w, b, bn, res int
}

// split locates every stage's inputs from their ranks: X and W are 4-D,
// then come an optional bias and the four BatchNorm parameters (1-D, or
// nil for an omitted bias), then the 4-D residual unless it is a value of
// the chain.
func (ch convChain) split(shapes [][]int) ([]stageInputs, error) {
	n := len(shapes)
	out := make([]stageInputs, len(ch.stages))
	pos := 1
	for k, f := range ch.stages {
		s := stageInputs{x: -1, b: -1, bn: -1, res: -1}
		if k == 0 {
			s.x = 0
		}
		if pos >= n || len(shapes[pos]) != 4 {
			return nil, fmt.Errorf("%s: stage %d (%s): weight W missing or not 4-D", ch.Type(), k, f.names)
		}
		s.w = pos
		pos++
		run := 0
		for pos+run < n && len(shapes[pos+run]) != 4 {
			run++
		}
		want := 0
		if f.bn != nil {
			want = 4
		}
		switch run {
		case want:
		case want + 1:
			s.b = pos
			pos++
		default:
			return nil, fmt.Errorf("%s: stage %d (%s): %d parameters after W, want %d or %d", ch.Type(), k, f.names, run, want, want+1)
		}
		if f.bn != nil {
			s.bn = pos
			pos += 4
		}
		if f.add && ch.resOf(k) < 0 {
			if pos >= n {
				return nil, fmt.Errorf("%s: stage %d (%s): residual missing", ch.Type(), k, f.names)
			}
			s.res = pos
			pos++
		}
		out[k] = s
	}
	if pos != n {
		return nil, fmt.Errorf("%s: %d inputs, the stages use %d", ch.Type(), n, pos)
	}
	return out, nil
}

// stageArgs lists one stage's inputs in convFused order (X, W, optional
// B, BatchNorm parameters, residual), with x as X; a residual computed
// inside the chain is left out.
func stageArgs[T any](in []T, s stageInputs, x T) []T {
	args := []T{x, in[s.w]}
	if s.b >= 0 {
		args = append(args, in[s.b])
	}
	if s.bn >= 0 {
		args = append(args, in[s.bn:s.bn+4]...)
	}
	if s.res >= 0 {
		args = append(args, in[s.res])
	}
	return args
}

// InferShapes chains the stages' shape inference.
func (ch convChain) InferShapes(in [][]int) ([][]int, error) {
	idx, err := ch.split(in)
	if err != nil {
		return nil, err
	}
	x := in[0]
	ins := make([][]int, len(ch.stages))
	for k, f := range ch.stages {
		ins[k] = x
		args := stageArgs(in, idx[k], x)
		if j := ch.resOf(k); j >= 0 && f.add {
			if j > k {
				return nil, fmt.Errorf("%s: stage %d reads the input of later stage %d", ch.Type(), k, j)
			}
			args = append(args, ins[j])
		}
		out, err := f.InferShapes(args)
		if err != nil {
			return nil, fmt.Errorf("stage %d: %w", k, err)
		}
		x = out[0]
	}
	return [][]int{x}, nil
}

// Backward is not available: the executor fuses only for inference.
func (ch convChain) Backward(*graph.Context, []*tensor.Tensor, []*tensor.Tensor, []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return nil, errors.New(ch.Type() + ": fused inference op has no backward")
}

// Buffer slots of convChain: each stage's BatchNorm coefficients, and
// the stage inputs kept whole (the stage-by-stage path's, and those at
// the start of a segment of the image-group path).
const (
	chainSlotCoef = 1000 // + 2·stage, + 2·stage + 1
	chainSlotVal  = 2000 // + stage
)

// chainState is what a convChain keeps in its context.
type chainState struct {
	packed []convState
	wino   []kernels.WinogradWeights
	plan   chainPlan
}

// chainTrace, when set, sees every image-group plan before it runs
// (tests).
var chainTrace func(*chainPlan)

// chainForceGroups, when positive, makes Forward use the image-group path
// with groups of that many images whatever the batch (tests).
var chainForceGroups = 0

// Forward checks every stage, then runs the image-group path, or, for
// batches smaller than the worker count (where per-layer parallelism
// is needed to use the cores), the stages one after another.
func (ch convChain) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	shapes := make([][]int, len(in))
	for i, t := range in {
		if t != nil {
			shapes[i] = t.Shape
		}
	}
	idx, err := ch.split(shapes)
	if err != nil {
		return nil, err
	}
	if in[0] == nil {
		return nil, fmt.Errorf("%s: input X missing", ch.Type())
	}
	st, _ := c.Saved.(*chainState)
	if st == nil {
		st = &chainState{}
		c.Saved = st
	}
	ns := len(ch.stages)
	if len(st.packed) != ns {
		st.packed = make([]convState, ns)
		st.wino = make([]kernels.WinogradWeights, ns)
	}
	pl := &st.plan
	if len(pl.stages) != ns {
		pl.stages = make([]chainStage, ns)
		pl.vals = make([][]float32, ns+1)
	}
	// vs[k] is the shape of stage k's input (vs[ns] the output's).
	vs := make([][]int, ns+1)
	vs[0] = in[0].Shape
	for k, f := range ch.stages {
		xs := vs[k]
		var b *tensor.Tensor
		var bs []int
		if idx[k].b >= 0 && in[idx[k].b] != nil {
			b = in[idx[k].b]
			bs = b.Shape
		}
		d, err := f.conv.dims(xs, in[idx[k].w].Shape, bs)
		if err != nil {
			return nil, fmt.Errorf("%s: stage %d: %w", ch.Type(), k, err)
		}
		if d.N < 0 || d.H < 0 || d.W < 0 {
			return nil, fmt.Errorf("%s: input X has unknown dimensions %v", ch.Type(), xs)
		}
		rest := stageArgs(in, idx[k], nil)[2:]
		if idx[k].b >= 0 {
			rest = rest[1:]
		}
		res := -1
		if j := ch.resOf(k); j >= 0 && f.add {
			if j > k {
				return nil, fmt.Errorf("%s: stage %d reads the input of later stage %d", ch.Type(), k, j)
			}
			// The epilogue checks the value's shape against the output's.
			res = j
			rest = append(rest, &tensor.Tensor{Shape: vs[j]})
		}
		epi, err := f.epilogue(c, chainSlotCoef+2*k, chainSlotCoef+2*k+1, &d, b, rest)
		if err != nil {
			return nil, err
		}
		if res >= 0 {
			epi.res = nil
		} else if x := in[0].Data; epi.res != nil && len(x) > 0 && len(epi.res) == len(x) && &epi.res[0] == &x[0] &&
			tensor.SameShape(vs[0], vs[k+1]) {
			// The residual is the chain's input: the first stage's.
			epi.res, res = nil, 0
		}
		pl.stages[k] = chainStage{d: d, w: in[idx[k].w].Data, epi: epi, pad: f.conv.PadValue, offs: pl.stages[k].offs, res: res}
		vs[k+1] = []int{d.N, d.M, d.geom.OH, d.geom.OW}
	}
	y := c.Buffer(convSlotY, vs[ns]...)
	clear(pl.vals)
	pl.vals[0], pl.vals[ns] = in[0].Data, y.Data
	defer clear(pl.vals)
	workers := runtime.GOMAXPROCS(0)
	if chainForceGroups <= 0 && vs[ns][0] < workers {
		for k := range pl.stages {
			s := &pl.stages[k]
			if k < ns-1 {
				pl.vals[k+1] = c.Buffer(chainSlotVal+k+1, vs[k+1]...).Data
			}
			epi := s.epi
			if s.res >= 0 {
				e := *epi
				e.res = pl.vals[s.res]
				epi = &e
			}
			ps := &st.packed[k]
			ps.ensure(s.d.G)
			ch.stages[k].conv.forwardData(ps, &s.d, pl.vals[k], s.w, pl.vals[k+1], epi)
		}
		return []*tensor.Tensor{y}, nil
	}
	pl.init(workers, st)
	for _, sg := range pl.segs {
		if sg.lo > 0 {
			pl.vals[sg.lo] = c.Buffer(chainSlotVal+sg.lo, vs[sg.lo]...).Data
		}
	}
	if chainTrace != nil {
		chainTrace(pl)
	}
	pl.run()
	return []*tensor.Tensor{y}, nil
}

// ensure sizes the per-group packed weights.
func (st *convState) ensure(groups int) {
	if len(st.fwd) != groups {
		st.fwd = make([]kernels.PackedA, groups)
		st.bwd = make([]kernels.PackedA, groups)
	}
}

// Stage kinds of the image-group path.
const (
	stagePointwise = iota // 1×1, stride 1, no pads: GEMM on the column matrix
	stageShift            // stride-1 convolution: implicit GEMM on padded planes
	stageStride2          // 3×3 pad 1 or 1×1 pad 0, stride 2: implicit GEMM on padded parity sub-planes
	stageSub2             // first stage, 1×1 stride 2 without pads: GEMM on the subsampled input
	stageIm2col           // any other convolution: im2col, then GEMM
	stageWinograd         // 3×3, stride 1, pads 1, zero pads, one group: Winograd F(2×2 or 4×4, 3×3)
	stageDWSame           // depthwise (or one input channel), stride 1, output of the input's size, zero pads: masked kernel
	stageDWStride2        // depthwise, stride 2, output ⌈H/2⌉×⌈W/2⌉, zero pads: masked kernel on parity planes
	stageDepthwise        // other depthwise: padded copy per channel, row kernel
)

// chainLayout places a stage's input for a group of images: element
// (channel c, image j, row y, column x) at off + c·cs + j·ps + y·ld + x.
// Padded layouts hold hp×wp planes with the image at (padT, padL) and
// the pad value around it.
type chainLayout struct {
	cs, ps, ld, off int
	size            int // floats of the buffer, with any tail the taps read
	padded          bool
	hp, padT, padL  int
	pad             float32
	// parity: each h×w plane is in the parity layout of tile size tile
	// of kernels.WinogradSplit (ps = kernels.WinogradPlane(h, w, tile);
	// ld unused), or with stacked the planes of each channel in the
	// stacked layout of kernels.WinogradConvStacked (for the cnt images
	// of a group: see parityOf).
	parity, stacked bool
	tile            int
	// s2: each channel holds four parity sub-planes (kernels.ParityLayout)
	// of nb images, ss apart, with a zero row above and column left of
	// the data (off), and zeros at positions past odd sizes.
	s2 bool
	ss int
	// sub2: the layout holds the subsampled planes (even rows and columns
	// of h×w) of a stride-2 1×1 convolution, filled from the input.
	sub2 bool
}

// chainStage is one stage of a planned chain.
type chainStage struct {
	d    convDims
	w    []float32
	epi  *convEpilogue
	pad  float32
	kind int
	pa   []kernels.PackedA
	in   chainLayout // where the stage reads its input
	// direct: the first stage of a segment reads its input in place (in
	// is the NCHW layout).
	direct bool
	kg     int
	offs   []int                    // stageShift: tap offsets of every channel
	wino   *kernels.WinogradWeights // stageWinograd: transformed filters
	// res ≥ 0: the residual is the input of stage res (epi.res is nil),
	// read from the whole tensor (plan.vals) when resWhole, else from the
	// group's scratch.
	res      int
	resWhole bool
	buf      int // the scratch buffer of the stage's input (image groups)
}

// chainSeg is a run of stages [lo, hi) that image groups of nb go through
// together; its input and output are whole NCHW tensors (plan.vals).
type chainSeg struct {
	lo, hi, nb int
	out        chainLayout // the output, NCHW
}

// chainPlan is the image-group schedule of one Forward.
type chainPlan struct {
	stages []chainStage
	segs   []chainSeg
	n      int
	bufs   int // scratch buffers per goroutine
	// vals[k] is stage k's input as a whole NCHW tensor where there is one
	// (the chain's input, segment inputs, every stage input on the
	// stage-by-stage path), vals[len(stages)] the output, during Forward.
	vals [][]float32
}

// chainTargetCols is the GEMM width per product that the image groups aim
// at (as convTargetCols), chainWinoCols the tiles per Winograd product
// (16 or 36 of them per layer: few, since the transformed inputs and
// products of a group, a² times the tiles, should stay in the cache with
// the transformed filters), and chainGroupsPerWorker the fewest groups per
// goroutine for load balance.
const (
	chainTargetCols      = convTargetCols
	chainWinoCols        = 32
	chainGroupsPerWorker = 4
	// chainWinoMinC is the fewest input channels for Winograd: below it
	// the transforms cost more than the products save.
	chainWinoMinC = 8
)

// chainWinograd enables the Winograd stages and chainWinograd4 their
// F(4×4, 3×3) form (tests switch them off to compare with the exact path).
var chainWinograd, chainWinograd4 = true, true

// winogradTile is the Winograd tile size for a layer of winogradFits:
// F(4×4, 3×3) does 36 products per 16 outputs where F(2×2, 3×3) does 64,
// but wastes the products of tiles past the image and has dearer
// transforms, so it needs a fifth fewer products. (The stacked layout
// keeps the transforms' 16-tile runs full on small planes.)
func winogradTile(d *convDims) int {
	t2 := ((d.H + 1) / 2) * ((d.W + 1) / 2)
	t4 := ((d.H + 3) / 4) * ((d.W + 3) / 4)
	if chainWinograd4 && 5*36*t4 <= 4*16*t2 {
		return 4
	}
	return 2
}

// stride2Fits reports whether a convolution is a stride-2 one that the
// parity sub-planes turn into an implicit GEMM: 3×3 with one pixel of
// zero padding on every side or 1×1 without, no dilation.
func stride2Fits(d *convDims, pad float32) bool {
	g := &d.geom
	if g.SH != 2 || g.SW != 2 || g.DH != 1 || g.DW != 1 || pad != 0 || d.depthwise {
		return false
	}
	p := (g.KH - 1) / 2
	return g.KH == g.KW && (g.KH == 1 || g.KH == 3) && g.PadT == p && g.PadL == p && g.PadB == p && g.PadR == p
}

// winogradFits reports whether a convolution is a 3×3, stride-1 one with
// one pixel of zero padding on every side and a single group, the shape
// kernels.WinogradConv computes.
func winogradFits(d *convDims, pad float32) bool {
	g := &d.geom
	return d.G == 1 && !d.depthwise && d.C >= chainWinoMinC && g.KH == 3 && g.KW == 3 && g.SH == 1 && g.SW == 1 &&
		g.DH == 1 && g.DW == 1 && g.PadT == 1 && g.PadL == 1 && g.PadB == 1 && g.PadR == 1 && pad == 0
}

// winogradGroup is the group size for a Winograd stage of ti tiles per
// image: at least chainWinoCols tiles, and enough for the products'
// 32-column panels to be 10/11 full (or 4·chainWinoCols tiles).
func winogradGroup(ti int) int {
	for nb := max(1, (chainWinoCols+ti-1)/ti); ; nb++ {
		t := nb * ti
		if 10*32*((t+31)/32) <= 11*t || t >= 4*chainWinoCols {
			return nb
		}
	}
}

// chainMerge lets consecutive blocks that want the same group size run
// as one segment (tests switch it off).
var chainMerge = true

// init chooses the kinds, the segments and their images per group, the
// layouts and the scratch buffers, and packs the weights.
func (pl *chainPlan) init(workers int, st *chainState) {
	pl.n = pl.stages[0].d.N
	ns := len(pl.stages)
	// want[k] is the group size stage k asks for (0: any).
	want := make([]int, ns)
	for k := range pl.stages {
		s := &pl.stages[k]
		d, g := &s.d, &s.d.geom
		s.kg = s.d.Cg * g.KH * g.KW
		per := g.OH * g.OW
		switch {
		case (s.d.depthwise || (d.C == 1 && d.G == 1)) && g.SH == 1 && g.SW == 1 && g.OH == d.H && g.OW == d.W && s.pad == 0:
			// A single input channel is a depthwise convolution of the
			// same plane for every output channel.
			s.kind = stageDWSame
			per = 0
		case s.d.depthwise && g.SH == 2 && g.SW == 2 && g.DH == 1 && g.DW == 1 &&
			g.OH == (d.H+1)/2 && g.OW == (d.W+1)/2 && s.pad == 0:
			s.kind = stageDWStride2
			per = 0
		case s.d.depthwise:
			s.kind = stageDepthwise
			per = 0
		case s.d.pointwise:
			s.kind = stagePointwise
		case chainWinograd && winogradFits(d, s.pad):
			s.kind = stageWinograd
			n := winogradTile(d)
			want[k] = winogradGroup(((d.H + n - 1) / n) * ((d.W + n - 1) / n))
			per = 0
		case g.SH == 1 && g.SW == 1:
			s.kind = stageShift
			per = (g.H + g.PadT + g.PadB) * (g.W + g.PadL + g.PadR)
		case k == 0 && !d.pointwise && g.KH == 1 && g.KW == 1 && g.SH == 2 && g.SW == 2 &&
			g.PadT == 0 && g.PadL == 0 && g.PadB == 0 && g.PadR == 0:
			s.kind = stageSub2
		case stride2Fits(d, s.pad):
			s.kind = stageStride2
			per = (g.OH + 1) * (g.OW + 1)
		default:
			s.kind = stageIm2col
		}
		if per > 0 {
			want[k] = (chainTargetCols + per - 1) / per
		}
	}
	pl.segment(want, workers, false)
	if !pl.layouts(st) {
		// A residual the group scratch cannot serve: every stage its own
		// segment, residuals read from the whole tensors.
		pl.segment(want, workers, true)
		pl.layouts(st)
	}
	pl.buffers()
}

// segment splits the stages into blocks (a ResNet basic block, an
// inverted-residual block): a block ends before a stage that is not
// depthwise, after one that is not depthwise and either has a residual
// or is not the block's first, where no residual reads across. It groups
// the blocks into segments of consecutive blocks that want the same group
// size (each block the largest of its stages' sizes, or any); with
// single, every stage is a segment.
func (pl *chainPlan) segment(want []int, workers int, single bool) {
	ns := len(pl.stages)
	limit := max(1, pl.n/(chainGroupsPerWorker*workers))
	lo := 0
	cut := func(b int) bool {
		if single {
			return true
		}
		if pl.stages[b].d.G > 1 || pl.stages[b-1].d.G > 1 || (b-1 == lo && pl.stages[b-1].epi.res == nil && pl.stages[b-1].res < 0) {
			return false
		}
		for k := b; k < ns; k++ {
			if r := pl.stages[k].res; r >= 0 && r < b {
				return false
			}
		}
		return true
	}
	pl.segs = pl.segs[:0]
	for b := 1; b <= ns; b++ {
		if b < ns && !cut(b) {
			continue
		}
		nb := 0
		for k := lo; k < b; k++ {
			nb = max(nb, min(want[k], limit))
		}
		if n := len(pl.segs); n > 0 && chainMerge && !single {
			last := &pl.segs[n-1]
			if last.nb == 0 || nb == 0 || last.nb == nb {
				last.hi, last.nb = b, max(last.nb, nb)
				lo = b
				continue
			}
		}
		pl.segs = append(pl.segs, chainSeg{lo: lo, hi: b, nb: nb})
		lo = b
	}
	for i := range pl.segs {
		sg := &pl.segs[i]
		sg.nb = max(1, sg.nb)
		if chainForceGroups > 0 {
			sg.nb = chainForceGroups
		}
		last := &pl.stages[sg.hi-1].d
		ohw := last.geom.OH * last.geom.OW
		sg.out = chainLayout{cs: ohw, ps: last.M * ohw, ld: last.geom.OW}
		for k := sg.lo; k < sg.hi; k++ {
			pl.stages[k].resWhole = single
		}
	}
}

// layouts sets every stage's input layout for its segment's group size,
// packs the weights and decides where each residual comes from; it
// reports false when a residual inside a segment is in a layout its stage
// cannot read.
func (pl *chainPlan) layouts(st *chainState) bool {
	ok := true
	for _, sg := range pl.segs {
		nb := sg.nb
		for k := sg.lo; k < sg.hi; k++ {
			s := &pl.stages[k]
			d, g := &s.d, &s.d.geom
			hw := d.H * d.W
			first := k == sg.lo
			s.direct = false
			switch s.kind {
			case stageDWStride2:
				ps := kernels.WinogradPlane(d.H, d.W, 2)
				s.in = chainLayout{cs: nb * ps, ps: ps, size: d.C * nb * ps, parity: true, tile: 2}
			case stageWinograd:
				n := winogradTile(d)
				ps := kernels.WinogradPlane(d.H, d.W, n)
				s.in = chainLayout{cs: nb * ps, ps: ps, size: d.C * nb * ps, parity: true, stacked: true, tile: n}
			case stageSub2:
				ohw := g.OH * g.OW
				s.in = chainLayout{cs: nb * ohw, ps: ohw, ld: g.OW, size: d.C * nb * ohw, sub2: true}
			case stagePointwise, stageDWSame, stageDepthwise:
				s.direct = first && (nb == 1 || d.C == 1)
				s.in = chainLayout{cs: nb * hw, ps: hw, ld: d.W, size: d.C * nb * hw}
				if s.direct {
					s.in = chainLayout{cs: hw, ps: d.C * hw, ld: d.W}
				}
			case stageIm2col:
				s.direct = first
				s.in = chainLayout{cs: hw, ps: d.C * hw, ld: d.W, size: nb * d.C * hw}
			case stageStride2:
				// Sub-planes of OH+1 rows of OW+1 with the data from (1, 1).
				wp := g.OW + 1
				sps := (g.OH + 1) * wp
				s.in = chainLayout{cs: 4 * nb * sps, ss: nb * sps, ps: sps, ld: wp, off: wp + 1, s2: true,
					size: d.C*4*nb*sps + wp + 2}
			default:
				hp, wp := d.H+g.PadT+g.PadB, d.W+g.PadL+g.PadR
				s.in = chainLayout{cs: nb * hp * wp, ps: hp * wp, ld: wp, off: g.PadT*wp + g.PadL,
					padded: true, hp: hp, padT: g.PadT, padL: g.PadL, pad: s.pad}
				s.in.size = d.C*s.in.cs + (g.KW-1)*g.DW
			}
			s.pack(k, st)
		}
		for k := sg.lo; k < sg.hi; k++ {
			s := &pl.stages[k]
			if s.res < 0 || s.resWhole {
				continue
			}
			src := &pl.stages[s.res]
			if s.res < sg.lo {
				ok = false // in no scratch nor whole (blocks do not split there)
				continue
			}
			if s.res == sg.lo && src.direct {
				s.resWhole = true // the segment's input
				continue
			}
			l := &src.in
			plain := !l.padded && !l.parity && !l.s2 && !l.sub2 && l.ld == s.d.geom.OW && l.off == 0
			if s.kind == stageWinograd {
				ok = ok && (plain || l.stacked && l.tile == s.in.tile)
			} else {
				ok = ok && !l.s2 && !l.sub2
			}
		}
	}
	return ok
}

// pack sets the tap offsets of stage k and transforms or packs its
// weights.
func (s *chainStage) pack(k int, st *chainState) {
	d, g := &s.d, &s.d.geom
	if s.kind == stageStride2 {
		s.offs = s.offs[:0]
		for ch := 0; ch < d.C; ch++ {
			for ky := 0; ky < g.KH; ky++ {
				for kx := 0; kx < g.KW; kx++ {
					// Input row 2·oy − PadT + ky is row oy + dy of
					// sub-plane row parity py (likewise columns).
					ry, rx := ky-g.PadT, kx-g.PadL
					py, dy, px, dx := ry&1, ry>>1, rx&1, rx>>1
					s.offs = append(s.offs, ch*s.in.cs+(2*py+px)*s.in.ss+(dy+1)*s.in.ld+dx+1)
				}
			}
		}
	}
	if s.kind == stageShift {
		s.offs = s.offs[:0]
		for ch := 0; ch < d.C; ch++ {
			for ky := 0; ky < g.KH; ky++ {
				for kx := 0; kx < g.KW; kx++ {
					s.offs = append(s.offs, ch*s.in.cs+ky*g.DH*s.in.ld+kx*g.DW)
				}
			}
		}
	}
	if s.kind == stageWinograd {
		s.wino = &st.wino[k]
		s.wino.Prepare(d.M, d.C, s.in.tile, s.w)
	} else if !d.depthwise {
		ps := &st.packed[k]
		ps.ensure(d.G)
		for gr := range ps.fwd {
			ps.fwd[gr].Pack(false, d.Mg, s.kg, s.w[gr*d.Mg*s.kg:(gr+1)*d.Mg*s.kg], s.kg)
		}
		s.pa = ps.fwd
	}
}

// buffers gives the input of every stage that does not read its
// segment's input in place a scratch buffer, reusing those whose values
// are no longer read (a value lives from the stage that writes it to the
// last stage that reads it, as input or residual).
func (pl *chainPlan) buffers() {
	pl.bufs = 0
	for _, sg := range pl.segs {
		last := make([]int, sg.hi-sg.lo)
		for v := range last {
			last[v] = sg.lo + v
		}
		for k := sg.lo; k < sg.hi; k++ {
			if s := &pl.stages[k]; s.res >= 0 && !s.resWhole {
				last[s.res-sg.lo] = max(last[s.res-sg.lo], k)
			}
		}
		var holder []int // holder[b]: the value in buffer b
		for v := sg.lo; v < sg.hi; v++ {
			s := &pl.stages[v]
			s.buf = -1
			if v == sg.lo && s.direct {
				continue
			}
			b := 0
			for b < len(holder) && holder[b] >= 0 && last[holder[b]-sg.lo] >= v-1 {
				b++
			}
			if b == len(holder) {
				holder = append(holder, -1)
			}
			holder[b], s.buf = v, b
		}
		pl.bufs = max(pl.bufs, len(holder))
	}
}

// chainScratch is one goroutine's working memory: the stage inputs, the
// product and the column matrix (kept across calls, sized by the largest
// layer).
type chainScratch struct {
	in       [][]float32
	out, col []float32
	// tmp holds a product on its way to a parity layout; par a Winograd
	// output in the parity layout, res a residual converted to the layout
	// its stage reads.
	tmp, par, res []float32
}

var chainScratches kernels.FreeList[chainScratch]

// run computes the segments one after another, each group by group over
// the workers.
func (pl *chainPlan) run() {
	workers := runtime.GOMAXPROCS(0)
	for i := range pl.segs {
		sg := &pl.segs[i]
		x, y := pl.vals[sg.lo], pl.vals[sg.hi]
		groups := (pl.n + sg.nb - 1) / sg.nb
		kernels.ParallelChunks(groups, max(1, groups/(convChunksPerWorker*workers)), func(lo, hi int) {
			s := chainScratches.Get()
			for len(s.in) < pl.bufs {
				s.in = append(s.in, nil)
			}
			for gi := lo; gi < hi; gi++ {
				i0 := gi * sg.nb
				pl.group(sg, s, x, y, i0, min(sg.nb, pl.n-i0))
			}
			chainScratches.Put(s)
		})
	}
}

// group runs the segment's stages on images [i0, i0+cnt).
func (pl *chainPlan) group(sg *chainSeg, s *chainScratch, x, y []float32, i0, cnt int) {
	first := &pl.stages[sg.lo]
	inSize := first.d.C * first.d.H * first.d.W
	src := x[i0*inSize : (i0+cnt)*inSize]
	if !first.direct {
		buf := grow(&s.in[first.buf], first.in.size)
		first.in.fill(buf, src, first.d.C, first.d.H, first.d.W, cnt)
		src = buf
	}
	for k := sg.lo; k < sg.hi; k++ {
		st := &pl.stages[k]
		var dst []float32
		lo := &sg.out
		if k == sg.hi-1 {
			dst = y[i0*sg.out.ps : (i0+cnt)*sg.out.ps]
		} else {
			next := &pl.stages[k+1]
			lo = &next.in
			dst = grow(&s.in[next.buf], lo.size)
			lo.border(dst, st.d.M, st.d.geom.OH, st.d.geom.OW, cnt)
		}
		rv := pl.residual(st, s, i0)
		if (lo.parity && (st.kind != stageWinograd || !lo.stacked || st.in.tile != lo.tile)) || lo.s2 {
			// Other stages write their plain product, then split it.
			g := &st.d.geom
			ohw := g.OH * g.OW
			tmp := grow(&s.tmp, st.d.M*cnt*ohw)
			st.compute(s, src, tmp, &chainLayout{cs: cnt * ohw, ps: ohw, ld: g.OW}, rv, cnt)
			lo.split(dst, tmp, st.d.M, g.OH, g.OW, cnt, ohw, cnt*ohw)
		} else {
			st.compute(s, src, dst, lo, rv, cnt)
		}
		src = dst
	}
}

// resView locates a stage's residual for a group: channel m of image j
// at data[m·cs + j·ps], rows ld apart, or a parity-layout plane of tile
// size tile there, or (stacked) channel m's planes in the stacked layout
// at data[m·cs]; data is nil without residual.
type resView struct {
	data            []float32
	cs, ps, ld      int
	parity, stacked bool
	tile            int
}

// residual returns where stage s finds the residual of images i0 on.
func (pl *chainPlan) residual(s *chainStage, sc *chainScratch, i0 int) resView {
	g := &s.d.geom
	ohw := g.OH * g.OW
	img := s.d.M * ohw
	switch {
	case s.res < 0 && s.epi.res == nil:
		return resView{}
	case s.res < 0:
		return resView{data: s.epi.res[i0*img:], cs: ohw, ps: img, ld: g.OW}
	case s.resWhole:
		return resView{data: pl.vals[s.res][i0*img:], cs: ohw, ps: img, ld: g.OW}
	}
	src := &pl.stages[s.res]
	l := &src.in
	buf := sc.in[src.buf]
	if l.parity {
		return resView{data: buf, cs: l.cs, ps: l.ps, parity: true, stacked: l.stacked, tile: l.tile}
	}
	return resView{data: buf[l.off:], cs: l.cs, ps: l.ps, ld: l.ld}
}

// fill copies cnt images of x (NCHW, ch×h×w each) into buf in layout l.
func (l *chainLayout) fill(buf, x []float32, ch, h, w, cnt int) {
	img := ch * h * w
	if l.parity || l.s2 {
		l.split(buf, x, ch, h, w, cnt, img, h*w)
		return
	}
	if l.sub2 {
		kernels.Subsample2(h, w, ch, cnt, x, h*w, img, buf, l.cs, l.ps)
		return
	}
	for j := 0; j < cnt; j++ {
		xj := x[j*img : (j+1)*img]
		if l.padded {
			padImage(buf[j*l.ps:], xj, ch, h, w, l.padT, l.padL, l.hp, l.ld, l.cs, l.pad)
			continue
		}
		for c := 0; c < ch; c++ {
			kernels.CopyRows(buf[c*l.cs+j*l.ps+l.off:], xj[c*h*w:], w, h, l.ld, w)
		}
	}
	if tail := l.size - (ch-1)*l.cs - l.ps*cnt; l.padded && tail > 0 {
		// The taps of a partial group's discarded columns may read past
		// its last plane: keep that finite.
		fillValue(buf[l.size-tail:], l.pad)
	}
}

// split copies cnt images of ch channels of h×w (channel c of image j at
// x[c·xcs + j·xps]) into buf in a parity layout.
func (l *chainLayout) split(buf, x []float32, ch, h, w, cnt, xps, xcs int) {
	if l.stacked {
		kernels.SplitParity(h, w, ch, cnt, x, xcs, xps, buf, parityOf(l.cs, h, w, l.tile, cnt))
		return
	}
	if l.parity {
		kernels.WinogradSplit(h, w, l.tile, ch, cnt, x, xcs, xps, buf, l.cs)
		return
	}
	l.s2border(buf, ch, h, w, cnt)
	kernels.SplitParity(h, w, ch, cnt, x, xcs, xps, buf, kernels.ParityLayout{N: 2, CS: l.cs, SS: l.ss, PS: l.ps, LD: l.ld, Off: l.off})
}

// parityOf is the stacked parity layout of tile size n of cnt h×w
// planes per channel, channels cs apart.
func parityOf(cs, h, w, n, cnt int) kernels.ParityLayout {
	tw := (w + n - 1) / n
	ti := ((h + n - 1) / n) * tw
	return kernels.ParityLayout{N: n, CS: cs, SS: cnt * ti, PS: ti, LD: tw}
}

// s2border zeroes what the taps of a stride-2 layout read around the data
// of cnt images: the first row and column of every sub-plane, the last
// data row of odd-row sub-planes when h is odd, the last data column of
// odd-column ones when w is odd, and the tail.
func (l *chainLayout) s2border(buf []float32, ch, h, w, cnt int) {
	th, tw := (h+1)/2, (w+1)/2
	for c := 0; c < ch; c++ {
		for k := 0; k < 4; k++ {
			for j := 0; j < cnt; j++ {
				p := buf[c*l.cs+k*l.ss+j*l.ps : c*l.cs+k*l.ss+(j+1)*l.ps]
				clear(p[:l.ld])
				for r := 1; r <= th; r++ {
					p[r*l.ld] = 0
					if w%2 == 1 && k%2 == 1 {
						p[r*l.ld+tw] = 0
					}
				}
				if h%2 == 1 && k >= 2 {
					clear(p[th*l.ld : (th+1)*l.ld])
				}
			}
		}
	}
	clear(buf[ch*l.cs : l.size])
}

// border sets the padding of the planes of cnt images (ch channels of
// h×w) to the pad value, before a producer writes their interiors.
func (l *chainLayout) border(buf []float32, ch, h, w, cnt int) {
	if !l.padded {
		return
	}
	plane := l.hp * l.ld
	bottom := (l.padT + h) * l.ld
	for c := 0; c < ch; c++ {
		for j := 0; j < cnt; j++ {
			p := buf[c*l.cs+j*l.ps : c*l.cs+j*l.ps+plane]
			fillValue(p[:l.off], l.pad)
			// The right pad of each row and the left pad of the next.
			for r := l.padT; r < l.padT+h-1; r++ {
				fillValue(p[r*l.ld+l.padL+w:(r+1)*l.ld+l.padL], l.pad)
			}
			fillValue(p[(l.padT+h-1)*l.ld+l.padL+w:bottom], l.pad)
			fillValue(p[bottom:], l.pad)
		}
	}
	if tail := l.size - ch*l.cs; tail > 0 {
		fillValue(buf[l.size-tail:], l.pad)
	}
}

// compute runs the stage on cnt images whose input is src (in layout
// s.in) with the residual rv and writes the epilogue's result to dst in
// layout lo.
func (s *chainStage) compute(sc *chainScratch, src, dst []float32, lo *chainLayout, rv resView, cnt int) {
	d, g := &s.d, &s.d.geom
	ohw := g.OH * g.OW
	// natural: dst has the unpadded channel-major layout of a product or
	// depthwise output (each channel's images one after another).
	natural := lo.ld == g.OW && lo.off == 0 && (cnt == 1 || lo.ps == ohw)
	switch s.kind {
	case stageWinograd:
		e := s.epi
		ep := &kernels.WinogradEpilogue{A: e.a, B: e.b, Bias: e.bias, Lo: float32(math.Inf(-1)), Hi: float32(math.Inf(1))}
		if e.clamp {
			ep.Lo, ep.Hi = e.lo, e.hi
		}
		ps, n := s.in.ps, s.in.tile
		switch {
		case rv.parity:
			ep.Res, ep.ResCS = rv.data, rv.cs
		case rv.data != nil:
			buf := grow(&sc.res, d.M*cnt*ps)
			kernels.SplitParity(g.OH, g.OW, d.M, cnt, rv.data, rv.cs, rv.ps, buf, parityOf(cnt*ps, g.OH, g.OW, n, cnt))
			ep.Res, ep.ResCS = buf, cnt*ps
		}
		if lo.parity {
			kernels.WinogradConvStacked(s.wino, d.H, d.W, cnt, src, s.in.cs, dst, lo.cs, ep)
			return
		}
		par := grow(&sc.par, d.M*cnt*ps)
		kernels.WinogradConvStacked(s.wino, d.H, d.W, cnt, src, s.in.cs, par, cnt*ps, ep)
		kernels.MergeParity(d.H, d.W, d.M, cnt, par, parityOf(cnt*ps, d.H, d.W, n, cnt), dst[lo.off:], lo.cs, lo.ps, lo.ld)
		return
	}
	if rv.parity {
		// Other stages read the residual in rows.
		buf := grow(&sc.res, d.M*cnt*ohw)
		if rv.stacked {
			kernels.MergeParity(g.OH, g.OW, d.M, cnt, rv.data, parityOf(rv.cs, g.OH, g.OW, rv.tile, cnt), buf, cnt*ohw, ohw, g.OW)
		} else {
			kernels.WinogradMerge(g.OH, g.OW, rv.tile, d.M, cnt, rv.data, rv.cs, buf, cnt*ohw, ohw, g.OW)
		}
		rv = resView{data: buf, cs: cnt * ohw, ps: ohw, ld: g.OW}
	}
	switch s.kind {
	case stageDWSame, stageDWStride2:
		out, cs := dst, lo.cs
		if !natural {
			out, cs = grow(&sc.out, d.M*cnt*ohw), cnt*ohw
		}
		var ep *kernels.DWEpilogue
		if rv.data == nil {
			ep = &kernels.DWEpilogue{A: s.epi.a, B: s.epi.b, Bias: s.epi.bias, Lo: float32(math.Inf(-1)), Hi: float32(math.Inf(1))}
			if s.epi.clamp {
				ep.Lo, ep.Hi = s.epi.lo, s.epi.hi
			}
		}
		if s.kind == stageDWStride2 {
			kernels.DepthwiseStride2(g, cnt, src, s.in.cs, s.w, out, cs, ep)
		} else {
			dg, xcs := *g, s.in.cs
			if !d.depthwise {
				dg.C, xcs = d.M, 0 // one input plane for all output channels
			}
			kernels.DepthwiseSame(&dg, cnt, src, xcs, s.w, out, cs, ep)
		}
		if ep == nil || !natural {
			s.emit(out, cs, ohw, g.OW, dst, lo, rv, cnt, ep == nil)
		}
		return
	case stageDepthwise:
		out, cs := dst, lo.cs
		if !natural {
			out, cs = grow(&sc.out, d.M*cnt*ohw), cnt*ohw
		}
		for j := 0; j < cnt; j++ {
			kernels.DepthwiseConvChannels(g, src[j*s.in.ps:], s.in.cs, s.w, out[j*ohw:], cs, s.pad)
		}
		s.emit(out, cs, ohw, g.OW, dst, lo, rv, cnt, true)
		return
	case stageShift, stageStride2:
		plane := s.in.ps
		cols := (cnt-1)*plane + g.OH*s.in.ld
		out := grow(&sc.out, d.M*cols)
		for gr := 0; gr < d.G; gr++ {
			kernels.SgemmPackedOffsets(&s.pa[gr], cols, 1, src, s.offs[gr*s.kg:(gr+1)*s.kg], 0, out[gr*d.Mg*cols:], cols)
		}
		s.emit(out, cols, plane, s.in.ld, dst, lo, rv, cnt, true)
		return
	}
	b, ldb := src, s.in.cs
	cols := cnt * ohw
	if s.kind == stageIm2col {
		b = grow(&sc.col, d.C*g.KH*g.KW*cols)
		for j := 0; j < cnt; j++ {
			kernels.Im2colStrided(g, src[j*s.in.ps:j*s.in.ps+d.C*d.H*d.W], b[j*ohw:], cols, s.pad)
		}
		ldb = cols
	}
	out, ldc := dst, lo.cs
	if !natural {
		out, ldc = grow(&sc.out, d.M*cols), cols
	}
	for gr := 0; gr < d.G; gr++ {
		kernels.SgemmPacked(&s.pa[gr], false, cols, 1, b[gr*s.kg*ldb:], ldb, 0, out[gr*d.Mg*ldc:], ldc)
	}
	s.emit(out, ldc, ohw, g.OW, dst, lo, rv, cnt, true)
}

// emit writes the epilogue (all of it, or with full false only the copy
// into dst) of cnt images, where channel m of image j starts at
// src[m·cs + j·ps] with rows ld apart, into dst in layout lo (in place
// when src is dst), with the residual rv (rows, or none). Channels whose
// images are unpadded planes on both sides and in the residual take one
// call each.
func (s *chainStage) emit(src []float32, cs, ps, ld int, dst []float32, lo *chainLayout, rv resView, cnt int, full bool) {
	g := &s.d.geom
	ohw := g.OH * g.OW
	if ld == g.OW && lo.ld == g.OW && (rv.data == nil || rv.ld == g.OW) {
		for m := 0; m < s.d.M; m++ {
			var r []float32
			if rv.data != nil {
				r = rv.data[m*rv.cs:]
			}
			s.emitRows(m, dst[m*lo.cs+lo.off:], src[m*cs:], r, ohw, cnt, lo.ps, ps, rv.ps, full)
		}
		return
	}
	for m := 0; m < s.d.M; m++ {
		for j := 0; j < cnt; j++ {
			var r []float32
			if rv.data != nil {
				r = rv.data[m*rv.cs+j*rv.ps:]
			}
			s.emitRows(m, dst[m*lo.cs+j*lo.ps+lo.off:], src[m*cs+j*ps:], r, g.OW, g.OH, lo.ld, ld, rv.ld, full)
		}
	}
}

// emitRows writes rows runs of n outputs of channel m (src rows sld
// apart, dst rows dld apart, residual rows rld apart) with the rounding
// of convEpilogue.apply and finish; without full it only copies.
func (s *chainStage) emitRows(m int, dst, src, res []float32, n, rows, dld, sld, rld int, full bool) {
	e := s.epi
	if !full || (e.bias == nil && e.a == nil && !e.clamp && res == nil) {
		if &src[0] != &dst[0] {
			kernels.CopyRows(dst, src, n, rows, dld, sld)
		}
		return
	}
	inf := float32(math.Inf(1))
	if e.bias != nil {
		kernels.EpilogueRows(dst, src, nil, n, rows, dld, sld, 1, e.bias[m], -inf, inf)
		src, sld = dst, dld
	}
	a, b, lo, hi := e.coeffs(m)
	if res == nil || rld == dld || rows == 1 {
		kernels.EpilogueRows(dst, src, res, n, rows, dld, sld, a, b, lo, hi)
		return
	}
	for r := 0; r < rows; r++ {
		kernels.EpilogueRows(dst[r*dld:], src[r*sld:], res[r*rld:], n, 1, n, n, a, b, lo, hi)
	}
}
