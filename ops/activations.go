package ops

import (
	"fmt"
	"math"

	"lowbit/graph"
	"lowbit/kernels"
	"lowbit/tensor"
)

// The activations share one mechanism: each op supplies a pointwise kernel
// (forward over a slice, backward over a slice) and unaryForward /
// unaryBackward do shape handling, buffers and parallelism. Backward may
// read the input x and the output y, so kernels pick whichever is cheaper
// (Sigmoid and Tanh use y). At kinks the gradient is that of the flat side
// (Relu at 0 passes nothing, Clip passes only strictly inside (Min, Max)),
// as in PyTorch.

// pointwise is the per-op part of a unary activation.
type pointwise interface {
	// fwd writes y[i] = f(x[i]); the slices have equal length.
	fwd(x, y []float32)
	// bwd writes dx[i] = f'(x[i])·dy[i], where y[i] = f(x[i]).
	bwd(x, y, dy, dx []float32)
}

// pointwiseGrain is the number of elements below which one goroutine does
// a whole activation.
const pointwiseGrain = 1 << 15

// Buffer slots of unary ops.
const (
	slotUnaryOut = iota
	slotUnaryGrad
)

// splitWork runs fn over [0, n), in parallel chunks when n is large.
func splitWork(n int, fn func(lo, hi int)) {
	if n < 2*pointwiseGrain {
		fn(0, n)
		return
	}
	kernels.Parallel(n, pointwiseGrain, fn)
}

func unaryInfer(in [][]int) ([][]int, error) {
	s, err := soleShape(in)
	if err != nil {
		return nil, err
	}
	return cloneShapes(s), nil
}

func unaryForward(k pointwise, c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := soleTensor(in)
	if err != nil {
		return nil, err
	}
	y := c.Buffer(slotUnaryOut, x.Shape...)
	splitWork(x.Len(), func(lo, hi int) { k.fwd(x.Data[lo:hi], y.Data[lo:hi]) })
	return []*tensor.Tensor{y}, nil
}

func unaryBackward(k pointwise, c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, dy, err := soleGrad(c, in, dout)
	if x == nil || err != nil {
		return []*tensor.Tensor{nil}, err
	}
	if len(out) == 0 || out[0] == nil || out[0].Len() != x.Len() {
		return nil, fmt.Errorf("backward: output of the forward pass missing or not of input shape %v", x.Shape)
	}
	if dy.Len() != x.Len() {
		return nil, fmt.Errorf("backward: output gradient shape %v, input shape %v", dy.Shape, x.Shape)
	}
	y := out[0]
	dx := c.Buffer(slotUnaryGrad, x.Shape...)
	splitWork(x.Len(), func(lo, hi int) {
		k.bwd(x.Data[lo:hi], y.Data[lo:hi], dy.Data[lo:hi], dx.Data[lo:hi])
	})
	return []*tensor.Tensor{dx}, nil
}

// Type returns "Relu".
func (Relu) Type() string { return "Relu" }

// InferShapes returns the input shape.
func (Relu) InferShapes(in [][]int) ([][]int, error) { return unaryInfer(in) }

// Forward computes max(x, 0).
func (o Relu) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return unaryForward(o, c, in)
}

// Backward passes dy where x > 0 (read from the output).
func (o Relu) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return unaryBackward(o, c, in, out, dout)
}

func (Relu) fwd(x, y []float32) {
	kernels.Clamp(y[:len(x)], x, 0, float32(math.Inf(1)))
}

// bwd reads only the output (y > 0 exactly where x > 0), so that the
// executor can drop the input after the forward pass. Infinite and NaN
// outputs pass no gradient.
func (Relu) bwd(_, y, dy, dx []float32) {
	kernels.MaskInside(dx[:len(y)], dy, y, 0, float32(math.Inf(1)))
}

// BackwardReadsInput is false: Relu's Backward reads only its output.
func (Relu) BackwardReadsInput(int) bool { return false }

// BackwardReadsOutput is true.
func (Relu) BackwardReadsOutput(int) bool { return true }

// Type returns "Clip".
func (Clip) Type() string { return "Clip" }

// InferShapes returns the input shape.
func (Clip) InferShapes(in [][]int) ([][]int, error) { return unaryInfer(in) }

// Forward computes min(max(x, Min), Max).
func (o Clip) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return unaryForward(o, c, in)
}

// Backward passes dy where Min < x < Max (read from the output).
func (o Clip) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return unaryBackward(o, c, in, out, dout)
}

func (o Clip) fwd(x, y []float32) {
	kernels.Clamp(y[:len(x)], x, o.Min, o.Max)
}

// bwd reads only the output: Min < y < Max exactly where Min < x < Max.
func (o Clip) bwd(_, y, dy, dx []float32) {
	kernels.MaskInside(dx[:len(y)], dy, y, o.Min, o.Max)
}

// BackwardReadsInput is false: Clip's Backward reads only its output.
func (Clip) BackwardReadsInput(int) bool { return false }

// BackwardReadsOutput is true.
func (Clip) BackwardReadsOutput(int) bool { return true }

// Type returns "LeakyRelu".
func (LeakyRelu) Type() string { return "LeakyRelu" }

// InferShapes returns the input shape.
func (LeakyRelu) InferShapes(in [][]int) ([][]int, error) { return unaryInfer(in) }

// Forward computes x for x ≥ 0 and Alpha·x otherwise.
func (o LeakyRelu) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return unaryForward(o, c, in)
}

// Backward passes dy where x > 0 and Alpha·dy elsewhere.
func (o LeakyRelu) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return unaryBackward(o, c, in, out, dout)
}

func (o LeakyRelu) fwd(x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		if v >= 0 {
			y[i] = v
		} else {
			y[i] = o.Alpha * v
		}
	}
}

func (o LeakyRelu) bwd(x, _, dy, dx []float32) {
	dy, dx = dy[:len(x)], dx[:len(x)]
	for i, v := range x {
		if v > 0 {
			dx[i] = dy[i]
		} else {
			dx[i] = o.Alpha * dy[i]
		}
	}
}

// Type returns "HardSwish".
func (HardSwish) Type() string { return "HardSwish" }

// InferShapes returns the input shape.
func (HardSwish) InferShapes(in [][]int) ([][]int, error) { return unaryInfer(in) }

// Forward computes x·relu6(x+3)/6.
func (o HardSwish) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return unaryForward(o, c, in)
}

// Backward uses the derivative 0 for x < −3, (2x+3)/6 on [−3, 3] and 1 for
// x > 3.
func (o HardSwish) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return unaryBackward(o, c, in, out, dout)
}

func (HardSwish) fwd(x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] = v * min(max(v+3, 0), 6) / 6
	}
}

func (HardSwish) bwd(x, _, dy, dx []float32) {
	dy, dx = dy[:len(x)], dx[:len(x)]
	for i, v := range x {
		switch {
		case v < -3:
			dx[i] = 0
		case v > 3:
			dx[i] = dy[i]
		default:
			dx[i] = dy[i] * (2*v + 3) / 6
		}
	}
}

// Type returns "HardSigmoid".
func (HardSigmoid) Type() string { return "HardSigmoid" }

// InferShapes returns the input shape.
func (HardSigmoid) InferShapes(in [][]int) ([][]int, error) { return unaryInfer(in) }

// Forward computes max(0, min(1, Alpha·x + Beta)).
func (o HardSigmoid) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return unaryForward(o, c, in)
}

// Backward passes Alpha·dy where 0 < Alpha·x + Beta < 1.
func (o HardSigmoid) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return unaryBackward(o, c, in, out, dout)
}

func (o HardSigmoid) fwd(x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] = min(max(o.Alpha*v+o.Beta, 0), 1)
	}
}

func (o HardSigmoid) bwd(x, _, dy, dx []float32) {
	dy, dx = dy[:len(x)], dx[:len(x)]
	for i, v := range x {
		if u := o.Alpha*v + o.Beta; u > 0 && u < 1 {
			dx[i] = o.Alpha * dy[i]
		} else {
			dx[i] = 0
		}
	}
}

// Type returns "Sigmoid".
func (Sigmoid) Type() string { return "Sigmoid" }

// InferShapes returns the input shape.
func (Sigmoid) InferShapes(in [][]int) ([][]int, error) { return unaryInfer(in) }

// Forward computes 1/(1+e^−x) without overflow for large |x|.
func (o Sigmoid) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return unaryForward(o, c, in)
}

// Backward computes dy·y·(1−y).
func (o Sigmoid) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return unaryBackward(o, c, in, out, dout)
}

func (Sigmoid) fwd(x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		if v >= 0 {
			y[i] = float32(1 / (1 + math.Exp(-float64(v))))
		} else {
			e := math.Exp(float64(v))
			y[i] = float32(e / (1 + e))
		}
	}
}

// BackwardReadsInput is false: Sigmoid's Backward reads only its output.
func (Sigmoid) BackwardReadsInput(int) bool { return false }

// BackwardReadsOutput is true.
func (Sigmoid) BackwardReadsOutput(int) bool { return true }

func (Sigmoid) bwd(_, y, dy, dx []float32) {
	dy, dx = dy[:len(y)], dx[:len(y)]
	for i, v := range y {
		dx[i] = dy[i] * v * (1 - v)
	}
}

// Type returns "Tanh".
func (Tanh) Type() string { return "Tanh" }

// InferShapes returns the input shape.
func (Tanh) InferShapes(in [][]int) ([][]int, error) { return unaryInfer(in) }

// Forward computes tanh(x).
func (o Tanh) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return unaryForward(o, c, in)
}

// Backward computes dy·(1−y²).
func (o Tanh) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return unaryBackward(o, c, in, out, dout)
}

func (Tanh) fwd(x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] = float32(math.Tanh(float64(v)))
	}
}

// BackwardReadsInput is false: Tanh's Backward reads only its output.
func (Tanh) BackwardReadsInput(int) bool { return false }

// BackwardReadsOutput is true.
func (Tanh) BackwardReadsOutput(int) bool { return true }

func (Tanh) bwd(_, y, dy, dx []float32) {
	dy, dx = dy[:len(y)], dx[:len(y)]
	for i, v := range y {
		dx[i] = dy[i] * (1 - v*v)
	}
}
