# Sourced by stop 43's later call scripts (repository root, GPU machine): stop 42's preamble (b,
# t; N = the main bundle's bin) and `with_variant NAME`, which unpacks .gpu/NAME.tar.xz (a
# variant packed with both binaries) beside the main bundle and sets main and var to the two
# builds' bin folders (calls 2 and 3 spelt this out, as run).
source docs/data/h200/stop42/scripts/lib.sh
main=$N
with_variant() { mkdir -p "$root/$1" && tar -C "$root/$1" -xJf ".gpu/$1.tar.xz" && var=$root/$1/bin; }
