#!/usr/bin/env python3
"""Refits a hardware description's MAC rates per width to measured end-to-end decode: for
each width b of a `pmpd bench` JSON (rows "b-bit"), finds by bisection the macs_per_cycle[b]
at which `pmpd simulate --schedule fixed:b` predicts the measured ms/token, and writes the
description with those rates (the other entries unchanged).

  python3 tools/fit_sim_rates.py build/pmpd hw/h200-pmpd.json docs/data/h200/bench-vicuna-7b.json [WIDTHS]

WIDTHS: e.g. 2,3,4,5,6,7,8 (default: every width the bench has). Prints old -> new rates.
"""
import json
import os
import re
import subprocess
import sys
import tempfile


def simulate(pmpd, hw, shape, schedule, prompt, new):
    """`pmpd simulate`'s JSON result for a hardware description given as a dict (also used by
    fit_sim_prompt.py)."""
    with tempfile.TemporaryDirectory() as d:
        hw_file, out = os.path.join(d, "hw.json"), os.path.join(d, "s.json")
        json.dump(hw, open(hw_file, "w"))
        subprocess.run([pmpd, "simulate", "--shape", shape, "--hw", hw_file, "--schedule", schedule, "-n",
                        str(new), "--prompt-tokens", str(prompt), "--json", out], check=True, stdout=subprocess.DEVNULL)
        return json.load(open(out))


def predicted_ms(pmpd, hw, shape, width, prompt, new):
    return simulate(pmpd, hw, shape, f"fixed:{width}", prompt, new)["mean_token_seconds"] * 1e3


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    pmpd, hw_path, bench_path = sys.argv[1:4]
    hw, bench = json.load(open(hw_path)), json.load(open(bench_path))
    shape = bench.get("shape") or bench["model"].split()[0]
    prompt, new = bench.get("prompt_tokens", 128), bench.get("new_tokens", 128)
    measured = {}
    for row in bench["decode"]:
        m = re.fullmatch(r"(\d)-bit", row["name"])
        if m:
            measured[int(m.group(1))] = 1e3 / row["tokens_per_second"]
    widths = [int(w) for w in sys.argv[4].split(",")] if len(sys.argv) > 4 else sorted(measured)
    for w in widths:
        old = hw["macs_per_cycle"][str(w)]
        lo, hi = old / 8, old * 8  # more MACs a cycle: a faster prediction
        for _ in range(40):
            mid = (lo * hi) ** 0.5
            hw["macs_per_cycle"][str(w)] = mid
            if predicted_ms(pmpd, hw, shape, w, prompt, new) > measured[w]:
                lo = mid
            else:
                hi = mid
        hw["macs_per_cycle"][str(w)] = round((lo * hi) ** 0.5)
        print(f"{w} bits: {old} -> {hw['macs_per_cycle'][str(w)]} MACs a cycle (measured {measured[w]:.3f} ms/token)")
    json.dump(hw, open(hw_path, "w"), indent=2)
    open(hw_path, "a").write("\n")


if __name__ == "__main__":
    main()
