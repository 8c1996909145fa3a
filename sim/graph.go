package sim

import (
	"context"
	"fmt"
	"iter"
	"math"
	"slices"

	"lowbit/graph"
	"lowbit/ops"
	"lowbit/tensor"
)

// Node classes used when turning a graph into a workload.
func isLayerNode(n *graph.Node) bool {
	switch n.Op.Type() {
	case "Conv", "Gemm":
		return len(n.Inputs) >= 2 && n.Inputs[1] != nil
	case "MatMul":
		return len(n.Inputs) == 2 && n.Inputs[1] != nil && len(n.Inputs[1].Shape) == 2 && fromParam(n.Inputs[1])
	}
	return false
}

// fromParam reports whether v is a parameter or computed from parameters
// only (e.g. a fake-quantized weight).
func fromParam(v *graph.Value) bool {
	for depth := 0; depth < 8 && v != nil; depth++ {
		if v.Param != nil {
			return true
		}
		if v.Producer == nil {
			return false
		}
		var next *graph.Value
		for _, in := range v.Producer.Inputs {
			if in == nil || in.Param != nil {
				continue
			}
			if next != nil {
				return false
			}
			next = in
		}
		if next == nil {
			return true
		}
		v = next
	}
	return false
}

// stopsChain lists ops at which a layer's output stops being "the same
// tensor": the stored output of a layer is the end of its chain of unary ops
// (BN, activation, pooling, quantizers).
var stopsChain = map[string]bool{"Conv": true, "Gemm": true, "MatMul": true, "Add": true, "Sub": true,
	"Mul": true, "Div": true, "Concat": true, "Softmax": true}

// chainEnd follows v through single-consumer unary nodes and returns the
// value a layer effectively writes back. With sameShape it stops before
// nodes that change the shape (pooling), as for residual sums whose size is
// fixed.
func chainEnd(g *graph.Graph, v *graph.Value, sameShape bool) *graph.Value {
	for range 64 {
		cons := g.Consumers(v)
		if len(cons) != 1 || stopsChain[cons[0].Op.Type()] || len(cons[0].Outputs) != 1 {
			return v
		}
		if sameShape && !slices.Equal(cons[0].Outputs[0].Shape, v.Shape) {
			return v
		}
		acts := 0
		for _, in := range cons[0].Inputs {
			if in != nil && in.Param == nil {
				acts++
			}
		}
		if acts != 1 {
			return v
		}
		v = cons[0].Outputs[0]
	}
	return v
}

func numel1(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			d = 1
		}
		n *= d
	}
	return n
}

func dim1(d int) int { return max(d, 1) }

// residualAdds returns the Add nodes whose two operands are activations.
func residualAdds(order []*graph.Node) []*graph.Node {
	var adds []*graph.Node
	for _, n := range order {
		if n.Op.Type() != "Add" || len(n.Inputs) != 2 || n.Inputs[0] == nil || n.Inputs[1] == nil {
			continue
		}
		if n.Inputs[0].Param != nil || n.Inputs[1].Param != nil || fromParam(n.Inputs[0]) || fromParam(n.Inputs[1]) {
			continue
		}
		if !slices.Equal(n.Inputs[0].Shape, n.Inputs[1].Shape) {
			continue
		}
		adds = append(adds, n)
	}
	return adds
}

// skipOperand returns the index of the operand of a residual add that
// comes from further back (the skip path): the one whose producer runs
// earlier.
func skipOperand(pos map[*graph.Node]int, n *graph.Node) int {
	p := func(v *graph.Value) int {
		if v.Producer == nil {
			return -1
		}
		return pos[v.Producer]
	}
	if p(n.Inputs[0]) < p(n.Inputs[1]) {
		return 0
	}
	return 1
}

// FromGraph builds a workload from the Conv, Gemm and MatMul (with a
// parameter operand) nodes of g, at batch size 1, and its residual
// additions. stats gives measured statistics by node name (see
// CollectStats); layers without an entry get no zeros and the default
// outlier ratio (set Workload.OutlierRatio to the ratio the statistics
// were measured at).
func FromGraph(g *graph.Graph, stats map[string]LayerStats) (*Workload, error) {
	if g == nil {
		return nil, fmt.Errorf("sim: nil graph")
	}
	if err := g.Err(); err != nil {
		return nil, fmt.Errorf("graph %s: %w", g.Name, err)
	}
	order, err := g.TopoSort()
	if err != nil {
		return nil, fmt.Errorf("graph %s: %w", g.Name, err)
	}
	w := &Workload{Name: g.Name, Source: "layer shapes from graph " + g.Name, OutlierRatio: DefaultOutlierRatio}
	pos := map[*graph.Node]int{}
	computed := map[*graph.Value]bool{} // values downstream of a layer
	missing := 0
	lastLayer := ""
	addAfter := map[*graph.Node]string{}
	for i, n := range order {
		pos[n] = i
		down := false
		for _, in := range n.Inputs {
			if in != nil && computed[in] {
				down = true
			}
		}
		if n.Op.Type() == "Add" {
			addAfter[n] = lastLayer
		}
		if isLayerNode(n) {
			l, err := layerFromNode(g, n)
			if err != nil {
				return nil, err
			}
			l.First = !down
			st, ok := stats[n.Name]
			if !ok {
				missing++
				st = LayerStats{ActOutlier: DefaultOutlierRatio, WeightOutlier: DefaultOutlierRatio}
			}
			l.Stats = st
			w.Layers = append(w.Layers, l)
			lastLayer = n.Name
			down = true
		}
		if down {
			for _, o := range n.Outputs {
				computed[o] = true
			}
		}
	}
	for _, n := range residualAdds(order) {
		if addAfter[n] == "" {
			continue
		}
		st, ok := stats[n.Name]
		if !ok {
			st = LayerStats{ActOutlier: DefaultOutlierRatio}
		}
		w.Adds = append(w.Adds, Eltwise{Name: n.Name, After: addAfter[n], Elems: numel1(n.Inputs[0].Shape),
			SkipZero: st.ActZero, OutZero: st.OutZero, Outlier: st.ActOutlier})
	}
	if missing > 0 {
		w.Source += fmt.Sprintf("; %d of %d layers without measured statistics (assumed: no zeros, outlier ratio %g)",
			missing, len(w.Layers), DefaultOutlierRatio)
	} else {
		w.Source += "; statistics measured on calibration data"
	}
	if err := w.Validate(); err != nil {
		return nil, err
	}
	return w, nil
}

func layerFromNode(g *graph.Graph, n *graph.Node) (Layer, error) {
	x, wt, out := n.Inputs[0], n.Inputs[1], n.Outputs[0]
	bad := func(format string, a ...any) (Layer, error) {
		return Layer{}, fmt.Errorf("graph %s: node %s (%s): %s", g.Name, n.Name, n.Op.Type(), fmt.Sprintf(format, a...))
	}
	if x == nil || out == nil {
		return bad("missing input or output")
	}
	l := Layer{Name: n.Name, Groups: 1, SH: 1, SW: 1, KH: 1, KW: 1, H: 1, W: 1, OH: 1, OW: 1}
	end := chainEnd(g, out, false)
	l.OutElems = numel1(end.Shape)
	switch n.Op.Type() {
	case "Conv":
		if len(x.Shape) != 4 || len(wt.Shape) != 4 || len(out.Shape) != 4 {
			return bad("want 4-D input, weight and output, have %v, %v, %v", x.Shape, wt.Shape, out.Shape)
		}
		l.Kind = "conv"
		l.C, l.H, l.W = dim1(x.Shape[1]), dim1(x.Shape[2]), dim1(x.Shape[3])
		l.M, l.KH, l.KW = dim1(wt.Shape[0]), dim1(wt.Shape[2]), dim1(wt.Shape[3])
		l.OH, l.OW = dim1(out.Shape[2]), dim1(out.Shape[3])
		if wt.Shape[1] <= 0 || l.C%wt.Shape[1] != 0 {
			return bad("weight shape %v does not divide %d input channels", wt.Shape, l.C)
		}
		l.Groups = l.C / wt.Shape[1]
		l.SH, l.SW = max(1, int(math.Round(float64(l.H)/float64(l.OH)))), max(1, int(math.Round(float64(l.W)/float64(l.OW))))
		switch c := any(n.Op).(type) {
		case *ops.Conv:
			l.SH, l.SW = max(c.StrideH, 1), max(c.StrideW, 1)
		case ops.Conv:
			l.SH, l.SW = max(c.StrideH, 1), max(c.StrideW, 1)
		}
	default: // Gemm, MatMul: out [N, M]
		if len(out.Shape) != 2 || len(wt.Shape) != 2 {
			return bad("want a 2-D weight and output, have %v, %v", wt.Shape, out.Shape)
		}
		l.Kind = "fc"
		l.M = dim1(out.Shape[1])
		if numel1(wt.Shape)%l.M != 0 {
			return bad("weight shape %v does not match %d outputs", wt.Shape, l.M)
		}
		l.C = numel1(wt.Shape) / l.M
		if l.OutElems == 0 {
			l.OutElems = l.M
		}
	}
	return l, nil
}

// CollectOptions configure CollectStats.
type CollectOptions struct {
	// OutlierRatio r defines outliers: the largest fraction r of the
	// non-zero magnitudes of each tensor (OLAQ, methods.md §4).
	OutlierRatio float64
	// MaxBatches stops after this many batches (0: all).
	MaxBatches int
	// EMA is the momentum of the activation threshold (0: 0.99).
	EMA float64
}

type actStat struct {
	zeros, total     float64
	outliers, nonzer float64
	thr              float64
	seen             bool
}

type zeroCount struct{ zeros, total float64 }

// maxSample bounds the values sorted for a threshold per tensor.
const maxSample = 1 << 20

// threshold returns the OLAQ threshold T of the non-zero magnitudes of x at
// ratio r (a strided subsample of at most maxSample values), or +Inf when
// r is 0 or x has no non-zeros.
func threshold(x []float32, r float64) float64 {
	nz := 0
	for _, v := range x {
		if v != 0 {
			nz++
		}
	}
	if r <= 0 || nz == 0 {
		return math.Inf(1)
	}
	step := max(1, nz/maxSample)
	buf := make([]float32, 0, min(nz, maxSample+1))
	k := 0
	for _, v := range x {
		if v == 0 {
			continue
		}
		if k%step == 0 {
			buf = append(buf, float32(math.Abs(float64(v))))
		}
		k++
	}
	slices.Sort(buf)
	i := int(math.Floor((1 - r) * float64(len(buf))))
	i = min(max(i, 0), len(buf)-1)
	return float64(buf[i])
}

// countAbove counts the non-zeros of x and those with |x| ≥ t.
func countAbove(x []float32, t float64) (nonzero, above float64) {
	for _, v := range x {
		if v == 0 {
			continue
		}
		nonzero++
		if math.Abs(float64(v)) >= t {
			above++
		}
	}
	return
}

// CollectStats runs g on calibration batches (inputs of the graph's single
// input, in order) and measures, per Conv/Gemm/MatMul node, the zero
// fraction of its input and weights, the outlier fractions at the given
// ratio (activation thresholds tracked as an EMA of per-batch thresholds,
// each batch measured against the threshold of the batches before it), and
// the zero fraction of its stored output; per residual Add, the zero
// fractions of its skip operand and of its result. The result feeds
// FromGraph.
func CollectStats(ctx context.Context, g *graph.Graph, batches iter.Seq2[*tensor.Tensor, error], opt CollectOptions) (map[string]LayerStats, error) {
	if len(g.Inputs) != 1 {
		return nil, fmt.Errorf("graph %s: CollectStats needs exactly one graph input, have %d", g.Name, len(g.Inputs))
	}
	if !(opt.OutlierRatio >= 0 && opt.OutlierRatio <= 1) {
		return nil, fmt.Errorf("outlier ratio %g is not a fraction in [0, 1]", opt.OutlierRatio)
	}
	ema := opt.EMA
	if ema == 0 {
		ema = 0.99
	}
	ex, err := graph.NewExecutor(g)
	if err != nil {
		return nil, fmt.Errorf("graph %s: %w", g.Name, err)
	}
	acts := map[*graph.Node]*actStat{}
	weights := map[*graph.Node]LayerStats{}
	zeros := map[*graph.Value]*zeroCount{}
	skipZeros := map[*graph.Node]*zeroCount{}
	order := ex.Order()
	pos := map[*graph.Node]int{}
	for i, n := range order {
		pos[n] = i
	}
	isAdd := map[*graph.Node]bool{}
	for _, n := range residualAdds(order) {
		isAdd[n] = true
	}
	count := func(zc *zeroCount, x []float32) {
		for _, v := range x {
			if v == 0 {
				zc.zeros++
			}
		}
		zc.total += float64(len(x))
	}
	ex.OnForward = func(n *graph.Node, in, out []*tensor.Tensor) {
		for i, o := range n.Outputs {
			if i < len(out) && out[i] != nil {
				zc := zeros[o]
				if zc == nil {
					zc = &zeroCount{}
					zeros[o] = zc
				}
				count(zc, out[i].Data)
			}
		}
		if isAdd[n] {
			zc := skipZeros[n]
			if zc == nil {
				zc = &zeroCount{}
				skipZeros[n] = zc
			}
			count(zc, in[skipOperand(pos, n)].Data)
		}
		if !isLayerNode(n) || len(in) < 2 || in[0] == nil || in[1] == nil {
			return
		}
		x := in[0].Data
		a := acts[n]
		if a == nil {
			a = &actStat{}
			acts[n] = a
		}
		tb := threshold(x, opt.OutlierRatio)
		if !a.seen {
			a.thr, a.seen = tb, true
		}
		nz, above := countAbove(x, a.thr)
		a.total += float64(len(x))
		a.zeros += float64(len(x)) - nz
		a.nonzer += nz
		a.outliers += above
		if !math.IsInf(tb, 1) && !math.IsInf(a.thr, 1) {
			a.thr = ema*a.thr + (1-ema)*tb
		} else if math.IsInf(a.thr, 1) {
			a.thr = tb
		}
		if _, ok := weights[n]; !ok {
			wd := in[1].Data
			wnz, wab := countAbove(wd, threshold(wd, opt.OutlierRatio))
			st := LayerStats{WeightZero: 1 - wnz/float64(max(len(wd), 1))}
			if wnz > 0 {
				st.WeightOutlier = wab / wnz
			}
			weights[n] = st
		}
	}
	nb := 0
	for x, err := range batches {
		if err != nil {
			return nil, fmt.Errorf("calibration batch %d: %w", nb, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if _, err := ex.Forward(x); err != nil {
			return nil, fmt.Errorf("calibration batch %d: %w", nb, err)
		}
		nb++
		if opt.MaxBatches > 0 && nb >= opt.MaxBatches {
			break
		}
	}
	if nb == 0 {
		return nil, fmt.Errorf("graph %s: no calibration batches", g.Name)
	}
	frac := func(zc *zeroCount) float64 {
		if zc == nil || zc.total == 0 {
			return 0
		}
		return zc.zeros / zc.total
	}
	stats := map[string]LayerStats{}
	for n, a := range acts {
		st := weights[n]
		st.ActZero = a.zeros / math.Max(a.total, 1)
		if a.nonzer > 0 {
			st.ActOutlier = a.outliers / a.nonzer
		}
		st.OutZero = frac(zeros[chainEnd(g, n.Outputs[0], false)])
		stats[n.Name] = st
	}
	for n, zc := range skipZeros {
		stats[n.Name] = LayerStats{ActZero: frac(zc), OutZero: frac(zeros[chainEnd(g, n.Outputs[0], true)]),
			ActOutlier: opt.OutlierRatio}
	}
	return stats, nil
}
