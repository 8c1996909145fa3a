package train

import (
	"context"
	"errors"
	"math"
	"math/rand"
	"testing"

	"lowbit/graph"
	"lowbit/ops"
	"lowbit/tensor"
)

// sliceIter yields fixed batches.
type sliceIter struct {
	xs []*tensor.Tensor
	i  int
}

func (s *sliceIter) Next() bool                     { s.i++; return s.i <= len(s.xs) }
func (s *sliceIter) Batch() (*tensor.Tensor, []int) { return s.xs[s.i-1], nil }
func (s *sliceIter) Err() error                     { return nil }
func (s *sliceIter) Close() error                   { return nil }

// bnStats returns the per-channel mean and unbiased variance of x [N,C,H,W].
func bnStats(x []float32, n, c, hw int) (mean, uvar []float64) {
	mean, uvar = make([]float64, c), make([]float64, c)
	cnt := float64(n * hw)
	for k := range c {
		var s float64
		for i := range n {
			for _, v := range x[(i*c+k)*hw : (i*c+k+1)*hw] {
				s += float64(v)
			}
		}
		m := s / cnt
		var ss float64
		for i := range n {
			for _, v := range x[(i*c+k)*hw : (i*c+k+1)*hw] {
				ss += (float64(v) - m) * (float64(v) - m)
			}
		}
		mean[k], uvar[k] = m, ss/(cnt-1)
	}
	return mean, uvar
}

func TestReestimateBNAveragesBatchStatistics(t *testing.T) {
	const n, c, h, w = 8, 3, 4, 4
	rng := rand.New(rand.NewSource(3))
	g := graph.New("bn2")
	x := g.Input("x", -1, c, h, w)
	par := func(name string, kind graph.Kind, vals ...float32) *graph.Value {
		return g.AddParam(name, kind, tensor.MustFromData(vals, c))
	}
	scale, bias := []float32{1.5, 0.5, 2}, []float32{0.2, -0.3, 0.1}
	const eps = 1e-3
	b1 := g.Apply("bn1", ops.BatchNorm{Epsilon: eps, Momentum: 0.9}, x, par("s1", graph.BNScale, scale...), par("b1", graph.BNBias, bias...),
		par("m1", graph.BNMean, 7, 7, 7), par("v1", graph.BNVar, 9, 9, 9))
	r := g.Apply("relu", ops.Relu{}, b1)
	out := g.Apply("bn2", ops.BatchNorm{Epsilon: eps, Momentum: 0.9}, r, par("s2", graph.BNScale, 1, 1, 1), par("b2", graph.BNBias, 0, 0, 0),
		par("m2", graph.BNMean, 7, 7, 7), par("v2", graph.BNVar, 9, 9, 9))
	g.SetOutputs(out)
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	var batches []*tensor.Tensor
	for b := range 5 {
		d := make([]float32, n*c*h*w)
		for i := range d {
			d[i] = float32(rng.NormFloat64()*float64(1+b) + float64(b))
		}
		batches = append(batches, tensor.MustFromData(d, n, c, h, w))
	}
	// Reference: batch statistics of bn1's input and of relu(bn1) (bn1
	// normalizing with the batch's biased variance), averaged over the
	// first four batches.
	const used = 4
	want := [4][]float64{make([]float64, c), make([]float64, c), make([]float64, c), make([]float64, c)}
	for _, xb := range batches[:used] {
		m, uv := bnStats(xb.Data, n, c, h*w)
		y := make([]float32, len(xb.Data))
		cnt := float64(n * h * w)
		for i := range n {
			for k := range c {
				bv := uv[k] * (cnt - 1) / cnt
				for j := range h * w {
					o := (i*c+k)*h*w + j
					v := float64(scale[k])*(float64(xb.Data[o])-m[k])/math.Sqrt(bv+eps) + float64(bias[k])
					y[o] = float32(max(v, 0))
				}
			}
		}
		m2, uv2 := bnStats(y, n, c, h*w)
		for k := range c {
			want[0][k] += m[k] / used
			want[1][k] += uv[k] / used
			want[2][k] += m2[k] / used
			want[3][k] += uv2[k] / used
		}
	}
	got, err := ReestimateBN(context.Background(), g, &sliceIter{xs: batches}, used)
	if err != nil || got != used {
		t.Fatalf("ReestimateBN = %d, %v; want %d batches", got, err, used)
	}
	for i, name := range []string{"m1", "v1", "m2", "v2"} {
		p := g.Param(name)
		for k := range c {
			if d := math.Abs(float64(p.Data.Data[k]) - want[i][k]); d > 1e-4*(1+math.Abs(want[i][k])) {
				t.Errorf("%s[%d] = %v, want the average batch statistic %v", name, k, p.Data.Data[k], want[i][k])
			}
		}
	}
	for _, nd := range g.Nodes {
		if bn, ok := nd.Op.(ops.BatchNorm); ok && bn.Momentum != 0.9 {
			t.Errorf("%s: momentum %v after re-estimation, want 0.9 restored", nd.Name, bn.Momentum)
		}
	}

	// A cancelled run leaves the statistics as they were.
	before := append([]float32(nil), g.Param("m1").Data.Data...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ReestimateBN(ctx, g, &sliceIter{xs: batches[used:]}, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ReestimateBN: err %v, want context.Canceled", err)
	}
	for k, v := range g.Param("m1").Data.Data {
		if v != before[k] {
			t.Fatalf("m1[%d] changed to %v by a cancelled re-estimation (was %v)", k, v, before[k])
		}
	}
	// No batch: nothing changes.
	if n, err := ReestimateBN(context.Background(), g, &sliceIter{}, 10); n != 0 || err != nil {
		t.Fatalf("empty iterator: %d, %v", n, err)
	}
	for k, v := range g.Param("m1").Data.Data {
		if v != before[k] {
			t.Fatalf("m1[%d] changed by an empty re-estimation", k)
		}
	}
}
