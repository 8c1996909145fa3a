package quant

import (
	"math"
	"math/rand"
	"testing"
)

// heavyTailed returns scale·N(0,1)·exp(N(0, logSigma²)) samples with a
// fraction zeroFrac of exact zeros.
func heavyTailed(rng *rand.Rand, n int, scale, logSigma, zeroFrac float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		if zeroFrac == 0 || rng.Float64() >= zeroFrac {
			x[i] = float32(scale * rng.NormFloat64() * math.Exp(logSigma*rng.NormFloat64()))
		}
	}
	return x
}

func sparseBatch(rng *rand.Rand, n int, zeroFrac float64) []float32 {
	return heavyTailed(rng, n, 1, 1, zeroFrac)
}

func TestOLAQKeepsCeilRatioOutliers(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, r := range []float64{0.01, 0.03, 0.1, 0.5} {
		for _, signed := range []bool{true, false} {
			x := sparseBatch(rng, 5000+rng.Intn(1000), 0.3)
			q, err := NewOLAQ(4, signed, r, OutlierFP16)
			if err != nil {
				t.Fatal(err)
			}
			q.Fit(x)
			y := make([]float32, len(x))
			if err := q.Forward(x, y); err != nil {
				t.Fatal(err)
			}
			nnz := 0
			for _, v := range x {
				if v > 0 || signed && v != 0 {
					nnz++
				}
			}
			want := math.Ceil(r * float64(nnz))
			if got := float64(q.Stats.Outliers); math.Abs(got-want) > 1 {
				t.Errorf("r=%v signed=%v: %v outliers, want ⌈r·nnz⌉ = %v", r, signed, got, want)
			}
			if q.Stats.Nonzero != int64(nnz) {
				t.Errorf("nonzero count %d, want %d", q.Stats.Nonzero, nnz)
			}
			m := q.m()
			delta := q.T / float32(m)
			for i, v := range x {
				switch {
				case v == 0 || !signed && v < 0:
					if y[i] != 0 {
						t.Fatalf("zero/negative %v → %v", v, y[i])
					}
				case abs32(v) >= q.T: // outlier: binary16
					if y[i] != SaturateFloat16(v) {
						t.Fatalf("outlier %v → %v, want %v", v, y[i], SaturateFloat16(v))
					}
				default: // inlier: on the grid, within half a step
					c := float64(y[i] / delta)
					if math.Abs(c-math.Round(c)) > 1e-3 || math.Round(math.Abs(c)) > float64(m) ||
						math.Abs(float64(y[i]-v)) > float64(delta)/2*(1+1e-5) {
						t.Fatalf("inlier %v → %v (Δ=%v, m=%d)", v, y[i], delta, m)
					}
				}
			}
		}
	}
}

// Zeros are never outliers, even when they are most of the tensor.
func TestOLAQZerosNeverOutliers(t *testing.T) {
	x := make([]float32, 1000)
	for i := range 10 {
		x[i*100] = float32(i + 1)
	}
	q, _ := NewOLAQ(4, true, 0.2, OutlierFP32)
	q.Fit(x)
	y := make([]float32, len(x))
	_ = q.Forward(x, y)
	if q.Stats.Outliers != 2 || q.T != 9 { // ⌈0.2·10⌉ = 2: {9, 10}
		t.Fatalf("%d outliers, T=%v; want 2 and 9", q.Stats.Outliers, q.T)
	}
	if y[900] != 10 || y[800] != 9 {
		t.Fatalf("fp32 outliers changed: %v %v", y[800], y[900])
	}
}

func TestOLAQZeroRatioIsUniform(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	x := sparseBatch(rng, 2000, 0.1)
	q, _ := NewOLAQ(4, true, 0, OutlierFP16)
	q.Fit(x)
	t0, mx, _ := OutlierThreshold(x, 0)
	if q.T != mx || t0 != mx {
		t.Fatalf("r=0: T=%v, max|x|=%v", q.T, mx)
	}
	y := make([]float32, len(x))
	_ = q.Forward(x, y)
	u, _ := UniformFromRange(4, Symmetric, -mx, mx)
	yu := make([]float32, len(x))
	_ = u.Forward(x, yu)
	for i := range y {
		if math.Abs(float64(y[i]-yu[i])) > 1e-5*float64(mx) {
			t.Fatalf("index %d: OLAQ r=0 gives %v, uniform %v", i, y[i], yu[i])
		}
	}
	if q.Stats.Outliers != 0 {
		t.Fatalf("r=0 produced %d outliers", q.Stats.Outliers)
	}
}

func TestOLAQActivationEMA(t *testing.T) {
	q, _ := NewOLAQ(4, false, 0.25, OutlierFP16)
	// Batch thresholds: 4 positive values, ⌈0.25·4⌉ = 1 → T = max.
	q.Observe([]float32{1, 2, 3, 4, -5, 0})
	q.Observe([]float32{1, 2, 3, 8})
	want := float32(0.99*4 + 0.01*8)
	if math.Abs(float64(q.T-want)) > 1e-5 || q.Batches != 2 {
		t.Fatalf("EMA threshold %v after %d batches, want %v", q.T, q.Batches, want)
	}
	m := make([]float32, 3)
	_ = q.Mask([]float32{-1, 0, 2}, m)
	if m[0] != 0 || m[1] != 0 || m[2] != 1 {
		t.Fatalf("unsigned mask %v", m)
	}
}

func TestOLAQInt8Outliers(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	x := sparseBatch(rng, 3000, 0)
	q, _ := NewOLAQ(3, true, 0.05, Outlier8)
	q.Fit(x)
	y := make([]float32, len(x))
	_ = q.Forward(x, y)
	step := (q.Max - q.T) / 127
	codes := map[float32]bool{}
	for i, v := range x {
		if abs32(v) < q.T {
			continue
		}
		a := abs32(y[i])
		c := float64((a - q.T) / step)
		if a < q.T || a > q.Max*(1+1e-6) || math.Abs(c-math.Round(c)) > 1e-2 || signOf(y[i]) != signOf(v) {
			t.Fatalf("outlier %v → %v (T=%v, Max=%v)", v, y[i], q.T, q.Max)
		}
		if math.Abs(float64(a-abs32(v))) > float64(step)/2*(1+1e-4) {
			t.Fatalf("outlier %v → %v: error above half a step %v", v, y[i], step)
		}
		codes[a] = true
	}
	if len(codes) > 128 {
		t.Fatalf("%d outlier magnitudes, at most 128", len(codes))
	}
}

func TestOLAQBitsPerElement(t *testing.T) {
	if got := OutlierBitsPerElement(4, 0.01, 16, 1024); math.Abs(got-4.26) > 1e-12 {
		t.Fatalf("4 + 0.01·(16+10) = %v", got)
	}
	q, _ := NewOLAQ(4, true, 0.1, OutlierFP16)
	x := make([]float32, 100)
	for i := range x {
		x[i] = float32(i + 1)
	}
	q.Fit(x)
	_ = q.Forward(x, x)
	if got := q.BitsPerElement(100); math.Abs(got-(4+0.1*(16+7))) > 1e-12 {
		t.Fatalf("bits per element %v", got)
	}
	if _, err := NewOLAQ(4, true, 1, OutlierFP16); err == nil {
		t.Fatal("ratio 1 accepted")
	}
	if _, err := NewOLAQ(1, true, 0.01, OutlierFP16); err == nil {
		t.Fatal("signed 1-bit accepted")
	}
}
