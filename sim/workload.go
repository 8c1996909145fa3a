package sim

import (
	"fmt"
	"math"
)

// LayerStats are the data-dependent statistics of one layer that the
// hardware models need. Fractions are in [0, 1].
type LayerStats struct {
	// ActZero is the fraction of the layer's input activations that are zero.
	ActZero float64 `json:"act_zero"`
	// WeightZero is the fraction of the layer's weights that are zero.
	WeightZero float64 `json:"weight_zero"`
	// ActOutlier is the fraction of the non-zero input activations that are
	// outliers (kept in high precision by OLAccel).
	ActOutlier float64 `json:"act_outlier"`
	// WeightOutlier is the fraction of the non-zero weights that are outliers.
	WeightOutlier float64 `json:"weight_outlier"`
	// OutZero is the zero fraction of the layer's stored output (after the
	// activation function and any fused pooling).
	OutZero float64 `json:"out_zero"`
}

func (s LayerStats) check(where string) error {
	for _, f := range []struct {
		n string
		v float64
	}{{"act_zero", s.ActZero}, {"weight_zero", s.WeightZero}, {"act_outlier", s.ActOutlier},
		{"weight_outlier", s.WeightOutlier}, {"out_zero", s.OutZero}} {
		if !(f.v >= 0 && f.v <= 1) {
			return fmt.Errorf("%s: %s = %g is not a fraction in [0, 1]", where, f.n, f.v)
		}
	}
	return nil
}

// Layer is one convolution or fully-connected layer at batch size 1.
// A fully-connected layer is a convolution with H = W = KH = KW = 1.
type Layer struct {
	Name string `json:"name"`
	// Kind is "conv" or "fc".
	Kind string `json:"kind"`
	// C, H, W is the input shape; M the number of output channels.
	C, H, W, M int
	// KH, KW: kernel size; SH, SW: strides; Groups: grouped convolution.
	KH, KW, SH, SW, Groups int
	// OH, OW is the output spatial size.
	OH, OW int
	// OutElems is the number of output elements written back (after fused
	// pooling); 0 means M·OH·OW.
	OutElems int
	// First marks a layer whose input is the network input (an image).
	First bool
	Stats LayerStats
}

// MACs returns the number of multiply-accumulates of the dense layer.
func (l *Layer) MACs() float64 {
	return float64(l.OH*l.OW) * float64(l.M) * float64(l.K())
}

// K is the reduction length of one output: C/Groups·KH·KW.
func (l *Layer) K() int { return l.C / l.Groups * l.KH * l.KW }

// Weights is the number of weights.
func (l *Layer) Weights() int { return l.M * l.K() }

// InElems is the number of input activations.
func (l *Layer) InElems() int { return l.C * l.H * l.W }

// Outs is the number of output elements written back.
func (l *Layer) Outs() int {
	if l.OutElems > 0 {
		return l.OutElems
	}
	return l.M * l.OH * l.OW
}

func (l *Layer) check() error {
	where := "layer " + l.Name
	if l.Kind != "conv" && l.Kind != "fc" {
		return fmt.Errorf("%s: kind %q is not conv or fc", where, l.Kind)
	}
	for _, d := range []struct {
		n string
		v int
	}{{"C", l.C}, {"H", l.H}, {"W", l.W}, {"M", l.M}, {"KH", l.KH}, {"KW", l.KW},
		{"SH", l.SH}, {"SW", l.SW}, {"Groups", l.Groups}, {"OH", l.OH}, {"OW", l.OW}} {
		if d.v <= 0 {
			return fmt.Errorf("%s: %s = %d must be positive", where, d.n, d.v)
		}
	}
	if l.C%l.Groups != 0 || l.M%l.Groups != 0 {
		return fmt.Errorf("%s: C = %d and M = %d must be divisible by Groups = %d", where, l.C, l.M, l.Groups)
	}
	if l.OutElems < 0 {
		return fmt.Errorf("%s: OutElems = %d is negative", where, l.OutElems)
	}
	return l.Stats.check(where)
}

// Eltwise is an element-wise residual addition out = relu(branch + skip):
// it reads the skip tensor and the branch result and writes the sum. With a
// precision highway the skip tensor and the sum stay in high precision.
type Eltwise struct {
	Name string `json:"name"`
	// After names the layer whose output is the branch result; the
	// addition is reported right after it.
	After string `json:"after"`
	// Elems is the number of elements of each operand and of the result.
	Elems int `json:"elems"`
	// SkipZero and OutZero are the zero fractions of the skip operand and
	// of the result.
	SkipZero float64 `json:"skip_zero"`
	OutZero  float64 `json:"out_zero"`
	// Outlier is the outlier fraction of the non-zero operands (OLAccel).
	Outlier float64 `json:"outlier"`
}

// Workload is a network at batch size 1: its conv/FC layers in execution
// order and its residual additions.
type Workload struct {
	Name   string    `json:"name"`
	Layers []Layer   `json:"layers"`
	Adds   []Eltwise `json:"adds,omitempty"`
	// Source says where the shapes and statistics come from.
	Source string `json:"source"`
	// OutlierRatio is the ratio r that defined the outlier fractions.
	OutlierRatio float64 `json:"outlier_ratio"`
	// Paper names the published network this workload stands for (a key
	// of PaperReductions), "" for user models.
	Paper string `json:"paper,omitempty"`
}

// Validate checks shapes and statistics.
func (w *Workload) Validate() error {
	if len(w.Layers) == 0 {
		return fmt.Errorf("workload %s: no conv or fully-connected layers", w.Name)
	}
	names := map[string]bool{}
	for i := range w.Layers {
		if err := w.Layers[i].check(); err != nil {
			return fmt.Errorf("workload %s: %w", w.Name, err)
		}
		if names[w.Layers[i].Name] {
			return fmt.Errorf("workload %s: duplicate layer name %q", w.Name, w.Layers[i].Name)
		}
		names[w.Layers[i].Name] = true
	}
	for _, a := range w.Adds {
		if !names[a.After] {
			return fmt.Errorf("workload %s: addition %s follows unknown layer %q", w.Name, a.Name, a.After)
		}
		if a.Elems <= 0 || !(a.SkipZero >= 0 && a.SkipZero <= 1) || !(a.OutZero >= 0 && a.OutZero <= 1) || !(a.Outlier >= 0 && a.Outlier <= 1) {
			return fmt.Errorf("workload %s: addition %s: bad elems %d or fractions (skip zero %g, out zero %g, outlier %g)", w.Name, a.Name, a.Elems, a.SkipZero, a.OutZero, a.Outlier)
		}
	}
	return nil
}

// WithOutlierRatio returns a copy in which every layer's weight and
// activation outlier fractions are r (the OLAQ definition: a fraction r of
// the non-zero values lie at or above the threshold).
func (w *Workload) WithOutlierRatio(r float64) (*Workload, error) {
	if !(r >= 0 && r <= 1) || math.IsNaN(r) {
		return nil, fmt.Errorf("outlier ratio %g is not a fraction in [0, 1]", r)
	}
	c := w.Clone()
	c.OutlierRatio = r
	for i := range c.Layers {
		c.Layers[i].Stats.ActOutlier = r
		c.Layers[i].Stats.WeightOutlier = r
	}
	for i := range c.Adds {
		c.Adds[i].Outlier = r
	}
	return c, nil
}

// Clone returns a deep copy.
func (w *Workload) Clone() *Workload {
	c := *w
	c.Layers = append([]Layer(nil), w.Layers...)
	c.Adds = append([]Eltwise(nil), w.Adds...)
	return &c
}

// TotalMACs is the dense MAC count of all layers.
func (w *Workload) TotalMACs() float64 {
	s := 0.0
	for i := range w.Layers {
		s += w.Layers[i].MACs()
	}
	return s
}
