package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"lowbit/internal/ortrun"
)

// TestORTCheckQuantizedLeNet quantizes an untrained LeNet-5 with OLAQ 4/4
// and checks that ONNX Runtime agrees with lowbit on 300 MNIST images.
func TestORTCheckQuantizedLeNet(t *testing.T) {
	if _, err := ortrun.Find(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	fp := saveLeNet(t, dir, "f.onnx", 5)
	q := filepath.Join(dir, "q.onnx")
	if _, err := execCmd(t, newQuantizeCmd(), "--model", fp, "--data", "mnist", "--method", "olaq", "--wbits", "4", "--abits", "4",
		"--calib-images", "200", "--test-images", "100", "--out", q); err != nil {
		t.Fatal(err)
	}
	out, err := execCmd(t, newORTCheckCmd(), "--model", q, "--data", "mnist", "--limit", "300", "--batch", "128", "--json")
	if err != nil {
		t.Fatal(err, out)
	}
	var r ortCheckResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r.Images != 300 || r.Agreement < 0.99 || r.MaxLogitDiff > 0.5 {
		t.Fatalf("ONNX Runtime disagrees with lowbit: %+v", r)
	}
}
