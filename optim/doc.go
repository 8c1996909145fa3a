// Package optim updates graph parameters: SGD (momentum, Nesterov, weight
// decay) and Adam/AdamW with PyTorch semantics over parameter groups
// (DefaultGroups: decayed weights; undecayed biases and BatchNorm affine
// parameters; quantizer parameters at 1 % learning rate), learning-rate
// schedules (cosine with linear warm-up, step, constant), and a weight EMA
// that shadows every parameter including BatchNorm statistics and can be
// swapped into the graph for evaluation. Frozen, state and gradient-less
// parameters are never touched. Optimizer and EMA state export to plain
// structs (StateDict/LoadState) so training can be checkpointed and resumed
// on an identical trajectory.
package optim
