#!/usr/bin/env python3
"""Summarize an Nsight Systems GPU trace of decode steps (tools/gpu/timeline.sh).

Reads the CSV of `nsys stats --report cuda_gpu_trace --format csv` and splits the kernels
into decode steps at each embedding kernel. For every kind of step (its sequence of kernel
names) it prints, over the steps of that kind after the first few (warm-up): the step's
span, the summed kernel time, and per kernel name its mean duration and the mean gap from
the end of the kernel before it to its own end that is not its own duration (start-up and
waiting: with chained launches a kernel starts before the one before ends, so the useful
measure is end-to-end spacing: end_i - end_{i-1}). Kernels other than the attention are
labelled by their place after the layer's attention kernel (@+1: the one right after it).
"""
import csv
import re
import sys
from collections import defaultdict


def short(name):
    name = name.strip().replace("(anonymous namespace)::", "").replace("pmpd::cuda::", "")
    name = re.sub(r"\((int|bool|unsigned int|long|long long)\)", "", name)  # template argument casts
    name = re.sub(r"\([^()]*\)$", "", name)  # the parameter list
    name = re.sub(r"^void ", "", name)
    return name[:90]


def main(path, skip=4):
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            name = r.get("Name") or r.get("name")
            start = r.get("Start (ns)") or r.get("Start")
            dur = r.get("Duration (ns)") or r.get("Duration")
            if not name or start is None or dur is None:
                continue
            if r.get("GrdX") in (None, "") and "[CUDA" in name:  # memcpy / memset rows
                continue
            rows.append((int(float(start)), int(float(dur)), short(name)))
    rows.sort()
    steps, cur = [], []
    for row in rows:
        if "embed" in row[2] and cur:
            steps.append(cur)
            cur = []
        cur.append(row)
    if cur:
        steps.append(cur)
    kinds = defaultdict(list)
    for s in steps:
        kinds[tuple(r[2] for r in s)].append(s)
    for seq, group in sorted(kinds.items(), key=lambda kv: -len(kv[1])):
        if len(group) <= skip or len(seq) < 20:
            continue
        group = group[skip:]
        n = len(group)
        span = sum(s[-1][0] + s[-1][1] - s[0][0] for s in group) / n / 1e3
        busy = sum(sum(r[1] for r in s) for s in group) / n / 1e3
        print(f"## {n} steps of {len(seq)} kernels: span {span:.1f} us, kernels {busy:.1f} us summed")
        dur, spacing, count = defaultdict(float), defaultdict(float), defaultdict(int)
        for s in group:
            prev_end = None
            attn = [i for i, r in enumerate(s) if "attention" in r[2]]
            for i, (start, d, name) in enumerate(s):
                # Kernels of the same name (q|k|v, o, down) told apart by their place after the
                # layer's attention kernel ("+1": the one right after it).
                before = [a for a in attn if a <= i]
                if attn and "attention" not in name:
                    off = i - before[-1] if before else i - attn[0]
                    name = f"{name} @{off:+d}"
                end = start + d
                dur[name] += d
                if prev_end is not None:
                    spacing[name] += end - prev_end
                count[name] += 1
                prev_end = end
        print("| kernel | per step | mean us | mean end-to-end spacing us | spacing - duration us |")
        print("|---|---|---|---|---|")
        for name in sorted(dur, key=lambda k: -dur[k]):
            c = count[name]
            print(f"| {name} | {c / n:.0f} | {dur[name] / c / 1e3:.2f} | {spacing[name] / c / 1e3:.2f} | "
                  f"{(spacing[name] - dur[name]) / c / 1e3:.2f} |")
        print()


if __name__ == "__main__":
    main(sys.argv[1])
