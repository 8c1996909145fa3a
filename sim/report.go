package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// PaperReductions are the published OLAccel energy reductions (percent)
// against the 16-bit and 8-bit ZeNA (Park, Kim, Yoo, ISCA 2018, abstract).
// OLAccel16 is compared with ZeNA-16 and OLAccel8 with ZeNA-8.
var PaperReductions = map[string]map[[2]string]float64{
	"alexnet":  {{"olaccel", "zena16"}: 43.5, {"olaccel8", "zena8"}: 27.0},
	"vgg16":    {{"olaccel", "zena16"}: 56.7, {"olaccel8", "zena8"}: 36.3},
	"resnet18": {{"olaccel", "zena16"}: 62.2, {"olaccel8", "zena8"}: 49.5},
}

// Comparison is one outlier-aware design against one baseline.
type Comparison struct {
	Accel    string `json:"accel"`
	Baseline string `json:"baseline"`
	// Reduction is the energy saved, in percent of the baseline's energy.
	Reduction float64 `json:"energy_reduction_pct"`
	// Speedup is baseline cycles / accel cycles.
	Speedup float64 `json:"speedup"`
	// Paper is the published reduction for this pair, when there is one.
	Paper *float64 `json:"paper_reduction_pct,omitempty"`
}

// HighwayRow is the cost of keeping residual skip paths in high precision.
type HighwayRow struct {
	Accel       string  `json:"accel"`
	EnergyUJ    float64 `json:"energy_uj"`
	HighwayUJ   float64 `json:"highway_energy_uj"`
	OverheadPct float64 `json:"overhead_pct"`
	// ExtraDRAMBytes is the additional off-chip traffic.
	ExtraDRAMBytes float64 `json:"extra_dram_bytes"`
}

// Report is everything the simulate command shows for one network.
type Report struct {
	Network      string
	Source       string
	Config       string
	OutlierRatio float64
	Highway      bool
	ClockMHz     float64
	Results      []*Result
	Comparisons  []Comparison
	HighwayRows  []HighwayRow
}

// Run simulates w on the named designs (all configured designs when accels
// is empty), compares outlier-aware designs with the baselines and, when
// the workload has residual additions, measures the highway overhead.
func Run(cfg *Config, w *Workload, accels []string, opt Options) (*Report, error) {
	if len(accels) == 0 {
		accels = cfg.AccelNames()
	}
	rep := &Report{Network: w.Name, Source: w.Source, Config: cfg.File, Highway: opt.Highway, ClockMHz: cfg.ClockMHz.V(),
		OutlierRatio: w.OutlierRatio}
	for _, name := range accels {
		r, err := Simulate(cfg, name, w, opt)
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, r)
		if len(w.Adds) > 0 {
			off, err := Simulate(cfg, name, w, Options{Highway: false})
			if err != nil {
				return nil, err
			}
			on, err := Simulate(cfg, name, w, Options{Highway: true})
			if err != nil {
				return nil, err
			}
			e0, e1 := off.Energy.Total(), on.Energy.Total()
			d0, d1 := 0.0, 0.0
			for i := range off.Layers {
				d0 += off.Layers[i].DRAMBits
				d1 += on.Layers[i].DRAMBits
			}
			rep.HighwayRows = append(rep.HighwayRows, HighwayRow{Accel: name, EnergyUJ: e0 / 1e6, HighwayUJ: e1 / 1e6,
				OverheadPct: 100 * (e1/e0 - 1), ExtraDRAMBytes: (d1 - d0) / 8})
		}
	}
	kinds := map[string]string{}
	for _, a := range cfg.Accelerators {
		kinds[a.Name] = a.Kind
	}
	paper := PaperReductions[w.Paper]
	for _, r := range rep.Results {
		if kinds[r.Accel] != KindOLAccel {
			continue
		}
		for _, b := range rep.Results {
			if kinds[b.Accel] == KindOLAccel {
				continue
			}
			c := Comparison{Accel: r.Accel, Baseline: b.Accel,
				Reduction: 100 * (1 - r.Energy.Total()/b.Energy.Total()), Speedup: b.Cycles / r.Cycles}
			if p, ok := paper[[2]string{r.Accel, b.Accel}]; ok {
				c.Paper = &p
			}
			rep.Comparisons = append(rep.Comparisons, c)
		}
	}
	return rep, nil
}

// JSON types of the report (energies in µJ).
type jsonBreakdown struct {
	DRAM           float64 `json:"dram"`
	DRAMBackground float64 `json:"dram_background"`
	Buffer         float64 `json:"buffer"`
	Local          float64 `json:"local"`
	MAC            float64 `json:"mac"`
	MACDense       float64 `json:"mac_dense"`
	MACOutlier     float64 `json:"mac_outlier"`
	Static         float64 `json:"static"`
}

func toJSONBreakdown(b Breakdown) jsonBreakdown {
	return jsonBreakdown{DRAM: b.DRAM / 1e6, DRAMBackground: b.DRAMBackground / 1e6, Buffer: b.Buffer / 1e6, Local: b.Local / 1e6, MAC: b.MAC() / 1e6,
		MACDense: b.MACDense / 1e6, MACOutlier: b.MACOutlier / 1e6, Static: b.Static / 1e6}
}

type jsonLayer struct {
	Name      string        `json:"name"`
	Kind      string        `json:"kind"`
	MACs      float64       `json:"macs"`
	EnergyUJ  float64       `json:"energy_uj"`
	Cycles    float64       `json:"cycles"`
	DRAMBytes float64       `json:"dram_bytes"`
	Breakdown jsonBreakdown `json:"breakdown"`
}

type jsonResult struct {
	Accel     string        `json:"accel"`
	EnergyUJ  float64       `json:"energy_uj"`
	Cycles    float64       `json:"cycles"`
	TimeMS    float64       `json:"time_ms"`
	Breakdown jsonBreakdown `json:"breakdown"`
	Layers    []jsonLayer   `json:"layers"`
}

type jsonReport struct {
	Network         string       `json:"network"`
	Source          string       `json:"source"`
	Config          string       `json:"config"`
	OutlierRatio    float64      `json:"outlier_ratio"`
	Highway         bool         `json:"highway"`
	Results         []jsonResult `json:"results"`
	Comparisons     []Comparison `json:"comparisons"`
	HighwayOverhead []HighwayRow `json:"highway_overhead,omitempty"`
}

// MarshalJSON renders the report in the documented JSON form:
// {"results": [{"accel", "energy_uj", "cycles", "breakdown": {...}}, ...], ...}.
func (rep *Report) MarshalJSON() ([]byte, error) {
	jr := jsonReport{Network: rep.Network, Source: rep.Source, Config: rep.Config, OutlierRatio: rep.OutlierRatio,
		Highway: rep.Highway, Comparisons: rep.Comparisons, HighwayOverhead: rep.HighwayRows}
	for _, r := range rep.Results {
		x := jsonResult{Accel: r.Accel, EnergyUJ: r.Energy.Total() / 1e6, Cycles: r.Cycles,
			TimeMS: r.Cycles / rep.ClockMHz / 1e3, Breakdown: toJSONBreakdown(r.Energy)}
		for _, l := range r.Layers {
			x.Layers = append(x.Layers, jsonLayer{Name: l.Name, Kind: l.Kind, MACs: l.MACs, EnergyUJ: l.Energy.Total() / 1e6,
				Cycles: l.Cycles, DRAMBytes: l.DRAMBits / 8, Breakdown: toJSONBreakdown(l.Energy)})
		}
		jr.Results = append(jr.Results, x)
	}
	if jr.Comparisons == nil {
		jr.Comparisons = []Comparison{}
	}
	return json.Marshal(jr)
}

// WriteText prints the per-layer tables, the totals with their breakdown,
// the comparisons and the highway overhead.
func (rep *Report) WriteText(out io.Writer) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "network %s; config %s; outlier ratio %g; highway %v\n", rep.Network, rep.Config, rep.OutlierRatio, rep.Highway)
	for _, s := range strings.Split(rep.Source, "; ") {
		fmt.Fprintf(&sb, "  %s\n", s)
	}
	sb.WriteString("\n")
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	if len(rep.Results) > 0 {
		for _, part := range []struct {
			title string
			get   func(LayerResult) float64
		}{
			{"energy per layer (µJ)", func(l LayerResult) float64 { return l.Energy.Total() / 1e6 }},
			{"cycles per layer (thousands)", func(l LayerResult) float64 { return l.Cycles / 1e3 }},
		} {
			sb.WriteString(part.title + ":\n")
			head := "layer\tkind\tMMACs\t"
			for _, r := range rep.Results {
				head += r.Accel + "\t"
			}
			fmt.Fprintln(tw, head)
			for i, l := range rep.Results[0].Layers {
				row := fmt.Sprintf("%s\t%s\t%.1f\t", l.Name, l.Kind, l.MACs/1e6)
				for _, r := range rep.Results {
					row += fmt.Sprintf("%.1f\t", part.get(r.Layers[i]))
				}
				fmt.Fprintln(tw, row)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			sb.WriteString("\n")
		}
	}
	sb.WriteString("totals (µJ, share of the design's energy):\n")
	fmt.Fprintln(tw, "accel\tenergy µJ\tDRAM\t(background)\tbuffer\tlocal\tMAC dense\tMAC outlier\tstatic\tcycles\tms\t")
	for _, r := range rep.Results {
		b := r.Energy
		t := b.Total()
		pct := func(x float64) string { return fmt.Sprintf("%.1f (%.0f%%)", x/1e6, 100*x/t) }
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.4g\t%.4g\t\n", r.Accel, t/1e6, pct(b.DRAM), pct(b.DRAMBackground), pct(b.Buffer),
			pct(b.Local), pct(b.MACDense), pct(b.MACOutlier), pct(b.Static), r.Cycles, r.Cycles/rep.ClockMHz/1e3)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.Comparisons) > 0 {
		sb.WriteString("\nOLAccel against the baselines:\n")
		fmt.Fprintln(tw, "accel\tvs baseline\tenergy reduction\tpaper\tspeedup\t")
		for _, c := range rep.Comparisons {
			p := "—"
			if c.Paper != nil {
				p = fmt.Sprintf("%.1f %%", *c.Paper)
			}
			fmt.Fprintf(tw, "%s\t%s\t%.1f %%\t%s\t%.2fx\t\n", c.Accel, c.Baseline, c.Reduction, p, c.Speedup)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(rep.HighwayRows) > 0 {
		sb.WriteString("\nprecision highway (skip paths and sums kept at high precision):\n")
		fmt.Fprintln(tw, "accel\tenergy µJ\twith highway µJ\toverhead\textra DRAM kB\t")
		for _, h := range rep.HighwayRows {
			fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.2f %%\t%.1f\t\n", h.Accel, h.EnergyUJ, h.HighwayUJ, h.OverheadPct, h.ExtraDRAMBytes/1e3)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := io.WriteString(out, sb.String())
	return err
}
