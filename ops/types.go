package ops

// The attribute structs of every op. Inputs follow ONNX order; -1 in shapes
// marks the batch dimension. Methods live in one file per op.

// Conv is ONNX Conv on NCHW: inputs X [N,C,H,W], W [M, C/Groups, KH, KW],
// optional B [M]. Pads are top, left, bottom, right. PadValue is the value of
// padded positions (0 normally; −3/8 for negative padding before a
// quantized h-swish).
type Conv struct {
	StrideH, StrideW       int
	PadT, PadL, PadB, PadR int
	DilH, DilW             int
	Groups                 int
	PadValue               float32
}

// Gemm is ONNX Gemm: Y = Alpha·op(A)·op(B) + Beta·C, A and B 2-D, C
// broadcastable to [M,N] (typically a bias [N]). A linear layer is
// Gemm{TransB: true, Alpha: 1, Beta: 1} with B = weight [out, in].
type Gemm struct {
	TransA, TransB bool
	Alpha, Beta    float32
}

// MatMul is ONNX MatMul for A [..., M, K] · B [K, N] (B 2-D) and for
// batched A, B with equal leading dimensions.
type MatMul struct{}

// BatchNorm is ONNX BatchNormalization: inputs X [N,C,...], scale [C],
// B [C], input_mean [C], input_var [C]. In training it normalizes with batch
// statistics and updates the running statistics in place:
// running = running·Momentum + batch·(1−Momentum) (ONNX convention; PyTorch
// momentum 0.1 is Momentum 0.9), using the unbiased batch variance for the
// running variance as PyTorch does. In eval it uses the running statistics.
type BatchNorm struct {
	Epsilon  float32
	Momentum float32
}

// Relu is max(x, 0).
type Relu struct{}

// Clip is min(max(x, Min), Max); ReLU6 is Clip{0, 6}.
type Clip struct{ Min, Max float32 }

// LeakyRelu is x for x ≥ 0, Alpha·x otherwise.
type LeakyRelu struct{ Alpha float32 }

// HardSwish is x·relu6(x+3)/6.
type HardSwish struct{}

// HardSigmoid is max(0, min(1, Alpha·x + Beta)); MobileNetV3 uses Alpha 1/6,
// Beta 0.5 (ONNX defaults are 0.2 and 0.5).
type HardSigmoid struct{ Alpha, Beta float32 }

// Sigmoid is 1/(1+e^−x).
type Sigmoid struct{}

// Tanh is tanh(x).
type Tanh struct{}

// Add, Sub, Mul and Div are element-wise with NumPy broadcasting.
type (
	Add struct{}
	Sub struct{}
	Mul struct{}
	Div struct{}
)

// Concat joins its inputs along Axis (negative counts from the end).
type Concat struct{ Axis int }

// MaxPool is ONNX MaxPool on NCHW (pads top, left, bottom, right; padded
// positions never win).
type MaxPool struct {
	KH, KW                 int
	StrideH, StrideW       int
	PadT, PadL, PadB, PadR int
	CeilMode               bool
}

// AveragePool is ONNX AveragePool on NCHW. CountIncludePad counts padded
// positions in the divisor (ONNX count_include_pad).
type AveragePool struct {
	KH, KW                 int
	StrideH, StrideW       int
	PadT, PadL, PadB, PadR int
	CeilMode               bool
	CountIncludePad        bool
}

// GlobalAveragePool averages each channel: [N,C,H,W] → [N,C,1,1].
type GlobalAveragePool struct{}

// Flatten reshapes to 2-D [prod(dims[:Axis]), prod(dims[Axis:])].
type Flatten struct{ Axis int }

// Reshape reshapes to Shape with ONNX semantics: 0 copies the input
// dimension, −1 is inferred.
type Reshape struct{ Shape []int }

// Pad pads with a constant Value. Pads is in ONNX order: begins for every
// axis, then ends for every axis (negative values crop).
type Pad struct {
	Pads  []int
	Value float32
}

// Dropout zeroes each element with probability Ratio in training (scaling
// the rest by 1/(1−Ratio)) and is the identity in evaluation.
type Dropout struct{ Ratio float32 }

// Softmax normalizes along Axis (ONNX opset 13 semantics).
type Softmax struct{ Axis int }
