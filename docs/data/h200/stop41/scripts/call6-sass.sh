#!/usr/bin/env bash
# stop 41 call 6 (H200 machine, no GPU work): the decode attention kernel's SASS from the bundle's
# pmpd (cuobjdump), to see where its cache-row loads sit against the wait on the kernel before.
set -u
root=$(mktemp -d); tar -C "$root" -xJf .gpu/bundle.tar.xz bin/pmpd
cuobjdump=$(command -v cuobjdump || find / -name cuobjdump -type f 2>/dev/null | head -1)
echo "cuobjdump: $cuobjdump"
"$cuobjdump" -sass "$root/bin/pmpd" > /tmp/all.sass 2>&1; echo "rc $? lines $(wc -l < /tmp/all.sass)"
awk '/Function : .*attention_decode_kernel/{f=1} f&&/Function : /&&!/attention_decode_kernel/{f=0} f' /tmp/all.sass > "$OUT/attn.sass"
wc -l "$OUT"/attn.sass; grep -n "ACQBULK\|griddep\|DEPBAR\|LDG" "$OUT/attn.sass" | head -60
