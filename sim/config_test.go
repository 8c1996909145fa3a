package sim

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultConfig(t *testing.T) {
	cfg := DefaultConfig()
	want := []string{"olaccel", "olaccel8", "zena16", "zena8", "eyeriss16", "eyeriss8"}
	if got := strings.Join(cfg.AccelNames(), ","); got != strings.Join(want, ",") {
		t.Errorf("designs %s, want %s", got, strings.Join(want, ","))
	}
	if a, err := cfg.Accel("olaccel"); err != nil || a.Kind != KindOLAccel || a.Lanes.V() != 16 {
		t.Errorf("olaccel: %+v, %v", a, err)
	}
	if _, err := cfg.Accel("tpu"); err == nil || !strings.Contains(err.Error(), "zena16") {
		t.Errorf("unknown design error %v should list the designs", err)
	}
}

// mutate decodes the default config into generic JSON, applies f and
// parses the result.
func mutate(t *testing.T, f func(m map[string]any)) error {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(DefaultConfigJSON(), &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParseConfig(b, "my-arch.json")
	return err
}

func accel(m map[string]any, name string) map[string]any {
	for _, a := range m["accelerators"].([]any) {
		if a := a.(map[string]any); a["name"] == name {
			return a
		}
	}
	return nil
}

func TestConfigErrorsNameFieldAndFile(t *testing.T) {
	for _, c := range []struct {
		name string
		f    func(m map[string]any)
		want []string
	}{
		{"missing value", func(m map[string]any) { delete(accel(m, "zena8")["groups"].(map[string]any), "value") },
			[]string{"my-arch.json", "accelerators[zena8].groups", "value"}},
		{"missing field", func(m map[string]any) { delete(m["energy"].(map[string]any), "dram_pj_per_bit") },
			[]string{"my-arch.json", "energy.dram_pj_per_bit"}},
		{"undocumented", func(m map[string]any) {
			p := accel(m, "olaccel")["outlier_bits"].(map[string]any)
			delete(p, "source")
			delete(p, "assumption")
		}, []string{"accelerators[olaccel].outlier_bits", "source", "assumption"}},
		{"olaccel-only field missing on olaccel", func(m map[string]any) { delete(accel(m, "olaccel8"), "outlier_act_macs") },
			[]string{"accelerators[olaccel8].outlier_act_macs"}},
		{"unknown field", func(m map[string]any) { accel(m, "eyeriss8")["lanez"] = 3 },
			[]string{"my-arch.json", "lanez"}},
		{"wrong type", func(m map[string]any) { m["clock_mhz"].(map[string]any)["value"] = "fast" },
			[]string{"my-arch.json", "clock_mhz.value"}},
		{"bad kind", func(m map[string]any) { accel(m, "zena16")["kind"] = "tpu" },
			[]string{"accelerators[zena16].kind", "tpu"}},
		{"duplicate", func(m map[string]any) {
			m["accelerators"] = append(m["accelerators"].([]any), accel(m, "zena16"))
		}, []string{"accelerators[zena16]", "duplicate"}},
		{"out of range", func(m map[string]any) { accel(m, "zena16")["lanes"].(map[string]any)["value"] = 0 },
			[]string{"accelerators[zena16].lanes", "positive"}},
	} {
		err := mutate(t, c.f)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, w)
			}
		}
	}
	// Non-OLAccel designs need no outlier fields.
	if err := mutate(t, func(m map[string]any) { delete(accel(m, "zena16"), "outlier_bits") }); err != nil {
		t.Errorf("zena16 without outlier_bits: %v", err)
	}
}

func TestLoadConfigFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "arch.json")
	if _, err := LoadConfig(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("missing file: error %v should name %s", err, p)
	}
	if err := os.WriteFile(p, []byte("{\n  \"name\": \"x\",\n  \"clock_mhz\": {\"value\": 250,,}\n}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(p); err == nil || !strings.Contains(err.Error(), p+":3:") {
		t.Errorf("syntax error %v should give file and line 3", err)
	}
	if err := os.WriteFile(p, DefaultConfigJSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.File != p || len(cfg.Accelerators) != 6 {
		t.Errorf("loaded %s with %d designs", cfg.File, len(cfg.Accelerators))
	}
}
