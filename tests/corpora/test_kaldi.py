"""asr prepare kaldi: a Kaldi data folder (wav.scp, text, segments, utt2spk) checked and rewritten as a manifest."""

import json
import logging

import numpy as np
import pytest
import soundfile as sf

from asr import cli
from asr.audio import load_audio
from asr.frontend import FrontendConfig
from asr.manifest import read_manifest, segment_of
from asr.train.data import FeatureDataset

SR = 16000


def ramp(path, seconds):
    """A file whose sample values tell the time: value = seconds / 10."""
    sf.write(path, (np.arange(int(seconds * SR)) / SR / 10).astype(np.float32), SR, subtype="FLOAT")


def read(path):
    return [json.loads(line) for line in open(path)]


def kaldi_dir(tmp_path, with_segments):
    audio = tmp_path / "audio"
    audio.mkdir()
    ramp(audio / "rec1.wav", 1.0)
    ramp(audio / "rec2.wav", 0.5)
    (audio / "broken.wav").write_bytes(b"broken")
    d = tmp_path / "data" / "train"
    d.mkdir(parents=True)
    (d / "wav.scp").write_text(
        f"rec1 {audio / 'rec1.wav'}\n"
        "rec2 audio/rec2.wav\n"  # relative: to the current folder (Kaldi's rule) or the data folder's parent
        "rec3 sph2pipe -f wav -p -c 1 /corpora/an4/x.sph |\n"
        "rec4 /exp/feats/raw_wav.1.ark:1234\n"
        f"rec5 {audio / 'missing.wav'}\n"
        f"rec6 {audio / 'broken.wav'}\n"
    )
    if with_segments:
        (d / "segments").write_text(
            "u1 rec1 0.00 0.40\n"
            "u2 rec1 0.50 1.00\n"
            "u3 rec1 0.90 1.50\n"  # ends past the recording
            "u4 rec2 0.10 -1\n"  # -1: to the end
            "u5 rec3 0 1\n"
            "u6 rec1 0.7 0.6\n"  # end before start
            "u7 rec9 0 1\n"  # unknown recording
            "u8 rec1 0.2\n"  # malformed
        )
        texts = {"u1": "HELLO  WORLD", "u2": "good bye", "u3": "too long", "u4": "tail", "u5": "piped", "u7": "x"}
        utt2spk = {"u1": "s1", "u2": "s1", "u4": "s2"}
    else:
        texts = {"rec1": "one", "rec2": "two", "rec3": "three", "rec4": "four", "rec5": "five", "rec6": "six",
                 "rec7": "no audio", "empty": ""}
        utt2spk = {"rec1": "s1"}
    (d / "text").write_text("".join(f"{u} {t}\n" for u, t in texts.items()))
    (d / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in utt2spk.items()))
    return d


def test_kaldi_whole_files(tmp_path, monkeypatch, caplog, capsys):
    d = kaldi_dir(tmp_path, with_segments=False)
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING):
        assert cli.main(["prepare", "kaldi", str(d), "--out", str(tmp_path / "out")]) == 0
    assert "train 2, skipped 6" in capsys.readouterr().out
    log = caplog.text
    assert "skipping utterance rec3: wav.scp gives a command ('sph2pipe -f wav -p -c 1 /corpora/an4/x.sph |')" in log
    assert "which soundfile cannot run" in log
    assert "skipping utterance rec4: wav.scp gives an archive offset" in log
    assert "skipping utterance rec5: audio file not found" in log and "skipping utterance rec6: unreadable audio" in log
    assert "skipping utterance rec7: not in wav.scp" in log and "skipping utterance empty: empty transcript" in log
    got = read(tmp_path / "out" / "train.jsonl")
    assert [(e["id"], e["text"], e["duration"], e.get("speaker")) for e in got] == [("rec1", "one", 1.0, "s1"), ("rec2", "two", 0.5, None)]
    assert got[1]["audio_filepath"] == str(tmp_path / "audio" / "rec2.wav") and "offset" not in got[0]


def test_kaldi_segments(tmp_path, caplog):
    d = kaldi_dir(tmp_path, with_segments=True)  # relative rec2 path: found from the recipe folder (d/../..)
    out = tmp_path / "segs.jsonl"
    with caplog.at_level(logging.WARNING):
        assert cli.main(["prepare", "kaldi", str(d), "--out", str(out)]) == 0
    log = caplog.text
    assert "segments:6: skipping line: bad times (start 0.7, end 0.6)" in log
    assert "segments:8: skipping line: expected 'utterance recording start end'" in log
    assert "skipping utterance u3: segment ends at 1.5 s, after the end of" in log
    assert "skipping utterance u5: wav.scp gives a command" in log
    assert "skipping utterance u7: recording rec9 not in wav.scp" in log
    got = read(out)
    assert [(e["id"], e["offset"], e["duration"], e["text"], e.get("speaker")) for e in got] == [
        ("u1", 0.0, 0.4, "HELLO WORLD", "s1"), ("u2", 0.5, 0.5, "good bye", "s1"), ("u4", 0.1, 0.4, "tail", "s2")]
    # the training data loader reads just the segment
    entries = read_manifest(out)
    wave = load_audio(entries[1].audio_filepath, SR, *segment_of(entries[1]))
    assert len(wave) == 8000 and wave[0] == pytest.approx(0.05)
    fe = FrontendConfig(sample_rate=SR)
    ds = FeatureDataset(entries, fe, progress=False)
    assert ds.lengths == [fe.num_frames(n) for n in (6400, 8000, 6400)]


def test_kaldi_errors(tmp_path, capsys):
    assert cli.main(["prepare", "kaldi", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "not a Kaldi data folder (no wav.scp)" in capsys.readouterr().err
    assert cli.main(["prepare", "kaldi", "--out", str(tmp_path / "o")]) == 2
    assert "asr prepare kaldi needs a Kaldi data folder" in capsys.readouterr().err
    assert cli.main(["prepare", "an4", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "a source path applies to kaldi, manifest and wordnet-text only" in capsys.readouterr().err


def test_a_segment_just_past_the_end_is_capped_at_the_end(tmp_path):
    """A segment ending within the rounding tolerance past its file keeps only the audio there is."""
    ramp(tmp_path / "rec.wav", 1.0)
    d = tmp_path / "data"
    d.mkdir()
    (d / "wav.scp").write_text(f"rec {tmp_path / 'rec.wav'}\n")
    (d / "segments").write_text("u1 rec 0.25 1.03\nu2 rec 0.5 1.0\n")  # 1.03: 30 ms past the end
    (d / "text").write_text("u1 one\nu2 two\n")
    out = tmp_path / "segs.jsonl"
    assert cli.main(["prepare", "kaldi", str(d), "--out", str(out)]) == 0
    got = read(out)
    assert [(e["id"], e["offset"], e["duration"]) for e in got] == [("u1", 0.25, 0.75), ("u2", 0.5, 0.5)]
