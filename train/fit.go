package train

import (
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"lowbit/graph"
	"lowbit/internal/atomicfile"
	"lowbit/ops"
	"lowbit/optim"
	"lowbit/tensor"
)

// Options configure a training run.
type Options struct {
	Epochs        int
	StepsPerEpoch int     // batches per epoch (for the schedule and progress)
	LR            float64 // peak learning rate
	WeightDecay   float64
	Momentum      float64 // SGD momentum (0.9 when 0)
	Nesterov      bool
	WarmupEpochs  float64 // linear warm-up (cosine schedule)
	Smoothing     float32 // label smoothing
	// Teacher, when set, adds the soft-target cross-entropy against its
	// logits (knowledge distillation, temperature 1, weight 1).
	Teacher *graph.Graph
	// EMADecay > 0 keeps an exponential moving average of the weights; the
	// better of raw and averaged weights (on the test set) is kept at the end.
	EMADecay float64
	// ClipGradNorm > 0 rescales the gradients of all trainable parameters
	// so that their global L2 norm is at most this value.
	ClipGradNorm float64
	Progress     io.Writer // progress lines; nil for none
	// OnEpoch is called after each epoch (e.g. to save a checkpoint).
	OnEpoch func(st EpochStats) error
}

// EpochStats summarize one epoch.
type EpochStats struct {
	Epoch     int     `json:"epoch"`
	LR        float64 `json:"lr"` // learning rate of the epoch's last step
	TrainLoss float64 `json:"train_loss"`
	TrainTop1 float64 `json:"train_top1"`
	Test      Metrics `json:"test"`
	ImgPerSec float64 `json:"img_s"`
	Seconds   float64 `json:"seconds"`
}

// Trainer holds the state of a run so that it can be checkpointed and resumed.
type Trainer struct {
	G     *graph.Graph
	Opts  Options
	Opt   *optim.SGD
	Sched optim.Schedule
	EMA   *optim.EMA
	Epoch int // epochs completed
	Step  int // optimizer steps taken
	exec  *graph.Executor
	tExec *graph.Executor
}

// NewTrainer prepares SGD (momentum, optional Nesterov, decoupled groups as
// optim.DefaultGroups) with a cosine schedule with linear warm-up.
func NewTrainer(g *graph.Graph, o Options) (*Trainer, error) {
	if o.Epochs <= 0 || o.StepsPerEpoch <= 0 {
		return nil, fmt.Errorf("train: epochs (%d) and steps per epoch (%d) must be positive", o.Epochs, o.StepsPerEpoch)
	}
	if o.LR <= 0 || math.IsNaN(o.LR) {
		return nil, fmt.Errorf("train: learning rate %v must be positive", o.LR)
	}
	if o.Momentum == 0 {
		o.Momentum = 0.9
	}
	e, err := graph.NewExecutor(g)
	if err != nil {
		return nil, err
	}
	t := &Trainer{G: g, Opts: o, exec: e}
	t.Opt = optim.NewSGD(optim.DefaultGroups(g, o.WeightDecay), o.Momentum, o.Nesterov)
	t.Sched = optim.Cosine{Base: o.LR, Warmup: int(o.WarmupEpochs * float64(o.StepsPerEpoch)),
		Total: o.Epochs * o.StepsPerEpoch, WarmupStart: 0.1, Final: 1e-3}
	if o.EMADecay > 0 {
		t.EMA = optim.NewEMA(g, o.EMADecay)
	}
	if o.Teacher != nil {
		if t.tExec, err = graph.NewExecutor(o.Teacher); err != nil {
			return nil, fmt.Errorf("teacher: %w", err)
		}
	}
	return t, nil
}

// Executor returns the trainer's executor.
func (t *Trainer) Executor() *graph.Executor { return t.exec }

// TrainStep runs forward, loss, backward and the optimizer update on one
// batch and returns the loss and the number of correct top-1 predictions.
func (t *Trainer) TrainStep(x *tensor.Tensor, y []int) (float64, int, error) {
	e := t.exec
	e.Training = true
	out, err := e.Forward(x)
	if err != nil {
		return 0, 0, err
	}
	logits := out[0]
	loss, dl, err := ops.CrossEntropy(logits, y, t.Opts.Smoothing)
	if err != nil {
		return 0, 0, err
	}
	if t.tExec != nil {
		tout, err := t.tExec.Forward(x)
		if err != nil {
			return 0, 0, fmt.Errorf("teacher: %w", err)
		}
		sl, sd, err := ops.SoftCrossEntropy(logits, tout[0], 1)
		if err != nil {
			return 0, 0, err
		}
		loss += sl
		for i := range dl.Data {
			dl.Data[i] += sd.Data[i]
		}
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, 0, fmt.Errorf("train: loss is %v at step %d (lower the learning rate)", loss, t.Step)
	}
	correct := ops.TopK(logits, y, 1)
	t.G.ZeroGrad()
	if err := e.Backward(dl); err != nil {
		return 0, 0, err
	}
	if t.Opts.ClipGradNorm > 0 {
		ClipGradNorm(t.G, t.Opts.ClipGradNorm)
	}
	t.Opt.Step(t.Sched.LR(t.Step))
	t.Step++
	if t.EMA != nil {
		t.EMA.Update()
	}
	return loss, correct, nil
}

// ClipGradNorm rescales the gradients of g's trainable parameters so their
// global L2 norm is at most maxNorm, and returns the norm before clipping.
func ClipGradNorm(g *graph.Graph, maxNorm float64) float64 {
	var ss float64
	for _, p := range g.Params() {
		if p.Trainable() && p.Grad != nil {
			for _, v := range p.Grad.Data {
				ss += float64(v) * float64(v)
			}
		}
	}
	norm := math.Sqrt(ss)
	if norm > maxNorm && norm > 0 {
		f := float32(maxNorm / norm)
		for _, p := range g.Params() {
			if p.Trainable() && p.Grad != nil {
				for i := range p.Grad.Data {
					p.Grad.Data[i] *= f
				}
			}
		}
	}
	return norm
}

// Run trains from the current epoch to Opts.Epochs, evaluating on test
// after each epoch. When ctx is cancelled it stops after the current step
// and returns ctx.Err() with the graph in a usable state.
func (t *Trainer) Run(ctx context.Context, trainSrc, testSrc Source) ([]EpochStats, error) {
	var hist []EpochStats
	for t.Epoch < t.Opts.Epochs {
		st, err := t.runEpoch(ctx, trainSrc, testSrc)
		if err != nil {
			return hist, err
		}
		hist = append(hist, st)
		if t.Opts.OnEpoch != nil {
			if err := t.Opts.OnEpoch(st); err != nil {
				return hist, err
			}
		}
	}
	if t.EMA != nil && testSrc != nil {
		if err := t.keepBetterEMA(ctx, testSrc); err != nil {
			return hist, err
		}
	}
	return hist, nil
}

func (t *Trainer) runEpoch(ctx context.Context, trainSrc, testSrc Source) (EpochStats, error) {
	st := EpochStats{Epoch: t.Epoch + 1}
	start := time.Now()
	var lossSum float64
	var correct, seen, steps int
	it := trainSrc.Epoch(ctx, t.Epoch)
	defer it.Close()
	bar := newProgress(t.Opts.Progress, fmt.Sprintf("epoch %d/%d", t.Epoch+1, t.Opts.Epochs), t.Opts.StepsPerEpoch)
	for it.Next() {
		if ctx.Err() != nil {
			break
		}
		x, y := it.Batch()
		st.LR = t.Sched.LR(t.Step)
		loss, c, err := t.TrainStep(x, y)
		if err != nil {
			return st, err
		}
		lossSum += loss * float64(len(y))
		correct += c
		seen += len(y)
		steps++
		bar.update(steps, lossSum/float64(seen), float64(correct)/float64(seen), float64(seen)/time.Since(start).Seconds())
	}
	bar.done()
	if err := ctx.Err(); err != nil {
		return st, err
	}
	if err := it.Err(); err != nil {
		return st, err
	}
	if seen == 0 {
		return st, errors.New("train: the training set produced no batch")
	}
	st.Seconds = time.Since(start).Seconds()
	st.TrainLoss, st.TrainTop1 = lossSum/float64(seen), float64(correct)/float64(seen)
	st.ImgPerSec = float64(seen) / st.Seconds
	t.Epoch++
	if testSrc != nil {
		m, err := EvaluateWith(ctx, t.exec, testSrc)
		if err != nil {
			return st, err
		}
		st.Test = m
	}
	if t.Opts.Progress != nil {
		test := ""
		if testSrc != nil {
			test = fmt.Sprintf("  test %.2f%%", 100*st.Test.Top1)
		}
		fmt.Fprintf(t.Opts.Progress, "epoch %d/%d  loss %.4f  train %.2f%%%s  %.0f img/s  %.1fs\n",
			st.Epoch, t.Opts.Epochs, st.TrainLoss, 100*st.TrainTop1, test, st.ImgPerSec, st.Seconds)
	}
	return st, nil
}

// keepBetterEMA evaluates raw and averaged weights and keeps the better.
func (t *Trainer) keepBetterEMA(ctx context.Context, testSrc Source) error {
	raw, err := EvaluateWith(ctx, t.exec, testSrc)
	if err != nil {
		return err
	}
	if err := t.EMA.Apply(); err != nil {
		return err
	}
	avg, err := EvaluateWith(ctx, t.exec, testSrc)
	if err != nil {
		return errors.Join(err, t.EMA.Restore())
	}
	if avg.Top1 < raw.Top1 {
		return t.EMA.Restore()
	}
	return t.EMA.Keep()
}

// checkpoint is the resumable state besides the model file.
type checkpoint struct {
	Epoch, Step int
	Opt         optim.State
}

// SaveState writes the optimizer state and counters atomically to path.
func (t *Trainer) SaveState(path string) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		return gob.NewEncoder(w).Encode(checkpoint{Epoch: t.Epoch, Step: t.Step, Opt: t.Opt.StateDict()})
	})
}

// LoadState restores what SaveState wrote (the model weights are loaded
// separately, from the model file saved at the same time).
func (t *Trainer) LoadState(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	defer f.Close()
	var c checkpoint
	if err := gob.NewDecoder(f).Decode(&c); err != nil {
		return fmt.Errorf("resume: read %s: %w", path, err)
	}
	if err := t.Opt.LoadState(c.Opt); err != nil {
		return fmt.Errorf("resume: %s: %w", path, err)
	}
	t.Epoch, t.Step = c.Epoch, c.Step
	return nil
}
