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

// joinFloats formats values compactly (4 significant digits); more than 8
// values are shown as the first 4, "…" and the last 2.
func joinFloats(v []float32) string {
	var s []string
	for i, x := range v {
		if len(v) > 8 && i >= 4 && i < len(v)-2 {
			if i == 4 {
				s = append(s, "…")
			}
			continue
		}
		s = append(s, strconv.FormatFloat(float64(x), 'g', 4, 32))
	}
	return strings.Join(s, ",")
}
