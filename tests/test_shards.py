"""asr/shards.py: tar shards written from a manifest (asr prepare shards) and read back."""

import io
import json
import os
import tarfile

import numpy as np
import pytest
import soundfile as sf

from asr import cli
from asr.audio import load_audio
from asr.manifest import Entry, read_manifest
from asr.shards import ShardError, is_shard_index, load_shard_audio, read_index, shard_entries, write_shards
from tests.conftest import SR, run_without_torch, write_corpus


def read_index_lenient(folder):
    return json.load(open(os.path.join(folder, "shards.json")))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("shards") / "c", 10, seed=3, name="utt")


def test_shards_hold_each_utterance_as_a_key_group_with_an_index(corpus, tmp_path):
    entries = read_manifest(corpus)
    index = write_shards(entries, tmp_path / "s", shard_size=4, source=corpus)
    names = [s["name"] for s in index["shards"]]
    assert names == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    assert [s["utterances"] for s in index["shards"]] == [4, 4, 2]
    assert index["utterances"] == 10 and index["skipped"] == [] and index["source"] == corpus
    assert index["duration"] == pytest.approx(sum(e.duration for e in entries), abs=0.01)
    assert json.load(open(tmp_path / "s" / "shards.json")) == index
    with tarfile.open(tmp_path / "s" / names[1]) as tf:
        members = tf.getmembers()
        assert [m.name for m in members[:2]] == ["000000004.wav", "000000004.json"]  # keys: manifest line numbers
        assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in members)
        meta = json.load(tf.extractfile(members[1]))
        assert meta == {"text": entries[4].text, "duration": round(entries[4].duration, 4), "speaker": "s1",
                        "source": entries[4].audio_filepath}
        assert tf.extractfile(members[0]).read() == open(entries[4].audio_filepath, "rb").read()  # bytes as they are
    # read back: the same utterances, texts and audio, in order
    back = shard_entries(tmp_path / "s" / "shards.json")
    assert back.nbytes / len(back) < 80  # columns, read again when asked: not an object an utterance
    assert back[-1] == list(back)[-1] and back[2:4] == [back[2], back[3]]
    assert [(e.text, e.duration, e.extra["shard"]["index"]) for e in back] == \
        [(e.text, round(e.duration, 4), i // 4) for i, e in enumerate(entries)]
    for e, b in zip(entries, back):
        assert np.array_equal(load_shard_audio(b, SR), load_audio(e.audio_filepath, SR))
    # deterministic: the same manifest gives the same bytes
    write_shards(entries, tmp_path / "again", shard_size=4, source=corpus)
    for name in names + ["shards.json"]:
        assert open(tmp_path / "s" / name, "rb").read() == open(tmp_path / "again" / name, "rb").read()
    # a shorter rewrite leaves no stale shard behind
    write_shards(entries, tmp_path / "s", shard_size=100)
    assert sorted(os.listdir(tmp_path / "s")) == ["shard-000000.tar", "shards.json"]


def test_missing_and_unreadable_files_are_named_skipped_and_counted(corpus, tmp_path, caplog):
    entries = read_manifest(corpus)[:3]
    (tmp_path / "junk.wav").write_bytes(b"not audio at all" * 10)
    bad = [Entry(str(tmp_path / "gone.wav"), 1.0, "a"), Entry(str(tmp_path / "junk.wav"), 1.0, "b")]
    with caplog.at_level("WARNING", logger="asr.shards"):
        index = write_shards([entries[0], bad[0], entries[1], bad[1], entries[2]], tmp_path / "s")
    assert index["utterances"] == 3 and len(index["shards"]) == 1
    assert [s["audio_filepath"] for s in index["skipped"]] == [bad[0].audio_filepath, bad[1].audio_filepath]
    assert index["skipped"][0]["reason"] == "file not found"
    assert "cannot decode" in index["skipped"][1]["reason"]
    assert "gone.wav" in caplog.text and "junk.wav" in caplog.text
    with pytest.raises(ShardError, match="no utterance could be written"):
        write_shards(bad, tmp_path / "none")
    assert len(read_index_lenient(tmp_path / "none")["skipped"]) == 2
    with tarfile.open(tmp_path / "s" / "shard-000000.tar") as tf:  # keys keep the manifest's line numbers
        assert [m.name for m in tf.getmembers() if m.name.endswith(".wav")] == ["000000000.wav", "000000002.wav",
                                                                                 "000000004.wav"]


def test_shard_mb_limits_a_shard_and_segments_become_flac(corpus, tmp_path):
    entries = read_manifest(corpus)
    size = os.path.getsize(entries[0].audio_filepath)
    index = write_shards(entries, tmp_path / "s", shard_mb=2.5 * size / 1e6)
    assert all(s["bytes"] <= 2.5 * size for s in index["shards"]) and index["utterances"] == 10
    assert len(index["shards"]) >= 4
    seg = Entry(entries[0].audio_filepath, 0.2, entries[0].text, offset=0.1)  # a segment of a longer file
    write_shards([seg], tmp_path / "seg")
    (back,) = shard_entries(tmp_path / "seg" / "shards.json")
    assert back.audio_filepath.endswith("000000000.flac")
    whole = load_audio(entries[0].audio_filepath, SR)
    np.testing.assert_allclose(load_shard_audio(back, SR), whole[int(0.1 * SR): int(0.3 * SR)], atol=1e-4)


def test_reader_names_what_it_cannot_use(tmp_path, caplog):
    assert is_shard_index("x/shards.json") and not is_shard_index("x/train.jsonl")
    with pytest.raises(ShardError, match="not found"):
        read_index(tmp_path / "none.json")
    (tmp_path / "other.json").write_text('{"a": 1}')
    with pytest.raises(ShardError, match="not a shard index"):
        read_index(tmp_path / "other.json")
    # a tar from elsewhere: a key without audio and one without metadata are left out, named
    buf = io.BytesIO()
    sf.write(buf, np.zeros(800, np.float32), SR, format="WAV")
    members = {"a.wav": buf.getvalue(), "a.json": b'{"text": "x", "duration": 0.1}', "b.json": b'{"text": "y", "duration": 1}',
               "c.flac": b"..."}
    with tarfile.open(tmp_path / "t.tar", "w") as tf:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    (tmp_path / "shards.json").write_text(json.dumps({"format": "asr-shards/1", "shards": [{"name": "t.tar", "utterances": 3}]}))
    with caplog.at_level("WARNING", logger="asr.shards"):
        (e,) = shard_entries(tmp_path / "shards.json")
    assert e.text == "x" and load_shard_audio(e, SR).shape == (800,)
    assert "'b' has no .flac or .wav member" in caplog.text and "'c' has no .json member" in caplog.text
    assert "holds 1 usable utterances, the index says 3" in caplog.text


def test_prepare_shards_command(corpus, tmp_path, capsys):
    out = str(tmp_path / "s")
    assert cli.main(["prepare", "shards", "--manifest", corpus, "--out", out, "--shard-size", "6", "--no-progress"]) == 0
    assert "wrote 2 shard(s) of 10 utterances" in capsys.readouterr().out
    assert [s["utterances"] for s in read_index(os.path.join(out, "shards.json"))["shards"]] == [6, 4]
    assert cli.main(["prepare", "shards", "--out", out]) == 2  # no --manifest
    assert cli.main(["prepare", "fsdd", "--out", out, "--shard-size", "3"]) == 2  # a shards-only option


def test_writing_and_reading_shards_needs_no_torch(corpus, tmp_path):
    run_without_torch("""
        import sys
        from asr.manifest import read_manifest
        from asr.shards import write_shards, shard_entries, load_shard_audio
        write_shards(read_manifest(sys.argv[1]), sys.argv[2], shard_size=5)
        e = shard_entries(sys.argv[2] + "/shards.json")
        assert len(e) == 10 and load_shard_audio(e[0], 8000).size > 0
    """, corpus, str(tmp_path / "s"))
