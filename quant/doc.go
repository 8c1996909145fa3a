// Package quant owns lowbit's quantization: the quantizers as algorithms
// over float32 slices (uniform grids with min-max, percentile, MSE and KL
// calibrators; WEQ weight clustering and log-domain activations; OLAQ
// outlier-aware grids; binary16; SQNR), all behind the Quantizer interface,
// and the graph side built on them. FakeQuant is the graph op that wraps a
// Quantizer (straight-through backward, calibration by observation, refit
// on demand for fine-tuning); FoldBatchNorm and Insert are the passes that
// fold BatchNorm into Conv/Gemm and place quantizers per a Policy, and
// FitWeights, Calibrate and Report fit, calibrate and describe them. The
// package registers the ONNX forms of its quantizers with package onnx
// (QuantizeLinear/DequantizeLinear for uniform grids, exact quantized
// weights and small standard-op subgraphs otherwise; see onnx.go), so
// quantized models are ordinary ONNX files that lowbit reloads exactly.
// For quantization-aware training, InsertQAT places FakeQuant or learned
// DuQ quantizers (duq.go; ONNX form in duq_onnx.go) under a QATPolicy
// that adds the precision highway (highway.go) and negative padding, and
// SetBits re-targets them for progressive schedules. With per-channel
// weights (Policy.PerChannel) a DuQ weight quantizer has α and γ of shape
// [Cout], initialized channel by channel at max|w| of the channel (an
// extension of methods.md §6, which has one range and scale per tensor,
// initialized at 0.9·max|w|); activations stay per tensor.
package quant
