# Formats the results of peers.sh (one JSON object per line: tool, what,
# round and measurements) as a markdown report. Throughputs are the best
# over rounds (each round runs every tool once, alternating); peak RSS is
# the largest seen. Usage: python3 report.py RESULTS.jsonl COMMAND
import collections, json, platform, sys, time

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
command = sys.argv[2]
runs = collections.defaultdict(list)
for r in rows:
    runs[(r["tool"], r["what"])].append(r)
rounds = max((r["round"] for r in rows), default=0)


def best(tool, what, key):
    vals = [r[key] for r in runs.get((tool, what), []) if key in r]
    return max(vals) if vals else None


def spread(tool, what, key):
    vals = [r[key] for r in sorted(runs.get((tool, what), []), key=lambda r: r["round"]) if key in r]
    return "/".join(f"{v:.1f}" if v < 100 else f"{v:.0f}" for v in vals)


def ratio(a, b):
    return f"{a / b:.2f}×" if a and b else "n/a"


def num(v, fmt="{:.0f}"):
    return fmt.format(v) if v is not None else "n/a"


cpu = "unknown CPU"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass

out = []
w = out.append
w("# lowbit against its peers")
w("")
w(f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {cpu} ({platform.machine()}), "
  f"2 threads for every tool, best of {rounds} alternating rounds (all rounds in parentheses, in order).")
w("")
w(f"Command: `{command}`")
w("")
w("## SGEMM (row-major, no transposes; GFLOPS)")
w("")
w("| n | lowbit | OpenBLAS | lowbit / OpenBLAS |")
w("| --- | --- | --- | --- |")
core = next((r.get("core") for r in runs.get(("openblas", "sgemm"), [])), "?")
for n in ("256", "512", "1024"):
    lb, ob = best("lowbit", "sgemm", n), best("openblas", "sgemm", n)
    impl = next((r.get("impl_" + n) for r in runs.get(("lowbit", "sgemm"), []) if "impl_" + n in r), "?")
    w(f"| {n}³ | {num(lb, '{:.1f}')} ({impl}; {spread('lowbit', 'sgemm', n)}) | {num(ob, '{:.1f}')} ({core}; {spread('openblas', 'sgemm', n)}) | {ratio(lb, ob)} |")
w("")
models = [("resnet20", "ResNet-20, 1×28×28"), ("mobilenetv2", "MobileNetV2 (32×32 variant), 3×32×32")]
w("## Training (forward + backward + SGD step, batch 128; images/s)")
w("")
w("| model | lowbit | PyTorch 1.13 | lowbit / PyTorch | peak RSS lowbit | peak RSS PyTorch |")
w("| --- | --- | --- | --- | --- | --- |")
for m, label in models:
    what = m + "/train"
    lb, pt = best("lowbit", what, "train_img_s"), best("pytorch", what, "train_img_s")
    w(f"| {label} | {num(lb, '{:.1f}')} ({spread('lowbit', what, 'train_img_s')}) | {num(pt, '{:.1f}')} ({spread('pytorch', what, 'train_img_s')}) | "
      f"{ratio(lb, pt)} | {num(best('lowbit', what, 'peak_rss_mb'))} MB | {num(best('pytorch', what, 'peak_rss_mb'))} MB |")
w("")
w("## Inference (batch 256; images/s)")
w("")
w("PyTorch is the better of NCHW and channels-last. Peak RSS is that of an inference-only process.")
w("")
w("| model | lowbit | ONNX Runtime | lowbit / ORT | PyTorch | lowbit / PyTorch | peak RSS lowbit / ORT / PyTorch |")
w("| --- | --- | --- | --- | --- | --- | --- |")
for m, label in models:
    what = m + "/infer"
    lb, ort = best("lowbit", what, "infer_img_s"), best("ort", what, "infer_img_s")
    ptn, ptc = best("pytorch", what, "infer_img_s"), best("pytorch-cl", what, "infer_img_s")
    pt = max(v for v in (ptn, ptc, 0) if v is not None) or None
    w(f"| {label} | {num(lb)} ({spread('lowbit', what, 'infer_img_s')}) | {num(ort)} ({spread('ort', what, 'infer_img_s')}) | {ratio(lb, ort)} | "
      f"{num(pt)} (NCHW {spread('pytorch', what, 'infer_img_s')}, channels-last {spread('pytorch-cl', what, 'infer_img_s')}) | {ratio(lb, pt)} | "
      f"{num(best('lowbit', what, 'peak_rss_mb'))} / {num(best('ort', what, 'peak_rss_mb'))} / {num(max(best('pytorch', what, 'peak_rss_mb') or 0, best('pytorch-cl', what, 'peak_rss_mb') or 0))} MB |")
w("")
print("\n".join(out))
