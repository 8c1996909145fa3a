package quant

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// WEQ is the weighted-entropy weight quantizer of methods.md §2. A weight's
// importance is its square s = w²; the sorted importances are split into
// H = ceil(L/2) contiguous magnitude clusters whose boundaries maximize the
// weighted entropy
//
//	S = − Σ_k P_k · I_k · ln(P_k / 2),   P_k = |C_k|/N,  I_k = mean s over C_k,
//
// (the zero cluster of an odd L is excluded; empty clusters contribute 0).
// Each magnitude cluster stands for a ± pair of levels with representative
// r_k = sqrt(I_k) (the RMS magnitude of the cluster); q(w) = sign(w)·r_k with
// k the last cluster whose threshold t_k ≤ |w| and sign(0) = +1.
//
// Even L gives the levels {±r_0..±r_{H−1}}; odd L gives {0, ±r_1..±r_{H−1}}
// (cluster 0 is the zero cluster). L = 2 gives ±RMS(w).
//
// The first fit searches from the equal-population partition and from an
// exact block-level optimum (see fitSorted); on inputs of up to a few
// hundred weights that optimum is exhaustive.
//
// A WEQ keeps its boundaries between fits, so refitting after a weight
// update (fine-tuning, §2.8) starts from the previous partition. With
// PerChannel the weights are viewed as [C, N/C] (output channel first), each
// channel is divided by its RMS, one shared set of levels is fitted on the
// pooled normalized weights and channel c's levels are Scales[c]·(±r_k).
// (The argmax of S is scale-invariant, so normalizing would be pointless for
// independent per-channel fits: the normalization is what lets channels
// share one level set.)
type WEQ struct {
	// L is the level count (≥ 2), normally 2^bits.
	L int
	// PerChannel selects the per-output-channel variant (see the type doc).
	PerChannel bool

	// Bounds[k] is the end (exclusive) of cluster k in ascending importance
	// order; Bounds[H-1] = N. Kept for warm starts.
	Bounds []int
	// Reps[k] is cluster k's representative magnitude (0 for the zero
	// cluster of odd L), in normalized units when PerChannel.
	Reps []float32
	// Thresh[k] is the smallest magnitude mapped to cluster k (Thresh[0] =
	// 0); +Inf for trailing empty clusters.
	Thresh []float32
	// Scales holds the per-channel RMS when PerChannel (nil otherwise).
	Scales []float32
	// S is the weighted entropy of the last fit; Sweeps the coordinate
	// ascent sweeps it took.
	S      float64
	Sweeps int
}

// NewWEQ returns an unfitted WEQ quantizer with L levels.
func NewWEQ(levels int, perChannel bool) (*WEQ, error) {
	if levels < 2 || levels > 1<<16 {
		return nil, fmt.Errorf("quant: WEQ level count %d out of range [2, 65536]", levels)
	}
	return &WEQ{L: levels, PerChannel: perChannel}, nil
}

// weqMaxSweeps bounds the coordinate-ascent sweeps of one fit. S increases
// strictly every sweep over a finite set of partitions, so this is only a
// guard against floating-point cycling.
const weqMaxSweeps = 1000

// Fit fits the quantizer to weights w. channels is the size of the output
// channel axis (axis 0) and is only used when PerChannel; len(w) must be a
// multiple of it. Boundaries of a previous fit warm-start the search (scaled
// proportionally if the element count changed).
func (q *WEQ) Fit(w []float32, channels int) error {
	if q.L < 2 {
		return fmt.Errorf("quant: WEQ level count %d < 2", q.L)
	}
	n := len(w)
	if n == 0 {
		return fmt.Errorf("quant: WEQ fit on an empty tensor")
	}
	if err := checkFinite(w); err != nil {
		return fmt.Errorf("quant: WEQ fit: %w", err)
	}
	s := make([]float64, n)
	if q.PerChannel {
		if channels <= 0 || n%channels != 0 {
			return fmt.Errorf("quant: WEQ per-channel fit: %d weights do not split into %d channels", n, channels)
		}
		q.Scales = channelRMS(w, channels, q.Scales)
		inner := n / channels
		for c := range channels {
			sc := float64(q.Scales[c])
			for i := c * inner; i < (c+1)*inner; i++ {
				v := float64(w[i]) / sc
				s[i] = v * v
			}
		}
	} else {
		q.Scales = nil
		for i, v := range w {
			s[i] = float64(v) * float64(v)
		}
	}
	slices.Sort(s)
	q.fitSorted(s)
	return nil
}

// channelRMS returns the RMS of each of the channels of w (1 for an all-zero
// channel, so normalization never divides by zero).
func channelRMS(w []float32, channels int, dst []float32) []float32 {
	dst = slices.Grow(dst[:0], channels)[:channels]
	inner := len(w) / channels
	for c := range channels {
		var ss float64
		for _, v := range w[c*inner : (c+1)*inner] {
			ss += float64(v) * float64(v)
		}
		r := math.Sqrt(ss / float64(inner))
		if r == 0 || math.IsNaN(r) {
			r = 1
		}
		dst[c] = float32(r)
	}
	return dst
}

// weqState is the search state over sorted importances.
type weqState struct {
	ps  []float64 // prefix sums of sorted s: ps[i] = Σ_{j<i} s_j
	n   float64
	odd bool // cluster 0 is the zero cluster (excluded from S)
}

// term is the contribution −P·I·ln(P/2) of the cluster [a, b).
func (st *weqState) term(a, b int) float64 {
	if b <= a {
		return 0
	}
	p := float64(b-a) / st.n
	pi := (st.ps[b] - st.ps[a]) / st.n
	return -pi * math.Log(p/2)
}

// clusterTerm is term for cluster k, 0 for the zero cluster.
func (st *weqState) clusterTerm(k, a, b int) float64 {
	if k == 0 && st.odd {
		return 0
	}
	return st.term(a, b)
}

// objective evaluates S for cluster ends bounds.
func (st *weqState) objective(bounds []int) float64 {
	var sum float64
	a := 0
	for k, b := range bounds {
		sum += st.clusterTerm(k, a, b)
		a = b
	}
	return sum
}

// fitSorted runs the boundary search on ascending importances s and sets
// Bounds, Reps, Thresh, S and Sweeps. A warm start refines the previous
// partition by coordinate ascent (methods.md §2.4). A cold start runs the
// ascent from the equal-population partition (§2.2) and from the block
// search of coldBounds and keeps the better result; on small inputs the
// latter is the exhaustive maximum, which plain coordinate ascent misses on
// a few percent of random inputs (it can stop where no single boundary move
// helps but a joint move of several would).
func (q *WEQ) fitSorted(s []float64) {
	n := len(s)
	h := (q.L + 1) / 2
	st := &weqState{ps: make([]float64, n+1), n: float64(n), odd: q.L%2 == 1}
	for i, v := range s {
		st.ps[i+1] = st.ps[i] + v
	}
	if b := warmBounds(q.Bounds, h, n); b != nil {
		q.Bounds = b
		q.S, q.Sweeps = st.ascend(b)
	} else {
		eq := make([]int, h)
		for k := range eq {
			eq[k] = int(int64(n) * int64(k+1) / int64(h))
		}
		se, we := st.ascend(eq)
		blk := st.coldBounds(h, n)
		sb, wb := st.ascend(blk)
		q.Bounds, q.S, q.Sweeps = blk, sb, wb
		if se > sb {
			q.Bounds, q.S, q.Sweeps = eq, se, we
		}
	}
	q.setLevels(s)
}

// ascend improves cluster ends b in place by coordinate ascent: sweeps over
// k = 0..H−2 moving boundary k to the best position between its neighbours,
// repeated while S increases. It returns the final S and the sweep count.
func (st *weqState) ascend(b []int) (float64, int) {
	best := st.objective(b)
	sweeps := 0
	for sweeps < weqMaxSweeps {
		sweeps++
		for k := 0; k < len(b)-1; k++ {
			lo := 0
			if k > 0 {
				lo = b[k-1]
			}
			hi := b[k+1]
			m := st.bestBoundary(k, lo, hi)
			// Keep the move only if it does not lower the two affected
			// terms (binary search assumes they are unimodal in m).
			if st.clusterTerm(k, lo, m)+st.term(m, hi) >= st.clusterTerm(k, lo, b[k])+st.term(b[k], hi) {
				b[k] = m
			}
		}
		cur := st.objective(b)
		if !(cur > best*(1+1e-12)) {
			return math.Max(best, cur), sweeps
		}
		best = cur
	}
	return best, sweeps
}

// bestBoundary returns the end m ∈ [lo, hi] of cluster k maximizing the two
// terms it affects, f(m) = term_k(lo, m) + term_{k+1}(m, hi), by binary search
// on the sign of f(m+1) − f(m) (the first m where f stops increasing). An
// empty range returns lo.
func (st *weqState) bestBoundary(k, lo, hi int) int {
	if hi <= lo {
		return lo
	}
	f := func(m int) float64 { return st.clusterTerm(k, lo, m) + st.term(m, hi) }
	a, z := lo, hi // invariant: answer in [a, z]
	for a < z {
		m := a + (z-a)/2
		if f(m+1) > f(m) {
			a = m + 1
		} else {
			z = m
		}
	}
	return a
}

// warmBounds returns the previous cluster ends rescaled to n elements, or
// nil when there is no usable previous partition with h clusters.
func warmBounds(prev []int, h, n int) []int {
	if len(prev) != h || prev[h-1] <= 0 {
		return nil
	}
	b := prev
	if old := prev[h-1]; old != n {
		for k := range b {
			b[k] = int(int64(b[k]) * int64(n) / int64(old))
		}
	}
	b[h-1] = n
	for k := 1; k < h; k++ {
		if b[k] < b[k-1] {
			return nil
		}
	}
	return b
}

// weqDPBudget bounds the work (H·B² cluster evaluations) of the cold-start
// block search.
const weqDPBudget = 4 << 20

// coldBounds returns the cold-start partition: the best partition whose
// boundaries lie on B block edges floor(n·j/B), found exactly by dynamic
// programming over the blocks. B = n when n is small enough (the result is
// then the global maximum of S); otherwise B is a multiple of h, so the
// equal-population start c_k = floor(n(k+1)/h) of methods.md §2.2 is one of
// the candidates and the result is never worse than it. Coordinate ascent
// then refines at full resolution.
func (st *weqState) coldBounds(h, n int) []int {
	blocks := n
	if float64(h)*float64(n)*float64(n) > weqDPBudget {
		t := int(math.Sqrt(float64(weqDPBudget)/float64(h))) / h
		blocks = h * max(t, 1)
		if blocks > n {
			blocks = n
		}
	}
	edge := func(j int) int { return int(int64(n) * int64(j) / int64(blocks)) }
	// best[j]: max S of the first k+1 clusters covering [0, edge(j)).
	best := make([]float64, blocks+1)
	next := make([]float64, blocks+1)
	arg := make([][]int32, h) // arg[k][j]: block where cluster k starts
	for j := range best {
		best[j] = st.clusterTerm(0, 0, edge(j))
	}
	for k := 1; k < h; k++ {
		arg[k] = make([]int32, blocks+1)
		for j := 0; j <= blocks; j++ {
			bv, bi := math.Inf(-1), 0
			ej := edge(j)
			for i := 0; i <= j; i++ {
				if v := best[i] + st.term(edge(i), ej); v > bv {
					bv, bi = v, i
				}
			}
			next[j], arg[k][j] = bv, int32(bi)
		}
		best, next = next, best
	}
	b := make([]int, h)
	j := blocks
	for k := h - 1; k >= 0; k-- {
		b[k] = edge(j)
		if k > 0 {
			j = int(arg[k][j])
		}
	}
	return b
}

// setLevels computes representatives and thresholds from Bounds. When a
// boundary splits equal magnitudes, the threshold maps all of them to the
// upper cluster (the representatives stay the RMS of the clusters as
// searched).
func (q *WEQ) setLevels(s []float64) {
	h := len(q.Bounds)
	q.Reps = slices.Grow(q.Reps[:0], h)[:h]
	q.Thresh = slices.Grow(q.Thresh[:0], h)[:h]
	a := 0
	for k, b := range q.Bounds {
		switch {
		case b > a && !(k == 0 && q.L%2 == 1):
			var sum float64
			for _, v := range s[a:b] {
				sum += v
			}
			q.Reps[k] = float32(math.Sqrt(sum / float64(b-a)))
		case k == 0 && q.L%2 == 1:
			q.Reps[k] = 0
		default:
			q.Reps[k] = float32(math.NaN()) // empty: fixed below
		}
		if k == 0 {
			q.Thresh[k] = 0
		} else if b > a {
			q.Thresh[k] = float32(math.Sqrt(s[a]))
		} else {
			q.Thresh[k] = float32(math.NaN())
		}
		a = b
	}
	// An empty cluster takes the threshold of the next non-empty one (so
	// no magnitude maps to it) and +Inf when none follows; its
	// representative copies its threshold, or the previous level.
	next := float32(math.Inf(1))
	for k := h - 1; k >= 1; k-- {
		if math.IsNaN(float64(q.Thresh[k])) {
			q.Thresh[k] = next
		} else {
			next = q.Thresh[k]
		}
	}
	for k := range h {
		if math.IsNaN(float64(q.Reps[k])) {
			switch {
			case !math.IsInf(float64(q.Thresh[k]), 1):
				q.Reps[k] = q.Thresh[k]
			case k > 0:
				q.Reps[k] = q.Reps[k-1]
			default:
				q.Reps[k] = 0
			}
		}
	}
}

// quantizeMag maps a magnitude to its representative.
func (q *WEQ) quantizeMag(a float32) float32 {
	// k = max{k : a ≥ t_k}; thresholds are non-decreasing.
	k := sortSearchFloat(q.Thresh, a) - 1
	if k < 0 {
		k = 0
	}
	return q.Reps[k]
}

// sortSearchFloat returns the number of thresholds ≤ a.
func sortSearchFloat(t []float32, a float32) int {
	lo, hi := 0, len(t)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t[m] <= a {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// Forward writes q(x) into y (x and y may alias). It needs a prior Fit; with
// PerChannel, len(x) must split into len(Scales) channels.
func (q *WEQ) Forward(x, y []float32) error {
	if len(q.Reps) == 0 {
		return fmt.Errorf("quant: WEQ used before Fit")
	}
	if len(x) != len(y) {
		return fmt.Errorf("quant: WEQ forward: input has %d values, output %d", len(x), len(y))
	}
	if !q.PerChannel {
		for i, v := range x {
			y[i] = signOf(v) * q.quantizeMag(float32(math.Abs(float64(v))))
		}
		return nil
	}
	c := len(q.Scales)
	if c == 0 || len(x)%c != 0 {
		return fmt.Errorf("quant: WEQ forward: %d values do not split into %d channels", len(x), c)
	}
	inner := len(x) / c
	for ch := range c {
		sc := q.Scales[ch]
		for i := ch * inner; i < (ch+1)*inner; i++ {
			v := x[i]
			y[i] = signOf(v) * sc * q.quantizeMag(float32(math.Abs(float64(v)))/sc)
		}
	}
	return nil
}

// Mask writes the straight-through gradient mask (all ones: the float
// weights receive the gradient of their quantized copy unchanged).
func (q *WEQ) Mask(x, m []float32) error {
	if len(x) != len(m) {
		return fmt.Errorf("quant: WEQ mask: input has %d values, mask %d", len(x), len(m))
	}
	for i := range m {
		m[i] = 1
	}
	return nil
}

// Levels returns the sorted distinct output levels (in normalized units when
// PerChannel), nil before Fit.
func (q *WEQ) Levels() []float32 {
	var lv []float32
	for _, r := range q.Reps {
		if r == 0 {
			lv = append(lv, 0) // the zero cluster
			continue
		}
		lv = append(lv, -r, r)
	}
	slices.Sort(lv)
	return slices.Compact(lv)
}

// Describe summarizes the quantizer for a report table.
func (q *WEQ) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "weq L=%d", q.L)
	if q.PerChannel {
		b.WriteString(" per-channel(rms-normalized)")
	}
	if len(q.Reps) > 0 {
		fmt.Fprintf(&b, " ±{%s}", joinFloats(q.Reps))
	}
	return b.String()
}

// WeightedEntropy returns S (methods.md §2.3) of w under the partition given
// by cluster ends bounds over the ascending squares of w (len(bounds) =
// ceil(L/2), last = len(w)), for level count L.
func WeightedEntropy(w []float32, bounds []int, levels int) float64 {
	s := make([]float64, len(w))
	for i, v := range w {
		s[i] = float64(v) * float64(v)
	}
	slices.Sort(s)
	st := &weqState{ps: make([]float64, len(s)+1), n: float64(len(s)), odd: levels%2 == 1}
	for i, v := range s {
		st.ps[i+1] = st.ps[i] + v
	}
	return st.objective(bounds)
}

func signOf(v float32) float32 {
	if v < 0 {
		return -1
	}
	return 1
}
