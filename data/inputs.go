package data

import (
	"context"
	"iter"

	"lowbit/tensor"
)

// Inputs yields the input batches (labels dropped) of epoch 0 of l, then
// the iteration error if there is one.
func (l *Loader) Inputs(ctx context.Context) iter.Seq2[*tensor.Tensor, error] {
	return func(yield func(*tensor.Tensor, error) bool) {
		it := l.Epoch(ctx, 0)
		defer it.Close()
		for it.Next() {
			x, _ := it.Batch()
			if !yield(x, nil) {
				return
			}
		}
		if err := it.Err(); err != nil {
			yield(nil, err)
		}
	}
}

// EvalInputs returns a function that, each time it is called, yields the
// input batches of one pass over ds in dataset order through a fresh
// evaluation loader (calibration and analysis passes).
func EvalInputs(ds *Dataset, batch int) func(context.Context) iter.Seq2[*tensor.Tensor, error] {
	return func(ctx context.Context) iter.Seq2[*tensor.Tensor, error] {
		return func(yield func(*tensor.Tensor, error) bool) {
			l, err := NewEvalLoader(ds, batch)
			if err != nil {
				yield(nil, err)
				return
			}
			defer l.Close()
			for x, err := range l.Inputs(ctx) {
				if !yield(x, err) {
					return
				}
			}
		}
	}
}
