#!/usr/bin/env bash
# stop 29 call 3: the decode ceiling with tables in registers (PRMT) against pair tables in shared memory; SASS counts.
set -uo pipefail
source tools/gpu/bundle_env.sh
mkdir -p "$root/regtab" && tar -C "$root/regtab" -xJf .gpu/regtab.tar.xz
R=$root/regtab/bin
timeout 240 "$R/pmpd" bench --backend cuda --gemv-ceiling --bits 2:3 2>&1 | tee "$OUT/ceiling.md" | grep -E "^\| [23] \|" | grep -v "x [0-9]"
cuobjdump -sass "$R/pmpd" > /tmp/sass.txt 2>/dev/null
python3 - <<'PY'
import re, collections
src = open('/tmp/sass.txt').read()
for fn in re.split(r'\n\s+Function : ', src)[1:]:
    name = fn.split('\n')[0]
    m = re.search(r'decode_core_kernelILi([23])ELi16ELi1ELi1ELb([01])ELb1ELb([01])E', name)
    if not m: continue
    c = collections.Counter(re.findall(r'/\*[0-9a-f]{4}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)', fn))
    print('B=%s stream=%s regtables=%s total=%d' % (m.group(1), m.group(2), m.group(3), sum(c.values())), dict(c.most_common(16)))
PY
