package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"lowbit/graph"
	"lowbit/npy"
	"lowbit/onnx"
	"lowbit/tensor"
)

// runResult is the --json report of `lowbit run`.
type runResult struct {
	Model   string      `json:"model"`
	Input   string      `json:"input"`
	Shape   []int       `json:"input_shape"`
	Outputs []runOutput `json:"outputs"`
	Seconds float64     `json:"seconds"`
}

type runOutput struct {
	Name  string `json:"name"`
	Path  string `json:"path"`
	Shape []int  `json:"shape"`
}

func init() { rootCmd.AddCommand(newRunCmd()) }

// newRunCmd returns the `lowbit run` command (fresh flags per call, for
// tests).
func newRunCmd() *cobra.Command {
	var model, input string
	var outs []string
	var batch int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "run --model m.onnx --input x.npy --out y.npy",
		Short: "Run a model forward on a NumPy .npy input and write its output as .npy",
		Long: "Run a model (any ONNX file lowbit imports) in inference mode on a float32 C-order .npy array\n" +
			"(NCHW for image models) and write each output as a float32 .npy file, atomically. Give one\n" +
			"--out per model output. Large inputs are processed --batch samples at a time.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case model == "":
				return fmt.Errorf("--model is required")
			case input == "":
				return fmt.Errorf("--input is required")
			case len(outs) == 0:
				return fmt.Errorf("--out is required")
			case batch < 0:
				return fmt.Errorf("--batch %d: want a positive batch size (or 0 for the whole input at once)", batch)
			}
			g, err := onnx.Load(model)
			if err != nil {
				return err
			}
			if len(g.Inputs) != 1 {
				return fmt.Errorf("%s: model has %d inputs; run feeds exactly one", model, len(g.Inputs))
			}
			if len(outs) != len(g.Outputs) {
				return fmt.Errorf("%s: model has %d outputs (%s), --out names %d files", model, len(g.Outputs), valueNames(g.Outputs), len(outs))
			}
			x, err := npy.ReadFile(input)
			if err != nil {
				return err
			}
			if err := checkRunInput(g.Inputs[0], x.Shape); err != nil {
				return fmt.Errorf("%s: %w", input, err)
			}
			start := time.Now()
			ys, err := runModel(cmd, g, x, batch)
			if err != nil {
				return fmt.Errorf("run %s on %s: %w", model, input, err)
			}
			secs := time.Since(start).Seconds()
			res := runResult{Model: model, Input: input, Shape: x.Shape, Seconds: secs}
			for i, y := range ys {
				if err := npy.WriteFile(outs[i], y); err != nil {
					return err
				}
				res.Outputs = append(res.Outputs, runOutput{Name: g.Outputs[i].Name, Path: outs[i], Shape: y.Shape})
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			for _, o := range res.Outputs {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: output %q %v written to %s\n", model, o.Name, o.Shape, o.Path)
			}
			fmt.Fprintf(logw(), "forward on %v took %.3fs\n", x.Shape, secs)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "ONNX model file")
	f.StringVar(&input, "input", "", "input .npy file (float32, C order; NCHW for image models)")
	f.StringSliceVar(&outs, "out", nil, "output .npy file, one per model output (comma-separated or repeated)")
	f.IntVar(&batch, "batch", 64, "samples per forward pass (0: the whole input at once)")
	f.BoolVar(&asJSON, "json", false, "print only JSON on stdout")
	return cmd
}

func valueNames(vs []*graph.Value) string {
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = v.Name
	}
	return strings.Join(names, ", ")
}

// checkRunInput compares an input array's shape with the model input's
// (where −1 is the batch dimension).
func checkRunInput(v *graph.Value, shape []int) error {
	want := make([]string, len(v.Shape))
	for i, d := range v.Shape {
		want[i] = fmt.Sprint(d)
		if d < 0 {
			want[i] = "N"
		}
	}
	bad := len(shape) != len(v.Shape)
	for i := 0; !bad && i < len(shape); i++ {
		bad = v.Shape[i] >= 0 && v.Shape[i] != shape[i]
	}
	if bad {
		return fmt.Errorf("array has shape %v, model input %q expects [%s]", shape, v.Name, strings.Join(want, " "))
	}
	return nil
}

// runModel runs g on x, in chunks of batch samples along axis 0 when every
// input and output has a batch dimension there.
func runModel(cmd *cobra.Command, g *graph.Graph, x *tensor.Tensor, batch int) ([]*tensor.Tensor, error) {
	e, err := graph.NewExecutor(g)
	if err != nil {
		return nil, err
	}
	chunked := batch > 0 && len(x.Shape) > 0 && g.Inputs[0].Shape[0] < 0 && x.Shape[0] > batch
	for _, v := range g.Outputs {
		chunked = chunked && len(v.Shape) > 0 && v.Shape[0] < 0
	}
	if !chunked {
		out, err := e.Forward(x)
		if err != nil {
			return nil, err
		}
		res := make([]*tensor.Tensor, len(out))
		for i, o := range out {
			res[i] = o.Clone()
		}
		return res, nil
	}
	n, per := x.Shape[0], x.Len()/x.Shape[0]
	res := make([]*tensor.Tensor, len(g.Outputs))
	for lo := 0; lo < n; lo += batch {
		if err := cmd.Context().Err(); err != nil {
			return nil, err
		}
		hi := min(n, lo+batch)
		shape := append([]int{hi - lo}, x.Shape[1:]...)
		out, err := e.Forward(&tensor.Tensor{Shape: shape, Data: x.Data[lo*per : hi*per]})
		if err != nil {
			return nil, fmt.Errorf("samples %d to %d: %w", lo, hi-1, err)
		}
		for i, o := range out {
			if len(o.Shape) == 0 || o.Shape[0] != hi-lo {
				return nil, fmt.Errorf("output %d has shape %v for a batch of %d", i, o.Shape, hi-lo)
			}
			if res[i] == nil {
				res[i] = &tensor.Tensor{Shape: append([]int{n}, o.Shape[1:]...), Data: make([]float32, 0, n*(o.Len()/(hi-lo)))}
			}
			res[i].Data = append(res[i].Data, o.Data...)
		}
	}
	for i, r := range res {
		if tensor.Numel(r.Shape) != len(r.Data) {
			return nil, fmt.Errorf("output %d: per-sample shape changed between batches", i)
		}
	}
	return res, nil
}
