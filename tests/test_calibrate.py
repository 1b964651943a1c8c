"""Word-confidence calibration (asr.calibrate, asr.decoding.confidence.ConfidenceCalibration):
the fit, its checks, where it is stored, and every path that reports word confidence."""

import json
import os

import numpy as np
import pytest
import soundfile as sf

from asr.decoding.confidence import CalibrationDataError, ConfidenceCalibration, word_confidence
from asr.decoding.greedy import CtcStreamDecoder
from asr.decoding.result import words_from_tokens
from asr.text import BLANK, CharTokenizer


def _logit(p):
    return np.log(p) - np.log1p(-p)


def test_fit_recovers_the_map_that_made_the_labels():
    rng = np.random.default_rng(0)
    raw = rng.uniform(0.02, 0.999, 20000)
    truth = 1 / (1 + np.exp(-(0.7 * _logit(raw) - 1.5)))
    right = rng.random(raw.size) < truth
    cal = ConfidenceCalibration.fit(raw, right, source="dev.jsonl")
    assert abs(cal.scale - 0.7) < 0.05 and abs(cal.bias + 1.5) < 0.08
    assert (cal.words, cal.wrong, cal.source) == (20000, int((~right).sum()), "dev.jsonl")
    np.testing.assert_allclose(cal(raw), truth, atol=0.03)
    assert isinstance(cal(0.5), float) and 0 < cal(0.0) < cal(0.5) < cal(1.0) < 1  # the ends are clipped, not inf


def test_fit_converges_where_plain_newton_steps_run_away():
    """Many words at the clipped top score, most of them wrong: undamped Newton steps from
    (1, 0) ran off to a scale of 2e6 on data like these (as on one speaker-fold of
    speechocean762); halving each step until the loss falls finds the maximum."""
    rng = np.random.default_rng(5)
    raw = np.concatenate([np.full(200, 0.9999999), rng.uniform(0.01, 0.9, 600)])
    right = np.concatenate([rng.random(200) < 0.4, rng.random(600) < 0.1])
    cal = ConfidenceCalibration.fit(raw, right)
    assert 0 < cal.scale < 1
    assert abs(cal(raw[:200]).mean() - right[:200].mean()) < 0.02  # the map's mean matches each group's share right
    assert abs(cal(raw[200:]).mean() - right[200:].mean()) < 0.02


def test_fit_refuses_what_cannot_be_calibrated():
    with pytest.raises(CalibrationDataError, match="at least 2 right and 2 wrong"):
        ConfidenceCalibration.fit([0.9, 0.8, 0.1], [True, True, False])
    with pytest.raises(CalibrationDataError, match="do not rank right words above wrong ones"):
        ConfidenceCalibration.fit([0.9, 0.8, 0.2, 0.1], [False, False, True, True])
    with pytest.raises(ValueError, match="3 scores but 2 labels"):
        ConfidenceCalibration.fit([0.9, 0.8, 0.1], [True, False])
    # perfectly separated words still give a finite, increasing map
    cal = ConfidenceCalibration.fit([0.9, 0.95, 0.2, 0.3], [True, True, False, False])
    assert np.isfinite(cal.scale) and cal.scale > 0 and cal(0.95) > 0.5 > cal(0.2)


def test_dict_round_trip_and_validation():
    cal = ConfidenceCalibration(0.71, -1.75, words=1576, wrong=1205, source="dev.jsonl")
    d = cal.to_dict()
    assert d["method"] == "platt" and ConfidenceCalibration.from_dict(json.loads(json.dumps(d))) == cal
    for bad, msg in (({"scale": -1.0, "bias": 0.0}, "scale must be > 0"),
                     ({"scale": float("nan"), "bias": 0.0}, "finite"),
                     ({"scale": 1.0, "bias": "x"}, "bias must be a finite number"),
                     ({"scale": 1.0}, "needs 'scale' and 'bias'"),
                     ({"scale": 1.0, "bias": 0.0, "temperature": 2}, "unknown keys"),
                     ({"method": "isotonic", "scale": 1.0, "bias": 0.0}, "unknown method"),
                     ({"scale": 1.0, "bias": 0.0, "words": -3}, "words must be")):
        with pytest.raises(ValueError, match=msg):
            ConfidenceCalibration.from_dict(bad)


def test_calibration_refusals_word_for_word():
    with pytest.raises(CalibrationDataError) as err:
        ConfidenceCalibration.fit([0.9, 0.8, 0.1], [True, True, False])
    assert str(err.value) == "confidence calibration needs at least 2 right and 2 wrong words, got 2 right and 1 wrong of 3"
    with pytest.raises(ValueError) as err:
        ConfidenceCalibration("x", 1.0, words=True, wrong=-1)
    assert str(err.value) == ("confidence calibration: scale must be a finite number, got 'x'; words must be an "
                              "integer >= 0, got True; wrong must be an integer >= 0, got -1")
    with pytest.raises(ValueError, match=r"^confidence calibration: scale must be > 0 \(a calibration may not reverse"):
        ConfidenceCalibration(0.0, 1.0)
    for bad, msg in (([1], "expected a mapping, got list"),
                     ({"method": "isotonic"}, "unknown method 'isotonic' (this toolkit knows 'platt')"),
                     ({"scale": 1.0}, "needs 'scale' and 'bias'")):
        with pytest.raises(ValueError) as err:
            ConfidenceCalibration.from_dict(bad)
        assert str(err.value) == f"confidence calibration: {msg}"
    cal = ConfidenceCalibration.fit([0.9, 0.95, 0.6, 0.2, 0.3, 0.7], [True, True, False, False, False, True])
    assert (cal.words, cal.wrong, cal.source) == (6, 3, "")
    assert isinstance(cal(0.5), float) and cal(np.array([0.5, 0.9])).shape == (2,)


TOK = CharTokenizer([BLANK, " ", "a", "b"])
PATH = [(2, 0, 1), (3, 3, 3), (1, 4, 4), (2, 5, 5)]  # "ab a"


def test_words_and_streams_carry_the_calibrated_value():
    cal = ConfidenceCalibration(0.5, -1.0)
    conf = [0.8, 0.6, 0.8, 0.9]
    _, words = words_from_tokens(TOK, PATH, 0.04, conf, cal)
    assert [w.confidence for w in words] == [round(cal(0.48), 4), round(cal(0.9), 4)]
    assert word_confidence([0.8, 0.6], cal) == round(cal(0.48), 4) and word_confidence([], cal) == 0.0
    lp = np.log(np.full((6, 4), 1e-6, np.float32))
    for t, a, b in PATH:
        lp[a: b + 1, t] = np.log(0.9)
    lp[2, 0] = 0.0
    dec = CtcStreamDecoder(TOK, 0.04, calibration=cal)
    dec.accept(lp[:3])
    dec.accept(lp[3:])
    utt = dec.finish_utterance()
    assert [w.confidence for w in utt.words] == [round(cal(0.81), 4), round(cal(0.9), 4)]


class TableBackend:
    """A stand-in model: each input's length picks its (frames, V) log-probs from a table."""

    path, description, details, subsampling, calibration = "table", "table", {}, 1, None

    def __init__(self, table, frontend, tokenizer):
        self.table, self.frontend, self.tokenizer = table, frontend, tokenizer

    def log_probs(self, waves):
        return [self.table[w.size] for w in waves]


def overconfident_dev_set(tmp_path):
    """120 one-word utterances of 6 speakers from a stand-in model sure of its word whether
    right ("a") or wrong ("b"): (recognizer, manifest path)."""
    from asr.frontend import FrontendConfig
    from asr.runtime.offline import OfflineRecognizer

    fe = FrontendConfig(sample_rate=8000, n_fft=256, win_length=200, hop_length=80, n_mels=24)
    rng = np.random.default_rng(3)
    table, lines = {}, []
    for i in range(120):  # one word each: "a" (right) or "b" (wrong), the model sure of it either way
        n = 800 + 80 * i
        p = rng.uniform(0.6, 0.999)
        right = rng.random() < p ** 6  # an overconfident model
        lp = np.full((fe.num_frames(n), 4), np.log(1e-4), np.float32)
        lp[:, 0] = 0.0
        lp[1] = np.log(1e-4)
        lp[1, 2 if right else 3] = np.log(p)
        table[n] = lp
        wav = tmp_path / f"{i}.wav"
        sf.write(wav, np.zeros(n, np.float32), 8000)
        lines.append(json.dumps({"audio_filepath": str(wav), "duration": n / 8000, "text": "a", "speaker": f"s{i % 6}"}))
    manifest = tmp_path / "dev.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return OfflineRecognizer(TableBackend(table, fe, TOK)), str(manifest)


def test_calibrate_measures_on_held_out_speakers(tmp_path):
    from asr.calibrate import calibrate

    recognizer, manifest = overconfident_dev_set(tmp_path)
    rep = calibrate(recognizer, manifest, folds=3, progress=False)
    assert (rep.utterances, rep.words, rep.speakers, rep.folds) == (120, 120, 6, 3)
    assert 10 < rep.wrong < 110 and rep.auc > 0.6
    assert rep.ece_raw > 0.15 and rep.ece_fitted < rep.ece_raw / 2 and rep.ece_heldout < rep.ece_raw / 2
    assert rep.calibration.source == "dev.jsonl" and rep.calibration.words == 120
    assert json.loads(json.dumps(rep.to_dict()))["calibration"]["method"] == "platt"
    with pytest.raises(ValueError, match="folds must be >= 2"):
        calibrate(recognizer, manifest, folds=1)


def test_heldout_error_uses_maps_fitted_without_the_fold(tmp_path):
    """ece_heldout scores each speaker group's words with a map fitted on the other groups only
    (whole speakers per group, sorted names dealt round robin): recomputed here from the words."""
    from asr.calibrate import calibrate
    from asr.evaluate import evaluate
    from asr.metrics import calibration_error, word_hits

    recognizer, manifest = overconfident_dev_set(tmp_path)
    rep = calibrate(recognizer, manifest, folds=3, progress=False)
    ev = evaluate(recognizer, manifest, progress=False, keep_words=True)
    raw, right, group = [], [], []
    for ref, words, speaker in zip(ev.refs, ev.runs[0].words, ev.speakers):
        raw += [w.confidence for w in words]
        right += word_hits(ref.split(), [w.word for w in words])
        group += [int(speaker[1:]) % 3] * len(words)  # s0..s5: s0 s3 | s1 s4 | s2 s5
    raw, right, group = np.array(raw), np.array(right), np.array(group)
    heldout = np.empty_like(raw)
    for k in range(3):
        heldout[group == k] = ConfidenceCalibration.fit(raw[group != k], right[group != k])(raw[group == k])
    assert rep.ece_heldout == pytest.approx(calibration_error(heldout, right), abs=1e-12)
    everything = ConfidenceCalibration.fit(raw, right)
    assert rep.ece_fitted == pytest.approx(calibration_error(everything(raw), right), abs=1e-12)
    assert abs(rep.ece_heldout - rep.ece_fitted) > 1e-3  # the two measures differ here


def test_stored_in_onnx_and_checkpoint_and_used_by_every_path(models, wavs, tmp_path):
    import shutil

    import asr.train
    from asr.calibrate import write_calibration
    from asr.runtime import OnlineRecognizer
    from asr.train.checkpoint import checkpoint_calibration, load_checkpoint, set_checkpoint_calibration
    from asr.train.export import export_onnx

    src, _, _ = models.get("gru-lc")
    path = str(tmp_path / "m.onnx")
    shutil.copy(src, path)
    raw = asr.train.load_model(path).transcribe(wavs["a"], long_form=False)
    assert raw.words, "the test model should say something"
    cal = ConfidenceCalibration(0.5, -0.7, words=10, wrong=3, source="x")
    write_calibration(path, cal)
    rec = asr.train.load_model(path)
    assert rec.calibration == cal
    got = rec.transcribe(wavs["a"], long_form=False)
    assert [w.word for w in got.words] == [w.word for w in raw.words]
    for w, r in zip(got.words, raw.words):
        assert abs(w.confidence - cal(r.confidence)) < 2e-3  # the raw value was rounded to 4 digits
    online = OnlineRecognizer(path)
    s = online.create_stream()
    s.accept_waveform(8000, sf.read(wavs["a"], dtype="float32")[0])
    s.input_finished()
    while online.decode_streams([s]):
        pass
    assert [w.confidence for w in online.get_result(s).words] == [w.confidence for w in got.words]
    write_calibration(path, None)
    assert asr.train.load_model(path).calibration is None

    # a checkpoint keeps it too, and its exports carry it
    ckpt = str(tmp_path / "m.pt")
    shutil.copy(os.path.splitext(src)[0] + ".pt", ckpt)
    set_checkpoint_calibration(ckpt, cal)
    assert checkpoint_calibration(load_checkpoint(ckpt)) == cal and asr.train.load_model(ckpt).calibration == cal
    out = str(tmp_path / "e.onnx")
    export_onnx(ckpt, out, streaming=True, parity_audio=[], parity_lengths_s=(0.6,))
    assert asr.train.load_model(out).calibration == cal


def test_bad_calibration_metadata_names_the_file(models, tmp_path):
    import onnx

    from asr.runtime.model import OnnxModel
    from asr.runtime.schema import ModelError

    src, _, _ = models.get("gru-offline")
    proto = onnx.load(src)
    proto.metadata_props.add(key="asr.confidence", value=json.dumps({"scale": 0.0, "bias": 1.0}))
    bad = str(tmp_path / "bad.onnx")
    onnx.save(proto, bad)
    with pytest.raises(ModelError, match=r"bad\.onnx.*asr\.confidence.*scale must be > 0"):
        OnnxModel(bad)


def test_cli_writes_reports_and_removes(models, wavs, tmp_path, capsys):
    import shutil

    import asr.train
    from asr import cli

    src, _, _ = models.get("gru-offline")
    path = str(tmp_path / "m.onnx")
    shutil.copy(src, path)
    words = asr.train.load_model(path).transcribe(wavs["a"], long_form=False).words
    if len({w.confidence for w in words}) < 2:
        pytest.skip("the test model's words should differ in confidence")
    median = sorted(w.confidence for w in words)[len(words) // 2]
    text = [w.word for w in words]
    unsure = [w.word if w.confidence >= median else "zz" for w in words]  # its least sure words wrong
    lines = [json.dumps({"audio_filepath": wavs["a"], "duration": 1.0, "text": " ".join(ref), "speaker": f"s{k}"})
             for k, ref in enumerate([text, unsure, text, unsure])]
    manifest = tmp_path / "dev.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    report = tmp_path / "r.json"
    assert cli.main(["calibrate", "--model", path, "--manifest", str(manifest), "--no-progress", "--dry-run",
                     "--out", str(report)]) == 0
    assert "AUC" in capsys.readouterr().out and asr.train.load_model(path).calibration is None
    assert json.loads(report.read_text())["words"] == 4 * len(text)
    assert cli.main(["calibrate", "--model", path, "--manifest", str(manifest), "--no-progress"]) == 0
    assert asr.train.load_model(path).calibration.words == 4 * len(text)
    # too few wrong words: nothing written, its own exit status
    assert cli.main(["calibrate", "--model", path, "--manifest", str(manifest), "--remove"]) == 0
    manifest.write_text("\n".join(lines[::2]) + "\n")
    assert cli.main(["calibrate", "--model", path, "--manifest", str(manifest), "--no-progress"]) == 3
    assert "at least 2 right and 2 wrong" in capsys.readouterr().out and asr.train.load_model(path).calibration is None
    manifest.write_text("\n".join(lines) + "\n")
    assert cli.main(["calibrate", "--model", path, "--manifest", str(manifest), "--remove"]) == 0
    assert asr.train.load_model(path).calibration is None
