"""End to end on generated audio: train a tiny model, check the loss falls, that an
interrupted run resumed gives the very same weights, and that evaluate/transcribe work."""

import csv
import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch

import asr.train
from asr import cli
from asr.text import SentencePieceTokenizer
from asr.train.checkpoint import load_checkpoint
from asr.train.config import load_config
from asr.train.trainer import train
from tests.conftest import SR, run_without_torch, synth_utterance


def tiny_config(corpus, extra=(), **train_overrides):
    overrides = [
        f"data.train={corpus['train']}", f"data.dev={corpus['dev']}",
        "frontend.sample_rate=8000", "frontend.n_fft=256", "frontend.win_length=200",
        "frontend.hop_length=80", "frontend.n_mels=24",
        "model.subsampling=2", "model.conv_dim=32", "model.hidden_size=32", "model.num_layers=1",
        "model.dropout=0.1", "train.max_frames=4000", "train.max_batch=8", "train.lr=0.01",
        "train.warmup_steps=5", "train.epochs=3", "train.save_every_steps=4",
        "train.specaugment={freq_masks: 1, freq_width: 3, time_masks: 1, time_width: 3}",
    ] + list(extra) + [f"train.{k}={v}" for k, v in train_overrides.items()]
    return load_config(None, overrides)


def read_log(exp):
    with open(os.path.join(exp, "log.csv")) as f:
        return list(csv.DictReader(f))


def record_log_probs(recognizer) -> list:
    """The log-probs (frames, vocab) of every input ``recognizer`` decodes from now on."""
    seen = []
    real = recognizer.log_probs

    def log_probs(waves):
        out = real(waves)
        seen.extend(out)
        return out

    recognizer.log_probs = log_probs
    return seen


@pytest.fixture(scope="module")
def trained(tiny_corpus, tmp_path_factory):
    exp = str(tmp_path_factory.mktemp("exp") / "run")
    result = train(tiny_config(tiny_corpus, epochs=12, max_batch=4), exp, progress=False)
    return exp, result


def test_loss_falls_and_logs(trained):
    exp, result = trained
    rows = read_log(exp)
    assert len(rows) == 12 == result.epochs_run
    losses = [float(r["train_loss"]) for r in rows]
    assert losses[-1] < 0.5 * losses[0]
    for key in ("lr", "grad_norm", "dev_wer", "dev_cer", "audio_sec_per_sec"):
        assert rows[-1][key] != ""
    assert float(rows[-1]["dev_cer"]) < 60.0  # it has learned something real
    assert os.path.isfile(os.path.join(exp, "best.pt")) and os.path.isfile(os.path.join(exp, "last.pt"))


def test_checkpoint_holds_everything(trained):
    exp, _ = trained
    state = load_checkpoint(os.path.join(exp, "best.pt"))  # weights_only=True inside
    assert state["config"]["frontend"]["n_mels"] == 24
    assert state["tokenizer"]["vocab"][0] == "<blank>"
    assert "feat_mean" in state["model"] and float(state["model"]["feat_std"].min()) > 0


def test_resume_after_a_crash_gives_identical_weights(tiny_corpus, tmp_path, monkeypatch, caplog):
    full = str(tmp_path / "full")
    train(tiny_config(tiny_corpus), full, progress=False)

    crashed = str(tmp_path / "crashed")
    from asr.train import trainer as training
    from asr.train.data import FeatureDataset

    real_save, real_batch = training.save_checkpoint, FeatureDataset.batch
    armed = {"crash": False}

    def watching_save(path, *args, **kwargs):
        real_save(path, *args, **kwargs)
        p = kwargs.get("progress", {})
        if path.endswith("last.pt") and p.get("epoch") == 1 and p.get("batch", 0) > 0:
            armed["crash"] = True  # a mid-epoch checkpoint inside the second epoch exists

    def dying_batch(self, idx):
        if armed["crash"]:
            raise KeyboardInterrupt  # a hard stop in the middle of the next step
        return real_batch(self, idx)

    monkeypatch.setattr(training, "save_checkpoint", watching_save)
    monkeypatch.setattr(FeatureDataset, "batch", dying_batch)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tiny_corpus), crashed, progress=False)
    monkeypatch.setattr(FeatureDataset, "batch", real_batch)
    monkeypatch.setattr(training, "save_checkpoint", real_save)
    progress = load_checkpoint(os.path.join(crashed, "last.pt"))["progress"]
    assert progress["epoch"] == 1 and progress["batch"] > 0  # stopped inside the second epoch

    with pytest.raises(FileExistsError, match="--resume"):
        train(tiny_config(tiny_corpus), crashed, progress=False)
    # training is deterministic, so equal weights alone cannot tell resuming from starting
    # over: count the optimizer steps the resumed run takes (one gradient clip per step)
    steps_taken = []
    real_clip = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda *a, **k: (steps_taken.append(1), real_clip(*a, **k))[1])
    with caplog.at_level("WARNING", logger="asr.train.trainer"):
        train(tiny_config(tiny_corpus), crashed, resume=True, progress=False)
    assert "differ" not in caplog.text  # the same config: no warning (vocabulary size is set by training)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", real_clip)

    full_log, resumed_log = read_log(full), read_log(crashed)
    total_steps = int(full_log[-1]["step"])
    assert 0 < progress["step"] < total_steps
    assert len(steps_taken) == total_steps - progress["step"]  # only the steps not yet taken
    # one log row per epoch, the finished first epoch not repeated, at the same step numbers
    assert [(r["epoch"], r["step"]) for r in resumed_log] == [(r["epoch"], r["step"]) for r in full_log]
    assert [r["epoch"] for r in full_log] == ["1", "2", "3"]

    a = load_checkpoint(os.path.join(full, "last.pt"))["model"]
    b = load_checkpoint(os.path.join(crashed, "last.pt"))["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_accumulated_gradient_is_the_mean_over_batches(tiny_corpus, tmp_path, monkeypatch):
    """With train.accum_steps=2, one step's gradient is the mean of the two batches' gradients
    (each batch's loss divided by accum_steps), the same as two plain steps would average, and
    the logged loss is on the same scale. AdamW and gradient clipping hide a gradient twice as
    large from the weights, so the gradients themselves are compared: each step's gradient is
    recorded where it is clipped and then dropped, so the weights never move and every batch
    of both runs is seen by the same model."""
    grads = []
    real_clip = torch.nn.utils.clip_grad_norm_

    def record_and_drop(parameters, *args, **kwargs):
        parameters = list(parameters)
        grads[-1].append([p.grad.clone() for p in parameters])
        norm = real_clip(parameters, *args, **kwargs)
        for p in parameters:
            p.grad = None  # AdamW skips a parameter without a gradient: no update, no decay
        return norm

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", record_and_drop)
    extra = ["model.dropout=0.0", "train.specaugment=null"]
    for accum in (1, 2):
        grads.append([])
        train(tiny_config(tiny_corpus, extra, epochs=1, max_batch=4, accum_steps=accum), str(tmp_path / f"accum{accum}"), progress=False)
    single, accumulated = grads
    assert len(single) >= 4 and len(single) % 2 == 0 and len(accumulated) == len(single) // 2
    for k, step in enumerate(accumulated):
        for g, a, b in zip(step, single[2 * k], single[2 * k + 1]):
            torch.testing.assert_close(g, (a + b) / 2, rtol=1e-4, atol=1e-7)
    # every batch in both runs, seen by the same weights: the same mean loss per batch
    losses = [float(read_log(str(tmp_path / f"accum{n}"))[0]["train_loss"]) for n in (1, 2)]
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)


def test_evaluate_cli_prints_table_and_json(trained, tiny_corpus, tmp_path, capsys):
    """`asr evaluate` on the dev set scores best.pt exactly as training did when it picked it
    (same features, same greedy decoding), and its table, JSON and details agree."""
    exp, train_result = trained
    out = tmp_path / "details.txt"
    rc = cli.main(["evaluate", "--checkpoint", os.path.join(exp, "best.pt"), "--manifest", tiny_corpus["dev"],
                   "--out", str(out), "--no-progress"])
    assert rc == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    best_epoch = load_checkpoint(os.path.join(exp, "best.pt"))["progress"]["best_epoch"]
    logged = read_log(exp)[best_epoch - 1]
    assert result["num_utts"] == 12
    assert result["wer_percent"] == pytest.approx(train_result.best_dev_wer) == pytest.approx(float(logged["dev_wer"]), rel=1e-5)
    assert result["cer_percent"] == pytest.approx(float(logged["dev_cer"]), rel=1e-5)
    assert 0 < result["cer_percent"] < 60  # it has learned something, and errs somewhere
    table = dict(line.strip().rsplit(None, 1) for line in lines if line.startswith("  "))
    assert (table["WER %"], table["CER %"]) == (f"{result['wer_percent']:.2f}", f"{result['cer_percent']:.2f}")
    assert int(table["sentence errors"]) == result["sentence_errors"]
    details = out.read_text()
    assert details.count("REF:") == 12 and details.count("ERROR") == result["sentence_errors"]


def test_transcribe_cli_and_python_api(trained, tmp_path, capsys):
    exp, _ = trained
    rng = np.random.default_rng(5)
    wave = synth_utterance("ab", rng)
    # another rate and two channels, as a FLAC file
    from asr.audio import resample

    stereo = np.stack([resample(wave, SR, 16000)] * 2, axis=1)
    sf.write(tmp_path / "x.flac", stereo, 16000)
    (tmp_path / "bad.wav").write_bytes(b"")
    rc = cli.main(["transcribe", "--checkpoint", os.path.join(exp, "best.pt"), "--format", "json",
                   str(tmp_path / "x.flac"), str(tmp_path / "bad.wav")])
    captured = capsys.readouterr()
    assert rc == 1  # one file failed...
    assert "bad.wav" in captured.err and "empty" in captured.err
    line = json.loads(captured.out.strip().splitlines()[0])  # ...the other was still transcribed
    assert line["path"].endswith("x.flac")

    model = asr.train.load_model(os.path.join(exp, "best.pt"))
    log_probs = record_log_probs(model)
    t = model.transcribe(str(tmp_path / "x.flac"))
    assert t.text == line["text"] != ""  # the CLI and the API agree, and it hears something
    assert abs(t.duration - len(wave) / SR) < 0.01
    # arrays work too: the file's 16 kHz signal (FLAC keeps 16 bits of it) gives the same
    # posteriors; the original 8 kHz one nearly the same (resampled twice: not bit-exact). A
    # file read at the wrong rate or with its channels summed instead of averaged would not.
    for array, rate, tol in ((stereo[:, 0], 16000, 0.01), (wave, None, 0.3)):
        assert model.transcribe(array, sample_rate=rate).text == t.text
        assert log_probs[-1].shape == log_probs[0].shape
        assert np.abs(np.exp(log_probs[-1]) - np.exp(log_probs[0])).max() < tol  # token probabilities


def test_bad_config_is_reported(tiny_corpus, tmp_path, capsys):
    rc = cli.main(["train", "--config", "nonexistent.yaml", "--exp", str(tmp_path / "e")])
    assert rc == 2 and "config file not found" in capsys.readouterr().err
    rc = cli.main(["train", "--config", "recipes/fsdd/conf.yaml", "--exp", str(tmp_path / "e"), "model.rnn_kind=gru"])
    assert rc == 2 and "unknown config key" in capsys.readouterr().err


def test_bpe_config_fields(tiny_corpus, tmp_path):
    cfg = load_config(None, ["data.tokenizer=bpe", "data.bpe_vocab_size=128", "data.bpe_model_type=bpe"])
    assert (cfg.data.tokenizer, cfg.data.bpe_vocab_size, cfg.data.bpe_model_type) == ("bpe", 128, "bpe")
    with pytest.raises(ValueError, match="data.bpe_model_type"):
        load_config(None, ["data.tokenizer=bpe", "data.bpe_model_type=wordpiece"])
    with pytest.raises(ValueError, match="data.bpe_vocab_size"):
        load_config(None, ["data.tokenizer=bpe", "data.bpe_vocab_size=lots"])
    with pytest.raises(ValueError, match=r"data.bpe_vocab_size: vocabulary size 3 is too small.* at least 5"):
        train(tiny_config(tiny_corpus, ["data.tokenizer=bpe", "data.bpe_vocab_size=3"]), str(tmp_path / "e"), progress=False)


def test_bpe_tokenizer_end_to_end(tiny_corpus, tmp_path):
    """data.tokenizer=bpe: train; the checkpoint and the exported model carry the SentencePiece
    model, and a process where torch cannot be imported decodes to the same plain text."""
    from asr.text import tokenizer_from_dict
    from asr.train.export import export_onnx

    exp = str(tmp_path / "bpe")
    train(tiny_config(tiny_corpus, ["data.tokenizer=bpe", "data.bpe_vocab_size=12"], epochs=10, max_batch=4), exp, progress=False)
    state = load_checkpoint(os.path.join(exp, "best.pt"))
    assert state["tokenizer"]["kind"] == "bpe" and state["config"]["data"]["bpe_vocab_size"] == 12
    tok = tokenizer_from_dict(state["tokenizer"])
    assert isinstance(tok, SentencePieceTokenizer) and 5 < len(tok.vocab) <= 12
    assert state["config"]["model"]["vocab_size"] == len(tok.vocab)
    assert any(len(p) > 2 and p.startswith("\u2581") for p in tok.vocab)  # real pieces, not just characters
    losses = [float(r["train_loss"]) for r in read_log(exp)]
    assert losses[-1] < 0.25 * losses[0]  # it learns

    with open(tiny_corpus["dev"]) as f:
        wavs = [json.loads(line)["audio_filepath"] for line in f][:4]
    model = asr.train.load_model(os.path.join(exp, "best.pt"))
    want = [model.transcribe(w).text for w in wavs]
    assert any(want)
    onnx_path = str(tmp_path / "bpe.onnx")
    export_onnx(os.path.join(exp, "best.pt"), onnx_path, parity_lengths_s=(0.6,))
    proc = run_without_torch("""
        import json, sys
        import asr
        rec = asr.load_model(sys.argv[1])
        tok = rec.tokenizer
        results = [rec.transcribe(w) for w in sys.argv[2:]]
        print(json.dumps({"kind": tok.kind, "round_trip": tok.decode(tok.encode("ab cab")),
                          "texts": [r.text for r in results], "words": [[w.word for w in r.words] for r in results]}))
    """, onnx_path, *wavs)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["kind"] == "bpe" and got["round_trip"] == "ab cab"  # "\u2581" -> spaces
    assert got["texts"] == want
    assert got["words"] == [t.split() for t in want]


def test_epoch_snapshots_and_averaging(tiny_corpus, tmp_path):
    exp = str(tmp_path / "avg")
    train(tiny_config(tiny_corpus, epochs=4, keep_epochs=2), exp, progress=False)
    names = sorted(n for n in os.listdir(exp) if n.startswith("epoch-"))
    assert names == ["epoch-3.pt", "epoch-4.pt"]  # only the last keep_epochs stay
    assert cli.main(["average", "--exp", exp, "--last", "2"]) == 0
    avg = load_checkpoint(os.path.join(exp, "avg.pt"))
    a, b = (load_checkpoint(os.path.join(exp, n))["model"] for n in names)
    for k, v in avg["model"].items():
        if v.is_floating_point():
            assert torch.allclose(v, (a[k] + b[k]) / 2, atol=1e-6)
    assert avg["averaged"] == names
    # the averaged model is a normal checkpoint: evaluate and transcribe it
    assert cli.main(["evaluate", "--checkpoint", os.path.join(exp, "avg.pt"), "--manifest", tiny_corpus["dev"], "--no-progress"]) == 0
    assert cli.main(["average", "--exp", str(tmp_path)]) == 2  # no snapshots there: a clear error


def test_2d_front_end_cmn_inter_ctc_vtlp_and_sortagrad_train(tiny_corpus, tmp_path, monkeypatch):
    import asr.train.trainer as training

    calls = []
    real = training.bucket_batches

    def spy(lengths, max_frames, max_batch, shuffle=True, seed=0, epoch=None):
        batches = real(lengths, max_frames, max_batch, shuffle, seed, epoch or 0)
        if epoch is None:  # dev evaluation
            return batches
        calls.append(shuffle)
        if not shuffle:  # SortaGrad epoch: shortest batches first
            longest = [max(lengths[i] for i in b) for b in batches]
            assert longest == sorted(longest)
        return batches

    monkeypatch.setattr(training, "bucket_batches", spy)
    cfg = tiny_config(tiny_corpus, ["model.subsampling_conv=2d", "model.conv_channels=4", "model.utterance_cmn=true",
                                    "model.num_layers=2", "model.inter_ctc_layer=1"],
                      epochs=2, vtlp="[0.9,1.1]", sortagrad="true")
    exp = str(tmp_path / "run")
    train(cfg, exp, progress=False)
    # each epoch's steps counted up front for the LR schedule (epoch 1 sorted, epoch 2 shuffled), then run
    assert calls == [False, True, False, True]
    rows = read_log(exp)
    assert len(rows) == 2 and all(np.isfinite(float(r["train_loss"])) for r in rows)
    ckpt = load_checkpoint(os.path.join(exp, "last.pt"))
    assert ckpt["config"]["model"]["subsampling_conv"] == "2d" and ckpt["config"]["train"]["vtlp"] == [0.9, 1.1]
    assert ckpt["config"]["model"]["utterance_cmn"] and "inter_head.weight" in ckpt["model"]


def test_phone_auxiliary_head(tiny_corpus, tmp_path):
    """The intermediate head learns phones from a lexicon (which lacks some words: those
    utterances get no phone loss); the checkpoint's model has a phone-sized head."""
    from asr.manifest import read_manifest

    words = sorted({w for e in read_manifest(tiny_corpus["train"]) for w in e.text.split()})
    lex = tmp_path / "lexicon.txt"
    lex.write_text("".join(f"{w.upper()}\t{' '.join(c.upper() + c.upper() for c in w)}\n" for w in words[:-3]))
    with pytest.raises(ValueError, match="inter_ctc_layer"):
        load_config(None, [f"data.aux_lexicon={lex}"])
    cfg = tiny_config(tiny_corpus, [f"data.aux_lexicon={lex}", "model.num_layers=2", "model.inter_ctc_layer=1"], epochs=2)
    exp = str(tmp_path / "run")
    train(cfg, exp, progress=False)
    rows = read_log(exp)
    assert len(rows) == 2 and all(np.isfinite(float(r["train_loss"])) for r in rows)
    ckpt = load_checkpoint(os.path.join(exp, "last.pt"))
    n_phones = ckpt["model"]["inter_head.weight"].shape[0]
    assert n_phones == 1 + len({c for w in words[:-3] for c in w})
    # decodes as usual: with the final head over the model's own units, not the phone head
    recognizer = asr.train.load_model(os.path.join(exp, "last.pt"))
    vocab = ckpt["tokenizer"]["vocab"]
    assert recognizer.tokenizer.vocab == vocab and len(vocab) != n_phones
    log_probs = record_log_probs(recognizer)
    text = recognizer.transcribe(read_manifest(tiny_corpus["dev"])[0].audio_filepath).text
    assert [lp.shape[1] for lp in log_probs] == [len(vocab)] and set(text) <= set(vocab[1:])


def test_phone_model_end_to_end(tiny_corpus, tmp_path):
    """data.tokenizer=phone: the model learns a lexicon's phones and the word boundary; the
    checkpoint and the exported model carry the pronunciations, and beam search writes words
    (the same in a process without torch); greedy decoding writes phones."""
    from asr.decoding import DecodingOptions
    from asr.manifest import read_manifest
    from asr.text import WORD_BOUNDARY, PhoneTokenizer
    from asr.train.export import export_onnx

    words = sorted({w for e in read_manifest(tiny_corpus["train"]) for w in e.text.split()})
    lex = tmp_path / "lexicon.txt"  # a letter's "phone" is the letter twice
    lex.write_text("".join(f"{w.upper()}\t{' '.join(c.upper() * 2 for c in w)}\n" for w in words))
    with pytest.raises(ValueError, match="data.lexicon"):
        load_config(None, ["data.tokenizer=phone"])
    exp = str(tmp_path / "phone")
    train(tiny_config(tiny_corpus, ["data.tokenizer=phone", f"data.lexicon={lex}"], epochs=10, max_batch=4), exp, progress=False)
    state = load_checkpoint(os.path.join(exp, "best.pt"))
    tok = state["tokenizer"]
    assert tok["kind"] == "phone" and tok["vocab"][:2] == ["<blank>", WORD_BOUNDARY] and set(tok["lexicon"]) == set(words)
    rows = read_log(exp)
    assert float(rows[-1]["train_loss"]) < 0.25 * float(rows[0]["train_loss"])  # it learns
    with open(tiny_corpus["dev"]) as f:
        wavs = [json.loads(line)["audio_filepath"] for line in f][:4]
    greedy = asr.train.load_model(os.path.join(exp, "best.pt"))
    assert isinstance(greedy.tokenizer, PhoneTokenizer)
    assert all(set(greedy.transcribe(w).text.split()) <= set(tok["vocab"][1:]) for w in wavs)  # phones
    model = asr.train.load_model(os.path.join(exp, "best.pt"), DecodingOptions(beam_size=8))
    want = [model.transcribe(w).text for w in wavs]
    assert any(want) and all(set(t.split()) <= set(words) for t in want)  # words of the lexicon
    onnx_path = str(tmp_path / "phone.onnx")
    export_onnx(os.path.join(exp, "best.pt"), onnx_path, parity_lengths_s=(0.6,))
    proc = run_without_torch("""
        import json, sys
        import asr
        from asr.decoding import DecodingOptions
        rec = asr.load_model(sys.argv[1], DecodingOptions(beam_size=8))
        print(json.dumps({"kind": rec.tokenizer.kind, "texts": [rec.transcribe(w).text for w in sys.argv[2:]]}))
    """, onnx_path, *wavs)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got == {"kind": "phone", "texts": want}


@pytest.mark.parametrize("value", ["1", "1.5", "-0.1", "lots", "true", "null"])
def test_nonspeech_fraction_is_validated(value):
    with pytest.raises(ValueError, match="train.nonspeech_fraction"):
        load_config(None, [f"train.nonspeech_fraction={value}"])
    assert load_config(None, ["train.nonspeech_fraction=0.25"]).train.nonspeech_fraction == 0.25
    assert load_config(None, ["train.nonspeech_fraction=0"]).train.nonspeech_fraction == 0.0


def test_synthetic_settings_are_validated():
    for overrides, match in [(["train.synthetic_ratio=0"], "train.synthetic_ratio"),
                             (["train.synthetic_ratio=-1"], "train.synthetic_ratio"),
                             (["data.synthetic=s.jsonl", "train.epochs=3", "train.real_only_epochs=3"], "train.real_only_epochs"),
                             (["train.real_only_epochs=1"], "applies with data.synthetic")]:
        with pytest.raises(ValueError, match=match):
            load_config(None, overrides)
    cfg = load_config(None, ["data.synthetic=s.jsonl", "train.synthetic_ratio=2", "train.real_only_epochs=1"])
    assert (cfg.data.synthetic, cfg.train.synthetic_ratio, cfg.train.real_only_epochs) == ("s.jsonl", 2.0, 1)


def test_training_mixes_synthetic_speech_then_fine_tunes_on_real(tiny_corpus, tmp_path, caplog):
    """data.synthetic joins each epoch in the set ratio (log.csv's audio seconds show it), the
    last train.real_only_epochs leave it out, normalization statistics come from the real
    speech alone, and the learning-rate schedule ends where it should."""
    import logging

    from asr.manifest import Entry, read_manifest, write_manifest

    real = read_manifest(tiny_corpus["train"])
    synthetic = str(tmp_path / "synthetic.jsonl")  # the real audio again, 4x louder, as "synthetic" speech
    rng = np.random.default_rng(0)
    fake = []
    for i, e in enumerate(real * 2):
        wave, sr = sf.read(e.audio_filepath, dtype="float32")
        path = str(tmp_path / f"s{i}.wav")
        sf.write(path, np.clip(4 * wave + 0.01 * rng.standard_normal(len(wave)), -1, 1).astype(np.float32), sr)
        fake.append(Entry(path, e.duration, e.text, speaker="synth-x"))
    write_manifest(synthetic, fake)
    exp = str(tmp_path / "mix")
    cfg = tiny_config(tiny_corpus, [f"data.synthetic={synthetic}"], epochs=4, synthetic_ratio=0.5, real_only_epochs=1)
    with caplog.at_level(logging.INFO, logger="asr.train.trainer"):
        train(cfg, exp, progress=False)
    assert f"{len(fake)} utterances" in caplog.text and f"{len(real) + len(fake)} utts" in caplog.text
    assert f"{len(fake)} of them synthetic" in caplog.text and "none in the last 1 epoch(s)" in caplog.text
    rows = read_log(exp)
    audio = [float(r["audio_seconds"]) for r in rows]
    # padded batches make audio seconds approximate: 1.5x the real speech, then 1x at the end
    assert audio[0] > 1.3 * audio[3] and audio[1] > 1.3 * audio[3] and audio[2] > 1.3 * audio[3]
    assert float(rows[-1]["lr"]) == pytest.approx(0.01 * 0.05, rel=0.05)  # the schedule's end: min_lr_ratio
    plain = str(tmp_path / "plain")
    train(tiny_config(tiny_corpus, epochs=1), plain, progress=False)
    # statistics of the real speech only: the same as without the (louder) synthetic speech
    a, b = (load_checkpoint(os.path.join(d, "last.pt"))["model"] for d in (exp, plain))
    assert torch.allclose(a["feat_mean"], b["feat_mean"]) and torch.allclose(a["feat_std"], b["feat_std"])


def test_nonspeech_examples_teach_the_model_to_say_nothing(trained, tiny_corpus, tmp_path, caplog):
    """train.nonspeech_fraction adds generated clips with empty transcripts: the model trained
    with them transcribes digital silence and white noise as empty text, with far more
    confident blanks than the same training without them (the `trained` fixture). (On this
    corpus, whose pauses are faint noise, the model without them also says nothing there:
    the difference is in the blank posteriors, not yet in the text.)"""
    import logging

    exp = str(tmp_path / "ns")
    with caplog.at_level(logging.INFO, logger="asr.train.trainer"):
        train(tiny_config(tiny_corpus, epochs=12, max_batch=4, nonspeech_fraction=0.5), exp, progress=False)
    assert "24 generated non-speech clips" in caplog.text and "train 72 utts" in caplog.text  # 48 + 0.5 x 48
    assert load_checkpoint(os.path.join(exp, "last.pt"))["config"]["train"]["nonspeech_fraction"] == 0.5

    rng = np.random.default_rng(7)
    signals = {"digital silence": np.zeros(SR), "white noise -30 dBFS": 0.0316 * rng.standard_normal(SR),
               "white noise -10 dBFS": 0.316 * rng.standard_normal(SR)}
    with_ns, without = asr.train.load_model(os.path.join(exp, "last.pt")), asr.train.load_model(os.path.join(trained[0], "last.pt"))

    def speech_mass(model, wave):
        """The largest probability of a non-blank output over the frames."""
        return float(1 - np.exp(model.log_probs([wave.astype(np.float32)])[0][:, 0]).min())

    for name, wave in signals.items():
        assert with_ns.transcribe(wave.astype(np.float32)).text == "", name
        assert speech_mass(with_ns, wave) < 0.5 * speech_mass(without, wave), name


def test_perturb_batch_applies_each_configured_perturbation():
    from asr.train.trainer import perturb_batch

    feats = torch.randn(4, 30, 24) - 2.0
    lengths = torch.tensor([30, 30, 20, 30])
    torch.manual_seed(0)
    same, chunk = perturb_batch(feats, lengths, load_config(None, []))
    assert torch.equal(same, feats) and chunk is None
    for key, value in (("gain_db", "[-24,6]"), ("eq_db", "12"), ("noise_snr", "[5,40]"), ("vtlp", "[0.9,1.1]")):
        out, _ = perturb_batch(feats, lengths, load_config(None, [f"train.{key}={value}"]))
        assert out.shape == feats.shape and not torch.equal(out, feats), key
        if key != "vtlp":  # gain and channel leave padding frames alone
            assert torch.equal(out[2, 20:], feats[2, 20:]), key


def test_resume_names_the_settings_that_differ_from_the_checkpoint():
    from asr.train.trainer import _changed_settings

    saved = load_config(None, ["model.hidden_size=32"])
    saved.model.vocab_size, saved.model.input_dim = 11, 80  # set when that run started
    assert _changed_settings(saved, load_config(None, ["model.hidden_size=32"])) == []
    assert _changed_settings(saved, load_config(None, ["model.hidden_size=64", "frontend.n_mels=40"])) == [
        "model.hidden_size", "frontend.n_mels"]


def test_connected_strings_and_a_closed_vocabulary_train_and_resume_exactly(tiny_corpus, tmp_path, caplog, monkeypatch):
    """train.concat adds each epoch's strings (more audio per epoch than the utterances alone;
    the log says how many); data.vocabulary gives the model an <unk> unit that the checkpoint
    keeps; an interrupted run with strings resumes to the very same weights."""
    import logging

    from asr.manifest import read_manifest

    words = sorted({w for e in read_manifest(tiny_corpus["train"]) for w in e.text.split()})
    extra = ["data.tokenizer=word", f"data.vocabulary=[{','.join(words[:2])}]",
             "train.concat={ratio: 1.0, items: [2, 3], pause_s: 0.3}"]
    plain = str(tmp_path / "plain")
    train(tiny_config(tiny_corpus, ["data.tokenizer=word"], epochs=1), plain, progress=False)
    exp = str(tmp_path / "strings")
    with caplog.at_level(logging.INFO, logger="asr.train.trainer"):
        train(tiny_config(tiny_corpus, extra, epochs=2), exp, progress=False)
    assert "train.concat: 48 connected strings per epoch of 2-3 of 48 utterances" in caplog.text
    assert float(read_log(exp)[0]["audio_seconds"]) > 2 * float(read_log(plain)[0]["audio_seconds"])
    state = load_checkpoint(os.path.join(exp, "last.pt"))
    assert state["tokenizer"]["vocab"] == ["<blank>", *words[:2], "<unk>"]

    # resume: stop after the first step of epoch 2 (a crash), continue, compare with the full run
    crashed = str(tmp_path / "crashed")
    real_step = torch.optim.AdamW.step
    calls = {"n": 0}
    steps_epoch1 = int(read_log(exp)[0]["step"])

    def step_then_crash(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == steps_epoch1 + 1:
            raise RuntimeError("simulated crash")
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", step_then_crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tiny_config(tiny_corpus, extra, epochs=2, save_every_steps=1), crashed, progress=False)
    monkeypatch.setattr(torch.optim.AdamW, "step", real_step)
    train(tiny_config(tiny_corpus, extra, epochs=2, save_every_steps=1), crashed, resume=True, progress=False)
    a, b = (load_checkpoint(os.path.join(d, "last.pt"))["model"] for d in (exp, crashed))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_max_steps_stops_mid_epoch_with_a_dev_evaluation_and_resumes_there(tiny_corpus, tmp_path):
    exp = str(tmp_path / "bounded")
    full_steps = int(read_log(train(tiny_config(tiny_corpus, epochs=1, max_batch=4), str(tmp_path / "full"),
                                    progress=False).exp_dir)[-1]["step"])
    assert full_steps > 3
    train(tiny_config(tiny_corpus, epochs=2, max_batch=4, max_steps=3), exp, progress=False)
    rows = read_log(exp)
    assert [(r["epoch"], r["step"]) for r in rows] == [("1", "3")] and rows[0]["dev_wer"] != ""
    progress = load_checkpoint(os.path.join(exp, "last.pt"))["progress"]
    assert (progress["epoch"], progress["batch"], progress["step"]) == (0, 3, 3)
    assert os.path.isfile(os.path.join(exp, "best.pt")) and not os.path.exists(os.path.join(exp, "epoch-1.pt"))
    # the same limit again: nothing left to do; no limit: the rest of the first epoch, then the second
    train(tiny_config(tiny_corpus, epochs=2, max_batch=4, max_steps=3), exp, resume=True, progress=False)
    assert len(read_log(exp)) == 1
    train(tiny_config(tiny_corpus, epochs=2, max_batch=4), exp, resume=True, progress=False)
    assert [(r["epoch"], r["step"]) for r in read_log(exp)] == [("1", "3"), ("1", str(full_steps)),
                                                                ("2", str(2 * full_steps))]
    with pytest.raises(ValueError, match="train.max_steps must be >= 0"):
        tiny_config(tiny_corpus, max_steps=-1)


def test_training_from_shards_learns_and_resumes_exactly(tiny_corpus, tmp_path, monkeypatch):
    """data.train naming a shard index: training reads the tar shards (on the fly, with a worker
    process in the uninterrupted run, in the main process in the other), the loss falls, and a
    run stopped mid-epoch and resumed ends with the same weights: the position in the shard
    stream is the checkpoint's (epoch, batch), the stream a pure function of (seed, epoch, rank)."""
    from asr.manifest import read_manifest
    from asr.shards import write_shards
    from asr.train import trainer as training
    from asr.train.data import OnTheFlyDataset

    write_shards(read_manifest(tiny_corpus["train"]), tmp_path / "shards", shard_size=8)
    shards = [f"data.train={tmp_path / 'shards' / 'shards.json'}", "data.shuffle_buffer=12"]

    def config(workers):
        return tiny_config(tiny_corpus, shards, precompute_features="false", num_workers=workers,
                           speed_perturb="[0.9,1.0]")

    full = str(tmp_path / "full")
    train(config(1), full, progress=False)
    rows = read_log(full)
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])

    crashed = str(tmp_path / "crashed")
    real_save, real_batch = training.save_checkpoint, OnTheFlyDataset.batch
    armed = {"crash": False}

    def watching_save(path, *args, **kwargs):
        real_save(path, *args, **kwargs)
        p = kwargs.get("progress", {})
        if path.endswith("last.pt") and p.get("epoch") == 1 and p.get("batch", 0) > 0:
            armed["crash"] = True

    def dying_batch(self, idx):
        if armed["crash"]:
            raise KeyboardInterrupt
        return real_batch(self, idx)

    monkeypatch.setattr(training, "save_checkpoint", watching_save)
    monkeypatch.setattr(OnTheFlyDataset, "batch", dying_batch)
    with pytest.raises(KeyboardInterrupt):
        train(config(0), crashed, progress=False)
    monkeypatch.setattr(OnTheFlyDataset, "batch", real_batch)
    monkeypatch.setattr(training, "save_checkpoint", real_save)
    progress = load_checkpoint(os.path.join(crashed, "last.pt"))["progress"]
    assert progress["epoch"] == 1 and progress["batch"] > 0  # stopped inside the second epoch

    train(config(0), crashed, resume=True, progress=False)
    assert [(r["epoch"], r["step"]) for r in read_log(crashed)] == [(r["epoch"], r["step"]) for r in rows]
    a = load_checkpoint(os.path.join(full, "last.pt"))["model"]
    b = load_checkpoint(os.path.join(crashed, "last.pt"))["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_sharded_training_refuses_what_it_does_not_do(tiny_corpus, tmp_path):
    with pytest.raises(ValueError, match="train.sortagrad is not available with sharded data.train"):
        tiny_config(tiny_corpus, [f"data.train={tmp_path / 'shards.json'}"], sortagrad="true")
    with pytest.raises(ValueError, match="data.shuffle_buffer must be >= 1"):
        tiny_config(tiny_corpus, ["data.shuffle_buffer=0"])


def test_loader_workers_leave_the_weights_unchanged(tiny_corpus, tmp_path):
    """Batches built in a worker process or in the main one give the same run: the loader
    draws nothing from the global random generator (a draw per loader would also make a run
    resumed mid-epoch, which builds one loader more, differ from an uninterrupted one)."""
    runs = {}
    for workers in (0, 1):
        exp = str(tmp_path / f"w{workers}")
        train(tiny_config(tiny_corpus, precompute_features="false", num_workers=workers, epochs=1), exp, progress=False)
        runs[workers] = load_checkpoint(os.path.join(exp, "last.pt"))["model"]
    for k in runs[0]:
        assert torch.equal(runs[0][k], runs[1][k]), k
