package ops

import (
	"fmt"
	"math"

	"lowbit/tensor"
)

// The losses take logits [N, K] (one row of K class scores per sample),
// compute in float64 with a max-shifted (numerically stable) log-softmax,
// average over the batch and return the gradient of that mean with respect
// to the logits as a new tensor.

// CrossEntropy is the mean over the batch of −Σ_k t_k·log softmax(logits)_k
// with targets t = (1−smoothing)·onehot(label) + smoothing/K, as PyTorch's
// cross_entropy with label_smoothing. It reports a label outside [0, K) or
// a smoothing outside [0, 1].
func CrossEntropy(logits *tensor.Tensor, labels []int, smoothing float32) (loss float64, dlogits *tensor.Tensor, err error) {
	n, k, err := classRows(logits, "cross-entropy")
	if err != nil {
		return 0, nil, err
	}
	if len(labels) != n {
		return 0, nil, fmt.Errorf("cross-entropy: %d labels for a batch of %d", len(labels), n)
	}
	if !(smoothing >= 0 && smoothing <= 1) {
		return 0, nil, fmt.Errorf("cross-entropy: label smoothing %g outside [0, 1]", smoothing)
	}
	for i, l := range labels {
		if l < 0 || l >= k {
			return 0, nil, fmt.Errorf("cross-entropy: label %d of sample %d outside [0, %d)", l, i, k)
		}
	}
	off := float64(smoothing) / float64(k)
	on := 1 - float64(smoothing) + off
	dlogits = tensor.New(logits.Shape...)
	lp := make([]float64, k)
	for i, l := range labels {
		logSoftmax64(logits.Data[i*k:(i+1)*k], 1, lp)
		g := dlogits.Data[i*k : (i+1)*k]
		for j, v := range lp {
			t := off
			if j == l {
				t = on
			}
			loss -= t * v
			g[j] = float32((math.Exp(v) - t) / float64(n))
		}
	}
	return loss / float64(n), dlogits, nil
}

// SoftCrossEntropy is the distillation loss: the mean over the batch of
// −Σ_k softmax(teacher/T)_k · log softmax(logits/T)_k, with T = temperature
// (1 when 0). The gradient is (softmax(logits/T) − softmax(teacher/T))/(T·N);
// callers that want Hinton's T² scaling multiply loss and gradient by T².
func SoftCrossEntropy(logits, teacher *tensor.Tensor, temperature float32) (float64, *tensor.Tensor, error) {
	n, k, err := classRows(logits, "soft cross-entropy")
	if err != nil {
		return 0, nil, err
	}
	if teacher == nil || !tensor.SameShape(teacher.Shape, logits.Shape) {
		var ts []int
		if teacher != nil {
			ts = teacher.Shape
		}
		return 0, nil, fmt.Errorf("soft cross-entropy: teacher logits shape %v, student %v", ts, logits.Shape)
	}
	if temperature == 0 {
		temperature = 1
	}
	if !(temperature > 0) || math.IsInf(float64(temperature), 0) {
		return 0, nil, fmt.Errorf("soft cross-entropy: temperature %g is not positive and finite", temperature)
	}
	inv := 1 / float64(temperature)
	grad := tensor.New(logits.Shape...)
	ls, lt := make([]float64, k), make([]float64, k)
	var loss float64
	for i := range n {
		logSoftmax64(logits.Data[i*k:(i+1)*k], inv, ls)
		logSoftmax64(teacher.Data[i*k:(i+1)*k], inv, lt)
		g := grad.Data[i*k : (i+1)*k]
		for j := range ls {
			q := math.Exp(lt[j])
			loss -= q * ls[j]
			g[j] = float32((math.Exp(ls[j]) - q) * inv / float64(n))
		}
	}
	return loss / float64(n), grad, nil
}

// TopK counts the samples whose label is among the k largest logits (ties
// count in the label's favour; a NaN logit or an out-of-range label counts
// as wrong).
func TopK(logits *tensor.Tensor, labels []int, k int) int {
	n, classes, err := classRows(logits, "top-k")
	if err != nil || k <= 0 {
		return 0
	}
	correct := 0
	for i := range min(n, len(labels)) {
		l := labels[i]
		if l < 0 || l >= classes {
			continue
		}
		row := logits.Data[i*classes : (i+1)*classes]
		v := row[l]
		if v != v {
			continue
		}
		above := 0
		for _, u := range row {
			if u > v {
				above++
			}
		}
		if above < k {
			correct++
		}
	}
	return correct
}

// classRows checks that logits is a non-empty [N, K] tensor.
func classRows(logits *tensor.Tensor, what string) (n, k int, err error) {
	if logits == nil || len(logits.Shape) != 2 || logits.Shape[0] <= 0 || logits.Shape[1] <= 0 {
		var s []int
		if logits != nil {
			s = logits.Shape
		}
		return 0, 0, fmt.Errorf("%s: logits must be [N, K] with N, K > 0, got shape %v", what, s)
	}
	return logits.Shape[0], logits.Shape[1], nil
}

// logSoftmax64 writes log softmax(scale·x) into out.
func logSoftmax64(x []float32, scale float64, out []float64) {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, scale*float64(v))
	}
	var sum float64
	for _, v := range x {
		sum += math.Exp(scale*float64(v) - m)
	}
	lse := m + math.Log(sum)
	for j, v := range x {
		out[j] = scale*float64(v) - lse
	}
}
