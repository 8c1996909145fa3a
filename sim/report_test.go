package sim

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
)

func TestReportJSON(t *testing.T) {
	cfg := DefaultConfig()
	rep, err := Run(cfg, ResNet18(), []string{"olaccel", "zena16"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Results []struct {
			Accel     string              `json:"accel"`
			EnergyUJ  float64             `json:"energy_uj"`
			Cycles    float64             `json:"cycles"`
			Breakdown map[string]*float64 `json:"breakdown"`
			Layers    []json.RawMessage   `json:"layers"`
		} `json:"results"`
		Comparisons []Comparison `json:"comparisons"`
		Highway     []HighwayRow `json:"highway_overhead"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Results) != 2 || got.Results[0].Accel != "olaccel" || got.Results[1].Accel != "zena16" {
		t.Fatalf("results %+v", got.Results)
	}
	for i, r := range got.Results {
		sum := 0.0
		for _, k := range []string{"dram", "buffer", "local", "mac", "static"} {
			v := r.Breakdown[k]
			if v == nil {
				t.Fatalf("%s: breakdown lacks %q", r.Accel, k)
			}
			sum += *v
		}
		want := rep.Results[i].Energy.Total() / 1e6
		if math.Abs(r.EnergyUJ-want) > 1e-9*want || math.Abs(sum-r.EnergyUJ) > 1e-9*want {
			t.Errorf("%s: energy_uj %g, breakdown sum %g, want %g", r.Accel, r.EnergyUJ, sum, want)
		}
		if r.Cycles != rep.Results[i].Cycles || len(r.Layers) != 21+8 {
			t.Errorf("%s: cycles %g, %d layer rows", r.Accel, r.Cycles, len(r.Layers))
		}
	}
	if len(got.Comparisons) != 1 || got.Comparisons[0].Paper == nil || *got.Comparisons[0].Paper != 62.2 {
		t.Errorf("comparisons %+v", got.Comparisons)
	}
	if len(got.Highway) != 2 {
		t.Errorf("highway rows %+v", got.Highway)
	}
}

func TestReportTextAndSVG(t *testing.T) {
	cfg := DefaultConfig()
	w, _ := Builtin("vgg16")
	rep, err := Run(cfg, w, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"conv5_3", "fc8", "olaccel8", "eyeriss16", "56.7 %", "36.3 %", "energy reduction"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q", want)
		}
	}
	var svg bytes.Buffer
	if err := rep.WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(&svg)
	rects := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			rects++
		}
	}
	// background + 6 bars × (DRAM, buffer, local, MAC dense) at least + legend.
	if rects < 1+6*4+len(chartSegments) {
		t.Errorf("SVG has %d rects", rects)
	}
}
