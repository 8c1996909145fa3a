// Package train runs training and evaluation loops over lowbit graphs:
// mini-batch SGD with a learning-rate schedule, cross-entropy with label
// smoothing and optional distillation from a teacher graph, top-1/top-5
// metrics, progress reporting, weight EMA, and checkpoints that let an
// interrupted run resume. It takes a context and stops cleanly between
// steps when the context is cancelled.
package train
