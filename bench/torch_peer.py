# PyTorch peer for one model and one mode, in its own process so that the
# peak RSS belongs to that measurement. Same protocol as
# ../shared/peers/torch_bench.py: SGD (lr 0.05, momentum 0.9, wd 1e-4),
# 3 warm-up steps, then timed steps; inference on batch 256 under no_grad
# after one warm-up run. Threads: THREADS (default 2).
# Usage: /usr/bin/python3 torch_peer.py PEERS_DIR MODEL train|infer|infer-cl
#   → JSON {"train_img_s" or "infer_img_s": …, "peak_rss_mb": …}
import json, os, resource, sys, time
import torch, torch.nn as nn

peers, model, mode = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, peers)
from torch_models import ResNetCifar, MobileNetV2Small

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
torch.manual_seed(0)
if model == "resnet20":
    m, shape, steps = ResNetCifar(20, 1), (1, 28, 28), 8
else:
    m, shape, steps = MobileNetV2Small(3), (3, 32, 32), 4
out = {}
if mode == "train":
    batch = 128
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    x, y, lf = torch.rand(batch, *shape), torch.randint(0, 10, (batch,)), nn.CrossEntropyLoss()
    m.train()
    for _ in range(3):
        opt.zero_grad(); lf(m(x), y).backward(); opt.step()
    t = time.time()
    for _ in range(steps):
        opt.zero_grad(); lf(m(x), y).backward(); opt.step()
    out["train_img_s"] = round(batch * steps / (time.time() - t), 1)
else:
    m.eval()
    xb = torch.rand(256, *shape)
    if mode == "infer-cl":
        m, xb = m.to(memory_format=torch.channels_last), xb.to(memory_format=torch.channels_last)
    with torch.no_grad():
        m(xb)
        t = time.time()
        for _ in range(4):
            m(xb)
        out["infer_img_s"] = round(256 * 4 / (time.time() - t), 1)
out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
print(json.dumps(out))
