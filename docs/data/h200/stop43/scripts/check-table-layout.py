#!/usr/bin/env python3
"""Checks that build_pair_tables_x4 (tables4.diff) writes TableShare's pair-table layout: for
2, 3 and 4 bits, every 4-byte word of a task's tables gets the same (row, first code, second
code) from both index maps, and the 16-byte stores cover each word once. Run anywhere:
    python3 docs/data/h200/stop43/scripts/check-table-layout.py
"""
WARPS = 16


def even_bits(e):  # tile_decode.cuh's even_bits: bits 0, 2, 4, ... of e packed together
    r, i = 0, 0
    while e:
        r |= (e & 1) << i
        e >>= 2
        i += 1
    return r


def odd_bits(e):
    return even_bits(e >> 1)


def table_share(b):  # TableShare<B>::load + store: lane L writes word (e0+u)*64 + 32q + L
    per_warp = (1 << (2 * b)) // WARPS
    words = {}
    for warp in range(WARPS):
        e0 = warp * per_warp
        for lane in range(32):
            for q in range(2):
                for u in range(per_warp):
                    words[(e0 + u) * 64 + 32 * q + lane] = (8 * q + lane // 4, even_bits(e0) + even_bits(u),
                                                             odd_bits(e0) + odd_bits(u))
    return words


def x4(b):  # build_pair_tables_x4<B>: lane writes 16-byte chunk c = 32 t + lane of its warp's entries
    per_warp = (1 << (2 * b)) // WARPS
    chunks = per_warp * 16
    words = {}
    for warp in range(WARPS):
        e0 = warp * per_warp
        for lane in range(32):
            for t in range((chunks + 31) // 32):
                c = 32 * t + lane
                if chunks % 32 == 0 or c < chunks:
                    u = c // 16
                    value = (8 * ((c % 16) // 8) + c % 8, even_bits(e0) + even_bits(u), odd_bits(e0) + odd_bits(u))
                    for j in range(4):
                        w = e0 * 64 + 4 * c + j
                        assert w not in words, f"{b} bits: word {w} written twice"
                        words[w] = value
    return words


for bits in (2, 3, 4):
    assert table_share(bits) == x4(bits), f"{bits} bits: the layouts differ"
    print(f"{bits} bits: {len(x4(bits))} words, the same layout")
