package graph

import (
	"fmt"
	"runtime"
	"sort"
	"unsafe"

	"lowbit/kernels"
	"lowbit/tensor"
)

// Executor runs a graph. It is not safe for concurrent use; create one per
// goroutine. Output tensors may be reused buffers: they stay valid until the
// next Forward.
//
// Memory: the executor takes over the buffers that ops return from their
// context (Context.Buffer) as outputs or input gradients and recycles them
// through one size-keyed pool shared by all nodes, from which the contexts
// also draw every new buffer. In evaluation (Training
// false) a value's buffer returns to the pool as soon as its last consumer
// has run, so a forward pass holds only the live activations (a Backward
// after such a pass recomputes the forward first). In training every
// activation is kept for Backward and released once the backward pass is
// past its producer; gradients of intermediate values are adopted from the
// ops without copying and released the same way; ops that implement
// GradReader let it release what their Backward does not read right after
// the forward pass. Set KeepValues to keep every value and gradient of the
// last pass instead.
//
// Inference: an evaluation Forward without OnForward hook runs chains of
// ops that implement Fuser (a convolution with its BatchNorm and ReLU) as
// one node each. Training: a training Forward without OnForward hook and
// without KeepValues runs chains of ops that implement TrainFuser (a
// BatchNorm with its residual Add and ReLU) as one node each, forward and
// backward; the values inside a chain are then never stored.
type Executor struct {
	G        *Graph
	Training bool
	// KeepValues disables recycling: Get and Grad then return every value
	// and gradient of the last Forward and Backward.
	KeepValues bool
	// OnForward, when set, is called after each node's forward with its
	// inputs and outputs (used by calibration and statistics collection).
	// Unless KeepValues is set, the tensors are valid during the call only.
	OnForward func(n *Node, in, out []*tensor.Tensor)
	order     []*Node
	ctx       map[*Node]*Context
	vals      map[*Value]*tensor.Tensor
	grads     map[*Value]*tensor.Tensor
	gradSet   map[*Value]bool

	uses  map[*Value]int // consumers (node inputs) of each value
	isOut map[*Value]bool
	pool  bufPool
	store map[*Value]*storage // executor-owned buffers behind values
	left  map[*Value]int      // consumers yet to run in this forward
	// bwdKeep marks values whose data a Backward may read (or that are
	// graph outputs); the others are released after their last consumer
	// in training too, leaving a shape-only ghost in vals.
	bwdKeep map[*Value]bool
	fused   *fusedPlan // inference order with fused chains, built on first use
	// trainFused is the training order with fused chains (built on first
	// use); ran is the plan the last Forward ran (nil: order), which
	// Backward follows; keep is the bwdKeep of that plan.
	trainFused *fusedPlan
	ran        *fusedPlan
	keep       map[*Value]bool
	ghosts     map[*Value]bool
	// recycled is set when an evaluation Forward released intermediate
	// values; lastIn are its inputs, for recomputing before a Backward.
	// consumed is set when a Backward released the values of the last
	// Forward; lastTraining tells whether that Forward was in training.
	recycled     bool
	consumed     bool
	lastTraining bool
	lastIn       []*tensor.Tensor
	inShapes     [][]int
}

// GradReader is implemented by ops whose Backward does not read the data
// of some forward inputs or outputs (it may still read their shapes and
// lengths). In training the executor then returns such a buffer to the pool
// as soon as the forward pass is done with it, which keeps e.g. the output
// of a BatchNorm followed by a ReLU out of the activation memory. Ops that
// do not implement it are assumed to read everything.
type GradReader interface {
	// BackwardReadsInput reports whether Backward reads input i's data.
	BackwardReadsInput(i int) bool
	// BackwardReadsOutput reports whether Backward reads output j's data.
	BackwardReadsOutput(j int) bool
}

// Fuser is implemented by ops that can run at inference together with the
// op consuming their output (a convolution with the BatchNorm and ReLU
// after it). Fuse returns an op computing next applied to this op's only
// output; its inputs are this op's inputs followed by next's inputs after
// the first. ok is false when the pair cannot be fused. The fused op runs
// only in evaluation, where it must match the two ops to within 1e-4
// relative (the ops in package ops match them exactly, except Winograd
// F(4×4,3×3) convolutions, about 2e-5).
type Fuser interface {
	Fuse(next Op) (fused Op, ok bool)
}

// ChainFuser is implemented by inference Fusers that can keep values
// computed inside the fused op for a later op of the chain (the input of a
// residual block, read again by the block's Add). FuseInternal is Fuse
// where some of next's inputs after the first are such values: refs[i],
// for next's input i+1, is −1 for an outside value (an input of the fused
// op, as with Fuse) or s ≥ 0 for the fused op's output after its first s
// fusions (0: the output of the chain's first op), which is then not an
// input of the fused op. The executor fuses past a value read by several
// ops only when every one of them ends up in the same fused op.
type ChainFuser interface {
	Fuser
	FuseInternal(next Op, refs []int) (fused Op, ok bool)
}

// TrainFuser is implemented by ops that can run in training together with
// the op consuming their output (a BatchNorm with the ReLU after it), so
// that the value between them is never stored. FuseTraining returns an op
// computing next applied to this op's only output, with inputs as for
// Fuser (next's other inputs must have that output's shape); ok is false
// when the pair cannot be fused. The fused op may itself be a TrainFuser
// (chains). It must have the forward values, side effects (running
// statistics) and input gradients of the pair, in training and in
// evaluation, to within 1e-5 relative.
type TrainFuser interface {
	FuseTraining(next Op) (fused Op, ok bool)
}

// fusedPlan is an execution order with fusable chains merged into one
// node each.
type fusedPlan struct {
	order []*Node
	ctx   map[*Node]*Context
	uses  map[*Value]int
	// bwdKeep (training plans) is the Executor.bwdKeep of this order.
	bwdKeep map[*Value]bool
}

// inferenceFuse fuses through Fuser.
func inferenceFuse(op, next Op) (Op, bool) {
	if f, ok := op.(Fuser); ok {
		return f.Fuse(next)
	}
	return nil, false
}

// trainingFuse fuses through TrainFuser.
func trainingFuse(op, next Op) (Op, bool) {
	if f, ok := op.(TrainFuser); ok {
		return f.FuseTraining(next)
	}
	return nil, false
}

// buildFused merges every chain n → m where fuse accepts n's op and m's,
// n's only output feeds only m (as m's first input, and is not a graph
// output) and m's other inputs are parameters, graph inputs or values of
// the same shape computed before n (so the merged node can run at n's
// place); with same (training), all of m's other inputs must have the
// shape of n's output. Without same (inference), a value inside the chain
// may also feed later ops as other than their first input when the chain
// absorbs all of them through ChainFuser (see inferenceChain); a chain that
// cannot do so ends at its last value read only inside it.
func (e *Executor) buildFused(fuse func(op, next Op) (Op, bool), same bool) *fusedPlan {
	consumers := map[*Value][]*Node{}
	for _, n := range e.order {
		for _, v := range n.Inputs {
			if v != nil {
				consumers[v] = append(consumers[v], n)
			}
		}
	}
	pos := map[*Node]int{}
	for i, n := range e.order {
		pos[n] = i
	}
	fp := &fusedPlan{ctx: map[*Node]*Context{}, uses: map[*Value]int{}}
	absorbed := map[*Node]bool{}
	// keys place every node of the plan: 2·(position of its last input's
	// producer, or its own) + 1 for merged nodes, which run right after
	// the last node they read.
	var keys []int
	for _, n := range e.order {
		if absorbed[n] {
			continue
		}
		cur := n
		if !same {
			cur = e.inferenceChain(n, fuse, consumers, pos, absorbed)
		}
		for same {
			if len(cur.Outputs) != 1 {
				break
			}
			v := cur.Outputs[0]
			cs := consumers[v]
			if v == nil || e.isOut[v] || len(cs) != 1 || len(cs[0].Inputs) == 0 || cs[0].Inputs[0] != v {
				break
			}
			m := cs[0]
			movable := true
			for _, u := range m.Inputs[1:] {
				// Parameters and graph inputs, or values with v's shape (a
				// residual added element-wise) computed before n or, at
				// inference, anywhere before m: the merged node then runs
				// after the last of them (nothing between n and m reads the
				// chain's intermediates, which have one consumer each).
				before := pos[u.Producer] < pos[n] || !same && pos[u.Producer] < pos[m]
				movable = movable && (u == nil || u.Producer == nil ||
					(before && u != v && tensor.SameShape(u.Shape, v.Shape)))
				movable = movable && (!same || u != nil && tensor.SameShape(u.Shape, v.Shape))
			}
			if !movable {
				break
			}
			op, ok := fuse(cur.Op, m.Op)
			if !ok {
				break
			}
			absorbed[m] = true
			cur = &Node{Name: cur.Name + "+" + m.Name, Op: op,
				Inputs:  append(append([]*Value(nil), cur.Inputs...), m.Inputs[1:]...),
				Outputs: m.Outputs}
		}
		c := e.ctx[n]
		if cur != n {
			c = NewContext(false, 1)
			c.Node = cur
			c.alloc = e.alloc
		}
		at := pos[n]
		for _, v := range cur.Inputs {
			if v != nil && v.Producer != nil {
				at = max(at, pos[v.Producer])
			}
		}
		fp.order = append(fp.order, cur)
		keys = append(keys, 2*at+b2i(cur != n))
		fp.ctx[cur] = c
		for _, v := range cur.Inputs {
			if v != nil {
				fp.uses[v]++
			}
		}
	}
	idx := make([]int, len(fp.order))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
	order := make([]*Node, len(idx))
	for i, j := range idx {
		order[i] = fp.order[j]
	}
	fp.order = order
	return fp
}

// inferenceChain grows the inference chain that starts at n (see
// buildFused), marks the nodes it absorbs in absorbed and returns the
// merged node (n itself when nothing fused).
func (e *Executor) inferenceChain(n *Node, fuse func(op, next Op) (Op, bool), consumers map[*Value][]*Node, pos map[*Node]int, absorbed map[*Node]bool) *Node {
	cur, best := n, n
	var taken []*Node // absorbed nodes, in order
	kept := 0         // len(taken) at best
	// index[v] is s for the chain's output v after s fusions; pending
	// counts the reads of them by ops not yet absorbed (other than as
	// first input of the next op), waiting those of each op.
	index := map[*Value]int{}
	pending := 0
	waiting := map[*Node]int{}
	for {
		if len(cur.Outputs) != 1 {
			break
		}
		v := cur.Outputs[0]
		if v == nil || e.isOut[v] {
			break
		}
		index[v] = len(index)
		var m *Node
		ok := true
		for _, c := range consumers[v] {
			if len(c.Inputs) > 0 && c.Inputs[0] == v && m == nil {
				m = c
				continue
			}
			if c == m || (len(c.Inputs) > 0 && c.Inputs[0] == v) {
				ok = false // a second first-input read, or m reads v twice
			}
			waiting[c]++
			pending++
		}
		if !ok || m == nil {
			break
		}
		refs := make([]int, len(m.Inputs)-1)
		internal := false
		for i, u := range m.Inputs[1:] {
			refs[i] = -1
			if s, in := index[u]; in && u != nil && u != v {
				// A value of the chain, added element-wise.
				refs[i], internal = s, true
				ok = ok && tensor.SameShape(u.Shape, v.Shape)
				continue
			}
			// Parameters and graph inputs, or values with v's shape (a
			// residual added element-wise) computed anywhere before m: the
			// merged node then runs after the last of them (nothing between
			// n and m reads the chain's intermediates, or the chain ends
			// before them).
			ok = ok && (u == nil || u.Producer == nil ||
				(pos[u.Producer] < pos[m] && u != v && tensor.SameShape(u.Shape, v.Shape)))
		}
		if !ok {
			break
		}
		var op Op
		if internal {
			if cf, is := cur.Op.(ChainFuser); is {
				op, ok = cf.FuseInternal(m.Op, refs)
			} else {
				ok = false
			}
		} else {
			op, ok = fuse(cur.Op, m.Op)
		}
		if !ok {
			break
		}
		pending -= waiting[m]
		delete(waiting, m)
		taken = append(taken, m)
		in := append([]*Value(nil), cur.Inputs...)
		for i, u := range m.Inputs[1:] {
			if refs[i] < 0 {
				in = append(in, u)
			}
		}
		cur = &Node{Name: cur.Name + "+" + m.Name, Op: op, Inputs: in, Outputs: m.Outputs}
		if pending == 0 {
			best, kept = cur, len(taken)
		}
	}
	for _, m := range taken[:kept] {
		absorbed[m] = true
	}
	return best
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// storage is one executor-owned buffer and the number of values (a value
// and its views) that still refer to it.
type storage struct {
	t      *tensor.Tensor
	refs   int
	lo, hi uintptr
}

// bufPool holds free buffers keyed by capacity.
type bufPool map[int][]*tensor.Tensor

func (p bufPool) get(size int) *tensor.Tensor {
	l := p[size]
	if len(l) == 0 {
		return nil
	}
	t := l[len(l)-1]
	p[size] = l[:len(l)-1]
	return t
}

func (p bufPool) put(t *tensor.Tensor) {
	if size := cap(t.Data); size > 0 {
		p[size] = append(p[size], t)
	}
}

// bytes is the memory held by the pool.
func (p bufPool) bytes() int {
	n := 0
	for size, l := range p {
		n += 4 * size * len(l)
	}
	return n
}

// dropGCBytes is the pooled memory above which dropping the pool (input
// shapes changed) runs a garbage collection, so that the next allocations
// reuse it instead of growing the process.
const dropGCBytes = 64 << 20

// getLen returns a pooled (or new) tensor of n elements, shape unset.
func (p bufPool) getLen(n int) *tensor.Tensor {
	t := p.get(n)
	if t == nil {
		t = &tensor.Tensor{Data: make([]float32, n)}
	}
	t.Data = t.Data[:n]
	return t
}

// alloc gives an op's context a new buffer of n elements from the pool.
func (e *Executor) alloc(n int) *tensor.Tensor {
	return e.pool.getLen(n)
}

// NewExecutor validates the graph and prepares to run it.
func NewExecutor(g *Graph) (*Executor, error) {
	if g.Err() != nil {
		return nil, g.Err()
	}
	e := &Executor{G: g, ctx: map[*Node]*Context{}}
	if err := e.Refresh(); err != nil {
		return nil, err
	}
	return e, nil
}

// Refresh re-sorts the graph after a pass changed it, keeping contexts of
// nodes that still exist.
func (e *Executor) Refresh() error {
	order, err := e.G.TopoSort()
	if err != nil {
		return err
	}
	ctx := map[*Node]*Context{}
	for i, n := range order {
		c := e.ctx[n]
		if c == nil {
			c = NewContext(false, int64(i)*7919+1)
			c.Node = n
		}
		c.alloc = e.alloc
		ctx[n] = c
	}
	e.order, e.ctx = order, ctx
	e.vals = map[*Value]*tensor.Tensor{}
	e.grads = map[*Value]*tensor.Tensor{}
	e.gradSet = map[*Value]bool{}
	e.uses, e.isOut, e.left = map[*Value]int{}, map[*Value]bool{}, map[*Value]int{}
	for _, n := range order {
		for _, v := range n.Inputs {
			if v != nil {
				e.uses[v]++
			}
		}
	}
	for _, v := range e.G.Outputs {
		e.isOut[v] = true
	}
	e.bwdKeep, e.ghosts = e.keepSet(order), map[*Value]bool{}
	e.pool = bufPool{}
	e.store = map[*Value]*storage{}
	e.recycled, e.lastIn, e.inShapes = false, nil, nil
	e.fused, e.trainFused, e.ran = nil, nil, nil
	return nil
}

// keepSet returns the values of order whose data a Backward may read (or
// that are graph outputs).
func (e *Executor) keepSet(order []*Node) map[*Value]bool {
	keep := map[*Value]bool{}
	for _, n := range order {
		r, partial := n.Op.(GradReader)
		for j, v := range n.Outputs {
			if v != nil && (!partial || r.BackwardReadsOutput(j) || e.isOut[v]) {
				keep[v] = true
			}
		}
		for i, v := range n.Inputs {
			if v != nil && (!partial || r.BackwardReadsInput(i)) {
				keep[v] = true
			}
		}
	}
	return keep
}

// Order returns the execution order.
func (e *Executor) Order() []*Node { return e.order }

// Context returns a node's execution context (not used by training steps
// for nodes inside a fused chain).
func (e *Executor) Context(n *Node) *Context { return e.ctx[n] }

// Get returns the tensor computed for v by the last Forward, or nil. Unless
// KeepValues is set, intermediate values are recycled (in evaluation as
// soon as their consumers ran, in training once Backward is past them), so
// only graph inputs, outputs and parameters are sure to be there.
func (e *Executor) Get(v *Value) *tensor.Tensor { return e.vals[v] }

// Grad returns the gradient computed for v by the last Backward (or nil).
// Unless KeepValues is set, gradients of intermediate values are recycled
// during the backward pass; those of parameters and graph inputs remain.
func (e *Executor) Grad(v *Value) *tensor.Tensor {
	if p := v.Param; p != nil {
		return p.Grad
	}
	if !e.gradSet[v] {
		return nil
	}
	return e.grads[v]
}

// Forward runs the graph on inputs given in the order of G.Inputs and
// returns the outputs in the order of G.Outputs.
func (e *Executor) Forward(inputs ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	return e.forward(inputs, true, false)
}

// forward runs the graph; hook calls OnForward, keep disables recycling in
// evaluation (for a recompute before Backward).
func (e *Executor) forward(inputs []*tensor.Tensor, hook, keep bool) ([]*tensor.Tensor, error) {
	g := e.G
	if len(inputs) != len(g.Inputs) {
		return nil, fmt.Errorf("graph %s: %d inputs given, %d expected", g.Name, len(inputs), len(g.Inputs))
	}
	for i, v := range g.Inputs {
		if inputs[i] == nil {
			return nil, fmt.Errorf("graph %s: input %s is nil", g.Name, v.Name)
		}
		if err := checkShape(v, inputs[i].Shape); err != nil {
			return nil, err
		}
	}
	e.startForward(inputs)
	for i, v := range g.Inputs {
		e.vals[v] = inputs[i]
	}
	for _, p := range g.params {
		e.vals[p.Value] = p.Data
	}
	recycle := !e.Training && !e.KeepValues && !keep
	early := e.Training && !e.KeepValues // release what Backward will not read
	order, ctxs, uses := e.order, e.ctx, e.uses
	e.ran, e.keep = nil, e.bwdKeep
	if recycle && (!hook || e.OnForward == nil) {
		// Inference: run fused chains (the hook would miss their nodes).
		if e.fused == nil {
			e.fused = e.buildFused(inferenceFuse, false)
		}
		order, ctxs, uses = e.fused.order, e.fused.ctx, e.fused.uses
	}
	if early && hook && e.OnForward == nil {
		// Training: run fused chains, forward and backward.
		if e.trainFused == nil {
			e.trainFused = e.buildFused(trainingFuse, true)
			e.trainFused.bwdKeep = e.keepSet(e.trainFused.order)
		}
		p := e.trainFused
		order, ctxs, uses = p.order, p.ctx, p.uses
		e.ran, e.keep = p, p.bwdKeep
	}
	if recycle || early {
		clear(e.left)
		for v, k := range uses {
			e.left[v] = k
		}
	}
	e.recycled, e.consumed, e.lastTraining = false, false, e.Training
	e.lastIn = append(e.lastIn[:0], inputs...)
	in := make([]*tensor.Tensor, 0, 8)
	for _, n := range order {
		in = in[:0]
		for _, v := range n.Inputs {
			var t *tensor.Tensor
			if v != nil {
				t = e.vals[v]
			}
			in = append(in, t)
		}
		c := ctxs[n]
		c.Training = e.Training
		out, err := n.Op.Forward(c, in)
		if err == nil && len(out) != len(n.Outputs) {
			err = fmt.Errorf("produced %d outputs, want %d", len(out), len(n.Outputs))
		}
		if err != nil {
			return nil, fmt.Errorf("node %s (%s): %w", n.Name, n.Op.Type(), err)
		}
		for i, v := range n.Outputs {
			e.vals[v] = out[i]
			if !e.KeepValues {
				e.own(n, c, v, out[i], out[:i])
			}
		}
		if hook && e.OnForward != nil {
			e.OnForward(n, in, out)
		}
		if recycle || early {
			for _, v := range n.Inputs {
				if v == nil {
					continue
				}
				if e.left[v]--; e.left[v] == 0 {
					e.releaseUnread(v, recycle)
				}
			}
			for _, v := range n.Outputs {
				if uses[v] == 0 {
					e.releaseUnread(v, recycle)
				}
			}
		}
	}
	e.recycled = recycle
	outs := make([]*tensor.Tensor, len(g.Outputs))
	for i, v := range g.Outputs {
		outs[i] = e.vals[v]
	}
	return outs, nil
}

// startForward returns the buffers of the previous pass to the pool, and
// drops the pool when the input shapes changed (its sizes would not fit).
func (e *Executor) startForward(inputs []*tensor.Tensor) {
	for v := range e.store {
		e.release(v)
	}
	clear(e.vals)
	clear(e.ghosts)
	e.releaseGrads()
	same := len(e.inShapes) == len(inputs)
	for i := 0; same && i < len(inputs); i++ {
		same = tensor.SameShape(e.inShapes[i], inputs[i].Shape)
	}
	if !same {
		// The pooled sizes will not fit the new shapes: drop them, and let
		// the runtime reuse that memory now rather than grow the heap.
		if e.pool.bytes() > dropGCBytes {
			e.pool = bufPool{}
			runtime.GC()
		}
		e.pool = bufPool{}
		e.inShapes = e.inShapes[:0]
		for _, t := range inputs {
			e.inShapes = append(e.inShapes, append([]int(nil), t.Shape...))
		}
	}
}

func countTensor(list []*tensor.Tensor, t *tensor.Tensor) int {
	k := 0
	for _, x := range list {
		if x == t {
			k++
		}
	}
	return k
}

func containsTensor(list []*tensor.Tensor, t *tensor.Tensor) bool {
	for _, x := range list {
		if x == t {
			return true
		}
	}
	return false
}

// take removes t from c's buffer slots if it is one of them and reports
// whether it did; the executor then owns it (the slot gets a pooled
// buffer when the op next asks for it).
func take(c *Context, t *tensor.Tensor) bool {
	if t == nil || cap(t.Data) == 0 {
		return false
	}
	for s, b := range c.bufs {
		if b == t {
			delete(c.bufs, s)
			return true
		}
	}
	return false
}

// span returns the address range of t's backing array.
func span(t *tensor.Tensor) (lo, hi uintptr) {
	if t == nil || cap(t.Data) == 0 {
		return 0, 0
	}
	lo = uintptr(unsafe.Pointer(unsafe.SliceData(t.Data)))
	return lo, lo + uintptr(cap(t.Data))*4
}

func overlaps(t *tensor.Tensor, lo, hi uintptr) bool {
	tlo, thi := span(t)
	return tlo < hi && lo < thi
}

// own records who owns the memory of output v (tensor t) of node n: a
// buffer taken from n's context becomes an executor storage; an output
// that shares memory with the storage of an input or an earlier output
// (a view) refers to that storage too. prev are n's earlier outputs.
func (e *Executor) own(n *Node, c *Context, v *Value, t *tensor.Tensor, prev []*tensor.Tensor) {
	if t == nil || cap(t.Data) == 0 {
		return
	}
	if !containsTensor(prev, t) {
		if take(c, t) {
			lo, hi := span(t)
			e.store[v] = &storage{t: t, refs: 1, lo: lo, hi: hi}
			return
		}
	}
	related := append(n.Inputs[:len(n.Inputs):len(n.Inputs)], n.Outputs[:len(prev)]...)
	for _, u := range related {
		if s := e.store[u]; u != nil && u != v && s != nil && overlaps(t, s.lo, s.hi) {
			s.refs++
			e.store[v] = s
			return
		}
	}
}

// release drops v's reference to its storage, returning the buffer to the
// pool when no value refers to it any more.
func (e *Executor) release(v *Value) {
	s := e.store[v]
	if s == nil {
		return
	}
	delete(e.store, v)
	delete(e.vals, v)
	if s.refs--; s.refs == 0 {
		e.pool.put(s.t)
	}
}

// releaseUnread releases v after its last consumer's forward: always in
// evaluation (all), in training only if no Backward reads its data; then a
// shape-only ghost (same length, stale data) stays in vals for Backward.
func (e *Executor) releaseUnread(v *Value, all bool) {
	if e.isOut[v] || e.store[v] == nil {
		return
	}
	if all {
		e.release(v)
		return
	}
	if e.keep[v] {
		return
	}
	t := e.vals[v]
	e.release(v)
	if t != nil {
		e.vals[v] = &tensor.Tensor{Shape: append([]int(nil), t.Shape...), Data: t.Data}
		e.ghosts[v] = true
	}
}

// releaseGrad returns v's gradient buffer to the pool.
func (e *Executor) releaseGrad(v *Value) {
	if !e.gradSet[v] {
		return
	}
	if t := e.grads[v]; t != nil {
		e.pool.put(t)
	}
	delete(e.grads, v)
	delete(e.gradSet, v)
}

// releaseGrads returns all gradient buffers to the pool.
func (e *Executor) releaseGrads() {
	for v := range e.gradSet {
		e.releaseGrad(v)
	}
}

func checkShape(v *Value, got []int) error {
	if len(v.Shape) != len(got) {
		return fmt.Errorf("input %s: got shape %v, want %v", v.Name, got, v.Shape)
	}
	for i, d := range v.Shape {
		if d >= 0 && d != got[i] {
			return fmt.Errorf("input %s: got shape %v, want %v", v.Name, got, v.Shape)
		}
	}
	return nil
}

// needsGrad marks values whose gradient must be computed: trainable
// parameters and everything computed from them.
func (e *Executor) needsGrad() map[*Value]bool {
	need := map[*Value]bool{}
	for _, p := range e.G.params {
		if p.Trainable() {
			need[p.Value] = true
		}
	}
	for _, n := range e.order {
		any := false
		for _, in := range n.Inputs {
			if in != nil && need[in] {
				any = true
				break
			}
		}
		if any {
			for _, o := range n.Outputs {
				need[o] = true
			}
		}
	}
	return need
}

// Backward propagates output gradients (one per graph output, nil for none)
// from the last Forward and accumulates gradients into the trainable
// parameters' Grad tensors (call Graph.ZeroGrad between steps).
func (e *Executor) Backward(dout ...*tensor.Tensor) error {
	return e.backward(dout, nil)
}

// BackwardInputs is Backward that also returns the gradients with respect
// to the graph inputs (used by tests and analyses). They stay valid until
// the next Forward or Backward.
func (e *Executor) BackwardInputs(dout ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	extra := map[*Value]bool{}
	for _, v := range e.G.Inputs {
		extra[v] = true
	}
	if err := e.backward(dout, extra); err != nil {
		return nil, err
	}
	res := make([]*tensor.Tensor, len(e.G.Inputs))
	for i, v := range e.G.Inputs {
		if e.gradSet[v] {
			res[i] = e.grads[v]
		}
	}
	return res, nil
}

// recompute reruns an evaluation forward whose intermediate values were
// recycled (by the forward itself or by an earlier Backward), keeping them
// this time. The outputs already handed to the
// caller are left alone (not pooled), so they stay valid.
func (e *Executor) recompute() error {
	for _, v := range e.G.Outputs {
		if s := e.store[v]; s != nil {
			delete(e.store, v)
			s.refs = -1 << 30 // never pooled
		}
	}
	training := e.Training
	e.Training = e.lastTraining
	_, err := e.forward(e.lastIn, false, true)
	e.Training = training
	return err
}

func (e *Executor) backward(dout []*tensor.Tensor, extra map[*Value]bool) error {
	g := e.G
	if len(dout) != len(g.Outputs) {
		return fmt.Errorf("graph %s: %d output gradients given, %d outputs", g.Name, len(dout), len(g.Outputs))
	}
	if e.consumed && e.lastTraining {
		return fmt.Errorf("graph %s: a second Backward after one training Forward needs the activations the first one released (set Executor.KeepValues)", g.Name)
	}
	if e.recycled || e.consumed {
		if err := e.recompute(); err != nil {
			return fmt.Errorf("graph %s: recomputing the evaluation forward for Backward: %w", g.Name, err)
		}
	}
	need := e.needsGrad()
	if extra != nil {
		for v := range extra {
			need[v] = true
		}
		// Propagate again so that values computed from the inputs need grads.
		for _, n := range e.order {
			for _, in := range n.Inputs {
				if in != nil && need[in] {
					for _, o := range n.Outputs {
						need[o] = true
					}
					break
				}
			}
		}
	}
	e.releaseGrads()
	for i, v := range g.Outputs {
		if dout[i] == nil {
			continue
		}
		if e.vals[v] == nil || !tensor.SameShape(dout[i].Shape, e.vals[v].Shape) {
			return fmt.Errorf("graph %s: gradient of output %s has shape %v, output has %v", g.Name, v.Name, dout[i].Shape, shapeOf(e.vals[v]))
		}
		if err := e.accum(v, dout[i], false); err != nil {
			return err
		}
	}
	order, ctxs := e.order, e.ctx
	if e.ran != nil {
		order, ctxs = e.ran.order, e.ran.ctx
	}
	var in, out, dOut []*tensor.Tensor
	for k := len(order) - 1; k >= 0; k-- {
		n := order[k]
		if err := e.backwardNode(n, ctxs[n], need, &in, &out, &dOut); err != nil {
			return fmt.Errorf("backward of node %s (%s): %w", n.Name, n.Op.Type(), err)
		}
		if e.KeepValues {
			continue
		}
		// The pass is past n: nothing needs its outputs or their gradients.
		for _, v := range n.Outputs {
			if !e.isOut[v] {
				e.release(v)
			}
			e.releaseGrad(v)
		}
	}
	e.consumed = !e.KeepValues
	return nil
}

func shapeOf(t *tensor.Tensor) []int {
	if t == nil {
		return nil
	}
	return t.Shape
}

// backwardNode runs one node's Backward (in its context c) and accumulates
// the input gradients; in, out and dOut are reusable slices.
func (e *Executor) backwardNode(n *Node, c *Context, need map[*Value]bool, in, out, dOut *[]*tensor.Tensor) error {
	*dOut = (*dOut)[:0]
	anyOut := false
	for _, o := range n.Outputs {
		var t *tensor.Tensor
		if e.gradSet[o] {
			t = e.grads[o]
			anyOut = true
		}
		*dOut = append(*dOut, t)
	}
	if !anyOut {
		return nil
	}
	if cap(c.NeedGrad) < len(n.Inputs) {
		c.NeedGrad = make([]bool, len(n.Inputs))
	}
	c.NeedGrad = c.NeedGrad[:len(n.Inputs)]
	anyIn := false
	for i, v := range n.Inputs {
		c.NeedGrad[i] = v != nil && need[v]
		anyIn = anyIn || c.NeedGrad[i]
	}
	if !anyIn {
		return nil
	}
	*in, *out = (*in)[:0], (*out)[:0]
	for _, v := range n.Inputs {
		var t *tensor.Tensor
		if v != nil {
			t = e.vals[v]
		}
		*in = append(*in, t)
	}
	for _, v := range n.Outputs {
		*out = append(*out, e.vals[v])
	}
	live := func(vs []*Value, ts []*tensor.Tensor) []*tensor.Tensor {
		// Ghosts' stale data may now be anyone's: not an alias.
		var r []*tensor.Tensor
		for i, t := range ts {
			if vs[i] == nil || !e.ghosts[vs[i]] {
				r = append(r, t)
			}
		}
		return r
	}
	dIn, err := n.Op.Backward(c, *in, *out, *dOut)
	if err != nil {
		return err
	}
	for i, v := range n.Inputs {
		if v == nil || !c.NeedGrad[i] || i >= len(dIn) || dIn[i] == nil {
			continue
		}
		d := dIn[i]
		adopt := false
		if v.Param == nil && !e.KeepValues && countTensor(dIn, d) == 1 && !aliases(d, live(n.Inputs, *in), live(n.Outputs, *out), *dOut) {
			adopt = take(c, d)
		}
		if err := e.accum(v, d, adopt); err != nil {
			return err
		}
	}
	return nil
}

// aliases reports whether t shares memory with a tensor of the lists.
func aliases(t *tensor.Tensor, lists ...[]*tensor.Tensor) bool {
	lo, hi := span(t)
	for _, l := range lists {
		for _, x := range l {
			if x != nil && overlaps(x, lo, hi) {
				return true
			}
		}
	}
	return false
}

// accum adds d into the gradient of v (parameter gradients go to
// Param.Grad). adopt means d is executor-owned and may become the gradient
// itself instead of being copied.
func (e *Executor) accum(v *Value, d *tensor.Tensor, adopt bool) error {
	if p := v.Param; p != nil {
		if !p.Trainable() {
			return nil
		}
		if p.Grad == nil || p.Grad.Len() != p.Data.Len() {
			p.Grad = tensor.New(p.Data.Shape...)
		}
		if d.Len() != p.Grad.Len() {
			return fmt.Errorf("gradient for %s has %d elements, parameter has %d", v.Name, d.Len(), p.Grad.Len())
		}
		kernels.Add(p.Grad.Data, p.Grad.Data, d.Data)
		return nil
	}
	if !e.gradSet[v] {
		gb := d
		if !adopt {
			gb = e.pool.getLen(d.Len())
			gb.Shape = append(gb.Shape[:0], d.Shape...)
			copy(gb.Data, d.Data)
		}
		e.grads[v] = gb
		e.gradSet[v] = true
		return nil
	}
	gb := e.grads[v]
	if d.Len() != gb.Len() {
		return fmt.Errorf("gradient for %s has shape %v, earlier gradient %v", v.Name, d.Shape, gb.Shape)
	}
	kernels.Add(gb.Data, gb.Data, d.Data)
	if adopt {
		e.pool.put(d)
	}
	return nil
}
