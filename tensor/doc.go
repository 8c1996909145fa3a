// Package tensor owns lowbit's dense float32 tensors: a shape and a flat,
// row-major (NCHW for images) slice of values. It offers construction,
// reshaping views, copying and small element-wise and reduction helpers.
// It knows nothing about graphs or layers; everything above builds on it.
package tensor
