lowbit train --model resnet20 --data fashion-mnist --epochs 3 --out r20-fp32.onnx --json
