package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"lowbit/graph"
	"lowbit/onnx"
	"lowbit/ops"
	"lowbit/tensor"
)

// layerInfo is one row of `lowbit inspect`.
type layerInfo struct {
	Name   string `json:"name"`
	Op     string `json:"op"`
	Output []int  `json:"output"`
	Params int    `json:"params"`
	MACs   int64  `json:"macs"`
}

func init() {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect model.onnx",
		Short: "Show a model's layers, shapes, parameters and MACs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			g, err := onnx.Load(args[0])
			if err != nil {
				return err
			}
			rows := inspectGraph(g)
			var totalP int
			var totalM int64
			for _, r := range rows {
				totalP += r.Params
				totalM += r.MACs
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]any{"model": args[0], "inputs": valueShapes(g.Inputs),
					"outputs": valueShapes(g.Outputs), "layers": rows, "params": totalP, "macs": totalM})
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s: inputs %v, outputs %v\n", args[0], valueShapes(g.Inputs), valueShapes(g.Outputs))
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "layer\top\toutput\tparams\tMACs")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%d\n", r.Name, r.Op, r.Output, r.Params, r.MACs)
			}
			fmt.Fprintf(tw, "total\t\t\t%d\t%d\n", totalP, totalM)
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print only JSON on stdout")
	rootCmd.AddCommand(cmd)
}

func valueShapes(vs []*graph.Value) map[string][]int {
	m := map[string][]int{}
	for _, v := range vs {
		m[v.Name] = v.Shape
	}
	return m
}

// inspectGraph lists nodes with their output shape (batch 1), parameter
// count and multiply-accumulates per image.
func inspectGraph(g *graph.Graph) []layerInfo {
	var rows []layerInfo
	for _, n := range g.Nodes {
		r := layerInfo{Name: n.Name, Op: n.Op.Type()}
		if len(n.Outputs) > 0 {
			r.Output = batchOne(n.Outputs[0].Shape)
		}
		for _, in := range n.Inputs {
			if in != nil && in.Param != nil && !in.Param.Kind.IsState() {
				r.Params += in.Param.Data.Len()
			}
		}
		r.MACs = nodeMACs(n)
		rows = append(rows, r)
	}
	return rows
}

func batchOne(s []int) []int {
	o := append([]int(nil), s...)
	for i, d := range o {
		if d < 0 {
			o[i] = 1
		}
	}
	return o
}

// nodeMACs counts multiply-accumulates of Conv, Gemm and MatMul nodes for
// one image.
func nodeMACs(n *graph.Node) int64 {
	if len(n.Outputs) == 0 || len(n.Inputs) < 2 || n.Inputs[1] == nil {
		return 0
	}
	out := tensor.Numel(batchOne(n.Outputs[0].Shape))
	w := n.Inputs[1].Shape
	switch op := n.Op.(type) {
	case ops.Conv, *ops.Conv:
		_ = op
		if len(w) == 4 {
			return int64(out) * int64(w[1]*w[2]*w[3])
		}
	case ops.Gemm, *ops.Gemm, ops.MatMul, *ops.MatMul:
		a := n.Inputs[0].Shape
		if len(a) >= 2 {
			return int64(out) * int64(a[len(a)-1])
		}
	}
	return 0
}
