// Package graph is lowbit's intermediate representation: typed values
// (tensors with shapes, batch dimension -1) flowing between nodes that each
// carry an Op. Parameters are named values whose names are stable and become
// ONNX initializer names. An Executor runs the graph forward (inference or
// training mode) and backward, caching what backward needs per node and
// accumulating parameter gradients. Passes (BatchNorm folding, quantizer
// insertion) rewrite the node list through the helpers here. The package
// knows no concrete op.
package graph
