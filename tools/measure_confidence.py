"""Does word confidence tell correct words from wrong ones? Several scores compared on a manifest.

    python tools/measure_confidence.py --model exp/x/model.onnx --manifest data/x/dev.jsonl [--beam-size 8]

Each utterance is decoded alone (the model's decoder: greedy, or ``--beam-size``); each
hypothesis word is correct when the edit-distance alignment with the reference makes it a hit.
For each way of scoring a word from the CTC posteriors, prints the area under the ROC curve
(correct vs wrong; 0.5 = no better than chance) and the expected calibration error (10 bins):

- token score ``peak``: the highest posterior of the token over its frames (what
  :mod:`asr.decoding.confidence` uses); ``mean``: the mean over its frames; ``entropy``: one minus
  the normalized entropy of the frame where the token peaks;
- word score from its tokens: ``min``, ``mean``, ``prod`` (the product).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from asr.metrics import calibration_error, roc_auc, word_hits  # noqa: E402


def token_scores(lp: np.ndarray, path) -> dict[str, list[float]]:
    post = np.exp(lp.astype(np.float64))
    v = lp.shape[1]
    out = {"peak": [], "mean": [], "entropy": []}
    for tok, a, b in path:
        p = post[a: b + 1, tok]
        out["peak"].append(float(p.max()))
        out["mean"].append(float(p.mean()))
        f = post[a + int(p.argmax())]
        h = -float(np.sum(f * np.log(np.maximum(f, 1e-12))))
        out["entropy"].append(1.0 - h / np.log(v))
    return out


def word_groups(tokenizer, path) -> list[list[int]]:
    """Indices into ``path`` of each word's tokens (the rule of words_from_tokens)."""
    from asr.text import WORD_START

    vocab, kind = tokenizer.vocab, getattr(tokenizer, "kind", "char")
    if kind == "word":
        return [[i] for i in range(len(path))]
    groups, cur = [], []
    for i, (tok, _, _) in enumerate(path):
        if kind == "bpe" and vocab[tok].startswith(WORD_START) and cur:
            groups.append(cur)
            cur = []
        if kind != "bpe" and vocab[tok] == " ":
            if cur:
                groups.append(cur)
            cur = []
            continue
        cur.append(i)
    if cur:
        groups.append(cur)
    return [g for g in groups if tokenizer.decode([path[i][0] for i in g]).strip()]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--beam-size", type=int, default=0)
    p.add_argument("--max-utts", type=int)
    p.add_argument("--out", metavar="PATH", help="also write the figures here (JSON)")
    args = p.parse_args(argv)

    import asr
    from asr.audio import load_audio
    from asr.decoding.options import DecodingOptions
    from asr.manifest import read_manifest, segment_of
    from asr.text import normalize_text

    rec = asr.load_model(args.model, DecodingOptions(beam_size=args.beam_size))
    entries = read_manifest(args.manifest)[: args.max_utts]
    scores: dict[str, list[float]] = {}
    labels: list[bool] = []
    for k in range(0, len(entries), 16):
        batch = entries[k: k + 16]
        waves = [load_audio(e.audio_filepath, rec.sample_rate, *segment_of(e)) for e in batch]
        for e, lp in zip(batch, rec.log_probs(waves)):
            path = rec.decoder(lp)
            groups = word_groups(rec.tokenizer, path)
            hyp = [rec.tokenizer.decode([path[i][0] for i in g]).strip() for g in groups]
            labels += word_hits(normalize_text(e.text).split(), hyp)
            ts = token_scores(lp, path)
            for name, vals in ts.items():
                for agg, fn in (("min", min), ("mean", lambda x: sum(x) / len(x)), ("prod", lambda x: float(np.prod(x)))):
                    scores.setdefault(f"{name}/{agg}", []).extend(fn([vals[i] for i in g]) for g in groups)
    wrong = len(labels) - sum(labels)
    print(f"{args.manifest}: {len(entries)} utterances, {len(labels)} hypothesis words, {wrong} wrong "
          f"({100 * wrong / max(1, len(labels)):.1f}%); decoder: {rec.decoding.label()}")
    print(f"{'score':<16} {'AUC':>6} {'ECE':>6}")
    rows = {}
    for name, s in scores.items():
        rows[name] = {"auc": round(roc_auc(s, labels), 4), "ece": round(calibration_error(s, labels), 4)}
        print(f"{name:<16} {rows[name]['auc']:>6.3f} {rows[name]['ece']:>6.3f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"manifest": args.manifest, "model": args.model, "words": len(labels), "wrong": wrong, "scores": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
