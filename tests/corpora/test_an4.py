import json
import logging
import os
import tarfile

import numpy as np
import soundfile as sf

from asr import cli
from asr.corpora import an4

TRAIN = {"fash": ["cen5", "an251"], "fbbh": ["cen1", "an86"], "mgah": ["cen2", "an101"]}
TEST = {"fcaw": ["an406", "cen8"]}
TEXTS = {"cen5": "P I T T S B U R G H", "an251": "YES", "cen1": "TWO SIX EIGHT", "an86": "RUBOUT G M E",
         "cen2": "ENTER SIX", "an101": "STOP", "an406": "NO", "cen8": "ONE FIVE"}


def samples(i):
    return (np.sin(np.arange(int(0.3 * an4.SAMPLE_RATE)) * (0.05 + 0.01 * i)) * 8000).astype(np.int16)


def write_split(root, split, speakers):
    folder = an4.SPLITS[split]
    trans, ids = [], []
    for i, (spk, utts) in enumerate(speakers.items()):
        for u in utts:
            uid = f"{u}-{spk}-b"
            d = root / "wav" / folder / spk
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{uid}.raw").write_bytes(samples(i).astype(">i2").tobytes())  # headerless, big-endian
            trans.append(f"<s> {TEXTS[u]} </s> ({uid})")
            ids.append(f"{folder}/{spk}/{uid}")
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc" / f"an4_{split}.transcription").write_text("\n".join(trans) + "\n")
    (root / "etc" / f"an4_{split}.fileids").write_text("\n".join(ids) + "\n")


def fake_an4(parent):
    """The layout of an4_raw.bigendian.tar.gz, with one fault of each kind in train."""
    root = parent / "an4"
    write_split(root, "train", TRAIN)
    write_split(root, "test", TEST)
    (root / "wav" / "an4_clstk" / "fbbh" / "an86-fbbh-b.raw").unlink()  # missing audio
    (root / "wav" / "an4_clstk" / "mgah" / "an101-mgah-b.raw").write_bytes(b"")  # no samples
    with open(root / "etc" / "an4_train.transcription", "a") as f:
        f.write("<s> </s> (an999-mgah-b)\n")  # empty transcript
        f.write("<s> NO ID HERE </s>\n")  # malformed
    return parent


def read(path):
    return [json.loads(line) for line in open(path)]


def test_prepare_converts_once_and_splits(tmp_path, caplog):
    parent = fake_an4(tmp_path / "corpora")
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        counts = an4.prepare(str(parent), str(out), progress=False)
    # dev = every 10th train speaker in sorted order: fash
    assert counts == {"train": 2, "dev": 2, "test": 2, "skipped": 4}
    log = caplog.text
    assert "an86-fbbh-b: audio file not found" in log and "an101-mgah-b: audio has no samples" in log
    assert "an4_train.transcription:7: skipping an999-mgah-b: empty transcript" in log
    assert "an4_train.transcription:8: skipping line without '(id)'" in log
    dev, train, test = (read(out / f"{k}.jsonl") for k in ("dev", "train", "test"))
    assert {e["speaker"] for e in dev} == {"fash"} and {e["speaker"] for e in train} == {"fbbh", "mgah"}
    e = dev[0]
    assert e["id"] == "cen5-fash-b" and e["text"] == "p i t t s b u r g h" and e["duration"] == 0.3
    assert e["audio_filepath"] == str(out / "wav" / "train" / "cen5-fash-b.wav")
    wave, sr = sf.read(e["audio_filepath"], dtype="int16")
    assert sr == 16000 and np.array_equal(wave, samples(0))  # the big-endian samples, decoded right
    assert [x["text"] for x in test] == ["no", "one five"] and test[0]["speaker"] == "fcaw"
    stamp = os.stat(e["audio_filepath"]).st_mtime_ns
    an4.prepare(str(parent), str(out), progress=False)  # again: the WAV files are reused
    assert os.stat(e["audio_filepath"]).st_mtime_ns == stamp


def test_parse_transcription_line_forms(tmp_path):
    p = tmp_path / "t.transcription"
    p.write_text("<s> RUBOUT G M E F THREE NINE </s> (fash-an251-b)\nYES (an252-fash-b)\n")
    assert an4.parse_transcription(str(p)) == ([("fash-an251-b", "rubout g m e f three nine"), ("an252-fash-b", "yes")], 0)


def test_download_unpack_and_prepare(tmp_path, monkeypatch, capsys):
    src = fake_an4(tmp_path / "src")
    archive = tmp_path / "mirror" / "an4_raw.bigendian.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "an4", arcname="an4")
    monkeypatch.setattr(an4, "URL", archive.as_uri())
    monkeypatch.delenv("ASR_CORPORA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["prepare", "an4", "--out", "out", "--no-progress"]) == 0
    assert "train 2, dev 2, test 2, skipped 4" in capsys.readouterr().out
    assert (tmp_path / "data" / "corpora" / "an4" / "etc" / "an4_train.transcription").is_file()
    assert not (tmp_path / "data" / "corpora" / "an4.part").exists()


def test_download_offline_gives_clear_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(an4, "URL", "http://127.0.0.1:9/an4_raw.bigendian.tar.gz")
    monkeypatch.delenv("ASR_CORPORA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["prepare", "an4", "--out", "out"]) == 2
    assert "--corpus-dir" in capsys.readouterr().err
    assert cli.main(["prepare", "an4", "--out", "out", "--no-download"]) == 2
    assert "AN4 not found (looked for etc/an4_train.transcription" in capsys.readouterr().err
