#!/usr/bin/env python3
"""Writes a synthetic Llama-shaped f16 checkpoint (Hugging Face layout) for memory and
speed measurements without a download. Values are a fixed pseudo-random block tiled
with shifting offsets; they are not a trained model.

  python3 tools/make_synthetic_model.py --shape llama-7b --tokenizer tests/fixtures/llama --out /tmp/syn7b
"""
import argparse
import json
import os
import random
import shutil
import struct

SHAPES = {  # dim, ffn, layers, heads, vocab
    "llama-7b": (4096, 11008, 32, 32, 32000),
    "mobilellama-1.4b": (2048, 5632, 24, 16, 32000),
    "tiny": (256, 688, 2, 4, 4096),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=SHAPES, default="llama-7b")
    ap.add_argument("--tokenizer", required=True, help="directory whose tokenizer files are copied")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    D, F, L, H, V = SHAPES[a.shape]
    os.makedirs(a.out, exist_ok=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(a.tokenizer, f), a.out)
    json.dump({"model_type": "llama", "hidden_size": D, "intermediate_size": F, "num_hidden_layers": L,
               "num_attention_heads": H, "num_key_value_heads": H, "vocab_size": V, "max_position_embeddings": 4096,
               "rms_norm_eps": 1e-5, "tie_word_embeddings": False}, open(os.path.join(a.out, "config.json"), "w"))
    shapes = [("model.embed_tokens.weight", (V, D)), ("lm_head.weight", (V, D)), ("model.norm.weight", (D,))]
    for l in range(L):
        p = f"model.layers.{l}."
        shapes += [(p + "self_attn.q_proj.weight", (D, D)), (p + "self_attn.k_proj.weight", (D, D)),
                   (p + "self_attn.v_proj.weight", (D, D)), (p + "self_attn.o_proj.weight", (D, D)),
                   (p + "mlp.gate_proj.weight", (F, D)), (p + "mlp.up_proj.weight", (F, D)),
                   (p + "mlp.down_proj.weight", (D, F)), (p + "input_layernorm.weight", (D,)),
                   (p + "post_attention_layernorm.weight", (D,))]
    header, off = {}, 0
    for n, s in shapes:
        nb = 2
        for d in s:
            nb *= d
        header[n] = {"dtype": "F16", "shape": list(s), "data_offsets": [off, off + nb]}
        off += nb
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    random.seed(1)
    n = 1 << 21
    block = struct.pack("<%de" % n, *[(sum(random.random() for _ in range(4)) - 2.0) * 0.02 for _ in range(n)])
    ones = struct.pack("<%de" % D, *([1.0] * D))
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for name, s in shapes:
            nb = header[name]["data_offsets"][1] - header[name]["data_offsets"][0]
            if len(s) == 1:
                f.write(ones)
                continue
            k = 0
            while nb > 0:
                m = min(nb, len(block) - k)
                f.write(block[k:k + m])
                nb -= m
                k = (k + m + 128) % len(block)
    print(f"{off / 1e9:.2f} GB of weights in {a.out}")


if __name__ == "__main__":
    main()
