#!/usr/bin/env bash
# stop 51 call 1 (H200): stop 50's final code (9d30804's tree, main bundle from
# `bash tools/gpu/pack.sh`), never run on a GPU before. Carries data/corpus/translate.test.jsonl
# (python3 tools/prepare_corpus.py --out data/corpus); models/pmpd-small moved aside.
#  1. tools/gpu/run.sh without its no-graph and prompt-length runs: the CUDA tests, the CLI
#     check, the full `pmpd bench --backend cuda --shape S --prompt-tokens 128` of the four
#     shapes ($OUT/call1);
#  2. the user's flows end to end on the GPU against the CPU in the same call: `pmpd eval` of
#     the default model on the Multi30k test split (1000 sentences) at 4/3 and 8/2 bits with
#     --backend cuda and --backend cpu ($OUT/call1/eval-*), and `pmpd serve --backend cuda`
#     answering a completion and a streamed chat request ($OUT/call1/serve.txt);
#  3. the PMPD schedule 4:32,3 with the prefill cache off / on at 512 prompt tokens (stop 50
#     call 3's skipped rows).
set -uo pipefail
out=${OUT:-/tmp/out}
t0=$(date +%s)
PMPD_GPU_NO_GRAPH_RUN=1 timeout 360 bash tools/gpu/run.sh "$out/call1"
source tools/gpu/bundle_env.sh
P=$root/bin/pmpd
[ -f /tmp/tiny.gguf ] || "$P" quantize -m models/pmpd-tiny -o /tmp/tiny.gguf 2>&1 | tail -1
{
  for hl in 4:3 8:2; do
    for be in cuda cpu; do
      [ $(( $(date +%s) - t0 )) -gt 470 ] && { echo "skipped eval $hl $be (time)"; continue; }
      echo "== eval pmpd-tiny multi30k test, high:low $hl, --backend $be"
      s=$(date +%s%N)
      timeout 90 "$P" eval -m /tmp/tiny.gguf --task tasks/multi30k-de-en.json --methods baseline-h,baseline-l \
        --high "${hl%%:*}" --low "${hl##*:}" --backend "$be" -o "$out/call1/eval-$be-${hl/:/-}" 2>&1 | grep -v "^\s*$" | tail -8
      echo "wall $(( ($(date +%s%N) - s) / 1000000 )) ms"
    done
  done
} 2>&1 | tee "$out/call1/eval.txt"
{
  echo "== serve --backend cuda"
  "$P" serve -m /tmp/tiny.gguf --backend cuda --port 18080 --schedule 4:2,3 > "$out/call1/serve-stderr.txt" 2>&1 &
  sp=$!
  for i in $(seq 1 60); do curl -s localhost:18080/health >/dev/null 2>&1 && break; sleep 0.5; done
  curl -s localhost:18080/v1/models; echo
  curl -s localhost:18080/v1/completions -H 'Content-Type: application/json' \
    -d '{"prompt":"German: Zwei Hunde spielen im Schnee.\nEnglish:\n","max_tokens":24,"temperature":0,"stop":["\n"]}'; echo
  curl -s -N localhost:18080/v1/chat/completions -H 'Content-Type: application/json' \
    -d '{"messages":[{"role":"user","content":"German: Ein Mann fährt Fahrrad.\nEnglish:"}],"max_tokens":12,"stream":true,"seed":7}' | tail -4
  curl -s localhost:18080/metrics | grep -E "^pmpd_(requests_total|generated_tokens_total|average_bits|decode_tokens_per_second)"
  kill $sp; wait $sp 2>/dev/null
} 2>&1 | tee "$out/call1/serve.txt"
{
  for arm in off on; do
    [ $(( $(date +%s) - t0 )) -gt 540 ] && { echo "skipped pmpd $arm (time)"; continue; }
    echo "== vicuna-7b prompt 512, PMPD 4:32,3, cache $arm"
    env $([ $arm = on ] && echo PMPD_CUDA_PREFILL_CACHE=1) timeout 50 "$P" bench --backend cuda \
      --shape vicuna-7b --bits 3:4 --prompt-tokens 512 --new-tokens 128 --no-ops --schedule auto 2>&1 |
      grep -E "^\| |rror|prefill cache"
  done
} 2>&1 | tee "$out/call1/cache-pmpd.txt"
echo "total $(( $(date +%s) - t0 )) s"
