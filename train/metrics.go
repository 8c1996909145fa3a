package train

import (
	"context"
	"fmt"

	"lowbit/graph"
	"lowbit/ops"
	"lowbit/tensor"
)

// Metrics are evaluation results; Top1 and Top5 are fractions.
type Metrics struct {
	Top1   float64 `json:"top1"`
	Top5   float64 `json:"top5"`
	Loss   float64 `json:"loss"`
	Images int     `json:"images"`
}

// Iterator walks the batches of one epoch.
type Iterator interface {
	Next() bool
	Batch() (*tensor.Tensor, []int)
	Err() error
	Close() error
}

// Source yields one Iterator per epoch (data.Loader is one).
type Source interface {
	Epoch(ctx context.Context, epoch int) Iterator
}

// Evaluate runs the graph in evaluation mode over one pass of src and
// returns top-1, top-5 and the mean cross-entropy.
func Evaluate(ctx context.Context, g *graph.Graph, src Source) (Metrics, error) {
	e, err := graph.NewExecutor(g)
	if err != nil {
		return Metrics{}, err
	}
	return EvaluateWith(ctx, e, src)
}

// EvaluateWith is Evaluate on an existing executor (its mode is restored).
func EvaluateWith(ctx context.Context, e *graph.Executor, src Source) (Metrics, error) {
	was := e.Training
	e.Training = false
	defer func() { e.Training = was }()
	var m Metrics
	var c1, c5 int
	var lossSum float64
	it := src.Epoch(ctx, 0)
	defer it.Close()
	for it.Next() {
		x, y := it.Batch()
		out, err := e.Forward(x)
		if err != nil {
			return m, err
		}
		logits := out[0]
		loss, _, err := ops.CrossEntropy(logits, y, 0)
		if err != nil {
			return m, err
		}
		lossSum += loss * float64(len(y))
		c1 += ops.TopK(logits, y, 1)
		c5 += ops.TopK(logits, y, 5)
		m.Images += len(y)
	}
	if err := it.Err(); err != nil {
		return m, err
	}
	if m.Images == 0 {
		return m, fmt.Errorf("evaluate: no images")
	}
	n := float64(m.Images)
	m.Top1, m.Top5, m.Loss = float64(c1)/n, float64(c5)/n, lossSum/n
	return m, nil
}
