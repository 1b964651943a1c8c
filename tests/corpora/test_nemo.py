"""asr prepare manifest: a NeMo-style JSONL manifest checked and rewritten."""

import json
import logging

import numpy as np
import soundfile as sf

from asr import cli

SR = 16000


def ramp(path, seconds):
    """A file whose sample values tell the time: value = seconds / 10."""
    sf.write(path, (np.arange(int(seconds * SR)) / SR / 10).astype(np.float32), SR, subtype="FLOAT")


def read(path):
    return [json.loads(line) for line in open(path)]


def test_nemo_manifest(tmp_path, caplog, capsys):
    audio = tmp_path / "nemo" / "wavs"
    audio.mkdir(parents=True)
    ramp(audio / "a.wav", 1.0)
    lines = [
        {"audio_filepath": "wavs/a.wav", "duration": 1.0, "text": "whole file", "lang": "en"},
        {"audio_filepath": str(audio / "a.wav"), "offset": 0.25, "duration": 0.5, "text": "a segment", "speaker": 7},
        "{broken json",
        {"audio_filepath": "wavs/a.wav", "text": "no duration"},
        {"audio_filepath": "wavs/missing.wav", "duration": 1.0, "text": "missing"},
        {"audio_filepath": "wavs/a.wav", "duration": 1.0, "text": " ... "},
        {"audio_filepath": "wavs/a.wav", "offset": 0.8, "duration": 0.5, "text": "past the end"},
        {"audio_filepath": "wavs/a.wav", "offset": "0.1", "duration": 0.5, "text": "offset as text"},
    ]
    src = tmp_path / "nemo" / "train_manifest.json"
    src.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n\n")
    with caplog.at_level(logging.WARNING):
        assert cli.main(["prepare", "manifest", str(src), "--out", str(tmp_path / "out")]) == 0
    assert "train_manifest 2, skipped 6" in capsys.readouterr().out
    log = caplog.text
    assert "train_manifest.json:3: skipping: not valid JSON" in log
    assert "train_manifest.json:4: skipping: missing field 'duration'" in log
    assert "train_manifest.json:5: skipping: audio file not found" in log
    assert "train_manifest.json:6: skipping: empty transcript" in log
    assert "train_manifest.json:7: skipping: segment ends 1.3 s, past the end of" in log
    assert "train_manifest.json:8: skipping: field 'offset' must be a number of seconds" in log
    got = read(tmp_path / "out" / "train_manifest.jsonl")
    assert got[0] == {"audio_filepath": str(audio / "a.wav"), "duration": 1.0, "text": "whole file", "lang": "en"}
    assert got[1] == {"audio_filepath": str(audio / "a.wav"), "duration": 0.5, "offset": 0.25, "text": "a segment", "speaker": "7"}
    assert cli.main(["prepare", "manifest", str(tmp_path / "nope.json"), "--out", str(tmp_path / "out")]) == 2
    assert "nope.json: manifest not found" in capsys.readouterr().err
