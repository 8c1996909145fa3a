#!/usr/bin/env python3
"""Summarize the JSON results of the QAT experiment scripts.

usage: summarize.py OUT PREFIX...

Prints a Markdown table of the runs in OUT whose names start with one of
the prefixes, writes OUT/summary-<first prefix>.json with the same rows,
and, when runs measured the residual-stream error (--analyze-error), writes
OUT/residual-<first prefix>.svg: the per-block relative error after
fine-tuning of each run (solid) and right after initialization with and
without the highway (dashed). Standard library only.
"""
import json
import os
import sys


def recipe(r):
    parts = [r.get("method", "?")]
    if r.get("learn_range"):
        parts[0] += " (learned range)"
    parts.append("w%s/a%s" % (r.get("wbits") or "f", r.get("abits") or "f"))
    if r.get("progressive"):
        parts.append("progressive " + ",".join(map(str, r["progressive"])))
    if r.get("bn_last"):
        parts.append("BN-last %d" % r["bn_last"])
    if r.get("profit"):
        parts.append("PROFIT")
    if r.get("teacher"):
        parts.append("distilled")
    if r.get("ema_decay"):
        parts.append("EMA%s" % (" (kept)" if r.get("ema_used") else ""))
    hw = r.get("highway") or {}
    if hw.get("enabled"):
        parts.append("highway %s" % (("%d-bit" % hw["bits"]) if hw.get("bits") else "float"))
    if r.get("outlier_ratio"):
        parts.append("outliers %g" % r["outlier_ratio"])
    if r.get("neg_pad_convs"):
        parts.append("neg-pad %d" % r["neg_pad_convs"])
    if r.get("duq_init") == "mse":
        parts.append("MSE init")
    if r.get("bn_reestimate"):
        parts.append("BN re-est. %d" % r["bn_reestimate"])
    return ", ".join(parts)


def load(out, prefixes):
    rows = []
    for f in sorted(os.listdir(out)):
        name, ext = os.path.splitext(f)
        if ext != ".json" or name.startswith("summary-") or not any(name.startswith(p) for p in prefixes):
            continue
        with open(os.path.join(out, f)) as fh:
            r = json.load(fh)
        cmd = ""
        if os.path.exists(os.path.join(out, name + ".cmd")):
            with open(os.path.join(out, name + ".cmd")) as fh:
                cmd = fh.read().strip()
        if "fp32_top1" in r:  # lowbit finetune
            rows.append({"run": name, "kind": "finetune", "recipe": recipe(r), "epochs": r.get("epoch_budget"),
                         "train_images": r.get("train_images"), "fp32_top1": r["fp32_top1"],
                         "init_top1": r.get("init_top1"), "top1": r["top1"], "delta": r["top1"] - r["fp32_top1"],
                         "seconds": r.get("seconds"), "residual_error": r.get("residual_error"), "command": cmd})
        else:  # lowbit train
            rows.append({"run": name, "kind": "float", "recipe": "float32 " + r.get("model", ""), "epochs": r.get("epochs"),
                         "top1": r.get("top1"), "seconds": r.get("seconds"), "command": cmd})
    return rows


def pct(v):
    return "-" if v is None else "%.2f" % (100 * v)


def svg(rows, path):
    series = []
    for r in rows:
        re = r.get("residual_error")
        if not re:
            continue
        if re.get("final"):
            series.append((r["run"], [b["rel_error"] for b in re["final"]], [b["block"] for b in re["final"]], False))
        if not any(s[3] for s in series) and re.get("init"):
            for k in ("highway", "none"):
                if re["init"].get(k):
                    series.append(("%s, init, %s" % (r["run"], "highway" if k == "highway" else "no highway"),
                                   [b["rel_error"] for b in re["init"][k]], [b["block"] for b in re["init"][k]], True))
    if not series:
        return False
    w, h, ml, mr, mt, mb = 760, 420, 60, 230, 30, 90
    n = max(len(s[1]) for s in series)
    top = max(max(s[1]) for s in series) * 1.1 or 1
    x = lambda i: ml + (w - ml - mr) * (i / max(n - 1, 1))
    y = lambda v: mt + (h - mt - mb) * (1 - v / top)
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"]
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">' % (w, h),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="18" font-size="13">relative error of the residual stream per block, ||a_q - a|| / ||a||</text>' % ml,
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (ml, h - mb, w - mr, h - mb),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (ml, mt, ml, h - mb)]
    for k in range(6):
        v = top * k / 5
        out.append('<text x="%d" y="%.1f" text-anchor="end">%.2f</text>' % (ml - 5, y(v) + 4, v))
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (ml, y(v), w - mr, y(v)))
    for i, b in enumerate(series[0][2]):
        out.append('<text transform="translate(%.1f,%d) rotate(45)">%s</text>' % (x(i), h - mb + 12, b))
    for j, (name, vals, _, dashed) in enumerate(series):
        c = colors[j % len(colors)]
        pts = " ".join("%.1f,%.1f" % (x(i), y(v)) for i, v in enumerate(vals))
        out.append('<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>' % (c, ' stroke-dasharray="5,4"' if dashed else "", pts))
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>' % (w - mr + 10, mt + 16 * j, w - mr + 30, mt + 16 * j, c, ' stroke-dasharray="5,4"' if dashed else ""))
        out.append('<text x="%d" y="%d">%s</text>' % (w - mr + 35, mt + 16 * j + 4, name))
    out.append("</svg>")
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")
    return True


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, prefixes = sys.argv[1], sys.argv[2:]
    rows = load(out, prefixes)
    print("| run | recipe | epochs | float top-1 | before FT | fine-tuned | vs float | time |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        if r["kind"] == "float":
            print("| %s | %s | %s | %s | | | | %.0f s |" % (r["run"], r["recipe"], r["epochs"], pct(r["top1"]), r["seconds"] or 0))
        else:
            print("| %s | %s | %s | %s | %s | %s | %+.2f | %.0f s |" % (r["run"], r["recipe"], r["epochs"], pct(r["fp32_top1"]),
                  pct(r["init_top1"]), pct(r["top1"]), 100 * r["delta"], r["seconds"] or 0))
    with open(os.path.join(out, "summary-%s.json" % prefixes[0]), "w") as fh:
        json.dump(rows, fh, indent=2)
    p = os.path.join(out, "residual-%s.svg" % prefixes[0])
    if svg(rows, p):
        print("\nresidual-stream errors: " + p)
        for r in rows:
            re = r.get("residual_error")
            if re and re.get("final"):
                print("%s: %s" % (r["run"], " ".join("%.3f" % b["rel_error"] for b in re["final"])))


if __name__ == "__main__":
    main()
