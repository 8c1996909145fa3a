package npy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"lowbit/tensor"
)

var want23 = []float32{-2.5, -1.5, -0.5, 0.5, 1.5, 2.5}

// TestReadNumPyFiles reads files written by numpy.save (testdata).
func TestReadNumPyFiles(t *testing.T) {
	for _, c := range []struct {
		file  string
		shape []int
		data  []float32
	}{
		{"c_f4.npy", []int{2, 3}, want23},
		{"be_f4.npy", []int{2, 3}, want23},
		{"v2.npy", []int{2, 3}, want23},
		{"scalar.npy", []int{}, []float32{1.5}},
		{"empty.npy", []int{0, 4}, []float32{}},
		{"vec.npy", []int{3}, []float32{1, 2, 3}},
	} {
		x, err := ReadFile(filepath.Join("testdata", c.file))
		if err != nil {
			t.Errorf("%s: %v", c.file, err)
			continue
		}
		if !reflect.DeepEqual(x.Shape, c.shape) || !reflect.DeepEqual(x.Data, c.data) {
			t.Errorf("%s: shape %v data %v, want %v %v", c.file, x.Shape, x.Data, c.shape, c.data)
		}
	}
}

func TestReadErrors(t *testing.T) {
	for file, want := range map[string]string{
		"f8.npy":      `dtype "<f8" is not supported`,
		"i64.npy":     `dtype "<i8" is not supported`,
		"fortran.npy": "Fortran-order",
		"struct.npy":  "structured dtypes are not supported",
		"missing.npy": "no such file",
	} {
		_, err := ReadFile(filepath.Join("testdata", file))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", file, err, want)
		}
	}
	good, err := os.ReadFile(filepath.Join("testdata", "c_f4.npy"))
	if err != nil {
		t.Fatal(err)
	}
	// Every truncation fails.
	for i := range good {
		if _, err := Read(bytes.NewReader(good[:i])); err == nil {
			t.Fatalf("reading the first %d of %d bytes succeeded", i, len(good))
		}
	}
	if _, err := Read(bytes.NewReader(append(append([]byte{}, good...), 0))); err == nil || !strings.Contains(err.Error(), "after") {
		t.Errorf("trailing byte: %v", err)
	}
	edit := func(from, to string) []byte {
		return bytes.Replace(append([]byte{}, good...), []byte(from), []byte(to), 1)
	}
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"magic":        {edit("NUMPY", "NUMPX"), "not a .npy file"},
		"version":      {edit("NUMPY\x01", "NUMPY\x07"), "version 7.0"},
		"shape lies":   {edit("(2, 3)", "(9, 3)"), "file ends"},
		"negative dim": {edit("(2, 3)", "(-2,3)"), "non-negative"},
		"huge dim":     {edit("(2, 3)", "(9999999999)"), "non-negative"},
		"huge shape":   {edit("(2, 3), }", "(65536,65536)}"), "too large"},
		"bad bool":     {edit("False", "Nope "), "True or False"},
		"unknown key":  {edit("'shape'", "'shope'"), `unknown key "shope"`},
		"no dict":      {edit("{", "["), "dictionary"},
	} {
		_, err := Read(bytes.NewReader(c.data))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
		}
	}
}

func TestWriteRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, x := range []*tensor.Tensor{
		tensor.MustFromData(want23, 2, 3),
		tensor.MustFromData([]float32{7}),
		tensor.MustFromData([]float32{1, 2, 3}, 3),
		tensor.New(2, 0, 5),
		tensor.New(1, 3, 8, 8),
	} {
		path := filepath.Join(dir, "x.npy")
		if err := WriteFile(path, x); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		hlen := int(b[8]) | int(b[9])<<8
		if (10+hlen)%64 != 0 || b[9+hlen] != '\n' {
			t.Errorf("shape %v: header of %d bytes does not end aligned with a newline", x.Shape, hlen)
		}
		y, err := ReadFile(path)
		if err != nil {
			t.Fatalf("shape %v: %v", x.Shape, err)
		}
		if !tensor.SameShape(y.Shape, x.Shape) || !reflect.DeepEqual(y.Data, x.Data) {
			t.Errorf("round trip of %v: got %v %v", x.Shape, y.Shape, y.Data)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d files in the directory, want 1 (no temporary files left)", len(entries))
	}
	if err := WriteFile(filepath.Join(dir, "bad.npy"), &tensor.Tensor{Shape: []int{2}, Data: []float32{1}}); err == nil {
		t.Error("writing a tensor whose shape does not match its data succeeded")
	}
}

// TestNumPyReadsOurFiles loads a file written by Write with numpy, when
// python3 with numpy is installed.
func TestNumPyReadsOurFiles(t *testing.T) {
	if exec.Command("/usr/bin/python3", "-c", "import numpy").Run() != nil {
		t.Skip("python3 with numpy is not available")
	}
	path := filepath.Join(t.TempDir(), "x.npy")
	if err := WriteFile(path, tensor.MustFromData(want23, 3, 1, 2)); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/usr/bin/python3", "-c",
		"import numpy, sys; a = numpy.load(sys.argv[1]); print(a.dtype, a.shape, a.flags['C_CONTIGUOUS'], a.ravel().tolist())", path).CombinedOutput()
	if err != nil {
		t.Fatalf("numpy.load: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "float32 (3, 1, 2) True [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]"; got != want {
		t.Errorf("numpy sees %q, want %q", got, want)
	}
}

func FuzzRead(f *testing.F) {
	for _, name := range []string{"c_f4.npy", "be_f4.npy", "v2.npy", "scalar.npy", "empty.npy", "f8.npy", "fortran.npy"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := Read(bytes.NewReader(b))
		if err != nil {
			return
		}
		if tensor.Numel(x.Shape) != len(x.Data) {
			t.Fatalf("shape %v with %d values", x.Shape, len(x.Data))
		}
		var buf bytes.Buffer
		if err := Write(&buf, x); err != nil {
			t.Fatal(err)
		}
		y, err := Read(&buf)
		if err != nil || !reflect.DeepEqual(x.Shape, y.Shape) || len(x.Data) != len(y.Data) {
			t.Fatalf("re-read of a written file: %v", err)
		}
	})
}
