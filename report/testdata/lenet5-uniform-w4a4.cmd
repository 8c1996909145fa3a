lowbit quantize --model lenet5-mnist.onnx --data mnist --method uniform --wbits 4 --abits 4 --wcalib mse --out q.onnx --verify --json
