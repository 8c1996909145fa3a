package quant

import (
	"fmt"
	"strings"
)

// Text encodings, so that specs and reports read well as JSON.

// MarshalText implements encoding.TextMarshaler.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Role) UnmarshalText(b []byte) error {
	switch strings.ToLower(string(b)) {
	case "weight":
		*r = WeightRole
	case "activation":
		*r = ActivationRole
	default:
		return fmt.Errorf("quant: unknown role %q (want weight or activation)", b)
	}
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (m Method) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *Method) UnmarshalText(b []byte) error {
	v, err := ParseMethod(string(b))
	*m = v
	return err
}

// MarshalText implements encoding.TextMarshaler.
func (m CalibMethod) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *CalibMethod) UnmarshalText(b []byte) error {
	v, err := ParseCalibMethod(string(b))
	*m = v
	return err
}

// MarshalText implements encoding.TextMarshaler.
func (f OutlierFormat) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *OutlierFormat) UnmarshalText(b []byte) error {
	v, err := ParseOutlierFormat(string(b))
	*f = v
	return err
}

// MarshalText implements encoding.TextMarshaler.
func (s Scheme) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Scheme) UnmarshalText(b []byte) error {
	v, err := ParseScheme(string(b))
	*s = v
	return err
}
