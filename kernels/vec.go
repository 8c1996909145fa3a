package kernels

// Axpy adds alpha·x to y element-wise: y[i] += alpha·x[i] for i < len(x).
// y must be at least as long as x.
func Axpy(alpha float32, x, y []float32) {
	if len(x) == 0 {
		return
	}
	_ = y[len(x)-1]
	current.Load().axpy(alpha, x, y[:len(x)])
}

// Scale multiplies x in place by alpha.
func Scale(alpha float32, x []float32) {
	current.Load().scale(alpha, x)
}

// Add writes a[i]+b[i] into dst[i] for i < len(dst); a and b must be at
// least as long as dst. dst may alias a or b.
func Add(dst, a, b []float32) {
	if len(dst) == 0 {
		return
	}
	_ = a[len(dst)-1]
	_ = b[len(dst)-1]
	current.Load().add(dst, a[:len(dst)], b[:len(dst)])
}

// Dot returns the sum of x[i]·y[i] for i < len(x); y must be at least as
// long as x.
func Dot(x, y []float32) float32 {
	if len(x) == 0 {
		return 0
	}
	_ = y[len(x)-1]
	return current.Load().dot(x, y[:len(x)])
}

func axpyGeneric(alpha float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

func scaleGeneric(alpha float32, x []float32) {
	for i := range x {
		x[i] *= alpha
	}
}

func addGeneric(dst, a, b []float32) {
	a = a[:len(dst)]
	b = b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] + b[i]
	}
}

func dotGeneric(x, y []float32) float32 {
	y = y[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * y[i]
		s1 += x[i+1] * y[i+1]
		s2 += x[i+2] * y[i+2]
		s3 += x[i+3] * y[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}
