#!/usr/bin/env python3
"""Checks `pmpd simulate` against measured `pmpd bench` end-to-end decode times: for every
row of each bench JSON (16-bit, each width, the PMPD schedule, the alternating schedule) it
simulates the same trace on a hardware description and prints measured vs predicted
milliseconds per token, with the error; then the same rows' prompt passes (milliseconds of
the bench's prompt, from its prompt tokens/s) in a second table.

  python3 tools/validate_sim.py build/pmpd h100-pmpd docs/data/h100/bench-*.json
"""
import json
import os
import re
import subprocess
import sys
import tempfile


def schedule_of(name):
    if name == "16-bit":
        return "16", []
    m = re.fullmatch(r"(\d)-bit", name)
    if m:
        return f"fixed:{m.group(1)}", []
    m = re.fullmatch(r"PMPD (.+)", name)
    if m:
        return m.group(1), []
    m = re.fullmatch(r"alternate (\d)/(\d) every token", name)
    if m:
        return f"alternate:{m.group(1)}:{m.group(2)}:1", ["--prefill-bits", m.group(1)]
    raise ValueError(name)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    pmpd, hw, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    errors, prompt_rows = [], []
    print(f"| shape | weights | measured ms/token | predicted ms/token | error |\n|---|---|---|---|---|")
    for f in files:
        bench = json.load(open(f))
        shape = bench.get("shape") or bench["model"].split()[0]
        prompt, new = bench.get("prompt_tokens", 128), bench.get("new_tokens", 128)
        for row in bench["decode"]:
            sched, extra = schedule_of(row["name"])
            with tempfile.TemporaryDirectory() as d:
                out = os.path.join(d, "s.json")
                subprocess.run([pmpd, "simulate", "--shape", shape, "--hw", hw, "--schedule", sched, "-n", str(new),
                                "--prompt-tokens", str(prompt), "--json", out] + extra, check=True, stdout=subprocess.DEVNULL)
                sim = json.load(open(out))
            measured = 1e3 / row["tokens_per_second"]
            predicted = sim["mean_token_seconds"] * 1e3
            err = (predicted - measured) / measured
            errors.append(abs(err))
            print(f"| {shape} | {row['name']} | {measured:.3f} | {predicted:.3f} | {100 * err:+.1f}% |")
            if row.get("prefill_tokens_per_second"):
                prompt_rows.append((shape, row["name"], 1e3 * prompt / row["prefill_tokens_per_second"],
                                    sim["prefill_seconds"] * 1e3))
    print(f"\nmean |error| {100 * sum(errors) / len(errors):.1f}%, max {100 * max(errors):.1f}% over {len(errors)} rows")
    if prompt_rows:
        print(f"\n| shape | weights | measured prompt ms | predicted prompt ms | error |\n|---|---|---|---|---|")
        perr = []
        for shape, name, measured, predicted in prompt_rows:
            err = (predicted - measured) / measured
            perr.append(abs(err))
            print(f"| {shape} | {name} | {measured:.2f} | {predicted:.2f} | {100 * err:+.1f}% |")
        print(f"\nprompt passes: mean |error| {100 * sum(perr) / len(perr):.1f}%, max {100 * max(perr):.1f}% "
              f"over {len(perr)} rows")


if __name__ == "__main__":
    main()
