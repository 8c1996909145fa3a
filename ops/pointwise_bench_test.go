package ops

import (
	"math/rand"
	"testing"

	"lowbit/graph"
	"lowbit/internal/gradcheck"
	"lowbit/kernels"
	"lowbit/tensor"
)

// benchForwardBackward times one forward and backward of op on inputs of
// the given shapes (a MobileNet-sized activation: 32×64×28×28).
func benchForwardBackward(b *testing.B, op graph.Op, shapes ...[]int) {
	rng := rand.New(rand.NewSource(1))
	in := make([]*tensor.Tensor, len(shapes))
	for i, s := range shapes {
		in[i] = gradcheck.Rand(rng, s...)
	}
	c := graph.NewContext(true, 1)
	out, err := op.Forward(c, in)
	if err != nil {
		b.Fatal(err)
	}
	dy := []*tensor.Tensor{gradcheck.Rand(rng, out[0].Shape...)}
	if _, err := op.Backward(c, in, out, dy); err != nil { // allocate the gradient buffers
		b.Fatal(err)
	}
	b.SetBytes(int64(4 * out[0].Len()))
	b.ResetTimer()
	for b.Loop() {
		out, _ = op.Forward(c, in)
		if _, err := op.Backward(c, in, out, dy); err != nil {
			b.Fatal(err)
		}
	}
}

var benchAct = []int{32, 64, 28, 28}

func BenchmarkHardSwish(b *testing.B) { benchForwardBackward(b, HardSwish{}, benchAct) }
func BenchmarkRelu(b *testing.B)      { benchForwardBackward(b, Relu{}, benchAct) }
func BenchmarkAddSame(b *testing.B)   { benchForwardBackward(b, Add{}, benchAct, benchAct) }
func BenchmarkMulSE(b *testing.B)     { benchForwardBackward(b, Mul{}, benchAct, []int{32, 64, 1, 1}) }
func BenchmarkAddBias(b *testing.B)   { benchForwardBackward(b, Add{}, benchAct, []int{1, 64, 1, 1}) }

// BenchmarkBatchNormClipForward times the training forward of a fused
// BatchNorm + ReLU6 on MobileNetV2's widest training activation
// (128×96×32×32, larger than the caches).
func BenchmarkBatchNormClipForward(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	shape := []int{128, 96, 32, 32}
	ch := shape[1]
	scale, rvar := tensor.New(ch), tensor.New(ch)
	scale.Fill(1)
	rvar.Fill(1)
	in := []*tensor.Tensor{gradcheck.Rand(rng, shape...), scale, tensor.New(ch), tensor.New(ch), rvar}
	op := bnAct{bn: BatchNorm{Momentum: 0.9}, ops: []graph.Op{Clip{Min: 0, Max: 6}}, f: bnFusion{act: kernels.BNAct{Mask: true, Lo: 0, Hi: 6}}}
	c := graph.NewContext(true, 1)
	b.SetBytes(int64(4 * in[0].Len()))
	for b.Loop() {
		if _, err := op.Forward(c, in); err != nil {
			b.Fatal(err)
		}
	}
}
