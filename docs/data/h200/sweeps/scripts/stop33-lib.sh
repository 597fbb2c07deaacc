# Sourced by stop 33's call scripts (from the repository root on the GPU machine): the
# bundle's environment and b SHAPE BITS [VAR=VALUE...], one end-to-end greedy bench at one
# width with those settings, printing its row.
source tools/gpu/bundle_env.sh
N=$root/bin
out=${OUT:-/tmp/out}
b() { local shape=$1 bits=$2; shift 2; echo "== $shape $bits $*"
  env "$@" timeout 90 "$N/pmpd" bench --backend cuda --shape "$shape" --bits "$bits:$bits" --prompt-tokens 128 \
    --no-ops --schedule "" 2>&1 | grep -E "^\| $bits-bit|rror"; }
