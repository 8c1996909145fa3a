package ops

import (
	"fmt"

	"lowbit/graph"
	"lowbit/kernels"
	"lowbit/tensor"
)

// Add, Sub, Mul and Div broadcast as NumPy does. Forward and backward go
// through a broadcast plan: the output dimensions of size 1 are dropped and
// adjacent dimensions that are contiguous for the output and both operands
// are merged, so every case becomes rows of an inner run in which each
// operand is either a vector (stride 1) or a repeated scalar (stride 0).
// Equal shapes become a single run split over cores;
// [N,C,H,W]⊙[N,C,1,1] (squeeze-excite) becomes N·C rows of H·W times a
// scalar; a bias [1,C,1,1] becomes N×C rows of H·W. Backward computes the
// out-shaped gradient of each operand and sums it over that operand's
// broadcast dimensions.

type binOp uint8

const (
	opAdd binOp = iota
	opSub
	opMul
	opDiv
)

var binOpNames = [...]string{"Add", "Sub", "Mul", "Div"}

// Buffer slots of binary ops.
const (
	slotBinOut = iota
	slotBinGradA
	slotBinGradB
	slotBinTmp
)

// Type returns "Add".
func (Add) Type() string { return binOpNames[opAdd] }

// InferShapes broadcasts the two input shapes.
func (Add) InferShapes(in [][]int) ([][]int, error) { return binaryInfer(in) }

// Forward computes A + B.
func (Add) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return binaryForward(opAdd, c, in)
}

// Backward sums dY over each operand's broadcast dimensions.
func (Add) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return binaryBackward(opAdd, c, in, out, dout)
}

// BackwardReadsInput is false: Add's gradients are dY reduced to the
// operand shapes.
func (Add) BackwardReadsInput(int) bool { return false }

// BackwardReadsOutput is false.
func (Add) BackwardReadsOutput(int) bool { return false }

// Type returns "Sub".
func (Sub) Type() string { return binOpNames[opSub] }

// InferShapes broadcasts the two input shapes.
func (Sub) InferShapes(in [][]int) ([][]int, error) { return binaryInfer(in) }

// Forward computes A − B.
func (Sub) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return binaryForward(opSub, c, in)
}

// Backward returns dY and −dY, reduced to the operand shapes.
func (Sub) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return binaryBackward(opSub, c, in, out, dout)
}

// BackwardReadsInput is false: Sub's gradients are ±dY reduced.
func (Sub) BackwardReadsInput(int) bool { return false }

// BackwardReadsOutput is false.
func (Sub) BackwardReadsOutput(int) bool { return false }

// Type returns "Mul".
func (Mul) Type() string { return binOpNames[opMul] }

// InferShapes broadcasts the two input shapes.
func (Mul) InferShapes(in [][]int) ([][]int, error) { return binaryInfer(in) }

// Forward computes A ⊙ B.
func (Mul) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return binaryForward(opMul, c, in)
}

// Backward returns dY⊙B and dY⊙A, reduced to the operand shapes.
func (Mul) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return binaryBackward(opMul, c, in, out, dout)
}

// Type returns "Div".
func (Div) Type() string { return binOpNames[opDiv] }

// InferShapes broadcasts the two input shapes.
func (Div) InferShapes(in [][]int) ([][]int, error) { return binaryInfer(in) }

// Forward computes A / B (IEEE semantics: division by zero gives ±Inf or NaN).
func (Div) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return binaryForward(opDiv, c, in)
}

// Backward returns dY/B and −dY⊙Y/B, reduced to the operand shapes.
func (Div) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return binaryBackward(opDiv, c, in, out, dout)
}

// broadcastDim combines one aligned dimension of two shapes. At build
// time -1 (the batch) against 1 stays -1 and against a fixed size takes
// that size.
func broadcastDim(x, y int) (int, bool) {
	switch {
	case x == y:
		return x, true
	case x == 1:
		return y, true
	case y == 1:
		return x, true
	case x < 0 && y >= 0:
		return y, true
	case y < 0 && x >= 0:
		return x, true
	}
	return 0, false
}

// broadcastShape returns the NumPy broadcast of shapes a and b, appended to
// dst[:0].
func broadcastShape(dst, a, b []int) ([]int, error) {
	r := max(len(a), len(b))
	dst = dst[:0]
	for i := 0; i < r; i++ {
		ad, bd := alignedDim(a, i, r), alignedDim(b, i, r)
		d, ok := broadcastDim(ad, bd)
		if !ok {
			return nil, fmt.Errorf("shapes %v and %v do not broadcast (dimension %d: %d vs %d)", a, b, i, ad, bd)
		}
		dst = append(dst, d)
	}
	return dst, nil
}

// alignedDim is dimension i of shape s right-aligned to rank r (1 where s
// has no such dimension).
func alignedDim(s []int, i, r int) int {
	if j := i - (r - len(s)); j >= 0 {
		return s[j]
	}
	return 1
}

// twoShapes returns the two input shapes of a binary op.
func twoShapes(in [][]int) (a, b []int, err error) {
	if len(in) != 2 || in[0] == nil || in[1] == nil {
		return nil, nil, fmt.Errorf("takes two inputs, got %d", len(in))
	}
	return in[0], in[1], nil
}

func binaryInfer(in [][]int) ([][]int, error) {
	a, b, err := twoShapes(in)
	if err != nil {
		return nil, err
	}
	s, err := broadcastShape(nil, a, b)
	if err != nil {
		return nil, err
	}
	return [][]int{s}, nil
}

func twoTensors(in []*tensor.Tensor) (a, b *tensor.Tensor, err error) {
	if len(in) != 2 || in[0] == nil || in[1] == nil {
		return nil, nil, fmt.Errorf("takes two inputs, got %d", len(in))
	}
	return in[0], in[1], nil
}

// bplan is a broadcast plan for two operand shapes (see the file comment).
// It is kept in the node's Context and rebuilt when the shapes change.
type bplan struct {
	aShape, bShape []int
	outShape       []int
	dims           []int // merged output dimensions (at least one)
	so, sa, sb     []int // strides over dims of the output and the operands
	n, inner, rows int   // output elements, innermost run, number of runs
	idx            []int // walk scratch for serial use
}

// planFor returns the node's plan for shapes a and b.
func planFor(c *graph.Context, a, b []int) (*bplan, error) {
	p, _ := c.Saved.(*bplan)
	if p == nil {
		p = &bplan{}
		c.Saved = p
	}
	if p.outShape != nil && tensor.SameShape(p.aShape, a) && tensor.SameShape(p.bShape, b) {
		return p, nil
	}
	if err := p.build(a, b); err != nil {
		p.outShape = nil
		return nil, err
	}
	return p, nil
}

func (p *bplan) build(a, b []int) error {
	out, err := broadcastShape(p.outShape, a, b)
	if err != nil {
		return err
	}
	p.outShape = out
	p.aShape = append(p.aShape[:0], a...)
	p.bShape = append(p.bShape[:0], b...)
	p.n = tensor.Numel(out)
	r := len(out)
	// Contiguous strides of each operand, right-aligned to the output;
	// stride 0 on broadcast dimensions.
	p.dims, p.so, p.sa, p.sb = p.dims[:0], p.so[:0], p.sa[:0], p.sb[:0]
	accO, accA, accB := 1, 1, 1
	for i := r - 1; i >= 0; i-- {
		od, ad, bd := out[i], alignedDim(a, i, r), alignedDim(b, i, r)
		if od != 1 {
			sa, sb := 0, 0
			if ad != 1 {
				sa = accA
			}
			if bd != 1 {
				sb = accB
			}
			p.dims = append(p.dims, od)
			p.so, p.sa, p.sb = append(p.so, accO), append(p.sa, sa), append(p.sb, sb)
		}
		accO, accA, accB = accO*od, accA*ad, accB*bd
	}
	// Dimensions were collected innermost first; merge and reverse.
	k := 0
	for j := range p.dims {
		if k > 0 && p.so[k-1]*p.dims[k-1] == p.so[j] && p.sa[k-1]*p.dims[k-1] == p.sa[j] && p.sb[k-1]*p.dims[k-1] == p.sb[j] {
			p.dims[k-1] *= p.dims[j]
			continue
		}
		p.dims[k], p.so[k], p.sa[k], p.sb[k] = p.dims[j], p.so[j], p.sa[j], p.sb[j]
		k++
	}
	if k == 0 {
		p.dims, p.so, p.sa, p.sb = append(p.dims[:0], 1), append(p.so[:0], 1), append(p.sa[:0], 0), append(p.sb[:0], 0)
		k = 1
	}
	p.dims, p.so, p.sa, p.sb = p.dims[:k], p.so[:k], p.sa[:k], p.sb[:k]
	for _, s := range [][]int{p.dims, p.so, p.sa, p.sb} {
		for i, j := 0, k-1; i < j; i, j = i+1, j-1 {
			s[i], s[j] = s[j], s[i]
		}
	}
	p.inner = p.dims[k-1]
	p.rows = 0
	if p.inner > 0 {
		p.rows = p.n / p.inner
	}
	return nil
}

// walk calls fn for runs [lo, hi) with the run's offsets into two operands
// addressed by the strides sx and sy. idx is scratch of len(p.dims)-1.
func (p *bplan) walk(lo, hi int, sx, sy, idx []int, fn func(row, ox, oy int)) {
	k := len(p.dims) - 1
	ox, oy := 0, 0
	rem := lo
	for d := k - 1; d >= 0; d-- {
		i := rem % p.dims[d]
		rem /= p.dims[d]
		idx[d] = i
		ox += i * sx[d]
		oy += i * sy[d]
	}
	for row := lo; row < hi; row++ {
		fn(row, ox, oy)
		for d := k - 1; d >= 0; d-- {
			idx[d]++
			ox += sx[d]
			oy += sy[d]
			if idx[d] < p.dims[d] {
				break
			}
			ox -= sx[d] * p.dims[d]
			oy -= sy[d] * p.dims[d]
			idx[d] = 0
		}
	}
}

// forRows runs body over the runs, in parallel chunks when the plan is
// large and parallel is set.
func (p *bplan) forRows(parallel bool, body func(lo, hi int, idx []int)) {
	if !parallel || p.n < 2*pointwiseGrain {
		if cap(p.idx) < len(p.dims) {
			p.idx = make([]int, len(p.dims))
		}
		body(0, p.rows, p.idx[:len(p.dims)])
		return
	}
	kernels.Parallel(p.rows, max(1, pointwiseGrain/p.inner), func(lo, hi int) {
		body(lo, hi, make([]int, len(p.dims)))
	})
}

// apply writes dst = x op y over the output, with x and y addressed by the
// strides sx and sy (p.so for an output-shaped operand). dst may be x.
func (p *bplan) apply(op binOp, dst, x []float32, sx []int, y []float32, sy []int) {
	if p.n == 0 {
		return
	}
	last := len(p.dims) - 1
	ix, iy := sx[last], sy[last]
	if p.rows == 1 {
		splitWork(p.n, func(lo, hi int) { binRun(op, dst[lo:hi], x[lo*ix:], ix, y[lo*iy:], iy) })
		return
	}
	p.forRows(true, func(lo, hi int, idx []int) {
		p.walk(lo, hi, sx, sy, idx, func(row, ox, oy int) {
			binRun(op, dst[row*p.inner:(row+1)*p.inner], x[ox:], ix, y[oy:], iy)
		})
	})
}

// reduce sets dst, an operand with strides sd, to scale times the sum over
// the operand's broadcast dimensions of the output-shaped src, multiplied
// element-wise by m (addressed by strides sm) unless m is nil.
func (p *bplan) reduce(dst []float32, sd []int, src, m []float32, sm []int, scale float32) {
	clear(dst)
	if p.n == 0 {
		return
	}
	last := len(p.dims) - 1
	if m == nil {
		sm = sd
	}
	dIn, mIn := sd[last], sm[last]
	// Runs write disjoint parts of dst unless an outer dimension is
	// broadcast; only then is the walk serial.
	disjoint := true
	for _, s := range sd[:last] {
		disjoint = disjoint && s != 0
	}
	p.forRows(disjoint, func(lo, hi int, idx []int) {
		p.walk(lo, hi, sd, sm, idx, func(row, od, om int) {
			run := src[row*p.inner : (row+1)*p.inner]
			switch {
			case dIn == 0 && m != nil && mIn == 1:
				dst[od] += scale * kernels.Dot(run, m[om:])
			case dIn == 0:
				f := scale
				if m != nil {
					f *= m[om]
				}
				var acc float32
				for _, v := range run {
					acc += v
				}
				dst[od] += f * acc
			case m != nil && mIn == 1:
				d, mm := dst[od:od+len(run)], m[om:om+len(run)]
				for i, v := range run {
					d[i] += scale * v * mm[i]
				}
			default:
				f := scale
				if m != nil {
					f *= m[om]
				}
				kernels.Axpy(f, run, dst[od:])
			}
		})
	})
}

// binRun writes dst[i] = x[i·sx] op y[i·sy] with strides 0 or 1.
func binRun(op binOp, dst, x []float32, sx int, y []float32, sy int) {
	switch {
	case sx == 1 && sy == 1:
		binVV(op, dst, x[:len(dst)], y[:len(dst)])
	case sx == 1:
		binVS(op, dst, x[:len(dst)], y[0])
	case sy == 1:
		binSV(op, dst, x[0], y[:len(dst)])
	default:
		v := binScalar(op, x[0], y[0])
		for i := range dst {
			dst[i] = v
		}
	}
}

func binScalar(op binOp, a, b float32) float32 {
	switch op {
	case opAdd:
		return a + b
	case opSub:
		return a - b
	case opMul:
		return a * b
	}
	return a / b
}

func binVV(op binOp, dst, x, y []float32) {
	switch op {
	case opAdd:
		kernels.Add(dst, x, y)
	case opSub:
		for i := range dst {
			dst[i] = x[i] - y[i]
		}
	case opMul:
		for i := range dst {
			dst[i] = x[i] * y[i]
		}
	case opDiv:
		for i := range dst {
			dst[i] = x[i] / y[i]
		}
	}
}

// binVS is binVV with a scalar y.
func binVS(op binOp, dst, x []float32, s float32) {
	switch op {
	case opAdd:
		for i, v := range x {
			dst[i] = v + s
		}
	case opSub:
		for i, v := range x {
			dst[i] = v - s
		}
	case opMul:
		for i, v := range x {
			dst[i] = v * s
		}
	case opDiv:
		for i, v := range x {
			dst[i] = v / s
		}
	}
}

// binSV is binVV with a scalar x; Add and Mul commute, Sub and Div don't.
func binSV(op binOp, dst []float32, s float32, y []float32) {
	switch op {
	case opAdd, opMul:
		binVS(op, dst, y, s)
	case opSub:
		for i, v := range y {
			dst[i] = s - v
		}
	case opDiv:
		for i, v := range y {
			dst[i] = s / v
		}
	}
}

func binaryForward(op binOp, c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	a, b, err := twoTensors(in)
	if err != nil {
		return nil, err
	}
	p, err := planFor(c, a.Shape, b.Shape)
	if err != nil {
		return nil, err
	}
	y := c.Buffer(slotBinOut, p.outShape...)
	p.apply(op, y.Data, a.Data, p.sa, b.Data, p.sb)
	return []*tensor.Tensor{y}, nil
}

func binaryBackward(op binOp, c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	a, b, err := twoTensors(in)
	if err != nil {
		return nil, fmt.Errorf("backward: %w", err)
	}
	res := make([]*tensor.Tensor, 2)
	if len(dout) == 0 || dout[0] == nil {
		return res, nil
	}
	dy := dout[0]
	p, err := planFor(c, a.Shape, b.Shape)
	if err != nil {
		return nil, err
	}
	if dy.Len() != p.n {
		return nil, fmt.Errorf("backward: output gradient shape %v, output shape %v", dy.Shape, p.outShape)
	}
	var y *tensor.Tensor
	if op == opDiv && c.Need(1) {
		if len(out) == 0 || out[0] == nil || out[0].Len() != p.n {
			return nil, fmt.Errorf("backward: output of the forward pass missing")
		}
		y = out[0]
	}
	for i := range 2 {
		if c.Need(i) {
			res[i] = p.grad(op, c, i, a, b, y, dy)
		}
	}
	return res, nil
}

// grad returns the gradient for operand which (0 = A, 1 = B).
func (p *bplan) grad(op binOp, c *graph.Context, which int, a, b, y, dy *tensor.Tensor) *tensor.Tensor {
	shape, st, slot, other, ost := a.Shape, p.sa, slotBinGradA, b.Data, p.sb
	if which == 1 {
		shape, st, slot, other, ost = b.Shape, p.sb, slotBinGradB, a.Data, p.sa
	}
	g := c.Buffer(slot, shape...)
	if p.n == 0 {
		g.Zero()
		return g
	}
	full := g.Len() == p.n // no broadcasting: strides equal p.so
	scale := float32(1)
	if which == 1 && (op == opSub || op == opDiv) {
		scale = -1
	}
	var src []float32 // the output-shaped gradient before reduction
	switch {
	case op == opAdd || op == opSub:
		src = dy.Data
	case op == opMul && !full: // fused: Σ dY⊙other without a temporary
		p.reduce(g.Data, st, dy.Data, other, ost, 1)
		return g
	default:
		src = g.Data
		if !full {
			src = c.Buffer(slotBinTmp, p.outShape...).Data
		}
		switch {
		case op == opMul:
			p.apply(opMul, src, dy.Data, p.so, other, ost)
		case which == 0: // Div, dividend: dY/B
			p.apply(opDiv, src, dy.Data, p.so, b.Data, p.sb)
		default: // Div, divisor: −dY·Y/B (the sign is in scale)
			p.apply(opMul, src, dy.Data, p.so, y.Data, p.so)
			p.apply(opDiv, src, src, p.so, b.Data, p.sb)
		}
	}
	if !full {
		p.reduce(g.Data, st, src, nil, nil, scale)
		return g
	}
	if &src[0] != &g.Data[0] || scale != 1 {
		splitWork(p.n, func(lo, hi int) {
			d, s := g.Data[lo:hi], src[lo:hi]
			for i, v := range s {
				d[i] = scale * v
			}
		})
	}
	return g
}
