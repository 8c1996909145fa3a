package quant

import (
	"math"
	"slices"
	"testing"
)

// The example of the ONNX QuantizeLinear specification (uint8, scale 2,
// zero point 128), which exercises half-to-even rounding and saturation.
func TestUniformMatchesONNXQuantizeLinear(t *testing.T) {
	u := &Uniform{Bits: 8, Scheme: Asymmetric, Scale: []float32{2}, ZeroPoint: []int32{128}}
	x := []float32{0, 2, 3, 1000, -254, -1000, 1, 5, -1, -3, 7}
	want := []int32{128, 129, 130, 255, 1, 0, 128, 130, 128, 126, 132}
	q := make([]int32, len(x))
	if err := u.Quantize(x, q); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(q, want) {
		t.Fatalf("codes %v, want %v", q, want)
	}
	y := make([]float32, len(x))
	if err := u.Dequantize(q, y); err != nil {
		t.Fatal(err)
	}
	fq := make([]float32, len(x))
	if err := u.Forward(x, fq); err != nil {
		t.Fatal(err)
	}
	for i := range y {
		if y[i] != float32(want[i]-128)*2 || fq[i] != y[i] {
			t.Fatalf("index %d: dequantized %v, fake-quantized %v", i, y[i], fq[i])
		}
	}
}

func TestUniformFromRange(t *testing.T) {
	// Asymmetric [-1, 3] at 8 bits: Δ = 4/255, zp = round(63.75) = 64.
	u, err := UniformFromRange(8, Asymmetric, -1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scale[0] != float32(4.0/255) || u.ZeroPoint[0] != 64 {
		t.Fatalf("scale %v zp %v", u.Scale[0], u.ZeroPoint[0])
	}
	// Asymmetric always represents 0 exactly, even for a positive range.
	u, _ = UniformFromRange(4, Asymmetric, 2, 5)
	y := []float32{0}
	_ = u.Forward(y, y)
	if y[0] != 0 || u.ZeroPoint[0] != 0 {
		t.Fatalf("0 → %v with zp %d", y[0], u.ZeroPoint[0])
	}
	// Symmetric 4 bits on [-0.7, 0.5]: m = 7, Δ = 0.1, 15 levels.
	u, _ = UniformFromRange(4, Symmetric, -0.7, 0.5)
	if math.Abs(float64(u.Scale[0])-0.1) > 1e-7 {
		t.Fatalf("symmetric scale %v", u.Scale[0])
	}
	lv := u.Levels()
	if len(lv) != 15 || lv[0] != -lv[14] || lv[7] != 0 {
		t.Fatalf("symmetric levels %v", lv)
	}
	x := []float32{0.26, -0.04, 0.06, 2, -2}
	_ = u.Forward(x, x)
	want := []float32{0.3, 0, 0.1, 0.7, -0.7}
	for i := range x {
		if math.Abs(float64(x[i]-want[i])) > 1e-6 {
			t.Fatalf("symmetric forward %v, want %v", x, want)
		}
	}
	// Unsigned 2 bits on [0, 3]: Δ = 1; negatives go to 0.
	u, _ = UniformFromRange(2, Unsigned, -5, 3)
	x = []float32{-1, 3.7, 1.5, 2.5, 0.4}
	_ = u.Forward(x, x)
	if !slices.Equal(x, []float32{0, 3, 2, 2, 0}) {
		t.Fatalf("unsigned forward %v", x)
	}
	if len(u.Levels()) != 4 {
		t.Fatalf("unsigned 2-bit levels %v", u.Levels())
	}
	// A zero range does not divide by zero.
	u, _ = UniformFromRange(8, Symmetric, 0, 0)
	x = []float32{0, 0}
	if err := u.Forward(x, x); err != nil || x[0] != 0 || u.Scale[0] != 1 {
		t.Fatalf("zero range: %v %v %v", err, x, u.Scale)
	}
}

func TestUniformPerChannel(t *testing.T) {
	u, err := NewUniform(4, Symmetric, []float32{-3.5, -14}, []float32{1, 4})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(u.Scale, []float32{0.5, 2}) {
		t.Fatalf("scales %v", u.Scale)
	}
	x := []float32{0.75, 1.25, 3, 5} // channel 0 (Δ 0.5), channel 1 (Δ 2)
	y := make([]float32, 4)
	if err := u.Forward(x, y); err != nil {
		t.Fatal(err)
	}
	// 1.5 → 2 and 2.5 → 2 (ties to even) in both channels.
	want := []float32{1, 1, 4, 4}
	if !slices.Equal(y, want) {
		t.Fatalf("per-channel forward %v, want %v", y, want)
	}
	if err := u.Forward(make([]float32, 3), make([]float32, 3)); err == nil {
		t.Fatal("3 values accepted by a 2-channel quantizer")
	}
}

func TestUniformMaskAndBits(t *testing.T) {
	u, _ := UniformFromRange(3, Symmetric, -3, 3) // Δ = 1, codes [-3, 3]
	x := []float32{-3.4, -3.6, 0, 3.49, 3.5, 100}
	m := make([]float32, len(x))
	if err := u.Mask(x, m); err != nil {
		t.Fatal(err)
	}
	// 3.5 rounds to 4 (ties to even), outside [−3, 3].
	if !slices.Equal(m, []float32{1, 0, 1, 1, 0, 0}) {
		t.Fatalf("mask %v", m)
	}
	for _, b := range []int{0, 9, 12, 17, 32} {
		if CheckBits(b, Unsigned) == nil {
			t.Errorf("%d bits accepted", b)
		}
	}
	if CheckBits(1, Symmetric) == nil || CheckBits(1, Unsigned) != nil || CheckBits(16, Symmetric) != nil {
		t.Error("1-bit / 16-bit validation")
	}
	u16, _ := UniformFromRange(16, Symmetric, -1, 1)
	if qmin, qmax := u16.QRange(); qmin != -32767 || qmax != 32767 {
		t.Errorf("16-bit range [%d, %d]", qmin, qmax)
	}
	if _, err := UniformFromRange(8, Asymmetric, 2, 1); err == nil {
		t.Error("lo > hi accepted")
	}
}
