package quant

import (
	"math"
	"math/rand"
	"runtime"
	"slices"
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
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		c := graph.NewContext(true, 0)
		c.NeedGrad = []bool{true, true, true}
		in := []*tensor.Tensor{x, alpha, gamma}
		out, err := op.Forward(c, in)
		if err != nil {
			t.Fatal(err)
		}
		g, err := op.Backward(c, in, out, []*tensor.Tensor{dy})
		if err != nil {
			t.Fatal(err)
		}
		return append([]float32(nil), out[0].Data...), append([]float32(nil), g[0].Data...), g[1].Data[0], g[2].Data[0]
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
