// Package npy reads and writes NumPy .npy files holding float32 arrays,
// the plain interchange format of `lowbit run` for comparing lowbit with
// other runtimes. The header (format versions 1, 2 and 3) is parsed by hand:
// only C-order float32 arrays are accepted, little- or big-endian, and any
// other dtype, Fortran order, or a data section whose length does not match
// the shape is a clear error. Files are written as version 1 (version 2 for
// huge headers), little-endian, atomically.
package npy
