#!/usr/bin/env python3
"""Stop 40, calls 6 and 7: reads a timeline CSV of the diagnostic build
(docs/data/h100/stop40-first-item.diff: in the streaming GEMV, thread 0 stamps mark 9 once
its x registers have arrived and mark 7 once its first item's have too) and prints, per role
in a layer and for blocks that started before / after their kernel's release, the medians from
the block's own return from the wait: x's loads issued (mark 4), x arrived (9), the first item
there (7), the first item decoded (5).
    python3 stop40-first-item.py tl-b3.csv   (xz -dk the committed .csv.xz first)
"""
import csv
import statistics
import sys

launches, order = {}, []
for r in csv.DictReader(open(sys.argv[1])):
    key = (r["kind"], r["key"])
    if key not in launches:
        launches[key] = []
        order.append(key)
    launches[key].append([int(r[f"t{i}"]) for i in range(10)])
order.sort(key=lambda k: min(b[0] for b in launches[k]))
roles = ["q|k|v", "attention", "o", "gate|up", "down"]  # a Llama-like layer's launches
rows = {}
for i, key in enumerate(order):
    if key[0] != "1":  # streaming GEMVs only
        continue
    blocks = launches[key]
    release = min(b[3] for b in blocks)
    for b in blocks:
        rows.setdefault((roles[i % 5], b[0] < release), []).append(
            (b[3] - release, b[4] - b[3], b[9] - b[3], b[7] - b[3], b[5] - b[3]))
for (role, early), v in sorted(rows.items()):
    med = [statistics.median(x[j] for x in v) / 1000 for j in range(5)]
    print(f"{role:8s} started {'before' if early else 'after '} the release ({len(v)} blocks): wait returned "
          f"{med[0]:+.2f} us after it; then x issued {med[1]:.2f}, x arrived {med[2]:.2f}, first item there "
          f"{med[3]:.2f}, first item decoded {med[4]:.2f} us")
