package quant

import (
	"math"
	"math/rand"
	"runtime"
	"slices"
	"strings"
	"testing"

	"lowbit/graph"
	"lowbit/internal/gradcheck"
	"lowbit/tensor"
)

func scalar(v float32) *tensor.Tensor { return tensor.MustFromData([]float32{v}, 1) }

func TestDuQGradientsMatchFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	for _, mode := range []DuQMode{DuQWeight, DuQReLU, DuQHSwish, DuQSigned} {
		x := tensor.New(2, 3, 5, 3)
		x.RandUniform(rng, -2.5, 2.5)
		// Keep inputs away from the clip edges, where the surrogate has kinks.
		a := float32(1.7)
		for i, v := range x.Data {
			u := (v + DuQ{Mode: mode}.offset()) / a
			for _, edge := range []float32{-1, 0, 1} {
				if math.Abs(float64(u-edge)) < 0.03 {
					x.Data[i] += 0.1
				}
			}
		}
		alpha, gamma := float32(InvSoftplus(1.7)), float32(InvSoftplus(1.3))
		op := DuQ{Mode: mode, Bits: 4, noRound: true}
		if err := gradcheck.Check(op, []*tensor.Tensor{x, scalar(alpha), scalar(gamma)}, gradcheck.Options{Eps: 1e-3, Tol: 2e-2, MaxProbe: 90}); err != nil {
			t.Errorf("%v: %v", mode, err)
		}
		// With rounding, the γ gradient is exact: ŷ is linear in c.
		op.noRound = false
		if err := gradcheck.Check(op, []*tensor.Tensor{x, scalar(alpha), scalar(gamma)}, gradcheck.Options{Eps: 1e-3, Tol: 2e-2, Skip: []int{0, 1}}); err != nil {
			t.Errorf("%v with rounding, gamma: %v", mode, err)
		}
	}
}

func TestDuQLevels(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	x := tensor.New(4000)
	x.RandUniform(rng, -4, 8)
	cases := []struct {
		mode   DuQMode
		bits   int
		levels int
		lo, hi float32
	}{
		{DuQWeight, 4, 15, -2, 2},        // ±7 steps of c/7
		{DuQSigned, 3, 7, -2, 2},         // ±3
		{DuQReLU, 4, 16, 0, 2},           // 0..15
		{DuQHSwish, 2, 4, -0.375, 1.625}, // 4 codes from −3/8
	}
	for _, cse := range cases {
		op := DuQ{Mode: cse.mode, Bits: cse.bits}
		alpha, gamma := float32(InvSoftplus(3)), float32(InvSoftplus(2))
		out, err := op.Forward(graph.NewContext(false, 0), []*tensor.Tensor{x, scalar(alpha), scalar(gamma)})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[float32]bool{}
		for _, v := range out[0].Data {
			seen[v] = true
			if v < cse.lo-1e-5 || v > cse.hi+1e-5 {
				t.Fatalf("%v: output %v outside [%v, %v]", cse.mode, v, cse.lo, cse.hi)
			}
		}
		if len(seen) != cse.levels {
			t.Errorf("%v %d bits: %d distinct levels, want %d", cse.mode, cse.bits, len(seen), cse.levels)
		}
		if cse.mode == DuQHSwish && !seen[-0.375] {
			t.Errorf("h-swish: code 0 must be −3/8")
		}
	}
}

func TestDuQInit(t *testing.T) {
	w := []float32{-2, 0.5, 1}
	a, c, err := DuQInit(DuQWeight, w)
	if err != nil || math.Abs(Softplus(float64(a))-1.8) > 1e-5 || a != c {
		t.Fatalf("weight init a=%v c=%v err=%v, want softplus⁻¹(1.8)", Softplus(float64(a)), c, err)
	}
	x := make([]float32, 200)
	for i := range x {
		x[i] = float32(i - 99) // 100 positive values 1..100
	}
	a, _, err = DuQInit(DuQReLU, x)
	if err != nil || math.Abs(Softplus(float64(a))-96) > 1e-3 {
		t.Fatalf("relu init %v (%v), want the 95th percentile 96", Softplus(float64(a)), err)
	}
	if _, _, err := DuQInit(DuQReLU, []float32{-1, 0}); err == nil {
		t.Fatal("init without positive values accepted")
	}
}

// runDuQ runs op forward and backward (output gradient dy) on procs
// goroutines and returns copies of the output and of the gradients of x,
// α and γ.
func runDuQ(t *testing.T, op DuQ, procs int, x, alpha, gamma, dy *tensor.Tensor) (y, dx, da, dg []float32) {
	t.Helper()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	c := graph.NewContext(true, 0)
	c.NeedGrad = []bool{true, true, true}
	in := []*tensor.Tensor{x, alpha, gamma}
	out, err := op.Forward(c, in)
	if err != nil {
		t.Fatal(err)
	}
	gr, err := op.Backward(c, in, out, []*tensor.Tensor{dy})
	if err != nil {
		t.Fatal(err)
	}
	return slices.Clone(out[0].Data), slices.Clone(gr[0].Data), slices.Clone(gr[1].Data), slices.Clone(gr[2].Data)
}

// TestDuQParallelDeterministic checks that DuQ's forward and backward on a
// tensor spanning several parallel blocks give the same bits with one or
// two goroutines, and that the block-wise range/scale gradients equal a
// serial sum.
func TestDuQParallelDeterministic(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	n := 3*duqBlock + 123
	x, dy := tensor.New(n), tensor.New(n)
	x.RandUniform(rng, -3, 5)
	dy.RandUniform(rng, -1, 1)
	alpha, gamma := scalar(float32(InvSoftplus(2.5))), scalar(float32(InvSoftplus(1.5)))
	op := DuQ{Mode: DuQSigned, Bits: 3}
	run := func(procs int) (y, dx []float32, da, dc float32) {
		y, dx, das, dcs := runDuQ(t, op, procs, x, alpha, gamma, dy)
		return y, dx, das[0], dcs[0]
	}
	y1, dx1, da1, dc1 := run(1)
	y2, dx2, da2, dc2 := run(2)
	if !slices.Equal(y1, y2) || !slices.Equal(dx1, dx2) || da1 != da2 || dc1 != dc2 {
		t.Fatalf("results differ between 1 and 2 goroutines: da %v/%v dc %v/%v", da1, da2, dc1, dc2)
	}
	a, cs := op.Scales(alpha.Data[0], gamma.Data[0])
	var da, dc float64
	for i, v := range x.Data {
		u, clipped := op.u(v, a)
		dc += float64(dy.Data[i] * op.round(u, op.steps()))
		if !clipped {
			da -= float64(dy.Data[i] * cs * u / a)
		}
	}
	wantA := float32(da * sigmoid(float64(alpha.Data[0])))
	wantC := float32(dc * sigmoid(float64(gamma.Data[0])))
	if math.Abs(float64(da1-wantA)) > 1e-4*math.Abs(float64(wantA)) || math.Abs(float64(dc1-wantC)) > 1e-4*math.Abs(float64(wantC)) {
		t.Fatalf("range/scale gradients %v, %v; serial sums give %v, %v", da1, dc1, wantA, wantC)
	}
}

// perChannelInputs returns a weight of shape [channels, rest...] whose
// channels have different spreads, and α, γ with one range and scale per
// channel, keeping weights away from the clip edges.
func perChannelInputs(rng *rand.Rand, channels int, rest ...int) (w, alpha, gamma *tensor.Tensor) {
	w = tensor.New(append([]int{channels}, rest...)...)
	alpha, gamma = tensor.New(channels), tensor.New(channels)
	inner := len(w.Data) / channels
	for k := range channels {
		spread := 0.3 + 0.4*float32(k%8)
		a := 0.7 * spread
		alpha.Data[k] = float32(InvSoftplus(float64(a)))
		gamma.Data[k] = float32(InvSoftplus(float64(0.5 + 0.2*float32(k%8))))
		for i := range inner {
			v := (2*rng.Float32() - 1) * spread
			for _, edge := range []float32{-1, 1} {
				if math.Abs(float64(v/a-edge)) < 0.03 {
					v *= 0.9
				}
			}
			w.Data[k*inner+i] = v
		}
	}
	return w, alpha, gamma
}

func TestDuQPerChannelGradientsMatchFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	w, alpha, gamma := perChannelInputs(rng, 4, 3, 2, 2)
	op := DuQ{Mode: DuQWeight, Bits: 4, noRound: true}
	if _, err := op.InferShapes([][]int{w.Shape, alpha.Shape, gamma.Shape}); err != nil {
		t.Fatal(err)
	}
	if err := gradcheck.Check(op, []*tensor.Tensor{w, alpha, gamma}, gradcheck.Options{Eps: 1e-3, Tol: 2e-2}); err != nil {
		t.Errorf("per-channel surrogate: %v", err)
	}
	op.noRound = false
	if err := gradcheck.Check(op, []*tensor.Tensor{w, alpha, gamma}, gradcheck.Options{Eps: 1e-3, Tol: 2e-2, Skip: []int{0, 1}}); err != nil {
		t.Errorf("per-channel with rounding, gamma: %v", err)
	}
	// Per-channel parameters are for weights only, one per output channel.
	if _, err := (DuQ{Mode: DuQReLU, Bits: 4}).InferShapes([][]int{w.Shape, alpha.Shape, gamma.Shape}); err == nil {
		t.Error("per-channel activation quantizer accepted")
	}
	if _, err := op.InferShapes([][]int{{5, 3, 2, 2}, alpha.Shape, gamma.Shape}); err == nil {
		t.Error("4 ranges for 5 channels accepted")
	}
	if _, err := op.InferShapes([][]int{w.Shape, alpha.Shape, {1}}); err == nil {
		t.Error("per-channel range with a per-tensor scale accepted")
	}
}

// TestDuQPerChannelMatchesPerTensor checks that channel k of a
// per-channel DuQ computes exactly what a per-tensor DuQ with a_k, c_k
// computes on that channel, forward and backward, with the same bits for
// one and two goroutines (the weight spans several parallel chunks).
func TestDuQPerChannelMatchesPerTensor(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	const channels = 64
	w, alpha, gamma := perChannelInputs(rng, channels, 64, 3, 3)
	dy := tensor.New(w.Shape...)
	dy.RandUniform(rng, -1, 1)
	inner := len(w.Data) / channels
	for _, bits := range []int{3, 12} {
		op := DuQ{Mode: DuQWeight, Bits: bits}
		y1, dx1, da1, dg1 := runDuQ(t, op, 1, w, alpha, gamma, dy)
		y2, dx2, da2, dg2 := runDuQ(t, op, 2, w, alpha, gamma, dy)
		if !slices.Equal(y1, y2) || !slices.Equal(dx1, dx2) || !slices.Equal(da1, da2) || !slices.Equal(dg1, dg2) {
			t.Fatalf("%d bits: per-channel results differ between 1 and 2 goroutines", bits)
		}
		for k := range channels {
			span := func(s []float32) *tensor.Tensor {
				return tensor.MustFromData(slices.Clone(s[k*inner:(k+1)*inner]), inner)
			}
			y, dx, da, dg := runDuQ(t, op, 1, span(w.Data), scalar(alpha.Data[k]), scalar(gamma.Data[k]), span(dy.Data))
			if !slices.Equal(y, y1[k*inner:(k+1)*inner]) || !slices.Equal(dx, dx1[k*inner:(k+1)*inner]) || da[0] != da1[k] || dg[0] != dg1[k] {
				t.Errorf("%d bits, channel %d: per-channel results differ from the per-tensor quantizer with a_k, c_k", bits, k)
			}
		}
	}
	bad := alpha.Clone()
	bad.Data[2] = -200 // a = softplus(−200) = 0
	if _, err := (DuQ{Mode: DuQWeight, Bits: 4}).Forward(graph.NewContext(false, 0), []*tensor.Tensor{w, bad, gamma}); err == nil || !strings.Contains(err.Error(), "channel 2") {
		t.Errorf("collapsed channel range: error %v, want one naming channel 2", err)
	}
}

func TestDuQInitPerChannel(t *testing.T) {
	rng := rand.New(rand.NewSource(13))
	w := tensor.New(5, 2, 3, 3)
	w.RandNormal(rng, 1)
	inner := len(w.Data) / 5
	for i := range inner {
		w.Data[3*inner+i] = 0 // a dead channel
	}
	alpha, gamma, err := DuQInitPerChannel(DuQWeight, w.Data, 5)
	if err != nil {
		t.Fatal(err)
	}
	maxAbs := func(x []float32) float64 {
		var m float64
		for _, v := range x {
			m = max(m, math.Abs(float64(v)))
		}
		return m
	}
	for k := range 5 {
		want := maxAbs(w.Data[k*inner : (k+1)*inner]) // a = c = max|w| of the channel
		if k == 3 {
			want = maxAbs(w.Data) // the dead channel falls back to the whole tensor
		}
		a, c := Softplus(float64(alpha[k])), Softplus(float64(gamma[k]))
		if math.Abs(a-want) > 1e-5*want || math.Abs(c-want) > 1e-5*want {
			t.Errorf("channel %d: a, c = %v, %v, want max|w| = %v", k, a, c, want)
		}
	}
	if _, _, err := DuQInitPerChannel(DuQWeight, w.Data, 7); err == nil {
		t.Error("90 values split into 7 channels accepted")
	}
	if _, _, err := DuQInitPerChannel(DuQWeight, make([]float32, 6), 2); err == nil {
		t.Error("all-zero weight accepted")
	}
}

func TestDuQInitMSE(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	x := make([]float32, 60000)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	rangeAt := func(mode DuQMode, bits int, x []float32) float64 {
		t.Helper()
		a, c, err := DuQInitMSE(mode, bits, x)
		if err != nil {
			t.Fatal(err)
		}
		if a != c {
			t.Fatalf("%s %d bits: α %v ≠ γ %v", mode, bits, a, c)
		}
		return Softplus(float64(a))
	}
	// Signed N(0,1): the MSE-optimal clip of a uniform quantizer grows with
	// the bit width (about 1.7σ at 3 bits' 7 levels, 2.5σ at 4 bits' 15,
	// beyond 3.5σ at 8 bits).
	a3, a4, a8 := rangeAt(DuQSigned, 3, x), rangeAt(DuQSigned, 4, x), rangeAt(DuQSigned, 8, x)
	if !(a3 < a4 && a4 < a8) {
		t.Errorf("ranges do not grow with bits: 3 bits %.3f, 4 bits %.3f, 8 bits %.3f", a3, a4, a8)
	}
	if a4 < 2.0 || a4 > 3.0 {
		t.Errorf("4-bit signed Gaussian range %.3f, want about 2.5σ", a4)
	}
	if a8 < 3.5 {
		t.Errorf("8-bit signed Gaussian range %.3f, want > 3.5σ", a8)
	}
	// The chosen range beats the 95th percentile and the maximum.
	mse := func(mode DuQMode, bits int, a float32) float64 {
		q := DuQ{Mode: mode, Bits: bits}
		y := make([]float32, len(x))
		q.forward(x, y, a, a)
		var s float64
		for i := range x {
			s += float64((y[i] - x[i]) * (y[i] - x[i]))
		}
		return s
	}
	for _, mode := range []DuQMode{DuQReLU, DuQSigned, DuQHSwish} {
		for _, bits := range []int{3, 4, 8} {
			p, _, err := DuQInit(mode, x)
			if err != nil {
				t.Fatal(err)
			}
			best := float32(rangeAt(mode, bits, x))
			pct := float32(Softplus(float64(p)))
			if mse(mode, bits, best) > mse(mode, bits, pct)*1.01 { // 1 %: the candidates are 1 % of the maximum apart
				t.Errorf("%s %d bits: MSE range %.3f worse than the 95th percentile %.3f", mode, bits, best, pct)
			}
		}
	}
	if _, _, err := DuQInitMSE(DuQReLU, 4, []float32{-1, -2, 0}); err == nil {
		t.Error("ReLU quantizer of non-positive values: want an error")
	}
	if _, _, err := DuQInitMSE(DuQReLU, 1, x); err == nil {
		t.Error("1 bit: want an error")
	}
	if _, err := ParseDuQInit("median"); err == nil || !strings.Contains(err.Error(), "median") {
		t.Errorf("ParseDuQInit(median) = %v, want an error naming it", err)
	}
}
