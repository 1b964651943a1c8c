"""How right and how fast inverse text normalization (asr/itn.py) is.

    python tools/measure_itn.py [--pairs tests/data/itn_pairs.tsv] [--ordinary tests/data/itn_ordinary.txt]
                                [--sentences 2000] [--repeat 5] [--out itn.json]

- exact match: % of the table's spoken forms whose written form is exactly the expected one,
  overall and per class (``class<TAB>spoken<TAB>written`` a line);
- ordinary sentences changed: how many of the list (one a line) do not come back unchanged;
- cost: CPU ms per sentence of 20 words, on one core (the process is pinned to one where the
  system allows), the best of ``--repeat`` passes over ``--sentences`` sentences, for three
  mixes: words of the table and the list shuffled together ("mixed"), of the table's spoken
  forms only ("numbers"), of the ordinary list only ("ordinary"). Deterministic (seed 0).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from asr.itn import inverse_normalize  # noqa: E402

WORDS_PER_SENTENCE = 20


def read_pairs(path: str) -> list[tuple[str, str, str]]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 3:
                raise ValueError(f"{path}:{lineno}: expected class<TAB>spoken<TAB>written, got {line!r}")
            rows.append((parts[0], parts[1], parts[2]))
    return rows


def read_ordinary(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip() and not line.startswith("#")]


def sentences(texts: list[str], n: int, seed: int = 0) -> list[str]:
    """``n`` sentences of :data:`WORDS_PER_SENTENCE` words: the texts shuffled, joined, cut."""
    rng = random.Random(seed)
    words: list[str] = []
    while len(words) < n * WORDS_PER_SENTENCE:
        batch = list(texts)
        rng.shuffle(batch)
        words += " ".join(batch).split()
    return [" ".join(words[i * WORDS_PER_SENTENCE:(i + 1) * WORDS_PER_SENTENCE]) for i in range(n)]


def cost_ms(fn, items, repeat: int) -> float:
    """CPU ms per item of ``fn(item)``, the best of ``repeat`` passes (tools/measure_punctuation.py too)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for x in items:
            fn(x)
        best = min(best, time.process_time() - t0)
    return 1000 * best / len(items)


def measure(pairs_path: str, ordinary_path: str, n: int = 2000, repeat: int = 5) -> dict:
    pairs = read_pairs(pairs_path)
    ordinary = read_ordinary(ordinary_path)
    wrong = [(c, s, w, inverse_normalize(s)) for c, s, w in pairs if inverse_normalize(s) != w]
    classes: dict[str, list[int]] = {}
    for c, s, w in pairs:
        right, total = classes.setdefault(c, [0, 0])
        classes[c] = [right + (inverse_normalize(s) == w), total + 1]
    changed = [(s, inverse_normalize(s)) for s in ordinary if inverse_normalize(s) != s]
    spoken = [s for _, s, _ in pairs]
    cost = {name: round(cost_ms(inverse_normalize, sentences(texts, n), repeat), 4)
            for name, texts in (("mixed", spoken + ordinary), ("numbers", spoken), ("ordinary", ordinary))}
    return {
        "pairs": len(pairs),
        "exact_match_percent": round(100 * (len(pairs) - len(wrong)) / len(pairs), 2),
        "per_class_percent": {c: round(100 * r / t, 1) for c, (r, t) in sorted(classes.items())},
        "wrong": [{"class": c, "spoken": s, "expected": w, "got": g} for c, s, w, g in wrong],
        "ordinary_sentences": len(ordinary),
        "ordinary_changed": [{"spoken": s, "got": g} for s, g in changed],
        "words_per_sentence": WORDS_PER_SENTENCE,
        "sentences_timed": n,
        "ms_per_sentence": cost,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", default=os.path.join(ROOT, "tests", "data", "itn_pairs.tsv"),
                   help="class<TAB>spoken<TAB>written table (default tests/data/itn_pairs.tsv)")
    p.add_argument("--ordinary", default=os.path.join(ROOT, "tests", "data", "itn_ordinary.txt"),
                   help="sentences that must come back unchanged, one a line (default tests/data/itn_ordinary.txt)")
    p.add_argument("--sentences", type=int, default=2000, help="20-word sentences timed per mix (default 2000)")
    p.add_argument("--repeat", type=int, default=5, help="timed passes; the best counts (default 5)")
    p.add_argument("--out", help="also write the report here (JSON)")
    args = p.parse_args(argv)
    report = measure(args.pairs, args.ordinary, args.sentences, args.repeat)
    for row in report["wrong"]:
        print(f"wrong ({row['class']}): {row['spoken']!r} -> {row['got']!r}, expected {row['expected']!r}")
    for row in report["ordinary_changed"]:
        print(f"changed: {row['spoken']!r} -> {row['got']!r}")
    print(f"exact match: {report['exact_match_percent']}% of {report['pairs']} pairs "
          f"({', '.join(f'{c} {v}%' for c, v in report['per_class_percent'].items())})")
    print(f"ordinary sentences changed: {len(report['ordinary_changed'])} of {report['ordinary_sentences']}")
    print("CPU ms per 20-word sentence, one core: " + ", ".join(f"{k} {v}" for k, v in report["ms_per_sentence"].items()))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    if hasattr(os, "sched_setaffinity"):  # one core (not when imported: a test's process keeps its cores)
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    sys.exit(main())
