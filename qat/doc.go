// Package qat holds lowbit's quantization-aware training recipes, built on
// packages train and quant: progressive bit-width, BN-last ("BLast")
// stabilization phases, PROFIT (freezing layers in the order of their
// AIWQ metric), teacher–student distillation, weight EMA, and the
// precision-highway analysis of residual-stream error (methods.md §5–7).
package qat
