import json
import os

import numpy as np
import pytest
import soundfile as sf

from asr import cli
from asr.corpora import fsdd
from asr.corpora.download import DownloadError, download


def fake_fsdd(root, speakers=("alice", "bob"), indices=range(12)):
    rec = root / "fsdd" / "recordings"
    rec.mkdir(parents=True)
    for d in range(10):
        for s in speakers:
            for i in indices:
                sf.write(rec / f"{d}_{s}_{i}.wav", np.zeros(800, dtype=np.float32), 8000)
    (rec / "notes.txt").write_text("not audio")
    return root


def read(path):
    return [json.loads(line) for line in open(path)]


def test_official_split(tmp_path):
    root = fake_fsdd(tmp_path / "corpora")
    (root / "fsdd" / "recordings" / "3_bob_11.wav").write_bytes(b"broken")  # unreadable: skipped
    counts = fsdd.prepare(str(root), str(tmp_path / "out"))
    assert counts == {"train": 10 * 2 * 2 - 1, "dev": 100, "test": 100, "skipped": 1}
    test = read(tmp_path / "out" / "test.jsonl")
    assert {e["text"] for e in test} == set(fsdd.WORDS)
    e = next(x for x in test if x["audio_filepath"].endswith("7_alice_3.wav"))
    assert e == {"audio_filepath": e["audio_filepath"], "duration": 0.1, "text": "seven", "speaker": "alice"}
    assert os.path.isabs(e["audio_filepath"])


def test_leave_one_speaker_out(tmp_path):
    root = fake_fsdd(tmp_path / "corpora")
    counts = fsdd.prepare(str(root / "fsdd"), str(tmp_path / "out"), test_speaker="bob")  # the corpus folder itself works too
    assert counts["test"] == 120 and counts["dev"] == 50 and counts["train"] == 70
    assert {e["speaker"] for e in read(tmp_path / "out" / "test.jsonl")} == {"bob"}
    assert "bob" not in {e["speaker"] for e in read(tmp_path / "out" / "train.jsonl")}
    with pytest.raises(ValueError, match="not an FSDD speaker"):
        fsdd.prepare(str(root), str(tmp_path / "out2"), test_speaker="carol")


def test_environment_variable_and_cli(tmp_path, monkeypatch, capsys):
    root = fake_fsdd(tmp_path / "corpora")
    monkeypatch.setenv("ASR_CORPORA", str(root))
    assert cli.main(["prepare", "fsdd", "--out", str(tmp_path / "out")]) == 0
    assert "train 40" in capsys.readouterr().out


def test_missing_corpus_without_download(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ASR_CORPORA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["prepare", "fsdd", "--out", "out", "--no-download"]) == 2
    assert "FSDD not found" in capsys.readouterr().err


def test_download_offline_gives_clear_message(tmp_path):
    with pytest.raises(DownloadError, match="--corpus-dir"):
        download("http://127.0.0.1:9/fsdd.tar.gz", str(tmp_path / "x.tar.gz"), timeout=2)


@pytest.mark.parametrize("command", ["prepare", "train", "evaluate", "transcribe"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([command, "--help"])
    assert e.value.code == 0
    assert "usage: asr " + command in capsys.readouterr().out



RECIPES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "recipes")


@pytest.mark.parametrize("recipe", ["fsdd", "speechocean762", "librispeech", "an4", "commonvoice"])
def test_recipe_configs_load(recipe):
    from asr.train.config import load_config

    confs = [f for f in os.listdir(os.path.join(RECIPES, recipe)) if f.startswith("conf") and f.endswith(".yaml")]
    assert confs and os.access(os.path.join(RECIPES, recipe, "run.sh"), os.X_OK)
    for conf in confs:
        cfg = load_config(os.path.join(RECIPES, recipe, conf))
        assert cfg.data.train.endswith(".jsonl") and cfg.frontend.n_mels > 0
