"""tools/measure_loader.py: memory of the manifest and dataset, loader and model throughput,
and their ratio, on a tiny generated corpus and model."""

import json

from tests.tools import load_tool

TINY = ["frontend.sample_rate=8000", "frontend.n_fft=256", "frontend.win_length=200", "frontend.hop_length=80",
        "frontend.n_mels=24", "model.subsampling=2", "model.conv_dim=16", "model.hidden_size=16", "model.num_layers=1",
        "train.max_frames=2000", "train.max_batch=8", "train.num_threads=1", "data.tokenizer=char",
        "train.speed_perturb=[0.9,1.0]"]


def test_the_report(tiny_corpus, tmp_path):
    tool = load_tool("measure_loader")
    out = tmp_path / "r.json"
    args = ["--config", "", "--set", f"data.train={tiny_corpus['train']}", "--set", "data.dev=null",
            "--workers", "0,1", "--batches", "3", "--model-batches", "2", "--precision", "fp32,bf16",
            "--repeat", "2", "--out", str(out)]
    for item in TINY:
        args += ["--set", item]
    assert tool.main(args) == 0
    r = json.loads(out.read_text())
    assert r["memory"]["utterances"] == 96 and r["memory"]["items"] == 192  # two copies, two speeds each
    assert "mb_per_million_utterances" in r["memory"]  # resident: noise at this size
    assert 0 < r["memory"]["python_bytes_per_utterance"] < 1000  # columns (an object an utterance: ~1,500)
    assert set(r["loader"]) == {"0", "1"} and all(v["audio_s_per_s"] > 0 for v in r["loader"].values())
    assert set(r["model"]) == {"fp32", "bf16"} and r["model"]["fp32"]["batches"] == 2
    assert set(r["model"]["fp32"]["loader_over_model"]) == {"0", "1"}
