package quant

import (
	"context"
	"fmt"
	"iter"
	"math"

	"lowbit/graph"
	"lowbit/tensor"
)

// FitWeights fits every weight quantizer of g to its weight parameter's
// current values (call it again after the weights change; WEQ refits
// warm-start from their previous partition).
func FitWeights(g *graph.Graph) error {
	sites, err := Sites(g)
	if err != nil {
		return err
	}
	for _, s := range sites {
		if s.Op.Spec.Role != WeightRole {
			continue
		}
		if s.Tensor.Param == nil {
			return fmt.Errorf("weight quantizer %s: input %s is not a parameter", s.Node.Name, s.Tensor.Name)
		}
		if err := s.Op.Fit(s.Tensor.Param.Data); err != nil {
			return fmt.Errorf("weight quantizer %s (%s): %w", s.Node.Name, s.Tensor.Name, err)
		}
	}
	return nil
}

// Calibrate runs g in evaluation mode over batches until maxImages images
// have been seen (all batches when maxImages ≤ 0; the last batch is cut
// to fit) and calibrates every activation quantizer: uniform range
// observers, WEQ log-domain histograms, OLAQ moving-average thresholds.
// Weight quantizers keep quantizing during calibration (fit them first),
// so the activation statistics are those of the quantized-weight network;
// the activations themselves pass through unquantized. It returns the
// number of images used.
func Calibrate(ctx context.Context, g *graph.Graph, batches iter.Seq2[*tensor.Tensor, error], maxImages int) (int, error) {
	sites, err := Sites(g)
	if err != nil {
		return 0, err
	}
	var acts []Site
	for _, s := range sites {
		if s.Op.Spec.Role == ActivationRole {
			if err := s.Op.StartCalibration(); err != nil {
				return 0, fmt.Errorf("activation quantizer %s: %w", s.Node.Name, err)
			}
			acts = append(acts, s)
		}
	}
	stop := func() {
		for _, s := range acts {
			s.Op.Observing = false
			s.Op.obs = nil
		}
	}
	if len(acts) == 0 {
		return 0, nil
	}
	e, err := graph.NewExecutor(g)
	if err != nil {
		stop()
		return 0, err
	}
	images := 0
	for x, err := range batches {
		if err != nil {
			stop()
			return images, fmt.Errorf("calibration data: %w", err)
		}
		if err := ctx.Err(); err != nil {
			stop()
			return images, err
		}
		if len(x.Shape) == 0 || x.Shape[0] <= 0 {
			continue
		}
		n := x.Shape[0]
		if maxImages > 0 && images+n > maxImages {
			n = maxImages - images
			per := len(x.Data) / x.Shape[0]
			x = &tensor.Tensor{Shape: append([]int{n}, x.Shape[1:]...), Data: x.Data[:n*per]}
		}
		if _, err := e.Forward(x); err != nil {
			stop()
			return images, fmt.Errorf("calibration forward: %w", err)
		}
		images += n
		if maxImages > 0 && images >= maxImages {
			break
		}
	}
	if images == 0 {
		stop()
		return 0, fmt.Errorf("calibration: no images")
	}
	for _, s := range acts {
		if err := s.Op.FinishCalibration(); err != nil {
			stop()
			return images, fmt.Errorf("activation quantizer %s: %w", s.Node.Name, err)
		}
	}
	return images, nil
}

// SetMeasure switches the measurement of activation quantizers (SQNR and
// OLAQ outlier counts) on or off; switching on clears what was measured.
func SetMeasure(g *graph.Graph, on bool) error {
	sites, err := Sites(g)
	if err != nil {
		return err
	}
	for _, s := range sites {
		if s.Op.Spec.Role != ActivationRole {
			continue
		}
		s.Op.Measure = on
		if on {
			lo, hi, seen := s.Op.Stats.Min, s.Op.Stats.Max, s.Op.Stats.Seen
			s.Op.Stats = FQStats{Min: lo, Max: hi, Seen: seen}
			if o, ok := s.Op.Q.(*OLAQ); ok {
				o.ResetStats()
			}
		}
	}
	return nil
}

// LayerReport is one row of the per-layer quantization report.
type LayerReport struct {
	// Node is the quantizer node; Layer the Conv/Gemm node(s) reading
	// it; Tensor the quantized weight or activation.
	Node   string `json:"node"`
	Layer  string `json:"layer"`
	Tensor string `json:"tensor"`
	Role   Role   `json:"role"`
	Bits   int    `json:"bits"`
	// Method is the quantizer kind actually used (uniform, weq, weq-log,
	// olaq); Levels describes its levels or range.
	Method string `json:"method"`
	Calib  string `json:"calib,omitempty"`
	Levels string `json:"levels"`
	// Min and Max are the observed range (weights: of the float weight).
	Min float32 `json:"min"`
	Max float32 `json:"max"`
	// OutlierPct is the measured outlier percentage (OLAQ only).
	OutlierPct *float64 `json:"outlier_pct,omitempty"`
	// BitsPerElement is the storage cost (OLAQ: b + r·(16 + index bits)).
	BitsPerElement float64 `json:"bits_per_element"`
	// SQNR in dB; null when not measured or infinite (no noise).
	SQNR *float64 `json:"sqnr_db"`
	// Elements is the weight size, or an activation's size per sample.
	Elements int `json:"elements"`
}

// Report describes every quantizer of g. Activation SQNRs and outlier
// fractions are those measured since SetMeasure(g, true).
func Report(g *graph.Graph) ([]LayerReport, error) {
	sites, err := Sites(g)
	if err != nil {
		return nil, err
	}
	var rows []LayerReport
	for _, s := range sites {
		f := s.Op
		r := LayerReport{Node: s.Node.Name, Layer: s.LayerNames(), Tensor: s.Tensor.Name, Role: f.Spec.Role,
			Bits: f.Spec.Bits, Method: string(f.Spec.Kind()), Levels: f.Describe(), Min: f.Stats.Min, Max: f.Stats.Max}
		if f.Spec.Kind() == KindUniform {
			r.Calib = f.Spec.Calib.String()
		}
		n := 1 // elements per sample: the batch dimension does not count
		for i, d := range s.Tensor.Shape {
			if i == 0 && d < 0 {
				continue
			}
			n *= max(d, 1)
		}
		r.Elements = n
		r.BitsPerElement = f.BitsPerElement(n)
		if o, ok := f.Q.(*OLAQ); ok {
			pct := 100 * o.Stats.OutlierFraction()
			r.OutlierPct = &pct
		}
		if q := f.Stats.SQNR(); !math.IsNaN(q) && !math.IsInf(q, 0) {
			r.SQNR = &q
		}
		rows = append(rows, r)
	}
	return rows, nil
}
