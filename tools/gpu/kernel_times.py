#!/usr/bin/env python3
"""Per-kernel times of decode steps from Nsight Compute's raw CSV (tools/gpu/kernel_times.sh).

Splits the kernels into steps at each embedding kernel, keeps the decode steps (no prompt
GEMM), and prints per kernel and place in the layer (@+k: k kernels after the layer's
attention kernel; @+1 is the output projection) its mean time alone, its share of a step and
its device-memory read rate.
"""
import csv
import io
import re
import sys
from collections import defaultdict


def short(name):
    name = re.sub(r"\(anonymous namespace\)::|pmpd::cuda::|<?unnamed>::", "", name)
    name = re.sub(r"\((int|bool)\)", "", name)
    name = re.sub(r"\([^()]*\)$", "", name)
    return re.sub(r"^void ", "", name)[:60]


def number(s):
    return float(s.replace(",", "")) if s else 0.0


def main(path):
    lines = open(path).read().splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith('"ID"'))
    rows = list(csv.reader(io.StringIO("\n".join(l for l in lines[head:] if l.startswith('"')))))
    hdr, data = rows[0], rows[2:]  # rows[1]: units (ns, byte)
    k, t, b, g = (hdr.index(c) for c in ("Kernel Name", "gpu__time_duration.sum", "dram__bytes_read.sum", "Grid Size"))
    seq = [(short(r[k]), number(r[t]), number(r[b]), r[g]) for r in data]
    starts = [i for i, s in enumerate(seq) if s[0].startswith("embed_kernel")]
    agg, steps, sums = defaultdict(lambda: [0, 0.0, 0.0]), 0, []
    for a, z in zip(starts, starts[1:]):
        step = seq[a:z]
        if len(step) < 20 or any("gemm" in s[0] for s in step) or not any("pair_lut" in s[0] for s in step):
            continue
        steps += 1
        sums.append(sum(s[1] for s in step) / 1e3)
        attn = [i for i, s in enumerate(step) if "attention" in s[0]]
        for i, (name, ns, by, grid) in enumerate(step):
            before = [x for x in attn if x <= i]
            place = "" if "attention" in name else (f" @{i - before[-1]:+d}" if before else " (before layer 0)")
            key = f"{name}{place}, grid {grid}"
            agg[key][0] += 1
            agg[key][1] += ns
            agg[key][2] += by
    if not steps:
        print("no decode step found: raise COUNT or change SKIP")
        return
    print(f"{steps} decode steps; kernels alone summed per step: " + ", ".join(f"{s:.0f}" for s in sums) + " us\n")
    print("| kernel, place, grid | a step | mean us | us a step | MB read a call | GB/s |")
    print("|---|---|---|---|---|---|")
    for key, (n, ns, by) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
        print(f"| {key} | {n / steps:.1f} | {ns / n / 1e3:.2f} | {ns / steps / 1e3:.1f} | {by / n / 1e6:.2f} | "
              f"{by / ns if ns else 0:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1])
