package onnx

import (
	"bytes"
	"path/filepath"
	"testing"

	"lowbit/graph"
	"lowbit/models"
	"lowbit/tensor"
)

func TestAdhocZoo(t *testing.T) {
	for _, name := range models.Names() {
		g, err := models.Build(name, models.Config{InC: 3, H: 32, W: 32, Classes: 10, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		b := mustMarshal(t, g)
		g2, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sameGraph(t, g, g2)
		if !bytes.Equal(b, mustMarshal(t, g2)) {
			t.Errorf("%s: bytes differ", name)
		}
		if err := Save(g, filepath.Join("/tmp/onnxwork/files", "zoo_"+name+".onnx")); err != nil {
			t.Fatal(err)
		}
		x := tensor.New(1, 3, 32, 32)
		x.RandNormal(graph.RNG(1), 1)
		e1, _ := graph.NewExecutor(g)
		e2, _ := graph.NewExecutor(g2)
		o1, err := e1.Forward(x)
		if err != nil {
			t.Fatal(err)
		}
		o2, _ := e2.Forward(x)
		for i := range o1[0].Data {
			if o1[0].Data[i] != o2[0].Data[i] {
				t.Fatalf("%s: outputs differ", name)
			}
		}
		t.Logf("%s: %d bytes, %d nodes", name, len(b), len(g.Nodes))
	}
}
