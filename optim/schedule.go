package optim

import "math"

// Schedule maps a 0-based step index to a learning rate.
type Schedule interface {
	LR(step int) float64
}

// Constant is a fixed learning rate.
type Constant float64

// LR returns the constant.
func (c Constant) LR(int) float64 { return float64(c) }

// Cosine is a linear warm-up followed by cosine decay (methods.md §7):
// over steps [0, Warmup) the rate rises linearly from WarmupStart·Base to
// Base (reached at step Warmup), then follows
// Base·(Final + (1−Final)·(1+cos(π·t))/2) with t = (step−Warmup)/(Total−Warmup),
// reaching Final·Base at step Total and staying there. WarmupStart and
// Final are fractions of Base: 0 selects the defaults 0.1 and 1e-3, a
// negative value selects 0.
type Cosine struct {
	Base               float64
	Warmup, Total      int
	WarmupStart, Final float64
}

func frac(v, def float64) float64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// LR returns the learning rate at step.
func (c Cosine) LR(step int) float64 {
	ws, fin := frac(c.WarmupStart, 0.1), frac(c.Final, 1e-3)
	step = max(step, 0)
	if step < c.Warmup {
		return c.Base * (ws + (1-ws)*float64(step)/float64(c.Warmup))
	}
	span := c.Total - c.Warmup
	if span <= 0 || step >= c.Total {
		return c.Base * fin
	}
	t := float64(step-c.Warmup) / float64(span)
	return c.Base * (fin + (1-fin)*0.5*(1+math.Cos(math.Pi*t)))
}

// StepLR multiplies Base by Gamma at each milestone step (PyTorch
// MultiStepLR): LR(step) = Base·Gamma^k where k counts the milestones
// ≤ step. Gamma 0 means 0.1.
type StepLR struct {
	Base       float64
	Milestones []int
	Gamma      float64
}

// LR returns the learning rate at step.
func (s StepLR) LR(step int) float64 {
	gamma := s.Gamma
	if gamma == 0 {
		gamma = 0.1
	}
	lr := s.Base
	for _, m := range s.Milestones {
		if step >= m {
			lr *= gamma
		}
	}
	return lr
}
