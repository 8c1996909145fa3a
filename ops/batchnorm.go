package ops

import (
	"errors"
	"fmt"
	"math"
	"runtime"

	"lowbit/graph"
	"lowbit/kernels"
	"lowbit/tensor"
)

// Buffer slots of BatchNorm's context.
const (
	bnSlotY = iota
	bnSlotDX
	bnSlotDScale
	bnSlotDB
	bnSlotDRes // masked output gradient = gradient of a fused residual
)

// bnState is what BatchNorm's Forward leaves for Backward.
type bnState struct {
	training bool // batch statistics were used
	// coef holds per channel the forward's y = A·x + B and Shift = the
	// mean; Backward sets the gradient coefficients.
	coef   []kernels.BNCoef
	invStd []float64 // per channel 1/√(var+eps)
	sums   []float64 // per channel pairs of sums (scratch)
}

// bnBlockBytes bounds the data of one block of channels (all images) that
// a worker runs both passes of a forward or backward over, so that the
// second pass finds it in the core's L2 cache.
const bnBlockBytes = 512 << 10

// bnBlocks returns the channels per block for tensors of n images of sp
// values per channel, of which streams are read twice: within the cache
// budget, and at least a few blocks per worker.
func bnBlocks(n, ch, sp, streams int) int {
	blk := bnBlockBytes / max(1, 4*n*sp*streams)
	return max(1, min(blk, ch/(4*runtime.GOMAXPROCS(0))))
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
	return op.forward(c, in, bnFusion{act: noAct})
}

// forward is Forward followed by what f fuses (see bnact.go): a residual
// (in[5]) and the clamp of f.act. Each worker takes blocks of channels and
// runs the statistics pass and then the pass writing
// min(max(a·x+b (+ res), Lo), Hi) over the block, image by image (the
// block's channels of one image are contiguous).
func (op BatchNorm) forward(c *graph.Context, in []*tensor.Tensor, f bnFusion) ([]*tensor.Tensor, error) {
	in, res, err := f.split(in)
	if err != nil {
		return nil, err
	}
	n, ch, sp, err := op.bnInputs(in)
	if err != nil {
		return nil, err
	}
	x, scale, bias, rmean, rvar := in[0].Data, in[1].Data, in[2].Data, in[3].Data, in[4].Data
	act := f.act
	y := c.Buffer(bnSlotY, in[0].Shape...)
	st, _ := c.Saved.(*bnState)
	if st == nil {
		st = &bnState{}
		c.Saved = st
	}
	st.training = c.Training
	st.coef = growTo(st.coef, ch)
	st.invStd = growTo(st.invStd, ch)
	st.sums = growTo(st.sums, 2*ch)
	eps, mom := op.eps(), float64(op.Momentum)
	count := n * sp
	if c.Training && count == 0 {
		return nil, fmt.Errorf("batch statistics of empty input X %v", in[0].Shape)
	}
	kernels.ParallelChunks(ch, bnBlocks(n, ch, sp, 1), func(lo, hi int) {
		coef, sums := st.coef[lo:hi], st.sums[2*lo:2*hi]
		if c.Training {
			// Shifted sums (float32 lanes per run, float64 across runs);
			// the shift, a value of the channel, keeps Σd²/n − (Σd/n)²
			// from cancelling.
			clear(sums)
			for k := lo; k < hi; k++ {
				coef[k-lo].Shift = x[k*sp]
			}
			for i := 0; i < n; i++ {
				kernels.BNMomentsEach(x[(i*ch+lo)*sp:], sp, hi-lo, sp, coef, sums, nextImage(i, n, ch*sp))
			}
		}
		for k := lo; k < hi; k++ {
			var mean, variance float64
			if c.Training {
				d := sums[2*(k-lo)] / float64(count)
				mean = float64(coef[k-lo].Shift) + d
				variance = max(sums[2*(k-lo)+1]/float64(count)-d*d, 0)
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
			coef[k-lo] = kernels.BNCoef{A: a, B: b, Shift: float32(mean)}
			st.invStd[k] = inv
		}
		for i := 0; i < n; i++ {
			off := (i*ch + lo) * sp
			var r []float32
			if res != nil {
				r = res[off:]
			}
			kernels.BNApplyEach(y.Data[off:], x[off:], r, sp, hi-lo, sp, coef, act, nextImage(i, n, ch*sp))
		}
	})
	return []*tensor.Tensor{y}, nil
}

// nextImage is the distance to image i+1's data (0 after the last image),
// for the kernels' prefetch.
func nextImage(i, n, size int) int {
	if i+1 < n {
		return size
	}
	return 0
}

// growTo returns s resized to n elements, reallocated when too small.
func growTo[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
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
	return op.backward(c, in, out, dout, bnFusion{act: noAct})
}

// backward is Backward of forward with f: the output gradient passes only
// where the clamp of f.act is not saturated, then (the residual's
// gradient) through BatchNorm. The mask is recomputed from X and the
// forward's affine map, or with a residual read from the output. Like
// forward, each worker runs both passes (the masked sums, then the input
// gradient) over a block of channels.
func (op BatchNorm) backward(c *graph.Context, in, out, dout []*tensor.Tensor, f bnFusion) ([]*tensor.Tensor, error) {
	grads := make([]*tensor.Tensor, len(in))
	in, _, err := f.split(in)
	if err != nil {
		return nil, err
	}
	n, ch, sp, err := op.bnInputs(in)
	if err != nil {
		return nil, err
	}
	if len(dout) == 0 || dout[0] == nil {
		return grads, nil
	}
	st, _ := c.Saved.(*bnState)
	if st == nil || len(st.coef) != ch {
		return nil, errors.New("backward called without a matching forward")
	}
	dy := dout[0].Data
	if len(dy) != in[0].Len() {
		return nil, fmt.Errorf("output gradient has shape %v, want %v", dout[0].Shape, in[0].Shape)
	}
	x := in[0].Data
	act := f.act
	var dz, y []float32 // with a residual: the masked gradient, the output
	if f.res {
		dz = c.Buffer(bnSlotDRes, in[0].Shape...).Data
		y = x // not read without a mask
		if act.Mask {
			if len(out) == 0 || out[0] == nil || out[0].Len() != len(x) {
				return nil, errors.New("backward: the output of the forward pass is missing")
			}
			y = out[0].Data
		}
	}
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
	kernels.ParallelChunks(ch, bnBlocks(n, ch, sp, 2), func(lo, hi int) {
		coef, sums := st.coef[lo:hi], st.sums[2*lo:2*hi]
		clear(sums)
		// Σdz and Σdz·(x−mean), dz the masked output gradient.
		for i := 0; i < n; i++ {
			off := (i*ch + lo) * sp
			if f.res {
				kernels.BNMaskSumsEach(dz[off:], dy[off:], y[off:], x[off:], sp, hi-lo, sp, coef, act, sums, nextImage(i, n, ch*sp))
			} else {
				kernels.BNSumsEach(dy[off:], x[off:], sp, hi-lo, sp, coef, act, sums, nextImage(i, n, ch*sp))
			}
		}
		for k := lo; k < hi; k++ {
			cf, inv := &coef[k-lo], st.invStd[k]
			sdy, sdyx := sums[2*(k-lo)], sums[2*(k-lo)+1]*inv
			if dscale != nil {
				dscale.Data[k] = float32(sdyx)
			}
			if db != nil {
				db.Data[k] = float32(sdy)
			}
			var mdy, mdyx float32 // batch-statistics terms (zero in evaluation)
			if st.training {
				mdy, mdyx = float32(sdy)/count, float32(sdyx)/count
			}
			// dx = a·(dz − mdy − (x−mean)·inv·mdyx)
			cf.Alpha, cf.Beta, cf.Delta = cf.A, -cf.A*float32(inv)*mdyx, -cf.A*mdy
		}
		if dx == nil {
			return
		}
		g, gact := dy, act
		if f.res {
			g, gact = dz, noAct // already masked
		}
		for i := 0; i < n; i++ {
			off := (i*ch + lo) * sp
			kernels.BNGradEach(dx.Data[off:], g[off:], x[off:], sp, hi-lo, sp, coef, gact, nextImage(i, n, ch*sp))
		}
	})
	grads[0], grads[1], grads[2] = dx, dscale, db
	if f.res && c.Need(5) {
		grads[5] = c.Buffer(bnSlotDRes, in[0].Shape...)
	}
	return grads, nil
}

// BackwardReadsInput is true for X only (the statistics and the affine map
// come from the forward state).
func (BatchNorm) BackwardReadsInput(i int) bool { return i == 0 }

// BackwardReadsOutput is false: Backward recomputes x̂ from X.
func (BatchNorm) BackwardReadsOutput(int) bool { return false }
