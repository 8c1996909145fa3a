package qat

import (
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"reflect"
	"strings"
	"time"

	"lowbit/graph"
	"lowbit/internal/atomicfile"
	"lowbit/onnx"
	"lowbit/optim"
	"lowbit/quant"
	"lowbit/tensor"
	"lowbit/train"
)

// Data is what a Runner trains, initializes and evaluates on.
type Data struct {
	// Train yields the (shuffled, augmented) training batches of an epoch;
	// StepsPerEpoch is its batch count (for the schedules).
	Train         train.Source
	StepsPerEpoch int
	// Test is evaluated after every epoch and at the end (nil: never).
	Test train.Source
	// InitBatch is the training batch that initializes DuQ activation
	// ranges (methods.md §6).
	InitBatch *tensor.Tensor
	// Calib yields calibration batches for FakeQuant activation
	// quantizers (CalibImages images are used).
	Calib       func(ctx context.Context) iter.Seq2[*tensor.Tensor, error]
	CalibImages int
}

// EpochLog is one line of the JSON history.
type EpochLog struct {
	Phase     int       `json:"phase"`
	Name      string    `json:"name"`
	Kind      PhaseKind `json:"kind"`
	Epoch     int       `json:"epoch"` // within the phase, from 1
	WBits     int       `json:"wbits"`
	ABits     int       `json:"abits"`
	LR        float64   `json:"lr"`
	TrainLoss float64   `json:"train_loss"`
	TrainTop1 float64   `json:"train_top1"`
	TestTop1  float64   `json:"test_top1"`
	TestLoss  float64   `json:"test_loss"`
	ImgPerSec float64   `json:"img_s"`
	Seconds   float64   `json:"seconds"`
}

// PhaseLog records how a phase was set up.
type PhaseLog struct {
	Phase int    `json:"phase"`
	Name  string `json:"name"`
	// Added and Retargeted count the quantizers placed and re-targeted to
	// the phase's widths; Quantizers is the total.
	Added      int `json:"added"`
	Retargeted int `json:"retargeted"`
	Quantizers int `json:"quantizers"`
	// FrozenParams names the frozen parameters, FrozenLayers the layers
	// PROFIT froze.
	FrozenParams []string `json:"frozen_params,omitempty"`
	FrozenLayers []string `json:"frozen_layers,omitempty"`
	// Resumed marks a phase continued from a checkpoint at Epoch.
	Resumed bool `json:"resumed,omitempty"`
	Epoch   int  `json:"resumed_at_epoch,omitempty"`
}

// State is the resumable progress of a recipe (saved next to the
// checkpoint model).
type State struct {
	Version int
	Plan    []Phase
	// Phase is the index of the current phase, Epoch the epochs it has
	// completed; GlobalEpoch counts all completed epochs (the loaders'
	// epoch index). TrainerSaved tells that the phase's optimizer state
	// was saved.
	Phase, Epoch, GlobalEpoch int
	TrainerSaved              bool
	Started                   bool
	InitTop1                  float64
	History                   []EpochLog
	Phases                    []PhaseLog
	AIWQ                      map[string]float64
	AIWQCount                 map[string]int
	ProfitOrder               []string
	EMA                       *optim.EMAState
	// Latent holds the float weights behind FakeQuant weight quantizers,
	// which the ONNX file stores quantized.
	Latent map[string][]float32
}

const stateVersion = 1

// Result is what a finished recipe measured.
type Result struct {
	// InitTop1 is the test top-1 right after the quantizers of the first
	// phase were placed and initialized, before any training.
	InitTop1 float64 `json:"init_top1"`
	// Final is the test evaluation of the kept weights; RawTop1 and
	// EMATop1 those of the trained and averaged weights (EMAUsed tells
	// which was kept).
	Final   train.Metrics `json:"final"`
	RawTop1 float64       `json:"raw_top1"`
	// RawSelectTop1 and EMASelectTop1 are the top-1 on training batches
	// that chose between them.
	RawSelectTop1 *float64   `json:"raw_select_top1,omitempty"`
	EMASelectTop1 *float64   `json:"ema_select_top1,omitempty"`
	EMATop1       *float64   `json:"ema_top1,omitempty"`
	EMAUsed       bool       `json:"ema_used"`
	Phases        []Phase    `json:"phases"`
	Setup         []PhaseLog `json:"phase_setup"`
	History       []EpochLog `json:"history"`
	// AIWQ and ProfitOrder are PROFIT's measurements (largest first).
	AIWQ        map[string]float64 `json:"aiwq,omitempty"`
	ProfitOrder []string           `json:"profit_order,omitempty"`
}

// Runner runs a recipe on a graph, phase after phase.
type Runner struct {
	G    *graph.Graph
	Cfg  Config
	Data Data
	// Log receives the phase and epoch lines (nil: none).
	Log io.Writer
	// Checkpoint is the model file written after every epoch and phase
	// ("" for none); the recipe state goes to Checkpoint+".qat" and the
	// current phase's optimizer state to Checkpoint+".state".
	Checkpoint string
	// OnPhase, when set, is called once a phase is set up (quantizers
	// placed, parameters frozen), before it trains.
	OnPhase func(index int, p Phase) error
	// State is the progress; Resume loads it from the checkpoint.
	State State

	ema     *optim.EMA
	tracker *AIWQTracker
}

func (r *Runner) logf(format string, args ...any) {
	if r.Log != nil {
		fmt.Fprintf(r.Log, format+"\n", args...)
	}
}

// StatePath and TrainerStatePath are the files next to the checkpoint.
func (r *Runner) StatePath() string        { return r.Checkpoint + ".qat" }
func (r *Runner) TrainerStatePath() string { return r.Checkpoint + ".state" }

// Resume loads the recipe state saved with the checkpoint (the caller has
// loaded the checkpoint model into G) and restores the float weights of
// FakeQuant-quantized layers.
func (r *Runner) Resume() error {
	if r.Checkpoint == "" {
		return fmt.Errorf("resume: no checkpoint path")
	}
	f, err := os.Open(r.StatePath())
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	defer f.Close()
	var st State
	if err := gob.NewDecoder(f).Decode(&st); err != nil {
		return fmt.Errorf("resume: read %s: %w", r.StatePath(), err)
	}
	if st.Version != stateVersion {
		return fmt.Errorf("resume: %s has state version %d, this lowbit writes %d", r.StatePath(), st.Version, stateVersion)
	}
	for name, w := range st.Latent {
		p := r.G.Param(name)
		if p == nil || p.Data.Len() != len(w) {
			return fmt.Errorf("resume: %s: float weights of %q do not match the checkpoint model", r.StatePath(), name)
		}
		copy(p.Data.Data, w)
	}
	sites, err := quant.Sites(r.G)
	if err != nil {
		return err
	}
	for _, s := range sites {
		if s.Op.Spec.Role == quant.WeightRole {
			s.Op.Baked = false
		}
	}
	r.State = st
	return nil
}

// offsetSource numbers a phase's epochs after the epochs of the earlier
// phases, so that every epoch of the run gets its own shuffle.
type offsetSource struct {
	src  train.Source
	base int
}

func (s offsetSource) Epoch(ctx context.Context, e int) train.Iterator {
	return s.src.Epoch(ctx, s.base+e)
}

// Run runs the recipe from the phase and epoch recorded in State (the
// start, or where a resumed run stopped). When ctx is cancelled it saves a
// checkpoint (when Checkpoint is set) and returns ctx's error.
func (r *Runner) Run(ctx context.Context) (*Result, error) {
	plan, err := r.Cfg.Plan()
	if err != nil {
		return nil, err
	}
	if r.Data.Train == nil || r.Data.StepsPerEpoch <= 0 {
		return nil, fmt.Errorf("recipe: no training data")
	}
	if r.State.Plan == nil {
		r.State = State{Version: stateVersion, Plan: plan}
	} else if !reflect.DeepEqual(r.State.Plan, plan) {
		return nil, fmt.Errorf("resume: the checkpoint was written by a different recipe (%d phases: %s; now %d: %s)",
			len(r.State.Plan), phaseNames(r.State.Plan), len(plan), phaseNames(plan))
	}
	if r.State.AIWQ == nil {
		r.State.AIWQ, r.State.AIWQCount = map[string]float64{}, map[string]int{}
	}
	r.tracker = &AIWQTracker{M: r.State.AIWQ, Count: r.State.AIWQCount}
	if r.Cfg.EMADecay > 0 {
		r.ema = optim.NewEMA(r.G, r.Cfg.EMADecay)
		r.ema.RampUp = true
		if r.State.EMA != nil {
			if err := r.ema.LoadState(*r.State.EMA); err != nil {
				return nil, fmt.Errorf("resume: %w", err)
			}
		}
	}
	for r.State.Phase < len(plan) {
		if err := r.runPhase(ctx, plan); err != nil {
			return nil, err
		}
	}
	return r.finish(ctx, plan)
}

func phaseNames(plan []Phase) string {
	var s []string
	for _, p := range plan {
		s = append(s, fmt.Sprintf("%s×%d", p.Name, p.Epochs))
	}
	return strings.Join(s, ", ")
}

func (r *Runner) runPhase(ctx context.Context, plan []Phase) error {
	i := r.State.Phase
	ph := plan[i]
	wrap := func(err error) error { return fmt.Errorf("phase %d/%d (%s): %w", i+1, len(plan), ph.Name, err) }
	pl, err := r.prepare(ctx, ph)
	if err != nil {
		return wrap(err)
	}
	pl.Phase, pl.Name = i+1, ph.Name
	if r.State.Epoch > 0 || r.State.TrainerSaved {
		pl.Resumed, pl.Epoch = true, r.State.Epoch
	}
	if !r.State.Started {
		m, err := r.evaluate(ctx, nil)
		if err != nil {
			return wrap(err)
		}
		r.State.InitTop1, r.State.Started = m.Top1, true
		if r.Data.Test != nil {
			r.logf("quantizers placed and initialized: test top-1 %.2f%% before fine-tuning", 100*m.Top1)
		}
	}
	if pl.Resumed && len(r.State.Phases) > 0 && r.State.Phases[len(r.State.Phases)-1].Phase == pl.Phase {
		r.State.Phases[len(r.State.Phases)-1] = pl
	} else {
		r.State.Phases = append(r.State.Phases, pl)
	}
	resumed := ""
	if pl.Resumed {
		resumed = fmt.Sprintf(", resumed after epoch %d", r.State.Epoch)
	}
	r.logf("phase %d/%d %s: %d epoch(s), %d quantizers (%d new, %d re-targeted), %d parameters frozen%s",
		i+1, len(plan), ph.Name, ph.Epochs, pl.Quantizers, pl.Added, pl.Retargeted, len(pl.FrozenParams), resumed)
	if r.OnPhase != nil {
		if err := r.OnPhase(i, ph); err != nil {
			return wrap(err)
		}
	}
	tr, err := train.NewTrainer(r.G, train.Options{Epochs: ph.Epochs, StepsPerEpoch: r.Data.StepsPerEpoch,
		LR: r.Cfg.LR, WeightDecay: r.Cfg.WeightDecay, Nesterov: true, WarmupEpochs: min(r.Cfg.Warmup, 0.5*float64(ph.Epochs)),
		Smoothing: r.Cfg.Smoothing, Teacher: r.Cfg.Teacher})
	if err != nil {
		return wrap(err)
	}
	tr.EMA = r.ema
	if pl.Resumed {
		if err := tr.LoadState(r.TrainerStatePath()); err != nil {
			return wrap(err)
		}
	}
	var sampler *AIWQSampler
	if ph.Sample {
		if sampler, err = NewAIWQSampler(tr.Executor(), r.tracker); err != nil {
			return wrap(err)
		}
		sampler.Install()
	}
	base := r.State.GlobalEpoch - r.State.Epoch
	tr.Opts.OnEpoch = func(st train.EpochStats) error {
		if sampler != nil && sampler.Err != nil {
			return sampler.Err
		}
		if err := r.reestimateBN(ctx, bnEpochOffset+base+st.Epoch); err != nil {
			return err
		}
		m, err := r.evaluate(ctx, tr.Executor())
		if err != nil {
			return err
		}
		log := EpochLog{Phase: i + 1, Name: ph.Name, Kind: ph.Kind, Epoch: st.Epoch, WBits: ph.WBits, ABits: ph.ABits,
			LR: st.LR, TrainLoss: st.TrainLoss, TrainTop1: st.TrainTop1, TestTop1: m.Top1, TestLoss: m.Loss,
			ImgPerSec: st.ImgPerSec, Seconds: st.Seconds}
		r.State.History = append(r.State.History, log)
		test := ""
		if r.Data.Test != nil {
			test = fmt.Sprintf("  test %.2f%%", 100*m.Top1)
		}
		r.logf("  phase %d epoch %d/%d  lr %.3g  loss %.4f  train %.2f%%%s  %.0f img/s  %.1fs",
			i+1, st.Epoch, ph.Epochs, st.LR, st.TrainLoss, 100*st.TrainTop1, test, st.ImgPerSec, st.Seconds)
		r.State.Epoch, r.State.GlobalEpoch = tr.Epoch, base+tr.Epoch
		return r.save(tr)
	}
	if _, err := tr.Run(ctx, offsetSource{r.Data.Train, base}, nil); err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			if serr := r.save(tr); serr != nil {
				return errors.Join(err, serr)
			}
			if r.Checkpoint != "" {
				r.logf("interrupted in phase %d/%d after epoch %d: %s holds the current model; continue with --resume", i+1, len(plan), r.State.Epoch, r.Checkpoint)
			}
			return err
		}
		return wrap(err)
	}
	if sampler != nil {
		if sampler.Err != nil {
			return wrap(sampler.Err)
		}
		r.State.ProfitOrder = r.tracker.Order()
		var parts []string
		for _, n := range r.State.ProfitOrder {
			parts = append(parts, fmt.Sprintf("%s %.3g", n, r.tracker.M[n]))
		}
		r.logf("AIWQ order (least stable first): %s", strings.Join(parts, ", "))
	}
	r.State.Phase++
	r.State.Epoch, r.State.TrainerSaved = 0, false
	return r.save(nil)
}

// bnEpochOffset shifts the epochs whose shuffles feed BatchNorm
// re-estimation away from the training epochs.
const bnEpochOffset = 1 << 20

// reestimateBN re-estimates the BatchNorm statistics (Cfg.BNReestimate
// batches of the training data's epoch e, a shuffle of its own).
func (r *Runner) reestimateBN(ctx context.Context, e int) error {
	if r.Cfg.BNReestimate <= 0 {
		return nil
	}
	it := r.Data.Train.Epoch(ctx, e)
	_, err := train.ReestimateBN(ctx, r.G, it, r.Cfg.BNReestimate)
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("BatchNorm re-estimation: %w", err)
	}
	return nil
}

// policyAt is the policy of a phase's widths.
func (r *Runner) policyAt(ph Phase) quant.QATPolicy {
	p := r.Cfg.Policy
	p.WeightBits, p.ActBits = ph.WBits, ph.ABits
	return p
}

// Quantize places the quantizers p asks for that g does not have yet,
// re-targets the existing ones to p's widths and, for FakeQuant
// quantizers, switches on their per-step adaptation and fits the weights
// and (when an activation quantizer is new or changed) calibrates the
// activations on data. It returns the counts of added and re-targeted
// quantizers.
func Quantize(ctx context.Context, g *graph.Graph, p quant.QATPolicy, data Data) (added, changed int, err error) {
	eff, err := p.Effective(g)
	if err != nil {
		return 0, 0, err
	}
	ch, err := quant.SetBits(g, eff)
	if err != nil {
		return 0, 0, err
	}
	if added, err = quant.InsertQAT(g, p, data.InitBatch); err != nil {
		return 0, 0, err
	}
	sites, err := quant.Sites(g)
	if err != nil {
		return 0, 0, err
	}
	calib := false
	for _, s := range sites {
		s.Op.Adapt = true
		if s.Op.Spec.Role == quant.ActivationRole && s.Op.Q == nil {
			calib = true
		}
	}
	if len(sites) > 0 {
		if err := quant.FitWeights(g); err != nil {
			return 0, 0, err
		}
	}
	if calib {
		if data.Calib == nil {
			return 0, 0, fmt.Errorf("activation quantizers need calibration data")
		}
		if _, err := quant.Calibrate(ctx, g, data.Calib(ctx), data.CalibImages); err != nil {
			return 0, 0, err
		}
	}
	return added, len(ch), nil
}

// prepare places and re-targets the quantizers of a phase and freezes
// what it freezes.
func (r *Runner) prepare(ctx context.Context, ph Phase) (PhaseLog, error) {
	var pl PhaseLog
	var err error
	if pl.Added, pl.Retargeted, err = Quantize(ctx, r.G, r.policyAt(ph), r.Data); err != nil {
		return pl, err
	}
	for _, n := range r.G.Nodes {
		if quant.IsQuantizer(n) {
			pl.Quantizers++
		}
	}
	for _, p := range r.G.Params() {
		if !p.Kind.IsState() {
			p.Frozen = false
		}
	}
	for _, p := range r.G.Params() {
		if ph.Kind == BNLast || ph.Kind == BNOnly {
			p.Frozen = p.Kind == graph.Weight || ph.Kind == BNOnly && p.Kind == graph.QuantParam
		}
	}
	if ph.ProfitStage > 0 {
		if len(r.State.ProfitOrder) == 0 {
			return pl, fmt.Errorf("PROFIT stage %d: no AIWQ was measured", ph.ProfitStage)
		}
		stages := ProfitStages(r.State.ProfitOrder)
		for _, name := range stages[min(ph.ProfitStage, len(stages)-1)] {
			l := r.G.NodeByName(name)
			if l == nil {
				return pl, fmt.Errorf("PROFIT: layer %q of the AIWQ order is not in the graph", name)
			}
			w := LayerWeight(l)
			if w == nil {
				return pl, fmt.Errorf("PROFIT: layer %q has no weight parameter", name)
			}
			w.Frozen = true
			pl.FrozenLayers = append(pl.FrozenLayers, name)
		}
	}
	for _, p := range r.G.Params() {
		if p.Frozen {
			pl.FrozenParams = append(pl.FrozenParams, p.Name)
		}
	}
	return pl, nil
}

// usesFakeQuant reports whether g has FakeQuant weight quantizers, which
// must be refitted to the current weights before an evaluation.
func usesFakeQuant(g *graph.Graph) bool {
	for _, n := range g.Nodes {
		if _, ok := n.Op.(*quant.FakeQuant); ok {
			return true
		}
	}
	return false
}

// evaluate refits FakeQuant weights and evaluates on the test source
// (with e, or a new executor when e is nil).
func (r *Runner) evaluate(ctx context.Context, e *graph.Executor) (train.Metrics, error) {
	if r.Data.Test == nil {
		return train.Metrics{}, nil
	}
	return r.evaluateOn(ctx, e, r.Data.Test)
}

// evaluateOn refits FakeQuant weights and evaluates on src (with e, or a
// new executor when e is nil).
func (r *Runner) evaluateOn(ctx context.Context, e *graph.Executor, src train.Source) (train.Metrics, error) {
	if usesFakeQuant(r.G) {
		if err := quant.FitWeights(r.G); err != nil {
			return train.Metrics{}, err
		}
	}
	if e == nil {
		var err error
		if e, err = graph.NewExecutor(r.G); err != nil {
			return train.Metrics{}, err
		}
	}
	return train.EvaluateWith(ctx, e, src)
}

// save writes the checkpoint: the model, the recipe state and (mid-phase)
// the optimizer state of tr.
func (r *Runner) save(tr *train.Trainer) error {
	if r.Checkpoint == "" {
		return nil
	}
	if tr != nil {
		if err := tr.SaveState(r.TrainerStatePath()); err != nil {
			return err
		}
		r.State.TrainerSaved = true
	}
	if r.ema != nil {
		st := r.ema.StateDict()
		r.State.EMA = &st
	}
	r.State.AIWQ, r.State.AIWQCount = r.tracker.M, r.tracker.Count
	sites, err := quant.Sites(r.G)
	if err != nil {
		return err
	}
	r.State.Latent = map[string][]float32{}
	for _, s := range sites {
		if s.Op.Spec.Role == quant.WeightRole && s.Tensor.Param != nil && !s.Op.Baked {
			r.State.Latent[s.Tensor.Param.Name] = append([]float32(nil), s.Tensor.Param.Data.Data...)
		}
	}
	if usesFakeQuant(r.G) {
		if err := quant.FitWeights(r.G); err != nil {
			return err
		}
	}
	if err := onnx.Save(r.G, r.Checkpoint); err != nil {
		return err
	}
	return atomicfile.Write(r.StatePath(), func(w io.Writer) error { return gob.NewEncoder(w).Encode(r.State) })
}

// RemoveState deletes the state files of a finished run.
func (r *Runner) RemoveState() {
	if r.Checkpoint != "" {
		os.Remove(r.StatePath())
		os.Remove(r.TrainerStatePath())
	}
}

// selectBatches is how many training batches decide between the trained
// and the averaged weights.
const selectBatches = 50

// selectionTop1 evaluates the graph on the first selectBatches
// batches of a training epoch of its own (evaluation mode).
func (r *Runner) selectionTop1(ctx context.Context) (train.Metrics, error) {
	m, err := r.evaluateOn(ctx, nil, headSource{r.Data.Train, bnEpochOffset - 2, selectBatches})
	if err != nil {
		return train.Metrics{}, fmt.Errorf("choosing between trained and averaged weights: %w", err)
	}
	return m, nil
}

// headSource yields the first n batches of epoch e of src, whatever epoch
// is asked for.
type headSource struct {
	src  train.Source
	e, n int
}

func (s headSource) Epoch(ctx context.Context, _ int) train.Iterator {
	return &headIter{Iterator: s.src.Epoch(ctx, s.e), left: s.n}
}

type headIter struct {
	train.Iterator
	left int
}

func (it *headIter) Next() bool {
	if it.left <= 0 {
		return false
	}
	it.left--
	return it.Iterator.Next()
}

// finish keeps the better of raw and averaged weights, judged on training
// images, and evaluates.
func (r *Runner) finish(ctx context.Context, plan []Phase) (*Result, error) {
	start := time.Now()
	res := &Result{InitTop1: r.State.InitTop1, Phases: plan, Setup: r.State.Phases, History: r.State.History,
		ProfitOrder: r.State.ProfitOrder}
	if len(r.State.AIWQ) > 0 {
		res.AIWQ = r.State.AIWQ
	}
	raw, err := r.evaluate(ctx, nil)
	if err != nil {
		return nil, err
	}
	res.Final, res.RawTop1 = raw, raw.Top1
	if r.ema != nil {
		// The choice is made on training images, never on the test set;
		// both test figures are still reported.
		rawSel, err := r.selectionTop1(ctx)
		if err != nil {
			return nil, err
		}
		if err := r.ema.Apply(); err != nil {
			return nil, err
		}
		if err := r.reestimateBN(ctx, bnEpochOffset-1); err != nil {
			return nil, errors.Join(err, r.ema.Restore())
		}
		avgSel, err := r.selectionTop1(ctx)
		if err != nil {
			return nil, errors.Join(err, r.ema.Restore())
		}
		avg, err := r.evaluate(ctx, nil)
		if err != nil {
			return nil, errors.Join(err, r.ema.Restore())
		}
		res.RawSelectTop1, res.EMASelectTop1 = &rawSel.Top1, &avgSel.Top1
		if r.Data.Test != nil {
			res.EMATop1 = &avg.Top1
		}
		if avgSel.Top1 > rawSel.Top1 {
			res.Final, res.EMAUsed = avg, true
		} else {
			if err := r.ema.Restore(); err != nil {
				return nil, err
			}
			if usesFakeQuant(r.G) {
				if err := quant.FitWeights(r.G); err != nil {
					return nil, err
				}
			}
		}
		which := "trained"
		if res.EMAUsed {
			which = "averaged"
		}
		r.logf("EMA: on %d training images trained weights %.2f%%, averaged %.2f%%: keeping the %s weights (test %.2f%% and %.2f%%)",
			rawSel.Images, 100*rawSel.Top1, 100*avgSel.Top1, which, 100*raw.Top1, 100*avg.Top1)
	}
	if r.Data.Test != nil {
		r.logf("fine-tuned: test top-1 %.2f%% (%.2f%% before fine-tuning)  [final evaluation %.1fs]", 100*res.Final.Top1, 100*res.InitTop1, time.Since(start).Seconds())
	}
	return res, nil
}
