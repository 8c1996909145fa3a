package graph

import (
	"math/rand"

	"lowbit/tensor"
)

// Op is one operation of the IR. Implementations live in package ops (and
// quant for quantizers). An Op value holds only attributes: per-execution
// state (what backward needs, reusable buffers) lives in the Context.
type Op interface {
	// Type is the ONNX operator type this op corresponds to (e.g. "Conv"),
	// or a lowbit-specific name for ops exported as subgraphs.
	Type() string
	// InferShapes maps input shapes (nil for omitted optional inputs, -1 for
	// the batch dimension) to output shapes, or reports why they don't fit.
	InferShapes(in [][]int) ([][]int, error)
	// Forward computes the outputs. In training mode it may store what
	// Backward needs in c.Saved.
	Forward(c *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error)
	// Backward maps output gradients to input gradients. in and out are the
	// tensors of the matching Forward call. dout[i] may be nil when output i
	// received no gradient. It returns one gradient per input; entries may be
	// nil where c.NeedGrad[i] is false (or the input is not differentiable).
	Backward(c *Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error)
}

// Context is the per-node execution state kept by an Executor across calls.
type Context struct {
	Node     *Node
	Training bool
	// NeedGrad[i] tells Backward whether input i needs a gradient.
	NeedGrad []bool
	// Saved is op-private state written by Forward for Backward.
	Saved any
	// Rand is a deterministic per-node random source (Dropout).
	Rand *rand.Rand
	bufs map[int]*tensor.Tensor
	// alloc, when set (by an Executor), supplies new buffers from the
	// executor's pool.
	alloc func(n int) *tensor.Tensor
}

// NewContext returns a fresh context (used by tests and by the Executor).
func NewContext(training bool, seed int64) *Context {
	return &Context{Training: training, Rand: rand.New(rand.NewSource(seed))}
}

// Buffer returns a tensor of the given shape kept in the context under slot
// and reused on later calls (so steady-state steps do not allocate). Its
// contents are unspecified: callers overwrite or Zero it. A buffer returned
// as an output stays valid until the next call of the same node.
func (c *Context) Buffer(slot int, shape ...int) *tensor.Tensor {
	if c.bufs == nil {
		c.bufs = map[int]*tensor.Tensor{}
	}
	n := tensor.Numel(shape)
	b := c.bufs[slot]
	if b == nil || cap(b.Data) < n {
		if c.alloc != nil {
			b = c.alloc(n)
		} else {
			b = &tensor.Tensor{Data: make([]float32, n)}
		}
		c.bufs[slot] = b
	}
	b.Data = b.Data[:n]
	b.Shape = append(b.Shape[:0], shape...)
	return b
}

// Zeros is Buffer with the contents set to zero.
func (c *Context) Zeros(slot int, shape ...int) *tensor.Tensor {
	b := c.Buffer(slot, shape...)
	b.Zero()
	return b
}

// Need reports whether input i needs a gradient (true when NeedGrad is unset).
func (c *Context) Need(i int) bool {
	if c.NeedGrad == nil {
		return true
	}
	return i < len(c.NeedGrad) && c.NeedGrad[i]
}
