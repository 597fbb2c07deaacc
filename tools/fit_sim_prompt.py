#!/usr/bin/env python3
"""Refits a hardware description's prompt-pass entries to three measured 16-bit prompt passes
of one shape: the fixed cost a layer of a prompt pass (prompt_layer_overhead_us) to the
shortest prompt, the 16-bit MAC rate (macs_per_cycle["16"], the GEMMs) to the middle one and
the attention's rate (attention_macs_per_cycle) to the longest, where the quadratic attention
weighs most; the three are refitted in turn until they stop moving. Writes the description
back (every other entry unchanged). Decode passes do not depend on these entries where their
products are memory-bound (they are on pmpd's GPU descriptions).

  python3 tools/fit_sim_prompt.py build/pmpd hw/h200-pmpd.json vicuna-7b 128:8.749 512:22.67 1920:117.5

Each measurement is PROMPT_TOKENS:MILLISECONDS of a 16-bit prompt pass (`pmpd bench
--prompt-tokens P` prints prompt tokens/s: milliseconds = 1000 P / that).
"""
import json
import sys

from fit_sim_rates import simulate


def prompt_ms(pmpd, hw, shape, prompt):
    return simulate(pmpd, hw, shape, "16", prompt, 2)["prefill_seconds"] * 1e3


def bisect(predict, target, lo, hi, rising=False):
    """The value in [lo, hi] at which predict(value) (falling with it, or rising) meets target."""
    for _ in range(50):
        mid = (lo + hi) / 2
        if (predict(mid) > target) != rising:
            lo = mid
        else:
            hi = mid
    return hi


def parse(m):
    p, ms = m.split(":")
    return int(p), float(ms)


def main():
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    pmpd, path, shape = sys.argv[1:4]
    (p_short, ms_short), (p_mid, ms_mid), (p_long, ms_long) = sorted(parse(m) for m in sys.argv[4:7])
    hw = json.load(open(path))

    def entries():
        return (hw.get("prompt_layer_overhead_us", 0), hw["macs_per_cycle"]["16"], hw.get("attention_macs_per_cycle", 0))

    def fit(key, prompt, target, lo, hi, rising=False, digits=0):
        def predict(v):
            if key == "16":
                hw["macs_per_cycle"]["16"] = v
            else:
                hw[key] = v
            return prompt_ms(pmpd, hw, shape, prompt)
        v = round(bisect(predict, target, lo, hi, rising), digits)
        predict(int(v) if digits == 0 else v)

    old = entries()
    for _ in range(20):
        before = entries()
        fit("prompt_layer_overhead_us", p_short, ms_short, 0.0, 1e4, rising=True, digits=1)
        fit("16", p_mid, ms_mid, 1.0, 1e7)
        fit("attention_macs_per_cycle", p_long, ms_long, 1.0, 1e7)
        if entries() == before:
            break
    new = entries()
    print(f"prompt_layer_overhead_us {old[0]} -> {new[0]}, macs_per_cycle[16] {old[1]} -> {new[1]}, "
          f"attention_macs_per_cycle {old[2]} -> {new[2]}")
    for p, ms in ((p_short, ms_short), (p_mid, ms_mid), (p_long, ms_long)):
        print(f"{p}-token 16-bit prompt pass: measured {ms:.2f} ms, predicted {prompt_ms(pmpd, hw, shape, p):.2f} ms")
    with open(path, "w") as f:
        json.dump(hw, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
