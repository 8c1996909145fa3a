package ops

import (
	"fmt"

	"lowbit/graph"
	"lowbit/kernels"
	"lowbit/tensor"
)

// Buffer slots of MatMul's context.
const (
	matmulSlotY = iota
	matmulSlotDA
	matmulSlotDB
)

// matmulDims is the resolved geometry: Batch independent products of
// M×K by K×N. With a 2-D B (shared), the batch folds into M.
type matmulDims struct {
	Batch, M, K, N int
	sharedB        bool
	out            []int
}

// Type returns "MatMul".
func (MatMul) Type() string { return "MatMul" }

func (MatMul) dims(a, b []int) (matmulDims, error) {
	var d matmulDims
	if len(a) < 2 || len(b) < 2 {
		return d, fmt.Errorf("A and B must have rank ≥ 2, got shapes %v and %v", a, b)
	}
	ra, rb := len(a), len(b)
	d.M, d.K, d.N = a[ra-2], a[ra-1], b[rb-1]
	if b[rb-2] != d.K || d.K <= 0 || d.N <= 0 {
		return d, fmt.Errorf("inner dimensions differ: A %v, B %v", a, b)
	}
	d.out = append(append([]int(nil), a[:ra-1]...), d.N)
	d.Batch = 1
	switch {
	case rb == 2:
		d.sharedB = true
		rows := 1
		for _, v := range a[:ra-1] {
			if v < 0 {
				rows = -1
				break
			}
			rows *= v
		}
		d.M = rows
	case ra == rb:
		for i := 0; i < ra-2; i++ {
			switch {
			case a[i] == b[i]:
			case a[i] == -1 && b[i] >= 0, b[i] == -1 && a[i] >= 0:
				d.out[i] = max(a[i], b[i])
			default:
				return d, fmt.Errorf("leading dimensions differ: A %v, B %v", a, b)
			}
			if d.Batch >= 0 && d.out[i] >= 0 {
				d.Batch *= d.out[i]
			} else {
				d.Batch = -1
			}
		}
	default:
		return d, fmt.Errorf("B must be 2-D or have A's rank: A %v, B %v", a, b)
	}
	if d.M < 0 || d.Batch < 0 {
		d.M, d.Batch = -1, -1 // unknown batch (shape inference only)
	}
	return d, nil
}

// InferShapes maps A [..., M, K] and B [K, N] (or [..., K, N] with A's
// leading dimensions) to [..., M, N].
func (op MatMul) InferShapes(in [][]int) ([][]int, error) {
	if len(in) != 2 || in[0] == nil || in[1] == nil {
		return nil, fmt.Errorf("want inputs A and B, got %d", len(in))
	}
	d, err := op.dims(in[0], in[1])
	if err != nil {
		return nil, err
	}
	return [][]int{d.out}, nil
}

func (op MatMul) matmulInputs(in []*tensor.Tensor) (matmulDims, error) {
	if len(in) != 2 || in[0] == nil || in[1] == nil {
		return matmulDims{}, fmt.Errorf("want inputs A and B, got %d", len(in))
	}
	d, err := op.dims(in[0].Shape, in[1].Shape)
	if err == nil && (d.M < 0 || d.Batch < 0) {
		err = fmt.Errorf("unknown dimensions in A %v or B %v", in[0].Shape, in[1].Shape)
	}
	return d, err
}

// Forward computes the (batched) product.
func (op MatMul) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	d, err := op.matmulInputs(in)
	if err != nil {
		return nil, err
	}
	a, b := in[0].Data, in[1].Data
	y := c.Buffer(matmulSlotY, d.out...)
	sa, sb, sy := d.M*d.K, d.K*d.N, d.M*d.N
	for i := 0; i < d.Batch; i++ {
		kernels.Sgemm(false, false, d.M, d.N, d.K, 1, a[i*sa:], d.K, b[i*sb:], d.N, 0, y.Data[i*sy:], d.N)
	}
	return []*tensor.Tensor{y}, nil
}

// Backward computes dA = dY·Bᵀ and dB = Aᵀ·dY (summed over the batch when B
// is shared).
func (op MatMul) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	d, err := op.matmulInputs(in)
	if err != nil {
		return nil, err
	}
	grads := make([]*tensor.Tensor, 2)
	if len(dout) == 0 || dout[0] == nil {
		return grads, nil
	}
	dy := dout[0].Data
	if len(dy) != d.Batch*d.M*d.N {
		return nil, fmt.Errorf("output gradient has shape %v, want %v", dout[0].Shape, d.out)
	}
	a, b := in[0].Data, in[1].Data
	sa, sb, sy := d.M*d.K, d.K*d.N, d.M*d.N
	if c.Need(0) {
		da := c.Buffer(matmulSlotDA, in[0].Shape...)
		for i := 0; i < d.Batch; i++ {
			kernels.Sgemm(false, true, d.M, d.K, d.N, 1, dy[i*sy:], d.N, b[i*sb:], d.N, 0, da.Data[i*sa:], d.K)
		}
		grads[0] = da
	}
	if c.Need(1) {
		db := c.Buffer(matmulSlotDB, in[1].Shape...)
		for i := 0; i < d.Batch; i++ {
			kernels.Sgemm(true, false, d.K, d.N, d.M, 1, a[i*sa:], d.K, dy[i*sy:], d.N, 0, db.Data[i*sb:], d.N)
		}
		grads[1] = db
	}
	return grads, nil
}
