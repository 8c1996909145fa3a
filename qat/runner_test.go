package qat

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"lowbit/data"
	"lowbit/graph"
	"lowbit/internal/testdata"
	"lowbit/models"
	"lowbit/onnx"
	"lowbit/quant"
	"lowbit/train"
)

func build(t *testing.T, name string, width float64) *graph.Graph {
	t.Helper()
	g, err := models.Build(name, models.Config{InC: 1, H: 28, W: 28, Classes: 10, Width: width, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func clone(t *testing.T, g *graph.Graph) *graph.Graph {
	t.Helper()
	c, err := onnx.Clone(g)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pretrain trains g in float for one epoch of ds.
func pretrain(t *testing.T, g *graph.Graph, ds *data.Dataset, batch int) {
	t.Helper()
	l, err := data.NewLoader(ds, data.LoaderConfig{Batch: batch, Shuffle: true, Seed: 3, DropLast: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tr, err := train.NewTrainer(g, train.Options{Epochs: 1, StepsPerEpoch: ds.N() / batch, LR: 0.05, WeightDecay: 5e-4, Nesterov: true, WarmupEpochs: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(t.Context(), train.Loader{L: l}, nil); err != nil {
		t.Fatal(err)
	}
}

// newData prepares the recipe data of a train and a test set.
func newData(t *testing.T, trainSet, testSet *data.Dataset, batch int) Data {
	t.Helper()
	l, err := data.NewLoader(trainSet, data.LoaderConfig{Batch: batch, Shuffle: true, Seed: 5, DropLast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	tl, err := data.NewEvalLoader(testSet, 250)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close() })
	init, _, err := trainSet.Batch(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
	if err != nil {
		t.Fatal(err)
	}
	return Data{Train: train.Loader{L: l}, StepsPerEpoch: trainSet.N() / batch, Test: train.Loader{L: tl}, InitBatch: init,
		Calib: data.EvalInputs(trainSet.Head(min(500, trainSet.N())), 250), CalibImages: min(500, trainSet.N())}
}

func recipe(w, a int, duq bool, method quant.Method) Config {
	p := quant.DefaultPolicy(method, w, a)
	p.FirstLastBits = 0
	return Config{Policy: quant.QATPolicy{Policy: p, DuQ: duq}, Epochs: 1, LR: 0.01, WeightDecay: 5e-5, Warmup: 0.1}
}

func snapshot(g *graph.Graph) map[string][]float32 {
	m := map[string][]float32{}
	for _, p := range g.Params() {
		m[p.Name] = slices.Clone(p.Data.Data)
	}
	return m
}

// TestFinetuneBeatsPTQ fine-tunes LeNet-5 with DuQ at 4/4 (every layer)
// for about 190 steps on 6000 MNIST images and checks it against
// post-training uniform min-max 4/4 of the same float model, and that the
// exported model reloads to the same top-1.
func TestFinetuneBeatsPTQ(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a network")
	}
	trainSet, testSet := testdata.MNIST(t, "train", 6000), testdata.MNIST(t, "test", 2000)
	fg := build(t, "lenet5", 1)
	pretrain(t, fg, trainSet, 32)
	dat := newData(t, trainSet, testSet, 32)
	fp, err := train.Evaluate(t.Context(), fg, dat.Test)
	if err != nil {
		t.Fatal(err)
	}
	ptq := clone(t, fg)
	if _, _, err := Quantize(t.Context(), ptq, recipe(4, 4, false, quant.MethodUniform).Policy, dat); err != nil {
		t.Fatal(err)
	}
	pm, err := train.Evaluate(t.Context(), ptq, dat.Test)
	if err != nil {
		t.Fatal(err)
	}
	g := clone(t, fg)
	r := &Runner{G: g, Cfg: recipe(4, 4, true, 0), Data: dat}
	res, err := r.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("float %.2f%%, PTQ uniform 4/4 %.2f%%, DuQ init %.2f%%, DuQ fine-tuned %.2f%%", 100*fp.Top1, 100*pm.Top1, 100*res.InitTop1, 100*res.Final.Top1)
	if res.Final.Top1 < pm.Top1-0.005 || res.Final.Top1 < fp.Top1-0.02 {
		t.Errorf("DuQ fine-tuned %.2f%%: want ≥ PTQ uniform %.2f%% − 0.5 and ≥ float %.2f%% − 2", 100*res.Final.Top1, 100*pm.Top1, 100*fp.Top1)
	}
	if len(res.History) != 1 || res.History[0].TestTop1 == 0 {
		t.Errorf("history %+v", res.History)
	}
	path := filepath.Join(t.TempDir(), "q.onnx")
	if err := onnx.Save(g, path); err != nil {
		t.Fatal(err)
	}
	g2, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := train.Evaluate(t.Context(), g2, dat.Test)
	if err != nil {
		t.Fatal(err)
	}
	if m2.Top1 != res.Final.Top1 || m2.Loss != res.Final.Loss {
		t.Errorf("reloaded model: top-1 %v loss %v, fine-tuned graph %v %v", m2.Top1, m2.Loss, res.Final.Top1, res.Final.Loss)
	}
}

// TestBNLastFreezesExactlyTheWeights runs BN-last, fine-tune and BN-only
// phases and checks which parameters each freezes and that frozen ones do
// not move while BatchNorm parameters and statistics do.
func TestBNLastFreezesExactlyTheWeights(t *testing.T) {
	trainSet, testSet := testdata.MNIST(t, "train", 512), testdata.MNIST(t, "test", 100)
	g := build(t, "lenet5", 1)
	cfg := recipe(4, 4, true, 0)
	cfg.BNLast = 1
	var prev map[string][]float32
	var prevFrozen map[string]bool
	var kinds []PhaseKind
	check := func() {
		if prev == nil {
			return
		}
		moved := map[graph.Kind]bool{}
		for _, p := range g.Params() {
			same := slices.Equal(prev[p.Name], p.Data.Data)
			if prevFrozen[p.Name] && !same {
				t.Errorf("frozen %s changed", p.Name)
			}
			if !same {
				moved[p.Kind] = true
			}
		}
		if !moved[graph.BNScale] || !moved[graph.BNMean] {
			t.Errorf("BatchNorm parameters or statistics did not move: %v", moved)
		}
	}
	r := &Runner{G: g, Cfg: cfg, Data: newData(t, trainSet, testSet, 32)}
	r.OnPhase = func(i int, ph Phase) error {
		check()
		kinds = append(kinds, ph.Kind)
		prev, prevFrozen = snapshot(g), map[string]bool{}
		for _, p := range g.Params() {
			want := false
			switch ph.Kind {
			case BNLast:
				want = p.Kind == graph.Weight
			case BNOnly:
				want = p.Kind == graph.Weight || p.Kind == graph.QuantParam
			}
			if p.Frozen != want {
				t.Errorf("phase %s: %s (%v) frozen = %v", ph.Name, p.Name, p.Kind, p.Frozen)
			}
			prevFrozen[p.Name] = p.Frozen
		}
		return nil
	}
	res, err := r.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	check()
	if !slices.Equal(kinds, []PhaseKind{BNLast, Finetune, BNOnly}) || len(res.Setup) != 3 || len(res.Setup[0].FrozenParams) != 5 {
		t.Fatalf("phases %v, setup %+v", kinds, res.Setup)
	}
}

// TestProfitFreezesInAIWQOrder runs PROFIT on a narrow ResNet-20 and
// checks that the stages freeze the top third and two thirds of the
// convolutions in decreasing AIWQ order, and that frozen weights stay.
func TestProfitFreezesInAIWQOrder(t *testing.T) {
	trainSet, testSet := testdata.MNIST(t, "train", 192), testdata.MNIST(t, "test", 64)
	g := build(t, "resnet20", 0.25)
	cfg := recipe(4, 4, true, 0)
	cfg.Profit = true
	var frozenAt [3][]string
	var before [3]map[string][]float32
	r := &Runner{G: g, Cfg: cfg, Data: newData(t, trainSet, testSet, 16)}
	r.OnPhase = func(i int, ph Phase) error {
		before[ph.ProfitStage] = snapshot(g)
		for _, c := range mustConvs(t, g) {
			if LayerWeight(c).Frozen {
				frozenAt[ph.ProfitStage] = append(frozenAt[ph.ProfitStage], c.Name)
			}
		}
		if i > 0 {
			checkStage(t, g, before[i-1], frozenAt[i-1])
		}
		return nil
	}
	res, err := r.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checkStage(t, g, before[2], frozenAt[2])
	convs := mustConvs(t, g)
	order := res.ProfitOrder
	if len(order) != len(convs) || len(convs) != 21 {
		t.Fatalf("AIWQ measured for %d of %d quantized convolutions", len(order), len(convs))
	}
	for i := 1; i < len(order); i++ {
		if res.AIWQ[order[i]] > res.AIWQ[order[i-1]] {
			t.Fatalf("order not by decreasing AIWQ at %d: %v", i, order)
		}
	}
	sorted := func(s []string) []string { c := slices.Clone(s); slices.Sort(c); return c }
	if len(frozenAt[0]) != 0 || !slices.Equal(sorted(frozenAt[1]), sorted(order[:7])) || !slices.Equal(sorted(frozenAt[2]), sorted(order[:14])) {
		t.Fatalf("frozen per stage %v, AIWQ order %v", frozenAt, order)
	}
	if !slices.Equal(res.Setup[1].FrozenLayers, order[:7]) {
		t.Fatalf("stage 1 log %v", res.Setup[1].FrozenLayers)
	}
}

func mustConvs(t *testing.T, g *graph.Graph) []*graph.Node {
	t.Helper()
	c, err := QuantizedConvs(g)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkStage checks that the weights of the frozen layers kept their
// values and the others moved.
func checkStage(t *testing.T, g *graph.Graph, before map[string][]float32, frozen []string) {
	t.Helper()
	for _, c := range mustConvs(t, g) {
		w := LayerWeight(c)
		same := slices.Equal(before[w.Name], w.Data.Data)
		if slices.Contains(frozen, c.Name) != same {
			t.Errorf("%s: frozen %v, unchanged %v", c.Name, slices.Contains(frozen, c.Name), same)
		}
	}
}

// interruptAndResume runs r until phase stop is set up (calling before
// first, when set), cancels it there and returns a runner resumed from
// the checkpoint it left.
func interruptAndResume(t *testing.T, r *Runner, stop int, before func()) *Runner {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r.OnPhase = func(i int, ph Phase) error {
		if i == stop {
			if before != nil {
				before()
			}
			cancel()
		}
		return nil
	}
	if _, err := r.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run returned %v", err)
	}
	g, err := onnx.Load(r.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	r2 := &Runner{G: g, Cfg: r.Cfg, Data: r.Data, Checkpoint: r.Checkpoint}
	if err := r2.Resume(); err != nil {
		t.Fatal(err)
	}
	return r2
}

// TestResumeContinuesFromTheRecordedPhase interrupts a progressive recipe
// (with EMA) at the start of its third phase, resumes it from the
// checkpoint and compares with an uninterrupted run.
func TestResumeContinuesFromTheRecordedPhase(t *testing.T) {
	trainSet, testSet := testdata.MNIST(t, "train", 384), testdata.MNIST(t, "test", 200)
	fg := build(t, "lenet5", 1)
	cfg := recipe(4, 4, true, 0)
	cfg.Progressive = []int{8}
	cfg.EMADecay = 0.99
	dir := t.TempDir()
	full := &Runner{G: clone(t, fg), Cfg: cfg, Data: newData(t, trainSet, testSet, 32), Checkpoint: filepath.Join(dir, "a.onnx")}
	want, err := full.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, "b.onnx")
	r := &Runner{G: clone(t, fg), Cfg: cfg, Data: newData(t, trainSet, testSet, 32), Checkpoint: ckpt}
	r2 := interruptAndResume(t, r, 2, nil)
	g := r2.G
	var phases []int
	r2.OnPhase = func(i int, ph Phase) error { phases = append(phases, i); return nil }
	got, err := r2.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(phases, []int{2, 3}) {
		t.Fatalf("resumed run ran phases %v, want [2 3]", phases)
	}
	if len(got.History) != 4 || got.History[2].Phase != 3 || !got.Setup[2].Resumed {
		t.Fatalf("resumed history %+v setup %+v", got.History, got.Setup)
	}
	if got.Final.Top1 != want.Final.Top1 || math.Abs(got.Final.Loss-want.Final.Loss) > 1e-9 {
		t.Errorf("resumed run: top-1 %v loss %v; uninterrupted %v %v", got.Final.Top1, got.Final.Loss, want.Final.Top1, want.Final.Loss)
	}
	// A different recipe cannot resume this checkpoint.
	other := cfg
	other.Epochs = 2
	r3 := &Runner{G: g, Cfg: other, Data: r2.Data, Checkpoint: ckpt}
	r3.State = r2.State
	if _, err := r3.Run(t.Context()); err == nil {
		t.Error("a checkpoint of another recipe was resumed")
	}
}

// TestFakeQuantFinetuneResumes fine-tunes WEQ weights / log activations
// (weights rebuilt every step), interrupts and resumes it, and checks
// that the float weights behind the quantizers survive the checkpoint and
// that the exported model reloads to the same top-1.
func TestFakeQuantFinetuneResumes(t *testing.T) {
	trainSet, testSet := testdata.MNIST(t, "train", 256), testdata.MNIST(t, "test", 200)
	g := build(t, "lenet5", 1)
	cfg := recipe(3, 3, false, quant.MethodWEQ)
	cfg.BNLast = 1
	ckpt := filepath.Join(t.TempDir(), "w.onnx")
	var latent map[string][]float32
	r := &Runner{G: g, Cfg: cfg, Data: newData(t, trainSet, testSet, 32), Checkpoint: ckpt}
	r2 := interruptAndResume(t, r, 1, func() { latent = snapshot(g) })
	g2 := r2.G
	for _, p := range []string{"conv2.weight", "fc1.weight"} {
		if !slices.Equal(g2.Param(p).Data.Data, latent[p]) {
			t.Fatalf("float weights of %s were not restored", p)
		}
	}
	res, err := r2.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "q.onnx")
	if err := onnx.Save(g2, path); err != nil {
		t.Fatal(err)
	}
	g3, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := train.Evaluate(t.Context(), g3, r.Data.Test)
	if err != nil {
		t.Fatal(err)
	}
	if m.Top1 != res.Final.Top1 {
		t.Errorf("reloaded WEQ model %v, fine-tuned %v", m.Top1, res.Final.Top1)
	}
}

// TestResidualErrorHighway trains a narrow ResNet-20 briefly, quantizes it
// at w4/a3 with and without the precision highway (same initialization)
// and checks that the highway's residual-stream error is no larger.
func TestResidualErrorHighway(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a network")
	}
	trainSet, testSet := testdata.MNIST(t, "train", 1600), testdata.MNIST(t, "test", 256)
	fg := build(t, "resnet20", 0.25)
	pretrain(t, fg, trainSet, 16)
	dat := newData(t, trainSet, testSet, 16)
	var errs [2][]BlockError
	for i, hw := range []bool{true, false} {
		q := clone(t, fg)
		p := recipe(4, 3, true, 0).Policy
		p.Highway.Enabled = hw
		if _, _, err := Quantize(t.Context(), q, p, dat); err != nil {
			t.Fatal(err)
		}
		e, err := ResidualError(t.Context(), fg, q, data.EvalInputs(testSet, 128)(t.Context()))
		if err != nil {
			t.Fatal(err)
		}
		if len(e) != 9 {
			t.Fatalf("%d blocks analysed, want 9", len(e))
		}
		errs[i] = e
	}
	t.Logf("highway %v\nnone    %v", errs[0], errs[1])
	if MeanError(errs[0]) > MeanError(errs[1]) || errs[0][8].RelError > errs[1][8].RelError {
		t.Errorf("highway error (mean %.4f, last %.4f) exceeds no-highway (mean %.4f, last %.4f)",
			MeanError(errs[0]), errs[0][8].RelError, MeanError(errs[1]), errs[1][8].RelError)
	}
	// The float graph against itself: no error.
	self, err := ResidualError(t.Context(), fg, clone(t, fg), data.EvalInputs(testSet, 128)(t.Context()))
	if err != nil || MeanError(self) != 0 {
		t.Fatalf("float against float: %v (%v)", self, err)
	}
}
