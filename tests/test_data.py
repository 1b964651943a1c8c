import json
import logging

import numpy as np
import pytest
import soundfile as sf

from asr.manifest import Entry, ManifestError, read_manifest, write_manifest
from asr.nn.data import FeatureDataset, bucket_batches
from asr.frontend import FrontendConfig
from asr.text import CharTokenizer

FE = FrontendConfig(sample_rate=8000, n_fft=256, win_length=200, hop_length=80, n_mels=20)


def test_manifest_round_trip_and_relative_paths(tmp_path):
    entries = [Entry("a.wav", 1.5, "one", "s1"), Entry("/abs/b.wav", 0.5, "two")]
    write_manifest(tmp_path / "m.jsonl", entries)
    got = read_manifest(tmp_path / "m.jsonl")
    assert got[0].audio_filepath == str(tmp_path / "a.wav")  # relative to the manifest's folder
    assert got[1].audio_filepath == "/abs/b.wav"
    assert [e.text for e in got] == ["one", "two"] and got[0].speaker == "s1" and got[1].speaker is None
    assert got[0].offset is None and "offset" not in json.loads((tmp_path / "m.jsonl").read_text().splitlines()[0])


def test_segments_round_trip_and_load_only_their_span(tmp_path, caplog):
    sf.write(tmp_path / "long.wav", 0.1 * np.random.default_rng(0).standard_normal(8000).astype(np.float32), 8000)
    write_manifest(tmp_path / "m.jsonl", [Entry("long.wav", 0.25, "ab", offset=0.5), Entry("long.wav", 0.5, "ba", offset=0.0)])
    got = read_manifest(tmp_path / "m.jsonl")
    assert [(e.offset, e.duration) for e in got] == [(0.5, 0.25), (0.0, 0.5)] and got[0].extra == {}
    ds = FeatureDataset(got, FE, CharTokenizer.build(["ab"]), progress=False)
    assert ds.lengths == [FE.num_frames(2000), FE.num_frames(4000)]
    with open(tmp_path / "m.jsonl", "a") as f:
        f.write(json.dumps({"audio_filepath": "long.wav", "duration": 1.0, "text": "x", "offset": -1}) + "\n")
    with caplog.at_level(logging.WARNING):
        assert len(read_manifest(tmp_path / "m.jsonl")) == 2
    assert "m.jsonl:3: skipping malformed line: field 'offset' must be a number of seconds >= 0" in caplog.text


def test_malformed_lines_are_named_and_skipped(tmp_path, caplog):
    p = tmp_path / "m.jsonl"
    p.write_text("\n".join([
        json.dumps({"audio_filepath": "a.wav", "duration": 1.0, "text": "ok"}),
        "{not json",
        json.dumps({"audio_filepath": "b.wav", "text": "no duration"}),
        json.dumps({"audio_filepath": "c.wav", "duration": "1", "text": "x"}),
        json.dumps({"audio_filepath": "d.wav", "duration": -1, "text": "x"}),
        json.dumps([1, 2]),
        "",
    ]))
    with caplog.at_level(logging.WARNING):
        got = read_manifest(p)
    assert len(got) == 1
    text = caplog.text
    assert f"{p}:2" in text and "not valid JSON" in text
    assert f"{p}:3" in text and "missing field 'duration'" in text
    assert f"{p}:4" in text and "type str" in text
    assert f"{p}:5" in text and "positive" in text
    assert "skipped 5 malformed line(s)" in text
    with pytest.raises(ManifestError, match=r"m.jsonl:2: not valid JSON"):
        read_manifest(p, strict=True)


def test_missing_or_empty_manifest(tmp_path):
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "none.jsonl")
    (tmp_path / "e.jsonl").write_text("\n")
    with pytest.raises(ManifestError, match="no valid entries"):
        read_manifest(tmp_path / "e.jsonl")


def test_bucket_batches_cover_everything_once_and_respect_budget():
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 300, size=500).tolist()
    batches = bucket_batches(lengths, max_frames=2000, max_batch=16, seed=3, epoch=1)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(500))
    for b in batches:
        assert len(b) <= 16
        assert len(b) == 1 or max(lengths[i] for i in b) * len(b) <= 2000
    assert batches == bucket_batches(lengths, 2000, 16, seed=3, epoch=1)  # deterministic
    assert batches != bucket_batches(lengths, 2000, 16, seed=3, epoch=2)  # reshuffled per epoch


def test_dataset_skips_bad_entries_and_counts_them(tmp_path, caplog):
    good = tmp_path / "good.wav"
    sf.write(good, 0.1 * np.random.default_rng(0).standard_normal(4000).astype(np.float32), 8000)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "corrupt.wav").write_bytes(b"nonsense" * 20)
    sf.write(tmp_path / "short.wav", np.zeros(100, dtype=np.float32), 8000)
    entries = [
        Entry(str(good), 0.5, "ab"),
        Entry(str(tmp_path / "empty.wav"), 0.5, "ab"),
        Entry(str(tmp_path / "corrupt.wav"), 0.5, "ab"),
        Entry(str(tmp_path / "missing.wav"), 0.5, "ab"),
        Entry(str(tmp_path / "short.wav"), 0.1, "ab"),
        Entry(str(good), 0.5, "zz"),  # text outside the vocabulary
        Entry(str(good), 0.5, "!!"),  # empty after normalization
    ]
    with caplog.at_level(logging.WARNING):
        ds = FeatureDataset(entries, FE, CharTokenizer.build(["ab"]), progress=False)
    assert len(ds) == 1 and len(ds.skipped) == 6
    reasons = dict((p.split("/")[-1], r) for p, r in ds.skipped[:5])
    assert "empty" in reasons["empty.wav"] and "cannot decode" in reasons["corrupt.wav"]
    assert "not found" in reasons["missing.wav"] and "too short" in reasons["short.wav"]
    assert "corrupt.wav" in caplog.text
    batch = ds.batch([0])
    assert batch["feats"].shape == (1, FE.num_frames(4000), 20)
    assert batch["targets"].tolist() == [[1, 2]]


def test_aux_targets_in_batches(tmp_path):
    from asr.text import PhoneTokenizer

    wav = tmp_path / "a.wav"
    sf.write(wav, 0.1 * np.random.default_rng(0).standard_normal(4000).astype(np.float32), 8000)
    lex = tmp_path / "lexicon.txt"
    lex.write_text("AB\tEY1 B IY0\nBA\tB AA1\n")
    entries = [Entry(str(wav), 0.5, "ab ba"), Entry(str(wav), 0.5, "ab"), Entry(str(wav), 0.5, "aa")]
    ds = FeatureDataset(entries, FE, CharTokenizer.build(["ab ba"]), progress=False)
    assert "aux_targets" not in ds.batch([0, 1, 2])
    phones = PhoneTokenizer.from_lexicon(str(lex))
    assert ds.set_aux_targets(phones) == 1  # "aa" is not in the lexicon
    b = ds.batch([0, 1, 2])
    assert b["aux_valid"].tolist() == [True, True, False]
    assert b["aux_target_lengths"].tolist() == [5, 3, 0]
    assert phones.decode(b["aux_targets"][0].tolist()) == "EY B IY B AA"
    assert b["targets"].shape[0] == 3  # the main targets are all there
