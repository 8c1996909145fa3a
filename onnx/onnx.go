package onnx

import (
	"fmt"
	"os"

	"google.golang.org/protobuf/proto"

	"lowbit/graph"
	"lowbit/internal/atomicfile"
	"lowbit/onnx/onnxpb"
)

// Marshal encodes g as an ONNX model: opset 17, IR version 8, producer
// "lowbit", parameters as FLOAT initializers with their kinds in the
// doc_string, graph.Meta as metadata_props. The encoding is deterministic.
func Marshal(g *graph.Graph) ([]byte, error) {
	m, err := ToModel(g)
	if err != nil {
		return nil, err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("export graph %s: encode protobuf: %w", g.Name, err)
	}
	return b, nil
}

// Unmarshal decodes an ONNX model into a graph. Files written by Marshal
// load back with the same node, value and parameter names, kinds and data.
func Unmarshal(data []byte) (*graph.Graph, error) {
	m := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("decode ONNX protobuf: %w", err)
	}
	g, err := FromModel(m)
	if err != nil {
		return nil, fmt.Errorf("import ONNX graph %q: %w", m.GetGraph().GetName(), err)
	}
	return g, nil
}

// Save writes g to path atomically: to a temporary file in the same
// directory, synced, then renamed over path.
func Save(g *graph.Graph, path string) error {
	b, err := Marshal(g)
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, b); err != nil {
		return fmt.Errorf("save graph %s: %w", g.Name, err)
	}
	return nil
}

// Load reads an ONNX model file (see Unmarshal).
func Load(path string) (*graph.Graph, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	g, err := Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return g, nil
}

// Clone returns an independent copy of g made through its ONNX form
// (weights, attributes and quantizer state included).
func Clone(g *graph.Graph) (*graph.Graph, error) {
	b, err := Marshal(g)
	if err != nil {
		return nil, fmt.Errorf("clone: %w", err)
	}
	c, err := Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("clone: %w", err)
	}
	return c, nil
}
