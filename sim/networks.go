package sim

import (
	"fmt"
	"sort"
	"strings"
)

// DefaultOutlierRatio is the outlier fraction assumed for the built-in
// workloads: "a small number of sparse and high-precision outliers (e.g.,
// amounting to 3% of total data)" (Park, Kim, Yoo, ISCA 2018, abstract).
const DefaultOutlierRatio = 0.03

// Sources of the built-in statistics, repeated in docs/simulator.md.
const (
	srcAlexShapes = "shapes: AlexNet as in Krizhevsky et al. 2012 / Caffe BVLC reference (227x227 input, grouped conv2/4/5)"
	srcVGGShapes  = "shapes: VGG-16 from Simonyan & Zisserman 2015 (configuration D, 224x224 input)"
	srcResShapes  = "shapes: ResNet-18 from He et al. 2016 (224x224 input)"
	srcAlexFCActs = "FC input activation densities from EIE (Han et al., ISCA 2016, Table III: fc6/7/8 35.1/35.3/37.5 % non-zero)"
	srcVGGFCActs  = "FC input activation densities from EIE (Han et al., ISCA 2016, Table III: fc6/7/8 18.3/37.5/41.1 % non-zero)"
	asmConvActs   = "conv input zero fractions are assumptions: 0 for the image, 40-80 % after ReLU rising with depth " +
		"(Cnvlutin, Albericio et al., ISCA 2016, reports 44 % on average); measure real ones with --net model.onnx --data D"
	srcPruned = "pruned weight densities from Han et al., NIPS 2015 (Learning both weights and connections), Tables 4 and 5; " +
		"assumption: the OLAccel comparison uses these pruned models as ZeNA's evaluation does (the -dense variants are unpruned)"
	asmDense = "weights are dense (no pruning): no pruned model of this network is assumed"
)

type convSpec struct {
	name                string
	c, h, m, k, s, p, g int
	outElems            int
	actZero, weightZero float64
	fc                  bool
	first               bool
	outZeroSet          bool
	outZero             float64
}

func (cs convSpec) layer() Layer {
	l := Layer{Name: cs.name, Kind: "conv", C: cs.c, H: cs.h, W: cs.h, M: cs.m, KH: cs.k, KW: cs.k,
		SH: cs.s, SW: cs.s, Groups: max(cs.g, 1), OutElems: cs.outElems, First: cs.first}
	if cs.fc {
		l.Kind, l.H, l.W, l.KH, l.KW, l.SH, l.SW = "fc", 1, 1, 1, 1, 1, 1
	}
	l.OH = (l.H+2*cs.p-l.KH)/l.SH + 1
	l.OW = (l.W+2*cs.p-l.KW)/l.SW + 1
	l.Stats = LayerStats{ActZero: cs.actZero, WeightZero: cs.weightZero,
		ActOutlier: DefaultOutlierRatio, WeightOutlier: DefaultOutlierRatio, OutZero: cs.outZero}
	return l
}

// chain builds a sequential workload: each layer's OutZero is the next
// layer's ActZero (the last layer's output has no zeros).
func chain(name, source string, specs []convSpec) *Workload {
	w := &Workload{Name: name, Source: source, OutlierRatio: DefaultOutlierRatio}
	for i, cs := range specs {
		if !cs.outZeroSet && i+1 < len(specs) {
			cs.outZero = specs[i+1].actZero
		}
		w.Layers = append(w.Layers, cs.layer())
	}
	return w
}

// AlexNet returns the AlexNet workload (Caffe reference model). pruned
// selects the per-layer weight densities of Han et al. 2015; the built-in
// "alexnet" is pruned, "alexnet-dense" is not.
func AlexNet(pruned bool) *Workload {
	dens := []float64{1, 1, 1, 1, 1, 1, 1, 1}
	src := []string{srcAlexShapes, srcAlexFCActs, asmConvActs}
	if pruned {
		dens = []float64{0.84, 0.38, 0.35, 0.37, 0.37, 0.09, 0.09, 0.25}
		src = append(src, srcPruned)
	} else {
		src = append(src, asmDense)
	}
	specs := []convSpec{
		{name: "conv1", c: 3, h: 227, m: 96, k: 11, s: 4, outElems: 96 * 27 * 27, actZero: 0, first: true},
		{name: "conv2", c: 96, h: 27, m: 256, k: 5, s: 1, p: 2, g: 2, outElems: 256 * 13 * 13, actZero: 0.45},
		{name: "conv3", c: 256, h: 13, m: 384, k: 3, s: 1, p: 1, actZero: 0.65},
		{name: "conv4", c: 384, h: 13, m: 384, k: 3, s: 1, p: 1, g: 2, actZero: 0.65},
		{name: "conv5", c: 384, h: 13, m: 256, k: 3, s: 1, p: 1, g: 2, outElems: 256 * 6 * 6, actZero: 0.65},
		{name: "fc6", c: 9216, m: 4096, fc: true, actZero: 1 - 0.351},
		{name: "fc7", c: 4096, m: 4096, fc: true, actZero: 1 - 0.353},
		{name: "fc8", c: 4096, m: 1000, fc: true, actZero: 1 - 0.375},
	}
	for i := range specs {
		specs[i].weightZero = 1 - dens[i]
	}
	name := "alexnet"
	if !pruned {
		name += "-dense"
	}
	w := chain(name, strings.Join(src, "; "), specs)
	w.Paper = "alexnet"
	return w
}

// VGG16 returns the VGG-16 workload. pruned selects the per-layer weight
// densities of Han et al. 2015; the built-in "vgg16" is pruned,
// "vgg16-dense" is not.
func VGG16(pruned bool) *Workload {
	type blk struct {
		c, h, m int
		zero    float64
		pool    bool
	}
	convs := []blk{
		{3, 224, 64, 0, false}, {64, 224, 64, 0.50, true},
		{64, 112, 128, 0.40, false}, {128, 112, 128, 0.55, true},
		{128, 56, 256, 0.45, false}, {256, 56, 256, 0.55, false}, {256, 56, 256, 0.60, true},
		{256, 28, 512, 0.55, false}, {512, 28, 512, 0.65, false}, {512, 28, 512, 0.70, true},
		{512, 14, 512, 0.65, false}, {512, 14, 512, 0.75, false}, {512, 14, 512, 0.80, true},
	}
	names := []string{"conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
		"conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3"}
	dens := []float64{0.58, 0.22, 0.34, 0.36, 0.53, 0.24, 0.42, 0.32, 0.27, 0.34, 0.35, 0.29, 0.36, 0.01, 0.02, 0.09}
	var specs []convSpec
	for i, b := range convs {
		cs := convSpec{name: names[i], c: b.c, h: b.h, m: b.m, k: 3, s: 1, p: 1, actZero: b.zero, first: i == 0}
		if b.pool {
			cs.outElems = b.m * (b.h / 2) * (b.h / 2)
		}
		specs = append(specs, cs)
	}
	specs = append(specs,
		convSpec{name: "fc6", c: 25088, m: 4096, fc: true, actZero: 1 - 0.183},
		convSpec{name: "fc7", c: 4096, m: 4096, fc: true, actZero: 1 - 0.375},
		convSpec{name: "fc8", c: 4096, m: 1000, fc: true, actZero: 1 - 0.411})
	src := []string{srcVGGShapes, srcVGGFCActs, asmConvActs}
	name := "vgg16"
	if pruned {
		for i := range specs {
			specs[i].weightZero = 1 - dens[i]
		}
		src = append(src, srcPruned)
	} else {
		src = append(src, asmDense)
		name += "-dense"
	}
	w := chain(name, strings.Join(src, "; "), specs)
	w.Paper = "vgg16"
	return w
}

// Zero fractions assumed for ResNet-18 activations.
const (
	resBlockInZero = 0.40 // block input: relu(branch + skip), and the max-pooled stem output
	resBranchZero  = 0.50 // inside the branch, after BN + ReLU
)

// ResNet18 returns the ResNet-18 workload with its residual additions.
func ResNet18() *Workload {
	w := &Workload{Name: "resnet18", Paper: "resnet18", OutlierRatio: DefaultOutlierRatio, Source: strings.Join([]string{srcResShapes,
		"ResNet-18 zero fractions are assumptions: 40 % at block inputs (after the add and ReLU), 50 % inside branches (after BN and ReLU), " +
			"0 % at branch and shortcut outputs (BN output before the add)", asmDense}, "; ")}
	add := func(cs convSpec) {
		w.Layers = append(w.Layers, cs.layer())
	}
	add(convSpec{name: "conv1", c: 3, h: 224, m: 64, k: 7, s: 2, p: 3, outElems: 64 * 56 * 56, first: true,
		outZeroSet: true, outZero: resBlockInZero})
	c, h := 64, 56
	for stage, m := range []int{64, 128, 256, 512} {
		for b := 0; b < 2; b++ {
			s := 1
			if stage > 0 && b == 0 {
				s = 2
			}
			oh := (h+2-3)/s + 1
			p := fmt.Sprintf("layer%d.%d", stage+1, b)
			add(convSpec{name: p + ".conv1", c: c, h: h, m: m, k: 3, s: s, p: 1, actZero: resBlockInZero,
				outZeroSet: true, outZero: resBranchZero})
			add(convSpec{name: p + ".conv2", c: m, h: oh, m: m, k: 3, s: 1, p: 1, actZero: resBranchZero, outZeroSet: true})
			skipZero := resBlockInZero
			if s != 1 || c != m {
				add(convSpec{name: p + ".downsample", c: c, h: h, m: m, k: 1, s: s, actZero: resBlockInZero, outZeroSet: true})
				skipZero = 0
			}
			after := w.Layers[len(w.Layers)-1].Name
			w.Adds = append(w.Adds, Eltwise{Name: p + ".add", After: after, Elems: m * oh * oh,
				SkipZero: skipZero, OutZero: resBlockInZero, Outlier: DefaultOutlierRatio})
			c, h = m, oh
		}
	}
	add(convSpec{name: "fc", c: 512, m: 1000, fc: true, actZero: 0})
	return w
}

var builtins = map[string]func() *Workload{
	"alexnet":       func() *Workload { return AlexNet(true) },
	"alexnet-dense": func() *Workload { return AlexNet(false) },
	"vgg16":         func() *Workload { return VGG16(true) },
	"vgg16-dense":   func() *Workload { return VGG16(false) },
	"resnet18":      ResNet18,
}

// Builtin returns a built-in workload by name.
func Builtin(name string) (*Workload, error) {
	f, ok := builtins[strings.ToLower(name)]
	if !ok {
		return nil, fmt.Errorf("unknown built-in network %q (have %s)", name, strings.Join(BuiltinNames(), ", "))
	}
	return f(), nil
}

// BuiltinNames lists the built-in workloads.
func BuiltinNames() []string {
	var n []string
	for k := range builtins {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}
