#!/usr/bin/env python3
"""Makes tests/fixtures/ggml_quant_blocks.gguf: llama.cpp block-quantized tensors and what
llama.cpp's own Python package (gguf-py, `gguf.quants.dequantize`) makes of them.

Runs where the `gguf` package is installed (the GPU machine has it beside transformers):
  python3 tools/make_ggml_quant_fixture.py OUT.gguf

For each ggml type pmpd reads (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) the
file holds `q.<TYPE>`, a [3, 512] tensor of that type whose blocks are random bytes (seeded)
with finite f16 scale fields (ordinary, tiny, subnormal, negative and zero scales), and
`ref.<TYPE>`, the same tensor dequantized to F32 by gguf-py. tests/test_dtype.cpp reads the
file with pmpd's GGUF reader and requires pmpd's dequantization to equal `ref.*` bit for bit.
"""
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

ROWS, COLS = 3, 512
# Offsets of the f16 scale fields in each block (ggml-common.h's block layouts).
F16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}


def scale_values(rng, n):
    """Finite f16 scales: mostly ordinary magnitudes, with zero, subnormal and negative ones."""
    v = rng.uniform(1e-3, 0.5, n) * rng.choice([-1.0, 1.0], n)
    special = np.array([0.0, 6e-8, -3e-6, 1e-4, 65504.0 / 4096.0, -2.0], dtype=np.float64)
    v[: min(n, len(special))] = special[: min(n, len(special))]
    rng.shuffle(v)
    return v.astype(np.float16)


def blocks_for(rng, qtype):
    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = ROWS * COLS // block
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for off in F16_FIELDS[qtype]:
        raw[:, off:off + 2] = scale_values(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(ROWS, COLS // block * type_size)


def write_gguf(path, tensors, provenance):
    """A plain GGUF v3 writer (gguf-py's writer API differs between versions)."""
    align = 32
    kv = [("general.architecture", "pmpd-test"), ("general.alignment", align), ("pmpd.fixture.source", provenance)]
    out = bytearray(struct.pack("<IIQQ", 0x46554747, 3, len(tensors), len(kv)))

    def string(s):
        b = s.encode()
        return struct.pack("<Q", len(b)) + b

    for key, val in kv:
        out += string(key)
        out += struct.pack("<I", 8) + string(val) if isinstance(val, str) else struct.pack("<II", 4, val)
    offset = 0
    infos = []
    for name, ggml_type, shape, data in tensors:
        out += string(name) + struct.pack("<I", len(shape))
        for d in reversed(shape):
            out += struct.pack("<Q", d)
        out += struct.pack("<IQ", int(ggml_type), offset)
        infos.append((offset, data))
        offset += (len(data) + align - 1) // align * align
    out += b"\0" * ((-len(out)) % align)
    start = len(out)
    for off, data in infos:
        out += b"\0" * (start + off - len(out))
        out += data
    with open(path, "wb") as f:
        f.write(out)


def main():
    path = sys.argv[1]
    rng = np.random.default_rng(20261207)
    tensors = []
    for qtype in F16_FIELDS:
        raw = blocks_for(rng, qtype)
        ref = gguf.quants.dequantize(raw, qtype).astype(np.float32)
        assert ref.shape == (ROWS, COLS), (qtype, ref.shape)
        assert np.isfinite(ref).all(), qtype
        tensors.append((f"q.{qtype.name}", qtype, [ROWS, COLS], raw.tobytes()))
        tensors.append((f"ref.{qtype.name}", T.F32, [ROWS, COLS], ref.tobytes()))
        print(f"{qtype.name}: {raw.shape[1]} bytes a row, |ref| max {np.abs(ref).max():.4g}")
    try:
        from importlib.metadata import version
        gguf_version = version("gguf")
    except Exception:
        gguf_version = getattr(gguf, "__version__", "unknown")
    write_gguf(path, tensors, f"tools/make_ggml_quant_fixture.py, gguf-py {gguf_version}, numpy {np.__version__}")
    # Read it back with gguf-py's reader: the file must be a valid GGUF to llama.cpp's tools too.
    reader = gguf.GGUFReader(path)
    for t in reader.tensors:
        if t.name.startswith("q."):
            again = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type)
            want = next(np.asarray(r.data) for r in reader.tensors if r.name == "ref." + t.name[2:])
            assert np.array_equal(again.reshape(ROWS, COLS), want.reshape(ROWS, COLS)), t.name
    print(f"wrote {path} ({len(reader.tensors)} tensors), gguf-py read it back")


if __name__ == "__main__":
    main()
