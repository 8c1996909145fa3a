package data

import (
	"fmt"
	"math"

	"lowbit/tensor"
)

// Dataset is one split of an image classification data set, held compactly
// as uint8 pixels. A Dataset is read-only once built: loaders and views
// (Head) share its slices.
type Dataset struct {
	Name  string // short name, e.g. "mnist", "fashion-mnist", "cifar10", or a folder's base name
	Split string // "train" or "test"

	C, H, W    int      // image channels, height and width
	Classes    int      // number of classes; labels are in [0, Classes)
	ClassNames []string // optional, len Classes when set

	Pixels []uint8 // N×C×H×W, row-major (CHW per image), 0..255
	Labels []int   // N labels

	// Mean and Std (one value per channel, on the 0..1 pixel scale) define
	// the normalization x = (p/255 - Mean[c]) / Std[c]. They come from the
	// train split (or the known published values), never from the test split
	// when a train split exists, so train and test are normalized alike.
	Mean, Std []float32
}

// Known normalization constants (0..1 pixel scale).
var (
	MNISTMean        = []float32{0.1307}
	MNISTStd         = []float32{0.3081}
	FashionMNISTMean = []float32{0.2860}
	FashionMNISTStd  = []float32{0.3530}
	CIFAR10Mean      = []float32{0.4914, 0.4822, 0.4465}
	CIFAR10Std       = []float32{0.2470, 0.2435, 0.2616}
)

// N returns the number of images.
func (d *Dataset) N() int { return len(d.Labels) }

// ImageSize returns C×H×W, the number of bytes of one image.
func (d *Dataset) ImageSize() int { return d.C * d.H * d.W }

// Image returns the CHW pixels of image i (a view into Pixels).
func (d *Dataset) Image(i int) []uint8 {
	s := d.ImageSize()
	return d.Pixels[i*s : (i+1)*s : (i+1)*s]
}

// String describes the dataset in one line.
func (d *Dataset) String() string {
	return fmt.Sprintf("%s/%s: %d images %dx%dx%d, %d classes", d.Name, d.Split, d.N(), d.C, d.H, d.W, d.Classes)
}

// Validate checks that the fields are consistent: sizes, label range and
// normalization constants. Loaders call it, so a hand-built Dataset with a
// mistake is an error rather than a panic.
func (d *Dataset) Validate() error {
	if d == nil {
		return fmt.Errorf("data: nil dataset")
	}
	if d.C <= 0 || d.H <= 0 || d.W <= 0 {
		return fmt.Errorf("data: %s: bad image shape %dx%dx%d", d.Name, d.C, d.H, d.W)
	}
	if d.Classes <= 0 {
		return fmt.Errorf("data: %s: class count %d must be positive", d.Name, d.Classes)
	}
	if d.ClassNames != nil && len(d.ClassNames) != d.Classes {
		return fmt.Errorf("data: %s: %d class names for %d classes", d.Name, len(d.ClassNames), d.Classes)
	}
	if want := d.N() * d.ImageSize(); len(d.Pixels) != want {
		return fmt.Errorf("data: %s: %d pixel bytes, want %d for %d images of %dx%dx%d", d.Name, len(d.Pixels), want, d.N(), d.C, d.H, d.W)
	}
	for i, y := range d.Labels {
		if y < 0 || y >= d.Classes {
			return fmt.Errorf("data: %s: label %d of image %d is outside [0,%d)", d.Name, y, i, d.Classes)
		}
	}
	if len(d.Mean) != d.C || len(d.Std) != d.C {
		return fmt.Errorf("data: %s: mean/std have %d/%d values, want one per channel (%d)", d.Name, len(d.Mean), len(d.Std), d.C)
	}
	for c, s := range d.Std {
		if !(s > 0) || math.IsInf(float64(s), 0) || math.IsNaN(float64(d.Mean[c])) {
			return fmt.Errorf("data: %s: bad normalization for channel %d: mean %v std %v", d.Name, c, d.Mean[c], s)
		}
	}
	return nil
}

// Subset returns a new dataset holding copies of the given images, in that
// order. Indices out of range are an error.
func (d *Dataset) Subset(idx []int) (*Dataset, error) {
	s := d.ImageSize()
	out := d.withData(make([]uint8, 0, len(idx)*s), make([]int, 0, len(idx)))
	for _, i := range idx {
		if i < 0 || i >= d.N() {
			return nil, fmt.Errorf("data: %s: subset index %d outside [0,%d)", d.Name, i, d.N())
		}
		out.Pixels = append(out.Pixels, d.Image(i)...)
		out.Labels = append(out.Labels, d.Labels[i])
	}
	return out, nil
}

// Head returns a view of the first n images (all of them if n >= N). The
// view shares pixel and label storage with d.
func (d *Dataset) Head(n int) *Dataset {
	n = max(0, min(n, d.N()))
	s := d.ImageSize()
	return d.withData(d.Pixels[:n*s:n*s], d.Labels[:n:n])
}

// withData returns a shallow copy of d's metadata around new pixels/labels.
func (d *Dataset) withData(pix []uint8, labels []int) *Dataset {
	out := *d
	out.Pixels, out.Labels = pix, labels
	return &out
}

// Batch returns the given images normalized (no augmentation) as a fresh
// [len(idx),C,H,W] tensor together with their labels. It is the random-access
// path for evaluation and calibration; Loader is the streaming one.
func (d *Dataset) Batch(idx ...int) (*tensor.Tensor, []int, error) {
	if err := d.Validate(); err != nil {
		return nil, nil, err
	}
	x := tensor.New(len(idx), d.C, d.H, d.W)
	y := make([]int, len(idx))
	lut := d.lut()
	s := d.ImageSize()
	for k, i := range idx {
		if i < 0 || i >= d.N() {
			return nil, nil, fmt.Errorf("data: %s: batch index %d outside [0,%d)", d.Name, i, d.N())
		}
		writeImage(x.Data[k*s:(k+1)*s], d.Image(i), d.C, d.H, d.W, lut, sampleAug{})
		y[k] = d.Labels[i]
	}
	return x, y, nil
}

// lut returns, per channel, the normalized value of each of the 256 pixel
// values, so that normalization is one table look-up per pixel.
func (d *Dataset) lut() [][256]float32 {
	t := make([][256]float32, d.C)
	for c := range t {
		m, s := float64(d.Mean[c]), float64(d.Std[c])
		for v := range 256 {
			t[c][v] = float32((float64(v)/255 - m) / s)
		}
	}
	return t
}

// ChannelStats returns the per-channel mean and standard deviation (0..1
// scale) of the given images of pix (N×C×H×W with the given per-image
// size); with idx nil it uses every image. A constant channel gets std 1 so
// that normalization stays finite.
func ChannelStats(pix []uint8, c, hw int, idx []int) (mean, std []float32) {
	img := c * hw
	n := len(pix) / max(img, 1)
	sum := make([]uint64, c)
	sq := make([]uint64, c)
	count := 0
	add := func(i int) {
		p := pix[i*img : (i+1)*img]
		for ch := range c {
			var s, q uint64
			for _, v := range p[ch*hw : (ch+1)*hw] {
				s += uint64(v)
				q += uint64(v) * uint64(v)
			}
			sum[ch] += s
			sq[ch] += q
		}
		count++
	}
	if idx == nil {
		for i := range n {
			add(i)
		}
	} else {
		for _, i := range idx {
			add(i)
		}
	}
	mean, std = make([]float32, c), make([]float32, c)
	for ch := range c {
		cnt := float64(count * hw)
		if cnt == 0 {
			mean[ch], std[ch] = 0, 1
			continue
		}
		m := float64(sum[ch]) / cnt / 255
		v := float64(sq[ch])/cnt/(255*255) - m*m
		mean[ch] = float32(m)
		std[ch] = float32(math.Sqrt(max(v, 0)))
		if std[ch] < 1e-6 {
			std[ch] = 1
		}
	}
	return mean, std
}
