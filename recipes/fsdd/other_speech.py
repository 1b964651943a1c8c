"""Other speech for the FSDD digits model, from speechocean762 (read English by 125 other
speakers, children and adults), so that the model hears voices FSDD lacks and learns what is
not a digit:

- OUT/other_train.jsonl: speechocean762's train speakers: every utterance with a digit word,
  and --others of the rest (a fixed random draw); in training, words other than the ten digits
  become the unknown-word unit (data.vocabulary in conf.yaml);
- OUT/train_mix.jsonl: FSDD's train.jsonl and other_train.jsonl, the recipe's training set;
- OUT/sodigits_dev.jsonl: utterances made of digit words only by speakers held out of training
  (real voices the model never heard, saying digit strings): speechocean762's dev speakers
  (13, who say few digit strings) and every second train speaker who says any (--hold-out);
- OUT/nondigit_dev.jsonl: the held-out speakers' utterances with no digit word (speech that
  must give no digits);
- OUT/other_words.txt: --words words of speechocean762's training lexicon, one a line, for
  `asr synth` to say one at a time (isolated words that are not digits); digits, words that
  sound like one ("to", "for", "ate", "oh", ...) and the held-out list (--held-out-words, the
  recipe's dev check of isolated non-digit words) are left out.

    python recipes/fsdd/other_speech.py --speechocean data/speechocean762 --fsdd data/fsdd --out data/fsdd
"""

import argparse
import json
import os
import sys

import numpy as np

DIGITS = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
# words that sound like a digit or a number on their own: never trained as "not a digit" alone
SOUND_LIKE_DIGITS = {"oh", "o", "to", "too", "for", "fore", "won", "ate", "tree", "free", "fine", "nein", "sex", "sicks",
                     "ten", "then", "when", "heaven", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
                     "ninety", "hundred", "thousand", "no", "know", "now"}


def read(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def write(path, lines):
    with open(path, "w") as f:
        f.writelines(json.dumps(e) + "\n" for e in lines)
    print(f"   {path}: {len(lines)} utterances, {sum(e['duration'] for e in lines) / 60:.1f} min")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--speechocean", required=True, help="folder of asr prepare speechocean762's manifests")
    p.add_argument("--fsdd", required=True, help="folder of asr prepare fsdd's manifests")
    p.add_argument("--out", required=True)
    p.add_argument("--others", type=int, default=600, help="utterances without digits to train on (default 600)")
    p.add_argument("--hold-out", type=int, default=2, help="hold out every Nth train speaker who says a digit string (default 2)")
    p.add_argument("--words", type=int, default=600, help="isolated words to synthesize (default 600)")
    p.add_argument("--held-out-words", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "nondigit_words.txt"),
                   help="words never to train on (the dev check of isolated non-digit words)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    train, dev = (read(os.path.join(args.speechocean, f"{s}.jsonl")) for s in ("train", "dev"))
    words = lambda e: e["text"].split()  # noqa: E731 (asr prepare normalized the text)
    only_digits = lambda e: set(words(e)) <= DIGITS  # noqa: E731
    sayers = sorted({e["speaker"] for e in train if only_digits(e)})
    held = set(sayers[:: args.hold_out]) if args.hold_out else set()
    dev = dev + [e for e in train if e["speaker"] in held]
    train = [e for e in train if e["speaker"] not in held]
    with_digits = [e for e in train if DIGITS & set(words(e))]
    rest = [e for e in train if not DIGITS & set(words(e))]
    pick = np.random.default_rng(args.seed).permutation(len(rest))[: args.others]
    other = with_digits + [rest[i] for i in sorted(pick)]
    os.makedirs(args.out, exist_ok=True)
    write(os.path.join(args.out, "other_train.jsonl"), other)
    write(os.path.join(args.out, "train_mix.jsonl"), read(os.path.join(args.fsdd, "train.jsonl")) + other)
    write(os.path.join(args.out, "sodigits_dev.jsonl"), [e for e in dev if only_digits(e)])
    write(os.path.join(args.out, "nondigit_dev.jsonl"), [e for e in dev if not DIGITS & set(words(e))])
    lexicon = os.path.join(args.speechocean, "lexicon.txt")
    held = {w.strip().lower() for w in open(args.held_out_words) if w.strip()}
    with open(lexicon) as f:
        vocab = sorted({line.split()[0].lower() for line in f if line.split()})
    vocab = [w for w in vocab if w.isalpha() and len(w) > 1 and w not in DIGITS | SOUND_LIKE_DIGITS | held]
    pick = sorted(np.random.default_rng(args.seed).choice(vocab, size=min(args.words, len(vocab)), replace=False))
    with open(os.path.join(args.out, "other_words.txt"), "w") as f:
        f.writelines(f"{w}\n" for w in pick)
    print(f"   {os.path.join(args.out, 'other_words.txt')}: {len(pick)} words of {len(vocab)} in {lexicon}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
