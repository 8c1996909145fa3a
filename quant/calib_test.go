package quant

import (
	"math"
	"math/rand"
	"testing"
)

func mustObserver(t *testing.T, cfg CalibConfig) Observer {
	t.Helper()
	o, err := NewObserver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestMinMaxObserver(t *testing.T) {
	for _, c := range []struct {
		s      Scheme
		lo, hi float32
	}{{Asymmetric, -2, 3}, {Symmetric, -3, 3}, {Unsigned, 0, 3}} {
		o := mustObserver(t, CalibConfig{Method: CalibMinMax, Scheme: c.s, Bits: 8})
		o.Observe([]float32{1, -2, float32(math.NaN())})
		o.Observe([]float32{0.5, 3, float32(math.Inf(-1))})
		if lo, hi := o.Range(); lo != c.lo || hi != c.hi {
			t.Errorf("%v: range [%v, %v], want [%v, %v]", c.s, lo, hi, c.lo, c.hi)
		}
		if o.Clip() != 3 {
			t.Errorf("%v: clip %v", c.s, o.Clip())
		}
	}
}

func TestPercentileObserver(t *testing.T) {
	// |x| = 1..1000 in two batches (the second doubles the range): the
	// 99.9th percentile is 999, within one bin (1000/2048).
	o := mustObserver(t, CalibConfig{Method: CalibPercentile, Scheme: Symmetric, Bits: 8, Percentile: 99.9})
	var a, b []float32
	for i := 1; i <= 1000; i++ {
		v := float32(i)
		if i%2 == 0 {
			v = -v
		}
		if i <= 500 {
			a = append(a, v)
		} else {
			b = append(b, v)
		}
	}
	o.Observe(a)
	o.Observe(b)
	if lo, hi := o.Range(); math.Abs(float64(hi)-999) > 1 || lo != -hi {
		t.Fatalf("99.9%% range [%v, %v], want ±999", lo, hi)
	}
	// Asymmetric: x = 0..999, 99 % → [≈10, ≈990].
	o = mustObserver(t, CalibConfig{Method: CalibPercentile, Scheme: Asymmetric, Bits: 8, Percentile: 99})
	x := make([]float32, 1000)
	for i := range x {
		x[i] = float32(i)
	}
	o.Observe(x)
	if lo, hi := o.Range(); math.Abs(float64(lo)-10) > 1 || math.Abs(float64(hi)-990) > 1 {
		t.Fatalf("asymmetric 99%% range [%v, %v]", lo, hi)
	}
}

// Growing the histogram merges bins exactly: the counts equal a histogram
// built directly over the final range. Values are dyadic so that direct
// binning has no rounding either.
func TestHistogramGrowthIsExact(t *testing.T) {
	for _, s := range []Scheme{Symmetric, Unsigned, Asymmetric} {
		o, _ := NewObserver(CalibConfig{Method: CalibMSE, Scheme: s, Bits: 8, Bins: 64})
		h := o.(*HistObserver)
		rng := rand.New(rand.NewSource(1))
		var all []float32
		for batch, scale := range []float64{0.25, 1, 0.5, 3.7} {
			x := make([]float32, 200)
			for i := range x {
				x[i] = float32(math.Round(scale*(2*rng.Float64()-1)*(1<<20)) / (1 << 20))
			}
			if batch == 0 {
				x[0] = 0.25 // first top: 0.5
			}
			all = append(all, x...)
			h.Observe(x)
		}
		if h.Top != 4 {
			t.Fatalf("%v: top %v, want 4", s, h.Top)
		}
		nb := len(h.Counts)
		want := make([]float64, nb)
		for _, v := range all {
			var i int
			switch s {
			case Asymmetric:
				i = int(math.Floor((float64(v) + 4) / (8 / float64(nb))))
			case Unsigned:
				i = int(math.Max(float64(v), 0) / (4 / float64(nb)))
			default:
				i = int(math.Abs(float64(v)) / (4 / float64(nb)))
			}
			want[min(i, nb-1)]++
		}
		for i := range want {
			if want[i] != h.Counts[i] {
				t.Fatalf("%v: bin %d has %v, direct binning %v", s, i, h.Counts[i], want[i])
			}
		}
	}
}

func dataMSE(u *Uniform, x []float32) float64 {
	y := make([]float32, len(x))
	_ = u.Forward(x, y)
	var e float64
	for i := range x {
		d := float64(x[i] - y[i])
		e += d * d
	}
	return e / float64(len(x))
}

// With 10^5 values in [−1, 1] and one outlier at 10, clipping near 1 beats
// min-max at 4 bits by a wide margin.
func TestMSEClipBeatsMinMaxOnOutlier(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	x := make([]float32, 100000)
	for i := range x {
		x[i] = float32(2*rng.Float64() - 1)
	}
	x[123] = 10
	for _, s := range []Scheme{Symmetric, Asymmetric} {
		cfg := CalibConfig{Method: CalibMSE, Scheme: s, Bits: 4}
		o := mustObserver(t, cfg)
		o.Observe(x)
		lo, hi := o.Range()
		if hi < 0.8 || hi > 1.5 {
			t.Fatalf("%v: MSE range [%v, %v], want hi ≈ 1", s, lo, hi)
		}
		mse, _ := cfg.Calibrate(o)
		mm, _ := CalibrateWeights(x, 1, CalibConfig{Method: CalibMinMax, Scheme: s, Bits: 4})
		if a, b := dataMSE(mse, x), dataMSE(mm, x); a > 0.1*b {
			t.Fatalf("%v: MSE-clip error %v not ≪ min-max error %v", s, a, b)
		}
	}
	// Without an outlier the MSE clip of a uniform distribution stays near
	// its maximum.
	o := mustObserver(t, CalibConfig{Method: CalibMSE, Scheme: Symmetric, Bits: 4})
	o.Observe(x[:100])
	o.Observe(x[200:])
	if c := o.Clip(); c < 0.85 || c > 1.0001 {
		t.Fatalf("MSE clip without outlier %v", c)
	}
}

// Entropy calibration of Gaussian samples with rare huge outliers picks a
// threshold of a few σ, far below the maximum.
func TestKLCalibratorGaussianWithOutliers(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	x := make([]float32, 200000)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for i := range 20 {
		x[i*9973] = float32(50 * (1 - 2*float64(i%2)))
	}
	for _, c := range []struct {
		s    Scheme
		bits int
	}{{Symmetric, 8}, {Symmetric, 4}, {Asymmetric, 8}} {
		o := mustObserver(t, CalibConfig{Method: CalibKL, Scheme: c.s, Bits: c.bits})
		o.Observe(x[:100000])
		o.Observe(x[100000:])
		clip := o.Clip()
		t.Logf("%v %d bits: KL threshold %.3f σ", c.s, c.bits, clip)
		if clip < 2 || clip > 8 {
			t.Fatalf("%v %d bits: KL threshold %v, want a few σ (max is 50)", c.s, c.bits, clip)
		}
	}
	// Unsigned (post-ReLU) data with outliers.
	o := mustObserver(t, CalibConfig{Method: CalibKL, Scheme: Unsigned, Bits: 8})
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = max(v, 0)
	}
	o.Observe(y)
	if lo, hi := o.Range(); lo != 0 || hi < 2 || hi > 8 {
		t.Fatalf("unsigned KL range [%v, %v]", lo, hi)
	}
}

func TestKLWithoutOutliersKeepsMostOfTheRange(t *testing.T) {
	// A uniform distribution has no tail to cut: the threshold stays
	// close to the maximum.
	rng := rand.New(rand.NewSource(4))
	x := make([]float32, 100000)
	for i := range x {
		x[i] = float32(2*rng.Float64() - 1)
	}
	o := mustObserver(t, CalibConfig{Method: CalibKL, Scheme: Symmetric, Bits: 8})
	o.Observe(x)
	if c := o.Clip(); c < 0.9 || c > 1.0001 {
		t.Fatalf("KL threshold on uniform data %v", c)
	}
}

func TestCalibrateWeightsPerChannel(t *testing.T) {
	w := []float32{-1, 0.5, 1, 4, -2, 3}
	u, err := CalibrateWeights(w, 2, CalibConfig{Method: CalibMinMax, Scheme: Symmetric, Bits: 4})
	if err != nil {
		t.Fatal(err)
	}
	if u.Channels() != 2 || u.Scale[0] != float32(1.0/7) || u.Scale[1] != float32(4.0/7) {
		t.Fatalf("per-channel scales %v", u.Scale)
	}
	if _, err := CalibrateWeights(w, 4, CalibConfig{Scheme: Symmetric, Bits: 4}); err == nil {
		t.Fatal("6 weights in 4 channels accepted")
	}
}

func TestObserverConfigErrors(t *testing.T) {
	bad := []CalibConfig{
		{Method: CalibMSE, Scheme: Symmetric, Bits: 9},
		{Method: CalibPercentile, Scheme: Symmetric, Bits: 8, Percentile: 101},
		{Method: CalibKL, Scheme: Symmetric, Bits: 8, Bins: 15},
		{Method: CalibMethod(9), Scheme: Symmetric, Bits: 8},
	}
	for _, c := range bad {
		if _, err := NewObserver(c); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
	if _, err := ParseCalibMethod("kl"); err != nil {
		t.Error(err)
	}
	if _, err := ParseCalibMethod("median"); err == nil {
		t.Error("unknown calibrator accepted")
	}
	// An observer that saw nothing returns an empty range.
	o := mustObserver(t, CalibConfig{Method: CalibKL, Scheme: Symmetric, Bits: 8})
	o.Observe([]float32{0, 0})
	if lo, hi := o.Range(); lo != 0 || hi != 0 {
		t.Errorf("all-zero range [%v, %v]", lo, hi)
	}
}

// ReLU outputs are half exact zeros. Every grid represents them exactly,
// so they must not steer the entropy threshold: on a half-Gaussian with
// half its mass at 0 and no outliers the 8-bit threshold stays at a few σ
// (a 50 % spike in bin 0 used to drive it to the smallest candidate).
func TestKLIgnoresExactZeros(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	x := make([]float32, 200000)
	for i := range x {
		x[i] = max(float32(rng.NormFloat64()), 0)
	}
	for _, bits := range []int{8, 4} {
		o := mustObserver(t, CalibConfig{Method: CalibKL, Scheme: Unsigned, Bits: bits})
		o.Observe(x)
		_, hi := o.Range()
		t.Logf("%d bits: KL threshold %.3f σ", bits, hi)
		if hi < 2 || hi > 6 {
			t.Fatalf("%d bits: unsigned KL threshold %v on ReLU'd N(0,1), want a few σ", bits, hi)
		}
	}
}
