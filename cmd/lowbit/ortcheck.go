package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"lowbit/data"
	"lowbit/graph"
	"lowbit/internal/ortrun"
	"lowbit/npy"
	"lowbit/tensor"
)

// ortCheckResult is the JSON printed by `lowbit ortcheck --json`.
type ortCheckResult struct {
	Model         string  `json:"model"`
	Data          string  `json:"data"`
	Images        int     `json:"images"`
	LowbitTop1    float64 `json:"lowbit_top1"`
	ORTTop1       float64 `json:"ort_top1"`
	Agreement     float64 `json:"top1_agreement"`
	MaxLogitDiff  float64 `json:"max_logit_diff"`
	MeanLogitDiff float64 `json:"mean_logit_diff"`
	FileBytes     int64   `json:"file_bytes"`
}

func init() { rootCmd.AddCommand(newORTCheckCmd()) }

// newORTCheckCmd returns the `lowbit ortcheck` command (fresh flags per
// call, for tests).
func newORTCheckCmd() *cobra.Command {
	var model, dataSpec, split string
	var limit, batch int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ortcheck --model m.onnx --data D",
		Short: "Run a (quantized) model in ONNX Runtime and in lowbit on a dataset and compare",
		Long: "Evaluate a model file in lowbit and in ONNX Runtime (through Node and onnxruntime-node in\n" +
			"tools/ort; install with `npm ci --ignore-scripts` there) on the same images and report top-1\n" +
			"of both, their top-1 agreement and the largest logit difference.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if model == "" {
				return fmt.Errorf("--model is required")
			}
			if batch <= 0 {
				return fmt.Errorf("--batch %d must be positive", batch)
			}
			h, err := ortrun.Find()
			if err != nil {
				return err
			}
			g, ds, err := loadModelData(model, dataSpec, split, limit)
			if err != nil {
				return err
			}
			res, err := ortCompare(cmd, h, g, ds, model, batch)
			if err != nil {
				return err
			}
			res.Data = dataSpec
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s on %s (%d images, file %d bytes): lowbit top-1 %.2f%%, ONNX Runtime top-1 %.2f%%, agreement %.3f%%, max logit diff %.3g (mean %.3g)\n",
				model, dataSpec, res.Images, res.FileBytes, 100*res.LowbitTop1, 100*res.ORTTop1, 100*res.Agreement, res.MaxLogitDiff, res.MeanLogitDiff)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "ONNX model file (float or quantized)")
	f.StringVar(&dataSpec, "data", "mnist", "dataset: mnist, fashion-mnist, or a path")
	f.StringVar(&split, "split", "test", "dataset split")
	f.IntVar(&limit, "limit", 0, "use only the first N images (0 = all)")
	f.IntVar(&batch, "batch", 500, "images per batch file")
	f.BoolVar(&asJSON, "json", false, "print only JSON on stdout")
	return cmd
}

// ortCompare evaluates g in lowbit batch by batch, writes the same batches
// as .npy files, runs them through ONNX Runtime in one Node process and
// compares the logits.
func ortCompare(cmd *cobra.Command, h *ortrun.Harness, g *graph.Graph, ds *data.Dataset, model string, batch int) (*ortCheckResult, error) {
	tmp, err := os.MkdirTemp("", "lowbit-ortcheck-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	e, err := graph.NewExecutor(g)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(model)
	if err != nil {
		return nil, err
	}
	res := &ortCheckResult{Model: model, FileBytes: st.Size()}
	var jobs []ortrun.Job
	var ours []*tensor.Tensor
	var labels [][]int
	for lo := 0; lo < ds.N(); lo += batch {
		idx := make([]int, 0, batch)
		for i := lo; i < min(lo+batch, ds.N()); i++ {
			idx = append(idx, i)
		}
		x, y, err := ds.Batch(idx...)
		if err != nil {
			return nil, err
		}
		out, err := e.Forward(x)
		if err != nil {
			return nil, fmt.Errorf("lowbit forward: %w", err)
		}
		ours = append(ours, out[0].Clone())
		labels = append(labels, y)
		in := filepath.Join(tmp, fmt.Sprintf("x%d.npy", len(jobs)))
		if err := npy.WriteFile(in, x); err != nil {
			return nil, err
		}
		jobs = append(jobs, ortrun.Job{Model: model, Input: in, Outputs: []string{filepath.Join(tmp, fmt.Sprintf("y%d.npy", len(jobs)))}})
	}
	if err := h.Run(cmd.Context(), tmp, jobs); err != nil {
		return nil, fmt.Errorf("ONNX Runtime on %s: %w", model, err)
	}
	var agree, okOurs, okORT int
	var sumDiff float64
	var nLogits int
	for b, job := range jobs {
		theirs, err := npy.ReadFile(job.Outputs[0])
		if err != nil {
			return nil, err
		}
		mine := ours[b]
		if theirs.Len() != mine.Len() {
			return nil, fmt.Errorf("ONNX Runtime output %v, lowbit %v", theirs.Shape, mine.Shape)
		}
		k := mine.Len() / len(labels[b])
		for i, lab := range labels[b] {
			a := argmax(mine.Data[i*k : (i+1)*k])
			o := argmax(theirs.Data[i*k : (i+1)*k])
			if a == o {
				agree++
			}
			if a == lab {
				okOurs++
			}
			if o == lab {
				okORT++
			}
		}
		for i, v := range mine.Data {
			d := math.Abs(float64(v - theirs.Data[i]))
			res.MaxLogitDiff = math.Max(res.MaxLogitDiff, d)
			sumDiff += d
			nLogits++
		}
	}
	n := float64(ds.N())
	res.Images = ds.N()
	res.LowbitTop1, res.ORTTop1, res.Agreement = float64(okOurs)/n, float64(okORT)/n, float64(agree)/n
	res.MeanLogitDiff = sumDiff / float64(max(nLogits, 1))
	return res, nil
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
