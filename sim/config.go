package sim

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
)

//go:embed arch.json
var defaultArch []byte

// Note documents where a configuration value comes from: a published
// source, or an explicitly stated assumption. Every value needs one.
type Note struct {
	Source     string `json:"source,omitempty"`
	Assumption string `json:"assumption,omitempty"`
}

// Num is a numeric configuration value with its note.
type Num struct {
	Value *float64 `json:"value"`
	Note
}

// V returns the value (0 when unset; Validate rejects unset values).
func (n Num) V() float64 {
	if n.Value == nil {
		return 0
	}
	return *n.Value
}

// Flag is a boolean configuration value with its note.
type Flag struct {
	Value *bool `json:"value"`
	Note
}

// V returns the value (false when unset).
func (f Flag) V() bool { return f.Value != nil && *f.Value }

// Energy holds the per-operation and per-access energies shared by all
// designs (one technology). Memory energies are per bit and scale linearly
// with width; multipliers scale with the product of operand widths.
type Energy struct {
	MultPJPerBit2  Num `json:"mult_pj_per_bit2"`
	AddPJPerBit    Num `json:"add_pj_per_bit"`
	RFPJPerBit     Num `json:"rf_pj_per_bit"`
	NoCPJPerBit    Num `json:"noc_pj_per_bit"`
	BufferPJPerBit Num `json:"buffer_pj_per_bit"`
	DRAMPJPerBit   Num `json:"dram_pj_per_bit"`
}

// Accel describes one accelerator design. Fields tagged sim:"olaccel" are
// required only for Kind "olaccel".
type Accel struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Description string `json:"description"`

	Groups Num `json:"groups"`
	Lanes  Num `json:"lanes"`

	WeightBits        Num `json:"weight_bits"`
	ActBits           Num `json:"act_bits"`
	PsumBits          Num `json:"psum_bits"`
	FirstLayerActBits Num `json:"first_layer_act_bits"`

	OutlierBits               Num `json:"outlier_bits" sim:"olaccel"`
	OutlierIndexBits          Num `json:"outlier_index_bits" sim:"olaccel"`
	OutlierWeightMACsPerGroup Num `json:"outlier_weight_macs_per_group" sim:"olaccel"`
	OutlierActMACs            Num `json:"outlier_act_macs" sim:"olaccel"`

	SkipZeroActs    Flag `json:"skip_zero_acts"`
	SkipZeroWeights Flag `json:"skip_zero_weights"`
	SparseWeights   Flag `json:"sparse_weights"`
	CompressActs    Flag `json:"compress_acts_dram"`
	ZeroIndexBits   Num  `json:"zero_index_bits"`

	BufferKB         Num `json:"buffer_kb"`
	PsumEntries      Num `json:"psum_entries"`
	ActReuse         Num `json:"act_reuse"`
	DRAMBitsPerCycle Num `json:"dram_bits_per_cycle"`
	LoadImbalance    Num `json:"load_imbalance"`
	StaticMW         Num `json:"static_mw"`
	PsumRFAccesses   Num `json:"psum_rf_accesses"`
}

// Config is a complete simulator configuration.
type Config struct {
	Name         string  `json:"name"`
	Description  string  `json:"description"`
	ClockMHz     Num     `json:"clock_mhz"`
	HighwayBits  Num     `json:"highway_bits"`
	DRAMStaticMW Num     `json:"dram_static_mw"`
	Energy       Energy  `json:"energy"`
	Accelerators []Accel `json:"accelerators"`

	// File is where the configuration was read from ("" for the default).
	File string `json:"-"`
}

// Kinds of accelerator models.
const (
	KindOLAccel = "olaccel"
	KindZeNA    = "zena"
	KindEyeriss = "eyeriss"
)

// DefaultConfig returns the embedded default configuration (arch.json).
func DefaultConfig() *Config {
	c, err := ParseConfig(defaultArch, "arch.json (embedded)")
	if err != nil {
		panic("sim: embedded arch.json is invalid: " + err.Error()) // a build-time bug, not user input
	}
	return c
}

// DefaultConfigJSON returns the embedded default configuration file.
func DefaultConfigJSON() []byte { return bytes.Clone(defaultArch) }

// LoadConfig reads and validates a configuration file.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	return ParseConfig(b, path)
}

// ParseConfig decodes and validates a configuration; name is used in errors.
func ParseConfig(b []byte, name string) (*Config, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			line, col := lineCol(b, se.Offset)
			return nil, fmt.Errorf("config %s:%d:%d: %w", name, line, col, err)
		case errors.As(err, &te):
			line, col := lineCol(b, te.Offset)
			return nil, fmt.Errorf("config %s:%d:%d: field %s: %w", name, line, col, te.Field, err)
		}
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("config %s: trailing data after the JSON object", name)
	}
	c.File = name
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	return &c, nil
}

func lineCol(b []byte, off int64) (int, int) {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	pre := b[:off]
	line := bytes.Count(pre, []byte("\n")) + 1
	col := int(off) - bytes.LastIndexByte(pre, '\n')
	return line, col
}

// Validate checks that every value is present, documented and in range.
func (c *Config) Validate() error {
	if err := checkNotes(reflect.ValueOf(c).Elem(), "", ""); err != nil {
		return err
	}
	if len(c.Accelerators) == 0 {
		return errors.New("accelerators: none defined")
	}
	seen := map[string]bool{}
	for i := range c.Accelerators {
		a := &c.Accelerators[i]
		where := fmt.Sprintf("accelerators[%d]", i)
		if a.Name == "" {
			return fmt.Errorf("%s.name: empty", where)
		}
		where = fmt.Sprintf("accelerators[%s]", a.Name)
		if seen[a.Name] {
			return fmt.Errorf("%s: duplicate name", where)
		}
		seen[a.Name] = true
		switch a.Kind {
		case KindOLAccel, KindZeNA, KindEyeriss:
		default:
			return fmt.Errorf("%s.kind: %q is not one of olaccel, zena, eyeriss", where, a.Kind)
		}
		if err := checkNotes(reflect.ValueOf(a).Elem(), where, a.Kind); err != nil {
			return err
		}
		if err := a.checkRanges(where); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		name string
		n    Num
	}{{"clock_mhz", c.ClockMHz}, {"highway_bits", c.HighwayBits}, {"dram_static_mw", c.DRAMStaticMW}, {"energy.mult_pj_per_bit2", c.Energy.MultPJPerBit2},
		{"energy.add_pj_per_bit", c.Energy.AddPJPerBit}, {"energy.rf_pj_per_bit", c.Energy.RFPJPerBit},
		{"energy.noc_pj_per_bit", c.Energy.NoCPJPerBit}, {"energy.buffer_pj_per_bit", c.Energy.BufferPJPerBit},
		{"energy.dram_pj_per_bit", c.Energy.DRAMPJPerBit}} {
		if f.n.V() < 0 || (f.name == "clock_mhz" || f.name == "highway_bits") && f.n.V() <= 0 {
			return fmt.Errorf("%s: value %g out of range", f.name, f.n.V())
		}
	}
	return nil
}

func (a *Accel) checkRanges(where string) error {
	pos := []struct {
		name string
		v    float64
	}{{"groups", a.Groups.V()}, {"lanes", a.Lanes.V()}, {"weight_bits", a.WeightBits.V()},
		{"act_bits", a.ActBits.V()}, {"psum_bits", a.PsumBits.V()}, {"first_layer_act_bits", a.FirstLayerActBits.V()},
		{"buffer_kb", a.BufferKB.V()}, {"psum_entries", a.PsumEntries.V()}, {"act_reuse", a.ActReuse.V()},
		{"dram_bits_per_cycle", a.DRAMBitsPerCycle.V()}, {"load_imbalance", a.LoadImbalance.V()}}
	if a.Kind == KindOLAccel {
		pos = append(pos, struct {
			name string
			v    float64
		}{"outlier_bits", a.OutlierBits.V()}, struct {
			name string
			v    float64
		}{"outlier_act_macs", a.OutlierActMACs.V()})
	}
	for _, p := range pos {
		if !(p.v > 0) {
			return fmt.Errorf("%s.%s: value %g must be positive", where, p.name, p.v)
		}
	}
	if a.ActReuse.V() < 1 || a.LoadImbalance.V() < 1 || a.PsumEntries.V() < 1 {
		return fmt.Errorf("%s: act_reuse, load_imbalance and psum_entries must be ≥ 1", where)
	}
	if a.ZeroIndexBits.V() < 0 || a.StaticMW.V() < 0 || a.PsumRFAccesses.V() < 0 || a.OutlierIndexBits.V() < 0 || a.OutlierWeightMACsPerGroup.V() < 0 {
		return fmt.Errorf("%s: zero_index_bits, static_mw, psum_rf_accesses, outlier_index_bits and outlier_weight_macs_per_group must be ≥ 0", where)
	}
	return nil
}

var (
	numType  = reflect.TypeFor[Num]()
	flagType = reflect.TypeFor[Flag]()
)

// checkNotes walks a struct and requires every Num/Flag to have a value and
// a source or assumption note. kind selects which sim-tagged fields apply.
func checkNotes(v reflect.Value, prefix, kind string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("json"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		path := tag
		if prefix != "" {
			path = prefix + "." + tag
		}
		if req := f.Tag.Get("sim"); req != "" && req != kind {
			continue
		}
		fv := v.Field(i)
		switch f.Type {
		case numType, flagType:
			var note Note
			var set bool
			if f.Type == numType {
				n := fv.Interface().(Num)
				note, set = n.Note, n.Value != nil
			} else {
				fl := fv.Interface().(Flag)
				note, set = fl.Note, fl.Value != nil
			}
			if !set {
				return fmt.Errorf("%s: missing \"value\"", path)
			}
			if strings.TrimSpace(note.Source) == "" && strings.TrimSpace(note.Assumption) == "" {
				return fmt.Errorf("%s: needs a \"source\" or \"assumption\" note", path)
			}
		default:
			if f.Type.Kind() == reflect.Struct {
				if err := checkNotes(fv, path, kind); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Accel returns the design with the given name.
func (c *Config) Accel(name string) (*Accel, error) {
	for i := range c.Accelerators {
		if c.Accelerators[i].Name == name {
			return &c.Accelerators[i], nil
		}
	}
	return nil, fmt.Errorf("accelerator %q not in config %s (have %s)", name, c.File, strings.Join(c.AccelNames(), ", "))
}

// AccelNames lists the configured designs in file order.
func (c *Config) AccelNames() []string {
	names := make([]string, len(c.Accelerators))
	for i, a := range c.Accelerators {
		names[i] = a.Name
	}
	return names
}
