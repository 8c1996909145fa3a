package onnx

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lowbit/graph"
	"lowbit/npy"
	"lowbit/ops"
	"lowbit/tensor"
)

// The torchvision fixtures are written by tools/export_fixtures.py:
// torch.onnx.export files with PyTorch's outputs on a fixed input. Set
// LOWBIT_ONNX_FIXTURES to a directory written with --full to run the
// full-size comparison (its table goes to the test log).

// fixtureTol is the bound on max|lowbit − reference| / max|reference|.
const fixtureTol = 1e-4

type fixture struct {
	Name   string `json:"name"`
	Arch   string `json:"arch"`
	Opset  int    `json:"opset"`
	Input  string `json:"input"`
	Output string `json:"output"`
	Params int    `json:"params"`
}

type fixtureManifest struct {
	Full   bool      `json:"full"`
	FoldBN bool      `json:"fold_bn"`
	Models []fixture `json:"models"`
}

func fixtureDir() string {
	if d := os.Getenv("LOWBIT_ONNX_FIXTURES"); d != "" {
		return d
	}
	return filepath.Join("testdata", "torchvision")
}

func loadManifest(t testing.TB, dir string) fixtureManifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatalf("fixtures: %v (regenerate with tools/export_fixtures.py)", err)
	}
	var m fixtureManifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("fixtures manifest: %v", err)
	}
	if len(m.Models) == 0 {
		t.Fatalf("fixtures manifest in %s lists no models", dir)
	}
	return m
}

// runGraph runs g forward in inference mode on x and returns a copy of its
// first output.
func runGraph(t testing.TB, g *graph.Graph, x *tensor.Tensor) *tensor.Tensor {
	t.Helper()
	e, err := graph.NewExecutor(g)
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.Forward(x)
	if err != nil {
		t.Fatalf("forward %s: %v", g.Name, err)
	}
	return out[0].Clone()
}

// compareOutputs returns max |got − want| and that divided by max |want|.
func compareOutputs(t testing.TB, what string, got, want *tensor.Tensor) (maxAbs, rel float64) {
	t.Helper()
	if !tensor.SameShape(got.Shape, want.Shape) {
		t.Fatalf("%s: output shape %v, reference %v", what, got.Shape, want.Shape)
	}
	var ref float64
	for i, w := range want.Data {
		maxAbs = math.Max(maxAbs, math.Abs(float64(got.Data[i])-float64(w)))
		ref = math.Max(ref, math.Abs(float64(w)))
		if math.IsNaN(float64(got.Data[i])) {
			t.Fatalf("%s: output element %d is NaN", what, i)
		}
	}
	return maxAbs, maxAbs / math.Max(ref, 1e-30)
}

func TestTorchvisionFixtures(t *testing.T) {
	dir := fixtureDir()
	m := loadManifest(t, dir)
	var table strings.Builder
	fmt.Fprintf(&table, "\n| model | opset | params | input | max abs err | rel err |\n|---|---|---|---|---|---|\n")
	for _, f := range m.Models {
		t.Run(f.Name, func(t *testing.T) {
			g, err := Load(filepath.Join(dir, f.Name+".onnx"))
			if err != nil {
				t.Fatal(err)
			}
			x, err := npy.ReadFile(filepath.Join(dir, f.Input))
			if err != nil {
				t.Fatal(err)
			}
			want, err := npy.ReadFile(filepath.Join(dir, f.Output))
			if err != nil {
				t.Fatal(err)
			}
			if len(g.Inputs) != 1 || g.Inputs[0].Shape[0] != -1 {
				t.Errorf("inputs %v: want one input with a symbolic batch dimension", g.Inputs)
			}
			got := runGraph(t, g, x)
			abs, rel := compareOutputs(t, f.Name, got, want)
			fmt.Fprintf(&table, "| %s | %d | %d | %v | %.3g | %.3g |\n", f.Name, f.Opset, f.Params, x.Shape, abs, rel)
			if rel > fixtureTol {
				t.Errorf("max abs error %.3g, relative %.3g > %g", abs, rel, fixtureTol)
			}
			if !m.FoldBN {
				checkTrainable(t, g, f)
			}
		})
	}
	t.Log(table.String())
}

// checkTrainable checks that an imported file with BatchNorm nodes keeps
// them with inferred parameter kinds, and that its parameter count matches
// PyTorch's.
func checkTrainable(t *testing.T, g *graph.Graph, f fixture) {
	t.Helper()
	kinds := map[graph.Kind]int{}
	trainable := 0
	for _, p := range g.Params() {
		kinds[p.Kind]++
		if !p.Kind.IsState() {
			trainable += len(p.Data.Data)
		}
	}
	bns := 0
	for _, n := range g.Nodes {
		if _, ok := n.Op.(ops.BatchNorm); ok {
			bns++
			for i, k := range []graph.Kind{graph.BNScale, graph.BNBias, graph.BNMean, graph.BNVar} {
				if p := n.Inputs[i+1].Param; p == nil || p.Kind != k {
					t.Errorf("batchnorm %s input %d: %+v, want a %v parameter", n.Name, i+1, p, k)
				}
			}
		}
	}
	if hasBN := !strings.Contains("alexnet vgg11 squeezenet1_1", f.Arch); hasBN && bns == 0 {
		t.Errorf("no BatchNorm nodes imported (kinds %v)", kinds)
	}
	if kinds[graph.Weight] == 0 {
		t.Errorf("no weight parameters inferred (kinds %v)", kinds)
	}
	if trainable != f.Params {
		t.Errorf("%d trainable parameter values, PyTorch has %d (kinds %v)", trainable, f.Params, kinds)
	}
}
