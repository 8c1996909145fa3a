lowbit eval lenet5-mnist.onnx --data mnist --json
