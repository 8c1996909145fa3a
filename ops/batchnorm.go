package ops

import (
	"errors"
	"fmt"
	"math"

	"lowbit/graph"
	"lowbit/kernels"
	"lowbit/tensor"
)

// Buffer slots of BatchNorm's context.
const (
	bnSlotY      = iota
	bnSlotMean   // per-channel mean used by the last Forward
	bnSlotInvStd // per-channel 1/sqrt(var+eps) used by the last Forward
	bnSlotDX
	bnSlotDScale
	bnSlotDB
)

// bnState is what BatchNorm's Forward leaves for Backward.
type bnState struct {
	training bool // batch statistics were used
	mean     *tensor.Tensor
	invStd   *tensor.Tensor
}

// Type returns "BatchNormalization".
func (BatchNorm) Type() string { return "BatchNormalization" }

// eps returns Epsilon, or the ONNX default 1e-5 when it is zero.
func (op BatchNorm) eps() float64 {
	if op.Epsilon == 0 {
		return 1e-5
	}
	return float64(op.Epsilon)
}

// checkShapes validates X [N,C,...] and the four [C] inputs.
func (BatchNorm) checkShapes(in [][]int) error {
	if len(in) != 5 {
		return fmt.Errorf("want inputs X, scale, B, mean, var, got %d", len(in))
	}
	x := in[0]
	if len(x) < 2 || x[1] <= 0 {
		return fmt.Errorf("input X must be [N,C,...] with known C, got shape %v", x)
	}
	names := [...]string{"", "scale", "B", "input_mean", "input_var"}
	for i := 1; i < 5; i++ {
		if len(in[i]) != 1 || in[i][0] != x[1] {
			return fmt.Errorf("%s must be [%d] for X %v, got shape %v", names[i], x[1], x, in[i])
		}
	}
	return nil
}

// InferShapes maps X [N,C,...] to the same shape.
func (op BatchNorm) InferShapes(in [][]int) ([][]int, error) {
	if err := op.checkShapes(in); err != nil {
		return nil, err
	}
	return [][]int{append([]int(nil), in[0]...)}, nil
}

func (op BatchNorm) bnInputs(in []*tensor.Tensor) (n, ch, spatial int, err error) {
	if len(in) != 5 {
		return 0, 0, 0, fmt.Errorf("want inputs X, scale, B, mean, var, got %d", len(in))
	}
	shapes := make([][]int, 5)
	for i, t := range in {
		if t == nil {
			return 0, 0, 0, fmt.Errorf("input %d is missing", i)
		}
		shapes[i] = t.Shape
	}
	if err := op.checkShapes(shapes); err != nil {
		return 0, 0, 0, err
	}
	x := in[0].Shape
	return x[0], x[1], tensor.Numel(x[2:]), nil
}

// Forward normalizes X per channel. In training it uses the batch mean and
// biased variance and updates in[3] and in[4] in place:
// running = running·Momentum + batch·(1−Momentum), with the unbiased batch
// variance for the running variance. Momentum is taken literally (0 replaces
// the running statistics by the batch statistics); ONNX's default is 0.9.
// In evaluation it uses the running statistics.
func (op BatchNorm) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n, ch, sp, err := op.bnInputs(in)
	if err != nil {
		return nil, err
	}
	x, scale, bias, rmean, rvar := in[0].Data, in[1].Data, in[2].Data, in[3].Data, in[4].Data
	y := c.Buffer(bnSlotY, in[0].Shape...)
	st, _ := c.Saved.(*bnState)
	if st == nil {
		st = &bnState{}
		c.Saved = st
	}
	st.training = c.Training
	st.mean = c.Buffer(bnSlotMean, ch)
	st.invStd = c.Buffer(bnSlotInvStd, ch)
	eps, mom := op.eps(), float64(op.Momentum)
	count := n * sp
	if c.Training && count == 0 {
		return nil, fmt.Errorf("batch statistics of empty input X %v", in[0].Shape)
	}
	kernels.Parallel(ch, 1, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			var mean, variance float64
			if c.Training {
				// One pass of shifted sums (float32 lanes per run, float64
				// across runs); the shift, a value of the channel, keeps
				// Σd²/n − (Σd/n)² from cancelling.
				shift := x[k*sp]
				var s, q float64
				for i := 0; i < n; i++ {
					rs, rq := kernels.Moments(x[(i*ch+k)*sp:(i*ch+k+1)*sp], shift)
					s += float64(rs)
					q += float64(rq)
				}
				d := s / float64(count)
				mean = float64(shift) + d
				variance = max(q/float64(count)-d*d, 0)
				unbiased := variance
				if count > 1 {
					unbiased = variance * float64(count) / float64(count-1)
				}
				rmean[k] = float32(float64(rmean[k])*mom + mean*(1-mom))
				rvar[k] = float32(float64(rvar[k])*mom + unbiased*(1-mom))
			} else {
				mean, variance = float64(rmean[k]), float64(rvar[k])
			}
			a, b, inv := bnAffine(scale[k], bias[k], mean, variance, eps)
			st.mean.Data[k], st.invStd.Data[k] = float32(mean), float32(inv)
			for i := 0; i < n; i++ {
				off := (i*ch + k) * sp
				kernels.Affine(y.Data[off:off+sp], x[off:off+sp], a, b)
			}
		}
	})
	return []*tensor.Tensor{y}, nil
}

// bnAffine returns the per-channel a, b of y = a·x + b and 1/√(var+eps)
// (the one formula of training, evaluation and fused evaluation).
func bnAffine(scale, bias float32, mean, variance, eps float64) (a, b float32, inv float64) {
	inv = 1 / math.Sqrt(variance+eps)
	a = float32(float64(scale) * inv)
	return a, bias - a*float32(mean), inv
}

// evalAffine writes evaluation-mode a and b of every channel (scale, B,
// running mean and variance are in[1:5] of a BatchNorm).
func (op BatchNorm) evalAffine(params []*tensor.Tensor, a, b []float32) {
	scale, bias, rmean, rvar := params[0].Data, params[1].Data, params[2].Data, params[3].Data
	for k := range a {
		a[k], b[k], _ = bnAffine(scale[k], bias[k], float64(rmean[k]), float64(rvar[k]), op.eps())
	}
}

// Backward returns the gradients with respect to X, scale and B (none for
// the running statistics). After a training Forward it differentiates
// through the batch statistics; after an evaluation Forward the op is
// affine.
func (op BatchNorm) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n, ch, sp, err := op.bnInputs(in)
	if err != nil {
		return nil, err
	}
	grads := make([]*tensor.Tensor, 5)
	if len(dout) == 0 || dout[0] == nil {
		return grads, nil
	}
	st, _ := c.Saved.(*bnState)
	if st == nil || st.mean.Len() != ch {
		return nil, errors.New("backward called without a matching forward")
	}
	dy := dout[0].Data
	if len(dy) != in[0].Len() {
		return nil, fmt.Errorf("output gradient has shape %v, want %v", dout[0].Shape, in[0].Shape)
	}
	x, scale := in[0].Data, in[1].Data
	var dx, dscale, db *tensor.Tensor
	if c.Need(0) {
		dx = c.Buffer(bnSlotDX, in[0].Shape...)
	}
	if c.Need(1) {
		dscale = c.Buffer(bnSlotDScale, ch)
	}
	if c.Need(2) {
		db = c.Buffer(bnSlotDB, ch)
	}
	count := float32(n * sp)
	kernels.Parallel(ch, 1, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			mean, inv := st.mean.Data[k], st.invStd.Data[k]
			var sdy, sdyx float64 // Σdy and Σdy·x̂
			for i := 0; i < n; i++ {
				off := (i*ch + k) * sp
				rs, rq := kernels.DotShifted(dy[off:off+sp], x[off:off+sp], mean)
				sdy += float64(rs)
				sdyx += float64(rq)
			}
			sdyx *= float64(inv)
			if dscale != nil {
				dscale.Data[k] = float32(sdyx)
			}
			if db != nil {
				db.Data[k] = float32(sdy)
			}
			if dx == nil {
				continue
			}
			a := scale[k] * inv
			var mdy, mdyx float32 // batch-statistics terms (zero in evaluation)
			if st.training {
				mdy, mdyx = float32(sdy)/count, float32(sdyx)/count
			}
			// dx = a·(dy − mdy − (x−mean)·inv·mdyx)
			for i := 0; i < n; i++ {
				off := (i*ch + k) * sp
				kernels.AffineCombine(dx.Data[off:off+sp], dy[off:off+sp], x[off:off+sp], a, -a*inv*mdyx, mean, -a*mdy)
			}
		}
	})
	grads[0], grads[1], grads[2] = dx, dscale, db
	return grads, nil
}

// BackwardReadsInput is true for X and the scale (the statistics come from
// the forward state).
func (BatchNorm) BackwardReadsInput(i int) bool { return i <= 1 }

// BackwardReadsOutput is false: Backward recomputes x̂ from X.
func (BatchNorm) BackwardReadsOutput(int) bool { return false }
