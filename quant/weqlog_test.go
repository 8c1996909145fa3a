package quant

import (
	"errors"
	"math"
	"math/rand"
	"testing"
)

func reluBatch(rng *rand.Rand, n int, scale float64) []float32 {
	return heavyTailed(rng, n, scale, 0.7, 0)
}

// bruteLogScore scores (h, f) by assigning every value to its level
// directly, independently of the cumulative-count implementation.
func bruteLogScore(x []float32, levels, h, f int) float64 {
	s := 2 * h
	counts := make([]float64, levels)
	var pos float64
	for _, v := range x {
		if v <= 0 {
			continue
		}
		pos++
		b := LogBin(v)
		k := int(math.Floor(float64(b-f+h) / float64(s))) // b ∈ [f+k·s−h, f+k·s+h)
		if k < 0 {
			continue
		}
		counts[min(k, levels-2)+1]++
	}
	var score float64
	for k := 1; k < levels; k++ {
		if counts[k] == 0 {
			continue
		}
		p := counts[k] / pos
		score -= math.Exp2(float64(f+(k-1)*s)/16) * p * math.Log(p)
	}
	return score
}

func TestLogSearchIsExhaustiveFirstMaximum(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for trial, levels := range []int{2, 3, 4, 8, 16} {
		x := reluBatch(rng, 500, math.Exp2(float64(trial-2)))
		q, err := FitLog(x, levels)
		if err != nil {
			t.Fatal(err)
		}
		lo, hi := math.MaxInt, math.MinInt
		for _, v := range x {
			if v > 0 {
				lo, hi = min(lo, LogBin(v)), max(hi, LogBin(v))
			}
		}
		bestH, bestF, best := 0, 0, math.Inf(-1)
		for h := 1; h <= 16; h++ {
			for f := lo; f <= hi; f++ {
				if s := bruteLogScore(x, levels, h, f); s > best*(1+1e-12) {
					bestH, bestF, best = h, f, s
				}
			}
		}
		if q.H != bestH || q.F != bestF || math.Abs(q.Score-best) > 1e-9*best {
			t.Fatalf("L=%d: search (h=%d, f=%d, S=%v), brute force (h=%d, f=%d, S=%v)", levels, q.H, q.F, q.Score, bestH, bestF, best)
		}
	}
}

func TestLogLevelsArePowersOfTheBase(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	x := reluBatch(rng, 4000, 1)
	n := len(x)
	x = append(x, 1e6, 1e-9, 0, -3) // saturation, flush to zero, non-positive
	for _, levels := range []int{2, 4, 8, 16} {
		q, err := FitLog(x[:n], levels)
		if err != nil {
			t.Fatal(err)
		}
		y := make([]float32, len(x))
		if err := q.Forward(x, y); err != nil {
			t.Fatal(err)
		}
		base, low := q.Base(), math.Exp2(float64(q.F)/16)
		used := map[int]bool{}
		for i, v := range y {
			if x[i] <= 0 && v != 0 {
				t.Fatalf("x=%v → %v", x[i], v)
			}
			if v == 0 {
				continue
			}
			k := math.Log(float64(v)/low) / math.Log(base)
			if math.Abs(k-math.Round(k)) > 1e-4 || k < -1e-4 || k > float64(levels-2)+1e-4 {
				t.Fatalf("L=%d: output %v = 2^(F/16)·base^%v, not an integer power in [0, L−2]", levels, v, k)
			}
			used[int(math.Round(k))] = true
			// Rounding in log space: an unsaturated x is within half a
			// step of its level.
			if int(math.Round(k)) < levels-2 {
				d := 16 * math.Log2(float64(x[i])/float64(v))
				if d < -float64(q.H)-1e-6 || d >= float64(q.H)+1e-6 {
					t.Fatalf("x=%v → %v: %v sixteenths away (h=%d)", x[i], v, d, q.H)
				}
			}
		}
		if len(used) < 2 && levels > 2 {
			t.Fatalf("L=%d: only levels %v used", levels, used)
		}
		if got := q.Levels(); len(got) != levels || got[0] != 0 {
			t.Fatalf("L=%d: Levels() = %v", levels, got)
		}
		if y[len(x)-4] != q.Levels()[levels-1] {
			t.Fatalf("L=%d: 1e6 → %v, want saturation at %v", levels, y[len(x)-4], q.Levels()[levels-1])
		}
		if y[len(x)-3] != 0 {
			t.Fatalf("L=%d: 1e-9 → %v, want 0", levels, y[len(x)-3])
		}
	}
}

func TestLogHistogramAccumulates(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	x := reluBatch(rng, 3000, 0.5)
	var a, b LogHistogram
	a.Observe(x)
	b.Observe(x[:1000])
	b.Observe(x[1000:])
	qa, err := a.Search(8)
	if err != nil {
		t.Fatal(err)
	}
	qb, _ := b.Search(8)
	if qa.H != qb.H || qa.F != qb.F || qa.Score != qb.Score {
		t.Fatalf("one batch (%d, %d) vs two (%d, %d)", qa.H, qa.F, qb.H, qb.F)
	}
	// Stored parameters rebuild the same quantizer.
	qc, err := NewLogQuant(8, qa.H, qa.F)
	if err != nil {
		t.Fatal(err)
	}
	ya, yc := make([]float32, len(x)), make([]float32, len(x))
	_ = qa.Forward(x, ya)
	_ = qc.Forward(x, yc)
	for i := range ya {
		if ya[i] != yc[i] {
			t.Fatalf("rebuilt quantizer differs at %d", i)
		}
	}
	m := make([]float32, 3)
	_ = qa.Mask([]float32{-1, 0, 1e-12}, m)
	if m[0] != 0 || m[1] != 0 || m[2] != 1 {
		t.Fatalf("mask %v: want the ReLU mask (flushed values pass)", m)
	}
	var empty LogHistogram
	empty.Observe([]float32{0, -1})
	if _, err := empty.Search(4); !errors.Is(err, ErrNoPositive) {
		t.Fatalf("search without positives: %v", err)
	}
	if _, err := NewLogQuant(1, 1, 0); err == nil {
		t.Fatal("L=1 accepted")
	}
}
