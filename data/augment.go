package data

import "math/bits"

// Augment configures training-time augmentation. Both transforms keep the
// image shape and the label.
type Augment struct {
	// Pad enables random cropping: the image is padded with Pad black pixels
	// (pixel value 0, before normalization) on every side and an H×W window
	// is cut at a uniformly random offset. 0 disables it.
	Pad int
	// Flip mirrors the image left-right with probability 1/2.
	Flip bool
}

// sampleAug is the augmentation drawn for one sample.
type sampleAug struct {
	pad, dx, dy int // window offset in padded coordinates, 0..2*pad
	flip        bool
}

// Random streams are derived by hashing (seed, epoch, purpose, position),
// so every sample's randomness is fixed by the seed alone, whatever the
// prefetching or the number of workers.
const (
	tagShuffle = 0x5348554646
	tagAugment = 0x4155474d
)

// mix64 is the SplitMix64 finalizer, a strong 64-bit mixing function.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func hash4(a, b, c, d uint64) uint64 {
	return mix64(mix64(mix64(mix64(a)^b)^c) ^ d)
}

// below returns a uniform integer in [0,n) from a 64-bit hash (the
// multiply-high mapping; its bias is below n/2^64).
func below(h uint64, n int) int {
	hi, _ := bits.Mul64(h, uint64(n))
	return int(hi)
}

// permutation returns the shuffled order of n samples for (seed, epoch):
// a Fisher-Yates shuffle driven by a SplitMix64 stream. It is fixed by its
// arguments forever (it depends on no library generator).
func permutation(n int, seed int64, epoch int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	s := hash4(uint64(seed), uint64(epoch), tagShuffle, 0)
	for i := n - 1; i > 0; i-- {
		s += 0x9e3779b97f4a7c15
		j := below(mix64(s), i+1)
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// draw returns the augmentation of the sample at position pos of an epoch.
func (a Augment) draw(seed int64, epoch, pos int) sampleAug {
	if a.Pad == 0 && !a.Flip {
		return sampleAug{}
	}
	h := hash4(uint64(seed), uint64(epoch), tagAugment, uint64(pos))
	s := sampleAug{pad: a.Pad}
	if a.Pad > 0 {
		s.dx = below(h, 2*a.Pad+1)
		s.dy = below(mix64(h), 2*a.Pad+1)
	}
	s.flip = a.Flip && mix64(h^tagAugment)&1 == 1
	return s
}

// writeImage normalizes one CHW uint8 image into dst through the per-channel
// look-up table, applying the sample's crop window and flip.
func writeImage(dst []float32, src []uint8, c, h, w int, lut [][256]float32, a sampleAug) {
	hw := h * w
	if a.pad == 0 && !a.flip {
		for ch := range c {
			t := &lut[ch]
			d, s := dst[ch*hw:(ch+1)*hw], src[ch*hw:(ch+1)*hw]
			for i, v := range s {
				d[i] = t[v]
			}
		}
		return
	}
	offY, offX := a.dy-a.pad, a.dx-a.pad // output (y,x) reads source (y+offY, x+offX)
	for ch := range c {
		t := &lut[ch]
		zero := t[0]
		for y := range h {
			d := dst[ch*hw+y*w : ch*hw+(y+1)*w]
			sy := y + offY
			if sy < 0 || sy >= h {
				for x := range d {
					d[x] = zero
				}
				continue
			}
			row := src[ch*hw+sy*w : ch*hw+(sy+1)*w]
			for x := range d {
				sx := x + offX
				if a.flip {
					sx = w - 1 - x + offX
				}
				if sx < 0 || sx >= w {
					d[x] = zero
				} else {
					d[x] = t[row[sx]]
				}
			}
		}
	}
}
