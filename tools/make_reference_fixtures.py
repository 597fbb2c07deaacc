#!/usr/bin/env python3
"""Makes the reference fixtures that pmpd's tests compare against.

Runs on the GPU machine (it has PyTorch, transformers, tokenizers, sentencepiece):
  python3 tools/make_reference_fixtures.py --corpus CORPUS.txt --stories PATH/stories260K.bin --out DIR

Writes into DIR:
  tok_spm_json/     tokenizer.json, Llama layout (U+2581 spaces, byte fallback), trained here
  tok_bytelevel/    tokenizer.json, GPT-2 byte-level layout, trained here
  tok_spm_model/    tokenizer.model, SentencePiece BPE with byte fallback, trained here
  tokenizer_ids.json   ids of tools/tokenizer_strings.json under each tokenizer, from
                       transformers (tokenizer.json) and sentencepiece (tokenizer.model)
  llama/ phi/ stablelm/  random-weight transformers checkpoints (safetensors; llama bf16 and
                       sharded, phi f16, stablelm f32) with tokenizer files
  <arch>_reference.json  prompt ids, greedy ids and logits computed by transformers in f32
  stories260K_reference.json  the same for ../shared/models/stories260K (a PyTorch port of
                       llama2.c's forward pass, below)
"""
import argparse
import json
import os
import struct

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def train_tokenizers(corpus, out):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers, processors
    import sentencepiece as spm

    lines = open(corpus, encoding="utf-8").read().splitlines()
    # Llama layout: train plain BPE on U+2581-normalised text, then rebuild the vocab
    # with <unk>, <s>, </s> and the 256 byte-fallback tokens first, as Llama's has.
    base = Tokenizer(models.BPE(unk_token="<unk>"))
    base.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    base.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=700, special_tokens=["<unk>"], limit_alphabet=150))
    bj = json.loads(base.to_str())
    specials = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    vocab = {t: i for i, t in enumerate(specials)}
    for tok, _ in sorted(bj["model"]["vocab"].items(), key=lambda kv: kv[1]):
        if tok not in vocab:
            vocab[tok] = len(vocab)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in bj["model"]["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    os.makedirs(f"{out}/tok_spm_json", exist_ok=True)
    tok.save(f"{out}/tok_spm_json/tokenizer.json")
    json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True,
               "tokenizer_class": "LlamaTokenizerFast"}, open(f"{out}/tok_spm_json/tokenizer_config.json", "w"))

    # GPT-2 / NeoX byte-level layout.
    bl = Tokenizer(models.BPE())
    bl.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    bl.decoder = decoders.ByteLevel()
    bl.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=700, special_tokens=["<|endoftext|>"],
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    os.makedirs(f"{out}/tok_bytelevel", exist_ok=True)
    bl.save(f"{out}/tok_bytelevel/tokenizer.json")
    json.dump({"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "add_bos_token": False,
               "tokenizer_class": "GPT2TokenizerFast"}, open(f"{out}/tok_bytelevel/tokenizer_config.json", "w"))

    # SentencePiece's own BPE with byte fallback and identity normalisation (Llama's settings).
    os.makedirs(f"{out}/tok_spm_model", exist_ok=True)
    spm.SentencePieceTrainer.train(input=corpus, model_prefix=f"{out}/tok_spm_model/tokenizer", model_type="bpe",
                                   vocab_size=700, byte_fallback=True, normalization_rule_name="identity",
                                   remove_extra_whitespaces=False, split_digits=True, character_coverage=0.9995,
                                   input_sentence_size=200000, shuffle_input_sentence=False, num_threads=8)
    os.remove(f"{out}/tok_spm_model/tokenizer.vocab")


def tokenizer_ids(out):
    from transformers import PreTrainedTokenizerFast
    import sentencepiece as spm

    strings = json.load(open(f"{HERE}/tokenizer_strings.json", encoding="utf-8"))
    res = {"strings": strings}
    for name in ["tok_spm_json", "tok_bytelevel"]:
        t = PreTrainedTokenizerFast(tokenizer_file=f"{out}/{name}/tokenizer.json")
        res[name] = [t.encode(s, add_special_tokens=False) for s in strings]
    sp = spm.SentencePieceProcessor(model_file=f"{out}/tok_spm_model/tokenizer.model")
    res["tok_spm_model"] = [sp.encode(s) for s in strings]
    json.dump(res, open(f"{out}/tokenizer_ids.json", "w", encoding="utf-8"), ensure_ascii=False)


def make_model(arch, out, tok_dir, vocab):
    import shutil
    import transformers as T

    torch.manual_seed({"llama": 1, "phi": 2, "stablelm": 3}[arch])
    common = dict(vocab_size=vocab, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                  max_position_embeddings=256, initializer_range=0.15)
    if arch == "llama":
        cfg = T.LlamaConfig(intermediate_size=160, num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0,
                            tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, **common)
        model, save_dtype = T.LlamaForCausalLM(cfg), torch.bfloat16
    elif arch == "phi":
        cfg = T.PhiConfig(intermediate_size=256, partial_rotary_factor=0.5, hidden_act="gelu_new", layer_norm_eps=1e-5,
                          rope_theta=10000.0, tie_word_embeddings=False, bos_token_id=0, eos_token_id=0, **common)
        model, save_dtype = T.PhiForCausalLM(cfg), torch.float16
    else:
        cfg = T.StableLmConfig(intermediate_size=160, num_key_value_heads=2, partial_rotary_factor=0.25,
                               use_qkv_bias=True, layer_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True,
                               bos_token_id=0, eos_token_id=0, **common)
        model, save_dtype = T.StableLmForCausalLM(cfg), torch.float32
    model.eval()
    # Norm weights away from 1 and biases away from 0, so a mistake in either shows.
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n and n.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif n.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
    d = f"{out}/{arch}"
    model.to(save_dtype).save_pretrained(d, max_shard_size="150KB" if arch == "llama" else "50MB")
    for f in os.listdir(tok_dir):
        shutil.copy(f"{tok_dir}/{f}", d)
    # The reference is what a user gets: the saved checkpoint loaded fresh in f32
    # (converting the live model back would keep rotary tables rounded to 16 bits).
    model = T.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()

    g = torch.Generator().manual_seed(7)
    prompt = torch.randint(3, vocab, (1, 40), generator=g)
    with torch.no_grad():
        full = model(prompt).logits[0]
        gen = model.generate(prompt, max_new_tokens=16, min_new_tokens=16, do_sample=False, output_logits=True,
                             return_dict_in_generate=True, pad_token_id=0)
    ids = gen.sequences[0, 40:].tolist()
    steps = [l[0].tolist() for l in gen.logits]
    ref = {"arch": arch, "prompt_ids": prompt[0].tolist(), "generated_ids": ids,
           "prompt_logits_first": full[0].tolist(), "logits": steps,
           "transformers": T.__version__, "torch": torch.__version__, "saved_dtype": str(save_dtype)}
    json.dump(ref, open(f"{out}/{arch}_reference.json", "w"))
    print(arch, "config:", open(f"{d}/config.json").read())


def stories_reference(path, out):
    """llama2.c's forward pass in PyTorch, f32, greedy."""
    raw = open(path, "rb").read()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack("7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    w = np.frombuffer(raw[28:], dtype=np.float32)
    hs = dim // n_heads
    kv_dim = hs * n_kv
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        t = torch.tensor(w[off:off + n].reshape(shape))
        off += n
        return t

    emb = take(vocab, dim); att_n = take(n_layers, dim); wq = take(n_layers, dim, dim); wk = take(n_layers, kv_dim, dim)
    wv = take(n_layers, kv_dim, dim); wo = take(n_layers, dim, dim); ffn_n = take(n_layers, dim)
    w1 = take(n_layers, hidden, dim); w2 = take(n_layers, dim, hidden); w3 = take(n_layers, hidden, dim)
    fin = take(dim); take(seq_len, hs // 2); take(seq_len, hs // 2)
    wcls = emb if shared else take(vocab, dim)

    def rms(x, g):
        return g * (x / torch.sqrt((x * x).mean(-1, keepdim=True) + 1e-5))

    def rope(x, pos):  # x: [T, heads, hs], interleaved pairs
        freq = 1.0 / (10000.0 ** (torch.arange(0, hs, 2, dtype=torch.float32) / hs))
        ang = pos[:, None].float() * freq[None, :]
        c, s = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        out = torch.empty_like(x)
        out[..., 0::2] = x0 * c - x1 * s
        out[..., 1::2] = x0 * s + x1 * c
        return out

    def forward(tokens):
        T_ = len(tokens)
        x = emb[torch.tensor(tokens)]
        pos = torch.arange(T_)
        mask = torch.full((T_, T_), float("-inf")).triu(1)
        for l in range(n_layers):
            h = rms(x, att_n[l])
            q = rope((h @ wq[l].T).view(T_, n_heads, hs), pos)
            k = rope((h @ wk[l].T).view(T_, n_kv, hs), pos).repeat_interleave(n_heads // n_kv, dim=1)
            v = (h @ wv[l].T).view(T_, n_kv, hs).repeat_interleave(n_heads // n_kv, dim=1)
            att = torch.einsum("thd,shd->hts", q, k) / hs ** 0.5 + mask
            o = torch.einsum("hts,shd->thd", att.softmax(-1), v).reshape(T_, dim)
            x = x + o @ wo[l].T
            h = rms(x, ffn_n[l])
            x = x + (torch.nn.functional.silu(h @ w1[l].T) * (h @ w3[l].T)) @ w2[l].T
        return rms(x, fin) @ wcls.T

    prompt = [1, 403, 407, 261, 378, 1000 % vocab, 268, 297, 300, 410]
    seq = list(prompt)
    steps = []
    with torch.no_grad():
        for _ in range(32):
            logits = forward(seq)[-1]
            steps.append(logits.tolist())
            seq.append(int(logits.argmax()))
    json.dump({"prompt_ids": prompt, "generated_ids": seq[len(prompt):], "logits": steps},
              open(f"{out}/stories260K_reference.json", "w"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus")
    ap.add_argument("--stories")
    ap.add_argument("--out", required=True)
    ap.add_argument("--models-only", action="store_true", help="reuse the tokenizers already in --out")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(8)
    if not a.models_only:
        stories_reference(a.stories, a.out)
        train_tokenizers(a.corpus, a.out)
        tokenizer_ids(a.out)
    from tokenizers import Tokenizer
    v_spm = Tokenizer.from_file(f"{a.out}/tok_spm_json/tokenizer.json").get_vocab_size()
    v_bl = Tokenizer.from_file(f"{a.out}/tok_bytelevel/tokenizer.json").get_vocab_size()
    import traceback
    for arch, tok, v in [("llama", "tok_spm_json", v_spm), ("phi", "tok_bytelevel", v_bl),
                         ("stablelm", "tok_bytelevel", v_bl)]:
        try:
            make_model(arch, a.out, f"{a.out}/{tok}", v)
        except Exception:  # keep the other fixtures if one architecture fails
            traceback.print_exc()


if __name__ == "__main__":
    main()
