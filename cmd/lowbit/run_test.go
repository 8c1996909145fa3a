package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lowbit/npy"
	"lowbit/tensor"
)

func runRun(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return execCmd(t, newRunCmd(), args...)
}

const fixtures = "../../onnx/testdata/torchvision"

// TestRunMatchesPyTorch runs a committed torchvision fixture through
// `lowbit run`, whole and in batches of one, and compares with PyTorch.
func TestRunMatchesPyTorch(t *testing.T) {
	dir := t.TempDir()
	want, err := npy.ReadFile(filepath.Join(fixtures, "resnet18.out.npy"))
	if err != nil {
		t.Fatal(err)
	}
	for _, batch := range []string{"0", "1"} {
		out := filepath.Join(dir, "y"+batch+".npy")
		stdout, err := runRun(t, "--model", filepath.Join(fixtures, "resnet18.onnx"), "--input", filepath.Join(fixtures, "input_64x64.npy"),
			"--out", out, "--batch", batch, "--json")
		if err != nil {
			t.Fatal(err)
		}
		var res runResult
		if err := json.Unmarshal([]byte(stdout), &res); err != nil {
			t.Fatalf("--json output is not JSON: %v\n%s", err, stdout)
		}
		if len(res.Outputs) != 1 || res.Outputs[0].Name != "output" || !tensor.SameShape(res.Outputs[0].Shape, []int{2, 10}) {
			t.Errorf("report %+v", res)
		}
		got, err := npy.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !tensor.SameShape(got.Shape, want.Shape) {
			t.Fatalf("output shape %v, want %v", got.Shape, want.Shape)
		}
		for i := range want.Data {
			if d := math.Abs(float64(got.Data[i] - want.Data[i])); d > 1e-4*float64(want.MaxAbs()) {
				t.Fatalf("batch %s: element %d is %v, PyTorch %v", batch, i, got.Data[i], want.Data[i])
			}
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("%d files in the output directory, want 2 (no temporary files)", len(entries))
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(fixtures, "resnet18.onnx")
	write := func(name string, x *tensor.Tensor) string {
		p := filepath.Join(dir, name)
		if err := npy.WriteFile(p, x); err != nil {
			t.Fatal(err)
		}
		return p
	}
	wrongC := write("c.npy", tensor.New(2, 1, 64, 64))
	wrongRank := write("r.npy", tensor.New(3, 64, 64))
	good := write("x.npy", tensor.New(1, 3, 64, 64))
	f8 := filepath.Join(dir, "f8.npy")
	hdr := "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }\n"
	if err := os.WriteFile(f8, []byte("\x93NUMPY\x01\x00"+string(rune(len(hdr)))+"\x00"+hdr+"\x00\x00\x00\x00\x00\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.onnx")
	if err := os.WriteFile(bad, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--input", good, "--out", "y.npy"}, "--model is required"},
		{[]string{"--model", model, "--out", "y.npy"}, "--input is required"},
		{[]string{"--model", model, "--input", good}, "--out is required"},
		{[]string{"--model", model, "--input", wrongC, "--out", "y.npy"}, `c.npy: array has shape [2 1 64 64], model input "input" expects [N 3 64 64]`},
		{[]string{"--model", model, "--input", wrongRank, "--out", "y.npy"}, "array has shape [3 64 64]"},
		{[]string{"--model", model, "--input", f8, "--out", "y.npy"}, `dtype "<f8" is not supported`},
		{[]string{"--model", model, "--input", filepath.Join(dir, "missing.npy"), "--out", "y.npy"}, "missing.npy"},
		{[]string{"--model", bad, "--input", good, "--out", "y.npy"}, "bad.onnx"},
		{[]string{"--model", model, "--input", good, "--out", "a.npy,b.npy"}, "model has 1 outputs (output), --out names 2 files"},
		{[]string{"--model", model, "--input", good, "--out", filepath.Join(dir, "no", "dir", "y.npy")}, "y.npy"},
		{[]string{"--model", model, "--input", good, "--out", "y.npy", "--batch", "-1"}, "--batch -1"},
	} {
		_, err := runRun(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("run %v: error %v, want one containing %q", c.args, err, c.want)
		}
	}
}
