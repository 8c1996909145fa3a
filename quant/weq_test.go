package quant

import (
	"math"
	"math/rand"
	"slices"
	"testing"
)

// exhaustiveS enumerates every partition of the sorted importances of w
// into ceil(L/2) contiguous (possibly empty) clusters and returns max S.
func exhaustiveS(w []float32, levels int) float64 {
	n, h := len(w), (levels+1)/2
	b := make([]int, h)
	b[h-1] = n
	best := math.Inf(-1)
	var rec func(k, lo int)
	rec = func(k, lo int) {
		if k == h-1 {
			best = math.Max(best, WeightedEntropy(w, b, levels))
			return
		}
		for m := lo; m <= n; m++ {
			b[k] = m
			rec(k+1, m)
		}
	}
	rec(0, 0)
	return best
}

func randWeights(rng *rand.Rand, n, kind int) []float32 {
	w := make([]float32, n)
	for i := range w {
		switch kind % 3 {
		case 0:
			w[i] = float32(rng.NormFloat64())
		case 1:
			w[i] = float32(2*rng.Float64() - 1)
		default: // heavy-tailed
			w[i] = float32(rng.NormFloat64() * math.Exp(1.5*rng.NormFloat64()))
		}
	}
	return w
}

func TestWEQReachesExhaustiveMaximum(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for trial := range 1500 {
		n := 1 + rng.Intn(12)
		levels := 2 + trial%7 // 2..8, odd and even
		w := randWeights(rng, n, trial)
		q, err := NewWEQ(levels, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Fit(w, 1); err != nil {
			t.Fatal(err)
		}
		want := exhaustiveS(w, levels)
		if q.S < want-1e-12*math.Max(1, want) {
			t.Fatalf("n=%d L=%d: S=%v, exhaustive max %v (bounds %v, w=%v)", n, levels, q.S, want, q.Bounds, w)
		}
		if got := WeightedEntropy(w, q.Bounds, levels); math.Abs(got-q.S) > 1e-12*math.Max(1, want) {
			t.Fatalf("reported S %v differs from S of the bounds %v", q.S, got)
		}
	}
}

// The binary search assumes the two affected terms are unimodal in the
// boundary; check it against a linear scan.
func TestWEQBoundaryBinarySearchMatchesScan(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for trial := range 300 {
		n := 50 + rng.Intn(400)
		w := randWeights(rng, n, trial)
		s := make([]float64, n)
		for i, v := range w {
			s[i] = float64(v) * float64(v)
		}
		slices.Sort(s)
		st := &weqState{ps: make([]float64, n+1), n: float64(n), odd: trial%2 == 1}
		for i, v := range s {
			st.ps[i+1] = st.ps[i] + v
		}
		lo := rng.Intn(n / 2)
		hi := lo + rng.Intn(n-lo+1)
		k := rng.Intn(2)
		f := func(m int) float64 { return st.clusterTerm(k, lo, m) + st.term(m, hi) }
		best := math.Inf(-1)
		for m := lo; m <= hi; m++ {
			best = math.Max(best, f(m))
		}
		if got := f(st.bestBoundary(k, lo, hi)); got < best-1e-12*math.Abs(best) {
			t.Fatalf("trial %d: binary search value %v < scan maximum %v", trial, got, best)
		}
	}
}

func TestWEQLevelCountsAndSymmetry(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	w := randWeights(rng, 4000, 0)
	for levels := 2; levels <= 16; levels++ {
		q, _ := NewWEQ(levels, false)
		if err := q.Fit(w, 1); err != nil {
			t.Fatal(err)
		}
		y := make([]float32, len(w))
		if err := q.Forward(w, y); err != nil {
			t.Fatal(err)
		}
		distinct := map[float32]bool{}
		for _, v := range y {
			distinct[v] = true
		}
		if len(distinct) != levels {
			t.Errorf("L=%d: %d distinct outputs", levels, len(distinct))
		}
		for v := range distinct {
			if !distinct[-v] {
				t.Errorf("L=%d: level %v without its negative", levels, v)
			}
		}
		if distinct[0] != (levels%2 == 1) {
			t.Errorf("L=%d: zero level present = %v", levels, distinct[0])
		}
		if lv := q.Levels(); len(lv) != levels {
			t.Errorf("L=%d: Levels() has %d entries: %v", levels, len(lv), lv)
		}
		// Each representative is the RMS of the weights it replaces.
		sum, cnt := map[float32]float64{}, map[float32]int{}
		for i, v := range y {
			a := abs32(v)
			sum[a] += float64(w[i]) * float64(w[i])
			cnt[a]++
		}
		for a, ss := range sum {
			if a == 0 {
				continue
			}
			if rms := math.Sqrt(ss / float64(cnt[a])); math.Abs(rms-float64(a)) > 1e-5*rms {
				t.Errorf("L=%d: level %v but RMS of its weights %v", levels, a, rms)
			}
		}
	}
}

func TestWEQTwoLevelsIsPlusMinusRMS(t *testing.T) {
	w := []float32{0.5, -1, 2, 0, -3}
	rms := float32(math.Sqrt((0.25 + 1 + 4 + 0 + 9) / 5.0))
	q, _ := NewWEQ(2, false)
	if err := q.Fit(w, 1); err != nil {
		t.Fatal(err)
	}
	y := make([]float32, len(w))
	if err := q.Forward(w, y); err != nil {
		t.Fatal(err)
	}
	want := []float32{rms, -rms, rms, rms, -rms} // sign(0) = +1
	for i := range y {
		if math.Abs(float64(y[i]-want[i])) > 1e-6 {
			t.Fatalf("y = %v, want %v", y, want)
		}
	}
	// S = −Σ s/N · ln(1/2) for the single cluster.
	if wantS := (0.25 + 1 + 4 + 9) / 5 * math.Ln2; math.Abs(q.S-wantS) > 1e-12 {
		t.Fatalf("S = %v, want %v", q.S, wantS)
	}
}

func TestWEQWarmStart(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	w := randWeights(rng, 600, 0)
	q, _ := NewWEQ(8, false)
	if err := q.Fit(w, 1); err != nil {
		t.Fatal(err)
	}
	bounds, s := slices.Clone(q.Bounds), q.S
	if err := q.Fit(w, 1); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(bounds, q.Bounds) || q.S != s || q.Sweeps != 1 {
		t.Fatalf("refit on the same weights moved: %v→%v S %v→%v sweeps %d", bounds, q.Bounds, s, q.S, q.Sweeps)
	}
	// A small update: the warm-started fit is at least as good as the old
	// partition on the new weights and no single boundary move improves it.
	for i := range w {
		w[i] += float32(0.01 * rng.NormFloat64())
	}
	old := WeightedEntropy(w, bounds, 8)
	if err := q.Fit(w, 1); err != nil {
		t.Fatal(err)
	}
	if q.S < old {
		t.Fatalf("warm refit S %v < S of previous bounds %v", q.S, old)
	}
	b := slices.Clone(q.Bounds)
	for k := 0; k < len(b)-1; k++ {
		lo := 0
		if k > 0 {
			lo = b[k-1]
		}
		for m := lo; m <= b[k+1]; m++ {
			c := slices.Clone(b)
			c[k] = m
			if v := WeightedEntropy(w, c, 8); v > q.S*(1+1e-9) {
				t.Fatalf("moving boundary %d to %d improves S %v → %v", k, m, q.S, v)
			}
		}
	}
}

func TestWEQPerChannelNormalizes(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	const ch, inner = 4, 200
	w := randWeights(rng, ch*inner, 0)
	scaled := slices.Clone(w)
	for i := inner; i < 2*inner; i++ { // channel 1 ×10
		scaled[i] *= 10
	}
	qa, _ := NewWEQ(7, true)
	qb, _ := NewWEQ(7, true)
	if err := qa.Fit(w, ch); err != nil {
		t.Fatal(err)
	}
	if err := qb.Fit(scaled, ch); err != nil {
		t.Fatal(err)
	}
	ya, yb := make([]float32, len(w)), make([]float32, len(w))
	if err := qa.Forward(w, ya); err != nil {
		t.Fatal(err)
	}
	if err := qb.Forward(scaled, yb); err != nil {
		t.Fatal(err)
	}
	for i := range ya {
		want := ya[i]
		if i >= inner && i < 2*inner {
			want *= 10
		}
		if math.Abs(float64(yb[i]-want)) > 1e-4*math.Max(1, math.Abs(float64(want))) {
			t.Fatalf("index %d: %v, want %v (per-channel fit is not scale-invariant)", i, yb[i], want)
		}
	}
	for c := range ch {
		var ss float64
		for _, v := range w[c*inner : (c+1)*inner] {
			ss += float64(v) * float64(v)
		}
		if r := math.Sqrt(ss / inner); math.Abs(r-float64(qa.Scales[c])) > 1e-5*r {
			t.Fatalf("channel %d scale %v, RMS %v", c, qa.Scales[c], r)
		}
	}
	if err := qa.Fit(w, 7); err == nil {
		t.Fatal("expected an error for 800 weights in 7 channels")
	}
}

func TestWEQErrors(t *testing.T) {
	if _, err := NewWEQ(1, false); err == nil {
		t.Fatal("L=1 accepted")
	}
	q, _ := NewWEQ(4, false)
	if err := q.Forward([]float32{1}, []float32{0}); err == nil {
		t.Fatal("Forward before Fit accepted")
	}
	if err := q.Fit(nil, 1); err == nil {
		t.Fatal("empty fit accepted")
	}
	if err := q.Fit([]float32{1, float32(math.NaN())}, 1); err == nil {
		t.Fatal("NaN weights accepted")
	}
}
