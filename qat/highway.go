package qat

import (
	"context"
	"fmt"
	"iter"
	"math"

	"lowbit/graph"
	"lowbit/quant"
	"lowbit/tensor"
)

// BlockError is the relative error of the residual stream after one
// residual addition.
type BlockError struct {
	Block string `json:"block"`
	// RelError is ‖a_q − a‖ / ‖a‖ over all analysed images.
	RelError float64 `json:"rel_error"`
}

// ResidualError runs the float graph ref and the quantized graph q in
// evaluation mode on the same batches and returns, for every residual
// addition of ref that q has under the same node name, the relative error
// ‖a_q − a‖/‖a‖ of its output (methods.md §5: it grows with depth without
// the precision highway and stays flat with it).
func ResidualError(ctx context.Context, ref, q *graph.Graph, batches iter.Seq2[*tensor.Tensor, error]) ([]BlockError, error) {
	adds, err := quant.ResidualAdds(ref)
	if err != nil {
		return nil, err
	}
	type pair struct {
		name string
		f, q *graph.Value
	}
	var pairs []pair
	for _, n := range adds {
		m := q.NodeByName(n.Name)
		if m == nil || m.Op.Type() != "Add" {
			continue
		}
		pairs = append(pairs, pair{n.Name, n.Outputs[0], m.Outputs[0]})
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("residual error: graph %s has no residual addition that %s also has", ref.Name, q.Name)
	}
	ef, err := graph.NewExecutor(ref)
	if err != nil {
		return nil, err
	}
	eq, err := graph.NewExecutor(q)
	if err != nil {
		return nil, err
	}
	// Executors may recycle intermediate values after a forward: copy the
	// float sums while the float graph runs and compare while the
	// quantized one does.
	fIndex, qIndex := map[*graph.Value]int{}, map[*graph.Value]int{}
	for i, p := range pairs {
		fIndex[p.f], qIndex[p.q] = i, i
	}
	ref32 := make([]*tensor.Tensor, len(pairs))
	ef.OnForward = func(n *graph.Node, _, out []*tensor.Tensor) {
		if i, ok := fIndex[n.Outputs[0]]; ok && len(out) > 0 {
			if ref32[i] == nil || ref32[i].Len() != out[0].Len() {
				ref32[i] = out[0].Clone()
			} else {
				copy(ref32[i].Data, out[0].Data)
			}
		}
	}
	num := make([]float64, len(pairs))
	den := make([]float64, len(pairs))
	var shapeErr error
	eq.OnForward = func(n *graph.Node, _, out []*tensor.Tensor) {
		i, ok := qIndex[n.Outputs[0]]
		if !ok || len(out) == 0 {
			return
		}
		a, b := ref32[i], out[0]
		if a == nil || a.Len() != b.Len() {
			shapeErr = fmt.Errorf("residual error: block %s has different shapes in the two graphs", pairs[i].name)
			return
		}
		for k, v := range a.Data {
			d := float64(b.Data[k]) - float64(v)
			num[i] += d * d
			den[i] += float64(v) * float64(v)
		}
	}
	seen := 0
	for x, err := range batches {
		if err != nil {
			return nil, fmt.Errorf("residual error data: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if _, err := ef.Forward(x); err != nil {
			return nil, fmt.Errorf("float graph: %w", err)
		}
		if _, err := eq.Forward(x); err != nil {
			return nil, fmt.Errorf("quantized graph: %w", err)
		}
		if shapeErr != nil {
			return nil, shapeErr
		}
		seen++
	}
	if seen == 0 {
		return nil, fmt.Errorf("residual error: no batch")
	}
	out := make([]BlockError, len(pairs))
	for i, p := range pairs {
		e := math.Sqrt(num[i])
		if den[i] > 0 {
			e /= math.Sqrt(den[i])
		}
		out[i] = BlockError{Block: p.name, RelError: e}
	}
	return out, nil
}

// MeanError is the mean relative error over the blocks.
func MeanError(errs []BlockError) float64 {
	if len(errs) == 0 {
		return math.NaN()
	}
	var s float64
	for _, e := range errs {
		s += e.RelError
	}
	return s / float64(len(errs))
}
