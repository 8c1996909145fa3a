package train

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"testing"

	"lowbit/data"
	"lowbit/graph"
	"lowbit/models"
)

func mnist(t *testing.T, split string, n int) *data.Dataset {
	t.Helper()
	ds, err := data.Open("mnist", split)
	if err != nil {
		t.Fatal(err)
	}
	return ds.Head(n)
}

func lenet(t *testing.T, seed int64) *graph.Graph {
	t.Helper()
	g, err := models.Build("lenet5", models.Config{InC: 1, H: 28, W: 28, Classes: 10, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestLossFallsOnARealBatch(t *testing.T) {
	ds := mnist(t, "train", 128)
	x, y, err := ds.Batch(seq(128)...)
	if err != nil {
		t.Fatal(err)
	}
	g := lenet(t, 3)
	tr, err := NewTrainer(g, Options{Epochs: 1, StepsPerEpoch: 40, LR: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	first, _, err := tr.TrainStep(x, y)
	if err != nil {
		t.Fatal(err)
	}
	var last float64
	for i := 0; i < 39; i++ {
		if last, _, err = tr.TrainStep(x, y); err != nil {
			t.Fatal(err)
		}
	}
	if !(last < 0.3*first) {
		t.Fatalf("loss did not fall: first %.4f, last %.4f", first, last)
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func run(t *testing.T, g *graph.Graph, trainSet *data.Dataset, epochs int, ctx context.Context, before func(*Trainer)) (*Trainer, []EpochStats) {
	t.Helper()
	l, err := data.NewLoader(trainSet, data.LoaderConfig{Batch: 50, Shuffle: true, Seed: 7, DropLast: true, Augment: data.Augment{Pad: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tr, err := NewTrainer(g, Options{Epochs: epochs, StepsPerEpoch: trainSet.N() / 50, LR: 0.05, WeightDecay: 5e-4, Nesterov: true, WarmupEpochs: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(tr)
	}
	hist, err := tr.Run(ctx, Loader{L: l}, nil)
	if err != nil && err != errStop {
		t.Fatal(err)
	}
	return tr, hist
}

func TestTrainingBeatsChanceAndIsDeterministic(t *testing.T) {
	trainSet, testSet := mnist(t, "train", 1500), mnist(t, "test", 1000)
	g1 := lenet(t, 1)
	_, h1 := run(t, g1, trainSet, 2, context.Background(), nil)
	el, err := data.NewEvalLoader(testSet, 250)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Evaluate(context.Background(), g1, Loader{L: el})
	if err != nil {
		t.Fatal(err)
	}
	if m.Images != 1000 || m.Top1 < 0.8 || m.Top5 < m.Top1 {
		t.Fatalf("after 2 epochs on 1500 images: %+v (want top-1 ≥ 0.8; chance is 0.1)", m)
	}
	g2 := lenet(t, 1)
	_, h2 := run(t, g2, trainSet, 2, context.Background(), nil)
	if h1[1].TrainLoss != h2[1].TrainLoss {
		t.Fatalf("same seed, different loss: %v vs %v", h1[1].TrainLoss, h2[1].TrainLoss)
	}
	assertSameParams(t, g1, g2)
}

func assertSameParams(t *testing.T, a, b *graph.Graph) {
	t.Helper()
	for _, p := range a.Params() {
		q := b.Param(p.Name)
		for i, v := range p.Data.Data {
			if math.Float32bits(v) != math.Float32bits(q.Data.Data[i]) {
				t.Fatalf("param %s[%d]: %v vs %v", p.Name, i, v, q.Data.Data[i])
			}
		}
	}
}

var errStop = errors.New("stop")

func TestResumeGivesTheSameWeights(t *testing.T) {
	trainSet := mnist(t, "train", 500)
	full := lenet(t, 2)
	run(t, full, trainSet, 2, context.Background(), nil)

	// Stop a 2-epoch run after its first epoch, as an interrupted run would.
	half := lenet(t, 2)
	tr, _ := run(t, half, trainSet, 2, context.Background(), func(tr *Trainer) {
		tr.Opts.OnEpoch = func(EpochStats) error { return errStop }
	})
	state := filepath.Join(t.TempDir(), "m.state")
	if err := tr.SaveState(state); err != nil {
		t.Fatal(err)
	}
	// Continue in a fresh trainer from the saved weights and state.
	resumed := lenet(t, 99)
	for _, p := range half.Params() {
		copy(resumed.Param(p.Name).Data.Data, p.Data.Data)
	}
	run(t, resumed, trainSet, 2, context.Background(), func(tr *Trainer) {
		if err := tr.LoadState(state); err != nil {
			t.Fatal(err)
		}
		if tr.Epoch != 1 {
			t.Fatalf("resumed at epoch %d", tr.Epoch)
		}
	})
	assertSameParams(t, full, resumed)
}

func TestCancelStopsCleanly(t *testing.T) {
	trainSet := mnist(t, "train", 500)
	g := lenet(t, 1)
	l, _ := data.NewLoader(trainSet, data.LoaderConfig{Batch: 50, Shuffle: true, Seed: 1})
	defer l.Close()
	tr, err := NewTrainer(g, Options{Epochs: 3, StepsPerEpoch: 10, LR: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tr.Run(ctx, Loader{L: l}, nil); err != context.Canceled {
		t.Fatalf("Run on a cancelled context returned %v", err)
	}
	for _, p := range g.Params() {
		if p.Data.HasNaN() {
			t.Fatalf("param %s broken after cancel", p.Name)
		}
	}
}

func TestClipGradNorm(t *testing.T) {
	g := lenet(t, 1)
	ds := mnist(t, "train", 64)
	x, y, err := ds.Batch(seq(64)...)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(g, Options{Epochs: 1, StepsPerEpoch: 1, LR: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tr.TrainStep(x, y); err != nil {
		t.Fatal(err)
	}
	before := ClipGradNorm(g, 1e9)
	if !(before > 0) {
		t.Fatalf("gradient norm %v", before)
	}
	ClipGradNorm(g, before/4)
	if after := ClipGradNorm(g, 1e9); math.Abs(after-before/4) > 1e-3*before {
		t.Fatalf("norm after clipping %v, want %v", after, before/4)
	}
}
