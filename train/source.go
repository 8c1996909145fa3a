package train

import (
	"context"

	"lowbit/data"
)

// Loader adapts a data.Loader to Source: epoch e is the loader's shuffle
// (and augmentation) of epoch e.
type Loader struct{ L *data.Loader }

// Epoch returns the batches of epoch e.
func (s Loader) Epoch(ctx context.Context, e int) Iterator { return s.L.Epoch(ctx, e) }
