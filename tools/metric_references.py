#!/usr/bin/env python3
"""Reference values of the metrics pmpd implements, computed with sacrebleu (and
rouge-score when installed) on tools/metric_pairs.json; writes tests/fixtures/metric_references.json.
Run on the GPU machine, which has sacrebleu: python3 tools/metric_references.py"""
import json
import os

import sacrebleu
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

HERE = os.path.dirname(os.path.abspath(__file__))
pairs = json.load(open(f"{HERE}/metric_pairs.json", encoding="utf-8"))
hyps, refs = pairs["hyps"], pairs["refs"]
tok = Tokenizer13a()
out = {"sacrebleu_version": sacrebleu.__version__,
       "tokenized_13a": [tok(s) for s in hyps + refs[0] + refs[1]],
       "tokenized_inputs": hyps + refs[0] + refs[1]}
b = sacrebleu.corpus_bleu(hyps, refs)
out["sacrebleu_two_refs"] = {"score": b.score, "precisions": b.precisions, "bp": b.bp, "sys_len": b.sys_len, "ref_len": b.ref_len}
b1 = sacrebleu.corpus_bleu(hyps, refs[:1])
out["sacrebleu_one_ref"] = {"score": b1.score, "precisions": b1.precisions, "bp": b1.bp, "sys_len": b1.sys_len, "ref_len": b1.ref_len}
bn = sacrebleu.corpus_bleu(hyps, refs[:1], tokenize="none", smooth_method="none")
out["bleu_plain_one_ref"] = {"score": bn.score, "precisions": bn.precisions, "bp": bn.bp}
out["chrf_two_refs"] = sacrebleu.corpus_chrf(hyps, refs).score
out["chrf_one_ref"] = sacrebleu.corpus_chrf(hyps, refs[:1]).score
out["chrf_per_sentence"] = [sacrebleu.sentence_chrf(h, [r]).score for h, r in zip(hyps, refs[0])]
try:
    from rouge_score import rouge_scorer
    sc = rouge_scorer.RougeScorer(["rougeL"])
    out["rouge_l_f1"] = [sc.score(r, h)["rougeL"].fmeasure for h, r in zip(hyps, refs[0])]
except ImportError:
    out["rouge_l_f1"] = None
json.dump(out, open(f"{HERE}/../tests/fixtures/metric_references.json", "w", encoding="utf-8"), ensure_ascii=False, indent=1)
print(json.dumps({k: v for k, v in out.items() if not k.startswith("tokenized")}, indent=1))
