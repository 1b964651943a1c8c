"""tools/make_librispeech_like.py: a made corpus has LibriSpeech's layout and the counts asked
for, hard links fill the utterances not rendered, the held-out parts hear other voices, and
`asr prepare librispeech --subset 100 --corpus-dir` reads it."""

import json
import os

import numpy as np
import soundfile as sf

from asr import cli
from tests.tools import load_tool

WORDS = ["one", "two", "three", "cat", "house", "good"]


def source(tmp_path, rate, speakers, per_speaker, name):
    """A manifest of short generated utterances (noise bursts of 0.3-1.2 s) at ``rate``."""
    rng = np.random.default_rng(rate)
    folder = tmp_path / name
    folder.mkdir()  # the manifest goes in there too: a source speaker is <folder>:<speaker>
    lines = []
    for s in range(speakers):
        for i in range(per_speaker):
            n = int(rng.uniform(0.3, 1.2) * rate)
            path = folder / f"{s}_{i}.wav"
            sf.write(path, (0.1 * rng.standard_normal(n)).astype(np.float32), rate)
            text = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 3))))
            lines.append(json.dumps({"audio_filepath": str(path), "duration": n / rate, "text": text, "speaker": f"s{s}"}))
    manifest = folder / "train.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return str(manifest)


def test_made_corpus_reads_as_librispeech(tmp_path, capsys):
    tool = load_tool("make_librispeech_like")
    wide = source(tmp_path, 16000, 5, 6, "wide")
    narrow = source(tmp_path, 8000, 2, 8, "narrow")  # resampled to 16 kHz
    out = tmp_path / "made"
    args = ["--source", wide, "--source", narrow, "--out", str(out), "--speakers", "6", "--chapters", "9",
            "--utterances", "40", "--hours", "0.05", "--max-seconds", "8", "--distinct", "12",
            "--eval-speakers", "1", "--eval-utterances", "3", "--held-out", "2", "--seed", "3", "--no-progress"]
    assert tool.main(args) == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed and "40 files" in printed.replace("train-clean-100: ", "")
    libri = out / "LibriSpeech"
    train = libri / "train-clean-100"
    speakers = sorted(os.listdir(train))
    assert len(speakers) == 6
    chapters = [(s, c) for s in speakers for c in os.listdir(train / s)]
    assert len(chapters) == 9
    flacs, inodes = [], set()
    for s, c in chapters:
        d = train / s / c
        lines = (d / f"{s}-{c}.trans.txt").read_text().splitlines()
        files = sorted(f for f in os.listdir(d) if f.endswith(".flac"))
        assert [ln.split(" ", 1)[0] + ".flac" for ln in lines] == files
        assert all(f == f"{s}-{c}-{i:04d}.flac" for i, f in enumerate(files))
        for ln in lines:
            text = ln.split(" ", 1)[1]
            assert text == text.upper() and set(text.lower().split()) <= set(WORDS)
        for f in files:
            flacs.append(d / f)
            inodes.add(os.stat(d / f).st_ino)
            info = sf.info(d / f)
            assert info.samplerate == 16000 and info.format == "FLAC" and info.duration <= 8.0
    assert len(flacs) == 40 and len(inodes) == 12  # the rest are hard links
    made = json.loads((libri / "MADE.json").read_text())
    assert made["parts"]["train-clean-100"]["distinct"] == 12
    hours = sum(sf.info(f).duration for f in flacs) / 3600
    assert abs(hours - 0.05) < 0.01 and abs(made["parts"]["train-clean-100"]["hours"] - hours) < 1e-3

    # held-out parts: their voices are not the training part's
    table = [ln.split("|") for ln in (libri / "SPEAKERS.TXT").read_text().splitlines() if not ln.startswith(";")]
    voices = {}
    for _, _, part, _, name in table:
        voices.setdefault(part.strip(), set()).add(name.strip())
    assert set(voices) == {"train-clean-100", "dev-clean", "dev-other", "test-clean", "test-other"}
    assert all(not (v & voices["train-clean-100"]) for p, v in voices.items() if p != "train-clean-100")
    assert len(set().union(*voices.values())) == 7

    # the same seed writes the same corpus; an existing part is not written over
    again = tmp_path / "again"
    assert tool.main(args[:5] + [str(again)] + args[6:] + ["--jobs", "2"]) == 0
    for f in flacs:
        assert (again / f.relative_to(out)).read_bytes() == f.read_bytes()
    try:
        tool.main(args)
        raise AssertionError("wrote over an existing part")
    except SystemExit as exc:
        assert "exist" in str(exc)

    manifests = tmp_path / "manifests"
    assert cli.main(["prepare", "librispeech", "--subset", "100", "--corpus-dir", str(out), "--out", str(manifests),
                     "--no-progress"]) == 0
    train_m = [json.loads(ln) for ln in open(manifests / "train.jsonl")]
    assert len(train_m) == 40 and len({e["speaker"] for e in train_m}) == 6
    assert all(e["text"] == e["text"].lower() for e in train_m)
    assert [len(open(manifests / f"{p}.jsonl").readlines()) for p in ("dev-clean", "test-other")] == [3, 3]
