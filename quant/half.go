package quant

import "math"

// Float16Bits converts f to IEEE 754 binary16 bits, rounding to nearest,
// ties to even, with subnormals; overflow gives ±Inf and NaN a quiet NaN.
func Float16Bits(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15 // biased half exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal half: value in units of 2^−24 is M·2^(exp−126)
		// with M the 24-bit significand.
		shift := uint(126 - exp)
		if exp == 0 || shift > 24 {
			return sign // below half of the smallest subnormal
		}
		m := mant | 0x800000
		h := m >> shift
		rem, half := m&(1<<shift-1), uint32(1)<<(shift-1)
		if rem > half || rem == half && h&1 == 1 {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || rem == 0x1000 && h&1 == 1 {
		h++ // may carry into the exponent, up to Inf: correct
	}
	return sign | uint16(h)
}

// Float16ToFloat32 converts binary16 bits to float32 (exactly).
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		v := float32(mant) * (1.0 / (1 << 24)) // exact: ≤ 10 bits times a power of 2
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// RoundFloat16 rounds f to the nearest binary16 value (IEEE semantics:
// overflow becomes ±Inf).
func RoundFloat16(f float32) float32 { return Float16ToFloat32(Float16Bits(f)) }

// MaxFloat16 is the largest finite binary16 value.
const MaxFloat16 = 65504

// SaturateFloat16 rounds f to binary16 but clamps to ±MaxFloat16 instead of
// overflowing to ±Inf (what a stored outlier needs).
func SaturateFloat16(f float32) float32 {
	return RoundFloat16(max(-MaxFloat16, min(MaxFloat16, f)))
}
