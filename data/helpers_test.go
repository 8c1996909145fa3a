package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// idxBytes encodes an IDX file with the given magic and dimensions.
func idxBytes(magic uint32, dims []int, payload []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, magic)
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(payload)
	return b.Bytes()
}

func gz(t *testing.T, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tinyIDX returns n images of h×w with pixel (i,y,x) = (i*7+y*w+x)%256 and
// labels i%classes.
func tinyIDX(n, h, w, classes int) (pix []byte, labels []byte) {
	pix = make([]byte, n*h*w)
	for i := range n {
		for p := range h * w {
			pix[i*h*w+p] = byte((i*7 + p) % 256)
		}
	}
	labels = make([]byte, n)
	for i := range labels {
		labels[i] = byte(i % classes)
	}
	return pix, labels
}

// writeIDXDir writes both splits of a tiny IDX data set (gzip) into dir.
func writeIDXDir(t *testing.T, dir string, nTrain, nTest, h, w, classes int) {
	t.Helper()
	for _, sp := range []struct {
		prefix string
		n      int
	}{{"train", nTrain}, {"t10k", nTest}} {
		pix, lab := tinyIDX(sp.n, h, w, classes)
		writeFile(t, filepath.Join(dir, sp.prefix+"-images-idx3-ubyte.gz"), gz(t, idxBytes(idxImagesMagic, []int{sp.n, h, w}, pix)))
		writeFile(t, filepath.Join(dir, sp.prefix+"-labels-idx1-ubyte.gz"), gz(t, idxBytes(idxLabelsMagic, []int{sp.n}, lab)))
	}
}

// cifarBytes encodes n CIFAR-10 records; image i has every byte of
// channel c equal to (i+c*50)%256 and label i%10.
func cifarBytes(n int) []byte {
	var b []byte
	for i := range n {
		b = append(b, byte(i%10))
		for c := range 3 {
			b = append(b, bytes.Repeat([]byte{byte((i + c*50) % 256)}, 1024)...)
		}
	}
	return b
}

func writeCIFARDir(t *testing.T, dir string, perBatch int) {
	t.Helper()
	for _, f := range append(append([]string(nil), cifarTrainFiles...), cifarTestFiles...) {
		writeFile(t, filepath.Join(dir, f), cifarBytes(perBatch))
	}
}

// writePNG writes a w×h image whose pixel color is f(x,y).
func writePNG(t *testing.T, path string, w, h int, f func(x, y int) color.RGBA) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, f(x, y))
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b.Bytes())
}

func solid(c color.RGBA) func(x, y int) color.RGBA {
	return func(int, int) color.RGBA { return c }
}

// testDataset returns a small 3-channel dataset with distinct pixels.
func testDataset(n, c, h, w, classes int) *Dataset {
	pix := make([]uint8, n*c*h*w)
	for i := range pix {
		pix[i] = uint8((i*31 + i/7) % 256)
	}
	labels := make([]int, n)
	for i := range labels {
		labels[i] = i % classes
	}
	mean, std := ChannelStats(pix, c, h*w, nil)
	return &Dataset{Name: "synthetic", Split: "train", C: c, H: h, W: w, Classes: classes,
		Pixels: pix, Labels: labels, Mean: mean, Std: std}
}
