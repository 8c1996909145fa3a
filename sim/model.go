package sim

import (
	"fmt"
	"math"
)

// Breakdown is energy in picojoules by component.
type Breakdown struct {
	// DRAM is access energy plus background power over the run time;
	// DRAMBackground is the background part.
	DRAM           float64 `json:"dram"`
	DRAMBackground float64 `json:"dram_background"`
	Buffer         float64 `json:"buffer"`
	// Local is register-file, pipeline-register and on-chip-network energy.
	Local float64 `json:"local"`
	// MACDense and MACOutlier split the MAC energy between the dense units
	// and the outlier units (OLAccel's extra lane MACs and high-precision
	// activation MACs); baselines only have dense units.
	MACDense   float64 `json:"mac_dense"`
	MACOutlier float64 `json:"mac_outlier"`
	// Static is per-cycle energy (leakage, clock tree, control).
	Static float64 `json:"static"`
}

// MAC is the total MAC energy.
func (b Breakdown) MAC() float64 { return b.MACDense + b.MACOutlier }

// Total is the sum of all components.
func (b Breakdown) Total() float64 {
	return b.DRAM + b.Buffer + b.Local + b.MACDense + b.MACOutlier + b.Static
}

// Add accumulates o into b.
func (b *Breakdown) Add(o Breakdown) {
	b.DRAM += o.DRAM
	b.DRAMBackground += o.DRAMBackground
	b.Buffer += o.Buffer
	b.Local += o.Local
	b.MACDense += o.MACDense
	b.MACOutlier += o.MACOutlier
	b.Static += o.Static
}

// LayerResult is the simulated cost of one layer (or residual addition).
type LayerResult struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// MACs is the dense MAC count; Ops the MACs actually performed
	// (non-zero operand pairs, counting OLAccel's outlier MACs and extra
	// passes).
	MACs float64 `json:"macs"`
	Ops  float64 `json:"ops"`
	// Cycles is max(compute, DRAM) cycles (double-buffered transfers).
	Cycles        float64 `json:"cycles"`
	ComputeCycles float64 `json:"compute_cycles"`
	DRAMCycles    float64 `json:"dram_cycles"`
	// DRAMBits and BufferBits count traffic at the two memory levels.
	DRAMBits   float64   `json:"dram_bits"`
	BufferBits float64   `json:"buffer_bits"`
	Energy     Breakdown `json:"energy_pj"`
}

// Result is a whole network on one design.
type Result struct {
	Accel   string        `json:"accel"`
	Network string        `json:"network"`
	Highway bool          `json:"highway,omitempty"`
	Layers  []LayerResult `json:"layers"`
	Cycles  float64       `json:"cycles"`
	Energy  Breakdown     `json:"energy_pj"`
}

// Options select model variants.
type Options struct {
	// Highway keeps the residual skip paths and sums in high precision
	// (Config.HighwayBits) on designs with narrower activations.
	Highway bool
}

// Simulate runs workload w on the named design.
func Simulate(cfg *Config, accel string, w *Workload, opt Options) (*Result, error) {
	a, err := cfg.Accel(accel)
	if err != nil {
		return nil, err
	}
	if err := w.Validate(); err != nil {
		return nil, err
	}
	m := newModel(cfg, a)
	res := &Result{Accel: a.Name, Network: w.Name, Highway: opt.Highway}
	addsAfter := map[string][]Eltwise{}
	for _, ad := range w.Adds {
		addsAfter[ad.After] = append(addsAfter[ad.After], ad)
	}
	for i := range w.Layers {
		lr := m.layer(&w.Layers[i])
		res.Layers = append(res.Layers, lr)
		for _, ad := range addsAfter[w.Layers[i].Name] {
			res.Layers = append(res.Layers, m.eltwise(ad, opt.Highway))
		}
	}
	for _, lr := range res.Layers {
		res.Cycles += lr.Cycles
		res.Energy.Add(lr.Energy)
	}
	return res, nil
}

// model holds one design's parameters as plain numbers.
type model struct {
	a                              *Accel
	kind                           string
	G, L                           float64
	wb, ab, pb, firstAB            float64
	ob, oidx, owMACs, oaMACs       float64
	skipA, skipW, sparseW, rleA    bool
	zidx                           float64
	bufBits, psumEntries, actReuse float64
	dramBW, imbalance, static      float64
	dramStatic, psumRF             float64
	eMult, eAdd, eRF, eNoC         float64
	eBuf, eDRAM, hwBits            float64
}

func newModel(cfg *Config, a *Accel) *model {
	e := cfg.Energy
	return &model{a: a, kind: a.Kind, G: a.Groups.V(), L: a.Lanes.V(),
		wb: a.WeightBits.V(), ab: a.ActBits.V(), pb: a.PsumBits.V(), firstAB: a.FirstLayerActBits.V(),
		ob: a.OutlierBits.V(), oidx: a.OutlierIndexBits.V(), owMACs: a.OutlierWeightMACsPerGroup.V(), oaMACs: a.OutlierActMACs.V(),
		skipA: a.SkipZeroActs.V(), skipW: a.SkipZeroWeights.V(), sparseW: a.SparseWeights.V(), rleA: a.CompressActs.V(),
		zidx: a.ZeroIndexBits.V(), bufBits: a.BufferKB.V() * 8192, psumEntries: a.PsumEntries.V(), actReuse: a.ActReuse.V(),
		dramBW: a.DRAMBitsPerCycle.V(), imbalance: a.LoadImbalance.V(), static: a.StaticMW.V() * 1e3 / cfg.ClockMHz.V(), dramStatic: cfg.DRAMStaticMW.V() * 1e3 / cfg.ClockMHz.V(), psumRF: a.PsumRFAccesses.V(),
		eMult: e.MultPJPerBit2.V(), eAdd: e.AddPJPerBit.V(), eRF: e.RFPJPerBit.V(), eNoC: e.NoCPJPerBit.V(),
		eBuf: e.BufferPJPerBit.V(), eDRAM: e.DRAMPJPerBit.V(), hwBits: cfg.HighwayBits.V()}
}

func (m *model) olaccel() bool { return m.kind == KindOLAccel }

// mac is the energy of one multiply-accumulate with the given operand
// widths: multiplier ∝ product of widths, adder ∝ accumulator width.
func (m *model) mac(wBits, aBits float64) float64 { return m.eMult*wBits*aBits + m.eAdd*m.pb }

// storeBits is the storage cost per element position of a tensor with
// density d (non-zero fraction) and outlier fraction r of the non-zeros.
// Zero-compressed storage keeps only non-zeros with a zero_index_bits run
// length or offset, used only when it is smaller than dense storage.
// OLAccel adds r·d·(outlier_bits + outlier_index_bits) for the sparse
// coordinate list of outliers.
func (m *model) storeBits(bits, d, r float64, compress bool) float64 {
	s := bits
	if compress {
		s = math.Min(bits, d*(bits+m.zidx))
	}
	if m.olaccel() {
		s += r * d * (m.ob + m.oidx)
	}
	return s
}

// outlierSpill is the expected number of extra cycles of an OLAccel lane
// group per step: with k ~ Binomial(L, p) outlier weights among the L lanes
// and E extra outlier MACs, max(k − E, 0) extra cycles.
func outlierSpill(L int, p, extra float64) float64 {
	if p <= 0 {
		return 0
	}
	if p >= 1 {
		return math.Max(float64(L)-extra, 0)
	}
	s := 0.0
	pk := math.Pow(1-p, float64(L)) // P(k = 0)
	for k := 0; k <= L; k++ {
		if k > 0 {
			pk *= float64(L-k+1) / float64(k) * p / (1 - p)
		}
		if over := float64(k) - extra; over > 0 {
			s += pk * over
		}
	}
	return s
}

func ceil(x float64) float64 { return math.Ceil(x - 1e-9) }

func (m *model) layer(l *Layer) LayerResult {
	st := l.Stats
	da, dw := 1-st.ActZero, 1-st.WeightZero
	ra, rw := st.ActOutlier, st.WeightOutlier
	if !m.olaccel() {
		ra, rw = 0, 0
	}
	aIn, passes := m.ab, 1.0
	raIn := ra
	if l.First {
		// The image enters at first_layer_act_bits; narrower datapaths take
		// it in several passes (bit slices) and it has no outliers.
		aIn = m.firstAB
		passes = math.Max(1, ceil(m.firstAB/m.ab))
		raIn = 0
	}
	nw, ni, no := float64(l.Weights()), float64(l.InElems()), float64(l.Outs())
	P := float64(l.OH * l.OW)
	K := float64(l.K())
	g := float64(l.Groups)
	macs := l.MACs()

	// Storage cost per element (bits) in DRAM and in the global buffer.
	wElem := m.storeBits(m.wb, dw, rw, m.sparseW)
	aInDRAM := m.storeBits(aIn, da, raIn, m.rleA)
	aInBuf := m.storeBits(aIn, da, raIn, false)
	outDRAM := m.storeBits(m.ab, 1-st.OutZero, ra, m.rleA)
	outBuf := m.storeBits(m.ab, 1-st.OutZero, ra, false)

	// DRAM traffic with buffer tiling: if weights and inputs do not fit,
	// keep half the buffer for a chunk of one and stream the other once per
	// chunk, choosing the cheaper order.
	wB, iB := nw*wElem, ni*aInBuf
	wPass, iPass := 1.0, 1.0
	if wB+iB > m.bufBits {
		half := m.bufBits / 2
		nW, nI := ceil(wB/half), ceil(iB/half)
		if nw*wElem+ni*aInDRAM*nW <= ni*aInDRAM+nw*wElem*nI {
			iPass = nW
		} else {
			wPass = nI
		}
	}
	dramBits := nw*wElem*wPass + ni*aInDRAM*iPass + no*outDRAM

	// Global buffer: fills from DRAM, reads into the PE array, output
	// write and read-back. Weights are reloaded once per tile of
	// psum_entries output positions; activations are broadcast to all
	// groups working on the same position and reused act_reuse times
	// (bounded by the kernel window overlap) in the lanes' registers.
	tg := ceil(float64(l.M) / g / m.L) // channel tiles of L lanes per conv group
	tiles := g * tg
	units := P * tiles         // (position, channel tile) work units
	share := math.Min(m.G, tg) // groups sharing one activation broadcast
	reuse := math.Max(1, math.Min(m.actReuse, float64(l.KH*l.KW)/float64(l.SH*l.SW)))
	wReadBits := nw * wElem * ceil(P/m.psumEntries)
	aReadBits := P * tiles / share * K / reuse * aInBuf * passes
	bufBits := wB*wPass + iB*iPass + wReadBits + aReadBits + 2*no*outBuf

	// Compute cycles: G groups process work units; each unit takes K steps,
	// fewer when zeros are skipped.
	steps := K * passes
	if m.skipA {
		steps *= da
	}
	if m.skipW {
		steps *= dw
	}
	if m.skipA || m.skipW {
		steps = math.Min(K*passes, steps*m.imbalance)
	}
	var oaOps float64
	if m.olaccel() {
		// Outlier activations leave the dense array to the high-precision
		// units; outlier weights beyond the extra lane MAC stall the group.
		steps *= 1 - raIn
		steps *= 1 + outlierSpill(int(m.L), rw*dw, m.owMACs)
		oaOps = macs * da * raIn * dw
	}
	compute := ceil(units/m.G) * steps
	if m.olaccel() && m.oaMACs > 0 {
		compute = math.Max(compute, oaOps/m.oaMACs)
	}
	dramCycles := dramBits / m.dramBW
	cycles := math.Max(compute, dramCycles)

	// Energy. Operand pairs with a zero are skipped or clock-gated on every
	// design, so only non-zero pairs cost MAC and register energy.
	var e Breakdown
	var ops float64
	localPerOp := func(wBits, aBits float64) float64 { return m.eRF * (wBits + aBits + m.psumRF*m.pb) }
	if m.olaccel() {
		dense := macs * da * (1 - raIn) * dw * passes
		denseW := dense * (1 - rw) // both operands low precision
		olW := dense * rw          // outlier weight on the extra lane MAC
		olA := oaOps * (1 - rw)    // outlier activation × 4-bit weight
		olAW := oaOps * rw         // outlier activation × outlier weight
		e.MACDense = denseW * m.mac(m.wb, m.ab)
		e.MACOutlier = olW*m.mac(m.ob, m.ab) + olA*m.mac(m.wb, m.ob) + olAW*m.mac(m.ob, m.ob)
		e.Local = denseW*localPerOp(m.wb, m.ab) + olW*localPerOp(m.ob, m.ab) +
			olA*localPerOp(m.wb, m.ob) + olAW*localPerOp(m.ob, m.ob)
		ops = dense + oaOps
	} else {
		ops = macs * da * dw
		e.MACDense = ops * m.mac(m.wb, aIn)
		e.Local = ops * localPerOp(m.wb, aIn)
	}
	// Register fills and on-chip network transfers of everything read from
	// the buffer into the array.
	e.Local += (wReadBits + aReadBits) * (m.eRF + m.eNoC)
	e.Buffer = bufBits * m.eBuf
	e.DRAM = dramBits * m.eDRAM
	e.DRAMBackground = cycles * m.dramStatic
	e.DRAM += e.DRAMBackground
	e.Static = cycles * m.static
	// Outputs leave the accumulators once.
	e.Local += no * m.pb * m.eRF
	return LayerResult{Name: l.Name, Kind: l.Kind, MACs: macs, Ops: ops, Cycles: cycles,
		ComputeCycles: compute, DRAMCycles: dramCycles, DRAMBits: dramBits, BufferBits: bufBits, Energy: e}
}

// eltwise models a residual addition: read skip and branch, write the sum
// (through the buffer, to DRAM). With a highway on a design whose
// activations are narrower than highway_bits, the skip operand and the sum
// are kept at highway_bits, and a quantized copy of the sum is written for
// the next block's convolutions (read the sum once more, write the copy).
func (m *model) eltwise(ad Eltwise, highway bool) LayerResult {
	n := float64(ad.Elems)
	r := ad.Outlier
	if !m.olaccel() {
		r = 0
	}
	lp := func(zero float64) float64 { return m.storeBits(m.ab, 1-zero, r, m.rleA) }
	hp := func(zero float64) float64 {
		s := m.hwBits
		if m.rleA {
			s = math.Min(s, (1-zero)*(s+m.zidx))
		}
		return s
	}
	skipBits, sumBits := lp(ad.SkipZero), lp(ad.OutZero)
	branchBits := lp(0)
	addBits := m.ab
	extra := 0.0
	if highway && m.hwBits > m.ab {
		skipBits, sumBits, addBits = hp(ad.SkipZero), hp(ad.OutZero), m.hwBits
		extra = n * (hp(ad.OutZero) + lp(ad.OutZero)) // requantize: read sum, write low-precision copy
	}
	dram := n*(skipBits+branchBits+sumBits) + extra
	buf := 2 * dram // every DRAM transfer passes through the buffer once
	var e Breakdown
	e.DRAM = dram * m.eDRAM
	e.Buffer = buf * m.eBuf
	e.MACDense = n * m.eAdd * addBits
	e.Local = n * 3 * addBits * m.eRF
	compute := ceil(n / (m.G * m.L))
	dc := dram / m.dramBW
	cy := math.Max(compute, dc)
	e.DRAMBackground = cy * m.dramStatic
	e.DRAM += e.DRAMBackground
	e.Static = cy * m.static
	return LayerResult{Name: ad.Name, Kind: "add", Ops: n, Cycles: cy, ComputeCycles: compute, DRAMCycles: dc,
		DRAMBits: dram, BufferBits: buf, Energy: e}
}

// String summarizes a result in one line.
func (r *Result) String() string {
	return fmt.Sprintf("%s on %s: %.1f µJ, %.3g cycles", r.Network, r.Accel, r.Energy.Total()/1e6, r.Cycles)
}
