package ops

import (
	"fmt"

	"lowbit/graph"
	"lowbit/kernels"
	"lowbit/tensor"
)

// Buffer slots of Gemm's context.
const (
	gemmSlotY = iota
	gemmSlotDA
	gemmSlotDB
	gemmSlotDC
)

// gemmDims is the resolved geometry of one Gemm application: op(A) is M×K,
// op(B) is K×N, and C (if any) broadcasts to M×N with row stride cRow and
// column stride cCol (0 along broadcast dimensions).
type gemmDims struct {
	M, K, N    int
	hasC       bool
	cRow, cCol int
}

// Type returns "Gemm".
func (Gemm) Type() string { return "Gemm" }

// dims validates A, B and the optional C (nil when omitted). M may be -1
// (batch) during shape inference.
func (op Gemm) dims(a, b, c []int) (gemmDims, error) {
	var d gemmDims
	if len(a) != 2 || len(b) != 2 {
		return d, fmt.Errorf("A and B must be 2-D, got shapes %v and %v", a, b)
	}
	var kb int
	if op.TransA {
		d.K, d.M = a[0], a[1]
	} else {
		d.M, d.K = a[0], a[1]
	}
	if op.TransB {
		d.N, kb = b[0], b[1]
	} else {
		kb, d.N = b[0], b[1]
	}
	if d.K <= 0 || d.N <= 0 || kb != d.K {
		return d, fmt.Errorf("inner dimensions differ: A %v (transA %v) and B %v (transB %v)", a, op.TransA, b, op.TransB)
	}
	if c == nil {
		return d, nil
	}
	d.hasC = true
	// Unidirectional broadcast of C (rank ≤ 2) to [M, N].
	if len(c) > 2 {
		return d, fmt.Errorf("C must have rank ≤ 2, got shape %v", c)
	}
	cr, cc := 1, 1
	switch len(c) {
	case 1:
		cc = c[0]
	case 2:
		cr, cc = c[0], c[1]
	}
	if cc != 1 && cc != d.N {
		return d, fmt.Errorf("C %v does not broadcast to [%d %d]", c, d.M, d.N)
	}
	if cr != 1 && cr != d.M && cr != -1 && d.M != -1 {
		return d, fmt.Errorf("C %v does not broadcast to [%d %d]", c, d.M, d.N)
	}
	if cc != 1 {
		d.cCol = 1
	}
	if cr != 1 {
		d.cRow = cc
	}
	return d, nil
}

const gemmInputNames = "A, B and optional C"

// InferShapes maps A, B and optional C to Y [M, N].
func (op Gemm) InferShapes(in [][]int) ([][]int, error) {
	as, bs, cs, err := twoPlusOptional(in, gemmInputNames)
	if err != nil {
		return nil, err
	}
	d, err := op.dims(as, bs, cs)
	if err != nil {
		return nil, err
	}
	return [][]int{{d.M, d.N}}, nil
}

// gemmInputs checks the runtime inputs and returns the geometry and the
// optional C.
func (op Gemm) gemmInputs(in []*tensor.Tensor) (gemmDims, *tensor.Tensor, error) {
	as, bs, cs, ct, err := twoPlusOptionalTensors(in, gemmInputNames)
	if err != nil {
		return gemmDims{}, nil, err
	}
	d, err := op.dims(as, bs, cs)
	if err == nil && d.M < 0 {
		err = fmt.Errorf("A has unknown dimensions %v", in[0].Shape)
	}
	return d, ct, err
}

// Forward computes Y = Alpha·op(A)·op(B) + Beta·C. Alpha and Beta are taken
// literally: the zero Gemm{} yields zeros, so a linear layer must set
// Alpha: 1, Beta: 1.
func (op Gemm) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	d, ct, err := op.gemmInputs(in)
	if err != nil {
		return nil, err
	}
	y := c.Buffer(gemmSlotY, d.M, d.N)
	var beta float32
	if ct != nil && op.Beta != 0 {
		beta = 1
		for i := 0; i < d.M; i++ {
			row := y.Data[i*d.N : (i+1)*d.N]
			for j := range row {
				row[j] = op.Beta * ct.Data[i*d.cRow+j*d.cCol]
			}
		}
	}
	a, b := in[0], in[1]
	kernels.Sgemm(op.TransA, op.TransB, d.M, d.N, d.K, op.Alpha, a.Data, a.Shape[1], b.Data, b.Shape[1], beta, y.Data, d.N)
	return []*tensor.Tensor{y}, nil
}

// Backward computes the gradients with respect to A, B and C.
func (op Gemm) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	d, ct, err := op.gemmInputs(in)
	if err != nil {
		return nil, err
	}
	grads := make([]*tensor.Tensor, len(in))
	if len(dout) == 0 || dout[0] == nil {
		return grads, nil
	}
	dy := dout[0].Data
	if len(dy) != d.M*d.N {
		return nil, fmt.Errorf("output gradient has shape %v, want [%d %d]", dout[0].Shape, d.M, d.N)
	}
	a, b := in[0], in[1]
	lda, ldb := a.Shape[1], b.Shape[1]
	M, K, N, alpha := d.M, d.K, d.N, op.Alpha
	if c.Need(0) {
		// d op(A) = alpha·dY·op(B)ᵀ (M×K); dA is its transpose when TransA.
		da := c.Buffer(gemmSlotDA, a.Shape...)
		if !op.TransA {
			kernels.Sgemm(false, !op.TransB, M, K, N, alpha, dy, N, b.Data, ldb, 0, da.Data, K)
		} else {
			kernels.Sgemm(op.TransB, true, K, M, N, alpha, b.Data, ldb, dy, N, 0, da.Data, M)
		}
		grads[0] = da
	}
	if c.Need(1) {
		// d op(B) = alpha·op(A)ᵀ·dY (K×N); dB is its transpose when TransB.
		db := c.Buffer(gemmSlotDB, b.Shape...)
		if !op.TransB {
			kernels.Sgemm(!op.TransA, false, K, N, M, alpha, a.Data, lda, dy, N, 0, db.Data, N)
		} else {
			kernels.Sgemm(true, op.TransA, N, K, M, alpha, dy, N, a.Data, lda, 0, db.Data, K)
		}
		grads[1] = db
	}
	if ct != nil && c.Need(2) {
		dc := c.Zeros(gemmSlotDC, ct.Shape...)
		for i := 0; i < M; i++ {
			row := dy[i*N : (i+1)*N]
			for j, v := range row {
				dc.Data[i*d.cRow+j*d.cCol] += op.Beta * v
			}
		}
		grads[2] = dc
	}
	return grads, nil
}
