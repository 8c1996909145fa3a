// Package models is lowbit's model zoo: Build returns a freshly initialized
// graph.Graph (input "input" [-1, C, H, W], output "logits" [-1, classes])
// for lenet5, resnet20/32/56 (the CIFAR ResNets of the PyTorch reference),
// resnet18, mobilenetv2 and mobilenetv3-small/-large (torchvision's
// architectures, with a documented small-input form that skips early
// down-sampling for 32×32 images). Parameter counts and shapes match the
// PyTorch models.
//
// Names follow PyTorch state_dict style and are a contract for later
// passes: node "layer1.0.conv1" owns "layer1.0.conv1.weight", BatchNorm
// "x.bn" owns "x.bn.weight|bias|running_mean|running_var", every residual
// sum is an Add node "<block>.add" with inputs (branch, shortcut), and the
// final Linear is the node "logits" (parameters "logits.weight|bias") so
// that the graph output carries that name. Builder and its helpers (Conv,
// BN, ConvBN, Linear, SE, …) in layers.go build custom models the same way,
// initialized like torchvision from a seed.
package models
