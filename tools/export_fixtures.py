#!/usr/bin/python3
"""Export torchvision models to ONNX with PyTorch reference outputs.

For every model this writes NAME.onnx (torch.onnx.export), the PyTorch
output NAME.out.npy on a shared input (input_HxW.npy) and a manifest.json
describing them; onnx/torchvision_test.go imports each file with lowbit
and compares the outputs (and, when onnxruntime-node is installed, ONNX
Runtime's).

  CI fixtures (committed under onnx/testdata/torchvision):
    /usr/bin/python3 tools/export_fixtures.py onnx/testdata/torchvision
  Full size (224x224, full width, 1000 classes; not committed):
    /usr/bin/python3 tools/export_fixtures.py --full /tmp/tv-full

Fixtures are kept small: channel counts divided by 8 (MobileNets,
SqueezeNet) or 16 (ResNet-18, VGG-11, AlexNet), hidden classifier layers of
32 units, 10 classes, and 64x64 inputs except VGG-11 and AlexNet, whose
adaptive average pools need 224x224 inputs to export. Weights are random
(fixed seed); BatchNorm running statistics come from a few training-mode
passes on random data and the affine parameters are randomized, so that
no BatchNorm is the identity. BatchNorm nodes are kept in the file
(training=PRESERVE) unless --fold-bn asks for torch's default export,
which folds them into the convolutions. Opsets 11 to 17 are spread over
the models; the small "ops_mix" network covers the remaining operators
(Shape/Gather/Concat reshape chains, Transpose, Split, Slice, Pad,
ReduceMean, Squeeze/Unsqueeze, Softmax, ...) at opsets 10, 11, 13 and 17.
"""
import argparse, json, os, sys, warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.models as tvm

SEED = 20240501

# name, constructor, fixture channel divisor, fixture input size, opset
MODELS = [
    ("resnet18", tvm.resnet18, 16, 64, 11),
    ("mobilenet_v2", tvm.mobilenet_v2, 8, 64, 12),
    ("squeezenet1_1", tvm.squeezenet1_1, 8, 64, 13),
    ("vgg11", tvm.vgg11, 16, 224, 14),
    ("alexnet", tvm.alexnet, 16, 224, 15),
    ("mobilenet_v3_small", tvm.mobilenet_v3_small, 8, 64, 16),
    ("mobilenet_v3_large", tvm.mobilenet_v3_large, 8, 64, 17),
]
FIXTURE_CLASSES = 10
FIXTURE_HIDDEN = 32


def slim(model, div, classes, hidden):
    """Divide every channel count by div (keeping the 3 input channels),
    shrink hidden Linear layers to `hidden` units and the last to
    `classes`. The mapping depends only on the original count, so residual
    additions, concatenations and flattening stay consistent."""
    def ch(c):
        return c if c == 3 else max(1, c // div)

    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    # SqueezeNet ends in a 1x1 convolution with one channel per class.
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    for name, m in list(model.named_modules()):
        parent = model
        *path, leaf = name.split(".") if name else [""]
        for p in path:
            parent = getattr(parent, p)
        if isinstance(m, nn.Conv2d):
            cin = ch(m.in_channels)
            cout = classes if (not linears and name == convs[-1]) else ch(m.out_channels)
            groups = cin if m.groups == m.in_channels and m.groups > 1 else m.groups
            new = nn.Conv2d(cin, cout, m.kernel_size, m.stride, m.padding, m.dilation, groups, m.bias is not None)
        elif isinstance(m, nn.BatchNorm2d):
            new = nn.BatchNorm2d(ch(m.num_features), m.eps, m.momentum)
        elif isinstance(m, nn.Linear):
            cin = m.in_features // div if name == linears[0] else min(m.in_features, hidden)
            cout = classes if name == linears[-1] else min(m.out_features, hidden)
            new = nn.Linear(cin, cout, m.bias is not None)
        else:
            continue
        setattr(parent, leaf, new)
    return model


def randomize(model, gen):
    """Random weights; BatchNorm statistics from training-mode passes on
    random data, then random affine parameters."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
            if isinstance(m, nn.BatchNorm2d):
                m.saved_momentum = m.momentum
                m.momentum = None  # cumulative average over the calibration passes
        return model


def calibrate(model, gen, size):
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 3, size, size, generator=gen))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.2)
                m.running_var.mul_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
                m.momentum = m.saved_momentum
                del m.saved_momentum
    model.eval()


class OpsMix(nn.Module):
    """A small network exercising the operators torchvision models do not:
    reshape chains through Shape/Gather/Concat, Transpose, Split, Slice,
    Pad, ReduceMean, Squeeze/Unsqueeze, MatMul, Div, LeakyReLU, Tanh,
    Sigmoid, Hardtanh (Clip), HardSigmoid, pooling with ceil_mode and
    padding, BatchNorm, Softmax."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.proj = nn.Parameter(torch.randn(8, 8) * 0.3)
        self.fc = nn.Linear(120, 5)

    def forward(self, x):
        y = F.leaky_relu(self.bn(self.conv(x)), 0.1)
        b, c, h, w = y.shape
        z = y.reshape(b, c, h * w).transpose(1, 2)  # [b, hw, c]
        z = torch.matmul(z, self.proj) / 2.0
        a, bb = torch.split(z, [3, 5], dim=2)
        z = torch.cat([torch.tanh(a), torch.sigmoid(bb)], dim=2)
        z = z.transpose(1, 2).reshape(b, c, h, w)
        z = F.pad(z, (1, 0, 2, 1), value=0.5)
        z = z[:, :, 1:-1, ::2]
        z = z - z.mean(dim=(2, 3), keepdim=True)
        z = F.hardtanh(z.unsqueeze(1).squeeze(1), -0.8, 0.9) + F.hardsigmoid(z)
        z = F.max_pool2d(z, 3, 2, 1, ceil_mode=True)
        z = F.avg_pool2d(z, 2, 2, ceil_mode=True, count_include_pad=False)
        z = z.contiguous().view(z.size(0), -1)
        return F.softmax(self.fc(z), dim=1)


def export(model, x, path, opset, fold_bn):
    kw = {} if fold_bn else {"training": torch.onnx.TrainingMode.PRESERVE}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, x, path, opset_version=opset, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--full", action="store_true", help="224x224 inputs, full width, 1000 classes")
    ap.add_argument("--fold-bn", action="store_true", help="torch's default export: BatchNorm folded into Conv")
    ap.add_argument("--models", default="", help="comma-separated subset of " + ",".join(m[0] for m in MODELS))
    ap.add_argument("--opset", type=int, default=0, help="export every model at this opset")
    ap.add_argument("--batch", type=int, default=0, help="batch size (default 2 at 64x64, 1 at 224x224)")
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    torch.manual_seed(SEED)
    wanted = set(filter(None, args.models.split(",")))
    manifest = {"generator": "tools/export_fixtures.py", "torch": torch.__version__, "full": args.full,
                "fold_bn": args.fold_bn, "models": []}
    inputs = {}

    def input_for(size):
        if size not in inputs:
            batch = args.batch or (2 if size < 224 else 1)
            g = torch.Generator().manual_seed(SEED + size)
            x = torch.randn(batch, 3, size, size, generator=g)
            name = "input_%dx%d.npy" % (size, size)
            np.save(os.path.join(args.outdir, name), x.numpy().astype(np.float32))
            inputs[size] = (name, x)
        return inputs[size]

    jobs = []
    for name, ctor, div, size, opset in MODELS:
        if wanted and name not in wanted:
            continue
        jobs.append((name, name, ctor, div, size, args.opset or opset))
    if not args.full and (not wanted or "ops_mix" in wanted):
        for op in ([args.opset] if args.opset else [10, 11, 13, 17]):
            jobs.append(("ops_mix_opset%d" % op, "ops_mix", None, 1, 16, op))

    for i, (fname, arch, ctor, div, size, opset) in enumerate(jobs):
        gen = torch.Generator().manual_seed(SEED + 1000 + i)
        if ctor is None:
            torch.manual_seed(SEED + i)
            model = OpsMix()
        elif args.full:
            model = ctor()
            size = 224
        else:
            model = slim(ctor(num_classes=FIXTURE_CLASSES), div, FIXTURE_CLASSES, FIXTURE_HIDDEN)
        randomize(model, gen)
        calibrate(model, gen, size)
        xname, x = input_for(size)
        with torch.no_grad():
            y = model(x).numpy().astype(np.float32)
        path = os.path.join(args.outdir, fname + ".onnx")
        export(model, x, path, opset, args.fold_bn)
        np.save(os.path.join(args.outdir, fname + ".out.npy"), y)
        params = sum(p.numel() for p in model.parameters())
        manifest["models"].append({"name": fname, "arch": arch, "opset": opset, "input": xname,
                                   "output": fname + ".out.npy", "params": params,
                                   "width_divisor": 1 if args.full else div})
        print("%-24s opset %d  %9d params  input %s  max|y| %.4g" % (fname, opset, params, xname, float(np.abs(y).max())))
    with open(os.path.join(args.outdir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
