import json
import logging
import os

import numpy as np
import pytest
import soundfile as sf

from asr import cli
from asr.corpora import commonvoice as cv

HEADER = ["client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes", "down_votes", "age",
          "gender", "accents", "variant", "locale", "segment"]


def row(client, clip, sentence, age="", gender=""):
    return [client, clip, "abc123", sentence, "", "2", "0", age, gender, "", "", "en", ""]


def fake_release(parent):
    """cv-corpus-<version>/en/ with clips/*.mp3 and the three official tables."""
    en = parent / "cv-corpus-17.0-2024-03-15" / "en"
    (en / "clips").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(5):
        sf.write(en / "clips" / f"common_voice_en_{i}.mp3", 0.1 * rng.standard_normal(24000).astype(np.float32), 48000)
    (en / "clips" / "common_voice_en_broken.mp3").write_bytes(b"not an mp3")
    tables = {
        "train": [
            row("c1", "common_voice_en_0.mp3", 'He said "Hello, World!"', "twenties", "male_masculine"),
            row("c1", "common_voice_en_1.mp3", "It's  a   test."),
            row("c2", "common_voice_en_missing.mp3", "Missing clip."),
            row("c2", "common_voice_en_broken.mp3", "Broken clip."),
            row("c2", "common_voice_en_2.mp3", ""),
            row("c2", "common_voice_en_2.mp3", "?!"),
            ["c3", "common_voice_en_2.mp3", "too few fields"],
        ],
        "dev": [row("c4", "common_voice_en_3.mp3", "Dev sentence.")],
        "test": [row("c5", "common_voice_en_4.mp3", "Test sentence.", "fifties", "female_feminine")],
    }
    for split, rows in tables.items():
        (en / f"{split}.tsv").write_text("\n".join("\t".join(r) for r in [HEADER] + rows) + "\n")
    (en / "validated.tsv").write_text("\t".join(HEADER) + "\n")
    return parent


def read(path):
    return [json.loads(line) for line in open(path)]


def test_prepare(tmp_path, caplog):
    parent = fake_release(tmp_path / "downloads")
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        counts = cv.prepare(str(parent), str(out), progress=False)
    assert counts == {"train": 2, "dev": 1, "test": 1, "skipped": 5}
    log = caplog.text
    assert "train.tsv:4: skipping common_voice_en_missing.mp3: audio file not found" in log
    assert "train.tsv:5: skipping common_voice_en_broken.mp3: unreadable audio" in log
    assert "train.tsv:6: skipping common_voice_en_2.mp3: empty transcript" in log
    assert "train.tsv:7: skipping common_voice_en_2.mp3: transcript '?!' has no words" in log
    assert "train.tsv:8: skipping row with 3 fields (the header has 13)" in log
    train = read(out / "train.jsonl")
    e = train[0]
    assert e["text"] == 'He said "Hello, World!"' and e["speaker"] == "c1" and e["id"] == "common_voice_en_0"
    assert e["age"] == "twenties" and e["gender"] == "male_masculine" and "accent" not in e
    assert e["duration"] == pytest.approx(0.5, abs=0.06)  # mp3 may pad a little
    assert os.path.isabs(e["audio_filepath"]) and e["audio_filepath"].endswith("en/clips/common_voice_en_0.mp3")
    assert train[1]["text"] == "It's a test."
    assert read(out / "test.jsonl")[0]["gender"] == "female_feminine"


def test_finds_the_language_folder(tmp_path, monkeypatch):
    parent = fake_release(tmp_path / "corpora" / "commonvoice")
    en = parent / "cv-corpus-17.0-2024-03-15" / "en"
    assert cv.find(str(en)) == str(en)
    assert cv.find(str(parent)) == str(en)
    assert cv.find(str(tmp_path / "corpora")) == str(en)
    monkeypatch.setenv("ASR_CORPORA", str(tmp_path / "corpora"))
    assert cv.find(None) == str(en)


def test_cli_and_no_download(tmp_path, monkeypatch, capsys):
    parent = fake_release(tmp_path / "downloads")
    assert cli.main(["prepare", "commonvoice", "--corpus-dir", str(parent), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert "train 2, dev 1, test 1, skipped 5" in capsys.readouterr().out
    monkeypatch.delenv("ASR_CORPORA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["prepare", "commonvoice", "--out", "out"]) == 2
    err = capsys.readouterr().err
    assert "cannot be downloaded automatically" in err and "commonvoice.mozilla.org" in err and "--corpus-dir" in err


def test_bad_header(tmp_path):
    en = tmp_path / "en"
    (en / "clips").mkdir(parents=True)
    (en / "train.tsv").write_text("client_id\tfile\ttext\n")
    with pytest.raises(ValueError, match="train.tsv:1: expected a header line with 'path' and 'sentence'"):
        cv.prepare(str(en), str(tmp_path / "out"), progress=False)
