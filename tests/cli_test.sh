#!/usr/bin/env bash
# The CLI end to end: generation works, bad input gives one "pmpd: error:" line and
# exit status 1, never a crash.
set -u
PMPD=$1
SRC=$2
FX=$SRC/tests/fixtures
fails=0
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fails=$((fails + 1)); }

expect_error() {  # name, fragment, command...
  local name=$1 frag=$2
  shift 2
  local err
  err=$("$@" 2>&1 >/dev/null)
  local rc=$?
  if [ $rc -ne 1 ]; then bad "$name: exit status $rc"; return; fi
  if [ "$(printf '%s\n' "$err" | grep -c '^pmpd: error:')" -ne 1 ]; then bad "$name: stderr was: $err"; return; fi
  if ! printf '%s' "$err" | grep -q -- "$frag"; then bad "$name: '$frag' not in: $err"; return; fi
  ok "$name"
}

out=$("$PMPD" run -m "$FX/llama" -p "Ein Mann" -n 8 2>/dev/null) && ok "run text" || bad "run text"
json=$("$PMPD" run -m "$FX/phi" --prompt-ids 5,6,7 -n 4 --json --logits) || bad "run json"
echo "$json" | python3 -c "import json,sys; j=json.load(sys.stdin); assert len(j['generated_ids'])==4 and len(j['logits'])==4" \
  && ok "json fields" || bad "json fields"
"$PMPD" info -m "$FX/stablelm" >/dev/null && ok "info" || bad "info"
"$PMPD" run --help | grep -q -- "--prompt-ids" && ok "help" || bad "help"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PMPD" convert -m "$FX/stablelm" -o "$tmp/s.gguf" --dtype f16 2>/dev/null && ok "convert" || bad "convert"
"$PMPD" run -m "$tmp/s.gguf" --prompt-ids 5,6,7 -n 4 >/dev/null 2>&1 && ok "run gguf" || bad "run gguf"

# pmpd bench on a synthetic shape (CPU), its JSON, and --backend cuda without a GPU.
"$PMPD" bench --shape tiny --bits 2:3 --new-tokens 4 --prompt-tokens 4 --min-seconds 0.01 --json "$tmp/bench.json" >/dev/null 2>&1 \
  && python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert len(j['ops'])==3 and len(j['decode'])>=3" "$tmp/bench.json" \
  && ok "bench" || bad "bench"
"$PMPD" bench --shape tiny --bits 3:3 --quantize-head --no-e2e --min-seconds 0.01 --json "$tmp/bench-head.json" >/dev/null 2>&1 \
  && python3 -c "import json,sys; assert json.load(open(sys.argv[1]))['head_quantized'] is True" "$tmp/bench-head.json" \
  && ok "bench quantized head" || bad "bench quantized head"
expect_error "bench unknown shape" "unknown model shape" "$PMPD" bench --shape gpt-9 --no-e2e
"$PMPD" bench --shape tiny --bits 3:3 --no-ops --new-tokens 4 --prompt-tokens 4 --temp 1 --top-p 0.9 2>/dev/null \
  | grep -q "temperature 1, top-k 0, top-p 0.9" && ok "bench sampled" || bad "bench sampled"
expect_error "bench bad top-p" "top-p" "$PMPD" bench --shape tiny --no-ops --top-p 1.5
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi >/dev/null 2>&1; then
  expect_error "cuda without a GPU" "CUDA" "$PMPD" run -m "$FX/llama" --prompt-ids 1,2 -n 2 --backend cuda
  # before building the 7B synthetic model: at once, not after a minute
  expect_error "bench cuda without a GPU" "no usable GPU" timeout 20 "$PMPD" bench --backend cuda --shape vicuna-7b
  expect_error "gemv ceiling without a GPU" "no usable GPU" timeout 20 "$PMPD" bench --backend cuda --gemv-ceiling
fi
expect_error "gemv ceiling on the CPU" "add --backend cuda" "$PMPD" bench --gemv-ceiling
# an option check at parse time (CLI11's message and status, as for a bad --backend value)
err=$("$PMPD" run -m "$FX/llama" --prompt-ids 1 --prefill-cache 2>&1 >/dev/null) && bad "prefill cache on the CPU: accepted" \
  || { printf '%s' "$err" | grep -q -- "--prefill-cache: needs --backend cuda" && ok "prefill cache on the CPU" \
       || bad "prefill cache on the CPU: $err"; }
expect_error "missing model" "no such file" "$PMPD" run -m "$tmp/none" --prompt-ids 1
expect_error "bad ids" "not a token id" "$PMPD" run -m "$FX/llama" --prompt-ids 1,x
expect_error "id out of range" "outside the vocabulary" "$PMPD" run -m "$FX/llama" --prompt-ids 1,99999
expect_error "invalid utf8" "UTF-8" "$PMPD" run -m "$FX/llama" -p $'abc\xff'
expect_error "too long" "exceeds" "$PMPD" run -m "$FX/llama" --prompt-ids 1,2,3 -n 1000
expect_error "bad temp" "temperature" "$PMPD" run -m "$FX/llama" --prompt-ids 1 --temp -1
expect_error "unknown chat" "chat template" "$PMPD" run -m "$FX/llama" -p hi --chat klingon
head -c 1000 "$tmp/s.gguf" > "$tmp/t.gguf"
expect_error "truncated gguf" "t.gguf" "$PMPD" run -m "$tmp/t.gguf" --prompt-ids 1
echo garbage > "$tmp/g.bin"
expect_error "garbage file" "g.bin" "$PMPD" info -m "$tmp/g.bin"

# quantize -> run at several widths -> perplexity
"$PMPD" quantize -m "$SRC/models/pmpd-tiny" -o "$tmp/q.gguf" --bits 2:8 2>/dev/null && ok "quantize" || bad "quantize"
for b in 2 5 8; do
  "$PMPD" run -m "$tmp/q.gguf" --bits $b -p "A dog" -n 4 >/dev/null 2>&1 && ok "run --bits $b" || bad "run --bits $b"
done
# info counts a quantized model's parameters as its checkpoint does, not its planes and tables
p16=$("$PMPD" info -m "$SRC/models/pmpd-tiny" | sed -n 's/^parameters: \([0-9]*\).*/\1/p')
pq=$("$PMPD" info -m "$tmp/q.gguf" | sed -n 's/^parameters: \([0-9]*\).*/\1/p')
[ -n "$p16" ] && [ "$p16" = "$pq" ] && ok "info parameters of a quantized model ($pq)" || bad "info parameters: $p16 vs $pq"
# --quantize-head: the tied head stored as nested planes too; info counts it, run works at 2 bits
"$PMPD" quantize -m "$SRC/models/pmpd-tiny" -o "$tmp/qh.gguf" --bits 2:8 --quantize-head 2>/dev/null \
  && "$PMPD" info -m "$tmp/qh.gguf" 2>&1 | grep -q "29 tensors" \
  && "$PMPD" run -m "$tmp/qh.gguf" --bits 2 -p "A dog" -n 4 >/dev/null 2>&1 && ok "quantize --quantize-head" || bad "quantize --quantize-head"
head -c 2000 "$SRC/tests/cli_test.sh" > "$tmp/text.txt"
"$PMPD" perplexity -m "$tmp/q.gguf" --text "$tmp/text.txt" --bits 3:4 --json "$tmp/ppl.json" >/dev/null 2>&1 \
  && python3 -c "import json; r=json.load(open('$tmp/ppl.json')); assert [x['bits'] for x in r]==[3,4]" && ok "perplexity" || bad "perplexity"
json=$("$PMPD" run -m "$tmp/q.gguf" -p "A dog" -n 6 --ignore-eos --prefill-bits 8 --schedule 4:2,2 --json)
echo "$json" | python3 -c "import json,sys; j=json.load(sys.stdin); b=[t['bits'] for t in j['tokens']]; assert b==[8,4,4,2,2,2], b; assert abs(j['average_bits']-22/6)<1e-9" \
  && ok "schedule trace" || bad "schedule trace: $json"
"$PMPD" patterns -m "$tmp/q.gguf" --reference "$SRC/models/pmpd-tiny" --prompts "$SRC/tests/cli_test.sh" --limit 2 -n 6 --words 2 --json "$tmp/pat.json" >/dev/null 2>&1 \
  && python3 -c "import json; r=json.load(open('$tmp/pat.json')); assert len(r)==6" && ok "patterns" || bad "patterns"
# eval on a tiny task of our own, run twice: the second run comes from the cache
printf '{"de": "Ein Hund.", "en": "A dog."}\n{"de": "Zwei Katzen.", "en": "Two cats."}\n' > "$tmp/mini.jsonl"
printf '{"data": {"test": "mini.jsonl"}, "prompt": "German: {de}\\nEnglish:\\n", "reference": "en", "max_new_tokens": 12, "stop": ["\\n"], "metrics": ["sacrebleu", "chrf", "rouge_l"]}' > "$tmp/mini.json"
if "$PMPD" eval -m "$tmp/q.gguf" --task "$tmp/mini.json" --methods fp16,baseline-h,baseline-l,pmpd-static --reference "$SRC/models/pmpd-tiny" -o "$tmp/ev" >/dev/null 2>&1 \
   && [ -f "$tmp/ev/results.csv" ] && [ -f "$tmp/ev/quality_vs_bits.svg" ] && [ "$(wc -l < "$tmp/ev/results.csv")" -eq 5 ]; then
  cp "$tmp/ev/results.csv" "$tmp/first.csv"
  "$PMPD" eval -m "$tmp/q.gguf" --task "$tmp/mini.json" --methods fp16,baseline-h,baseline-l,pmpd-static --reference "$SRC/models/pmpd-tiny" -o "$tmp/ev" >/dev/null 2>&1
  cut -d, -f1-6 "$tmp/first.csv" > "$tmp/a"; cut -d, -f1-6 "$tmp/ev/results.csv" > "$tmp/b"
  cmp -s "$tmp/a" "$tmp/b" && ok "eval + resume" || bad "eval rerun differs"
else
  bad "eval"
fi
# pmpd-static's default schedule (first-half-high over max_new_tokens 40: 4 bits for 19 decode
# steps) never lowers the width on a one-line translation (pmpd-tiny: 5 tokens, then the
# newline): eval says so, and not with a --schedule that switches. Its progress into a file is
# plain lines, not a terminal's carriage-return redraws
head -1 "$tmp/mini.jsonl" > "$tmp/mini1.jsonl"
sed -e 's/mini.jsonl/mini1.jsonl/' -e 's/"max_new_tokens": 12/"max_new_tokens": 40/' "$tmp/mini.json" > "$tmp/mini1.json"
"$PMPD" eval -m "$tmp/q.gguf" --task "$tmp/mini1.json" --methods pmpd-static -o "$tmp/evn" 2>"$tmp/evn.err" >/dev/null \
  && grep -q "no output got that far" "$tmp/evn.err" && ! grep -q $'\r' "$tmp/evn.err" \
  && [ "$(grep -c '^eval: 1/1' "$tmp/evn.err")" -eq 1 ] \
  && "$PMPD" eval -m "$tmp/q.gguf" --task "$tmp/mini1.json" --methods pmpd-static --schedule 4:1,3 -o "$tmp/evn" 2>"$tmp/evn.err" >/dev/null \
  && ! grep -q "no output got that far" "$tmp/evn.err" && ok "eval notes a default schedule that never switched" \
  || bad "eval note on the default schedule: $(tr '\r' '\n' < "$tmp/evn.err" | tail -3)"
# calibrate on the same mini task, then use the schedule file in run and eval
printf '{"data": {"calibration": "mini.jsonl", "test": "mini.jsonl"}, "prompt": "German: {de}\\nEnglish:\\n", "reference": "en", "max_new_tokens": 8, "stop": ["\\n"], "metrics": ["chrf"]}' > "$tmp/minical.json"
if "$PMPD" calibrate -m "$tmp/q.gguf" --task "$tmp/minical.json" --bits 2:4 --tolerance 0.2 -o "$tmp/sched.json" > "$tmp/cal.txt" 2>/dev/null \
   && python3 -c "import json; j=json.load(open('$tmp/sched.json')); assert j['format']=='pmpd.schedule.v1' and len(j['papalloc']['pairs'])==6 and j['quality']>=j['threshold']" \
   && grep -q "PAPAlloc" "$tmp/cal.txt"; then ok "calibrate"; else bad "calibrate: $(cat "$tmp/cal.txt")"; fi
json=$("$PMPD" run -m "$tmp/q.gguf" -p "A dog" -n 4 --ignore-eos --schedule "$tmp/sched.json" --json 2>/dev/null)
echo "$json" | python3 -c "import json,sys; j=json.load(sys.stdin); s=json.load(open('$tmp/sched.json')); assert j['tokens'][0]['bits']==s['prefill_bits']" \
  && ok "run --schedule file" || bad "run --schedule file: $json"
"$PMPD" eval -m "$tmp/q.gguf" --task "$tmp/minical.json" --methods pmpd-static --schedule "$tmp/sched.json" -o "$tmp/evs" >/dev/null 2>&1 \
  && grep -q "sched.json" "$tmp/evs/results.csv" && ok "eval --schedule file" || bad "eval --schedule file"
expect_error "calibrate 16-bit" "quantize it first" "$PMPD" calibrate -m "$SRC/models/pmpd-tiny" --task "$tmp/minical.json" -o "$tmp/x.json"
expect_error "calibrate split" "calibration" "$PMPD" calibrate -m "$tmp/q.gguf" --task "$tmp/mini.json" -o "$tmp/x.json"
expect_error "calibrate bits" "outside" "$PMPD" calibrate -m "$tmp/q.gguf" --task "$tmp/minical.json" --bits 1:4 -o "$tmp/x.json"
printf '{"schedule": "3"}' > "$tmp/bad_sched.json"
expect_error "bad schedule file" "prefill_bits" "$PMPD" run -m "$tmp/q.gguf" -p "A" --schedule "$tmp/bad_sched.json"
# train a learned scheduler on a few prompts of our own, then use it in run and eval
printf 'A dog runs over the green grass in the park today\nTwo men are sitting on a bench near the old river\nThe woman reads a long book in the quiet garden now\n' > "$tmp/text.txt"
for i in 1 2 3 4 5; do cat "$tmp/text.txt"; done > "$tmp/text4.txt"
if "$PMPD" train-scheduler -m "$tmp/q.gguf" --data "$tmp/text4.txt" "$tmp/minical.json" --high 4 --low 3 -n 6 --epochs 5 --max-words 8 -o "$tmp/ls.gguf" > "$tmp/ts.txt" 2>&1 \
   && [ -f "$tmp/ls.gguf.dataset" ] && grep -q "accuracy" "$tmp/ts.txt"; then ok "train-scheduler"; else bad "train-scheduler: $(cat "$tmp/ts.txt")"; fi
"$PMPD" train-scheduler -m "$tmp/q.gguf" --data "$tmp/text4.txt" "$tmp/minical.json" --high 4 --low 3 -n 6 --epochs 5 --max-words 8 -o "$tmp/ls2.gguf" --dataset "$tmp/ls.gguf.dataset" 2>&1 | grep -q "reusing" \
  && ok "train-scheduler reuses its dataset" || bad "train-scheduler dataset reuse"
json=$("$PMPD" run -m "$tmp/q.gguf" -p "A dog" -n 6 --ignore-eos --scheduler "learned:$tmp/ls.gguf" --json 2>/dev/null)
echo "$json" | python3 -c "import json,sys; j=json.load(sys.stdin); b=[t['bits'] for t in j['tokens']]; assert b[0]==4 and set(b)<={3,4} and b==sorted(b,reverse=True), b" \
  && ok "run --scheduler learned" || bad "run --scheduler learned: $json"
"$PMPD" eval -m "$tmp/q.gguf" --task "$tmp/minical.json" --methods pmpd-learned --scheduler "learned:$tmp/ls.gguf" -o "$tmp/evl" >/dev/null 2>&1 \
  && grep -q "pmpd-learned" "$tmp/evl/results.csv" && ok "eval pmpd-learned" || bad "eval pmpd-learned"
expect_error "learned needs a file" "GGUF" "$PMPD" run -m "$tmp/q.gguf" -p "A" --scheduler "learned:$tmp/sched.json"
expect_error "train-scheduler 16-bit" "quantize it first" "$PMPD" train-scheduler -m "$SRC/models/pmpd-tiny" --data "$tmp/text4.txt" -o "$tmp/x.gguf"
expect_error "eval unknown method" "unknown method" "$PMPD" eval -m "$tmp/q.gguf" --task "$tmp/mini.json" --methods best -o "$tmp/ev"
expect_error "eval fp16 without reference" "--reference" "$PMPD" eval -m "$tmp/q.gguf" --task "$tmp/mini.json" --methods fp16 -o "$tmp/ev"
expect_error "rising schedule" "non-increasing" "$PMPD" run -m "$tmp/q.gguf" -p "A" --schedule 2:4,3
expect_error "schedule on 16-bit" "quantized" "$PMPD" run -m "$SRC/models/pmpd-tiny" -p "A" --schedule 3
expect_error "bits outside file" "holds 2 to 8" "$PMPD" run -m "$tmp/q.gguf" --bits 1 -p "A dog" -n 2
expect_error "bits on 16-bit model" "quantized" "$PMPD" run -m "$FX/llama" --bits 3 -p "A" -n 2
expect_error "bad bit range" "MIN:MAX" "$PMPD" quantize -m "$FX/llama" -o "$tmp/x.gguf" --bits 5:3
"$PMPD" quantize -m "$SRC/models/pmpd-tiny" -o "$tmp/u.gguf" --method uniform --bits 4 --group 128 2>/dev/null \
  && "$PMPD" run -m "$tmp/u.gguf" -p "A dog" -n 4 >/dev/null 2>&1 && ok "uniform grouped" || bad "uniform grouped"
expect_error "bad group" "multiple of 64" "$PMPD" quantize -m "$SRC/models/pmpd-tiny" -o "$tmp/x.gguf" --method uniform --bits 4 --group 100
expect_error "uniform range" "one width" "$PMPD" quantize -m "$FX/llama" -o "$tmp/x.gguf" --method uniform --bits 2:4
expect_error "quantize quantized" "already quantized" "$PMPD" quantize -m "$tmp/q.gguf" -o "$tmp/x.gguf"
expect_error "missing calib" "cannot open" "$PMPD" quantize -m "$SRC/models/pmpd-tiny" -o "$tmp/x.gguf" --calib "$tmp/nope.txt"

[ $fails -eq 0 ] && echo "all CLI checks passed" || { echo "$fails CLI checks failed"; exit 1; }
