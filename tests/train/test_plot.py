"""asr plot: on a tiny training run, every picture is written as a valid, non-empty PNG (and
SVG); the stream view's timeline is causal; asr.train.plot imports no matplotlib until it draws."""

import json
import os
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import soundfile as sf

from asr import cli
from asr.train import plot
from tests.conftest import SR, run_without_torch, synth_utterance

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    import matplotlib.image

    assert os.path.getsize(path) > 1000
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    img = matplotlib.image.imread(path)  # decodes the whole file
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert img[..., :3].std() > 0.01  # not a blank canvas


def assert_svg(path):
    assert ET.parse(path).getroot().tag.endswith("svg")


@pytest.fixture(scope="module")
def run(tiny_corpus, tmp_path_factory):
    """Two tiny experiments (GRU and tanh RNN), 3 epochs each, with TensorBoard and gates."""
    from asr.train.trainer import train
    from tests.train.test_trainer import tiny_config

    root = tmp_path_factory.mktemp("plot")
    exps = {}
    for rnn in ("gru", "rnn"):
        exps[rnn] = str(root / rnn)
        cfg = tiny_config(tiny_corpus, [f"model.rnn_type={rnn}", "train.gate_stats_utts=4", "train.grad_clip=2.0"], epochs=3)
        train(cfg, exps[rnn], progress=False)
    wav = str(root / "a.wav")
    sf.write(wav, synth_utterance("ab ca", np.random.default_rng(5)), SR)
    return {"exps": exps, "wav": wav, "root": root}


def test_curves_of_two_experiments(run, capsys):
    out = str(run["root"] / "figs" / "both")
    assert cli.main(["plot", "curves", run["exps"]["gru"], run["exps"]["rnn"], "--names", "gru,rnn", "--out", out, "--all-gates"]) == 0
    for name in ("both_curves", "both_gates"):
        assert_png(os.path.join(run["root"], "figs", name + ".png"))
        assert_svg(os.path.join(run["root"], "figs", name + ".svg"))
    assert "wrote" in capsys.readouterr().out


def test_experiment_tables(run):
    e = plot.read_experiment(run["exps"]["gru"])
    steps = e.column("steps", "step")
    assert steps.size == int(e.column("epochs", "step")[-1]) and np.all(np.diff(steps) == 1)
    norms, clip = e.column("steps", "grad_norm"), e.column("steps", "grad_clip")
    assert np.all(clip == 2.0)
    clipped = e.column("steps", "clipped")
    np.testing.assert_array_equal(clipped, (norms > 2.0).astype(float))
    epochs = e.column("steps", "epoch")
    rate = e.column("epochs", "clip_rate")
    for k, r in enumerate(rate, start=1):  # log.csv's clip rate is the share of that epoch's steps
        assert abs(r - clipped[epochs == k].mean()) < 1e-4
    assert abs(e.column("epochs", "grad_norm_max")[-1] - norms[epochs == 3].max()) < 1e-3 * norms.max()
    parts = [k for k in e.steps if k.startswith("norm_")]
    assert parts == ["norm_subsampling", "norm_rnn1.fwd", "norm_rnn1.bwd", "norm_head"]
    total = np.sqrt(sum(e.column("steps", k) ** 2 for k in parts))  # the parts make up the whole
    np.testing.assert_allclose(total, norms, rtol=1e-4)
    gates = {(g["epoch"], g["layer"], g["direction"], g["gate"]) for g in e.gates}
    assert ("3", "1", "bwd", "z") in gates and len(gates) == 3 * 2 * 2
    assert {g["gate"] for g in plot.read_experiment(run["exps"]["rnn"]).gates} == {"|h|"}


def test_utterance_picture(run):
    out = str(run["root"] / "utt")
    ckpt = os.path.join(run["exps"]["gru"], "best.pt")
    assert cli.main(["plot", "utterance", "--checkpoint", ckpt, run["wav"], run["wav"], "--text", "ab ca ab ca",
                     "--out", out, "--image-format", "png"]) == 0
    assert_png(out + ".png")
    assert not os.path.exists(out + ".svg")


def test_stream_picture_and_its_timeline(models, wavs, tmp_path):
    from asr.runtime import OnlineRecognizer

    path, _, report = models.get("gru-lc")
    out = str(tmp_path / "stream")
    assert cli.main(["plot", "stream", "--model", path, wavs["a"], "--text", "abc ca", "--out", out]) == 0
    assert_png(out + ".png")
    assert_svg(out + ".svg")
    rec = OnlineRecognizer(path)
    wave = sf.read(wavs["a"], dtype="float32")[0]
    steps, result = plot.stream_timeline(rec, wave, piece_ms=50)
    info = rec.info
    assert [s.chunk for s in steps] == list(range(len(steps)))
    assert steps[-1].text == result.text
    for s in steps[:-2]:  # a step runs only once the audio of its chunk and right context has arrived
        assert s.computed_at_s >= s.right_end_s
        assert s.right_end_s - s.end_s == pytest.approx(info.right_context * info.frame_shift_s)
    assert all(a.computed_at_s <= b.computed_at_s for a, b in zip(steps, steps[1:]))


def test_gradient_flow_picture(run, tiny_corpus, tmp_path):
    out = str(tmp_path / "gradflow")
    ckpts = [os.path.join(run["exps"][k], "best.pt") for k in ("rnn", "gru")]
    assert cli.main(["plot", "gradflow", "--checkpoint", *ckpts, "--names", "rnn,gru", "--manifest", tiny_corpus["dev"],
                     "--utts", "2", "--concat", "2", "--out", out]) == 0
    assert_png(out + ".png")
    summary = json.load(open(out + ".json"))
    assert set(summary["models"]) == {"rnn", "gru"}
    reach = summary["reach_relative"]["gru"]["layer1.fwd"]
    assert set(reach) == {"0.2", "0.5", "1", "2"} and 0 < reach["0.2"] < 10


def test_missing_matplotlib_is_named(run, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert cli.main(["plot", "curves", run["exps"]["gru"], "--out", str(run["root"] / "x")]) == 2
    err = capsys.readouterr().err
    assert "matplotlib" in err and "[views]" in err


def test_plot_modules_import_without_matplotlib_or_torch():
    run_without_torch("""
        import sys
        import asr.train.plot, asr.cli.plot
        assert not [m for m in sys.modules if m.split(".")[0] in ("matplotlib", "librosa", "tensorboard")]
    """)


def test_not_an_experiment_folder(tmp_path, capsys):
    assert cli.main(["plot", "curves", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "no log.csv" in capsys.readouterr().err
