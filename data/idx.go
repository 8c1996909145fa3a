package data

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// IDX magic numbers: two zero bytes, the element type (0x08 = uint8) and
// the number of dimensions.
const (
	idxImagesMagic = 0x00000803
	idxLabelsMagic = 0x00000801
)

// maxIDXBytes bounds what a header may claim, so that a corrupt header is
// an error instead of an enormous allocation.
const maxIDXBytes = 1 << 34

// openMaybeGzip opens path and transparently decompresses it when it starts
// with the gzip magic bytes (whatever its name). close releases both.
func openMaybeGzip(path string) (r io.Reader, closeFn func() error, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("data: %w", err)
	}
	br := bufio.NewReaderSize(f, 1<<16)
	head, _ := br.Peek(2)
	if len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("data: %s: bad gzip header: %w", path, err)
		}
		return zr, func() error { zr.Close(); return f.Close() }, nil
	}
	return br, f.Close, nil
}

// readPayload reads exactly want bytes and then checks that the stream
// ends there (which also verifies a gzip checksum). what names the payload
// in errors. Memory grows with the data actually read, not with want.
func readPayload(r io.Reader, path string, want int64, what string) ([]byte, error) {
	buf := make([]byte, 0, min(want, 1<<26))
	for int64(len(buf)) < want {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, int(min(want-int64(len(buf)), int64(len(buf)))))
		}
		end := min(int64(cap(buf)), want)
		n, err := r.Read(buf[len(buf):end])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("data: %s: truncated: compressed data ends inside %s", path, what)
		}
		if err != nil {
			return nil, fmt.Errorf("data: %s: reading %s: %w", path, what, err)
		}
	}
	if int64(len(buf)) < want {
		return nil, fmt.Errorf("data: %s: truncated: %s needs %d bytes, file has %d", path, what, want, len(buf))
	}
	var one [1]byte
	for {
		n, err := r.Read(one[:])
		if n > 0 {
			return nil, fmt.Errorf("data: %s: unexpected bytes after %s (%d bytes)", path, what, want)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, fmt.Errorf("data: %s: after %s: %w", path, what, err)
		}
	}
}

// readIDXHeader reads the magic and dimension sizes of an IDX file.
func readIDXHeader(r io.Reader, path string, magic uint32, kind string) ([]int, error) {
	var m uint32
	if err := binary.Read(r, binary.BigEndian, &m); err != nil {
		return nil, fmt.Errorf("data: %s: truncated IDX header: %w", path, noEOF(err))
	}
	if m != magic {
		return nil, fmt.Errorf("data: %s: bad magic 0x%08x, want 0x%08x (IDX %s, uint8)", path, m, magic, kind)
	}
	dims := make([]int, magic&0xff)
	for i := range dims {
		var d uint32
		if err := binary.Read(r, binary.BigEndian, &d); err != nil {
			return nil, fmt.Errorf("data: %s: truncated IDX header: %w", path, noEOF(err))
		}
		dims[i] = int(d)
	}
	return dims, nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ReadIDXImages reads an idx3-ubyte image file (raw or gzip-compressed)
// and returns the count, the image height and width, and the N×H×W pixels.
func ReadIDXImages(path string) (n, h, w int, pix []uint8, err error) {
	r, closeFn, err := openMaybeGzip(path)
	if err != nil {
		return 0, 0, 0, nil, err
	}
	defer closeFn()
	dims, err := readIDXHeader(r, path, idxImagesMagic, "images")
	if err != nil {
		return 0, 0, 0, nil, err
	}
	n, h, w = dims[0], dims[1], dims[2]
	if h == 0 || w == 0 || int64(n)*int64(h)*int64(w) > maxIDXBytes {
		return 0, 0, 0, nil, fmt.Errorf("data: %s: implausible IDX image dimensions %dx%dx%d", path, n, h, w)
	}
	pix, err = readPayload(r, path, int64(n*h*w), fmt.Sprintf("%d images of %dx%d", n, h, w))
	if err != nil {
		return 0, 0, 0, nil, err
	}
	return n, h, w, pix, nil
}

// ReadIDXLabels reads an idx1-ubyte label file (raw or gzip-compressed).
func ReadIDXLabels(path string) ([]int, error) {
	r, closeFn, err := openMaybeGzip(path)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	dims, err := readIDXHeader(r, path, idxLabelsMagic, "labels")
	if err != nil {
		return nil, err
	}
	if int64(dims[0]) > maxIDXBytes {
		return nil, fmt.Errorf("data: %s: implausible IDX label count %d", path, dims[0])
	}
	raw, err := readPayload(r, path, int64(dims[0]), fmt.Sprintf("%d labels", dims[0]))
	if err != nil {
		return nil, err
	}
	labels := make([]int, len(raw))
	for i, v := range raw {
		labels[i] = int(v)
	}
	return labels, nil
}

// LoadIDX reads an image and a label IDX file into a 1-channel Dataset.
// The class count is max(label)+1 and mean/std are computed on these
// images; callers with known values (Open does) overwrite them.
func LoadIDX(name, split, imagesPath, labelsPath string) (*Dataset, error) {
	n, h, w, pix, err := ReadIDXImages(imagesPath)
	if err != nil {
		return nil, err
	}
	labels, err := ReadIDXLabels(labelsPath)
	if err != nil {
		return nil, err
	}
	if len(labels) != n {
		return nil, fmt.Errorf("data: count mismatch: %s has %d images but %s has %d labels", imagesPath, n, labelsPath, len(labels))
	}
	classes := 0
	for _, y := range labels {
		classes = max(classes, y+1)
	}
	mean, std := ChannelStats(pix, 1, h*w, nil)
	return &Dataset{Name: name, Split: split, C: 1, H: h, W: w, Classes: classes,
		Pixels: pix, Labels: labels, Mean: mean, Std: std}, nil
}
