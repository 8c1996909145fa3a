// Package onnx reads and writes lowbit graphs as ONNX models (opset 17,
// IR version 8); the protobuf types live in the generated subpackage onnxpb.
// Export and import are table-driven: RegisterExporter maps a Go op type to
// a function emitting ONNX nodes through an Encoder (other packages, such as
// quant, register their ops this way, possibly as small subgraphs), and
// RegisterImporter maps an ONNX (domain, op type) to a function building
// graph nodes through a Decoder. Parameters become FLOAT initializers whose
// doc_string records the parameter kind, so lowbit files load back exactly;
// for other files (torch.onnx.export, opsets 7 to 18) kinds are inferred
// from the consuming operator, shape computations (Shape, Gather, Concat,
// ... with the batch size kept symbolic) are folded into constants, and
// constant inputs (Clip bounds, Reshape shapes, Pad pads) fold into op
// attributes. docs/onnx.md lists the supported operators. A Conv with a
// non-zero pad value is written as a Pad node marked in its doc_string
// followed by an unpadded Conv, and fused back on import.
package onnx
