"""How right and how fast the punctuation tagger (asr/punctuation.py) is, with ITN beside it.

    python tools/measure_punctuation.py [--model FILE] [--data data/punctuation] [--sentences 2000]
                                        [--repeat 5] [--out punctuation.json]

- accuracy: F1 of each mark (comma, period, question mark) and the share of words with the
  right case, on every ``test_*.txt`` of ``--data`` (punctuated text, one example a line: the
  held-out sources of recipes/punctuation) and on all of them together; the tagger is given
  the lower-case words, as a recognizer writes them (:func:`asr.punctuation.evaluate`);
- cost: CPU ms per sentence of 20 words on one core (the process is pinned to one where the
  system allows), the best of ``--repeat`` passes over ``--sentences`` sentences: the tagger
  alone, ITN alone, and both as ``--punctuate --itn`` run them, on text and on timed words
  (``TextOptions.apply`` on an utterance). The sentences are the test files' words, lower
  case, with the spoken forms of tests/data/itn_pairs.tsv mixed in so that ITN has work;
  deterministic (seed 0);
- the model file's size and its vocabulary size.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tools"))  # measure_itn: its sentence mixer and timer

from measure_itn import WORDS_PER_SENTENCE, cost_ms, read_pairs  # noqa: E402
from measure_itn import sentences as mixed_sentences  # noqa: E402

from asr.decoding.result import Utterance, Word  # noqa: E402
from asr.itn import TextOptions, inverse_normalize  # noqa: E402
from asr.punctuation import DEFAULT_MODEL, Punctuator, evaluate, read_examples  # noqa: E402


def sentences(paths: list[str], itn_pairs: str, n: int, seed: int = 0) -> list[str]:
    """``n`` lower-case sentences of 20 words: the examples of ``paths`` and the spoken forms
    of ``itn_pairs``, shuffled, joined and cut (as tools/measure_itn.py cuts its own)."""
    texts = [" ".join(words) for p in paths for words, _, _ in read_examples(p)]
    if os.path.isfile(itn_pairs):
        texts += [spoken for _, spoken, _ in read_pairs(itn_pairs)]
    return mixed_sentences(texts, n, seed)


def measure(model: str, data: str, n: int = 2000, repeat: int = 5) -> dict:
    paths = sorted(glob.glob(os.path.join(data, "test_*.txt")))
    if not paths:
        raise FileNotFoundError(f"{data}: no test_*.txt files (build them with recipes/punctuation/run.sh --stage 1)")
    p = Punctuator(model)
    scores = evaluate(p, paths)
    texts = sentences(paths, os.path.join(ROOT, "tests", "data", "itn_pairs.tsv"), n)
    utts = [Utterance(t, 0.0, 10.0, [Word(w, 0.5 * i, 0.5 * i + 0.4, 0.9) for i, w in enumerate(t.split())]) for t in texts]
    both = TextOptions(itn=True, punctuate=True, punctuation_model=model)
    cost = {
        "tagger": cost_ms(p.punctuate, texts, repeat),
        "itn": cost_ms(inverse_normalize, texts, repeat),
        "tagger_then_itn_text": cost_ms(lambda t: inverse_normalize(p.punctuate(t)), texts, repeat),
        "tagger_then_itn_words": cost_ms(both.apply, utts, repeat),
    }
    return {
        "model": model,
        "model_bytes": os.path.getsize(model),
        "vocab": len(p.info.vocab),
        "scores": scores,
        "words_per_sentence": WORDS_PER_SENTENCE,
        "sentences_timed": n,
        "ms_per_sentence": {k: round(v, 4) for k, v in cost.items()},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL, help="an exported punctuation model (default: the built-in one)")
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "punctuation"),
                    help="folder of test_*.txt files (default data/punctuation)")
    ap.add_argument("--sentences", type=int, default=2000, help="20-word sentences timed (default 2000)")
    ap.add_argument("--repeat", type=int, default=5, help="timed passes; the best counts (default 5)")
    ap.add_argument("--out", help="also write the report here (JSON)")
    args = ap.parse_args(argv)
    report = measure(args.model, args.data, args.sentences, args.repeat)
    print(f"model: {report['model']} ({report['model_bytes'] / 1e6:.2f} MB, {report['vocab']} words)")
    print(f"{'test file':28} {'words':>7} {'comma F1':>9} {'period F1':>10} {'question F1':>12} {'case':>7}")
    for name, s in report["scores"].items():
        print(f"{name:28} {s['words']:>7} {s['comma']['f1']:>9.3f} {s['period']['f1']:>10.3f} "
              f"{s['question']['f1']:>12.3f} {s['case_accuracy']:>7.3f}")
    print("CPU ms per 20-word sentence, one core: " + ", ".join(f"{k} {v}" for k, v in report["ms_per_sentence"].items()))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    if hasattr(os, "sched_setaffinity"):  # one core (not in a test's process, which keeps its cores)
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    sys.exit(main())
