#!/usr/bin/env bash
# Browser test of the web demo: serves a quantized pmpd-tiny, drives the page in Debian's
# headless Chromium with playwright-core. Usage: run.sh PMPD_BINARY OUT_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pmpd=$(realpath "$1")
out=$(mkdir -p "$2" && realpath "$2")
cd "$here"
[ -d node_modules/playwright-core ] || npm install --no-audit --no-fund --silent
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
"$pmpd" quantize -m "$here/../../models/pmpd-tiny" -o "$tmp/q.gguf" --bits 2:4 2>/dev/null
"$pmpd" serve -m "$tmp/q.gguf" --port 0 --schedule 4:3,3:3,2 2>"$tmp/serve.log" &
pid=$!
for _ in $(seq 100); do grep -q "http://" "$tmp/serve.log" && break; sleep 0.1; done
url=$(grep -o "http://[0-9.:]*/" "$tmp/serve.log")
timeout 120 node demo_test.mjs "$url" "$out"
