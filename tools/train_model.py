#!/usr/bin/env python3
"""Trains one of pmpd's own Llama-architecture models from scratch (GPU machine).

  python3 tools/train_model.py --corpus DIR --size small|large --out models/pmpd-tiny

DIR is what tools/prepare_corpus.py writes. Steps: train a BPE tokenizer (Llama layout:
U+2581 spaces, byte fallback) on the training split; pack documents as
<s> text </s> into 256-token rows; train LlamaForCausalLM with AdamW (bf16 autocast),
warm-up then cosine decay, checkpointing every 500 steps to --ckpt (a rerun resumes
from it); save the Hugging Face layout (config.json, model.safetensors in bf16,
tokenizer.json, tokenizer_config.json, generation_config.json); then measure, on the
saved checkpoint loaded fresh in f32: held-out perplexity, unigram/bigram baselines,
Multi30k test SacreBLEU/chrF (greedy) and the copy-the-German baseline, definition-task
SacreBLEU/chrF, greedy reference ids for pmpd's tests, and samples. Everything measured
goes to OUT/training.json.
"""
import argparse
import json
import math
import os
import time

import torch

SIZES = {  # dim, layers, heads, ffn, vocab, steps, lr, batch rows
    "small": dict(dim=256, layers=4, heads=4, ffn=688, vocab=4096, steps=1500, lr=2e-3, batch=128),
    "large": dict(dim=384, layers=8, heads=6, ffn=1024, vocab=4096, steps=1200, lr=1.2e-3, batch=128),
}
SEQ = 256


def read_docs(path):
    return [json.loads(l)["text"] for l in open(path, encoding="utf-8")]


def train_tokenizer(texts, vocab_size, out):
    from tokenizers import Tokenizer, decoders, models, normalizers, processors, trainers
    base = Tokenizer(models.BPE(unk_token="<unk>"))
    norm = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    base.normalizer = norm
    # Newlines stay out of the merges (they become the byte token <0x0A>), so prompts
    # that end in a newline split exactly where training text does.
    base.train_from_iterator((t.replace("\n", " ") for t in texts), trainers.BpeTrainer(vocab_size=vocab_size - 259, special_tokens=["<unk>"],
                                                        limit_alphabet=200, show_progress=False))
    bj = json.loads(base.to_str())
    vocab = {t: i for i, t in enumerate(["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)])}
    for tok, _ in sorted(bj["model"]["vocab"].items(), key=lambda kv: kv[1]):
        vocab.setdefault(tok, len(vocab))
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in bj["model"]["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = norm
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tok.save(f"{out}/tokenizer.json")
    json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True,
               "model_max_length": 512, "tokenizer_class": "LlamaTokenizerFast"},
              open(f"{out}/tokenizer_config.json", "w"), indent=1)
    return tok


def encode_docs(tok, texts):
    return [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]


def pack(docs):
    flat = []
    for ids in docs:
        flat += [1] + ids + [2]
    n = len(flat) // (SEQ + 1)
    return torch.tensor(flat[: n * (SEQ + 1)]).view(n, SEQ + 1)


def ngram_baselines(train_docs, test_docs, V):
    """Perplexity of add-one unigram and interpolated bigram models on the test docs."""
    import numpy as np
    uni = np.ones(V)
    big = {}
    for ids in train_docs:
        seq = [1] + ids + [2]
        for a, b in zip(seq[:-1], seq[1:]):
            uni[b] += 1
            big.setdefault(a, {}).setdefault(b, 0)
            big[a][b] += 1
    p_uni = uni / uni.sum()
    tot = {a: sum(d.values()) for a, d in big.items()}
    nll_u = nll_b = n = 0.0
    for ids in test_docs:
        seq = [1] + ids + [2]
        for a, b in zip(seq[:-1], seq[1:]):
            nll_u -= math.log(p_uni[b])
            pb = big.get(a, {}).get(b, 0) / tot[a] if a in tot else 0.0
            nll_b -= math.log(0.7 * pb + 0.3 * p_uni[b])
            n += 1
    return math.exp(nll_u / n), math.exp(nll_b / n)


@torch.no_grad()
def perplexity(model, docs, dev):
    nll, n = 0.0, 0
    for i in range(0, len(docs), 64):
        batch = [[1] + d + [2] for d in docs[i:i + 64]]
        L = max(len(b) for b in batch)
        x = torch.zeros(len(batch), L, dtype=torch.long)
        m = torch.zeros(len(batch), L, dtype=torch.long)
        for j, b in enumerate(batch):
            x[j, :len(b)] = torch.tensor(b)
            m[j, :len(b)] = 1
        x, m = x.to(dev), m.to(dev)
        logits = model(x, attention_mask=m).logits[:, :-1].float()
        lp = torch.log_softmax(logits, -1).gather(-1, x[:, 1:, None])[..., 0]
        nll -= (lp * m[:, 1:]).sum().item()
        n += m[:, 1:].sum().item()
    return math.exp(nll / n)


@torch.no_grad()
def greedy_batch(model, tok, prompts, dev, max_new=64, stop="\n"):
    """Greedy continuations, cut at `stop` or </s>. Prompts are batched by token length,
    so no padding (and no question of padded positions) is involved."""
    enc = [[1] + tok.encode(p, add_special_tokens=False).ids for p in prompts]
    outs = [None] * len(prompts)
    by_len = {}
    for i, e in enumerate(enc):
        by_len.setdefault(len(e), []).append(i)
    for idx in by_len.values():
        for k in range(0, len(idx), 256):
            chunk = idx[k:k + 256]
            x = torch.tensor([enc[i] for i in chunk], device=dev)
            g = model.generate(x, max_new_tokens=max_new, do_sample=False, pad_token_id=0, eos_token_id=2)
            for i, row in zip(chunk, g[:, x.shape[1]:].tolist()):
                ids = row[: row.index(2)] if 2 in row else row
                outs[i] = tok.decode(ids).split(stop)[0].strip()
    return outs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--size", choices=SIZES, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--ckpt", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--minutes", type=float, default=8.0, help="stop training after this long")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    import sacrebleu
    import transformers as T

    cfg = SIZES[a.size]
    steps = a.steps or cfg["steps"]
    os.makedirs(a.out, exist_ok=True)
    ckpt = a.ckpt or a.out + ".ckpt"
    torch.manual_seed(a.seed)
    dev = "cuda"
    t0 = time.time()
    train_texts = read_docs(f"{a.corpus}/train.jsonl")
    tok = train_tokenizer(train_texts, cfg["vocab"], a.out)
    train_docs = encode_docs(tok, train_texts)
    valid_docs = encode_docs(tok, read_docs(f"{a.corpus}/valid.jsonl"))
    test_docs = encode_docs(tok, read_docs(f"{a.corpus}/test.jsonl"))
    data = pack(train_docs)
    vdata = pack(valid_docs)
    print(f"tokenized in {time.time() - t0:.0f}s: {data.numel()} train tokens, {vdata.numel()} valid tokens", flush=True)

    mc = T.LlamaConfig(vocab_size=len(tok.get_vocab()), hidden_size=cfg["dim"], intermediate_size=cfg["ffn"],
                       num_hidden_layers=cfg["layers"], num_attention_heads=cfg["heads"],
                       num_key_value_heads=cfg["heads"], max_position_embeddings=512, rms_norm_eps=1e-5,
                       rope_theta=10000.0, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
                       initializer_range=0.02)
    model = T.LlamaForCausalLM(mc).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    warm = 200
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))))
    start, curve, best = 0, [], (float("inf"), 0, None)
    if os.path.exists(f"{ckpt}/state.pt"):
        st = torch.load(f"{ckpt}/state.pt", map_location=dev)
        model.load_state_dict(st["model"]); opt.load_state_dict(st["opt"]); sched.load_state_dict(st["sched"])
        start, curve = st["step"], st["curve"]
        print(f"resumed at step {start}", flush=True)
    gen = torch.Generator().manual_seed(a.seed)
    order = torch.randperm(len(data), generator=gen)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params / 1e6:.2f}M parameters", flush=True)
    t_train = time.time()
    step = start
    for step in range(start, steps):
        idx = order[(torch.arange(cfg["batch"]) + step * cfg["batch"]) % len(data)]
        batch = data[idx].to(dev)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(batch[:, :-1]).logits.float()
            loss = torch.nn.functional.cross_entropy(logits.view(-1, mc.vocab_size), batch[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(); sched.step(); opt.zero_grad(set_to_none=True)
        if (step + 1) % 250 == 0 or step + 1 == steps:
            model.eval()
            with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
                vb = vdata[:256].to(dev)
                vl = torch.nn.functional.cross_entropy(model(vb[:, :-1]).logits.float().view(-1, mc.vocab_size),
                                                       vb[:, 1:].reshape(-1)).item()
            model.train()
            if vl < best[0]:  # early stopping: keep the weights with the best validation loss
                best = (vl, step + 1, {k: v.detach().clone() for k, v in model.state_dict().items()})
            curve.append({"step": step + 1, "train_loss": round(loss.item(), 4), "valid_loss": round(vl, 4),
                          "seconds": round(time.time() - t_train, 1)})
            print(curve[-1], flush=True)
        if (step + 1) % 500 == 0:
            os.makedirs(ckpt, exist_ok=True)
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                        "step": step + 1, "curve": curve}, f"{ckpt}/state.pt")
        if time.time() - t_train > a.minutes * 60:
            print(f"time budget reached at step {step + 1}", flush=True)
            break
    trained_steps = step + 1
    if best[2] is not None:
        model.load_state_dict(best[2])
        print(f"kept step {best[1]} (best validation loss {best[0]:.4f})", flush=True)
    model.to(torch.bfloat16).save_pretrained(a.out)
    model.generation_config.save_pretrained(a.out)

    # Everything below measures the saved checkpoint as a user loads it.
    model = T.AutoModelForCausalLM.from_pretrained(a.out, dtype=torch.float32).to(dev).eval()
    res = {"size": a.size, "parameters": n_params, "config": cfg, "steps": trained_steps, "kept_step": best[1], "seq_len": SEQ,
           "train_tokens_seen": trained_steps * cfg["batch"] * SEQ, "train_tokens": data.numel(),
           "train_seconds": round(time.time() - t_train, 1), "loss_curve": curve,
           "torch": torch.__version__, "transformers": T.__version__}
    res["test_perplexity"] = perplexity(model, test_docs, dev)
    res["valid_perplexity"] = perplexity(model, valid_docs, dev)
    res["unigram_perplexity"], res["bigram_perplexity"] = ngram_baselines(train_docs, test_docs, mc.vocab_size)
    tr = [json.loads(l) for l in open(f"{a.corpus}/translate.test.jsonl", encoding="utf-8")]
    hyp = greedy_batch(model, tok, [f"German: {p['de']}\nEnglish:\n" for p in tr], dev)
    refs = [[p["en"] for p in tr]]
    bleu = sacrebleu.BLEU()
    res["multi30k_test"] = {"sacrebleu": bleu.corpus_score(hyp, refs).score,
                            "chrf": sacrebleu.corpus_chrf(hyp, refs).score,
                            "copy_source_sacrebleu": sacrebleu.corpus_bleu([p["de"] for p in tr], refs).score,
                            "copy_source_chrf": sacrebleu.corpus_chrf([p["de"] for p in tr], refs).score,
                            "signature": str(bleu.get_signature()), "examples": hyp[:5]}
    df = [json.loads(l) for l in open(f"{a.corpus}/define.test.jsonl", encoding="utf-8")]
    dh = greedy_batch(model, tok, [f"Word: {d['word']}\nDefinition:\n" for d in df], dev)
    res["define_test"] = {"sacrebleu": sacrebleu.corpus_bleu(dh, [[d["definition"] for d in df]]).score,
                          "chrf": sacrebleu.corpus_chrf(dh, [[d["definition"] for d in df]]).score,
                          "examples": [{"word": d["word"], "model": h, "reference": d["definition"]}
                                       for d, h in zip(df[:5], dh[:5])]}
    # Greedy reference ids for pmpd's token-for-token test.
    refs_ids = []
    for p in ["German: Ein Hund läuft über eine Wiese.\nEnglish:\n", "Word: river\nDefinition:\n", "A little girl"]:
        ids = [1] + tok.encode(p, add_special_tokens=False).ids
        g = model.generate(torch.tensor([ids], device=dev), max_new_tokens=32, do_sample=False, pad_token_id=0,
                           eos_token_id=2)
        refs_ids.append({"prompt": p, "prompt_ids": ids, "generated_ids": g[0, len(ids):].tolist(),
                         "text": tok.decode(g[0, len(ids):].tolist())})
    res["greedy_references"] = refs_ids
    json.dump(res, open(f"{a.out}/training.json", "w", encoding="utf-8"), indent=1, ensure_ascii=False)
    print(json.dumps({k: v for k, v in res.items() if k not in ("loss_curve", "greedy_references")}, indent=1,
                     ensure_ascii=False))


if __name__ == "__main__":
    main()
