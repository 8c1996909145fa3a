package data

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIDXRoundTripGzipAndRaw(t *testing.T) {
	dir := t.TempDir()
	pix, lab := tinyIDX(5, 3, 4, 3)
	img := idxBytes(idxImagesMagic, []int{5, 3, 4}, pix)
	lbl := idxBytes(idxLabelsMagic, []int{5}, lab)
	for _, compress := range []bool{true, false} {
		ip, lp := filepath.Join(dir, "img"), filepath.Join(dir, "lbl")
		if compress {
			writeFile(t, ip, gz(t, img))
			writeFile(t, lp, gz(t, lbl))
		} else {
			writeFile(t, ip, img)
			writeFile(t, lp, lbl)
		}
		ds, err := LoadIDX("tiny", "train", ip, lp)
		if err != nil {
			t.Fatalf("gzip=%v: %v", compress, err)
		}
		if ds.N() != 5 || ds.C != 1 || ds.H != 3 || ds.W != 4 || ds.Classes != 3 {
			t.Fatalf("gzip=%v: got %v", compress, ds)
		}
		if !bytes.Equal(ds.Pixels, pix) {
			t.Fatalf("gzip=%v: pixels differ", compress)
		}
		for i, y := range ds.Labels {
			if y != int(lab[i]) {
				t.Fatalf("label %d = %d, want %d", i, y, lab[i])
			}
		}
		if err := ds.Validate(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestIDXErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	pix, lab := tinyIDX(4, 2, 2, 2)
	good := idxBytes(idxImagesMagic, []int{4, 2, 2}, pix)
	goodLabels := filepath.Join(dir, "good-labels")
	writeFile(t, goodLabels, idxBytes(idxLabelsMagic, []int{4}, lab))
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"bad-magic", idxBytes(0x00000801, []int{4, 2, 2}, pix), "bad magic"},
		{"truncated-raw", good[:len(good)-3], "truncated"},
		{"truncated-gz", gz(t, good)[:40], "truncated"},
		{"short-header", good[:6], "truncated IDX header"},
		{"trailing", append(append([]byte(nil), good...), 1, 2), "unexpected bytes"},
		{"empty", nil, "truncated IDX header"},
	}
	for _, c := range cases {
		p := filepath.Join(dir, c.name)
		writeFile(t, p, c.data)
		_, err := LoadIDX("x", "train", p, goodLabels)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q should name %s and say %q", c.name, err, p, c.want)
		}
	}
	// Corrupt gzip data (checksum) is detected too.
	z := gz(t, good)
	z[len(z)-6] ^= 0xff
	p := filepath.Join(dir, "bad-crc.gz")
	writeFile(t, p, z)
	if _, err := LoadIDX("x", "train", p, goodLabels); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("bad crc: %v", err)
	}
	// Count mismatch names both files.
	imgs := filepath.Join(dir, "three-images")
	writeFile(t, imgs, idxBytes(idxImagesMagic, []int{3, 2, 2}, pix[:12]))
	_, err := LoadIDX("x", "train", imgs, goodLabels)
	if err == nil || !strings.Contains(err.Error(), "count mismatch") || !strings.Contains(err.Error(), imgs) || !strings.Contains(err.Error(), goodLabels) {
		t.Errorf("count mismatch: %v", err)
	}
	// A missing file names itself.
	if _, err := LoadIDX("x", "train", filepath.Join(dir, "nope"), goodLabels); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing file: %v", err)
	}
	// A header claiming an absurd size fails without allocating it.
	huge := filepath.Join(dir, "huge")
	writeFile(t, huge, idxBytes(idxImagesMagic, []int{1 << 30, 1 << 10, 1 << 10}, nil))
	if _, _, _, _, err := ReadIDXImages(huge); err == nil || !strings.Contains(err.Error(), "implausible") {
		t.Errorf("huge header: %v", err)
	}
}

func TestCIFAR10(t *testing.T) {
	dir := t.TempDir()
	writeCIFARDir(t, dir, 3)
	train, err := LoadCIFAR10(dir, "train")
	if err != nil {
		t.Fatal(err)
	}
	if train.N() != 15 || train.C != 3 || train.H != 32 || train.W != 32 || train.Classes != 10 {
		t.Fatalf("train: %v", train)
	}
	test, err := LoadCIFAR10(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	if test.N() != 3 || test.Labels[2] != 2 {
		t.Fatalf("test: %v labels %v", test, test.Labels)
	}
	// Image 1's planes are CHW: channel c is all (1+50c).
	im := test.Image(1)
	for c := range 3 {
		if im[c*1024] != byte(1+50*c) || im[c*1024+1023] != byte(1+50*c) {
			t.Fatalf("channel %d of image 1 = %d, want %d", c, im[c*1024], 1+50*c)
		}
	}
	if test.Mean[0] != CIFAR10Mean[0] || test.Std[2] != CIFAR10Std[2] {
		t.Fatalf("want the published CIFAR-10 constants, got %v %v", test.Mean, test.Std)
	}
	// The official tarball layout (a cifar-10-batches-bin subfolder) works too.
	outer := t.TempDir()
	writeCIFARDir(t, filepath.Join(outer, "cifar-10-batches-bin"), 1)
	if ds, err := Open(outer, "test"); err != nil || ds.N() != 1 || ds.Name != "cifar10" {
		t.Fatalf("tarball layout: %v %v", ds, err)
	}
}

func TestCIFAR10Errors(t *testing.T) {
	dir := t.TempDir()
	writeCIFARDir(t, dir, 2)
	trunc := filepath.Join(dir, "test_batch.bin")
	writeFile(t, trunc, cifarBytes(2)[:3073+100])
	if _, err := LoadCIFAR10(dir, "test"); err == nil || !strings.Contains(err.Error(), trunc) || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated: %v", err)
	}
	bad := cifarBytes(2)
	bad[3073] = 12
	writeFile(t, trunc, bad)
	if _, err := LoadCIFAR10(dir, "test"); err == nil || !strings.Contains(err.Error(), trunc) || !strings.Contains(err.Error(), "label 12") {
		t.Errorf("bad label: %v", err)
	}
	os.Remove(filepath.Join(dir, "data_batch_4.bin"))
	if _, err := LoadCIFAR10(dir, "train"); err == nil || !strings.Contains(err.Error(), "data_batch_4.bin") {
		t.Errorf("missing batch: %v", err)
	}
}

var (
	red   = color.RGBA{200, 10, 10, 255}
	blue  = color.RGBA{10, 20, 220, 255}
	green = color.RGBA{0, 255, 0, 255}
)

// writeTwoClassFolder writes root/cat (red) and root/dog (blue) PNGs.
func writeTwoClassFolder(t *testing.T, root string, perClass int) {
	for i := range perClass {
		writePNG(t, filepath.Join(root, "dog", string(rune('a'+i))+".png"), 12, 9, solid(blue))
		writePNG(t, filepath.Join(root, "cat", string(rune('a'+i))+".png"), 9, 12, solid(red))
	}
	writeFile(t, filepath.Join(root, "cat", "notes.txt"), []byte("ignored"))
}

func TestImageFolderFlatHoldout(t *testing.T) {
	root := filepath.Join(t.TempDir(), "pets")
	writeTwoClassFolder(t, root, 12)
	train, err := Open(root+":6", "train")
	if err != nil {
		t.Fatal(err)
	}
	test, err := Open(root+":6", "test")
	if err != nil {
		t.Fatal(err)
	}
	// 12 per class: indices 9 go to test (1 per class), 11 per class train.
	if train.N() != 22 || test.N() != 2 {
		t.Fatalf("split sizes %d/%d, want 22/2", train.N(), test.N())
	}
	if train.Name != "pets" || train.C != 3 || train.H != 6 || train.W != 6 || train.Classes != 2 {
		t.Fatalf("train: %v", train)
	}
	if train.ClassNames[0] != "cat" || train.ClassNames[1] != "dog" {
		t.Fatalf("classes %v, want sorted [cat dog]", train.ClassNames)
	}
	for i, y := range train.Labels {
		want := red
		if y == 1 {
			want = blue
		}
		im := train.Image(i)
		if im[0] != want.R || im[36] != want.G || im[72+35] != want.B {
			t.Fatalf("image %d (class %d): got RGB %d,%d,%d", i, y, im[0], im[36], im[72+35])
		}
	}
	// Both splits share the train split's normalization.
	for c := range 3 {
		if train.Mean[c] != test.Mean[c] || train.Std[c] != test.Std[c] {
			t.Fatalf("mean/std differ between splits: %v %v vs %v %v", train.Mean, train.Std, test.Mean, test.Std)
		}
	}
	wantR := (11*200.0 + 11*10) / 22 / 255
	if math.Abs(float64(train.Mean[0])-wantR) > 1e-5 {
		t.Fatalf("red mean %v, want %v", train.Mean[0], wantR)
	}
}

func TestImageFolderSplitsResizeAndCrop(t *testing.T) {
	root := t.TempDir()
	// A wide image: the central 20×20 square is green, the 10-pixel side
	// bands red. Resize-shorter-side + center crop keeps only green.
	band := func(x, y int) color.RGBA {
		if x < 10 || x >= 30 {
			return red
		}
		return green
	}
	writePNG(t, filepath.Join(root, "train", "a", "wide.png"), 40, 20, band)
	writePNG(t, filepath.Join(root, "train", "b", "x.png"), 5, 5, solid(blue))
	var jb bytes.Buffer
	im := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for i := range im.Pix {
		im.Pix[i] = 128
	}
	if err := jpeg.Encode(&jb, im, nil); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "val", "b", "gray.JPG"), jb.Bytes())
	ds, err := LoadImageFolder(root, "train", 8)
	if err != nil {
		t.Fatal(err)
	}
	if ds.N() != 2 || ds.Labels[0] != 0 || ds.Labels[1] != 1 {
		t.Fatalf("train: %v %v", ds, ds.Labels)
	}
	img := ds.Image(0)
	for p := range 64 {
		if img[p] != 0 || img[64+p] != 255 || img[128+p] != 0 {
			t.Fatalf("pixel %d of the cropped wide image is RGB %d,%d,%d, want pure green", p, img[p], img[64+p], img[128+p])
		}
	}
	up := ds.Image(1) // 5×5 upscaled to 8×8, still solid blue
	if up[0] != blue.R || up[64+20] != blue.G || up[128+63] != blue.B {
		t.Fatalf("upscaled image: %v", up[:3])
	}
	test, err := LoadImageFolder(root, "test", 8)
	if err != nil {
		t.Fatal(err)
	}
	if test.N() != 1 || test.Labels[0] != 1 || test.Classes != 2 {
		t.Fatalf("test (from val/): %v %v", test, test.Labels)
	}
	if v := test.Image(0)[10]; v < 120 || v > 136 {
		t.Fatalf("gray JPEG decoded to %d", v)
	}
	// A test class unknown to train is an error naming the folder.
	writePNG(t, filepath.Join(root, "val", "zebra", "z.png"), 4, 4, solid(red))
	if _, err := LoadImageFolder(root, "test", 8); err == nil || !strings.Contains(err.Error(), "zebra") {
		t.Fatalf("unknown class: %v", err)
	}
}

func TestImageFolderErrors(t *testing.T) {
	root := t.TempDir()
	writeTwoClassFolder(t, root, 2)
	bad := filepath.Join(root, "cat", "broken.png")
	writeFile(t, bad, []byte("\x89PNG\r\n\x1a\nnot really"))
	if _, err := LoadImageFolder(root, "train", 4); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("corrupt PNG: %v", err)
	}
	empty := t.TempDir()
	if _, err := Open(empty, "train"); err == nil || !strings.Contains(err.Error(), "no class subfolders") {
		t.Errorf("empty folder: %v", err)
	}
	only := t.TempDir()
	writePNG(t, filepath.Join(only, "train", "a", "x.png"), 4, 4, solid(red))
	if _, err := LoadImageFolder(only, "test", 4); err == nil || !strings.Contains(err.Error(), "test/") {
		t.Errorf("missing test split: %v", err)
	}
	if _, err := LoadImageFolder(only, "train", 0); err == nil {
		t.Error("size 0 accepted")
	}
}

func TestOpenDetectsIDXFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "digits")
	writeIDXDir(t, dir, 20, 6, 5, 5, 4)
	train, err := Open(dir, "train")
	if err != nil {
		t.Fatal(err)
	}
	test, err := Open(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	if train.N() != 20 || test.N() != 6 || train.Name != "digits" || train.Classes != 4 || test.Classes != 4 {
		t.Fatalf("train %v test %v", train, test)
	}
	// The test split is normalized with the train split's statistics.
	if test.Mean[0] != train.Mean[0] || test.Std[0] != train.Std[0] {
		t.Fatalf("test mean/std %v/%v, want train's %v/%v", test.Mean, test.Std, train.Mean, train.Std)
	}
	if _, err := Open(dir, "validation"); err == nil {
		t.Fatal("bad split name accepted")
	}
	if _, err := Open(filepath.Join(dir, "missing"), "train"); err == nil || !strings.Contains(err.Error(), "mnist") {
		t.Fatalf("missing path: %v", err)
	}
}
