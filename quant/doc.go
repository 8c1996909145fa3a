// Package quant owns lowbit's quantizers as pure algorithms over float32
// slices: uniform grids (symmetric, unsigned, asymmetric with ONNX
// QuantizeLinear semantics, per tensor or per output channel) and their
// calibrators (min-max, percentile, MSE-optimal clipping, KL entropy), the
// weighted-entropy quantizers of methods.md §2–3 (WEQ weight clustering and
// log-domain activations) and the outlier-aware OLAQ of §4 with its binary16
// conversion. Every quantizer implements Quantizer (Forward, straight-through
// Mask, Levels, Describe), so a graph op can wrap it; SQNR and Describe feed
// the per-layer report. The package depends only on the standard library and
// knows no graph: the insertion pass, ops and CLI build on it.
package quant
