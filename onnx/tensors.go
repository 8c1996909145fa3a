package onnx

import (
	"encoding/binary"
	"fmt"
	"math"

	"lowbit/onnx/onnxpb"
)

// maxElems bounds the element count a tensor header may claim, so a
// corrupt dims field cannot make the importer allocate without limit.
const maxElems = 1 << 31

// FloatTensor returns an ONNX FLOAT tensor holding data (little-endian
// raw_data) with the given dimensions.
func FloatTensor(name string, data []float32, dims ...int) *onnxpb.TensorProto {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return RawTensor(name, onnxpb.TensorProto_FLOAT, raw, dims...)
}

// Int64Tensor returns an ONNX INT64 tensor (little-endian raw_data).
func Int64Tensor(name string, data []int64, dims ...int) *onnxpb.TensorProto {
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return RawTensor(name, onnxpb.TensorProto_INT64, raw, dims...)
}

// RawTensor returns a tensor of any fixed-width data type whose elements are
// already encoded little-endian in raw (used for int8/uint8/int32 tensors of
// quantized exports).
func RawTensor(name string, dt onnxpb.TensorProto_DataType, raw []byte, dims ...int) *onnxpb.TensorProto {
	d := make([]int64, len(dims))
	for i, v := range dims {
		d[i] = int64(v)
	}
	return &onnxpb.TensorProto{Name: name, DataType: int32(dt), Dims: d, RawData: raw}
}

// TensorDims returns the dimensions of t and its element count, rejecting
// negative or overflowing dimensions.
func TensorDims(t *onnxpb.TensorProto) ([]int, int, error) {
	shape := make([]int, len(t.Dims))
	n := 1
	for i, d := range t.Dims {
		if d < 0 || d > maxElems {
			return nil, 0, fmt.Errorf("tensor %q: invalid dimension %d", t.Name, d)
		}
		shape[i] = int(d)
		n *= int(d)
		if n > maxElems {
			return nil, 0, fmt.Errorf("tensor %q: shape %v is too large", t.Name, t.Dims)
		}
	}
	return shape, n, nil
}

func checkInline(t *onnxpb.TensorProto) error {
	if t.DataLocation == onnxpb.TensorProto_EXTERNAL || len(t.ExternalData) > 0 {
		return fmt.Errorf("tensor %q: external data is not supported", t.Name)
	}
	if t.Segment != nil {
		return fmt.Errorf("tensor %q: segmented tensors are not supported", t.Name)
	}
	return nil
}

// TensorFloats decodes a FLOAT tensor (raw_data or float_data) and returns
// its values and shape.
func TensorFloats(t *onnxpb.TensorProto) ([]float32, []int, error) {
	if err := checkInline(t); err != nil {
		return nil, nil, err
	}
	if t.DataType != int32(onnxpb.TensorProto_FLOAT) {
		return nil, nil, fmt.Errorf("tensor %q: data type %s, want FLOAT", t.Name, dataTypeName(t.DataType))
	}
	shape, n, err := TensorDims(t)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case t.RawData != nil:
		if len(t.RawData) != 4*n {
			return nil, nil, fmt.Errorf("tensor %q: shape %v needs %d bytes of raw data, file has %d", t.Name, shape, 4*n, len(t.RawData))
		}
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.RawData[4*i:]))
		}
		return out, shape, nil
	case len(t.FloatData) == n:
		return append([]float32(nil), t.FloatData...), shape, nil
	default:
		return nil, nil, fmt.Errorf("tensor %q: shape %v needs %d values, file has %d", t.Name, shape, n, len(t.FloatData))
	}
}

// intTypes describes the integer data types TensorInt64s decodes: element
// size in raw_data and how to widen one element.
var intTypes = map[onnxpb.TensorProto_DataType]struct {
	size  int
	widen func(b []byte) int64
}{
	onnxpb.TensorProto_INT64:  {8, func(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b)) }},
	onnxpb.TensorProto_INT32:  {4, func(b []byte) int64 { return int64(int32(binary.LittleEndian.Uint32(b))) }},
	onnxpb.TensorProto_UINT32: {4, func(b []byte) int64 { return int64(binary.LittleEndian.Uint32(b)) }},
	onnxpb.TensorProto_INT16:  {2, func(b []byte) int64 { return int64(int16(binary.LittleEndian.Uint16(b))) }},
	onnxpb.TensorProto_UINT16: {2, func(b []byte) int64 { return int64(binary.LittleEndian.Uint16(b)) }},
	onnxpb.TensorProto_INT8:   {1, func(b []byte) int64 { return int64(int8(b[0])) }},
	onnxpb.TensorProto_UINT8:  {1, func(b []byte) int64 { return int64(b[0]) }},
	onnxpb.TensorProto_BOOL:   {1, func(b []byte) int64 { return int64(b[0]) }},
}

// TensorInt64s decodes an integer or BOOL tensor (raw_data or the typed
// field) into int64 values and returns them with the shape.
func TensorInt64s(t *onnxpb.TensorProto) ([]int64, []int, error) {
	if err := checkInline(t); err != nil {
		return nil, nil, err
	}
	dt := onnxpb.TensorProto_DataType(t.DataType)
	it, ok := intTypes[dt]
	if !ok {
		return nil, nil, fmt.Errorf("tensor %q: data type %s, want an integer type", t.Name, dataTypeName(t.DataType))
	}
	shape, n, err := TensorDims(t)
	if err != nil {
		return nil, nil, err
	}
	// Lengths are checked before allocating: dims alone may claim billions
	// of elements.
	if t.RawData != nil {
		if len(t.RawData) != it.size*n {
			return nil, nil, fmt.Errorf("tensor %q: shape %v needs %d bytes of raw data, file has %d", t.Name, shape, it.size*n, len(t.RawData))
		}
		out := make([]int64, n)
		for i := range out {
			out[i] = it.widen(t.RawData[it.size*i:])
		}
		return out, shape, nil
	}
	var out []int64
	switch dt {
	case onnxpb.TensorProto_INT64:
		out = append(out, t.Int64Data...)
	case onnxpb.TensorProto_UINT32:
		for _, v := range t.Uint64Data {
			out = append(out, int64(v))
		}
	default:
		for _, v := range t.Int32Data {
			out = append(out, int64(v))
		}
	}
	if len(out) != n {
		return nil, nil, fmt.Errorf("tensor %q: shape %v needs %d values, file has %d", t.Name, shape, n, len(out))
	}
	return out, shape, nil
}

func dataTypeName(dt int32) string {
	if s, ok := onnxpb.TensorProto_DataType_name[dt]; ok {
		return s
	}
	return fmt.Sprintf("type(%d)", dt)
}

// AttrInt returns an INT attribute.
func AttrInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_INT, I: &v}
}

// AttrInts returns an INTS attribute.
func AttrInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_INTS, Ints: v}
}

// AttrFloat returns a FLOAT attribute.
func AttrFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_FLOAT, F: &v}
}

// AttrFloats returns a FLOATS attribute.
func AttrFloats(name string, v ...float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_FLOATS, Floats: v}
}

// AttrString returns a STRING attribute.
func AttrString(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_STRING, S: []byte(v)}
}

// AttrTensor returns a TENSOR attribute.
func AttrTensor(name string, t *onnxpb.TensorProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_TENSOR, T: t}
}

func ints64(v ...int) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}
