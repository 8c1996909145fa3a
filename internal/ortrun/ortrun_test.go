package ortrun

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindAndRun(t *testing.T) {
	h, err := Find()
	if err != nil {
		t.Skipf("ONNX Runtime harness unavailable: %v", err)
	}
	dir := t.TempDir()
	// A missing model is reported with the harness output.
	err = h.Run(context.Background(), dir, []Job{{Model: filepath.Join(dir, "none.onnx"), Input: "x.npy", Outputs: []string{"y.npy"}}})
	if err == nil || !strings.Contains(err.Error(), "none.onnx") {
		t.Errorf("run of a missing model: %v", err)
	}
}

func TestFindReportsMissingModule(t *testing.T) {
	t.Setenv("LOWBIT_ORT_DIR", t.TempDir())
	_, err := Find()
	if err == nil {
		t.Fatal("Find succeeded in an empty directory")
	}
	if !strings.Contains(err.Error(), "node") {
		t.Errorf("error %v does not say what is missing", err)
	}
}
