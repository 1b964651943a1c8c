"""What the digits model recognizes, as a user meets it: WER of isolated recordings, of
connected strings and of a continuous recording, each offline (the offline graph, whole
files) and streamed (the streaming graph in 100 ms pieces with the default endpointing, as
``asr stream`` and ``asr serve`` run it), and how often speech that holds no digit comes out
as digits.

    python tools/measure_digits.py --model exp/fsdd/model.onnx --stream exp/fsdd/stream.onnx \\
        --set isolated=data/fsdd/test.jsonl --set strings=data/fsdd/strings_test/manifest.jsonl \\
        --long data/fsdd/long_test --nondigit sentences=data/fsdd/nondigit_dev.jsonl [--out out.json]

``--set NAME=MANIFEST`` (repeatable): WER % on the manifest, offline and streamed. ``--long DIR``:
a recording from ``tools/make_long_recording.py``, whose words are scored in order against its
truth. ``--nondigit [NAME=]MANIFEST`` (repeatable): utterances without a digit word: the share of them
whose transcript holds any word but ``[unk]`` (a digits model with an unknown-word unit writes nothing
for them, or ``[unk]`` with a grammar), and the digits written per 100 words said.

The decoding options of ``asr transcribe`` (``--grammar``, ``--phrase``, ``--unk-score``, ``--beta``,
``--beam-size``, ``--lm``, ...) apply to every row, offline and streamed (docs/grammars.md):

    python tools/measure_digits.py --model ... --stream ... --set ... --nondigit ... \
        --grammar digits.txt --unk-score 2 --beta -2 --drop-unk
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from asr.audio import read_audio  # noqa: E402
from asr.cli.options import add_decoding_args, decoding_options  # noqa: E402
from asr.decoding.grammar import UNK_WORD  # noqa: E402
from asr.manifest import read_manifest, segment_of  # noqa: E402
from asr.metrics import error_stats  # noqa: E402
from asr.runtime.endpoint import EndpointConfig  # noqa: E402
from asr.runtime.offline import load_model  # noqa: E402
from asr.runtime.online import OnlineRecognizer, stream_in_pieces  # noqa: E402
from asr.text import normalize_text  # noqa: E402


def streamed_text(rec: OnlineRecognizer, samples: np.ndarray, rate: int, piece_ms: float = 100.0) -> str:
    """The final text of ``samples`` fed in ``piece_ms`` pieces, every endpoint's utterance joined."""
    return " ".join(u.text for u in stream_in_pieces(rec, samples, rate, piece_ms / 1000).utterances if u.text)


def _audio(e) -> tuple[np.ndarray, int]:
    start, duration = segment_of(e)
    samples, rate = read_audio(e.audio_filepath)
    if start or duration:
        a = int(round((start or 0) * rate))
        samples = samples[a : a + int(round(duration * rate))] if duration else samples[a:]
    return samples, rate


def hypotheses(entries, offline, online) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"offline": [], "streamed": []}
    for e in entries:
        samples, rate = _audio(e)
        if offline is not None:
            out["offline"].append(offline.transcribe(samples, sample_rate=rate).text)
        if online is not None:
            out["streamed"].append(streamed_text(online, samples, rate))
    return {k: v for k, v in out.items() if v}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="offline graph (model.onnx)")
    p.add_argument("--stream", help="streaming graph (stream.onnx)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=MANIFEST", help="a test set (repeatable)")
    p.add_argument("--long", help="folder from tools/make_long_recording.py")
    p.add_argument("--nondigit", action="append", default=[], metavar="[NAME=]MANIFEST",
                   help="speech without digit words (repeatable): the share that came out with digits")
    p.add_argument("--out", metavar="PATH", help="also write the figures here (JSON)")
    add_decoding_args(p, alternatives=False)
    args = p.parse_args(argv)
    if not (args.model or args.stream):
        p.error("give --model and/or --stream")
    (decoding,) = decoding_options(args)
    offline = load_model(args.model, decoding) if args.model else None
    online = OnlineRecognizer(args.stream, endpoint=EndpointConfig(), decoding=decoding) if args.stream else None
    print(f"decoding: {decoding.label()}", flush=True)
    rows = []

    def row(name: str, refs: list[str], hyps: dict[str, list[str]], n: int) -> None:
        figures = {k: round(error_stats(refs, v).wer_percent, 2) for k, v in hyps.items()}
        rows.append({"set": name, "items": n, **{f"wer_{k}": v for k, v in figures.items()}})
        print(f"{name:<28} {n:>5} items   " + "   ".join(f"{k} WER {v:6.2f}%" for k, v in figures.items()), flush=True)

    for spec in args.set:
        name, _, path = spec.partition("=")
        entries = read_manifest(path)
        row(name, [normalize_text(e.text) for e in entries], hypotheses(entries, offline, online), len(entries))
    if args.long:
        truth = [json.loads(line) for line in open(os.path.join(args.long, "truth.jsonl"))]
        samples, rate = read_audio(os.path.join(args.long, "recording.wav"))
        ref = " ".join(normalize_text(t["text"]) for t in truth)
        hyps = {}
        if offline is not None:
            hyps["offline"] = [offline.transcribe(samples, sample_rate=rate).text]
        if online is not None:  # through the command a user runs: asr stream, 100 ms pieces
            with tempfile.TemporaryDirectory() as tmp:
                proc = subprocess.run([sys.executable, "-m", "asr", "stream", "--model", args.stream, "--no-partials",
                                       "--format", "json", *_decoding_flags(decoding, tmp), os.path.join(args.long, "recording.wav")],
                                      capture_output=True, text=True, check=True)
            hyps["streamed"] = [" ".join(json.loads(line)["text"] for line in proc.stdout.splitlines() if line.strip())]
        row(f"continuous {samples.size / rate / 60:.0f} min", [ref], hyps, len(truth))
    for spec in args.nondigit:
        name, _, path = spec.rpartition("=")
        name = f"no digit said: {name or 'speech'}"
        entries = read_manifest(path)
        hyps = hypotheses(entries, offline, online)
        spoken = sum(len(normalize_text(e.text).split()) for e in entries)
        shares = {mode: round(100.0 * sum(any(w != UNK_WORD for w in h.split()) for h in hyp) / max(1, len(hyp)), 2)
                  for mode, hyp in hyps.items()}
        per_word = {mode: round(100.0 * sum(sum(w != UNK_WORD for w in h.split()) for h in hyp) / max(1, spoken), 2)
                    for mode, hyp in hyps.items()}
        rows.append({"set": name, "items": len(entries), "words": spoken, **{f"with_digits_{k}": v for k, v in shares.items()},
                     **{f"digits_per_100_words_{k}": v for k, v in per_word.items()}})
        print(f"{name:<28} {len(entries):>5} items   " + "   ".join(f"{k}: {v:.2f}% came out with digits"
                                                               for k, v in shares.items()), flush=True)
        print(f"{'':<28} {spoken:>5} words   " + "   ".join(f"{k}: {v:.2f} digits written per 100 words said"
                                                             for k, v in per_word.items()), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"decoding": decoding.settings(), "rows": rows} if not decoding.greedy else rows, f, indent=1)
    return 0


def _decoding_flags(o, tmp: str) -> list[str]:
    """The ``asr stream`` flags of decoding options ``o`` (its grammar and hotwords written to ``tmp``)."""
    if o.greedy:
        return []
    flags = ["--beam-size", str(o.beam_size), "--beta", repr(o.beta), "--unk-score", repr(o.unk_score)]
    if o.lm:
        flags += ["--lm", o.lm, "--alpha", repr(o.alpha)]
    if o.char_lm:
        flags += ["--char-lm", o.char_lm, "--char-alpha", repr(o.char_alpha)]
    if o.grammar:
        path = os.path.join(tmp, "grammar.json")
        with open(path, "w") as f:
            json.dump(list(o.grammar), f)
        flags += ["--grammar", path]
    if o.hotwords:
        path = os.path.join(tmp, "hotwords.txt")
        with open(path, "w") as f:
            f.writelines(f"{h}\t{w}\n" if w == w else f"{h}\n" for h, w in o.hotwords.items())
        flags += ["--hotwords", path, "--hotword-weight", repr(o.hotword_weight)]
    if o.drop_unk:
        flags.append("--drop-unk")
    return flags


if __name__ == "__main__":
    sys.exit(main())
