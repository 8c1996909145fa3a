package train

import (
	"context"
	"errors"
	"fmt"

	"lowbit/graph"
	"lowbit/ops"
)

// ReestimateBN replaces the running mean and variance of every BatchNorm of
// g by the average of the batch statistics over the first batches batches
// of it (a cumulative average, as PyTorch's momentum=None), computed with
// the network in training mode and its parameters as they are. Quantized
// networks need it: the running averages collected while the weights still
// moved (and, with momentum 0.9, mostly from the last ten batches) describe
// a slightly different network than the final one (Nagel et al. 2022,
// "Overcoming oscillations in quantization-aware training").
//
// Nothing trains: there is no backward pass and no parameter but the
// running statistics changes, except the side effects that a training
// forward has on other state (moving-average quantizer thresholds). It
// returns the number of batches used; with none (an empty iterator, or
// batches ≤ 0) the statistics are left as they were. On error or
// cancellation the old statistics are restored.
func ReestimateBN(ctx context.Context, g *graph.Graph, it Iterator, batches int) (int, error) {
	if batches <= 0 {
		return 0, nil
	}
	type bnStat struct {
		n          *graph.Node
		op         ops.BatchNorm
		mean, vari *graph.Param
		old        [2][]float32
		sum        [2][]float64
	}
	var bns []*bnStat
	for _, n := range g.Nodes {
		op, ok := n.Op.(ops.BatchNorm)
		if !ok {
			continue
		}
		if len(n.Inputs) < 5 || n.Inputs[3] == nil || n.Inputs[4] == nil || n.Inputs[3].Param == nil || n.Inputs[4].Param == nil {
			return 0, fmt.Errorf("re-estimating BatchNorm %s: running mean and variance are not parameters", n.Name)
		}
		s := &bnStat{n: n, op: op, mean: n.Inputs[3].Param, vari: n.Inputs[4].Param}
		for k, p := range []*graph.Param{s.mean, s.vari} {
			s.old[k] = append([]float32(nil), p.Data.Data...)
			s.sum[k] = make([]float64, len(p.Data.Data))
		}
		bns = append(bns, s)
	}
	if len(bns) == 0 {
		return 0, nil
	}
	// Momentum 0 makes every training forward write its batch statistics
	// into the running tensors, which are then summed here. The ops are
	// restored in any case, the old statistics unless the run completed.
	done := false
	defer func() {
		for _, s := range bns {
			s.n.Op = s.op
			if !done {
				copy(s.mean.Data.Data, s.old[0])
				copy(s.vari.Data.Data, s.old[1])
			}
		}
	}()
	for _, s := range bns {
		op := s.op
		op.Momentum = 0
		s.n.Op = op
	}
	e, err := graph.NewExecutor(g)
	if err != nil {
		return 0, fmt.Errorf("re-estimating BatchNorm statistics: %w", err)
	}
	e.Training = true
	used := 0
	for used < batches && it.Next() {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		x, _ := it.Batch()
		if _, err := e.Forward(x); err != nil {
			return 0, fmt.Errorf("re-estimating BatchNorm statistics, batch %d: %w", used+1, err)
		}
		for _, s := range bns {
			for k, p := range []*graph.Param{s.mean, s.vari} {
				for i, v := range p.Data.Data {
					s.sum[k][i] += float64(v)
				}
			}
		}
		used++
	}
	if err := errors.Join(it.Err(), ctx.Err()); err != nil {
		return 0, fmt.Errorf("re-estimating BatchNorm statistics: %w", err)
	}
	if used == 0 {
		return 0, nil
	}
	for _, s := range bns {
		for k, p := range []*graph.Param{s.mean, s.vari} {
			for i := range p.Data.Data {
				p.Data.Data[i] = float32(s.sum[k][i] / float64(used))
			}
		}
	}
	done = true
	return used, nil
}
