package npy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"lowbit/internal/atomicfile"
	"lowbit/tensor"
)

// magic starts every .npy file.
const magic = "\x93NUMPY"

// Limits that keep a corrupt header from making the reader allocate
// without bound.
const (
	maxHeader = 1 << 20
	maxElems  = 1 << 31
	maxRank   = 32
)

// ReadFile reads a float32 array from a .npy file.
func ReadFile(path string) (*tensor.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read npy: %w", err)
	}
	defer f.Close()
	t, err := Read(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("read npy %s: %w", path, err)
	}
	return t, nil
}

// Read decodes a .npy stream holding a C-order float32 array. It reads
// exactly the array and fails if anything follows it.
func Read(r io.Reader) (*tensor.Tensor, error) {
	pre := make([]byte, len(magic)+2)
	if _, err := io.ReadFull(r, pre); err != nil {
		return nil, fmt.Errorf("file too short for a .npy header: %w", unexpected(err))
	}
	if string(pre[:len(magic)]) != magic {
		return nil, fmt.Errorf("not a .npy file (magic %q)", pre[:len(magic)])
	}
	major, minor := pre[len(magic)], pre[len(magic)+1]
	var hlen int
	switch major {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("header length: %w", unexpected(err))
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("header length: %w", unexpected(err))
		}
		n := binary.LittleEndian.Uint32(b[:])
		if n > maxHeader {
			return nil, fmt.Errorf("header length %d is implausible", n)
		}
		hlen = int(n)
	default:
		return nil, fmt.Errorf("format version %d.%d is not supported (1.0, 2.0 and 3.0 are)", major, minor)
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("header (%d bytes): %w", hlen, unexpected(err))
	}
	h, err := parseHeader(string(hdr))
	if err != nil {
		return nil, fmt.Errorf("header %q: %w", strings.TrimSpace(string(hdr)), err)
	}
	var order binary.ByteOrder
	switch h.descr {
	case "<f4":
		order = binary.LittleEndian
	case ">f4":
		order = binary.BigEndian
	default:
		return nil, fmt.Errorf("dtype %q is not supported: lowbit reads float32 arrays ('<f4'); convert with x.astype(numpy.float32)", h.descr)
	}
	if h.fortran {
		return nil, fmt.Errorf("Fortran-order arrays are not supported; save numpy.ascontiguousarray(x)")
	}
	n := 1
	for _, d := range h.shape {
		n *= d
		if n > maxElems {
			return nil, fmt.Errorf("shape %v is too large", h.shape)
		}
	}
	// Read in chunks so a lying shape cannot force a huge allocation
	// before the data proves to exist.
	data := make([]float32, 0, min(n, 1<<20))
	buf := make([]byte, 4*4096)
	for len(data) < n {
		k := min(n-len(data), len(buf)/4)
		if _, err := io.ReadFull(r, buf[:4*k]); err != nil {
			return nil, fmt.Errorf("data: shape %v needs %d bytes, file ends after %d: %w", h.shape, 4*n, 4*len(data), unexpected(err))
		}
		for j := range k {
			data = append(data, math.Float32frombits(order.Uint32(buf[4*j:])))
		}
	}
	var extra [1]byte
	if m, _ := r.Read(extra[:]); m > 0 {
		return nil, fmt.Errorf("data: unexpected bytes after the %d values of shape %v", n, h.shape)
	}
	return &tensor.Tensor{Shape: h.shape, Data: data}, nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// WriteFile writes t to path as a .npy file, atomically.
func WriteFile(path string, t *tensor.Tensor) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		if err := Write(bw, t); err != nil {
			return err
		}
		return bw.Flush()
	})
}

// Write encodes t as a little-endian C-order float32 .npy stream.
func Write(w io.Writer, t *tensor.Tensor) error {
	if tensor.Numel(t.Shape) != len(t.Data) {
		return fmt.Errorf("write npy: shape %v does not match %d values", t.Shape, len(t.Data))
	}
	dims := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = strconv.Itoa(d)
	}
	shape := strings.Join(dims, ", ")
	if len(dims) == 1 {
		shape += ","
	}
	dict := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", shape)
	// Pad with spaces and a newline so the data starts 64-byte aligned.
	var hdr bytes.Buffer
	hdr.WriteString(magic)
	pre := len(magic) + 2 + 2
	version := byte(1)
	if len(dict)+1+pre+64 > math.MaxUint16 {
		version, pre = 2, pre+2
	}
	total := (pre + len(dict) + 1 + 63) / 64 * 64
	body := dict + strings.Repeat(" ", total-pre-len(dict)-1) + "\n"
	hdr.Write([]byte{version, 0})
	if version == 1 {
		binary.Write(&hdr, binary.LittleEndian, uint16(len(body)))
	} else {
		binary.Write(&hdr, binary.LittleEndian, uint32(len(body)))
	}
	hdr.WriteString(body)
	if _, err := w.Write(hdr.Bytes()); err != nil {
		return fmt.Errorf("write npy header: %w", err)
	}
	buf := make([]byte, 4*4096)
	for i := 0; i < len(t.Data); i += 4096 {
		chunk := t.Data[i:min(i+4096, len(t.Data))]
		for j, v := range chunk {
			binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(v))
		}
		if _, err := w.Write(buf[:4*len(chunk)]); err != nil {
			return fmt.Errorf("write npy data: %w", err)
		}
	}
	return nil
}

// header is the decoded header dictionary.
type header struct {
	descr   string
	fortran bool
	shape   []int
}

// parseHeader parses the Python dict literal of a .npy header:
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
func parseHeader(s string) (header, error) {
	var h header
	p := &parser{s: s}
	if !p.eat('{') {
		return h, fmt.Errorf("want a dictionary")
	}
	seen := map[string]bool{}
	for {
		if p.eat('}') {
			break
		}
		key, err := p.str()
		if err != nil {
			return h, fmt.Errorf("key: %w", err)
		}
		if seen[key] {
			return h, fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		if !p.eat(':') {
			return h, fmt.Errorf("want ':' after key %q", key)
		}
		switch key {
		case "descr":
			if h.descr, err = p.str(); err != nil {
				return h, fmt.Errorf("descr: %w (structured dtypes are not supported)", err)
			}
		case "fortran_order":
			if h.fortran, err = p.boolean(); err != nil {
				return h, fmt.Errorf("fortran_order: %w", err)
			}
		case "shape":
			if h.shape, err = p.tuple(); err != nil {
				return h, fmt.Errorf("shape: %w", err)
			}
		default:
			return h, fmt.Errorf("unknown key %q", key)
		}
		if !p.eat(',') {
			if !p.eat('}') {
				return h, fmt.Errorf("want ',' or '}' after %q", key)
			}
			break
		}
	}
	if rest := strings.TrimSpace(p.s[p.i:]); rest != "" {
		return h, fmt.Errorf("trailing text %q", rest)
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return h, fmt.Errorf("key %q is missing", k)
		}
	}
	return h, nil
}

// parser scans a header dictionary.
type parser struct {
	s string
	i int
}

func (p *parser) skip() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

// eat consumes c (after blanks) if it comes next.
func (p *parser) eat(c byte) bool {
	p.skip()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a quoted string without escapes.
func (p *parser) str() (string, error) {
	p.skip()
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", fmt.Errorf("want a quoted string at offset %d", p.i)
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", fmt.Errorf("unterminated string at offset %d", p.i)
	}
	v := p.s[p.i+1 : p.i+1+end]
	p.i += end + 2
	return v, nil
}

func (p *parser) boolean() (bool, error) {
	p.skip()
	for _, w := range []string{"True", "False"} {
		if strings.HasPrefix(p.s[p.i:], w) {
			p.i += len(w)
			return w == "True", nil
		}
	}
	return false, fmt.Errorf("want True or False at offset %d", p.i)
}

// tuple reads a tuple of non-negative integers: (), (n,) or (a, b, ...).
func (p *parser) tuple() ([]int, error) {
	if !p.eat('(') {
		return nil, fmt.Errorf("want a tuple at offset %d", p.i)
	}
	dims := []int{}
	for {
		if p.eat(')') {
			return dims, nil
		}
		p.skip()
		j := p.i
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		// Python 2 era files may write long integers as 3L.
		v, err := strconv.Atoi(p.s[p.i:j])
		if err != nil || v > maxElems {
			return nil, fmt.Errorf("want a non-negative dimension at offset %d", p.i)
		}
		p.i = j
		if p.i < len(p.s) && p.s[p.i] == 'L' {
			p.i++
		}
		dims = append(dims, v)
		if len(dims) > maxRank {
			return nil, fmt.Errorf("more than %d dimensions", maxRank)
		}
		if !p.eat(',') {
			if !p.eat(')') {
				return nil, fmt.Errorf("want ',' or ')' at offset %d", p.i)
			}
			return dims, nil
		}
	}
}
