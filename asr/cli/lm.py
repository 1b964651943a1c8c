"""``asr lm build | ppl``: word or character n-gram language models (ARPA)."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from asr.decoding.lm import NGramLM, _words, char_tokens, read_sentences, train_ngram

__all__ = ["main", "build_parser"]


def build_parser(prog: str = "asr lm") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Word or character n-gram language models (ARPA).")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="train an interpolated Kneser-Ney model and write it as ARPA")
    b.add_argument("--text", help="text file, one sentence per line (normalized here)")
    b.add_argument("--manifest", help="JSONL manifest whose 'text' fields are the sentences")
    b.add_argument("--order", type=int, default=3, help="n of the n-grams (default 3)")
    b.add_argument("--units", choices=("word", "char"), default="word",
                   help="tokens of the model: words (default) or characters (space = <sp>), for --char-lm")
    b.add_argument("--discount", type=float, default=None, help="one discount for all orders (default: estimated)")
    b.add_argument("--out", required=True, help="ARPA file to write")
    p = sub.add_parser("ppl", help="perplexity of an ARPA model on text")
    p.add_argument("--lm", required=True, help="ARPA file")
    p.add_argument("--text", help="text file, one sentence per line (normalized here)")
    p.add_argument("--manifest", help="JSONL manifest whose 'text' fields are the sentences")
    p.add_argument("--units", choices=("word", "char"), default="word", help="units the model was built on (default word)")
    return parser


def main(argv: Optional[Sequence[str]] = None, prog: str = "asr lm") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)

    if args.text is None and args.manifest is None:
        parser.error("give --text and/or --manifest")
    try:
        sentences: list = list(read_sentences(args.text, args.manifest))
        if args.units == "char":
            sentences = [char_tokens(x) for x in sentences]
        if args.command == "build":
            if not sentences:
                raise ValueError("no sentences in the input")
            lm = train_ngram(sentences, order=args.order, discount=args.discount)
            lm.write_arpa(args.out)
            counts = " ".join(f"{k}-grams={n}" for k, n in enumerate(lm.counts(), 1))
            print(f"wrote {args.out}: order {lm.order}, {len(sentences)} sentences, {counts}", file=sys.stderr)
        else:
            lm = NGramLM.read_arpa(args.lm)
            words = sum(len(_words(s)) + 1 for s in sentences)
            oov = sum(1 for s in sentences for w in _words(s) if w not in lm.vocab)
            unit = "characters" if args.units == "char" else "words"
            print(f"{len(sentences)} sentences, {words} {unit} (with </s>), {oov} OOV, perplexity {lm.perplexity(sentences):.3f}")
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
