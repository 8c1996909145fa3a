package onnx

import (
	"context"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"lowbit/graph"
	"lowbit/internal/ortrun"
	"lowbit/models"
	"lowbit/npy"
	"lowbit/tensor"
)

// ONNX Runtime comparisons through Node (internal/ortrun): they skip when
// node or onnxruntime-node is missing (cd tools/ort && npm install
// --ignore-scripts installs it).

// ortHarness returns the harness or skips the test.
func ortHarness(t *testing.T) *ortrun.Harness {
	t.Helper()
	h, err := ortrun.Find()
	if err != nil {
		t.Skipf("ONNX Runtime comparisons skipped: %v", err)
	}
	return h
}

// ortCase is one model run by both lowbit and ONNX Runtime.
type ortCase struct {
	name  string
	g     *graph.Graph // lowbit's graph (its output is the reference)
	file  string       // the ONNX file ONNX Runtime runs
	input string       // .npy input
	torch string       // optional PyTorch output .npy
}

// compareWithORT runs the cases in ONNX Runtime and checks that its outputs
// match lowbit's (and PyTorch's where given) within fixtureTol relative
// max error.
func compareWithORT(t *testing.T, cases []ortCase) {
	t.Helper()
	dir := t.TempDir()
	var jobs []ortrun.Job
	for i, c := range cases {
		var outs []string
		for j := range c.g.Outputs {
			outs = append(outs, filepath.Join(dir, fmt.Sprintf("%d_%d.npy", i, j)))
		}
		jobs = append(jobs, ortrun.Job{Model: c.file, Input: c.input, Outputs: outs})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := ortHarness(t).Run(ctx, dir, jobs); err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	table.WriteString("\n| model | vs lowbit: max abs | rel | vs PyTorch: rel |\n|---|---|---|---|\n")
	for i, c := range cases {
		x, err := npy.ReadFile(c.input)
		if err != nil {
			t.Fatal(err)
		}
		e, err := graph.NewExecutor(c.g)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.Forward(x)
		if err != nil {
			t.Fatalf("%s: lowbit forward: %v", c.name, err)
		}
		for j, o := range got {
			ref, err := npy.ReadFile(jobs[i].Outputs[j])
			if err != nil {
				t.Fatal(err)
			}
			abs, rel := compareOutputs(t, c.name, o, ref)
			torchRel := "-"
			if c.torch != "" && j == 0 {
				want, err := npy.ReadFile(c.torch)
				if err != nil {
					t.Fatal(err)
				}
				_, r := compareOutputs(t, c.name+" (ONNX Runtime vs PyTorch)", ref, want)
				torchRel = fmt.Sprintf("%.3g", r)
			}
			fmt.Fprintf(&table, "| %s | %.3g | %.3g | %s |\n", c.name, abs, rel, torchRel)
			if rel > fixtureTol || math.IsNaN(rel) {
				t.Errorf("%s output %d: lowbit vs ONNX Runtime max abs %.3g, relative %.3g > %g", c.name, j, abs, rel, fixtureTol)
			}
		}
	}
	t.Log(table.String())
}

// TestORTFixtures runs the torchvision fixtures in ONNX Runtime, both the
// files exported by PyTorch and lowbit's re-export of the imported graphs.
func TestORTFixtures(t *testing.T) {
	ortHarness(t)
	dir, err := filepath.Abs(fixtureDir())
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	var cases []ortCase
	for _, f := range loadManifest(t, dir).Models {
		g, err := Load(filepath.Join(dir, f.Name+".onnx"))
		if err != nil {
			t.Fatal(err)
		}
		in, ref := filepath.Join(dir, f.Input), filepath.Join(dir, f.Output)
		re := filepath.Join(tmp, f.Name+".lowbit.onnx")
		if err := Save(g, re); err != nil {
			t.Fatalf("%s: re-export: %v", f.Name, err)
		}
		cases = append(cases,
			ortCase{name: f.Name, g: g, file: filepath.Join(dir, f.Name+".onnx"), input: in, torch: ref},
			ortCase{name: f.Name + " (lowbit export)", g: g, file: re, input: in, torch: ref})
	}
	compareWithORT(t, cases)
}

// randomizeBN gives every BatchNorm non-trivial statistics and affine
// parameters, so that exported BatchNorm nodes are checked for real.
func randomizeBN(g *graph.Graph, seed int64) {
	rng := graph.RNG(seed)
	for _, p := range g.Params() {
		switch p.Kind {
		case graph.BNScale:
			p.Data.RandUniform(rng, 0.5, 1.5)
		case graph.BNBias, graph.BNMean:
			p.Data.RandNormal(rng, 0.2)
		case graph.BNVar:
			p.Data.RandUniform(rng, 0.5, 2)
		}
	}
}

// TestORTExports runs files written by lowbit — every zoo model and the
// single-op graphs of the round-trip tests — in ONNX Runtime.
func TestORTExports(t *testing.T) {
	ortHarness(t)
	dir := t.TempDir()
	var cases []ortCase
	addCase := func(name string, g *graph.Graph) {
		file := filepath.Join(dir, name+".onnx")
		if err := Save(g, file); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		shape := slices.Clone(g.Inputs[0].Shape)
		shape[0] = 2
		x := tensor.New(shape...)
		x.RandNormal(graph.RNG(int64(len(cases)+1)), 1)
		in := filepath.Join(dir, name+".x.npy")
		if err := npy.WriteFile(in, x); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, ortCase{name: name, g: g, file: file, input: in})
	}
	for i, name := range models.Names() {
		cfg := models.Config{InC: 3, H: 32, W: 32, Classes: 10, Seed: int64(i + 1)}
		if name == "lenet5" {
			cfg.InC, cfg.H, cfg.W = 1, 28, 28
		}
		g, err := models.Build(name, cfg)
		if err != nil {
			t.Fatal(err)
		}
		randomizeBN(g, int64(i+100))
		addCase("zoo_"+name, g)
	}
	gs := opGraphs(t)
	gs["mixed"] = mixedGraph(t)
	for _, name := range slices.Sorted(maps.Keys(gs)) {
		addCase("op_"+name, gs[name])
	}
	compareWithORT(t, cases)
}
