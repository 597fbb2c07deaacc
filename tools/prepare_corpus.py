#!/usr/bin/env python3
"""Prepares the training corpus and task splits of pmpd's own models, deterministically.

Sources (no network beyond Debian's archive):
  - WordNet 3.0 (Debian package wordnet-base; the WordNet 3.0 licence, a permissive
    BSD-style licence: use, copy, modify and distribute for any purpose, notice kept),
    fetched with `apt-get download` and unpacked with `dpkg -x`: word -> definition
    pairs and the example sentences of its glosses;
  - Multi30k German->English (../shared/data/multi30k): train split for training,
    val for calibration, test for reporting.

Writes into --out (ignored by git; only this script is committed):
  train.jsonl, valid.jsonl, test.jsonl   documents {"text": ...} of the training mix
  define.{train,val,test}.jsonl         {"word", "definition"} (split by hash of the word)
  translate.{val,test}.jsonl            {"de", "en"} (Multi30k val and test)
  stats.json                            counts per source and split

Usage: python3 tools/prepare_corpus.py --shared ../shared --out data/corpus
"""
import argparse
import glob
import hashlib
import json
import os
import random
import subprocess
import tempfile


def wordnet_dir(cache):
    """Unpacks wordnet-base from Debian's archive (or reuses an earlier unpack)."""
    target = os.path.join(cache, "wordnet")
    data = os.path.join(target, "usr/share/wordnet")
    if os.path.exists(os.path.join(data, "data.noun")):
        return data
    os.makedirs(target, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", "wordnet-base"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        deb = glob.glob(os.path.join(tmp, "wordnet-base_*.deb"))[0]
        subprocess.run(["dpkg", "-x", deb, target], check=True)
    return data


def read_wordnet(data):
    """(word, definition, [examples]) for every synset's first lemma."""
    entries = []
    for pos in ["noun", "verb", "adj", "adv"]:
        with open(os.path.join(data, "data." + pos), encoding="latin-1") as f:
            for line in f:
                if line.startswith("  "):  # licence header
                    continue
                head, _, gloss = line.partition(" | ")
                fields = head.split()
                word = fields[4].replace("_", " ")
                if "(" in word:  # adjective markers such as "(a)"
                    word = word[:word.index("(")]
                parts = [p.strip() for p in gloss.strip().split(";")]
                definition = parts[0]
                examples = [p.strip('"') for p in parts[1:] if p.startswith('"') and p.endswith('"')]
                if definition and word.isascii():
                    entries.append((word, definition, examples))
    return entries


def split_of(key):
    """Deterministic 96/2/2 split by hash of the key."""
    h = int(hashlib.sha256(key.encode()).hexdigest(), 16) % 100
    return "test" if h < 2 else "val" if h < 4 else "train"


# The answer starts after a newline: a newline is a byte-fallback token that never
# merges, so a prompt that ends with the template's "\n" tokenizes exactly as in training.
def define_doc(word, definition):
    return f"Word: {word}\nDefinition:\n{definition}"


def translate_doc(de, en):
    return f"German: {de}\nEnglish:\n{en}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--out", default="data/corpus")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rnd = random.Random(1234)

    docs = {"train": [], "valid": [], "test": []}
    tasks = {f"define.{s}": [] for s in ["train", "val", "test"]}
    stats = {}
    for word, definition, examples in read_wordnet(wordnet_dir(a.out)):
        s = split_of(word)
        tasks[f"define.{s}"].append({"word": word, "definition": definition})
        docs["valid" if s == "val" else s].append(define_doc(word, definition))
        for ex in examples:
            docs["valid" if s == "val" else s].append(ex[0].upper() + ex[1:] + ("" if ex.endswith((".", "!", "?")) else "."))
    stats["wordnet_entries"] = sum(len(v) for k, v in tasks.items())

    mm = os.path.join(a.shared, "data/multi30k")
    def lines(name):
        return open(os.path.join(mm, name), encoding="utf-8").read().splitlines()
    for de, en in zip(lines("train.de"), lines("train.en")):
        docs["train"].append(translate_doc(de, en))
        docs["train"].append(en)
    for split, out in [("val", "valid"), ("test", "test")]:
        pairs = [{"de": de, "en": en} for de, en in zip(lines(f"{split}.de"), lines(f"{split}.en"))]
        tasks[f"translate.{split}"] = pairs
        docs[out] += [translate_doc(p["de"], p["en"]) for p in pairs]

    for split, items in docs.items():
        rnd.shuffle(items)
        with open(os.path.join(a.out, f"{split}.jsonl"), "w", encoding="utf-8") as f:
            for t in items:
                f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
        stats[f"{split}_documents"] = len(items)
    for name, items in tasks.items():
        with open(os.path.join(a.out, f"{name}.jsonl"), "w", encoding="utf-8") as f:
            for it in items:
                f.write(json.dumps(it, ensure_ascii=False) + "\n")
        stats[name] = len(items)
    json.dump(stats, open(os.path.join(a.out, "stats.json"), "w"), indent=1)
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
