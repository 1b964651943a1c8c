"""asr.train.monitor: TensorBoard event files from `asr train` (train.tensorboard: true) hold what
docs/looking_inside.md promises, read back with the tensorboard package's own event reader; a missing
tensorboard package is named before any work."""

import os
import sys

import numpy as np
import pytest

from asr.train.monitor import posterior_image


@pytest.fixture(scope="module")
def events(tiny_corpus, tmp_path_factory):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from asr.train.trainer import train
    from tests.train.test_trainer import tiny_config

    exp = str(tmp_path_factory.mktemp("tb") / "run")
    cfg = tiny_config(tiny_corpus, ["train.tensorboard=true", "train.gate_stats_utts=3"], epochs=2)
    train(cfg, exp, progress=False)
    files = os.listdir(os.path.join(exp, "tensorboard"))
    assert len(files) == 1 and files[0].startswith("events.out.tfevents.")
    acc = EventAccumulator(os.path.join(exp, "tensorboard"), size_guidance={"scalars": 0, "images": 0, "histograms": 0,
                                                                             "tensors": 0})
    acc.Reload()
    return exp, acc


def test_scalars_per_step_and_per_epoch(events):
    exp, acc = events
    tags = set(acc.Tags()["scalars"])
    per_step = ["train/loss", "train/lr", "grad/norm_before_clip", "grad/clipped", "grad_norm_by_layer/rnn1.fwd",
                "grad_norm_by_layer/rnn1.bwd", "grad_norm_by_layer/subsampling", "grad_norm_by_layer/head"]
    per_epoch = ["dev/wer", "dev/cer", "dev/loss", "train/audio_sec_per_sec", "grad/clip_rate", "grad/clip_threshold",
                 "grad/epoch_max_norm", "gates/layer1.fwd.z/near1", "gates/layer1.bwd.r/mean"]
    assert set(per_step + per_epoch) <= tags
    import csv

    rows = list(csv.DictReader(open(os.path.join(exp, "steps.csv"))))
    losses = acc.Scalars("train/loss")
    assert [e.step for e in losses] == [int(r["step"]) for r in rows]
    np.testing.assert_allclose([e.value for e in losses], [float(r["loss"]) for r in rows], rtol=1e-4)
    log = list(csv.DictReader(open(os.path.join(exp, "log.csv"))))
    np.testing.assert_allclose([e.value for e in acc.Scalars("dev/wer")], [float(r["dev_wer"]) for r in log], rtol=1e-5)
    assert len(acc.Scalars("gates/layer1.fwd.z/near1")) == 2


def test_posteriors_image_transcript_and_norm_histogram(events):
    _, acc = events
    images = acc.Images("dev/posteriors")
    assert [i.step for i in images] == [1, 2]
    assert images[0].encoded_image_string.startswith(b"\x89PNG")
    assert images[0].height == 5 * 8  # 5 symbols of the tiny corpus, 8 pixels each
    hist = acc.Histograms("grad/norm_distribution")
    assert [h.step for h in hist] == [1, 2] and hist[0].histogram_value.num > 0
    texts = acc.Tensors("dev/transcript/text_summary")
    assert len(texts) == 2
    body = texts[-1].tensor_proto.string_val[0].decode()
    assert "REF:" in body and "HYP:" in body


def test_posterior_image():
    lp = np.log(np.array([[0.9, 0.1], [0.2, 0.8], [1.0, 0.0]]) + 1e-12)
    img = posterior_image(lp, row_px=2, col_px=3)
    assert img.shape == (4, 9) and img.min() >= 0 and img.max() <= 1
    assert img[0, 0] == pytest.approx(0.9) and img[3, 4] == pytest.approx(0.8)


def test_missing_tensorboard_is_named_before_any_work(tiny_corpus, tmp_path, monkeypatch):
    from asr.train.trainer import train
    from tests.train.test_trainer import tiny_config

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(RuntimeError, match=r"tensorboard package.*\[views\]"):
        train(tiny_config(tiny_corpus, ["train.tensorboard=true"]), str(tmp_path / "e"), progress=False)
    assert not os.path.exists(tmp_path / "e" / "log.csv")
