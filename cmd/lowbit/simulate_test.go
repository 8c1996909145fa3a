package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runSimulate(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return execCmd(t, newSimulateCmd(), args...)
}

func TestSimulateJSON(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "e.svg")
	out, err := runSimulate(t, "--net", "resnet18", "--accel", "olaccel,zena16", "--json", "--plot", svg)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Results []struct {
			Accel     string             `json:"accel"`
			EnergyUJ  float64            `json:"energy_uj"`
			Cycles    float64            `json:"cycles"`
			Breakdown map[string]float64 `json:"breakdown"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	if len(rep.Results) != 2 || rep.Results[0].Accel != "olaccel" || rep.Results[0].EnergyUJ <= 0 ||
		rep.Results[0].Cycles <= 0 || rep.Results[0].Breakdown["dram"] <= 0 {
		t.Errorf("results %+v", rep.Results)
	}
	if b, err := os.ReadFile(svg); err != nil || !bytes.HasPrefix(b, []byte("<svg")) {
		t.Errorf("--plot wrote %q, %v", b, err)
	}
}

func TestSimulateErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--net", "lenet"}, "lenet"},
		{[]string{"--net", "alexnet", "--accel", "tpu"}, "tpu"},
		{[]string{"--net", "alexnet", "--outlier-ratio", "1.5"}, "--outlier-ratio"},
		{[]string{"--net", "alexnet", "--config", "/nonexistent/arch.json"}, "/nonexistent/arch.json"},
		{[]string{"--net", "alexnet", "--data", "mnist"}, "--data"},
		{[]string{}, "--net"},
	} {
		_, err := runSimulate(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one mentioning %q", c.args, err, c.want)
		}
	}
}

func TestSimulateDumpConfigRoundTrip(t *testing.T) {
	out, err := runSimulate(t, "--dump-config")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "arch.json")
	if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	text, err := runSimulate(t, "--net", "alexnet", "--config", p, "--accel", "olaccel,zena16")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "43.5 %") || !strings.Contains(text, p) {
		t.Errorf("text report with --config lacks the paper figure or the config path:\n%s", text)
	}
}
