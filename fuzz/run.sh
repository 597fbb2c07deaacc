#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan), makes seed corpora from the
# project's own fixtures, runs each target for SECONDS (default 60) and writes a report;
# exits non-zero if any target found a crash. Findings land in build-fuzz/findings/.
#   bash fuzz/run.sh [SECONDS]
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
export DEBIAN_FRONTEND=noninteractive
command -v clang++ >/dev/null || { SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo; $SUDO apt-get install -y -qq clang >/dev/null; }
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_FLAGS_RELEASE="-O1 -g0" -DPMPD_FUZZ=ON -DPMPD_CUDA=OFF -DPMPD_BUILD_TESTS=OFF -DPMPD_BUILD_BENCH=OFF >/dev/null || exit 1
cmake --build build-fuzz -j2 --target fuzz_all >/dev/null || exit 1

seeds=build-fuzz/seeds
rm -rf "$seeds" && mkdir -p "$seeds"/{gguf,safetensors,config,llama2c,tokenizer,jobs,http}
FX=tests/fixtures
for a in llama phi stablelm; do cp $FX/$a/config.json "$seeds/config/$a.json"; done
for a in phi stablelm; do cp $FX/$a/model.safetensors "$seeds/safetensors/$a.safetensors"; done
cp $FX/llama/model.safetensors.index.json "$seeds/safetensors/" 2>/dev/null
cp $FX/tok_bytelevel/tokenizer.json "$seeds/tokenizer/bytelevel.json"; cp $FX/tok_spm_model/tokenizer.model "$seeds/tokenizer/spm.model"
cp tasks/*.json "$seeds/jobs/"; cp hw/*.json "$seeds/jobs/"
echo '{"prefill_bits": 5, "schedule": "3:24,2"}' > "$seeds/jobs/schedule.json"
echo '{"prompt_ids": [1, 2], "prefill_bits": 4, "tokens": [{"id": 3, "bits": 4}, {"id": 4, "bits": 3}]}' > "$seeds/jobs/trace.json"
echo '4:32,3:96,2' > "$seeds/jobs/spec.txt"
echo '{"id":"pair/3/0","value":{"outputs":[{"text":"a","tokens":[1],"bits":[4]}],"passes":[1,2]}}' > "$seeds/jobs/journal.jsonl"
python3 -c 'import struct, sys; sys.stdout.buffer.write(struct.pack("4i", 2, 1, 2, 0) + bytes(16))' > "$seeds/jobs/dataset-record.bin"
echo '{"prompt": "German: Hallo\nEnglish:\n", "max_tokens": 8, "pmpd": {"mode": "pmpd"}}' > "$seeds/http/completion.json"
echo '{"messages": [{"role": "user", "content": "hi"}], "stream": true, "temperature": 0.5}' > "$seeds/http/chat.json"
# llama.cpp's block-quantized tensors (Q4_0..Q6_K) beside gguf-py's decoding of them.
[ -f $FX/ggml_quant_blocks.gguf ] && cp $FX/ggml_quant_blocks.gguf "$seeds/gguf/"
# A quantized GGUF and a llama2.c checkpoint, small: made by pmpd itself when a build exists.
if [ -x build/pmpd ]; then
  build/pmpd quantize -m $FX/llama -o "$seeds/gguf/llama.q.gguf" --bits 2:3 >/dev/null 2>&1
  build/pmpd convert -m $FX/phi -o "$seeds/gguf/phi.gguf" --dtype f16 >/dev/null 2>&1
fi
python3 - "$seeds/llama2c/tiny.bin" <<'PY'
import struct, sys
dim, hidden, layers, heads, kv, vocab, seq = 8, 16, 1, 2, 2, 16, 8
w = dim * vocab + layers * (dim + 4 * dim * dim + dim + 3 * dim * hidden) + dim + seq * (dim // heads)
open(sys.argv[1], "wb").write(struct.pack("7i", dim, hidden, layers, heads, kv, vocab, seq) + struct.pack(f"{w}f", *([0.01] * w)))
PY

mkdir -p build-fuzz/findings build-fuzz/corpus
report=build-fuzz/report.txt
: > "$report"
status=0
for t in gguf safetensors config llama2c tokenizer jobs http; do
  corpus=build-fuzz/corpus/$t
  mkdir -p "$corpus"
  log=build-fuzz/fuzz_$t.log
  build-fuzz/fuzz/fuzz_$t "$corpus" "$seeds/$t" -max_total_time="$secs" -max_len=262144 -timeout=10 -rss_limit_mb=4096 \
    -artifact_prefix=build-fuzz/findings/${t}- -print_final_stats=1 >"$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  echo "$t: rc=$rc, ${execs:-?} executions in ${secs}s, corpus $(ls "$corpus" | wc -l) inputs" | tee -a "$report"
  if [ $rc -ne 0 ]; then status=1; grep -E 'ERROR|SUMMARY|panic' "$log" | head -5 | tee -a "$report"; fi
done
exit $status
