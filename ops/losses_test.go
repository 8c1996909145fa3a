package ops

import (
	"math"
	"math/rand"
	"strings"
	"testing"

	"lowbit/internal/gradcheck"
	"lowbit/tensor"
)

// lossFDCheck compares a loss's returned gradient with central finite
// differences of the loss itself.
func lossFDCheck(t *testing.T, what string, logits *tensor.Tensor, loss func() (float64, *tensor.Tensor, error)) {
	t.Helper()
	_, grad, err := loss()
	if err != nil {
		t.Fatal(err)
	}
	const eps = 1e-2
	for j := range logits.Data {
		orig := logits.Data[j]
		logits.Data[j] = orig + eps
		up, _, _ := loss()
		logits.Data[j] = orig - eps
		down, _, _ := loss()
		logits.Data[j] = orig
		num := (up - down) / (2 * eps)
		if math.Abs(num-float64(grad.Data[j])) > 1e-4 {
			t.Fatalf("%s: element %d: gradient %g, finite difference %g", what, j, grad.Data[j], num)
		}
	}
}

func TestCrossEntropyValue(t *testing.T) {
	// Probabilities 1/4, 1/2, 1/4; label 0; smoothing 0.3 gives targets
	// 0.8, 0.1, 0.1 and loss 0.9·ln 4 + 0.1·ln 2 = 1.9·ln 2.
	logits := tensor.MustFromData([]float32{0, float32(math.Ln2), 0}, 1, 3)
	loss, g, err := CrossEntropy(logits, []int{0}, 0.3)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(loss-1.9*math.Ln2) > 1e-6 {
		t.Fatalf("smoothed loss %g, want %g", loss, 1.9*math.Ln2)
	}
	wantValues(t, "smoothed gradient", g, []float32{-0.55, 0.4, 0.15}, 1e-6)
	loss, _, err = CrossEntropy(logits, []int{1}, 0)
	if err != nil || math.Abs(loss-math.Ln2) > 1e-6 {
		t.Fatalf("plain loss %g (%v), want ln 2", loss, err)
	}
	// Huge logits stay finite.
	loss, g, err = CrossEntropy(tensor.MustFromData([]float32{1e4, -1e4, 0, 0}, 2, 2), []int{1, 0}, 0.1)
	if err != nil || math.IsInf(loss, 0) || math.IsNaN(loss) || g.HasNaN() {
		t.Fatalf("large logits: loss %g, gradient %v, %v", loss, g, err)
	}
}

func TestCrossEntropyGradient(t *testing.T) {
	rng := rand.New(rand.NewSource(14))
	logits := gradcheck.Rand(rng, 5, 7)
	labels := []int{0, 6, 3, 3, 1}
	for _, s := range []float32{0, 0.1} {
		lossFDCheck(t, "cross-entropy", logits, func() (float64, *tensor.Tensor, error) {
			return CrossEntropy(logits, labels, s)
		})
	}
}

func TestCrossEntropyErrors(t *testing.T) {
	logits := tensor.New(2, 3)
	_, _, err := CrossEntropy(logits, []int{0, 7}, 0)
	if err == nil || !strings.Contains(err.Error(), "label 7") {
		t.Fatalf("label 7 of 3 classes: %v", err)
	}
	if _, _, err := CrossEntropy(logits, []int{0}, 0); err == nil {
		t.Fatal("one label for two samples: no error")
	}
	if _, _, err := CrossEntropy(logits, []int{0, 1}, 1.5); err == nil {
		t.Fatal("smoothing 1.5: no error")
	}
	if _, _, err := CrossEntropy(tensor.New(6), []int{0}, 0); err == nil {
		t.Fatal("1-D logits: no error")
	}
}

func TestSoftCrossEntropy(t *testing.T) {
	rng := rand.New(rand.NewSource(15))
	logits, teacher := gradcheck.Rand(rng, 4, 6), gradcheck.Rand(rng, 4, 6)
	for _, temp := range []float32{0, 1, 2.5} {
		lossFDCheck(t, "soft cross-entropy", logits, func() (float64, *tensor.Tensor, error) {
			return SoftCrossEntropy(logits, teacher, temp)
		})
	}
	// With the teacher equal to the student the loss is the mean entropy
	// of the student and the gradient vanishes.
	loss, g, err := SoftCrossEntropy(logits, logits, 1)
	if err != nil {
		t.Fatal(err)
	}
	var ent float64
	lp := make([]float64, 6)
	for i := range 4 {
		logSoftmax64(logits.Data[i*6:(i+1)*6], 1, lp)
		for _, v := range lp {
			ent -= math.Exp(v) * v
		}
	}
	if math.Abs(loss-ent/4) > 1e-9 || g.MaxAbs() > 1e-7 {
		t.Fatalf("self-distillation: loss %g want %g, max |grad| %g", loss, ent/4, g.MaxAbs())
	}
	if _, _, err := SoftCrossEntropy(logits, tensor.New(4, 5), 1); err == nil {
		t.Fatal("teacher shape mismatch: no error")
	}
	if _, _, err := SoftCrossEntropy(logits, teacher, -1); err == nil {
		t.Fatal("negative temperature: no error")
	}
}

func TestTopK(t *testing.T) {
	logits := tensor.MustFromData([]float32{
		0.1, 0.5, 0.2, 0.9, // label 3: top-1
		0.7, 0.1, 0.6, 0.0, // label 2: second
		0.1, 0.2, 0.3, 0.4, // label 0: last
		0.5, 0.5, 0.1, 0.1, // label 1: tied for first
	}, 4, 4)
	labels := []int{3, 2, 0, 1}
	for k, want := range map[int]int{1: 2, 2: 3, 3: 3, 4: 4, 0: 0} {
		if got := TopK(logits, labels, k); got != want {
			t.Fatalf("top-%d: %d correct, want %d", k, got, want)
		}
	}
	if got := TopK(logits, []int{9, -1, 0, 1}, 4); got != 2 {
		t.Fatalf("out-of-range labels counted: %d", got)
	}
}
