#!/usr/bin/env python3
"""Checks that RowLaneShare (row-lane-tables.diff) writes TableShare's pair-table layout at 3 and
4 bits: every 4-byte word of a task's tables gets the same (row, first code, second code), each
word once, and a quarter-warp's 16-byte stores cover 128 consecutive bytes (no bank conflict).
Run anywhere:  python3 docs/data/h200/stop44/scripts/check-row-lane-layout.py
"""
import importlib.util
import pathlib

spec = importlib.util.spec_from_file_location(
    "stop43", pathlib.Path(__file__).parents[2] / "stop43/scripts/check-table-layout.py")
stop43 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stop43)  # prints stop 43's own check; gives even_bits, odd_bits, table_share
WARPS = 16


def row_lanes(b):  # RowLaneShare<B>: lane L (g = L % 8, t = L // 8) stores uint4 (e0+t)*16 + g + 64 j + 8 q
    per_warp = (1 << (2 * b)) // WARPS
    k_j, k_half = per_warp // 4, (2 if per_warp // 4 > 1 else 1)
    words = {}
    for warp in range(WARPS):
        e0 = warp * per_warp
        for j in range(k_j):
            for q in range(2):
                quarter = {}
                for lane in range(32):
                    g, t = lane % 8, lane // 8
                    first_w = stop43.even_bits(e0) + (t & 1)
                    second_w = stop43.odd_bits(e0) + (t >> 1)
                    value = (8 * q + g, first_w + 2 * (j & (k_half - 1)), second_w + 2 * (j >> 1))
                    vec = (e0 + t) * 16 + g + 64 * j + 8 * q
                    quarter.setdefault(lane // 8, []).append(vec)
                    for w in range(4 * vec, 4 * vec + 4):
                        assert w not in words, f"{b} bits: word {w} written twice"
                        words[w] = value
                for vecs in quarter.values():  # 8 lanes, 8 consecutive 16-byte vectors
                    assert sorted(vecs) == list(range(min(vecs), min(vecs) + 8)), f"{b} bits: conflicts {vecs}"
    return words


for bits in (3, 4):
    assert stop43.table_share(bits) == row_lanes(bits), f"{bits} bits: the layouts differ"
    print(f"{bits} bits: {len(row_lanes(bits))} words, the same layout, quarter-warps conflict-free")
