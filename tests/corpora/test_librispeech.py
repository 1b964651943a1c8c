import gzip
import json
import logging
import os
import tarfile

import numpy as np
import pytest
import soundfile as sf

from asr import cli
from asr.corpora import librispeech as ls
from asr.corpora.download import DownloadError
from asr.decoding.lm import NGramLM

SR = 16000
# part: {speaker: [chapters]}; two utterances per chapter
LAYOUT = {"train-clean-5": {"19": ["198"], "26": ["495", "496"]}, "dev-clean-2": {"84": ["121123"]}}


def fake_part(libri, part, speakers):
    rng = np.random.default_rng(len(part))
    for spk, chapters in speakers.items():
        for ch in chapters:
            d = libri / part / spk / ch
            d.mkdir(parents=True)
            lines = []
            for i in range(2):
                utt = f"{spk}-{ch}-{i:04d}"
                sf.write(d / f"{utt}.flac", 0.1 * rng.standard_normal(int(0.3 * SR)).astype(np.float32), SR)
                lines.append(f"{utt} CHAPTER {ch} SENTENCE {i} DON'T")
            (d / f"{spk}-{ch}.trans.txt").write_text("\n".join(lines) + "\n")


def fake_corpus(root, layout=LAYOUT):
    """The published layout (LibriSpeech/<part>/<spk>/<chapter>/...), one fault of each kind."""
    libri = root / "LibriSpeech"
    for part, speakers in layout.items():
        fake_part(libri, part, speakers)
    if "train-clean-5" in layout:
        tc = libri / "train-clean-5"
        (tc / "26" / "495" / "26-495-0001.flac").unlink()  # missing audio
        (tc / "26" / "496" / "26-496-0000.flac").write_bytes(b"broken")  # unreadable
        trans = tc / "19" / "198" / "19-198.trans.txt"
        trans.write_text(trans.read_text() + "19-198-0002\n")  # empty transcript
        (tc / "26" / "497").mkdir()  # a chapter folder without its transcript
    return root


def read(path):
    return [json.loads(line) for line in open(path)]


@pytest.mark.parametrize("where", ["root", "LibriSpeech"])
def test_prepare_mini(tmp_path, caplog, where):
    root = fake_corpus(tmp_path / "corpora" / "librispeech")
    corpus_dir = tmp_path / "corpora" if where == "root" else root / "LibriSpeech"  # a folder holding librispeech/, or LibriSpeech/ itself
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        counts = ls.prepare(str(corpus_dir), str(out), subset="mini", progress=False)
    assert counts == {"train-clean-5": 4, "dev-clean-2": 2, "train": 4, "dev": 2, "skipped": 3}
    assert "26-495-0001: audio file not found" in caplog.text
    assert "26-496-0000: unreadable audio" in caplog.text
    assert "19-198.trans.txt:3: skipping: empty transcript" in caplog.text
    assert "no 26-497.trans.txt" in caplog.text
    train = read(out / "train.jsonl")
    assert [e["id"] for e in train] == ["19-198-0000", "19-198-0001", "26-495-0000", "26-496-0001"]
    e = train[0]
    assert e["text"] == "chapter 198 sentence 0 don't" and e["speaker"] == "19" and e["duration"] == 0.3
    assert os.path.isabs(e["audio_filepath"]) and e["audio_filepath"].endswith("LibriSpeech/train-clean-5/19/198/19-198-0000.flac")
    assert read(out / "dev.jsonl") == read(out / "dev-clean-2.jsonl")
    assert read(out / "train.jsonl") == read(out / "train-clean-5.jsonl")


def test_parts_and_subsets():
    assert ls.parts_of("100") == ["train-clean-100", "dev-clean", "dev-other", "test-clean", "test-other"]
    assert ls.parts_of("960")[:3] == ["train-clean-100", "train-clean-360", "train-other-500"]
    assert ls.parts_of() == ["train-clean-5", "dev-clean-2"]
    assert ls.url("dev-clean") == "https://www.openslr.org/resources/12/dev-clean.tar.gz"
    assert ls.url("train-clean-5") == "https://www.openslr.org/resources/31/train-clean-5.tar.gz"
    with pytest.raises(ValueError, match="unknown LibriSpeech part"):
        ls.parts_of(parts=["dev-cleen"])
    with pytest.raises(ValueError, match="either --subset or --parts"):
        ls.parts_of("100", ["dev-clean"])


def test_manifest_names_for_the_full_corpus(tmp_path):
    layout = {p: {"1": ["2"]} for p in ("train-clean-100", "train-clean-360", "dev-clean", "dev-other", "test-other")}
    root = fake_corpus(tmp_path / "librispeech", layout)
    counts = ls.prepare(str(root), str(tmp_path / "out"), parts=list(layout), progress=False)
    assert counts["train"] == 4 and counts["dev"] == 2 and counts["test-other"] == 2
    assert {f.name for f in (tmp_path / "out").iterdir()} == {f"{p}.jsonl" for p in layout} | {"train.jsonl", "dev.jsonl"}
    assert {e["id"][:3] for e in read(tmp_path / "out" / "dev.jsonl")} == {"1-2"}
    assert read(tmp_path / "out" / "dev.jsonl") == read(tmp_path / "out" / "dev-clean.jsonl")


def test_cli_and_missing_parts(tmp_path, capsys):
    root = fake_corpus(tmp_path / "librispeech")
    args = ["prepare", "librispeech", "--corpus-dir", str(root), "--out", str(tmp_path / "out"), "--no-progress"]
    assert cli.main(args + ["--parts", "dev-clean-2"]) == 0
    assert "dev-clean-2 2, dev 2, skipped 0" in capsys.readouterr().out
    assert cli.main(args + ["--subset", "100"]) == 2  # a --corpus-dir without them: no download
    assert "LibriSpeech part(s) train-clean-100, dev-clean, dev-other, test-clean, test-other not found" in capsys.readouterr().err
    assert cli.main(["prepare", "fsdd", "--subset", "100", "--out", str(tmp_path / "x")]) == 2
    assert "--subset applies to librispeech only" in capsys.readouterr().err


def make_archive(src_root, part, dest):
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(src_root / "LibriSpeech" / part, arcname=f"LibriSpeech/{part}")
        (src_root / "README.TXT").write_text("readme")
        tar.add(src_root / "README.TXT", arcname="LibriSpeech/README.TXT")
    return dest


def test_download_unpack_and_prepare(tmp_path, monkeypatch):
    src = fake_corpus(tmp_path / "src")
    make_archive(src, "dev-clean-2", tmp_path / "mirror" / "31" / "dev-clean-2.tar.gz")
    monkeypatch.setattr(ls, "BASE_URL", (tmp_path / "mirror").as_uri())  # a file:// mirror of OpenSLR
    monkeypatch.delenv("ASR_CORPORA", raising=False)
    monkeypatch.chdir(tmp_path)
    counts = ls.prepare(None, "out", parts=["dev-clean-2"], progress=False)
    assert counts == {"dev-clean-2": 2, "dev": 2, "skipped": 0}
    home = tmp_path / "data" / "corpora" / "librispeech"
    assert (home / "LibriSpeech" / "dev-clean-2" / "84" / "121123" / "84-121123.trans.txt").is_file()
    assert not (home / "dev-clean-2.tar.gz").exists()  # deleted once unpacked
    assert not (home / "LibriSpeech" / "dev-clean-2.part").exists()
    assert read(tmp_path / "out" / "dev.jsonl")[0]["audio_filepath"].startswith(str(home))


def test_checksum_mismatch_is_refused(tmp_path, monkeypatch):
    src = fake_corpus(tmp_path / "src", {"dev-clean": {"1": ["2"]}})
    make_archive(src, "dev-clean", tmp_path / "mirror" / "12" / "dev-clean.tar.gz")
    monkeypatch.setattr(ls, "BASE_URL", (tmp_path / "mirror").as_uri())
    monkeypatch.delenv("ASR_CORPORA", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DownloadError, match="checksum mismatch"):  # the real dev-clean's sha256 is pinned
        ls.prepare(None, "out", parts=["dev-clean"], progress=False)


def test_download_offline_gives_clear_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ls, "BASE_URL", "http://127.0.0.1:9/resources")
    monkeypatch.delenv("ASR_CORPORA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["prepare", "librispeech", "--out", "out"]) == 2
    err = capsys.readouterr().err
    assert "cannot download http://127.0.0.1:9/resources/31/train-clean-5.tar.gz" in err and "--corpus-dir" in err


ARPA = """\\data\\
ngram 1=4
ngram 2=2

\\1-grams:
-0.5\t</s>
-99\t<s>\t-0.3
-0.4\tTHE\t-0.2
-0.6\tDON'T\t-0.2

\\2-grams:
-0.2\t<s> THE
-0.3\tTHE DON'T

\\end\\
"""


def test_official_lm_is_lower_cased(tmp_path, monkeypatch, capsys):
    home = tmp_path / "corpora" / "librispeech"
    home.mkdir(parents=True)
    with gzip.open(home / "3-gram.pruned.1e-7.arpa.gz", "wt") as f:
        f.write(ARPA)
    out = tmp_path / "lm"
    args = ["prepare", "librispeech-lm", "--corpus-dir", str(tmp_path / "corpora"), "--out", str(out)]
    assert cli.main(args) == 0
    assert "3-gram.pruned.1e-7.lower.arpa.gz" in capsys.readouterr().out
    lm = NGramLM.read_arpa(out / "3-gram.pruned.1e-7.lower.arpa.gz")
    assert lm.vocab >= {"the", "don't"} and lm.probs[("the", "don't")] == -0.3
    assert cli.main(args + ["--parts", "4-gram"]) == 2
    assert "LibriSpeech LM 4-gram.arpa.gz not found" in capsys.readouterr().err
    monkeypatch.setattr(ls, "BASE_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("ASR_CORPORA", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DownloadError, match="127.0.0.1:9/11/4-gram.arpa.gz"):
        ls.prepare_lm(None, "lm2", ["4-gram"])
