package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// loadTestdata loads every fixture under testdata.
func loadTestdata(t *testing.T) *Report {
	t.Helper()
	r, err := Load("fixtures <test>", "testdata")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReportLoadRecognizesEveryKind(t *testing.T) {
	r := loadTestdata(t)
	want := map[string]Kind{
		"bench-lenet5": KindBench, "demo": KindDemo, "eval-lenet5": KindEval, "lenet5-olaq-w2a2": KindQuantize,
		"lenet5-uniform-w4a4": KindQuantize, "r20-fp32": KindTrain, "r20-w4a4-hw": KindFinetune, "sim-resnet18": KindSimulate,
	}
	got := map[string]Kind{}
	for _, run := range r.Runs {
		got[run.Name()] = run.Kind
	}
	if len(got) != len(want) {
		t.Errorf("runs %v, want %v", got, want)
	}
	for name, k := range want {
		if got[name] != k {
			t.Errorf("%s: kind %q, want %q", name, got[name], k)
		}
	}
	// The lexical walk order, and IDs in that order.
	if r.Runs[0].Name() != "bench-lenet5" || r.Runs[0].ID != "run-1" || r.Runs[7].ID != "run-8" {
		t.Errorf("order: first %s (%s), last id %s", r.Runs[0].Name(), r.Runs[0].ID, r.Runs[7].ID)
	}
	for _, run := range r.Runs {
		if run.Name() == "lenet5-olaq-w2a2" && run.Command != "" {
			t.Errorf("%s has command %q without a .cmd file", run.Path, run.Command)
		}
		if run.Name() == "r20-fp32" && run.Command != "lowbit train --model resnet20 --data fashion-mnist --epochs 3 --out r20-fp32.onnx --json" {
			t.Errorf("r20-fp32 command %q", run.Command)
		}
	}
	ft := find(t, r, "r20-w4a4-hw").Finetune
	if len(ft.Phases) != 4 || len(ft.History) != 4 || ft.Residual == nil || len(ft.Residual.Init.None) != 3 ||
		len(ft.Layers) != 3 || ft.Layers[2].Role.String() != "activation" || ft.EMATop1 == nil || !ft.Highway.Enabled {
		t.Errorf("finetune fixture decoded as %+v", ft)
	}
	sim := find(t, r, "sim-resnet18").Simulate
	if len(sim.Results) != 3 || sim.Results[0].Breakdown.DRAM <= 0 || len(sim.Comparisons) != 2 || len(sim.HighwayOverhead) != 3 {
		t.Errorf("simulate fixture decoded as %+v", sim)
	}

	skipped := map[string]string{}
	for _, s := range r.Skipped {
		skipped[filepath.ToSlash(s.Path)] = s.Reason
	}
	for path, reason := range map[string]string{
		"testdata/bad.json":             "malformed JSON",
		"testdata/sub/summary-r20.json": "not a JSON object",
		"testdata/sub/unknown.json":     "keys (bar, foo)",
	} {
		if !strings.Contains(skipped[path], reason) {
			t.Errorf("skipped %s: reason %q, want one containing %q (all: %v)", path, skipped[path], reason, skipped)
		}
	}
	if len(r.Skipped) != 3 {
		t.Errorf("skipped %v", r.Skipped)
	}
}

func find(t *testing.T, r *Report, name string) *Run {
	t.Helper()
	for _, run := range r.Runs {
		if run.Name() == name {
			return run
		}
	}
	t.Fatalf("no run %s", name)
	return nil
}

func TestReportParse(t *testing.T) {
	for _, c := range []struct {
		json string
		kind Kind
		err  string
	}{
		{`{"top1": 0.9, "top5": 1, "loss": 0.3, "images": 10}`, KindEval, ""},
		{`{"model": "m", "top1": 0.9, "loss": 0.3, "images": 10}`, "", "match no lowbit"},
		{`{"model": "m", "history": [], "params": 3}`, KindTrain, ""},
		{`{"model": "m", "history": "x", "params": 3}`, "", "malformed train result"},
		{`{"rows": []}`, KindDemo, ""},
		{`{"network": "n", "results": []}`, KindSimulate, ""},
		{`{"train_img_s": 1, "infer_img_s": 2}`, KindBench, ""},
		{`{"layers": [{"role": "sideways"}], "method": "uniform", "fp32_top1": 0.9}`, "", "unknown role"},
		{`[1, 2]`, "", "not a JSON object"},
		{`{"a": 1,`, "", "malformed JSON"},
		{``, "", "empty"},
	} {
		run, err := Parse([]byte(c.json))
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one containing %q", c.json, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.json, err)
		case c.err == "" && run.Kind != c.kind:
			t.Errorf("%s: kind %q, want %q", c.json, run.Kind, c.kind)
		}
	}
}

// svgRe finds the inline SVG charts of a page.
var svgRe = regexp.MustCompile(`(?s)<svg\b.*?</svg>`)

// checkXML fails unless s is one well-formed XML element.
func checkXML(t *testing.T, what, s string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	depth, elems := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v\n%s", what, err, s)
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
			elems++
		case xml.EndElement:
			depth--
		}
	}
	if depth != 0 || elems == 0 {
		t.Fatalf("%s: unbalanced or empty (depth %d, %d elements)", what, depth, elems)
	}
}

func TestReportHTML(t *testing.T) {
	r := loadTestdata(t)
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{
		"<title>fixtures &lt;test&gt;</title>",
		// Summary rows: kind, model, method, bits, top-1 and the change
		// against float.
		`<td>lenet5-mnist.onnx</td><td>mnist</td><td>PTQ uniform (weights mse, activations minmax)</td><td>w4/a4</td><td class="n">98.02%</td><td class="n">-0.69</td>`,
		`<td>r20-fp32.onnx</td><td>fashion-mnist</td><td>QAT duq, progressive 8, BN-last 1, PROFIT, EMA, highway</td><td>w4/a4</td><td class="n">87.65%</td><td class="n">-2.47</td>`,
		`<td>resnet20</td><td>fashion-mnist</td><td>float training</td><td>32</td><td class="n">90.12%</td><td class="n">float</td>`,
		`<td>lenet5-mnist.onnx</td><td>mnist</td><td>evaluation</td><td>—</td><td class="n">98.71%</td>`,
		`<td>lenet5-mnist.onnx</td><td>mnist</td><td>PTQ olaq (outliers 3%)</td><td>w2/a2</td><td class="n">95.14%</td><td class="n">-3.57</td>`,
		`olaccel: 63.9% less energy than zena16, 3.85× faster`,
		`<a href="#run-6">testdata/r20-fp32.json</a>`,
		// Command lines next to the JSON files.
		`<pre class="cmd">lowbit finetune --model r20-fp32.onnx --data fashion-mnist --method duq`,
		`<pre class="cmd">lowbit simulate --net resnet18 --accel olaccel,zena16,eyeriss16 --json</pre>`,
		// Per-layer table rows (OLAQ outliers, missing SQNR).
		`<td>conv2</td><td>in:relu1</td><td class="n">2</td><td>olaq</td><td>4 levels</td><td class="n">-0.5</td><td class="n">0.5</td><td class="n">3.10</td><td class="n">2.80</td><td class="n">7.5</td>`,
		`<td>conv1</td><td>in:input</td><td class="n">8</td><td>uniform/minmax</td><td>[0, 1]</td><td class="n">-0.5</td><td class="n">0.5</td><td class="n">—</td><td class="n">8.00</td><td class="n">—</td>`,
		// Fine-tuning phases, setup, residual errors.
		`<td class="n">2</td><td>w4a4</td><td>finetune</td><td class="n">1</td><td class="n">4</td><td class="n">4</td><td>stage 1</td><td>44 quantizers (0 added, 40 re-targeted); frozen: conv1, layer1.0.conv1</td>`,
		`<td>layer1.2</td><td class="n">0.0600</td><td class="n">0.2598</td><td class="n">0.0450</td>`,
		`PROFIT order (largest AIWQ first; frozen in this order): conv1 (0.5), layer1.0.conv1 (0.2)`,
		// Simulator tables.
		`<td>olaccel</td><td>zena16</td><td class="n">63.9 %</td><td class="n">62.2 %</td><td class="n">3.85×</td>`,
		`<td>olaccel</td><td class="n">5970.9</td><td class="n">6470.4</td><td class="n">8.37 %</td><td class="n">4092.6</td>`,
		// Benchmarks.
		`<td>lenet5</td><td>1,28,28</td><td class="n">16</td><td class="n">4967.2</td><td class="n">3.2</td><td class="n">32</td><td class="n">15332.1</td><td class="n">16</td>`,
		// Demo table.
		`<td>uniform w4/a4</td><td class="n"></td><td class="n">98.02%</td><td class="n">-0.69</td>`,
		// Skipped files with their paths and reasons.
		`<td class="path">testdata/bad.json</td><td class="bad">malformed JSON: unexpected end of JSON input</td>`,
		`<td class="path">testdata/sub/unknown.json</td>`,
		// The escaped layer name.
		`fc&lt;1&gt;&amp;x`,
	} {
		if !strings.Contains(page, filepath.FromSlash(want)) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"fc<1>&x", "<script", "<link", "src=", "https://", "ZgotmplZ"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	svgs := svgRe.FindAllString(page, -1)
	var titles []string
	for i, s := range svgs {
		checkXML(t, fmt.Sprintf("chart %d", i), s)
		if m := regexp.MustCompile(`<text[^>]*font-size="1[45]"[^>]*>([^<]*)</text>`).FindStringSubmatch(s); m != nil {
			titles = append(titles, m[1])
		}
	}
	// SQNR ×3 (two PTQ runs, the fine-tuned one), loss and top-1 ×2,
	// residual error, energy, throughput.
	if len(svgs) != 10 {
		t.Errorf("%d charts (%v), want 10", len(svgs), titles)
	}
	all := strings.Join(titles, "|")
	for _, want := range []string{"SQNR per layer", "loss per epoch", "top-1 per epoch", "residual-stream relative error per block",
		"resnet18: energy per inference by component", "throughput"} {
		if !strings.Contains(all, want) {
			t.Errorf("no chart titled %q among %q", want, titles)
		}
	}
	if strings.Count(page, "<svg") != len(svgs) || strings.Count(page, "</svg>") != len(svgs) {
		t.Errorf("unbalanced <svg> tags")
	}
}

func TestReportWriteFile(t *testing.T) {
	r := New("")
	if r.Title != DefaultTitle {
		t.Errorf("default title %q", r.Title)
	}
	err := r.AddResult("mem/run.json", "lowbit bench --json", map[string]any{"model": "lenet5", "train_img_s": 10.0, "infer_img_s": 20.0})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.AddResult("mem/x.json", "", map[string]int{"foo": 1}); err == nil || !strings.Contains(err.Error(), "mem/x.json") {
		t.Errorf("unrecognized in-memory result: error %v, want one naming mem/x.json", err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "r.html")
	if err := r.WriteFile(out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil || !bytes.HasPrefix(b, []byte("<!DOCTYPE html>")) || !bytes.Contains(b, []byte("lowbit bench --json")) {
		t.Errorf("wrote %.200q, %v", b, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("files left in the output directory: %v", ents)
	}
	missing := filepath.Join(dir, "no", "r.html")
	if err := r.WriteFile(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("write into a missing directory: error %v, want one naming %s", err, missing)
	}
}

func TestReportLoadErrors(t *testing.T) {
	if _, err := Load("", "testdata/nope"); err == nil || !strings.Contains(err.Error(), "testdata/nope") {
		t.Errorf("missing path: error %v, want one naming it", err)
	}
	r, err := Load("", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check(); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty directory: Check() = %v, want ErrEmpty", err)
	}
	// A file named twice (and through a directory) counts once; a single
	// bad file does not stop the others.
	r, err = Load("", "testdata/r20-fp32.json", "testdata/bad.json", "testdata/r20-fp32.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Runs) != 1 || len(r.Skipped) != 1 || r.Check() != nil {
		t.Errorf("runs %d, skipped %v", len(r.Runs), r.Skipped)
	}
}
