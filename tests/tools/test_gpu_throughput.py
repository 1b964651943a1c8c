"""tools/gpu_throughput.py in its CPU smoke mode: the LibriSpeech 960 h recipe's settings with a
tiny model, two timed steps per setting, every precision and recurrent type, the epoch
projection, and the onnxruntime decoding measure on the CPU provider (on a GPU machine the same
code runs with cuDNN and the CUDA provider)."""

import json

import pytest

from tests.tools import TOOLS, load_tool

TINY = ["model.hidden_size=16", "model.num_layers=1", "model.conv_dim=16", "train.max_frames=3000", "train.max_batch=2"]


def test_smoke_mode_reports_every_setting(tmp_path, capsys):
    tool = load_tool("gpu_throughput")
    out = tmp_path / "report.json"
    assert tool.main(["--device", "cpu", "--steps", "2", "--warmup", "1", "--set", *TINY, "--ort-provider", "cpu",
                      "--ort-batches", "1,2", "--ort-rounds", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["config"] == str(TOOLS.parent / "recipes/librispeech/conf_960.yaml")
    assert report["speed_copies"] == 3 and report["hours"] == 960
    assert [(r["rnn_type"], r["precision"]) for r in report["training"]] == [
        (rnn, p) for rnn in ("gru", "lstm") for p in ("fp32", "bf16", "fp16")]
    for r in report["training"]:
        assert r["steps"] == 2 and r["audio_sec_per_sec"] > 0
        assert r["epoch_hours_one_gpu"] == pytest.approx(960 * 3 * 3600 / r["audio_sec_per_sec"] / 3600)
    assert [r["batch"] for r in report["decoding"]] == [1, 2]
    assert all(r["audio_sec_per_sec"] > 0 for r in report["decoding"])
    printed = capsys.readouterr().out
    assert "epoch = 960 h x 3 speed copies" in printed and "CPUExecutionProvider" in printed


def test_lengths_and_batches_follow_the_recipe():
    tool = load_tool("gpu_throughput")
    s = tool.utterance_seconds(20000)
    assert s.mean() == pytest.approx(960 * 3600 / 281_241, rel=0.02) and s.min() >= 1 and s.max() <= 35
    from asr.train.config import load_config

    cfg = tool.model_config(load_config(str(TOOLS.parent / "recipes/librispeech/conf_960.yaml")))
    assert cfg.model.vocab_size == 513  # 512 word pieces and the blank
    batches = tool.synthetic_batches(cfg, 2)
    for b in batches:  # the recipe's bucketing: at most max_batch utterances, max_frames padded frames
        assert len(b["lengths"]) <= cfg.train.max_batch
        assert len(b["lengths"]) * int(b["lengths"].max()) <= cfg.train.max_frames
        assert b["feats"].shape[2] == 80 and int(b["targets"].max()) < 513


def test_missing_cuda_provider_is_reported_not_fatal():
    tool = load_tool("gpu_throughput")
    provider, why = tool.ort_provider("cuda")
    assert (provider is None) == bool(why)
    if provider is None:
        assert "onnxruntime-gpu" in why or "not installed" in why
