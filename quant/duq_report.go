package quant

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"lowbit/graph"
	"lowbit/tensor"
)

// DuQMeter measures what the DuQ nodes of a graph do to their inputs
// while the graph runs: the observed range and the signal and noise
// energies (for the SQNR). Install Hook as an executor's OnForward.
type DuQMeter struct {
	Stats map[string]*FQStats
}

// NewDuQMeter returns an empty meter.
func NewDuQMeter() *DuQMeter { return &DuQMeter{Stats: map[string]*FQStats{}} }

// Hook returns an OnForward function that measures DuQ nodes and then
// calls next (which may be nil).
func (m *DuQMeter) Hook(next func(n *graph.Node, in, out []*tensor.Tensor)) func(n *graph.Node, in, out []*tensor.Tensor) {
	return func(n *graph.Node, in, out []*tensor.Tensor) {
		if q, ok := duqOf(n); ok && q.Mode != DuQWeight && len(in) > 0 && len(out) > 0 {
			st := m.Stats[n.Name]
			if st == nil {
				st = &FQStats{}
				m.Stats[n.Name] = st
			}
			st.addRange(in[0].Data)
			st.addNoise(in[0].Data, out[0].Data)
		}
		if next != nil {
			next(n, in, out)
		}
	}
}

// DescribeDuQ summarizes a DuQ site: mode, range, scale and grid (for a
// per-channel site the channel count and the spans of ranges, scales and
// steps).
func DescribeDuQ(s DuQSite) string {
	as, cs := s.ChannelScales()
	levels := 1 << s.Op.Bits
	if s.Op.signed() {
		levels-- // 2·(n/2−1) + 1 codes, symmetric around 0
	}
	tied := ""
	if s.Alpha == s.Gamma {
		tied = ", tied"
	}
	if s.PerChannel() {
		amin, amax := slices.Min(as), slices.Max(as)
		cmin, cmax := slices.Min(cs), slices.Max(cs)
		return fmt.Sprintf("duq %s per-channel(%d) a=%.4g…%.4g c=%.4g…%.4g (%d levels, step %.4g…%.4g%s)", s.Op.Mode, len(as),
			amin, amax, cmin, cmax, levels, cmin/s.Op.steps(), cmax/s.Op.steps(), tied)
	}
	return fmt.Sprintf("duq %s a=%.4g c=%.4g (%d levels, step %.4g%s)", s.Op.Mode, as[0], cs[0], levels, cs[0]/s.Op.steps(), tied)
}

// QATReport describes every quantizer of g: the FakeQuant rows of Report
// followed by one row per DuQ node (method "duq"); DuQ weight SQNRs are
// computed from the weights, activation ranges and SQNRs come from meter
// (nil: not measured). Layer is "highway" for quantizers that feed no
// Conv/Gemm.
func QATReport(g *graph.Graph, meter *DuQMeter) ([]LayerReport, error) {
	rows, err := Report(g)
	if err != nil {
		return nil, err
	}
	sites, err := DuQSites(g)
	if err != nil {
		return nil, err
	}
	for i := range rows {
		if rows[i].Layer == "" {
			rows[i].Layer = "highway"
		}
	}
	for _, s := range sites {
		var names []string
		for _, l := range s.Layers {
			names = append(names, l.Name)
		}
		layer := strings.Join(names, ",")
		if layer == "" {
			layer = "highway"
		}
		r := LayerReport{Node: s.Node.Name, Layer: layer, Tensor: s.Tensor.Name, Role: s.Role(), Bits: s.Op.Bits,
			Method: "duq", Levels: DescribeDuQ(s), BitsPerElement: float64(s.Op.Bits)}
		n := 1
		for i, d := range s.Tensor.Shape {
			if i == 0 && d < 0 {
				continue
			}
			n *= max(d, 1)
		}
		r.Elements = n
		var st FQStats
		if s.Role() == WeightRole && s.Tensor.Param != nil {
			w := s.Tensor.Param.Data
			out, err := s.Op.Forward(graph.NewContext(false, 0), []*tensor.Tensor{w, s.Alpha.Data, s.Gamma.Data})
			if err != nil {
				return nil, fmt.Errorf("DuQ %s: %w", s.Node.Name, err)
			}
			st.addRange(w.Data)
			st.addNoise(w.Data, out[0].Data)
		} else if meter != nil && meter.Stats[s.Node.Name] != nil {
			st = *meter.Stats[s.Node.Name]
		}
		r.Min, r.Max = st.Min, st.Max
		if q := st.SQNR(); !math.IsNaN(q) && !math.IsInf(q, 0) {
			r.SQNR = &q
		}
		rows = append(rows, r)
	}
	return rows, nil
}
