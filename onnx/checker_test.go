package onnx

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// checkerScript runs the reference onnx.checker (with shape inference) on
// every file given and prints one line per failure.
const checkerScript = `
import sys, onnx
bad = 0
for path in sys.argv[1:]:
    try:
        onnx.checker.check_model(path, full_check=True)
    except Exception as e:
        bad += 1
        print(path + ": " + str(e).replace("\n", " "))
sys.exit(1 if bad else 0)
`

// TestONNXChecker validates the exported file of every op with the ONNX
// reference checker when python3 with the onnx module is installed.
func TestONNXChecker(t *testing.T) {
	dir := t.TempDir()
	probe := exec.Command("/usr/bin/python3", "-c", "import onnx.checker")
	probe.Dir = dir
	if err := probe.Run(); err != nil {
		t.Skipf("python3 with the onnx module is not available (%v); install python3-onnx to run the reference checker", err)
	}
	gs := opGraphs(t)
	gs["mixed"] = mixedGraph(t)
	var paths []string
	for _, name := range slices.Sorted(maps.Keys(gs)) {
		p := filepath.Join(dir, name+".onnx")
		if err := Save(gs[name], p); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	cmd := exec.Command("/usr/bin/python3", append([]string{"-c", checkerScript}, paths...)...)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	cmd.Dir = dir // keep a local "onnx" directory from shadowing the module
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("onnx.checker rejected exported files (%v):\n%s", err, strings.ReplaceAll(string(out), dir+"/", ""))
	}
}
