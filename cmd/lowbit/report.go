package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"lowbit/internal/atomicfile"
	"lowbit/report"
)

func init() { rootCmd.AddCommand(newReportCmd()) }

func newReportCmd() *cobra.Command {
	var title, out string
	cmd := &cobra.Command{
		Use:   "report [--title T] --out report.html PATH...",
		Short: "Write one HTML page (tables, charts) from the --json results of lowbit commands",
		Long: `report reads the --json outputs of lowbit train, eval, quantize, finetune,
simulate, bench and demo (each PATH is a JSON file or a directory scanned
recursively for *.json) and writes one self-contained HTML page: a summary
table of all runs, training curves, per-layer quantization tables with SQNR
charts, fine-tuning phases and residual-stream errors, accelerator energy
charts and benchmark throughput. When NAME.cmd sits next to NAME.json (as
the experiment scripts write it), the page shows that command line. Files
that are not lowbit results or not valid JSON are listed in the page and on
stderr with the reason; they do not stop the report.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			rep, err := report.Load(title, args...)
			if err != nil {
				return err
			}
			if err := rep.Check(); err != nil {
				return err
			}
			for _, s := range rep.Skipped {
				fmt.Fprintf(cmd.ErrOrStderr(), "report: skipped %s: %s\n", s.Path, s.Reason)
			}
			if err := rep.WriteFile(out); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%d runs, %d files skipped)\n", out, len(rep.Runs), len(rep.Skipped))
			return nil
		},
	}
	cmd.Flags().StringVar(&title, "title", report.DefaultTitle, "page title")
	cmd.Flags().StringVar(&out, "out", "", "HTML file to write")
	return cmd
}

// demoStep is one command the demo ran: its result (the command's --json
// value) and the command line that reproduces it.
type demoStep struct {
	name, command string
	result        any
}

// writeDemoReport writes each step's JSON and command line as
// dir/NAME.json and dir/NAME.cmd (the layout of the experiment scripts,
// so that lowbit report dir rebuilds the page), the demo table as
// dir/demo.json, and dir/report.html built from these results. It returns
// the report's path.
func writeDemoReport(dir string, steps []demoStep, rows []demoRow, demoCmd string) (string, error) {
	rep := report.New("lowbit demo: LeNet-5 on MNIST, float and quantized")
	rep.Sources = []string{dir}
	reportPath := filepath.Join(dir, "report.html")
	all := append(steps[:len(steps):len(steps)], demoStep{name: "demo", command: demoCmd, result: map[string]any{"rows": rows, "report": reportPath}})
	for _, s := range all {
		path := filepath.Join(dir, s.name+".json")
		var buf bytes.Buffer
		if err := printJSON(&buf, s.result); err != nil {
			return "", fmt.Errorf("demo report: %s: %w", path, err)
		}
		if err := atomicfile.WriteFile(path, buf.Bytes()); err != nil {
			return "", fmt.Errorf("demo report: %w", err)
		}
		if err := atomicfile.WriteFile(strings.TrimSuffix(path, ".json")+".cmd", []byte(s.command+"\n")); err != nil {
			return "", fmt.Errorf("demo report: %w", err)
		}
		if err := rep.AddResult(path, s.command, s.result); err != nil {
			return "", fmt.Errorf("demo report: %w", err)
		}
	}
	if err := rep.WriteFile(reportPath); err != nil {
		return "", fmt.Errorf("demo report: %w", err)
	}
	return reportPath, nil
}

// shellQuote quotes s for a POSIX shell when it holds anything but plain
// path characters.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
