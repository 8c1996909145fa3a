// Package qat holds lowbit's quantization-aware training (methods.md §5–7),
// built on packages train and quant. A Config describes a recipe —
// progressive bit-widths (activations, then weights), BN-last ("BLast")
// phases with frozen weights, PROFIT (AIWQ measured by AIWQSampler, then
// stages freezing the least stable convolutions), teacher–student
// distillation, weight EMA and a cosine schedule restarted per phase — and
// Plan expands it into phases. A Runner runs the phases on a graph with
// DuQ or FakeQuant quantizers (placed by Quantize), logs every epoch,
// writes a checkpoint after each one and resumes from it. ResidualError
// measures the per-block error of the residual stream against the float
// network, the analysis behind the precision highway.
package qat
