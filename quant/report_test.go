package quant

import (
	"math"
	"strings"
	"testing"
)

func TestSQNR(t *testing.T) {
	ref := []float32{1, -1, 1, -1}
	q := []float32{1.1, -0.9, 0.9, -1.1} // noise power 0.04, signal 4
	if got := SQNR(ref, q); math.Abs(got-20) > 1e-4 {
		t.Fatalf("SQNR %v dB, want 20", got)
	}
	if !math.IsInf(SQNR(ref, ref), 1) {
		t.Fatal("exact copy is not +Inf dB")
	}
}

func TestDescribe(t *testing.T) {
	u, _ := UniformFromRange(4, Symmetric, -0.7, 0.7)
	w, _ := NewWEQ(3, false)
	_ = w.Fit([]float32{-1, 0.1, 0.5, 2}, 1)
	l, _ := NewLogQuant(8, 2, -16)
	o, _ := NewOLAQ(4, true, 0.02, OutlierFP16)
	for _, c := range []struct {
		q    Quantizer
		want []string
	}{
		{u, []string{"symmetric", "4b", "0.7"}},
		{w, []string{"weq", "L=3", "±{0,"}},
		{l, []string{"L=8", "2^(4/16)", "0.5"}},
		{o, []string{"olaq", "4b", "r=2%", "fp16"}},
	} {
		d := c.q.Describe()
		for _, s := range c.want {
			if !strings.Contains(d, s) {
				t.Errorf("%q lacks %q", d, s)
			}
		}
	}
}
