# Sourced by stop 43's later call scripts (repository root, GPU machine): stop 42's preamble (b,
# t; N = the main bundle's bin) and `with_variant NAME`, which unpacks .gpu/NAME.tar.xz (a
# variant packed with both binaries) beside the main bundle and sets main and var to the two
# builds' bin folders; `per_operator ARM...`, the per-operator rows at 3 bits of each build
# (ARM: the name of a variable holding its bin folder, e.g. main var).
source docs/data/h200/stop42/scripts/lib.sh
main=$N
with_variant() { mkdir -p "$root/$1" && tar -C "$root/$1" -xJf ".gpu/$1.tar.xz" && var=$root/$1/bin; }
per_operator() { local arm; for arm in "$@"; do
  echo "-- $arm per operator"
  timeout 120 "${!arm}/pmpd" bench --backend cuda --shape vicuna-7b --bits 3:3 --no-e2e 2>&1 | grep -E "^\| (3|16 \()"
done; }
