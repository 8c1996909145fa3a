package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"lowbit/data"
	"lowbit/graph"
	"lowbit/onnx"
	"lowbit/train"
)

// printJSON writes v as indented JSON to w.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// logw returns where human-readable progress goes: stderr, so that
// --json output on stdout stays pure.
func logw() io.Writer { return os.Stderr }

// evalSource returns a deterministic, unaugmented source over ds.
func evalSource(ds *data.Dataset, batch int) (train.Source, error) {
	l, err := data.NewEvalLoader(ds, batch)
	if err != nil {
		return nil, err
	}
	return train.Loader{L: l}, nil
}

// checkInput verifies that a model's input fits the dataset's images.
func checkInput(g *graph.Graph, ds *data.Dataset, modelPath string) error {
	if len(g.Inputs) != 1 {
		return fmt.Errorf("%s: model has %d inputs; lowbit expects one image input", modelPath, len(g.Inputs))
	}
	s := g.Inputs[0].Shape
	want := []int{ds.C, ds.H, ds.W}
	if len(s) != 4 {
		return fmt.Errorf("%s: input %q has shape %v, want [N,C,H,W]", modelPath, g.Inputs[0].Name, s)
	}
	for i, d := range want {
		if s[i+1] >= 0 && s[i+1] != d {
			return fmt.Errorf("%s: input %q has shape %v but dataset %s has images %dx%dx%d", modelPath, g.Inputs[0].Name, s, ds.Name, ds.C, ds.H, ds.W)
		}
	}
	return nil
}

// loadModelData loads an ONNX model and a dataset split (its first limit
// images when limit > 0) and checks that the model's input fits the images.
func loadModelData(model, dataSpec, split string, limit int) (*graph.Graph, *data.Dataset, error) {
	g, err := onnx.Load(model)
	if err != nil {
		return nil, nil, err
	}
	ds, err := data.Open(dataSpec, split)
	if err != nil {
		return nil, nil, err
	}
	if limit > 0 && limit < ds.N() {
		ds = ds.Head(limit)
	}
	if err := checkInput(g, ds, model); err != nil {
		return nil, nil, err
	}
	return g, ds, nil
}
