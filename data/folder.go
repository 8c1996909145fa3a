package data

import (
	"fmt"
	"image"
	_ "image/jpeg" // register the JPEG decoder for image folders
	_ "image/png"  // register the PNG decoder for image folders
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"golang.org/x/image/draw"
)

// DefaultImageSize is the side of the square images an image folder is
// resized to when the spec does not say (see Open).
const DefaultImageSize = 32

// statsSample is how many evenly spaced train images an image folder's
// mean/std are computed on (decoding a whole large folder only to
// normalize its test split would be slow).
const statsSample = 1000

// holdoutEvery: a folder without split subfolders puts every holdoutEvery-th
// image of each class (in file-name order) into the test split.
const holdoutEvery = 10

// folderItem is one image file and its class.
type folderItem struct {
	path  string
	label int
}

// folderLayout describes an image folder: its classes and where each split
// comes from.
type folderLayout struct {
	root     string
	classes  []string
	trainDir string // "" when the folder has no split subfolders or no train/
	testDir  string // "" when the folder has no split subfolders or no test/ or val/
	flat     bool   // classes directly under root; splits by hold-out
}

func isImageFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".png", ".jpg", ".jpeg":
		return true
	}
	return false
}

// listDir returns the sorted names of the visible entries of dir that keep
// accepts.
func listDir(dir string, keep func(os.DirEntry) bool) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	var out []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") && keep(e) {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out, nil
}

// subdirs returns the sorted names of the subdirectories of dir.
func subdirs(dir string) ([]string, error) {
	return listDir(dir, func(e os.DirEntry) bool {
		return e.IsDir() || (e.Type()&os.ModeSymlink != 0 && dirExists(filepath.Join(dir, e.Name())))
	})
}

// imageFiles returns the sorted image file names directly inside dir.
func imageFiles(dir string) ([]string, error) {
	return listDir(dir, func(e os.DirEntry) bool { return !e.IsDir() && isImageFile(e.Name()) })
}

// readFolderLayout inspects root.
func readFolderLayout(root string) (*folderLayout, error) {
	l := &folderLayout{root: root}
	if dirExists(filepath.Join(root, "train")) {
		l.trainDir = filepath.Join(root, "train")
	}
	for _, t := range []string{"test", "val"} {
		if dirExists(filepath.Join(root, t)) {
			l.testDir = filepath.Join(root, t)
			break
		}
	}
	classRoot := l.trainDir
	switch {
	case l.trainDir == "" && l.testDir == "":
		l.flat = true
		classRoot = root
	case l.trainDir == "":
		classRoot = l.testDir
	}
	var err error
	if l.classes, err = subdirs(classRoot); err != nil {
		return nil, err
	}
	if len(l.classes) == 0 {
		return nil, fmt.Errorf("data: %s: not an image folder: no class subfolders (want %s/<class>/*.png|jpg|jpeg)", classRoot, classRoot)
	}
	return l, nil
}

// items lists the files of a split in class-then-name order.
func (l *folderLayout) items(split string) ([]folderItem, error) {
	dir := l.root
	if !l.flat {
		dir = l.trainDir
		if split == "test" {
			dir = l.testDir
		}
		if dir == "" {
			want := "train/"
			if split == "test" {
				want = "test/ (or val/)"
			}
			return nil, fmt.Errorf("data: image folder %s has split subfolders but no %s folder", l.root, want)
		}
		// Every class folder of this split must be a known class.
		got, err := subdirs(dir)
		if err != nil {
			return nil, err
		}
		for _, c := range got {
			if _, ok := slices.BinarySearch(l.classes, c); !ok {
				return nil, fmt.Errorf("data: %s: class folder %q is not among the train classes %v", dir, c, l.classes)
			}
		}
	}
	var out []folderItem
	for label, c := range l.classes {
		cdir := filepath.Join(dir, c)
		if !dirExists(cdir) {
			continue // a split may lack a class
		}
		files, err := imageFiles(cdir)
		if err != nil {
			return nil, err
		}
		for i, f := range files {
			if l.flat && (i%holdoutEvery == holdoutEvery-1) != (split == "test") {
				continue
			}
			out = append(out, folderItem{filepath.Join(cdir, f), label})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("data: image folder %s: the %s split has no .png/.jpg/.jpeg images", dir, split)
	}
	return out, nil
}

// decodeSquare decodes an image file, scales its central square to
// size×size (equivalent to resizing the shorter side to size and center
// cropping) and writes it as CHW RGB bytes into dst. Transparent pixels
// are composited over black.
func decodeSquare(path string, size int, dst []uint8) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return fmt.Errorf("data: %s: cannot decode image: %w", path, err)
	}
	b := img.Bounds()
	side := min(b.Dx(), b.Dy())
	if side <= 0 {
		return fmt.Errorf("data: %s: empty image", path)
	}
	x0, y0 := b.Min.X+(b.Dx()-side)/2, b.Min.Y+(b.Dy()-side)/2
	sq := image.Rect(x0, y0, x0+side, y0+side)
	rgba := image.NewRGBA(image.Rect(0, 0, size, size))
	if side == size {
		draw.Draw(rgba, rgba.Bounds(), img, sq.Min, draw.Src)
	} else {
		draw.CatmullRom.Scale(rgba, rgba.Bounds(), img, sq, draw.Src, nil)
	}
	hw := size * size
	for i := range hw {
		p := rgba.Pix[4*i : 4*i+3]
		dst[i], dst[hw+i], dst[2*hw+i] = p[0], p[1], p[2]
	}
	return nil
}

// decodeItems decodes items in parallel into one N×3×size×size buffer.
// The result does not depend on scheduling; the first failing file (in
// item order) is reported.
func decodeItems(items []folderItem, size int) ([]uint8, error) {
	img := 3 * size * size
	pix := make([]uint8, len(items)*img)
	errs := make([]error, len(items))
	workers := min(runtime.GOMAXPROCS(0), len(items))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(items); i += workers {
				errs[i] = decodeSquare(items[i].path, size, pix[i*img:(i+1)*img])
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return pix, nil
}

// sampleIndices returns min(n,k) evenly spaced indices in [0,n).
func sampleIndices(n, k int) []int {
	k = min(n, k)
	idx := make([]int, k)
	for i := range idx {
		idx[i] = i * n / k
	}
	return idx
}

// LoadImageFolder loads an image folder laid out as root/<class>/*.png|jpg|
// jpeg (classes sorted by name), or root/train/<class>/... with root/test/
// (or root/val/) for the test split. Every image becomes 3×size×size RGB:
// its shorter side is resized to size (Catmull-Rom) and the center cropped.
// Without split subfolders, every 10th image of each class (by file name)
// is the test split and the rest the train split. Mean/std are computed on
// up to 1000 evenly spaced train images (the opened split itself when the
// folder has no train/ folder).
func LoadImageFolder(root, split string, size int) (*Dataset, error) {
	if size <= 0 {
		return nil, fmt.Errorf("data: image folder %s: image size %d must be positive", root, size)
	}
	if split != "train" && split != "test" {
		return nil, fmt.Errorf("data: image folder %s: split %q: want train or test", root, split)
	}
	l, err := readFolderLayout(root)
	if err != nil {
		return nil, err
	}
	items, err := l.items(split)
	if err != nil {
		return nil, err
	}
	pix, err := decodeItems(items, size)
	if err != nil {
		return nil, err
	}
	labels := make([]int, len(items))
	for i, it := range items {
		labels[i] = it.label
	}
	hw := size * size
	var mean, std []float32
	switch {
	case split == "train" || (!l.flat && l.trainDir == ""):
		mean, std = ChannelStats(pix, 3, hw, sampleIndices(len(items), statsSample))
	default:
		trainItems, err := l.items("train")
		if err != nil {
			return nil, err
		}
		sample := sampleIndices(len(trainItems), statsSample)
		picked := make([]folderItem, len(sample))
		for i, j := range sample {
			picked[i] = trainItems[j]
		}
		spix, err := decodeItems(picked, size)
		if err != nil {
			return nil, err
		}
		mean, std = ChannelStats(spix, 3, hw, nil)
	}
	name := filepath.Base(filepath.Clean(root))
	return &Dataset{Name: name, Split: split, C: 3, H: size, W: size, Classes: len(l.classes),
		ClassNames: slices.Clone(l.classes), Pixels: pix, Labels: labels, Mean: mean, Std: std}, nil
}
