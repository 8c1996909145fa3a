package quant

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"lowbit/graph"
	"lowbit/tensor"
)

// Role says what a quantizer node quantizes.
type Role int

const (
	// WeightRole quantizes a weight parameter (signed, fitted from the
	// tensor itself).
	WeightRole Role = iota
	// ActivationRole quantizes an activation (calibrated on data).
	ActivationRole
)

func (r Role) String() string {
	if r == WeightRole {
		return "weight"
	}
	return "activation"
}

// Method is the quantization method a policy asks for.
type Method int

const (
	// MethodUniform is a uniform grid with a range calibrator (§1).
	MethodUniform Method = iota
	// MethodWEQ is weighted-entropy quantization: WEQ clustering for
	// weights (§2), log-domain levels for activations (§3).
	MethodWEQ
	// MethodOLAQ is outlier-aware quantization (§4).
	MethodOLAQ
)

var methodNames = []string{"uniform", "weq", "olaq"}

func (m Method) String() string {
	if m >= 0 && int(m) < len(methodNames) {
		return methodNames[m]
	}
	return fmt.Sprintf("Method(%d)", int(m))
}

// ParseMethod parses uniform, weq or olaq.
func ParseMethod(s string) (Method, error) {
	for i, n := range methodNames {
		if strings.EqualFold(s, n) {
			return Method(i), nil
		}
	}
	return 0, fmt.Errorf("quant: unknown method %q (want uniform, weq or olaq)", s)
}

// Kind is the concrete quantizer a Spec builds (see Spec.Kind).
type Kind string

// The quantizer kinds.
const (
	KindUniform Kind = "uniform"
	KindWEQ     Kind = "weq"
	KindLog     Kind = "weq-log"
	KindOLAQ    Kind = "olaq"
)

// Spec describes the quantizer a FakeQuant node builds when it is fitted
// (weights) or calibrated (activations).
type Spec struct {
	Role   Role   `json:"role"`
	Method Method `json:"method"`
	// Bits is the bit width: 1–8 or 16.
	Bits int `json:"bits"`
	// Signed tells that an activation can be negative (weights are always
	// signed).
	Signed bool `json:"signed,omitempty"`
	// PerChannel gives weights one uniform scale, or one WEQ RMS
	// normalization, per output channel (axis 0). OLAQ is per tensor.
	PerChannel bool `json:"per_channel,omitempty"`
	// Calib and Percentile select the range calibrator of uniform grids.
	Calib      CalibMethod `json:"calib"`
	Percentile float64     `json:"percentile,omitempty"`
	// OutlierRatio and OutlierFormat configure OLAQ.
	OutlierRatio  float64       `json:"outlier_ratio,omitempty"`
	OutlierFormat OutlierFormat `json:"outlier_format,omitempty"`
	// WEQZero makes WEQ weights use the odd level count 2^b − 1, which
	// has a zero level, instead of 2^b.
	WEQZero bool `json:"weq_zero,omitempty"`
}

// Kind returns the quantizer the spec builds. 16-bit tensors are uniform
// whatever the method (the grid is fine enough and WEQ's searches would
// be needlessly slow). WEQ activations use the log-domain quantizer when
// they are non-negative; signed activations (which the log domain cannot
// represent) fall back to a uniform grid with the spec's calibrator.
func (s Spec) Kind() Kind {
	switch {
	case s.Bits == 16 || s.Method == MethodUniform:
		return KindUniform
	case s.Method == MethodOLAQ:
		return KindOLAQ
	case s.Role == WeightRole:
		return KindWEQ
	case s.Signed:
		return KindUniform
	}
	return KindLog
}

// Scheme returns the uniform grid of the spec: symmetric for weights,
// unsigned for non-negative activations, asymmetric for signed ones.
func (s Spec) Scheme() Scheme {
	switch {
	case s.Role == WeightRole:
		return Symmetric
	case s.Signed:
		return Asymmetric
	}
	return Unsigned
}

// signed reports whether the quantized tensor may be negative.
func (s Spec) signed() bool { return s.Role == WeightRole || s.Signed }

// Validate checks that the spec describes a quantizer that can be built.
func (s Spec) Validate() error {
	if s.Role != WeightRole && s.Role != ActivationRole {
		return fmt.Errorf("quant: unknown role %d", int(s.Role))
	}
	if s.Method < MethodUniform || s.Method > MethodOLAQ {
		return fmt.Errorf("quant: unknown method %d", int(s.Method))
	}
	switch s.Kind() {
	case KindUniform:
		if err := CheckBits(s.Bits, s.Scheme()); err != nil {
			return fmt.Errorf("%s %s: %w", s.Role, s.Method, err)
		}
		cfg := CalibConfig{Method: s.Calib, Scheme: s.Scheme(), Bits: s.Bits, Percentile: s.Percentile}
		if err := cfg.normalize(); err != nil {
			return fmt.Errorf("%s calibrator: %w", s.Role, err)
		}
	case KindOLAQ:
		if _, err := NewOLAQ(s.Bits, s.signed(), s.OutlierRatio, s.OutlierFormat); err != nil {
			return err
		}
	case KindWEQ, KindLog:
		if s.Bits < 1 || s.Bits > 8 {
			return fmt.Errorf("quant: WEQ %s: %d bits unsupported (want 1–8 or 16)", s.Role, s.Bits)
		}
		if s.levels() < 2 {
			return fmt.Errorf("quant: WEQ %s at %d bits with a zero level has fewer than 2 levels", s.Role, s.Bits)
		}
	}
	return nil
}

// levels is the WEQ level count: 2^b, or 2^b − 1 with WEQZero.
func (s Spec) levels() int {
	l := 1 << s.Bits
	if s.WEQZero && s.Role == WeightRole {
		l--
	}
	return l
}

// describe is a short description of what the spec asks for.
func (s Spec) describe() string {
	k := s.Kind()
	d := fmt.Sprintf("%s %db", k, s.Bits)
	if k == KindUniform {
		d += " " + s.Calib.String()
	}
	if k == KindUniform && s.Method == MethodWEQ {
		d += " (weq fallback: signed input)"
	}
	return d
}

// FakeQuant is the graph op of a quantizer: it replaces its input by the
// quantized values in the forward pass and passes the gradient through
// the straight-through estimator (gradient × the quantizer's mask) in the
// backward pass. Weight quantizers sit between a weight parameter and its
// Conv/Gemm, activation quantizers on a Conv/Gemm input.
//
// A FakeQuant is used by pointer and carries mutable state beside its
// attributes: the fitted quantizer Q, calibration observers and report
// statistics. It is not safe to run one graph in two executors at once.
//
// Modes: with Observing set (calibration), Forward feeds its input to the
// observers of Spec and passes it through unchanged; FinishCalibration then
// builds Q. With Baked set, the input already holds quantized values (an
// imported weight) and Forward copies it. With Adapt set and the executor
// in training mode, weight quantizers refit Q to their input on every
// forward (WEQ warm-started, OLAQ recomputed: the fine-tuning of §2.8 and
// §4.4) and activation quantizers update per batch (OLAQ's moving-average
// threshold, WEQ log's per-batch search); uniform activation ranges stay
// fixed.
type FakeQuant struct {
	Spec Spec
	// Q is the fitted quantizer; nil until Fit or FinishCalibration.
	Q         Quantizer
	Observing bool
	Baked     bool
	Adapt     bool
	// Measure makes Forward accumulate Stats (activations).
	Measure bool
	Stats   FQStats

	obs *observers
}

// FQStats are what a FakeQuant measured: the signal and noise energies of
// its quantization (for the SQNR), and the range of the values seen while
// observing.
type FQStats struct {
	Signal, Noise float64
	Elements      int64
	// Min and Max are the extremes observed during calibration (or of the
	// weights at the last fit).
	Min, Max float32
	Seen     bool
}

// SQNR returns the measured signal-to-quantization-noise ratio in dB
// (+Inf when there was no noise, NaN when nothing was measured).
func (s FQStats) SQNR() float64 {
	if s.Elements == 0 {
		return math.NaN()
	}
	if s.Noise == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(s.Signal/s.Noise)
}

func (s *FQStats) addRange(x []float32) {
	for _, v := range x {
		if math.IsNaN(float64(v)) {
			continue
		}
		if !s.Seen {
			s.Min, s.Max, s.Seen = v, v, true
		}
		s.Min, s.Max = min(s.Min, v), max(s.Max, v)
	}
}

func (s *FQStats) addNoise(ref, q []float32) {
	for i, r := range ref {
		d := float64(r) - float64(q[i])
		if math.IsNaN(d) || math.IsInf(d, 0) {
			continue
		}
		s.Signal += float64(r) * float64(r)
		s.Noise += d * d
	}
	s.Elements += int64(len(ref))
}

// observers hold the calibration state of an activation quantizer.
type observers struct {
	uniform Observer
	log     *LogHistogram
	olaq    *OLAQ
	batches int
}

// NewFakeQuant validates spec and returns an unfitted quantizer op.
func NewFakeQuant(spec Spec) (*FakeQuant, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	return &FakeQuant{Spec: spec}, nil
}

// Type returns "LowbitFakeQuant" (a lowbit op, exported as standard ONNX
// operators; see onnx.go).
func (*FakeQuant) Type() string { return "LowbitFakeQuant" }

// InferShapes maps one input to an output of the same shape.
func (*FakeQuant) InferShapes(in [][]int) ([][]int, error) {
	if len(in) != 1 || in[0] == nil {
		return nil, fmt.Errorf("want 1 input, got %d", len(in))
	}
	return [][]int{append([]int(nil), in[0]...)}, nil
}

// Buffer slots of FakeQuant's context.
const (
	fqSlotY = iota
	fqSlotDX
)

// Forward quantizes (or observes, or copies) its input.
func (f *FakeQuant) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if len(in) != 1 || in[0] == nil {
		return nil, fmt.Errorf("want 1 input, got %d", len(in))
	}
	x := in[0]
	y := c.Buffer(fqSlotY, x.Shape...)
	switch {
	case f.Observing:
		if err := f.Observe(x); err != nil {
			return nil, err
		}
		copy(y.Data, x.Data)
		return []*tensor.Tensor{y}, nil
	case f.Baked:
		copy(y.Data, x.Data)
		return []*tensor.Tensor{y}, nil
	}
	if c.Training && f.Adapt {
		if err := f.adapt(x); err != nil {
			return nil, err
		}
	}
	if f.Q == nil {
		return nil, fmt.Errorf("%s quantizer (%s) used before it was fitted or calibrated", f.Spec.Role, f.Spec.describe())
	}
	if err := f.Q.Forward(x.Data, y.Data); err != nil {
		return nil, err
	}
	if f.Measure && f.Spec.Role == ActivationRole {
		f.Stats.addNoise(x.Data, y.Data)
	}
	return []*tensor.Tensor{y}, nil
}

// Backward is the straight-through estimator: dx = dy × mask(x) (the
// identity while observing or baked).
func (f *FakeQuant) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if len(dout) == 0 || dout[0] == nil || !c.Need(0) {
		return []*tensor.Tensor{nil}, nil
	}
	x, dy := in[0], dout[0]
	dx := c.Buffer(fqSlotDX, x.Shape...)
	if f.Q == nil || f.Observing || f.Baked {
		copy(dx.Data, dy.Data)
		return []*tensor.Tensor{dx}, nil
	}
	if err := f.Q.Mask(x.Data, dx.Data); err != nil {
		return nil, err
	}
	for i, g := range dy.Data {
		dx.Data[i] *= g
	}
	return []*tensor.Tensor{dx}, nil
}

// adapt refits weights or updates activation statistics in training.
func (f *FakeQuant) adapt(x *tensor.Tensor) error {
	if f.Spec.Role == WeightRole {
		return f.Fit(x)
	}
	switch q := f.Q.(type) {
	case *OLAQ:
		q.Observe(x.Data)
	case *LogQuant:
		nq, err := FitLog(x.Data, q.L)
		if errors.Is(err, ErrNoPositive) {
			return nil // keep the previous levels
		}
		if err != nil {
			return err
		}
		*q = *nq
	}
	return nil
}

// channels returns the per-channel count of a weight (axis 0), or 1.
func (f *FakeQuant) channels(w *tensor.Tensor) int {
	if f.Spec.PerChannel && len(w.Shape) > 0 && w.Shape[0] > 0 {
		return w.Shape[0]
	}
	return 1
}

// Fit fits a weight quantizer to w (warm-starting WEQ from its previous
// partition), records the weight SQNR and, for OLAQ, the outlier count,
// and clears Baked.
func (f *FakeQuant) Fit(w *tensor.Tensor) error {
	if f.Spec.Role != WeightRole {
		return fmt.Errorf("quant: Fit on an activation quantizer (calibrate it instead)")
	}
	if len(w.Data) == 0 {
		return fmt.Errorf("quant: fit on an empty weight")
	}
	if err := checkFinite(w.Data); err != nil {
		return fmt.Errorf("quant: weight: %w", err)
	}
	s := f.Spec
	ch := f.channels(w)
	switch s.Kind() {
	case KindUniform:
		cfg := CalibConfig{Method: s.Calib, Scheme: s.Scheme(), Bits: s.Bits, Percentile: s.Percentile}
		u, err := CalibrateWeights(w.Data, ch, cfg)
		if err != nil {
			return err
		}
		f.Q = u
	case KindWEQ:
		q, ok := f.Q.(*WEQ)
		if !ok || q.L != s.levels() || q.PerChannel != s.PerChannel {
			var err error
			if q, err = NewWEQ(s.levels(), s.PerChannel); err != nil {
				return err
			}
		}
		if err := q.Fit(w.Data, ch); err != nil {
			return err
		}
		f.Q = q
	case KindOLAQ:
		q, ok := f.Q.(*OLAQ)
		if !ok {
			var err error
			if q, err = NewOLAQ(s.Bits, true, s.OutlierRatio, s.OutlierFormat); err != nil {
				return err
			}
		}
		q.Fit(w.Data)
		f.Q = q
	default:
		return fmt.Errorf("quant: weight quantizer kind %s", s.Kind())
	}
	f.Baked = false
	// Weight statistics: SQNR and (OLAQ) outliers of this fit.
	qw := make([]float32, len(w.Data))
	if o, ok := f.Q.(*OLAQ); ok {
		o.ResetStats()
	}
	if err := f.Q.Forward(w.Data, qw); err != nil {
		return err
	}
	f.Stats = FQStats{}
	f.Stats.addRange(w.Data)
	f.Stats.addNoise(w.Data, qw)
	return nil
}

// StartCalibration puts an activation quantizer in observing mode with
// fresh observers for its spec.
func (f *FakeQuant) StartCalibration() error {
	if f.Spec.Role != ActivationRole {
		return fmt.Errorf("quant: calibration of a weight quantizer (fit it instead)")
	}
	s := f.Spec
	o := &observers{}
	switch s.Kind() {
	case KindUniform:
		obs, err := NewObserver(CalibConfig{Method: s.Calib, Scheme: s.Scheme(), Bits: s.Bits, Percentile: s.Percentile})
		if err != nil {
			return err
		}
		o.uniform = obs
	case KindLog:
		o.log = &LogHistogram{}
	case KindOLAQ:
		q, err := NewOLAQ(s.Bits, s.Signed, s.OutlierRatio, s.OutlierFormat)
		if err != nil {
			return err
		}
		o.olaq = q
	default:
		return fmt.Errorf("quant: activation quantizer kind %s", s.Kind())
	}
	f.obs = o
	f.Observing = true
	f.Stats = FQStats{}
	return nil
}

// Observe feeds one batch to the calibration observers.
func (f *FakeQuant) Observe(x *tensor.Tensor) error {
	o := f.obs
	if o == nil {
		return fmt.Errorf("quant: observing without StartCalibration")
	}
	switch {
	case o.uniform != nil:
		o.uniform.Observe(x.Data)
	case o.log != nil:
		o.log.Observe(x.Data)
	case o.olaq != nil:
		o.olaq.Observe(x.Data)
	}
	o.batches++
	f.Stats.addRange(x.Data)
	return nil
}

// FinishCalibration builds Q from the observed batches and leaves
// observing mode.
func (f *FakeQuant) FinishCalibration() error {
	o := f.obs
	if o == nil || !f.Observing {
		return fmt.Errorf("quant: FinishCalibration without StartCalibration")
	}
	if o.batches == 0 {
		return fmt.Errorf("quant: no calibration batch reached this quantizer")
	}
	s := f.Spec
	switch {
	case o.uniform != nil:
		cfg := CalibConfig{Method: s.Calib, Scheme: s.Scheme(), Bits: s.Bits, Percentile: s.Percentile}
		u, err := cfg.Calibrate(o.uniform)
		if err != nil {
			return err
		}
		f.Q = u
	case o.log != nil:
		q, err := o.log.Search(s.levels())
		if errors.Is(err, ErrNoPositive) {
			// Never positive during calibration: positive inputs at test
			// time are rare; give them levels at 1, √2·… (any choice).
			q, err = NewLogQuant(s.levels(), 8, 0)
		}
		if err != nil {
			return err
		}
		f.Q = q
	case o.olaq != nil:
		f.Q = o.olaq
	}
	f.obs = nil
	f.Observing = false
	return nil
}

// BitsPerElement is the storage cost per element: the bit width, or for
// OLAQ b + r·(outlier bits + index bits) with the measured outlier
// fraction r; n is the element count one coordinate list addresses.
func (f *FakeQuant) BitsPerElement(n int) float64 {
	if o, ok := f.Q.(*OLAQ); ok {
		return o.BitsPerElement(n)
	}
	if w, ok := f.Q.(*WEQ); ok {
		return math.Ceil(math.Log2(float64(w.L)))
	}
	return float64(f.Spec.Bits)
}

// Describe summarizes the quantizer (its levels or range).
func (f *FakeQuant) Describe() string {
	if f.Q == nil {
		return f.Spec.describe() + " (not fitted)"
	}
	d := f.Q.Describe()
	if f.Spec.Kind() == KindUniform && f.Spec.Method == MethodWEQ {
		d += " (weq fallback: signed input)"
	}
	return d
}
