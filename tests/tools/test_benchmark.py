"""tools/benchmark.py on a tiny model: it runs end to end, and its parts measure what they say."""

import json
import os

import numpy as np
import pytest

from asr.audio import load_audio
from asr.decoding.lm import char_tokens, train_ngram
from asr.manifest import read_manifest
from asr.runtime import OnlineRecognizer
from asr.train.checkpoint import build_model, load_checkpoint
from tests.tools import load_tool

benchmark = load_tool("benchmark")


def test_streams_batched_or_alone_give_the_same_text(models, tiny_corpus):
    path = models.get("gru-lc")[0]
    rec = OnlineRecognizer(path)
    waves = [load_audio(e.audio_filepath, 8000) for e in read_manifest(tiny_corpus["dev"])[:7]]
    alone, steps1, lps1 = benchmark.stream_all(rec, waves, 8000, 1, 0.1, keep_log_probs=True)
    batched, steps3, lps3 = benchmark.stream_all(rec, waves, 8000, 3, 0.037, keep_log_probs=True)
    assert alone == batched and len(alone) == 7
    assert len(steps3) < len(steps1)  # three streams share a step
    for a, b in zip(lps1, lps3):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_macs_count_every_weight_once_per_frame(models):
    # Conv1d with kernel = stride: each weight once per output frame
    ckpt = os.path.join(os.path.dirname(models.get("gru-uni")[0]), "gru-uni.pt")
    model, cfg, _ = build_model(load_checkpoint(ckpt))
    weights = sum(p.numel() for n, p in model.named_parameters() if "weight" in n)
    assert benchmark.macs_per_frame(model, cfg) == weights


def test_timed_parts_restores_the_runtime(models, tiny_corpus):
    from collections import Counter

    from asr.frontend import OnlineLogMel
    from asr.runtime.model import OnnxModel

    before = (OnlineLogMel.accept, OnnxModel.stream_step)
    rec = OnlineRecognizer(models.get("gru-lc")[0])
    waves = [load_audio(e.audio_filepath, 8000) for e in read_manifest(tiny_corpus["dev"])[:3]]
    acc = Counter()
    with benchmark._timed_parts(acc):
        benchmark.stream_all(rec, waves, 8000, 2, 0.1)
    assert acc["front end"] > 0 and acc["model call"] > 0 and acc["decoder"] > 0
    assert (OnlineLogMel.accept, OnnxModel.stream_step) == before


def test_benchmark_runs_and_writes_its_figures(models, tiny_corpus, tmp_path, capsys):
    ckpt = os.path.join(os.path.dirname(models.get("gru-lc")[0]), "gru-lc.pt")
    lm = train_ngram([" ".join(char_tokens(e.text)) for e in read_manifest(tiny_corpus["train"])], order=3)
    lm.write_arpa(tmp_path / "chars.arpa")
    out = tmp_path / "bench.json"
    assert benchmark.main(["--checkpoint", ckpt, "--manifest", tiny_corpus["dev"], "--max-utts", "5", "--batch", "3",
                           "--rounds", "1", "--beam-size", "4", "--char-lm", str(tmp_path / "chars.arpa"),
                           "--out", str(out)]) == 0
    text = capsys.readouterr().out
    figures = json.loads(out.read_text())
    res = figures["results"]
    assert {"pytorch eager offline", "onnxruntime offline", "streaming fp32, batch 1", "streaming int8, batch 3"} <= set(res)
    assert res["streaming fp32, batch 1"]["wer_percent"] == res["streaming fp32, batch 3"]["wer_percent"]
    assert all(r["rtf"] > 0 for r in res.values())
    for row in figures["shares"].values():
        parts = [row[k] for k in benchmark.SHARES]
        assert all(0 <= p <= 1 for p in parts) and row["python"] == pytest.approx(1 - sum(parts))
    assert set(figures["shares"]) == {"8 kHz in, batch 1", "8 kHz in, batch 3", "48 kHz in, batch 1", "48 kHz in, batch 3"}
    assert figures["floor"]["rtf_streaming"] > figures["floor"]["rtf_offline"] > 0
    assert {"greedy", "prefix beam 4 + LMs", "ours, beam 4, char LM only"} <= set(figures["search"])
    assert "where streaming time goes" in text and "arithmetic floor" in text and "int8 vs fp32" in text
