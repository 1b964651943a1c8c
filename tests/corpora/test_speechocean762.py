import json
import logging
import os
import tarfile

import numpy as np
import pytest
import soundfile as sf

from asr import cli
from asr.corpora import speechocean762 as so
from asr.corpora.download import DownloadError

SR = 16000
# speaker: (age, gender); 0048 and 1027 are in DEFAULT_DEV_SPEAKERS
TRAIN = {"0048": ("6", "m"), "1027": ("37", "m"), "5555": ("10", "f"), "7777": ("30", "m")}
TEST = {"9999": ("25", "f")}
N = 4  # utterances per speaker


def utt(spk, i):
    return f"0{spk}{i:04d}"


def write_split(corpus, split, speakers, ext, absolute):
    d = corpus / split
    d.mkdir(parents=True)
    rng = np.random.default_rng(len(split))
    text, scp, u2s = [], [], []
    for spk in speakers:
        for i in range(N):
            u = utt(spk, i)
            rel = f"WAVE/SPEAKER{spk}/{u}.{ext}"
            (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(corpus / rel, 0.1 * rng.standard_normal(SR // 2).astype(np.float32), SR)
            text.append(f"{u}\tWE CALL IT  BEAR {i}")
            scp.append(f"{u}\t{corpus / rel if absolute else rel}")
            u2s.append(f"{u} {spk}")
    (d / "text").write_text("\n".join(text) + "\n")
    (d / "wav.scp").write_text("\n".join(scp) + "\n")
    (d / "utt2spk").write_text("\n".join(u2s) + "\n")
    (d / "spk2age").write_text("".join(f"{s}\t{a}\n" for s, (a, _) in speakers.items()))
    (d / "spk2gender").write_text("".join(f"{s}\t{g}\n" for s, (_, g) in speakers.items()))


def fake_corpus(root, ext="wav", absolute=False, with_test=True):
    """The official layout, with one fault of each kind among train speakers 5555 and 7777."""
    corpus = root / "speechocean762"
    write_split(corpus, "train", TRAIN, ext, absolute)
    if with_test:
        write_split(corpus, "test", TEST, ext, absolute)
    (corpus / f"WAVE/SPEAKER5555/{utt('5555', 1)}.{ext}").unlink()  # missing audio
    (corpus / f"WAVE/SPEAKER7777/{utt('7777', 1)}.{ext}").write_bytes(b"broken")  # unreadable
    train = corpus / "train"
    lines = (train / "text").read_text().replace(f"{utt('7777', 2)}\tWE CALL IT  BEAR 2", utt("7777", 2))
    (train / "text").write_text(lines)  # empty transcript
    lines = (train / "utt2spk").read_text().replace(f"{utt('7777', 3)} 7777", f"{utt('7777', 3)} 7777 extra")
    (train / "utt2spk").write_text(lines)  # malformed line: that utterance has no speaker
    with open(train / "wav.scp", "a") as f:
        f.write("dangling_key\n")  # malformed line naming no utterance
    (train / "spk2age").write_text((train / "spk2age").read_text().replace("5555\t10", "5555\tten"))
    (corpus / "resource").mkdir()
    (corpus / "resource" / "lexicon.txt").write_text("BEAR\tB EH1 R\nCALL\tK AO1 L\nDOG\tD AO1 G\nIT\tIH1 T\nWE\tW IY1\n")
    return root


def read(path):
    return [json.loads(line) for line in open(path)]


@pytest.mark.parametrize("ext,absolute,itself", [("wav", False, False), ("flac", False, True), ("flac", True, False)])
def test_prepare(tmp_path, caplog, ext, absolute, itself):
    root = fake_corpus(tmp_path / "corpora", ext, absolute)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        counts = so.prepare(str(root / "speechocean762" if itself else root), str(out))
    assert counts == {"train": 2 * N - 4, "dev": 2 * N, "test": N, "skipped": 4, "lexicon_words": 4}
    log = caplog.text
    assert f"{utt('5555', 1)}: audio file not found" in log
    assert f"{utt('7777', 1)}: unreadable audio" in log
    assert f"{utt('7777', 2)}: empty transcript" in log
    assert f"{utt('7777', 3)}: not in utt2spk" in log
    assert f"utt2spk:{4 * N}: skipping malformed line" in log
    assert f"wav.scp:{4 * N + 1}: skipping malformed line" in log
    assert "age 'ten' is not a whole number" in log
    # the lexicon keeps train words only ("dog" is in none); the digits have no pronunciation
    assert (out / "lexicon.txt").read_text() == "BEAR\tB EH1 R\nCALL\tK AO1 L\nIT\tIH1 T\nWE\tW IY1\n"
    assert "3 train word(s) have no pronunciation" in log  # 0, 2 and 3

    train, dev, test = (read(out / f"{k}.jsonl") for k in ("train", "dev", "test"))
    assert {e["speaker"] for e in dev} == {"0048", "1027"} <= set(so.DEFAULT_DEV_SPEAKERS)
    assert {e["speaker"] for e in train} == {"5555", "7777"}
    assert {e["speaker"] for e in test} == {"9999"}
    e = next(x for x in dev if x["speaker"] == "0048")
    assert e["text"] == "we call it bear 0" and e["duration"] == 0.5
    assert e["age"] == 6 and e["gender"] == "m"
    assert os.path.isabs(e["audio_filepath"]) and e["audio_filepath"].endswith(f".{ext}")
    assert os.path.isfile(e["audio_filepath"])
    assert {(x["age"], x["gender"]) for x in test} == {(25, "f")}
    assert all("age" not in x and x["gender"] == "f" for x in train if x["speaker"] == "5555")


def test_no_test_split_and_custom_dev_speakers(tmp_path):
    root = fake_corpus(tmp_path / "corpora", with_test=False)
    counts = so.prepare(str(root), str(tmp_path / "out"), dev_speakers=["5555"])
    assert counts == {"train": 2 * N + 1, "dev": N - 1, "skipped": 4, "lexicon_words": 4}
    assert not (tmp_path / "out" / "test.jsonl").exists()
    assert {e["speaker"] for e in read(tmp_path / "out" / "dev.jsonl")} == {"5555"}


def test_default_dev_speakers():
    assert len(set(so.DEFAULT_DEV_SPEAKERS)) == 13


def test_cli(tmp_path, capsys):
    root = fake_corpus(tmp_path / "corpora")
    args = ["prepare", "speechocean762", "--corpus-dir", str(root), "--out", str(tmp_path / "out")]
    assert cli.main(args) == 0
    assert "train 4, dev 8, test 4, skipped 4" in capsys.readouterr().out
    assert cli.main(args + ["--test-speaker", "9999"]) == 2
    assert "--test-speaker applies to fsdd only" in capsys.readouterr().err


def test_missing_corpus_without_download(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ASR_CORPORA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["prepare", "speechocean762", "--out", "out", "--no-download"]) == 2
    assert "speechocean762 not found (looked for train/text in" in capsys.readouterr().err


def test_download_offline_gives_clear_message(tmp_path, monkeypatch):
    monkeypatch.delenv("ASR_CORPORA", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(so, "URL", "http://127.0.0.1:9/speechocean762.tar.gz")
    with pytest.raises(DownloadError, match="--corpus-dir"):
        so.prepare(None, "out")


def test_download_and_unpack(tmp_path, monkeypatch):
    root = fake_corpus(tmp_path / "src")
    archive = tmp_path / "speechocean762.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root / "speechocean762", arcname="speechocean762")
    monkeypatch.delenv("ASR_CORPORA", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(so, "download", lambda url, dest: str(archive))
    counts = so.prepare(None, "out")
    assert counts == {"train": 4, "dev": 8, "test": 4, "skipped": 4, "lexicon_words": 4}
    assert (tmp_path / "data" / "corpora" / "speechocean762" / "train" / "text").is_file()
    assert not (tmp_path / "data" / "corpora" / "speechocean762.part").exists()


def test_lexicon_write_is_atomic(tmp_path, disk_full):
    """A crash while lexicon.txt is written (here: the disk fills up after its first line)
    leaves the previous lexicon whole, not a truncated one that training would read."""
    root = fake_corpus(tmp_path / "corpora")
    out = tmp_path / "out"
    so.prepare(str(root), str(out))
    before = (out / "lexicon.txt").read_text()
    (root / "speechocean762" / "resource" / "lexicon.txt").write_text("BEAR\tB EH1 R\nWE\tW IY1\n")
    lift = disk_full("lexicon.txt", after=len("BEAR\tB EH1 R\n"))
    with pytest.raises(OSError, match="No space"):
        so.prepare(str(root), str(out))
    lift()
    assert (out / "lexicon.txt").read_text() == before
    assert not [n for n in os.listdir(out) if n.startswith("lexicon.txt.")]
    so.prepare(str(root), str(out))
    assert (out / "lexicon.txt").read_text() == "BEAR\tB EH1 R\nWE\tW IY1\n"
