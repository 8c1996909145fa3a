package quant

import (
	"iter"

	"lowbit/tensor"
)

// seqBatches yields the given batches.
func seqBatches(bs []*tensor.Tensor) iter.Seq2[*tensor.Tensor, error] {
	return func(yield func(*tensor.Tensor, error) bool) {
		for _, b := range bs {
			if !yield(b, nil) {
				return
			}
		}
	}
}
