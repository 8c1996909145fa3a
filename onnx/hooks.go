package onnx

import (
	"fmt"
	"strings"

	"lowbit/onnx/onnxpb"
)

// Hooks for packages that export their ops as several ONNX nodes (quant).

// lowbitMarked reports whether a node carries a lowbit doc_string mark
// ("lowbit:…"): such nodes start or belong to a form that their importer
// recognizes, so import-time constant folding leaves them alone (a
// quantized weight is a constant, but its marker node must rebuild the
// quantizer).
func lowbitMarked(n *onnxpb.NodeProto) bool { return strings.HasPrefix(n.DocString, "lowbit:") }

// ReplaceInitializer replaces the initializer already written for
// parameter name by t (renamed to name), so that an exporter can store a
// parameter in another form: a quantizer exporter writes its weight's
// integer codes or quantized values in place of the float weight. The
// replacement keeps the original doc_string (the parameter kind) unless t
// sets its own. It fails when no initializer has that name.
func (e *Encoder) ReplaceInitializer(name string, t *onnxpb.TensorProto) error {
	for i, old := range e.gp.Initializer {
		if old.Name != name {
			continue
		}
		t.Name = name
		if t.DocString == "" {
			t.DocString = old.DocString
		}
		e.gp.Initializer[i] = t
		return nil
	}
	return fmt.Errorf("no initializer named %q to replace", name)
}
