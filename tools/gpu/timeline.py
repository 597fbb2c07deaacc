#!/usr/bin/env python3
"""Summarizes a decode step's kernel timeline (timeline.sh: PMPD_CUDA_TIMELINE_OUT CSVs).

Each CSV holds one record per block of the instrumented kernels (the GEMVs and the decode
attention) of one decode step: %globaltimer stamps in ns (kernels/cuda/timeline.cuh marks).
Per launch (the blocks of one kernel on one matrix or layer): when its first block started,
when the kernel before it let it go on (the earliest return from griddepcontrol.wait), when
its last block ended; and inside the blocks, the median time of each phase. Then the same per
role in a layer (q|k|v, attention, o, gate|up, down), as medians over the layers.
    python3 timeline.py OUT-b3.csv [...]
"""
import csv
import statistics
import sys

KINDS = {1: "stream", 2: "taskloop", 3: "attention"}
# For each kind: the mark returned from the wait on the kernel before, the marks in the order
# a block reaches them (the last ends the block), and the phases between them.
PHASES = {
    1: (3, [0, 1, 2, 3, 4, 5, 6, 7, 9, 8],
        ["centroids", "tables", "wait", "x staged", "first item", "rest of warp 0's items", "other warps",
         "row sums", "norm fold"]),
    2: (2, [0, 1, 2, 3, 4, 5, 6], ["tables", "wait", "x staged", "first task", "other tasks", "last rows"]),
    # The cluster merge (stop 28): row sums pushed to the merging blocks, one barrier, the merge.
    # Marks 7..9 (stop 41) split the scores: the token's q, k, v read, the rotation, thread 0's team
    # scoring its positions, then the block's max and rows (earlier timelines lack them: nan).
    3: (1, [0, 1, 7, 8, 9, 2, 4, 5, 6, 3], ["before wait", "q k v read", "rotation", "team scores",
                                            "block max and rows", "row sums pushed", "cluster barrier",
                                            "merge", "exit"]),
}


# Marks stamped apart from the phases: (kind, name, from mark, to mark), printed after them where
# recorded. Attention mark 10 (stop 41): thread 0's first cache row in its registers (its warp
# waits for it there, so in such a build the "rotation" phase includes that wait).
# Streaming GEMV marks 11..14 (stop 42): warp 0's last two items in, the block's last busy warp's
# last item in and its loop's end: is the last round decoded as one bunch after all its items are
# in, or as they come?
EXTRAS = [(3, "first cache row in, after q k v read", 7, 10),
          (1, "warp 0: item before last in to last in", 14, 11),
          (1, "warp 0: last item in to its loop's end", 11, 6),
          (1, "last item in: warp 0 to the last warp", 11, 12),
          (1, "last warp: last item in to its loop's end", 12, 13),
          (1, "warp 0's last item in to every warp done", 11, 7)]
# Marks read from each record: every one a phase or an extra names (-1 where a CSV lacks it).
MARKS = 1 + max(max(m for _, order, _ in PHASES.values() for m in order), max(max(a, z) for _, _, a, z in EXTRAS))


def load(path):
    launches = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            kind = int(r["kind"])
            t = [int(r.get(f"t{i}", -1)) for i in range(MARKS)]  # older builds: t0..t9 (stop 41: t0..t10)
            launches.setdefault((kind, r["key"], r["bits"]), []).append(t)
    out = []
    for (kind, key, bits), blocks in launches.items():
        wait_mark, order, _ = PHASES[kind]
        begin = min(b[0] for b in blocks)
        released = min(b[wait_mark] for b in blocks if b[wait_mark] >= 0)
        end = max(max(b[i] for i in order if b[i] >= 0) for b in blocks)
        phases = []
        for a, z in zip(order, order[1:]):
            d = [b[z] - b[a] for b in blocks if b[a] >= 0 and b[z] >= 0]
            phases.append(statistics.median(d) if d else float("nan"))
        # Each block's start, first decoded item (streaming GEMVs: mark 5) and end, from the release.
        spread = dict(start=sorted(b[0] - released for b in blocks),
                      end=sorted(max(b[i] for i in order if b[i] >= 0) - released for b in blocks),
                      first=sorted(b[5] - released for b in blocks if kind == 1 and b[5] >= 0))
        extras = {}
        for k, name, a, z in EXTRAS:
            d = [b[z] - b[a] for b in blocks if kind == k and b[a] >= 0 and b[z] >= 0]
            if d:
                extras[name] = statistics.median(d)
        out.append(dict(kind=kind, bits=bits, blocks=len(blocks), begin=begin, released=released, end=end,
                        phases=phases, spread=spread, extras=extras))
    out.sort(key=lambda l: l["begin"])
    return out


def us(ns):
    return f"{ns / 1000:.2f}"


def summarize(path):
    launches = load(path)
    print(f"## {path}\n")
    if not launches:
        print("(no records)\n")
        return
    step = launches[-1]["end"] - launches[0]["begin"]
    print(f"{len(launches)} launches, first block start to last block end: {us(step)} us\n")
    # Roles by position: a layer is q|k|v, attention, o, gate|up, down (Llama-like shapes).
    roles = ["q\\|k\\|v", "attention", "o", "gate\\|up", "down"]  # pipes escaped for markdown
    per_role = {}
    prev_end = None
    for i, l in enumerate(launches):
        role = roles[i % 5] if len(launches) % 5 == 0 else str(i)
        gap = l["released"] - prev_end if prev_end is not None else float("nan")
        per_role.setdefault((role, l["kind"]), []).append(
            dict(gap=gap, busy=l["end"] - l["released"], early=l["released"] - l["begin"], phases=l["phases"],
                 blocks=l["blocks"], spread=l["spread"], extras=l["extras"]))
        prev_end = l["end"]
    print("Per role, medians over the layers (us). gap: the kernel before's last block end to the first"
          " return from this kernel's wait; busy: that return to this kernel's last block end; early:"
          " its first block's start to that return.\n")
    print("| role | kernel | blocks | gap | busy | early | phases (median over blocks) |")
    print("|---|---|---|---|---|---|---|")
    total_gap = total_busy = 0.0
    for (role, kind), rows in per_role.items():
        med = lambda k: statistics.median(r[k] for r in rows if r[k] == r[k]) if any(r[k] == r[k] for r in rows) else float("nan")
        names = PHASES[kind][2]
        ph = ", ".join(f"{n} {us(statistics.median(r['phases'][j] for r in rows))}" for j, n in enumerate(names))
        for name in rows[0]["extras"]:
            ph += f"; {name} {us(statistics.median(r['extras'].get(name, float('nan')) for r in rows))}"
        g, b = med("gap"), med("busy")
        total_gap += g * len(rows) if g == g else 0
        total_busy += b * len(rows)
        print(f"| {role} | {KINDS[kind]} | {rows[0]['blocks']} | {us(g)} | {us(b)} | {us(med('early'))} | {ph} |")
    print(f"\nSummed over the step: gaps {us(total_gap)} us, busy {us(total_busy)} us"
          f" (of {us(step)}; the rest: kernels not instrumented, e.g. the LM head)\n")
    print_spread(per_role)


def percentile(v, p):
    return v[round(p * (len(v) - 1))]


def print_spread(per_role):
    """How far apart a kernel's blocks start, reach their first item and end: the next kernel
    is released only by the last block, and a block that starts late builds its tables late."""
    print("Blocks from the release of their kernel's wait (us; percentiles over a launch's blocks,"
          " medians over the layers): when they start, decode their first item (streaming GEMVs)"
          " and end.\n")
    print("| role | stamp | min | 10% | median | 90% | max |")
    print("|---|---|---|---|---|---|---|")
    for (role, kind), rows in per_role.items():
        for stamp in ("start", "first", "end"):
            runs = [r["spread"][stamp] for r in rows if r["spread"][stamp]]
            if not runs:
                continue
            cells = " | ".join(us(statistics.median(percentile(v, p) for v in runs)) for p in (0, 0.1, 0.5, 0.9, 1))
            print(f"| {role} | {stamp} | {cells} |")
    print()


for p in sys.argv[1:]:
    summarize(p)
