// Package kernels holds lowbit's hot loops: single-precision GEMM with all
// transpose variants, im2col/col2im for convolution, and the shared worker
// pool that parallelizes them over GOMAXPROCS cores. It knows nothing about
// graphs or quantization; ops call it so that its implementation can be
// replaced by SIMD code without touching them.
package kernels
