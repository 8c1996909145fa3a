package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"lowbit/internal/atomicfile"
	"lowbit/qat"
	"lowbit/quant"
	"lowbit/sim"
)

//go:embed report.tmpl
var pageTemplate string

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"pct":   pct,
	"delta": delta,
	"bits":  bitsName,
	"optf": func(format string, v *float64) string {
		if v == nil {
			return "—"
		}
		return fmt.Sprintf(format, *v)
	},
	"optpct": func(v *float64) string {
		if v == nil {
			return "—"
		}
		return pct(*v)
	},
	"plural": plural,
	"divk":   func(v float64) float64 { return v / 1000 },
	"secs":   secs,
	"join":   strings.Join,
	"ints": func(v []int) string {
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = strconv.Itoa(x)
		}
		return strings.Join(s, ",")
	},
	"tensor": func(l quant.LayerReport) string {
		if l.Role == quant.ActivationRole {
			return "in:" + l.Tensor
		}
		return l.Tensor
	},
	"sqnrChart": sqnrChart,
	"errv": func(i int, v []float64) string {
		if i < len(v) && finite(v[i]) {
			return fmt.Sprintf("%.4f", v[i])
		}
		return "—"
	},
}).Parse(pageTemplate))

// WriteHTML renders the report as one self-contained HTML page.
func (r *Report) WriteHTML(w io.Writer) error {
	if err := page.Execute(w, r); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	return nil
}

// WriteFile renders the report into path atomically.
func (r *Report) WriteFile(path string) error {
	return atomicfile.Write(path, r.WriteHTML)
}

// Benches are the benchmark runs (shown together in one table).
func (r *Report) Benches() []*Run {
	var out []*Run
	for _, run := range r.Runs {
		if run.Bench != nil {
			out = append(out, run)
		}
	}
	return out
}

// BenchChart compares the throughput of the benchmark runs.
func (r *Report) BenchChart() template.HTML {
	c := BarChart{Title: "throughput", ValueLabel: "images per second", Series: []Bars{{Name: "train"}, {Name: "inference"}}}
	for _, run := range r.Benches() {
		b := run.Bench
		c.Categories = append(c.Categories, fmt.Sprintf("%s (%s)", b.Model, run.Name()))
		c.Series[0].Values = append(c.Series[0].Values, b.TrainImgS)
		c.Series[1].Values = append(c.Series[1].Values, b.InferImgS)
	}
	return template.HTML(c.SVG())
}

func pct(v float64) string { return fmt.Sprintf("%.2f%%", 100*v) }

// delta is the change of top-1 v against ref, in percentage points.
func delta(v, ref float64) string { return fmt.Sprintf("%+.2f", 100*(v-ref)) }

func bitsName(b int) string {
	if b <= 0 {
		return "f"
	}
	return strconv.Itoa(b)
}

// secs formats a duration in seconds.
func secs(s float64) string {
	switch {
	case s <= 0:
		return "—"
	case s < 120:
		return fmt.Sprintf("%.1f s", s)
	case s < 7200:
		return fmt.Sprintf("%.1f min", s/60)
	}
	return fmt.Sprintf("%.1f h", s/3600)
}

// Name is the file name of the run without its directory and .json.
func (r *Run) Name() string {
	b := filepath.Base(r.Path)
	return strings.TrimSuffix(b, filepath.Ext(b))
}

// Summary is one row of the report's summary table.
type Summary struct {
	Model, Data, Method, Bits, Top1, Delta, Notes string
}

// Summary describes the run in one row.
func (r *Run) Summary() Summary {
	s := Summary{Model: "—", Data: "—", Method: "—", Bits: "—", Top1: "—", Delta: "—"}
	switch {
	case r.Train != nil:
		t := r.Train
		s.Model, s.Data, s.Method, s.Bits = t.Model, t.Data, "float training", "32"
		s.Top1, s.Delta = pct(t.Top1), "float"
		s.Notes = fmt.Sprintf("%s, %d parameters", plural(t.Epochs, "epoch"), t.Params)
		if t.Interrupted {
			s.Notes += ", interrupted"
		}
	case r.Eval != nil:
		e := r.Eval
		s.Model, s.Data = orDash(r.commandFlag("model", true)), orDash(r.commandFlag("data", false))
		s.Method, s.Top1 = "evaluation", pct(e.Top1)
		s.Notes = fmt.Sprintf("%d images", e.Images)
	case r.Quantize != nil:
		q := r.Quantize
		s.Model, s.Data, s.Method = filepath.Base(q.Model), q.Data, "PTQ "+q.Describe()
		s.Bits = fmt.Sprintf("w%s/a%s", bitsName(q.WeightBits), bitsName(q.ActBits))
		s.Top1, s.Delta = pct(q.Top1), delta(q.Top1, q.FP32Top1)
		s.Notes = fmt.Sprintf("calibrated on %d images; %d test images", q.CalibImages, q.TestImages)
	case r.Finetune != nil:
		f := r.Finetune
		s.Model, s.Data, s.Method = filepath.Base(f.Model), f.Data, "QAT "+f.Describe()
		s.Bits = fmt.Sprintf("w%s/a%s", bitsName(f.WeightBits), bitsName(f.ActBits))
		s.Top1, s.Delta = pct(f.Top1), delta(f.Top1, f.FP32Top1)
		s.Notes = fmt.Sprintf("%s, %s of %d images", plural(len(f.Phases), "phase"), plural(f.EpochBudget, "epoch"), f.TrainImages)
		if f.Interrupted {
			s.Top1, s.Delta, s.Notes = "—", "—", s.Notes+", interrupted"
		}
	case r.Simulate != nil:
		m := r.Simulate
		s.Model, s.Method = m.Network, "accelerator simulation"
		var accels []string
		for _, x := range m.Results {
			accels = append(accels, x.Accel)
		}
		s.Notes = strings.Join(accels, ", ")
		if len(m.Comparisons) > 0 {
			c := m.Comparisons[0]
			s.Notes = fmt.Sprintf("%s: %.1f%% less energy than %s, %.2f× faster", c.Accel, c.Reduction, c.Baseline, c.Speedup)
		}
	case r.Bench != nil:
		b := r.Bench
		s.Model, s.Method, s.Bits = b.Model, "throughput benchmark", "32"
		s.Notes = fmt.Sprintf("train %.0f img/s, inference %.0f img/s, peak RSS %.0f MB", b.TrainImgS, b.InferImgS, b.PeakRSSMB)
	case r.Demo != nil:
		s.Method = "demo"
		if len(r.Demo.Rows) > 0 {
			s.Model, s.Data, s.Top1 = r.Demo.Rows[0].Model, r.Demo.Rows[0].Data, pct(r.Demo.Rows[0].Top1)
		}
		s.Notes = plural(len(r.Demo.Rows), "row")
	}
	return s
}

// plural counts n things.
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// commandFlag returns the value of --name in the run's command line, or
// with positional, the first argument after the subcommand when it is not
// a flag (lowbit eval takes the model either way).
func (r *Run) commandFlag(name string, positional bool) string {
	f := strings.Fields(r.Command)
	for i, a := range f {
		if a == "--"+name && i+1 < len(f) {
			return f[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	if positional && len(f) > 2 && !strings.HasPrefix(f[2], "-") {
		return f[2]
	}
	return ""
}

// Describe names the method and its main settings.
func (q *Quantize) Describe() string {
	d := q.Method
	switch q.Method {
	case "uniform":
		d += fmt.Sprintf(" (weights %s, activations %s)", q.WeightCalib, q.Calib)
	case "olaq":
		d += fmt.Sprintf(" (outliers %.3g%%)", 100*q.Ratio)
	}
	if q.PerChannel {
		d += ", per-channel"
	}
	return d
}

// Describe names the method and the recipe.
func (f *Finetune) Describe() string {
	parts := []string{f.Method}
	if f.LearnRange {
		parts[0] += " (learned range)"
	}
	if len(f.Progressive) > 0 {
		p := make([]string, len(f.Progressive))
		for i, b := range f.Progressive {
			p[i] = strconv.Itoa(b)
		}
		parts = append(parts, "progressive "+strings.Join(p, ","))
	}
	if f.PerChannel {
		parts = append(parts, "per-channel weights")
	}
	if f.BNLast > 0 {
		parts = append(parts, fmt.Sprintf("BN-last %d", f.BNLast))
	}
	if f.Profit {
		parts = append(parts, "PROFIT")
	}
	if f.Teacher != "" {
		parts = append(parts, "distilled")
	}
	if f.EMADecay > 0 {
		parts = append(parts, "EMA")
	}
	if f.Highway.Enabled {
		hw := "highway"
		if f.Highway.Bits > 0 {
			hw += fmt.Sprintf(" %d-bit", f.Highway.Bits)
		}
		parts = append(parts, hw)
	}
	return strings.Join(parts, ", ")
}

// Charts are the loss and top-1 curves of a training run.
func (t *Train) Charts() []template.HTML {
	n := len(t.History)
	x := make([]float64, n)
	trainLoss, testLoss, trainTop1, testTop1 := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for i, h := range t.History {
		x[i] = float64(h.Epoch)
		trainLoss[i], testLoss[i] = h.TrainLoss, h.Test.Loss
		trainTop1[i], testTop1[i] = 100*h.TrainTop1, 100*h.Test.Top1
	}
	return []template.HTML{
		template.HTML(LineChart{Title: "loss per epoch", XLabel: "epoch", YLabel: "loss", ZeroY: true,
			Series: []Series{{"train", x, trainLoss}, {"test", x, testLoss}}}.SVG()),
		template.HTML(LineChart{Title: "top-1 per epoch", XLabel: "epoch", YLabel: "top-1 (%)",
			Series: []Series{{"train", x, trainTop1}, {"test", x, testTop1}}}.SVG()),
	}
}

// Charts are the loss and top-1 curves over all epochs of all phases.
func (f *Finetune) Charts() []template.HTML {
	n := len(f.History)
	x, labels := make([]float64, n), make([]string, n)
	trainLoss, testLoss, trainTop1, testTop1 := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for i, h := range f.History {
		x[i], labels[i] = float64(i), fmt.Sprintf("%d.%d", h.Phase, h.Epoch)
		trainLoss[i], testLoss[i] = h.TrainLoss, h.TestLoss
		trainTop1[i], testTop1[i] = 100*h.TrainTop1, 100*h.TestTop1
	}
	fp := make([]float64, n)
	for i := range fp {
		fp[i] = 100 * f.FP32Top1
	}
	return []template.HTML{
		template.HTML(LineChart{Title: "loss per epoch", XLabel: "phase.epoch", YLabel: "loss", XLabels: labels, ZeroY: true,
			Series: []Series{{"train", x, trainLoss}, {"test", x, testLoss}}}.SVG()),
		template.HTML(LineChart{Title: "top-1 per epoch", XLabel: "phase.epoch", YLabel: "top-1 (%)", XLabels: labels,
			Series: []Series{{"train", x, trainTop1}, {"test", x, testTop1}, {"float model (test)", x, fp}}}.SVG()),
	}
}

// Chart plots the per-block relative error of the residual stream.
func (res *Residual) Chart() template.HTML {
	var labels []string
	for _, r := range res.Rows() {
		labels = append(labels, r.Block)
	}
	series := func(name string, errs []blockErr) Series {
		s := Series{Name: name}
		for i, b := range errs {
			s.X = append(s.X, float64(i))
			s.Y = append(s.Y, b.RelError)
		}
		return s
	}
	final := "final (no highway)"
	if res.FinalHighway {
		final = "final (highway)"
	}
	c := LineChart{Title: "residual-stream relative error per block", XLabel: "block", YLabel: "‖a_q − a‖ / ‖a‖", XLabels: labels, ZeroY: true}
	for _, s := range []Series{series("init, highway", res.Init.Highway), series("init, no highway", res.Init.None), series(final, res.Final)} {
		if len(s.X) > 0 {
			c.Series = append(c.Series, s)
		}
	}
	return template.HTML(c.SVG())
}

type blockErr = qat.BlockError

// Rows joins the three measurements of each block.
func (res *Residual) Rows() []ResidualRow {
	n := max(len(res.Init.Highway), len(res.Init.None), len(res.Final))
	rows := make([]ResidualRow, n)
	for i := range rows {
		rows[i] = ResidualRow{Highway: math.NaN(), None: math.NaN(), Final: math.NaN()}
		for _, s := range []struct {
			errs []blockErr
			dst  *float64
		}{{res.Init.Highway, &rows[i].Highway}, {res.Init.None, &rows[i].None}, {res.Final, &rows[i].Final}} {
			if i < len(s.errs) {
				rows[i].Block, *s.dst = s.errs[i].Block, s.errs[i].RelError
			}
		}
	}
	return rows
}

// ResidualRow is one block of the residual-stream table (NaN: not
// measured).
type ResidualRow struct {
	Block                string
	Highway, None, Final float64
}

// Values lists the row's three errors for the template.
func (r ResidualRow) Values() []float64 { return []float64{r.Highway, r.None, r.Final} }

// sqnrChart draws the SQNR of every quantizer, weights and inputs side by
// side per layer.
func sqnrChart(layers []quant.LayerReport) template.HTML {
	c := BarChart{Title: "SQNR per layer", ValueLabel: "SQNR (dB; no bar: not measured or no noise)",
		Series: []Bars{{Name: "weights"}, {Name: "inputs"}}}
	var filled [][2]bool
	rows := map[string][]int{}
	for _, l := range layers {
		j := 0
		if l.Role == quant.ActivationRole {
			j = 1
		}
		v := math.NaN()
		if l.SQNR != nil {
			v = *l.SQNR
		}
		// Put the value into the first row of the layer whose slot of this
		// role is free, or start a new row.
		row := -1
		for _, i := range rows[l.Layer] {
			if !filled[i][j] {
				row = i
				break
			}
		}
		if row < 0 {
			row = len(c.Categories)
			c.Categories = append(c.Categories, l.Layer)
			for k := range c.Series {
				c.Series[k].Values = append(c.Series[k].Values, math.NaN())
			}
			filled = append(filled, [2]bool{})
			rows[l.Layer] = append(rows[l.Layer], row)
		}
		c.Series[j].Values[row], filled[row][j] = v, true
	}
	return template.HTML(c.SVG())
}

// Chart is the simulator's own stacked energy chart of the designs.
func (m *Simulate) Chart() (template.HTML, error) {
	rep := &sim.Report{Network: m.Network, Highway: m.Highway}
	for _, x := range m.Results {
		b := x.Breakdown
		// The JSON holds µJ; the simulator's breakdowns are in pJ.
		rep.Results = append(rep.Results, &sim.Result{Accel: x.Accel, Network: m.Network, Cycles: x.Cycles,
			Energy: sim.Breakdown{DRAM: b.DRAM * 1e6, DRAMBackground: b.DRAMBackground * 1e6, Buffer: b.Buffer * 1e6,
				Local: b.Local * 1e6, MACDense: b.MACDense * 1e6, MACOutlier: b.MACOutlier * 1e6, Static: b.Static * 1e6}})
	}
	var sb strings.Builder
	if err := rep.WriteSVG(&sb); err != nil {
		return "", err
	}
	return template.HTML(sb.String()), nil
}
