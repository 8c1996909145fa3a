// Package ortrun runs ONNX models in ONNX Runtime for tests: it drives the
// Node harness tools/ort/run.js (onnxruntime-node, installed with
// `npm install --ignore-scripts` in tools/ort) on .npy inputs and outputs.
// Tests of any package call Find and skip when the harness is missing, so
// the suite passes without Node while CI, which installs it, compares.
package ortrun

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Job runs Model on the .npy file Input and writes one .npy file per
// model output to Outputs.
type Job struct {
	Model   string   `json:"model"`
	Input   string   `json:"input"`
	Outputs []string `json:"outputs"`
}

// Harness is a located node binary and run.js.
type Harness struct {
	Node, Script string
}

// Find locates the harness: the directory LOWBIT_ORT_DIR, or tools/ort in
// the module root above the working directory. The error says what is
// missing and how to install it.
func Find() (*Harness, error) {
	dir := os.Getenv("LOWBIT_ORT_DIR")
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			return nil, fmt.Errorf("ONNX Runtime harness not found (%v): set LOWBIT_ORT_DIR to lowbit's tools/ort directory, or run inside the lowbit repository", err)
		}
		dir = filepath.Join(root, "tools", "ort")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("node is not installed")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "onnxruntime-node", "package.json")); err != nil {
		return nil, fmt.Errorf("onnxruntime-node is not installed in %s (run: cd %s && npm install --ignore-scripts)", dir, dir)
	}
	script, err := filepath.Abs(filepath.Join(dir, "run.js"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("harness script: %w", err)
	}
	return &Harness{Node: node, Script: script}, nil
}

// moduleRoot returns the nearest directory above the working directory
// holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Run executes the jobs in one Node process; tmp holds the job list. The
// error carries the harness output.
func (h *Harness) Run(ctx context.Context, tmp string, jobs []Job) error {
	spec := filepath.Join(tmp, "ort-jobs.json")
	b, err := json.Marshal(jobs)
	if err != nil {
		return err
	}
	if err := os.WriteFile(spec, b, 0o644); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, h.Node, h.Script, "--jobs", spec).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ONNX Runtime (%s): %v\n%s", h.Script, err, out)
	}
	return nil
}
