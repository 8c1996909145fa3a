package qat

import (
	"fmt"
	"math"
	"sort"

	"lowbit/tensor"
)

// AIWQ computes the activation instability induced by weight quantization
// for one convolution output (methods.md §7): per output channel, the mean
// μ and standard deviation σ over (N, H, W) of the output with the current
// quantized weights (cur) and with the quantized weights from before the
// last update (old), then
//
//	KL_c = ln(σ_old/σ_new) + (σ_new² + (μ_new − μ_old)²)/(2σ_old²) − 1/2,
//
// averaged over channels whose σ are non-zero. ok is false when no channel
// qualifies.
func AIWQ(cur, old *tensor.Tensor) (value float64, ok bool, err error) {
	if !tensor.SameShape(cur.Shape, old.Shape) || len(cur.Shape) < 2 {
		return 0, false, fmt.Errorf("AIWQ: outputs %v and %v must share an [N,C,...] shape", cur.Shape, old.Shape)
	}
	n, ch := cur.Shape[0], cur.Shape[1]
	hw := cur.Len() / (n * ch)
	var sum float64
	var cnt int
	for c := 0; c < ch; c++ {
		mn, sn := channelStats(cur.Data, n, ch, hw, c)
		mo, so := channelStats(old.Data, n, ch, hw, c)
		if sn == 0 || so == 0 {
			continue
		}
		kl := math.Log(so/sn) + (sn*sn+(mn-mo)*(mn-mo))/(2*so*so) - 0.5
		sum += kl
		cnt++
	}
	if cnt == 0 {
		return 0, false, nil
	}
	return sum / float64(cnt), true, nil
}

func channelStats(d []float32, n, ch, hw, c int) (mean, std float64) {
	var s, s2 float64
	for i := 0; i < n; i++ {
		for _, v := range d[(i*ch+c)*hw : (i*ch+c+1)*hw] {
			s += float64(v)
			s2 += float64(v) * float64(v)
		}
	}
	cnt := float64(n * hw)
	mean = s / cnt
	return mean, math.Sqrt(math.Max(0, s2/cnt-mean*mean))
}

// AIWQTracker accumulates each layer's metric as m ← 0.999·m + 0.001·value,
// skipping values above 1 (methods.md §7).
type AIWQTracker struct {
	M     map[string]float64
	Count map[string]int
}

// NewAIWQTracker returns an empty tracker.
func NewAIWQTracker() *AIWQTracker {
	return &AIWQTracker{M: map[string]float64{}, Count: map[string]int{}}
}

// Add folds one measurement of layer into its running value.
func (t *AIWQTracker) Add(layer string, value float64) {
	if value > 1 || math.IsNaN(value) {
		return
	}
	t.M[layer] = 0.999*t.M[layer] + 0.001*value
	t.Count[layer]++
}

// Order returns the layers sorted by their metric, largest (least stable)
// first; ties break by name for determinism.
func (t *AIWQTracker) Order() []string {
	names := make([]string, 0, len(t.M))
	for k := range t.M {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if t.M[names[i]] != t.M[names[j]] {
			return t.M[names[i]] > t.M[names[j]]
		}
		return names[i] < names[j]
	})
	return names
}

// ProfitStages splits layers ordered by AIWQ (largest first) into the
// PROFIT freezing stages: nothing frozen, the top third frozen, the top
// two thirds frozen.
func ProfitStages(order []string) [][]string {
	n := len(order)
	third := (n + 2) / 3
	two := min(n, (2*n+2)/3)
	return [][]string{nil, append([]string(nil), order[:min(third, n)]...), append([]string(nil), order[:two]...)}
}
