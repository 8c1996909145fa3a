package quant

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// checkFinite reports the first NaN or ±Inf in x.
func checkFinite(x []float32) error {
	for i, v := range x {
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("value %v at index %d is not finite", v, i)
		}
	}
	return nil
}

// joinFloats formats values compactly (4 significant digits).
func joinFloats(v []float32) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatFloat(float64(x), 'g', 4, 32)
	}
	return strings.Join(s, ",")
}
