package sim

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

func envf(k string, d float64) float64 {
	if s := os.Getenv(k); s != "" {
		v, _ := strconv.ParseFloat(s, 64)
		return v
	}
	return d
}

func setN(n *Num, v float64) { n.Value = &v }

func TestExplore(t *testing.T) {
	cfg := DefaultConfig()
	setN(&cfg.DRAMStaticMW, envf("DS", cfg.DRAMStaticMW.V()))
	for i := range cfg.Accelerators {
		a := &cfg.Accelerators[i]
		setN(&a.StaticMW, envf("CS", a.StaticMW.V()))
		if a.Kind == KindOLAccel {
			setN(&a.PsumRFAccesses, envf("OPSUM", a.PsumRFAccesses.V()))
			setN(&a.Groups, envf("OG", a.Groups.V()))
			if os.Getenv("OSPARSE") != "" {
				v := true
				a.SparseWeights.Value = &v
				setN(&a.ZeroIndexBits, 4)
			}
			if os.Getenv("OSKIPW") != "" {
				v := true
				a.SkipZeroWeights.Value = &v
			}
		} else {
			setN(&a.PsumRFAccesses, envf("BPSUM", a.PsumRFAccesses.V()))
		}
		setN(&a.DRAMBitsPerCycle, envf("BW", a.DRAMBitsPerCycle.V()))
	}
	verbose := os.Getenv("V") != ""
	for _, n := range []string{"alexnet", "vgg16", "resnet18", "alexnet-dense", "vgg16-dense"} {
		w, _ := Builtin(n)
		res := map[string]*Result{}
		for _, a := range cfg.AccelNames() {
			r, err := Simulate(cfg, a, w, Options{})
			if err != nil {
				t.Fatal(err)
			}
			res[a] = r
			b := r.Energy
			T := b.Total()
			if verbose {
				fmt.Printf("%-15s %-10s E=%8.1f uJ  dram %4.1f%% buf %4.1f%% local %4.1f%% mac %4.1f%% st %4.1f%% cyc %.3g\n", n, a, T/1e6, 100*b.DRAM/T, 100*b.Buffer/T, 100*b.Local/T, 100*b.MAC()/T, 100*b.Static/T, r.Cycles)
			}
		}
		o16, o8 := res["olaccel"].Energy.Total(), res["olaccel8"].Energy.Total()
		z16, z8 := res["zena16"].Energy.Total(), res["zena8"].Energy.Total()
		fmt.Printf("%-9s => vs zena16 %5.1f%%  ola8 vs zena8 %5.1f%%  ola16 vs zena8 %5.1f%%  z8/z16 %.2f\n", n, 100*(1-o16/z16), 100*(1-o8/z8), 100*(1-o16/z8), z8/z16)
	}
	fmt.Println("paper      => 43.5/27.0  56.7/36.3  62.2/49.5 ; z8/z16 0.77 0.68 0.75")
}
