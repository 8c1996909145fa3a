package quant

import (
	"fmt"
	"math"

	"lowbit/graph"
	"lowbit/ops"
	"lowbit/tensor"
)

// FoldBatchNorm folds every BatchNormalization that directly follows a
// Conv or Gemm into that layer's weights and bias, with evaluation
// semantics (running statistics), as deployment does before quantizing:
// with s = γ/√(var+ε), W'[o] = s[o]·W[o] and b'[o] = s[o]·(b[o] − μ[o]) + β[o]
// (per output channel o; a bias parameter "<layer>.bias" is created when
// the layer has none). It returns the number of folded BatchNorms.
//
// A BatchNorm is folded only when the layer's output feeds nothing else
// and the layer's weight (and bias) parameters feed nothing else; others
// are left in place. After folding the model computes the same outputs in
// evaluation mode (up to float32 rounding); it can no longer train with
// batch statistics.
func FoldBatchNorm(g *graph.Graph) (int, error) {
	if err := g.Err(); err != nil {
		return 0, err
	}
	order, err := g.TopoSort()
	if err != nil {
		return 0, err
	}
	folded := 0
	for _, bn := range order {
		op, ok := batchNormOp(bn.Op)
		if !ok || len(bn.Inputs) != 5 || bn.Inputs[0] == nil {
			continue
		}
		layer := bn.Inputs[0].Producer
		if layer == nil || !exclusive(g, bn.Inputs[0], bn) {
			continue
		}
		st, ok := bnParams(bn)
		if !ok {
			continue
		}
		eps := float64(op.Epsilon)
		if eps == 0 {
			eps = 1e-5 // ONNX default, as ops.BatchNorm
		}
		c := len(st[0])
		scale := make([]float64, c)
		shift := make([]float64, c)
		for i := range c {
			scale[i] = float64(st[0][i]) / math.Sqrt(float64(st[3][i])+eps)
			shift[i] = float64(st[1][i]) - float64(st[2][i])*scale[i]
		}
		var done bool
		switch lop := layer.Op.(type) {
		case ops.Conv:
			done, err = foldConv(g, layer, scale, shift)
		case *ops.Conv:
			done, err = foldConv(g, layer, scale, shift)
		case ops.Gemm:
			done, err = foldGemm(g, layer, lop, scale, shift)
		case *ops.Gemm:
			done, err = foldGemm(g, layer, *lop, scale, shift)
		}
		if err != nil {
			return folded, fmt.Errorf("fold %s into %s: %w", bn.Name, layer.Name, err)
		}
		if !done {
			continue
		}
		g.ReplaceUses(bn.Outputs[0], layer.Outputs[0], nil)
		params := bn.Inputs[1:]
		g.RemoveNode(bn)
		for _, v := range params {
			if len(g.Consumers(v)) == 0 && !isOutput(g, v) {
				g.RemoveParam(v.Param)
			}
		}
		folded++
	}
	if err := g.Reinfer(); err != nil {
		return folded, err
	}
	return folded, g.Err()
}

func batchNormOp(op graph.Op) (ops.BatchNorm, bool) {
	switch o := op.(type) {
	case ops.BatchNorm:
		return o, true
	case *ops.BatchNorm:
		return *o, true
	}
	return ops.BatchNorm{}, false
}

// bnParams returns γ, β, μ, var of a BatchNorm whose inputs 1–4 are
// parameters of one length.
func bnParams(bn *graph.Node) ([4][]float32, bool) {
	var st [4][]float32
	for i := range 4 {
		v := bn.Inputs[i+1]
		if v == nil || v.Param == nil || v.Param.Data == nil {
			return st, false
		}
		st[i] = v.Param.Data.Data
		if len(st[i]) != len(st[0]) {
			return st, false
		}
	}
	return st, len(st[0]) > 0
}

// exclusive reports whether v is read by node n only (and is no graph
// output).
func exclusive(g *graph.Graph, v *graph.Value, n *graph.Node) bool {
	cons := g.Consumers(v)
	if len(cons) != 1 || cons[0] != n || isOutput(g, v) {
		return false
	}
	for _, in := range n.Inputs {
		if in == v {
			return true
		}
	}
	return false
}

func isOutput(g *graph.Graph, v *graph.Value) bool {
	for _, o := range g.Outputs {
		if o == v {
			return true
		}
	}
	return false
}

// ownedParam returns input i of layer if it is a parameter that only layer
// reads.
func ownedParam(g *graph.Graph, layer *graph.Node, i int) *graph.Param {
	if i >= len(layer.Inputs) || layer.Inputs[i] == nil {
		return nil
	}
	v := layer.Inputs[i]
	if v.Param == nil || v.Producer != nil || !exclusive(g, v, layer) {
		return nil
	}
	return v.Param
}

// biasFor returns the layer's bias parameter at input i, creating a zero
// one named "<layer>.bias" when the input is absent; nil when the present
// bias cannot be modified (shared, computed, or not of shape [c]).
func biasFor(g *graph.Graph, layer *graph.Node, i, c int) *graph.Param {
	if i < len(layer.Inputs) && layer.Inputs[i] != nil {
		p := ownedParam(g, layer, i)
		if p == nil || len(p.Data.Shape) != 1 || p.Data.Shape[0] != c {
			return nil
		}
		return p
	}
	v := g.AddParam(g.UniqueName(layer.Name+".bias"), graph.Bias, tensor.New(c))
	if v == nil {
		return nil
	}
	for len(layer.Inputs) <= i {
		layer.Inputs = append(layer.Inputs, nil)
	}
	layer.Inputs[i] = v
	return v.Param
}

func foldConv(g *graph.Graph, layer *graph.Node, scale, shift []float64) (bool, error) {
	w := ownedParam(g, layer, 1)
	c := len(scale)
	if w == nil || len(w.Data.Shape) != 4 || w.Data.Shape[0] != c {
		return false, nil
	}
	if len(layer.Inputs) > 2 && layer.Inputs[2] != nil && ownedParam(g, layer, 2) == nil {
		return false, nil
	}
	b := biasFor(g, layer, 2, c)
	if b == nil {
		return false, nil
	}
	inner := len(w.Data.Data) / c
	for o := range c {
		row := w.Data.Data[o*inner : (o+1)*inner]
		for j, v := range row {
			row[j] = float32(float64(v) * scale[o])
		}
		b.Data.Data[o] = float32(float64(b.Data.Data[o])*scale[o] + shift[o])
	}
	return true, g.Err()
}

func foldGemm(g *graph.Graph, layer *graph.Node, op ops.Gemm, scale, shift []float64) (bool, error) {
	w := ownedParam(g, layer, 1)
	c := len(scale)
	if w == nil || len(w.Data.Shape) != 2 {
		return false, nil
	}
	rows, cols := w.Data.Shape[0], w.Data.Shape[1]
	if op.TransB && rows != c || !op.TransB && cols != c {
		return false, nil
	}
	hasC := len(layer.Inputs) > 2 && layer.Inputs[2] != nil
	if hasC && (op.Beta == 0 || ownedParam(g, layer, 2) == nil) {
		return false, nil
	}
	if hasC {
		p := layer.Inputs[2].Param
		if len(p.Data.Shape) != 1 || p.Data.Shape[0] != c {
			return false, nil
		}
	}
	b := biasFor(g, layer, 2, c)
	if b == nil {
		return false, nil
	}
	beta := float64(op.Beta)
	if !hasC {
		beta = 1
		if p, ok := layer.Op.(*ops.Gemm); ok {
			p.Beta = 1
		} else {
			op.Beta = 1
			layer.Op = op
		}
	}
	wd := w.Data.Data
	for i := range rows {
		for j := range cols {
			o := j
			if op.TransB {
				o = i
			}
			wd[i*cols+j] = float32(float64(wd[i*cols+j]) * scale[o])
		}
	}
	// Y' = s·(α·A·B + β·C − μ) + β_bn = α·A·(B·s) + β·(C·s + shift/β).
	for o := range c {
		b.Data.Data[o] = float32(float64(b.Data.Data[o])*scale[o] + shift[o]/beta)
	}
	return true, g.Err()
}
