package quant

import (
	"math"
	"math/rand"
	"sort"
	"testing"
)

func TestFloat16RoundTripAllPatterns(t *testing.T) {
	for h := range 1 << 16 {
		f := Float16ToFloat32(uint16(h))
		if math.IsNaN(float64(f)) {
			if g := Float16Bits(f); g&0x7c00 != 0x7c00 || g&0x3ff == 0 {
				t.Fatalf("NaN %#04x → %#04x", h, g)
			}
			continue
		}
		if g := Float16Bits(f); g != uint16(h) {
			t.Fatalf("%#04x → %v → %#04x", h, f, g)
		}
		if RoundFloat16(f) != f && !(f == 0) {
			t.Fatalf("representable %v not kept", f)
		}
	}
}

func TestFloat16Rounding(t *testing.T) {
	cases := []struct{ in, want float32 }{
		{1 + 1.0/2048, 1},                        // tie → even (1)
		{1 + 3.0/2048, 1 + 2.0/1024},             // tie → even (mantissa 2)
		{1 + 1.0/2048 + 1.0/65536, 1 + 1.0/1024}, // just above the tie
		{65504, 65504},
		{65519, 65504},
		{65520, float32(math.Inf(1))},    // IEEE overflow
		{float32(math.Ldexp(1, -25)), 0}, // tie between 0 and the smallest subnormal
		{float32(math.Ldexp(1.0001, -25)), float32(math.Ldexp(1, -24))},
		{float32(math.Ldexp(3, -25)), float32(math.Ldexp(1, -23))}, // tie → even (2 units)
		{float32(math.Ldexp(1, -14)), float32(math.Ldexp(1, -14))}, // smallest normal
		{-2.5, -2.5},
		{0.1, 0.0999755859375},
	}
	for _, c := range cases {
		if got := RoundFloat16(c.in); got != c.want {
			t.Errorf("RoundFloat16(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if SaturateFloat16(1e9) != 65504 || SaturateFloat16(-1e9) != -65504 {
		t.Error("SaturateFloat16 does not saturate")
	}
}

// Random float32 values round to the nearest binary16 (ties to even),
// checked against a search over all finite positive halves.
func TestFloat16NearestAgainstTable(t *testing.T) {
	var halves []float64
	for h := 0; h < 0x7c00; h++ {
		halves = append(halves, float64(Float16ToFloat32(uint16(h))))
	}
	rng := rand.New(rand.NewSource(1))
	for range 20000 {
		f := float32(math.Ldexp(rng.Float64(), rng.Intn(44)-28))
		v := float64(f)
		i := sort.SearchFloat64s(halves, v)
		var want float64
		switch {
		case i == len(halves):
			want = halves[len(halves)-1]
			if v-want >= 16 { // beyond 65520: Inf
				want = math.Inf(1)
			}
		case halves[i] == v || i == 0:
			want = halves[i]
		default:
			lo, hi := halves[i-1], halves[i]
			switch {
			case v-lo < hi-v:
				want = lo
			case v-lo > hi-v:
				want = hi
			case (i-1)%2 == 0:
				want = lo
			default:
				want = hi
			}
		}
		if got := float64(RoundFloat16(f)); got != want {
			t.Fatalf("RoundFloat16(%v) = %v, want %v", f, got, want)
		}
	}
}
