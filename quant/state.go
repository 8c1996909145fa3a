package quant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// State is the serializable form of a fitted quantizer: exactly one of
// its fields is set. Exported model files carry it as JSON so that lowbit
// rebuilds the same quantizer on import.
type State struct {
	Uniform *Uniform  `json:"uniform,omitempty"`
	WEQ     *WEQState `json:"weq,omitempty"`
	Log     *LogState `json:"log,omitempty"`
	OLAQ    *OLAQ     `json:"olaq,omitempty"`
}

// WEQState is the serializable form of a WEQ quantizer (thresholds may be
// +Inf for trailing empty clusters, which JSON numbers cannot hold).
type WEQState struct {
	L          int      `json:"levels"`
	PerChannel bool     `json:"per_channel,omitempty"`
	Bounds     []int    `json:"bounds,omitempty"`
	Reps       Float32s `json:"reps"`
	Thresh     Float32s `json:"thresh"`
	Scales     Float32s `json:"scales,omitempty"`
}

// LogState is the serializable form of a log-domain quantizer.
type LogState struct {
	L int `json:"levels"`
	H int `json:"half_step"`
	F int `json:"offset"`
}

// Float32s is a float32 list whose JSON form writes ±Inf and NaN as the
// strings "+Inf", "-Inf" and "NaN".
type Float32s []float32

// MarshalJSON implements json.Marshaler (shortest exact float32 digits).
func (f Float32s) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, v := range f {
		if i > 0 {
			b.WriteByte(',')
		}
		switch x := float64(v); {
		case math.IsInf(x, 1):
			b.WriteString(`"+Inf"`)
		case math.IsInf(x, -1):
			b.WriteString(`"-Inf"`)
		case math.IsNaN(x):
			b.WriteString(`"NaN"`)
		default:
			b.WriteString(strconv.FormatFloat(x, 'g', -1, 32))
		}
	}
	b.WriteByte(']')
	return b.Bytes(), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *Float32s) UnmarshalJSON(data []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	out := make([]float32, len(raw))
	for i, r := range raw {
		var s string
		if json.Unmarshal(r, &s) == nil {
			v, err := strconv.ParseFloat(s, 32)
			if err != nil {
				return fmt.Errorf("element %d: %w", i, err)
			}
			out[i] = float32(v)
			continue
		}
		v, err := strconv.ParseFloat(string(r), 32)
		if err != nil {
			return fmt.Errorf("element %d: %w", i, err)
		}
		out[i] = float32(v)
	}
	*f = out
	return nil
}

// StateOf returns the serializable state of q.
func StateOf(q Quantizer) (State, error) {
	switch q := q.(type) {
	case *Uniform:
		return State{Uniform: q}, nil
	case *WEQ:
		return State{WEQ: &WEQState{L: q.L, PerChannel: q.PerChannel, Bounds: q.Bounds, Reps: q.Reps, Thresh: q.Thresh, Scales: q.Scales}}, nil
	case *LogQuant:
		return State{Log: &LogState{L: q.L, H: q.H, F: q.F}}, nil
	case *OLAQ:
		return State{OLAQ: q}, nil
	}
	return State{}, fmt.Errorf("quant: no serializable state for quantizer %T", q)
}

// Quantizer rebuilds the quantizer, validating every field so that a
// corrupt or hostile description is an error, never a panic later.
func (s State) Quantizer() (Quantizer, error) {
	set := 0
	for _, p := range []bool{s.Uniform != nil, s.WEQ != nil, s.Log != nil, s.OLAQ != nil} {
		if p {
			set++
		}
	}
	if set != 1 {
		return nil, fmt.Errorf("quantizer state sets %d kinds, want exactly 1", set)
	}
	switch {
	case s.Uniform != nil:
		return validUniform(s.Uniform)
	case s.WEQ != nil:
		return s.WEQ.quantizer()
	case s.Log != nil:
		return NewLogQuant(s.Log.L, s.Log.H, s.Log.F)
	}
	return validOLAQ(s.OLAQ)
}

func validUniform(u *Uniform) (*Uniform, error) {
	if err := CheckBits(u.Bits, u.Scheme); err != nil {
		return nil, err
	}
	if len(u.Scale) == 0 || len(u.Scale) != len(u.ZeroPoint) {
		return nil, fmt.Errorf("uniform quantizer has %d scales and %d zero points", len(u.Scale), len(u.ZeroPoint))
	}
	qmin, qmax := u.QRange()
	for c, sc := range u.Scale {
		if !(sc > 0) || math.IsInf(float64(sc), 0) {
			return nil, fmt.Errorf("uniform quantizer: scale %v of channel %d is not a positive finite number", sc, c)
		}
		if zp := u.ZeroPoint[c]; zp < qmin || zp > qmax {
			return nil, fmt.Errorf("uniform quantizer: zero point %d of channel %d outside [%d, %d]", zp, c, qmin, qmax)
		}
	}
	return u, nil
}

func (w *WEQState) quantizer() (*WEQ, error) {
	q, err := NewWEQ(w.L, w.PerChannel)
	if err != nil {
		return nil, err
	}
	h := (w.L + 1) / 2
	if len(w.Reps) != h || len(w.Thresh) != h {
		return nil, fmt.Errorf("WEQ with %d levels needs %d representatives and thresholds, got %d and %d", w.L, h, len(w.Reps), len(w.Thresh))
	}
	for k := range h {
		r, t := float64(w.Reps[k]), float64(w.Thresh[k])
		if !(r >= 0) || math.IsInf(r, 0) {
			return nil, fmt.Errorf("WEQ representative %d is %v", k, w.Reps[k])
		}
		if math.IsNaN(t) || k == 0 && t != 0 || k > 0 && t < float64(w.Thresh[k-1]) {
			return nil, fmt.Errorf("WEQ thresholds must start at 0 and not decrease (threshold %d is %v)", k, w.Thresh[k])
		}
	}
	if w.PerChannel != (len(w.Scales) > 0) {
		return nil, fmt.Errorf("WEQ per-channel flag %v with %d channel scales", w.PerChannel, len(w.Scales))
	}
	for c, sc := range w.Scales {
		if !(sc > 0) || math.IsInf(float64(sc), 0) {
			return nil, fmt.Errorf("WEQ channel %d scale %v is not a positive finite number", c, sc)
		}
	}
	q.Reps, q.Thresh, q.Scales = w.Reps, w.Thresh, w.Scales
	if len(w.Bounds) == h && w.Bounds[0] >= 0 && sortedInts(w.Bounds) {
		q.Bounds = w.Bounds // warm start for later refits
	}
	return q, nil
}

func validOLAQ(o *OLAQ) (*OLAQ, error) {
	q, err := NewOLAQ(o.Bits, o.Signed, o.Ratio, o.Format)
	if err != nil {
		return nil, err
	}
	for _, v := range []float32{o.T, o.Max} {
		if !(v >= 0) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("OLAQ threshold or maximum %v is not a non-negative finite number", v)
		}
	}
	if !(o.Momentum >= 0 && o.Momentum <= 1) {
		return nil, fmt.Errorf("OLAQ momentum %v outside [0, 1]", o.Momentum)
	}
	if o.Batches < 1 {
		return nil, fmt.Errorf("OLAQ quantizer was never fitted (batches %d)", o.Batches)
	}
	q.T, q.Max, q.Momentum, q.Batches = o.T, o.Max, o.Momentum, o.Batches
	return q, nil
}

func sortedInts(v []int) bool {
	for i := 1; i < len(v); i++ {
		if v[i] < v[i-1] {
			return false
		}
	}
	return true
}
