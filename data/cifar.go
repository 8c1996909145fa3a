package data

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// CIFAR-10 binary layout: each record is one label byte followed by a
// 32×32 image stored as three 1024-byte planes (R, G, B), i.e. CHW.
const (
	cifarSide   = 32
	cifarImage  = 3 * cifarSide * cifarSide
	cifarRecord = 1 + cifarImage
)

// CIFAR10Classes are the class names in label order.
var CIFAR10Classes = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// cifarTrainFiles and cifarTestFiles are the file names of each split.
var (
	cifarTrainFiles = []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"}
	cifarTestFiles  = []string{"test_batch.bin"}
)

// ReadCIFAR10 reads CIFAR-10 binary batch files and returns their images
// (N×3×32×32) and labels, in file order.
func ReadCIFAR10(paths ...string) (pix []uint8, labels []int, err error) {
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, fmt.Errorf("data: %w", err)
		}
		if len(raw) == 0 || len(raw)%cifarRecord != 0 {
			return nil, nil, fmt.Errorf("data: %s: truncated or not a CIFAR-10 batch: %d bytes is not a positive multiple of the %d-byte record", p, len(raw), cifarRecord)
		}
		n := len(raw) / cifarRecord
		old := len(pix)
		pix = slices.Grow(pix, n*cifarImage)[:old+n*cifarImage]
		dst := pix[old:]
		for i := range n {
			rec := raw[i*cifarRecord : (i+1)*cifarRecord]
			if rec[0] >= 10 {
				return nil, nil, fmt.Errorf("data: %s: record %d has label %d, CIFAR-10 labels are 0..9", p, i, rec[0])
			}
			labels = append(labels, int(rec[0]))
			copy(dst[i*cifarImage:], rec[1:])
		}
	}
	return pix, labels, nil
}

// cifarDir returns dir or its cifar-10-batches-bin subfolder (the layout of
// the official tarball), whichever holds CIFAR-10 batch files, or "".
func cifarDir(dir string) string {
	for _, d := range []string{dir, filepath.Join(dir, "cifar-10-batches-bin")} {
		for _, f := range []string{cifarTrainFiles[0], cifarTestFiles[0]} {
			if fileExists(filepath.Join(d, f)) {
				return d
			}
		}
	}
	return ""
}

// LoadCIFAR10 reads the train (data_batch_1..5.bin) or test (test_batch.bin)
// split of a CIFAR-10 binary folder (or its cifar-10-batches-bin subfolder).
// It uses the published CIFAR-10 mean/std.
func LoadCIFAR10(dir, split string) (*Dataset, error) {
	d := cifarDir(dir)
	if d == "" {
		return nil, fmt.Errorf("data: %s: no CIFAR-10 binary batches (data_batch_1.bin ... test_batch.bin); download https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz and extract it there", dir)
	}
	files := cifarTrainFiles
	if split == "test" {
		files = cifarTestFiles
	}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = filepath.Join(d, f)
		if !fileExists(paths[i]) {
			return nil, fmt.Errorf("data: CIFAR-10 %s split in %s: missing %s", split, d, f)
		}
	}
	pix, labels, err := ReadCIFAR10(paths...)
	if err != nil {
		return nil, err
	}
	names := CIFAR10Classes
	if b, err := os.ReadFile(filepath.Join(d, "batches.meta.txt")); err == nil {
		if f := strings.Fields(string(b)); len(f) == 10 {
			names = f
		}
	}
	return &Dataset{Name: "cifar10", Split: split, C: 3, H: cifarSide, W: cifarSide, Classes: 10,
		ClassNames: append([]string(nil), names...), Pixels: pix, Labels: labels,
		Mean: append([]float32(nil), CIFAR10Mean...), Std: append([]float32(nil), CIFAR10Std...)}, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
