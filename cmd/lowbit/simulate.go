package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"lowbit/data"
	"lowbit/internal/atomicfile"
	"lowbit/onnx"
	"lowbit/sim"
)

var simulateCmd = newSimulateCmd()

func init() { rootCmd.AddCommand(simulateCmd) }

func newSimulateCmd() *cobra.Command {
	var (
		net, dataSpec, split, accels, configPath, plotPath string
		ratio                                              float64
		batch, calibBatches                                int
		asJSON, highway, dumpConfig                        bool
	)
	cmd := &cobra.Command{
		Use:   "simulate --net alexnet|vgg16|resnet18|model.onnx [--data D] [--accel olaccel,zena16,...]",
		Short: "Estimate energy and cycles on OLAccel, ZeNA and Eyeriss-style accelerators",
		Long: `simulate runs an analytic per-layer model of cycles and energy (DRAM, global
buffer, local registers and network, dense and outlier MACs) for OLAccel and
its ZeNA and Eyeriss baselines. --net takes a built-in ImageNet workload
(` + strings.Join(sim.BuiltinNames(), ", ") + `) or an ONNX model; with --data
the model's zero and outlier statistics are measured on calibration batches.
The architecture and energy parameters come from --config (default: the
embedded arch.json; print it with --dump-config). See docs/simulator.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			if dumpConfig {
				_, err := out.Write(sim.DefaultConfigJSON())
				return err
			}
			if net == "" {
				return fmt.Errorf("--net is required (%s, or a model.onnx)", strings.Join(sim.BuiltinNames(), ", "))
			}
			cfg := sim.DefaultConfig()
			if configPath != "" {
				var err error
				if cfg, err = sim.LoadConfig(configPath); err != nil {
					return err
				}
			}
			var names []string
			for _, a := range strings.Split(accels, ",") {
				if a = strings.TrimSpace(a); a != "" {
					if _, err := cfg.Accel(a); err != nil {
						return fmt.Errorf("--accel: %w", err)
					}
					names = append(names, a)
				}
			}
			w, err := simWorkload(cmd.Context(), net, dataSpec, split, ratio, batch, calibBatches)
			if err != nil {
				return err
			}
			rep, err := sim.Run(cfg, w, names, sim.Options{Highway: highway})
			if err != nil {
				return err
			}
			if plotPath != "" {
				var buf bytes.Buffer
				if err := rep.WriteSVG(&buf); err != nil {
					return err
				}
				if err := atomicfile.WriteFile(plotPath, buf.Bytes()); err != nil {
					return fmt.Errorf("--plot: %w", err)
				}
				if !asJSON {
					fmt.Fprintf(logw(), "wrote %s\n", plotPath)
				}
			}
			if asJSON {
				return printJSON(out, rep)
			}
			return rep.WriteText(out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&net, "net", "", "built-in network ("+strings.Join(sim.BuiltinNames(), ", ")+") or an ONNX model file")
	f.StringVar(&dataSpec, "data", "", "calibration data set for an ONNX model (mnist, fashion-mnist, cifar10 or a path)")
	f.StringVar(&split, "split", "train", "calibration split")
	f.IntVar(&batch, "batch", 32, "calibration batch size")
	f.IntVar(&calibBatches, "calib-batches", 8, "calibration batches")
	f.StringVar(&accels, "accel", "", "comma-separated designs (default: all in the config: olaccel,olaccel8,zena16,zena8,eyeriss16,eyeriss8)")
	f.Float64Var(&ratio, "outlier-ratio", sim.DefaultOutlierRatio, "outlier ratio r: the largest fraction r of non-zero weights and activations kept in high precision")
	f.StringVar(&configPath, "config", "", "architecture JSON (default: the embedded arch.json)")
	f.BoolVar(&asJSON, "json", false, "print only JSON on stdout")
	f.StringVar(&plotPath, "plot", "", "write a stacked energy-breakdown chart (SVG) to this file")
	f.BoolVar(&highway, "highway", false, "keep residual skip paths and sums in high precision (precision highway)")
	f.BoolVar(&dumpConfig, "dump-config", false, "print the default architecture JSON and exit")
	return cmd
}

// simWorkload returns a built-in workload or one built from an ONNX model,
// with statistics measured on calibration data when dataSpec is set.
func simWorkload(ctx context.Context, net, dataSpec, split string, ratio float64, batch, nb int) (*sim.Workload, error) {
	if !(ratio >= 0 && ratio <= 1) {
		return nil, fmt.Errorf("--outlier-ratio %g: want a fraction in [0, 1]", ratio)
	}
	if !strings.HasSuffix(strings.ToLower(net), ".onnx") {
		if dataSpec != "" {
			return nil, fmt.Errorf("--data applies to an ONNX model; %q is a built-in workload with documented statistics", net)
		}
		w, err := sim.Builtin(net)
		if err != nil {
			return nil, fmt.Errorf("--net: %w", err)
		}
		return w.WithOutlierRatio(ratio)
	}
	g, err := onnx.Load(net)
	if err != nil {
		return nil, err
	}
	if dataSpec == "" {
		fmt.Fprintf(logw(), "simulate: no --data: %s runs without measured zeros (dense activations and weights)\n", net)
		w, err := sim.FromGraph(g, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", net, err)
		}
		return w.WithOutlierRatio(ratio)
	}
	ds, err := data.Open(dataSpec, split)
	if err != nil {
		return nil, err
	}
	if err := checkInput(g, ds, net); err != nil {
		return nil, err
	}
	l, err := data.NewEvalLoader(ds, batch)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	stats, err := sim.CollectStats(ctx, g, l.Inputs(ctx), sim.CollectOptions{OutlierRatio: ratio, MaxBatches: nb})
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", net, dataSpec, err)
	}
	w, err := sim.FromGraph(g, stats)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", net, err)
	}
	w.OutlierRatio = ratio
	return w, nil
}
