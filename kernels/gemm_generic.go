package kernels

// kernelGeneric is the portable 4×8 micro-kernel. ap holds 4 values per
// depth step and bp 8; rows×cols of the tile are written to c.
func kernelGeneric(k int, ap, bp, c []float32, ldc int, alpha, beta float32, rows, cols int) {
	var acc [4][8]float32
	ap = ap[:4*k]
	bp = bp[:8*k]
	for p := 0; p < k; p++ {
		a := ap[p*4 : p*4+4 : p*4+4]
		b := bp[p*8 : p*8+8 : p*8+8]
		for r := 0; r < 4; r++ {
			av := a[r]
			row := &acc[r]
			row[0] += av * b[0]
			row[1] += av * b[1]
			row[2] += av * b[2]
			row[3] += av * b[3]
			row[4] += av * b[4]
			row[5] += av * b[5]
			row[6] += av * b[6]
			row[7] += av * b[7]
		}
	}
	storeTile(acc[:rows], c, ldc, alpha, beta, cols)
}

// storeTile writes alpha·acc + beta·C (or alpha·acc when beta == 0) into
// the first cols columns of len(acc) rows of c.
func storeTile(acc [][8]float32, c []float32, ldc int, alpha, beta float32, cols int) {
	for r := range acc {
		row := c[r*ldc : r*ldc+cols]
		if beta == 0 {
			for j := range row {
				row[j] = alpha * acc[r][j]
			}
		} else {
			for j := range row {
				row[j] = alpha*acc[r][j] + beta*row[j]
			}
		}
	}
}
