#!/usr/bin/env bash
# stop 30 call 2: SASS of the streaming GEMV kernels (main's and the early-look-up ones) for reading offline.
set -uo pipefail
source tools/gpu/bundle_env.sh
which cuobjdump nvdisasm
cuobjdump -sass "$root/bin/pmpd" > /tmp/all.sass 2>/tmp/err.txt; echo "rc=$? $(wc -c < /tmp/all.sass) bytes"; head -3 /tmp/err.txt
python3 - <<'PY'
import re, os
s = open('/tmp/all.sass').read()
parts = re.split(r'\n(?=\s*Function : )', s)
out = os.environ['OUT']
keep = {}
for p in parts:
    m = re.match(r'\s*Function : (\S+)', p)
    if not m: continue
    n = m.group(1)
    if 'pair_lut_stream_kernelILi3ELb1ELi1ELb0E' in n or 'pair_lut_stream_kernelILi3ELb0ELi1ELb0E' in n or 'pair_lut_gemv_kernelILi3ELi1ELb0E' in n:
        keep[n] = p
print(len(parts), 'functions;', len(keep), 'kept')
with open(out + '/stream3.sass', 'w') as f:
    for n in sorted(keep): f.write(keep[n] + '\n')
PY
xz -9 "$OUT/stream3.sass"; ls -la "$OUT"
