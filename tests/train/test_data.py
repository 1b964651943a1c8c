import json
import logging

import numpy as np
import pytest
import soundfile as sf

from asr.frontend import FrontendConfig
from asr.manifest import Entry, ManifestError, read_manifest, write_manifest
from asr.text import CharTokenizer
from asr.train.data import FeatureDataset, bucket_batches

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
    batches = [b.tolist() for b in bucket_batches(lengths, max_frames=2000, max_batch=16, seed=3, epoch=1)]
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(500))
    for b in batches:
        assert len(b) <= 16
        assert len(b) == 1 or max(lengths[i] for i in b) * len(b) <= 2000
    assert batches == [b.tolist() for b in bucket_batches(lengths, 2000, 16, seed=3, epoch=1)]  # deterministic
    assert batches != [b.tolist() for b in bucket_batches(lengths, 2000, 16, seed=3, epoch=2)]  # reshuffled per epoch


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


def test_nonspeech_entries_count_durations_and_determinism():
    from asr.train.data import NONSPEECH_KINDS, nonspeech_entries

    durations = np.random.default_rng(0).uniform(0.3, 1.5, 50)
    real = [Entry(f"u{i}.wav", float(d), "ab") for i, d in enumerate(durations)]
    ns = nonspeech_entries(real, 0.3, seed=7)
    assert len(ns) == 15 and nonspeech_entries(real, 0.0, seed=7) == []  # round(fraction x utterances); 0: off
    assert all(e.text == "" and e.offset is None for e in ns)
    assert {e.extra["nonspeech"]["kind"] for e in ns} == set(NONSPEECH_KINDS)
    assert all(durations.min() <= e.duration <= durations.max() for e in ns)  # the corpus's range
    assert nonspeech_entries(real, 0.3, seed=7) == ns  # deterministic for the seed
    assert nonspeech_entries(real, 0.1, seed=7) == ns[:5]  # clip i does not depend on the fraction
    assert [e.duration for e in nonspeech_entries(real, 0.3, seed=8)] != [e.duration for e in ns]


def test_nonspeech_waves_are_deterministic_bounded_and_include_1khz():
    from asr.train.data import NONSPEECH_KINDS, nonspeech_wave

    for kind in NONSPEECH_KINDS:
        a = nonspeech_wave(kind, 4000, 8000, np.random.default_rng(3))
        assert a.dtype == np.float32 and a.shape == (4000,) and np.abs(a).max() <= 1.0, kind
        assert np.array_equal(a, nonspeech_wave(kind, 4000, 8000, np.random.default_rng(3))), kind
        assert not np.array_equal(a, nonspeech_wave(kind, 4000, 8000, np.random.default_rng(4))) or kind == "silence"
        assert a.any() != (kind == "silence"), kind  # digital silence is exactly zero, the rest is not
    peaks = [np.argmax(np.abs(np.fft.rfft(nonspeech_wave("tone", 8000, 8000, np.random.default_rng(s))))) for s in range(20)]
    assert 1000 in peaks and len(set(peaks)) > 5  # 1 kHz among random frequencies (1 Hz bins)
    with pytest.raises(ValueError, match="unknown non-speech kind 'hiss'"):
        nonspeech_wave("hiss", 100, 8000, np.random.default_rng(0))


def test_nonspeech_clips_get_empty_targets_in_both_datasets(tmp_path):
    """Generated clips join a dataset beside real audio: empty targets (a real empty transcript
    is still skipped), the same speed perturbation and front end, the same features whether
    kept in memory or computed per batch, and a CTC loss that is the all-blank path's."""
    import torch

    from asr.manifest import ManifestIndex, write_manifest
    from asr.text import PhoneTokenizer
    from asr.train.data import OnTheFlyDataset, chain_entries, nonspeech_entries

    wav = tmp_path / "a.wav"
    sf.write(wav, 0.1 * np.random.default_rng(0).standard_normal(4000).astype(np.float32), 8000)
    real = [Entry(str(wav), 0.5, t) for t in ("ab", "ba", "aab", "b")]
    ns = nonspeech_entries(real, 0.5, seed=1)
    tok, speeds = CharTokenizer.build(["ab"]), (1.0, 1.25)
    entries = real + [Entry(str(wav), 0.5, "")] + ns
    mem = FeatureDataset(entries, FE, tok, progress=False, speeds=speeds)
    assert len(mem) == 2 * (4 + 2) and [r for _, r in mem.skipped] == ["empty transcript"]
    idx = [i for i, e in enumerate(mem.entries) if "nonspeech" in e.extra]
    assert len(idx) == 4 and all(len(mem.targets[i]) == 0 for i in idx)
    assert mem.lengths[idx[1]] < mem.lengths[idx[0]]  # the speed-perturbed copy is shorter
    lazy = OnTheFlyDataset(entries, FE, tok, speeds=speeds)
    assert list(lazy.entries) == mem.entries and list(lazy.speeds) == mem.speeds
    write_manifest(tmp_path / "real.jsonl", real + [Entry(str(wav), 0.5, "")])  # as asr train reads a big one
    on_disk = OnTheFlyDataset(chain_entries(ManifestIndex.read(tmp_path / "real.jsonl"), ns), FE, tok, speeds=speeds)
    assert list(on_disk.entries) == mem.entries and on_disk.base_lengths().tolist() == mem.base_lengths().tolist()
    assert [None if t is None else t.tolist() for t in lazy.targets] == [t.tolist() for t in mem.targets]
    for i in idx:
        assert lazy.lengths[i] == mem.lengths[i] and torch.equal(lazy.features(i), mem.features(i))

    batch = mem.batch([0, idx[0], idx[1]])
    assert batch["target_lengths"].tolist() == [2, 0, 0]
    only = mem.batch(idx[:2])  # a batch of non-speech clips alone
    assert only["targets"].shape == (2, 1) and only["target_lengths"].tolist() == [0, 0]
    logp = torch.randn(only["feats"].shape[1], 2, 3).log_softmax(-1)
    loss = torch.nn.functional.ctc_loss(logp, only["targets"], only["lengths"], only["target_lengths"], reduction="none")
    want = torch.stack([-logp[: int(n), b, 0].sum() for b, n in enumerate(only["lengths"])])
    assert torch.allclose(loss, want)  # the all-blank path

    lex = tmp_path / "lexicon.txt"
    lex.write_text("AB\tA B\nBA\tB A\nAAB\tA A B\nB\tB\n")
    assert mem.set_aux_targets(PhoneTokenizer.from_lexicon(str(lex))) == 0  # empty phones: valid
    assert mem.batch(idx[:2])["aux_valid"].tolist() == [True, True]


def test_synthetic_entries_get_one_copy_and_a_fresh_draw_each_epoch(tmp_path):
    """data.synthetic: marked entries are never speed-perturbed, and each epoch keeps every real
    item and draws round(ratio x real items) synthetic ones anew (none with real_only)."""
    from asr.train.data import OnTheFlyDataset, epoch_items, is_synthetic, mark_synthetic

    wav = tmp_path / "a.wav"
    sf.write(wav, 0.1 * np.random.default_rng(0).standard_normal(4000).astype(np.float32), 8000)
    real = [Entry(str(wav), 0.5, t) for t in ("ab", "ba", "aab", "b")]
    fake = mark_synthetic([Entry(str(wav), 0.5, t, extra={"synth": {"engine": "x"}}) for t in ("ab", "bb") * 5])
    assert all(is_synthetic(e) and e.extra["synth"] == {"engine": "x"} for e in fake) and not any(map(is_synthetic, real))
    tok, speeds = CharTokenizer.build(["ab"]), (0.9, 1.0, 1.1)
    for ds in (FeatureDataset(real + fake, FE, tok, progress=False, speeds=speeds), OnTheFlyDataset(real + fake, FE, tok, speeds=speeds)):
        assert len(ds) == 3 * 4 + 10  # real items three times, synthetic once
        n_real = 12
        draws = [epoch_items(ds.synthetic_mask(), 0.5, seed=3, epoch=e) for e in range(4)]
        for items in draws:
            assert items == sorted(items) and items[:n_real] == list(range(n_real))  # every real item
            assert len(items) == n_real + 6 and all(is_synthetic(ds.entries[i]) for i in items[n_real:])
        assert len({tuple(d) for d in draws}) > 1  # a new draw per epoch ...
        assert epoch_items(ds.synthetic_mask(), 0.5, seed=3, epoch=2) == draws[2]  # ... the same on resume
        assert epoch_items(ds.synthetic_mask(), 0.5, seed=3, epoch=0, real_only=True) == list(range(n_real))
        assert len(epoch_items(ds.synthetic_mask(), 5.0, seed=3, epoch=0)) == n_real + 10  # all there are
    assert epoch_items([False] * 4, 0.5, seed=3, epoch=0) == [0, 1, 2, 3]  # no synthetic speech: all of it


def test_connected_strings_join_items_with_their_gaps_gains_and_targets(tmp_path):
    """train.concat: a string is its parts' audio, each scaled by its own gain, laid out with
    the drawn gaps (before, between, after), its target the parts' targets in order; the same
    features in memory and per batch; a fresh draw per epoch, the same on resume; generated
    non-speech, empty transcripts and long utterances never join one."""
    import torch

    from asr.train.data import ConcatConfig, OnTheFlyDataset, StringSpec, nonspeech_entries, string_specs, string_wave

    rng = np.random.default_rng(0)
    real = []
    for k, text in enumerate(["ab", "ba", "aab", "b"]):
        path = tmp_path / f"{k}.wav"
        sf.write(path, (0.1 * rng.standard_normal(2000 + 400 * k)).astype(np.float32), 8000)
        real.append(Entry(str(path), (2000 + 400 * k) / 8000, text))
    long_path = tmp_path / "long.wav"
    sf.write(long_path, (0.1 * rng.standard_normal(24000)).astype(np.float32), 8000)
    entries = real + [Entry(str(long_path), 3.0, "ab")] + nonspeech_entries(real, 0.5, seed=1)
    tok = CharTokenizer.build(["ab"])
    mem = FeatureDataset(entries, FE, tok, progress=False, keep_waves=True)
    lazy = OnTheFlyDataset(entries, FE, tok)
    cfg = ConcatConfig(ratio=2.0, items=[2, 3], pause_s=0.5, edge_s=0.2, max_part_s=2.0)
    assert mem.string_candidates(cfg.max_part_s) == lazy.string_candidates(cfg.max_part_s) == [0, 1, 2, 3]

    specs = string_specs([0, 1, 2, 3], cfg, 8000, seed=5, epoch=0)
    assert len(specs) == 8 and all(2 <= len(s.parts) <= 3 and len(s.gaps) == len(s.parts) + 1 for s in specs)
    assert all(max(s.gaps[1:-1]) <= 0.5 * 8000 and max(s.gaps[0], s.gaps[-1]) <= 0.2 * 8000 for s in specs)
    assert specs == string_specs([0, 1, 2, 3], cfg, 8000, seed=5, epoch=0)  # resume: the same draw
    assert specs != string_specs([0, 1, 2, 3], cfg, 8000, seed=5, epoch=1)  # a new one each epoch

    # the layout, exactly: part 1 at gain 2 after 3 samples, 2 samples of gap, part 0 at gain 0.5, 1 after
    spec = StringSpec(parts=(1, 0), gaps=(3, 2, 1), gains=(2.0, 0.5), floor=None, seed=0)
    w0, w1 = mem.wave(0), mem.wave(1)
    got = string_wave(spec, [w1, w0])
    want = np.concatenate([np.zeros(3), 2 * w1, np.zeros(2), 0.5 * w0, np.zeros(1)])
    np.testing.assert_allclose(got, np.clip(want, -1, 1), atol=1e-7)
    assert spec.num_samples([w0.size, w1.size]) == got.size
    noisy = string_wave(StringSpec((1, 0), (3, 2, 1), (2.0, 0.5), floor=1e-3, seed=0), [w1, w0])
    assert 0 < np.abs(noisy[:3]).max() < 1e-2  # a faint floor under the gaps

    for ds in (mem, lazy):
        ds.strings = specs
        n = len(ds)
        assert len(ds.lengths) == n + len(specs)
        batch = ds.batch([n, n + 1, 0])
        for row, k in enumerate([0, 1]):
            parts = specs[k].parts
            assert batch["target_lengths"][row] == sum(len(entries[i].text) for i in parts)
            want_ids = torch.cat([torch.tensor(tok.encode(entries[i].text)) for i in parts])
            assert torch.equal(batch["targets"][row, : len(want_ids)], want_ids)
            assert batch["lengths"][row] == ds.lengths[n + k]
    np.testing.assert_allclose(mem.batch([n])["feats"], lazy.batch([n])["feats"], atol=1e-5)
    with pytest.raises(ValueError, match="keep_waves"):
        FeatureDataset(entries[:2], FE, tok, progress=False).part_samples(0)


def test_shard_order_gives_each_shard_to_one_rank_and_changes_by_epoch():
    from asr.train.data import shard_order

    for world in (1, 2, 3):
        parts = [shard_order(10, seed=5, epoch=2, rank=r, world=world) for r in range(world)]
        assert sorted(sum(parts, [])) == list(range(10))  # every shard once, over all ranks
        whole = shard_order(10, seed=5, epoch=2)
        assert all(parts[r] == whole[r::world] for r in range(world))  # rank r: shards r, r + w, ... of the order
    assert shard_order(10, 5, 2) == shard_order(10, 5, 2) != shard_order(10, 5, 3)


def test_shuffle_buffer_permutes_within_its_window():
    from asr.train.data import shuffle_buffer

    stream = list(range(100))
    out = shuffle_buffer(stream, 8, np.random.default_rng(1))
    assert sorted(out) == stream and out != stream
    assert out == shuffle_buffer(stream, 8, np.random.default_rng(1))
    for t, item in enumerate(out[: 100 - 8]):
        assert item <= t + 8  # emitted no later than the buffer allows: reading stays sequential
    assert shuffle_buffer(stream, 1, np.random.default_rng(1)) == stream


def test_shard_batches_read_only_the_rank_s_shards_deterministically():
    from asr.train.data import shard_batches, shard_order

    rng = np.random.default_rng(0)
    shard_items = [list(range(k * 20, (k + 1) * 20)) for k in range(6)]
    lengths = rng.integers(10, 200, size=120).tolist()
    kw = dict(max_frames=800, max_batch=6, buffer=16, seed=3)
    for world in (1, 2, 3):
        seen = []
        for r in range(world):
            batches = shard_batches(shard_items, lengths, epoch=1, rank=r, world=world, **kw)
            assert batches == shard_batches(shard_items, lengths, epoch=1, rank=r, world=world, **kw)
            items = [i for b in batches for i in b]
            mine = {i for k in shard_order(6, 3, 1, r, world) for i in shard_items[k]}
            assert set(items) == mine and len(items) == len(mine)  # its own shards' items, each once
            assert all(len(b) <= 6 and max(lengths[i] for i in b) * len(b) <= 800 for b in batches)
            seen += items
        assert sorted(seen) == list(range(120))
    assert shard_batches(shard_items, lengths, epoch=1, **kw) != shard_batches(shard_items, lengths, epoch=2, **kw)


def test_interleaved_batches_give_each_process_its_own_in_order():
    """The trainer's layout: process r takes batches[g + a * world + r] for step g / group and
    accumulation a; that must be its own batches, in order, cut to the steps every process has."""
    from asr.train.data import interleave_ranks

    per_rank = [[[r, i] for i in range(n)] for r, n in enumerate((7, 5, 9))]
    for accum in (1, 2):
        batches = interleave_ranks(per_rank, accum)
        world, group = 3, 3 * accum
        steps = 5 // accum
        assert len(batches) == steps * group
        for r in range(world):
            mine = [batches[g + a * world + r] for g in range(0, len(batches), group) for a in range(accum)]
            assert mine == per_rank[r][: steps * accum]
