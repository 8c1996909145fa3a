// Package graph is lowbit's intermediate representation: typed values
// (tensors with shapes, batch dimension -1) flowing between nodes that each
// carry an Op. Parameters are named values whose names are stable and become
// ONNX initializer names. An Executor runs the graph forward (inference or
// training mode) and backward, accumulating parameter gradients; it draws
// every intermediate tensor from one size-keyed buffer pool and recycles
// values as soon as nothing needs them (ops declare what their backward
// reads through GradReader; set KeepValues to keep everything), and lets
// ops that implement Fuser (at inference) or TrainFuser (in training)
// absorb their successors.
// Passes (BatchNorm folding, quantizer insertion) rewrite the node list
// through the helpers here. The package knows no concrete op.
package graph
