// Package ops implements lowbit's operators, each with shape inference,
// forward and backward, and each checked against finite differences. Op
// structs carry only attributes (named as in ONNX); inputs follow ONNX input
// order, so export and import map one to one. Hot loops call package
// kernels. Loss functions (cross-entropy with label smoothing, soft-target
// cross-entropy for distillation) are plain functions returning the loss and
// its gradient with respect to the logits.
package ops
